//! `/metrics` side by side with etcd 3.5.1: the same small workload (puts, a range, a
//! txn, a lease grant and revoke, a watch) on a chorus member and on a real etcd, then
//! both scrapes compared family by family.
//!
//! ```text
//!   workload ─▶ chorus ─┐
//!   workload ─▶ etcd ───┴─ scrape /metrics ─▶ families {name: (TYPE, label names)}
//!     every family in MUST_HAVE is in both, with the same TYPE and label names
//!     every family both have agrees on TYPE and label names
//!     etcd's families chorus lacks  == OMITTED (+ the Go runtime's go_*)
//!     chorus's families etcd lacks  == CHORUS_ONLY
//! ```
//! The reasons for each omission are in docs/compatibility.md ("Metrics"). Under CI=true
//! a missing etcd 3.5.1 fails the test (`scripts/install-etcd35.sh`).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use chorus_client::{Client, GetOptions, Op, PutOptions, Txn, WatchOptions};
use common::{Cluster, ClusterOptions, ServerKind};

/// Families operators' alerts and dashboards (the etcd mixin) read: chorus must serve each
/// with etcd's type and label names.
const MUST_HAVE: &[&str] = &[
    "etcd_cluster_version",
    "etcd_debugging_lease_granted_total",
    "etcd_debugging_lease_renewed_total",
    "etcd_debugging_lease_revoked_total",
    "etcd_debugging_lease_ttl_total",
    "etcd_debugging_mvcc_compact_revision",
    "etcd_debugging_mvcc_current_revision",
    "etcd_debugging_mvcc_db_compaction_keys_total",
    "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds",
    "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds",
    "etcd_debugging_mvcc_events_total",
    "etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds",
    "etcd_debugging_mvcc_keys_total",
    "etcd_debugging_mvcc_pending_events_total",
    "etcd_debugging_mvcc_slow_watcher_total",
    "etcd_debugging_mvcc_total_put_size_in_bytes",
    "etcd_debugging_mvcc_watch_stream_total",
    "etcd_debugging_mvcc_watcher_total",
    "etcd_debugging_server_lease_expired_total",
    "etcd_debugging_snap_save_total_duration_seconds",
    "etcd_debugging_store_expires_total",
    "etcd_debugging_store_reads_total",
    "etcd_debugging_store_watch_requests_total",
    "etcd_debugging_store_watchers",
    "etcd_debugging_store_writes_total",
    "etcd_disk_backend_commit_duration_seconds",
    "etcd_disk_backend_defrag_duration_seconds",
    "etcd_disk_backend_snapshot_duration_seconds",
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_wal_write_bytes_total",
    "etcd_mvcc_db_open_read_transactions",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_mvcc_delete_total",
    "etcd_mvcc_hash_duration_seconds",
    "etcd_mvcc_hash_rev_duration_seconds",
    "etcd_mvcc_put_total",
    "etcd_mvcc_range_total",
    "etcd_mvcc_txn_total",
    "etcd_network_client_grpc_received_bytes_total",
    "etcd_network_client_grpc_sent_bytes_total",
    "etcd_server_apply_duration_seconds",
    "etcd_server_client_requests_total",
    "etcd_server_go_version",
    "etcd_server_has_leader",
    "etcd_server_health_failures",
    "etcd_server_health_success",
    "etcd_server_heartbeat_send_failures_total",
    "etcd_server_id",
    "etcd_server_is_leader",
    "etcd_server_is_learner",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_applied_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_failed_total",
    "etcd_server_proposals_pending",
    "etcd_server_quota_backend_bytes",
    "etcd_server_read_indexes_failed_total",
    "etcd_server_slow_apply_total",
    "etcd_server_slow_read_indexes_total",
    "etcd_server_snapshot_apply_in_progress_total",
    "etcd_server_version",
    "etcd_snap_db_fsync_duration_seconds",
    "etcd_snap_db_save_total_duration_seconds",
    "etcd_snap_fsync_duration_seconds",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds",
    "grpc_server_msg_received_total",
    "grpc_server_msg_sent_total",
    "grpc_server_started_total",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "promhttp_metric_handler_requests_in_flight",
    "promhttp_metric_handler_requests_total",
];

/// etcd 3.5.1's families (after the workload, on one member) that chorus does not serve;
/// docs/compatibility.md says why for each. The Go runtime's `go_*` are left out as a
/// group.
const OMITTED: &[&str] = &[
    "etcd_debugging_disk_backend_commit_rebalance_duration_seconds",
    "etcd_debugging_disk_backend_commit_spill_duration_seconds",
    "etcd_debugging_disk_backend_commit_write_duration_seconds",
    "etcd_debugging_snap_save_marshalling_duration_seconds",
    "etcd_grpc_proxy_cache_hits_total",
    "etcd_grpc_proxy_cache_keys_total",
    "etcd_grpc_proxy_cache_misses_total",
    "etcd_grpc_proxy_events_coalescing_total",
    "etcd_grpc_proxy_watchers_coalescing_total",
];

/// Families chorus serves that etcd 3.5.1 does not (etcd 3.4's names, kept for 3.4 users).
const CHORUS_ONLY: &[&str] = &[
    "etcd_debugging_mvcc_db_total_size_in_bytes",
    "etcd_server_term",
];

/// A family as a scrape shows it: its TYPE and the label names of its samples (`le` of a
/// histogram's buckets left out).
#[derive(Debug, PartialEq, Eq)]
struct Family {
    kind: String,
    labels: BTreeSet<String>,
}

fn families(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            let family = Family {
                kind: kind.to_owned(),
                labels: BTreeSet::new(),
            };
            out.insert(name.to_owned(), family);
        } else if !line.starts_with('#') && !line.is_empty() {
            let (name, labels) = sample_labels(line);
            let family = family_of(&out, name).unwrap_or_else(|| panic!("no TYPE for {line}"));
            let family = out.get_mut(&family).expect("found above");
            family
                .labels
                .extend(labels.into_iter().filter(|l| l != "le"));
        }
    }
    out
}

/// A sample's metric name and label names.
fn sample_labels(line: &str) -> (&str, Vec<String>) {
    let Some((name, rest)) = line.split_once('{') else {
        return (line.split_once(' ').expect("name value").0, Vec::new());
    };
    let body = &rest[..rest.rfind('}').expect("closing brace")];
    let labels = body
        .split("\",")
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
        .collect();
    (name, labels)
}

/// The family a sample belongs to (a histogram's `_bucket`, `_sum`, `_count` included).
fn family_of(families: &BTreeMap<String, Family>, sample: &str) -> Option<String> {
    ["", "_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = sample.strip_suffix(suffix)?;
        families.contains_key(base).then(|| base.to_owned())
    })
}

/// Puts, a range, a txn, a lease granted and revoked, a watch that sees an event, a
/// health check and a hash: every kind of request whose families the test compares.
async fn workload(cluster: &Cluster) {
    let c: Client = cluster.client().await;
    c.put("m/a", "1", PutOptions::default()).await.unwrap();
    let watch = c.watch(
        "m/",
        WatchOptions {
            prefix: true,
            ..Default::default()
        },
    );
    let mut watch = watch.await.unwrap();
    c.put("m/b", "2", PutOptions::default()).await.unwrap();
    let event = watch.message().await.unwrap().expect("a watch event");
    assert_eq!(event.events.len(), 1);
    c.get(
        "m/",
        GetOptions {
            prefix: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let txn = Txn::new().and_then([Op::put("m/c", "3", &PutOptions::default())]);
    c.txn(txn).await.unwrap();
    let lease = c.lease_grant(60, 0).await.unwrap();
    c.lease_revoke(lease.id).await.unwrap();
    // A second revoke fails (NotFound): a call whose status is in the response headers.
    assert!(c.lease_revoke(lease.id).await.is_err());
    c.hash_kv(0).await.unwrap();
    let (code, _) = cluster.http_get(0, "/health").await;
    assert_eq!(code, 200);
}

/// The `/metrics` text of a fresh one-member cluster of `kind` after [`workload`].
async fn scrape_after_workload(kind: ServerKind, extra: &[&str]) -> String {
    let options = ClusterOptions {
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(kind, 1, options).await;
    workload(&cluster).await;
    let (code, body) = cluster.http_get(0, "/metrics").await;
    assert_eq!(code, 200, "{kind:?} /metrics: {body}");
    body
}

/// The value of the sample line that starts with `series` (name and labels, as written).
fn value(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.strip_prefix(series).is_some_and(|r| r.starts_with(' ')))
        .unwrap_or_else(|| panic!("no sample {series}"));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

fn names<'a>(it: impl IntoIterator<Item = &'a String>) -> BTreeSet<&'a str> {
    it.into_iter().map(String::as_str).collect()
}

#[tokio::test]
async fn families_match_etcd_35() {
    if !common::require_etcd35() {
        return;
    }
    let extensive = ["--metrics=extensive"];
    let chorus = families(&scrape_after_workload(ServerKind::Chorus, &extensive).await);
    let etcd = families(&scrape_after_workload(ServerKind::Etcd35, &extensive).await);
    for name in MUST_HAVE {
        let (Some(c), Some(e)) = (chorus.get(*name), etcd.get(*name)) else {
            panic!(
                "{name}: chorus has it: {}, etcd: {}",
                chorus.contains_key(*name),
                etcd.contains_key(*name)
            );
        };
        assert_eq!(c, e, "{name}: chorus vs etcd");
    }
    for (name, c) in &chorus {
        if let Some(e) = etcd.get(name) {
            assert_eq!(c, e, "{name}: chorus vs etcd");
        }
    }
    let missing: BTreeSet<&str> = names(etcd.keys().filter(|n| !chorus.contains_key(*n)))
        .into_iter()
        .filter(|n| !n.starts_with("go_"))
        .collect();
    assert_eq!(
        missing,
        OMITTED.iter().copied().collect(),
        "etcd's families chorus lacks"
    );
    let extra = names(chorus.keys().filter(|n| !etcd.contains_key(*n)));
    assert_eq!(
        extra,
        CHORUS_ONLY.iter().copied().collect(),
        "chorus's families etcd lacks"
    );
}

/// The workload's requests are counted where etcd counts them; `--metrics=basic` (the
/// default) leaves the handling-time histograms out, as etcd does.
#[tokio::test]
async fn workload_is_counted_and_basic_has_no_handling_time() {
    let text = scrape_after_workload(ServerKind::Chorus, &[]).await;
    let put = r#"{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}"#;
    let expected = [
        ("etcd_mvcc_put_total", 3.0),
        ("etcd_mvcc_txn_total", 1.0),
        ("etcd_debugging_lease_granted_total", 1.0),
        ("etcd_debugging_lease_revoked_total", 1.0),
        ("etcd_server_health_success", 1.0),
        ("etcd_server_proposals_pending", 0.0),
        ("etcd_server_proposals_failed_total", 0.0),
        // Two Put calls; the third put is inside the txn.
        (&format!("grpc_server_started_total{put}"), 2.0),
        (&format!("grpc_server_msg_received_total{put}"), 2.0),
        (&format!("grpc_server_msg_sent_total{put}"), 2.0),
    ];
    for (series, want) in expected {
        assert_eq!(value(&text, series), want, "{series}");
    }
    // Each applied request in etcd's apply histogram, by its op; the txn's put is in it.
    for (op, want) in [("Put", 2.0), ("Txn", 1.0), ("LeaseGrant", 1.0)] {
        let series = format!(
            "etcd_server_apply_duration_seconds_count{{op=\"{op}\",success=\"true\",version=\"v3\"}}"
        );
        assert_eq!(value(&text, &series), want, "{series}");
    }
    // The scrape being served is in flight and not yet counted, as Go's handler shows it.
    assert_eq!(
        value(&text, "promhttp_metric_handler_requests_in_flight"),
        1.0
    );
    let scrapes = r#"promhttp_metric_handler_requests_total{code="200"}"#;
    assert_eq!(value(&text, scrapes), 0.0);
    let ok_puts = format!("grpc_server_handled_total{{grpc_code=\"OK\",{}", &put[1..]);
    assert_eq!(value(&text, &ok_puts), 2.0);
    let revoke =
        r#"grpc_method="LeaseRevoke",grpc_service="etcdserverpb.Lease",grpc_type="unary"}"#;
    for (code, want) in [("OK", 1.0), ("NotFound", 1.0)] {
        let series = format!("grpc_server_handled_total{{grpc_code=\"{code}\",{revoke}");
        assert_eq!(value(&text, &series), want, "{series}");
    }
    for positive in [
        "etcd_disk_wal_fsync_duration_seconds_count",
        "etcd_disk_wal_write_bytes_total",
        "etcd_debugging_mvcc_events_total",
        "etcd_mvcc_range_total",
        "etcd_mvcc_hash_rev_duration_seconds_count",
        "etcd_network_client_grpc_received_bytes_total",
        "etcd_network_client_grpc_sent_bytes_total",
    ] {
        assert!(value(&text, positive) > 0.0, "{positive}");
    }
    let families = families(&text);
    assert!(families.contains_key("grpc_server_handled_total"));
    assert!(!families.contains_key("grpc_server_handling_seconds"));
}

#[test]
fn parses_families_and_label_names() {
    let text = "# HELP h x\n# TYPE h histogram\nh_bucket{a=\"1\",le=\"0.1\"} 0\n\
                h_sum{a=\"1\"} 0\nh_count{a=\"1\"} 0\n# TYPE c counter\nc 3\n\
                # TYPE v gauge\nv{x=\"a,b\",y=\"\\\"\"} 1\n";
    let f = families(text);
    let labels = |n: &str| f[n].labels.iter().cloned().collect::<Vec<_>>();
    assert_eq!(f["h"].kind, "histogram");
    assert_eq!(labels("h"), ["a"]);
    assert_eq!(labels("c"), Vec::<String>::new());
    assert_eq!(labels("v"), ["x", "y"]);
}

/// With peers, the per-peer families appear with one series per peer, labelled with its
/// hexadecimal member ID as etcd labels them (the round-trip histogram included).
#[tokio::test]
async fn peer_families_have_a_series_per_peer() {
    let cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let c = cluster.client().await;
    c.put("p", "1", PutOptions::default()).await.unwrap();
    let (_, ids) = cluster.ids().await;
    let leader = cluster.leader().await;
    let me = format!("{:x}", ids[leader]);
    let series = |text: &str, name: &str| text.matches(&format!("\n{name}{{")).count();
    // Another process: no event to await, so scrape until every stream has carried a
    // message (heartbeats do within a few intervals), within a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let (code, text) = cluster.http_get(leader, "/metrics").await;
        assert_eq!(code, 200);
        let complete = [
            "etcd_network_peer_sent_bytes_total",
            "etcd_network_peer_received_bytes_total",
            "etcd_network_active_peers",
            // The prober's first round trip to each peer.
            "etcd_network_peer_round_trip_time_seconds_count",
        ]
        .iter()
        .all(|name| series(&text, name) == 2);
        if complete {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let active = &families(&text)["etcd_network_active_peers"];
    assert_eq!(active.labels, ["Local", "Remote"].map(String::from).into());
    let mine = format!("etcd_network_active_peers{{Local=\"{me}\",");
    assert_eq!(text.matches(&mine).count(), 2, "{text}");
}

/// A call through the `/v3` JSON gateway counts as the gRPC call it stands for, as etcd's
/// gateway (a loopback gRPC client without `client-api-version`) shows it.
#[tokio::test]
async fn gateway_calls_count_as_grpc_calls() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let (_, before) = cluster.http_get(0, "/metrics").await;
    let put_body = r#"{"key":"Z3c=","value":"MQ=="}"#;
    let (code, body) = cluster.http(0, "POST", "/v3/kv/put", put_body).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = cluster
        .http(0, "POST", "/v3/kv/range", r#"{"key":"Z3c="}"#)
        .await;
    assert_eq!(code, 200, "{body}");
    // A lease that does not exist: NotFound, no message sent back.
    let (code, body) = cluster
        .http(0, "POST", "/v3/lease/revoke", r#"{"ID":"7"}"#)
        .await;
    assert_eq!(code, 404, "{body}");
    // Not JSON: refused by the gateway before any call, so not counted.
    let (code, _) = cluster.http(0, "POST", "/v3/kv/put", "{nope").await;
    assert_eq!(code, 400);
    let (_, text) = cluster.http_get(0, "/metrics").await;
    let labels = |service: &str, method: &str| {
        format!(
            r#"grpc_method="{method}",grpc_service="etcdserverpb.{service}",grpc_type="unary"}}"#
        )
    };
    let (put, range, revoke) = (
        labels("KV", "Put"),
        labels("KV", "Range"),
        labels("Lease", "LeaseRevoke"),
    );
    let expected = [
        (format!("grpc_server_started_total{{{put}"), 1.0),
        (format!("grpc_server_msg_received_total{{{put}"), 1.0),
        (format!("grpc_server_msg_sent_total{{{put}"), 1.0),
        (
            format!("grpc_server_handled_total{{grpc_code=\"OK\",{put}"),
            1.0,
        ),
        (
            format!("grpc_server_handled_total{{grpc_code=\"OK\",{range}"),
            1.0,
        ),
        (format!("grpc_server_msg_sent_total{{{range}"), 1.0),
        (format!("grpc_server_started_total{{{revoke}"), 1.0),
        (format!("grpc_server_msg_sent_total{{{revoke}"), 0.0),
        (
            format!("grpc_server_handled_total{{grpc_code=\"NotFound\",{revoke}"),
            1.0,
        ),
        (
            r#"etcd_server_client_requests_total{client_api_version="unknown",type="unary"}"#
                .to_owned(),
            3.0,
        ),
    ];
    for (series, want) in expected {
        let added = value(&text, &series) - value(&before, &series);
        assert_eq!(added, want, "{series}");
    }
    let bytes = "etcd_network_client_grpc_received_bytes_total";
    assert!(value(&text, bytes) > value(&before, bytes));
}

/// The v2 store's operations (the membership's own writes included), its watchers, and
/// the `/metrics` handler's scrapes are counted as etcd counts them.
#[tokio::test]
async fn v2_store_and_scrapes_are_counted() {
    let options = ClusterOptions {
        extra_args: vec!["--enable-v2=true".into()],
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    // The member's own sets (its published attributes, the cluster version) come in
    // after it is ready: counted before the requests, they are not the requests' own.
    let sets = r#"etcd_debugging_store_writes_total{action="set"}"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let before = loop {
        let (_, text) = cluster.http_get(0, "/metrics").await;
        if text.contains(&format!("\n{sets} 2\n")) {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let (code, body) = cluster.http(0, "PUT", "/v2/keys/a", "value=1").await;
    assert_eq!(code, 201, "{body}");
    let (code, _) = cluster.http_get(0, "/v2/keys/?recursive=true").await;
    assert_eq!(code, 200);
    // A watch waiting for the next change of /w is one watcher until the change comes.
    let addr = format!("127.0.0.1:{}", cluster.member(0).client_port);
    let watch = tokio::spawn(async move {
        common::cluster::http_exchange(&addr, "GET", "/v2/keys/w?wait=true", "").await
    });
    let watchers = "etcd_debugging_store_watchers";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while value(&cluster.http_get(0, "/metrics").await.1, watchers) != 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no watcher registered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (code, body) = cluster.http(0, "PUT", "/v2/keys/w", "value=2").await;
    assert_eq!(code, 201, "{body}");
    let (code, event) = watch.await.unwrap();
    assert_eq!(code, 200, "{event}");
    let (_, text) = cluster.http_get(0, "/metrics").await;
    let added = |series: &str| value(&text, series) - value(&before, series);
    for (series, want) in [
        (
            r#"etcd_debugging_store_reads_total{action="getRecursive"}"#,
            1.0,
        ),
        (sets, 2.0),
        ("etcd_debugging_store_watch_requests_total", 1.0),
    ] {
        assert_eq!(added(series), want, "{series}\n{text}");
    }
    for (series, want) in [
        // The member added at bootstrap.
        (r#"etcd_debugging_store_writes_total{action="create"}"#, 1.0),
        (watchers, 0.0),
        (
            r#"etcd_server_apply_duration_seconds_count{op="PUT",success="true",version="v2"}"#,
            2.0,
        ),
        ("promhttp_metric_handler_requests_in_flight", 1.0),
    ] {
        assert_eq!(value(&text, series), want, "{series}\n{text}");
    }
    // Every scrape before this one, each answered 200.
    let scrapes = value(
        &text,
        r#"promhttp_metric_handler_requests_total{code="200"}"#,
    );
    let earlier = value(
        &before,
        r#"promhttp_metric_handler_requests_total{code="200"}"#,
    );
    assert!(scrapes >= earlier + 2.0, "{scrapes} after {earlier}");
}

/// A follower that was down past the snapshot threshold gets the leader's snapshot:
/// counted as sent on the leader (`To` the follower) and received on the follower
/// (`From` the leader), with their durations; every member's prober has measured a round
/// trip to each peer.
#[tokio::test]
async fn snapshot_transfers_and_round_trips_are_counted_per_peer() {
    let options = ClusterOptions {
        snapshot_count: Some(50),
        extra_args: vec!["--experimental-snapshot-catchup-entries=10".into()],
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 3, options).await;
    let (_, ids) = cluster.ids().await;
    let leader = cluster.leader().await;
    let behind = (leader + 1) % 3;
    cluster.stop(behind).await;
    let c = cluster.member_client(leader).await;
    for i in 0..200 {
        c.put(format!("s{i:04}"), "v", PutOptions::default())
            .await
            .unwrap();
    }
    cluster.spawn(behind);
    cluster.wait_ready(behind).await;
    let follower = cluster.member_client(behind).await;
    // A linearizable read on the follower waits until it applied the leader's snapshot.
    let got = follower.get("s0199", GetOptions::default()).await.unwrap();
    assert_eq!(got.kvs.len(), 1);
    let (to, from) = (format!("{:x}", ids[behind]), format!("{:x}", ids[leader]));
    let (_, sent) = cluster.http_get(leader, "/metrics").await;
    let (_, received) = cluster.http_get(behind, "/metrics").await;
    let logs = cluster.logs();
    for (text, series) in [
        (
            &sent,
            format!("etcd_network_snapshot_send_success{{To=\"{to}\"}}"),
        ),
        (
            &sent,
            format!("etcd_network_snapshot_send_total_duration_seconds_count{{To=\"{to}\"}}"),
        ),
        (
            &received,
            format!("etcd_network_snapshot_receive_success{{From=\"{from}\"}}"),
        ),
        (
            &received,
            format!(
                "etcd_network_snapshot_receive_total_duration_seconds_count{{From=\"{from}\"}}"
            ),
        ),
    ] {
        assert!(value(text, &series) >= 1.0, "{series}\n{logs}");
    }
    assert_eq!(
        value(
            &sent,
            &format!("etcd_network_snapshot_send_inflights_total{{To=\"{to}\"}}")
        ),
        0.0
    );
    let received_fam = &families(&received)["etcd_network_snapshot_receive_success"];
    assert_eq!(received_fam.labels, ["From"].map(String::from).into());
    // The restarted member probes both peers as soon as it is up.
    let rtt = "etcd_network_peer_round_trip_time_seconds_count{To=";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, text) = cluster.http_get(behind, "/metrics").await;
        if text.matches(rtt).count() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A physical compaction (answered once it is done) is timed in etcd's two pause
/// histograms, and a member with no range in progress has no read transaction open.
#[tokio::test]
async fn compaction_pauses_and_open_read_transactions_are_counted() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let c = cluster.client().await;
    let mut rev = 0;
    for i in 0..20 {
        let put = c
            .put("c", i.to_string(), PutOptions::default())
            .await
            .unwrap();
        rev = put.header.unwrap().revision;
    }
    c.get("c", GetOptions::default()).await.unwrap();
    c.compact(rev, true).await.unwrap();
    let (_, text) = cluster.http_get(0, "/metrics").await;
    for series in [
        "etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds_count",
        "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds_count",
    ] {
        assert!(value(&text, series) >= 1.0, "{series}\n{text}");
    }
    assert_eq!(value(&text, "etcd_mvcc_db_open_read_transactions"), 0.0);
}

/// A watch stream that sends a request above the member's limit fails on the server's
/// side and is counted as etcd counts it (`Type="receive"`, `API="watch"`); a client that
/// cancels its stream is not a failure. Run on chorus and on etcd 3.5.1 alike.
#[tokio::test]
async fn refused_watch_streams_are_stream_failures() {
    let series = r#"etcd_network_server_stream_failures_total{API="watch",Type="receive"}"#;
    let mut kinds = vec![ServerKind::Chorus];
    if common::require_etcd35() {
        kinds.push(ServerKind::Etcd35);
    }
    for kind in kinds {
        let options = ClusterOptions {
            extra_args: vec!["--max-request-bytes".into(), "1024".into()],
            ..ClusterOptions::default()
        };
        let cluster = Cluster::start_with(kind, 1, options).await;
        let c = cluster.client().await;
        // Cancelled by the client: not counted.
        let watch = c.watch("k", WatchOptions::default()).await.unwrap();
        drop(watch);
        // 1 MiB: above 1024 bytes plus etcd's 512 KiB of gRPC overhead.
        let big = chorus_api::etcdserverpb::WatchRequest {
            request_union: Some(
                chorus_api::etcdserverpb::watch_request::RequestUnion::CreateRequest(
                    chorus_api::etcdserverpb::WatchCreateRequest {
                        key: vec![b'k'; 1 << 20],
                        ..Default::default()
                    },
                ),
            ),
        };
        let refused = c.watch_client().watch(futures::stream::iter([big])).await;
        if let Ok(resp) = refused {
            let mut stream = resp.into_inner();
            let end = stream.message().await;
            assert!(end.is_err(), "{kind:?} took a 1 MiB watch key: {end:?}");
        }
        // Both count the failure before the stream ends with it.
        let (_, text) = cluster.http_get(0, "/metrics").await;
        assert_eq!(value(&text, series), 1.0, "{kind:?}\n{text}");
    }
}
