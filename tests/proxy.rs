//! `chorus grpc-proxy start`, `chorus gateway start` and the DNS service discovery,
//! against chorus clusters, and compared with etcd 3.4's own `etcd grpc-proxy start`
//! where the behaviour is observable (etcdctl's output, namespace prefixing, watch
//! coalescing seen from the member, resolver registration records).
//!
//! Every port is below 32768 (`common::free_low_ports`); processes are the harness's.

use crate::common;

use std::time::{Duration, Instant};

use chorus_api::v3electionpb::{CampaignRequest, LeaderRequest, ProclaimRequest, ResignRequest};
use chorus_api::v3lockpb::{LockRequest, UnlockRequest};
use chorus_client::pb::{AlarmRequest, AuthStatusRequest, SnapshotRequest};
use chorus_client::{Client, ConnectOptions, GetOptions, PutOptions, WatchOptions};
use common::{metric, Cluster, ClusterOptions, Etcdctl, Proxy, ProxyKind, ServerKind};
use tokio_stream::StreamExt;

/// Bound on waiting for another process to reflect a change (polled: no event to await).
const SETTLE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(25);

async fn start_proxy(kind: ProxyKind, cluster: &Cluster, name: &str, extra: &[&str]) -> Proxy {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let mut p = Proxy::spawn(kind, cluster.dir(), name, &cluster.endpoints(), &extra);
    p.wait_ready().await;
    p
}

/// A member's gauge, read from its `/metrics`.
async fn member_metric(cluster: &Cluster, i: usize, name: &str) -> f64 {
    let (code, body) = cluster.http_get(i, "/metrics").await;
    assert_eq!(code, 200);
    metric(&body, name).unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// Polls `check` until it returns `Some`, at most [`SETTLE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {SETTLE:?}");
        tokio::time::sleep(POLL).await;
    }
}

// ------------------------------------------------------------------ etcdctl

/// What etcdctl prints for a fixed session through a proxy, with IDs, ports and the
/// host name blanked.
async fn etcdctl_session(proxy: &Proxy) -> String {
    let ep = [proxy.url()];
    let mut out = String::new();
    kv_and_lease_session(&ep, &mut out).await;
    coordination_session(&ep, &mut out).await;
    let status = Etcdctl::v3(&ep).args(["endpoint", "status"]).run().await;
    assert!(status.stdout.contains(&proxy.url()), "{status:#?}");
    normalize_session(&out)
}

/// put, get, txn, del and a lease's life, each command's output under a label.
async fn kv_and_lease_session(ep: &[String], out: &mut String) {
    let ctl = || Etcdctl::v3(ep);
    let mut run = |label: &str, text: String| {
        out.push_str(&format!("== {label}\n{text}"));
    };
    run(
        "put",
        ctl().args(["put", "k1", "v1"]).run().await.ok().to_string(),
    );
    run(
        "get",
        ctl().args(["get", "k1"]).run().await.ok().to_string(),
    );
    let txn = "value(\"k1\") = \"v1\"\n\nput k2 v2\nput k3 v3\n\nput k2 nope\n\n";
    run(
        "txn",
        ctl().arg("txn").stdin(txn).run().await.ok().to_string(),
    );
    run(
        "prefix",
        ctl()
            .args(["get", "k", "--prefix"])
            .run()
            .await
            .ok()
            .to_string(),
    );
    run(
        "del",
        ctl().args(["del", "k2"]).run().await.ok().to_string(),
    );
    let grant = ctl()
        .args(["lease", "grant", "100"])
        .run()
        .await
        .ok()
        .to_string();
    let lease = grant
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    run("grant", grant.clone());
    run(
        "put lease",
        ctl()
            .args(["put", "--lease", &lease, "k4", "v4"])
            .run()
            .await
            .ok()
            .to_string(),
    );
    run(
        "keep-alive",
        ctl()
            .args(["lease", "keep-alive", "--once", &lease])
            .run()
            .await
            .ok()
            .to_string(),
    );
    run(
        "ttl",
        ctl()
            .args(["lease", "timetolive", "--keys", &lease])
            .run()
            .await
            .ok()
            .to_string(),
    );
    run(
        "revoke",
        ctl()
            .args(["lease", "revoke", &lease])
            .run()
            .await
            .ok()
            .to_string(),
    );
    run(
        "after revoke",
        ctl().args(["get", "k4"]).run().await.ok().to_string(),
    );
}

/// lock, watch, elect and member list.
async fn coordination_session(ep: &[String], out: &mut String) {
    let ctl = || Etcdctl::v3(ep);
    let mut run = |label: &str, text: String| {
        out.push_str(&format!("== {label}\n{text}"));
    };
    run(
        "lock",
        ctl()
            .args(["lock", "mylock", "echo", "held"])
            .run()
            .await
            .ok()
            .to_string(),
    );
    let mut watch = ctl().args(["watch", "w", "--prefix"]).spawn().await;
    // etcdctl prints nothing when its watch is created: write until an event shows
    // (bounded; each round waits for the event it may have caused).
    let mut n = 0;
    let seen = loop {
        n += 1;
        assert!(n <= 50, "no watch event through the proxy");
        ctl().args(["put", "w1", &format!("x{n}")]).run().await.ok();
        if let Ok(text) = watch
            .wait_for(Duration::from_millis(400), |s| s.contains("PUT"))
            .await
        {
            break text;
        }
    };
    run(
        "watch",
        seen.lines()
            .take(3)
            .map(|l| {
                if l.starts_with('x') {
                    "x\n".to_string()
                } else {
                    format!("{l}\n")
                }
            })
            .collect::<String>(),
    );
    watch.stop().await;
    let mut elect = ctl().args(["elect", "myelection", "p1"]).spawn().await;
    let campaigned = elect
        .wait_for(SETTLE, |s| s.contains("p1"))
        .await
        .expect("elect");
    run("elect", campaigned);
    let observed = ctl().args(["elect", "-l", "myelection"]).spawn().await;
    let mut observed = observed;
    let listened = observed
        .wait_for(SETTLE, |s| s.contains("p1"))
        .await
        .expect("elect -l");
    run("elect -l", listened);
    observed.stop().await;
    elect.stop().await;
    let members = ctl().args(["member", "list"]).run().await.ok().to_string();
    run("member list", members);
}

/// Blanks what differs between runs: the host name, lease IDs, remaining TTLs, ports.
fn normalize_session(out: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    // Lease IDs print in hex without leading zeros (etcdctl's %x), so 15 digits happen too.
    let lease_re = regex::Regex::new(r"\b[0-9a-f]{12,16}\b").unwrap();
    let remaining_re = regex::Regex::new(r"remaining\(\d+s\)").unwrap();
    let port_re = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let out = out.replace(host.trim(), "<host>");
    let out = lease_re.replace_all(&out, "<lease>");
    let out = remaining_re.replace_all(&out, "remaining(<n>s)");
    port_re.replace_all(&out, "127.0.0.1:<port>").into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_through_the_proxy_as_through_etcds() {
    if !common::require_etcdctl() || !common::require_etcd() {
        return;
    }
    let chorus = Cluster::start(ServerKind::Chorus, 1).await;
    let proxy = start_proxy(ProxyKind::Chorus, &chorus, "proxy", &[]).await;
    let ours = etcdctl_session(&proxy).await;
    let etcd = Cluster::start(ServerKind::Etcd, 1).await;
    let etcd_proxy = start_proxy(ProxyKind::Etcd, &etcd, "etcd-proxy", &[]).await;
    let theirs = etcdctl_session(&etcd_proxy).await;
    assert_eq!(
        ours, theirs,
        "chorus's proxy:\n{ours}\netcd's proxy:\n{theirs}"
    );
    assert!(ours.contains("== lock\nheld"), "{ours}");
    eprintln!("{ours}");
}

// -------------------------------------------------------------- Rust client

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_reaches_every_service() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let proxy = start_proxy(ProxyKind::Chorus, &cluster, "proxy", &[]).await;
    let c = proxy.client().await;
    kv_watch_and_lease(&c).await;
    locks_elections_and_the_rest(&c).await;
}

async fn kv_watch_and_lease(c: &Client) {
    c.put("a", "1", PutOptions::default()).await.unwrap();
    let got = c.get("a", GetOptions::default()).await.unwrap();
    assert_eq!(got.kvs[0].value, b"1");
    let txn = chorus_client::Txn::new()
        .when([chorus_client::Cmp::value(
            "a",
            chorus_client::CompareResult::Equal,
            "1",
        )])
        .and_then([chorus_client::Op::put("b", "2", &PutOptions::default())]);
    assert!(c.txn(txn).await.unwrap().succeeded);
    let rev = c
        .get("b", GetOptions::default())
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    c.compact(rev, false).await.unwrap();
    c.delete("b", Default::default()).await.unwrap();
    // Watch
    let mut w = c.watch("wk", WatchOptions::default()).await.unwrap();
    c.put("wk", "x", PutOptions::default()).await.unwrap();
    let ev = w.message().await.unwrap().unwrap();
    assert_eq!(ev.events[0].kv.as_ref().unwrap().value, b"x");
    // Lease
    let lease = c.lease_grant(60, 0).await.unwrap().id;
    c.put(
        "lk",
        "v",
        PutOptions {
            lease,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (ka, mut answers) = c.lease_keep_alive(lease).await.unwrap();
    assert!(answers.message().await.unwrap().unwrap().ttl > 0);
    ka.keep_alive().await.unwrap();
    assert!(answers.message().await.unwrap().unwrap().ttl > 0);
    let ttl = c.lease_time_to_live(lease, true).await.unwrap();
    assert_eq!(ttl.keys, vec![b"lk".to_vec()]);
    assert_eq!(c.leases().await.unwrap().leases.len(), 1);
    c.lease_revoke(lease).await.unwrap();
}

async fn locks_elections_and_the_rest(c: &Client) {
    let lock_lease = c.lease_grant(60, 0).await.unwrap().id;
    let locked = c
        .lock_client()
        .lock(LockRequest {
            name: b"L".to_vec(),
            lease: lock_lease,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(locked.key.starts_with(b"L/"));
    c.lock_client()
        .unlock(UnlockRequest { key: locked.key })
        .await
        .unwrap();
    // Election
    let campaign = c
        .election_client()
        .campaign(CampaignRequest {
            name: b"E".to_vec(),
            lease: lock_lease,
            value: b"me".to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    let leader_key = campaign.leader.unwrap();
    c.election_client()
        .proclaim(ProclaimRequest {
            leader: Some(leader_key.clone()),
            value: b"me2".to_vec(),
        })
        .await
        .unwrap();
    let leader = c
        .election_client()
        .leader(LeaderRequest {
            name: b"E".to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(leader.into_inner().kv.unwrap().value, b"me2");
    let mut observe = c
        .election_client()
        .observe(LeaderRequest {
            name: b"E".to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        observe.next().await.unwrap().unwrap().kv.unwrap().value,
        b"me2"
    );
    c.election_client()
        .resign(ResignRequest {
            leader: Some(leader_key),
        })
        .await
        .unwrap();
    // Cluster, Maintenance, Auth
    let members = c.member_list().await.unwrap();
    assert_eq!(
        members.members[0].client_ur_ls,
        vec![format!("127.0.0.1:23790")]
    );
    assert!(c.status().await.unwrap().header.is_some());
    assert!(c.hash_kv(0).await.is_ok());
    c.maintenance_client()
        .alarm(AlarmRequest::default())
        .await
        .unwrap();
    let mut snapshot = c
        .maintenance_client()
        .snapshot(SnapshotRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!snapshot.next().await.unwrap().unwrap().blob.is_empty());
    let auth = c
        .auth_client()
        .auth_status(AuthStatusRequest {})
        .await
        .unwrap();
    assert!(!auth.into_inner().enabled);
}

// ------------------------------------------------------------------ failover

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_death_of_its_member() {
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let proxy = start_proxy(ProxyKind::Chorus, &cluster, "proxy", &[]).await;
    let c = proxy.client().await;
    c.put("before", "1", PutOptions::default()).await.unwrap();
    let mut w = c
        .watch(
            "fk",
            WatchOptions {
                prefix: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The proxy talks to the first endpoint: kill it.
    cluster.kill9(0);
    cluster.leader().await;
    let put = eventually("a write through the proxy after the kill", || {
        let c = c.clone();
        async move { c.put("fk/after", "2", PutOptions::default()).await.ok() }
    })
    .await;
    assert!(put.header.is_some());
    let got = c.get("before", GetOptions::default()).await.unwrap();
    assert_eq!(got.kvs[0].value, b"1");
    // The proxy resumed its upstream watch on another member: the event arrives.
    let ev = tokio::time::timeout(SETTLE, w.message())
        .await
        .expect("event")
        .unwrap()
        .unwrap();
    assert_eq!(ev.events[0].kv.as_ref().unwrap().key, b"fk/after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_quickly_when_every_member_is_down_then_recovers() {
    let mut cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let proxy = start_proxy(ProxyKind::Chorus, &cluster, "proxy", &[]).await;
    let c = Client::connect(
        &[proxy.url()],
        ConnectOptions {
            request_timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    cluster.kill9(0);
    let err = c.get("k", GetOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Unavailable), "{err}");
    cluster.spawn(0);
    cluster.wait_ready(0).await;
    eventually("reads through the proxy again", || {
        let c = c.clone();
        async move { c.get("k", GetOptions::default()).await.ok() }
    })
    .await;
}

// ------------------------------------------------------------ watch coalescing

/// 100 identical watches through a proxy: how many watchers the member gained.
async fn member_watchers_for_100_watches(kind: ServerKind, proxy_kind: ProxyKind) -> f64 {
    let cluster = Cluster::start(kind, 1).await;
    let proxy = start_proxy(proxy_kind, &cluster, "proxy", &[]).await;
    let name = "etcd_debugging_mvcc_watcher_total";
    // The proxies' own watches come first: chorus's cache invalidation (1), etcd's
    // two "lost leader" watches (watch and lease proxies). Wait until they are there.
    let baseline = if kind == ServerKind::Chorus { 1.0 } else { 2.0 };
    let before = eventually("the proxy's own watches", || async {
        let n = member_metric(&cluster, 0, name).await;
        (n >= baseline).then_some(n)
    })
    .await;
    let c = proxy.client().await;
    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(c.watch("same", WatchOptions::default()).await.unwrap());
    }
    let direct = cluster.member_client(0).await;
    direct
        .put("same", "v", PutOptions::default())
        .await
        .unwrap();
    for s in &mut streams {
        let ev = tokio::time::timeout(SETTLE, s.message())
            .await
            .expect("event")
            .unwrap()
            .unwrap();
        assert_eq!(ev.events.len(), 1);
    }
    let after = member_metric(&cluster, 0, name).await;
    after - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_watcher_for_100_identical_watches() {
    let ours = member_watchers_for_100_watches(ServerKind::Chorus, ProxyKind::Chorus).await;
    assert_eq!(
        ours, 1.0,
        "watchers the member gained for 100 watches through chorus's proxy"
    );
    if common::require_etcd() {
        let theirs = member_watchers_for_100_watches(ServerKind::Etcd, ProxyKind::Etcd).await;
        eprintln!("member watchers for 100 identical watches: chorus proxy {ours}, etcd 3.4 proxy {theirs}");
        assert!(theirs >= ours);
    }
}

// ----------------------------------------------------------------- namespace

/// Writes and reads through a `--namespace=ns1/` proxy; returns what a direct client
/// sees and what the proxy's clients see.
async fn namespace_view(kind: ServerKind, proxy_kind: ProxyKind) -> (Vec<String>, Vec<String>) {
    let cluster = Cluster::start(kind, 1).await;
    let proxy = start_proxy(proxy_kind, &cluster, "proxy", &["--namespace=ns1/"]).await;
    let c = proxy.client().await;
    let direct = cluster.member_client(0).await;
    direct
        .put("outside", "x", PutOptions::default())
        .await
        .unwrap();
    let mut w = c
        .watch(
            "a",
            WatchOptions {
                prev_kv: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    c.put("a", "1", PutOptions::default()).await.unwrap();
    let prev = c
        .put(
            "a",
            "2",
            PutOptions {
                prev_kv: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(prev.prev_kv.unwrap().key, b"a");
    let ev = w.message().await.unwrap().unwrap();
    assert_eq!(ev.events[0].kv.as_ref().unwrap().key, b"a");
    let keys = |r: chorus_client::pb::RangeResponse| {
        r.kvs
            .into_iter()
            .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
            .collect::<Vec<_>>()
    };
    let direct_keys = keys(
        direct
            .get(
                "",
                GetOptions {
                    from_key: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
    );
    let proxy_keys = keys(
        c.get(
            "",
            GetOptions {
                from_key: true,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    (direct_keys, proxy_keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_prefixes_and_strips_like_etcds() {
    let ours = namespace_view(ServerKind::Chorus, ProxyKind::Chorus).await;
    assert_eq!(ours.0, ["ns1/a", "outside"]);
    assert_eq!(ours.1, ["a"]);
    if common::require_etcd() {
        let theirs = namespace_view(ServerKind::Etcd, ProxyKind::Etcd).await;
        assert_eq!(ours, theirs);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_covers_leases_locks_and_serializable_reads() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let proxy = start_proxy(ProxyKind::Chorus, &cluster, "proxy", &["--namespace=app/"]).await;
    let c = proxy.client().await;
    let lease = c.lease_grant(60, 0).await.unwrap().id;
    c.put(
        "k",
        "v",
        PutOptions {
            lease,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        c.lease_time_to_live(lease, true).await.unwrap().keys,
        vec![b"k".to_vec()]
    );
    let locked = c
        .lock_client()
        .lock(LockRequest {
            name: b"L".to_vec(),
            lease,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(locked.key.starts_with(b"L/"), "{:?}", locked.key);
    let direct = cluster.member_client(0).await;
    let held = direct
        .get(
            "app/L/",
            GetOptions {
                prefix: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(held.count, 1, "the lock key lives in the namespace");
    let ser = GetOptions {
        serializable: true,
        ..Default::default()
    };
    assert_eq!(c.get("k", ser.clone()).await.unwrap().kvs[0].key, b"k");
}

// ------------------------------------------------------------ serializable cache

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializable_reads_are_cached_and_invalidated_by_the_watch() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let metrics_port = common::free_low_ports(1)[0];
    let flag = format!("--metrics-addr=127.0.0.1:{metrics_port}");
    let proxy = start_proxy(ProxyKind::Chorus, &cluster, "proxy", &[&flag]).await;
    let c = proxy.client().await;
    let direct = cluster.member_client(0).await;
    direct.put("hot", "1", PutOptions::default()).await.unwrap();
    let ser = GetOptions {
        serializable: true,
        ..Default::default()
    };
    // The first read may land before the invalidation watch is up (then it is not
    // cached); read until one is served from the cache.
    let maddr = format!("127.0.0.1:{metrics_port}");
    eventually("a cache hit", || {
        let (c, ser, maddr) = (c.clone(), ser.clone(), maddr.clone());
        async move {
            c.get("hot", ser).await.unwrap();
            let (_, text) = common::cluster::http_exchange(&maddr, "GET", "/metrics", "").await;
            (metric(&text, "etcd_grpc_proxy_cache_hits_total")? > 0.0).then_some(())
        }
    })
    .await;
    // A write straight to the member, not through the proxy: the watch invalidates.
    direct.put("hot", "2", PutOptions::default()).await.unwrap();
    eventually("the proxy's cache forgetting the old value", || {
        let (c, ser) = (c.clone(), ser.clone());
        async move { (c.get("hot", ser).await.unwrap().kvs[0].value == b"2").then_some(()) }
    })
    .await;
    let (code, health) = common::cluster::http_exchange(&maddr, "GET", "/health", "").await;
    assert_eq!((code, health.as_str()), (200, r#"{"health":"true"}"#));
}

// ------------------------------------------------------------ registration

/// The registration a proxy writes under `/reg`: (key shape, value fields).
async fn registration(kind: ServerKind, proxy_kind: ProxyKind) -> (String, serde_json::Value) {
    let cluster = Cluster::start(kind, 1).await;
    let port = common::free_low_ports(1)[0];
    let adv = format!("--advertise-client-url=127.0.0.1:{port}");
    let mut proxy = start_proxy(
        proxy_kind,
        &cluster,
        "proxy",
        &["--resolver-prefix=/reg", "--resolver-ttl=2", &adv],
    )
    .await;
    let direct = cluster.member_client(0).await;
    let found = eventually("the proxy's registration", || {
        let direct = direct.clone();
        async move {
            let r = direct
                .get(
                    "/reg/",
                    GetOptions {
                        prefix: true,
                        ..Default::default()
                    },
                )
                .await
                .ok()?;
            r.kvs.into_iter().next()
        }
    })
    .await;
    assert_ne!(found.lease, 0, "registered under a lease");
    let key = String::from_utf8_lossy(&found.key).replace(&port.to_string(), "<port>");
    let value: serde_json::Value = serde_json::from_slice(&found.value).unwrap();
    // Through the proxy, the member list names the registered proxies.
    let members = proxy.client().await.member_list().await.unwrap();
    assert_eq!(
        members.members[0].client_ur_ls,
        vec![format!("127.0.0.1:{port}")]
    );
    // A dead proxy's registration goes with its lease.
    proxy.kill9();
    eventually("the registration expiring", || {
        let direct = direct.clone();
        async move {
            let r = direct
                .get(
                    "/reg/",
                    GetOptions {
                        prefix: true,
                        ..Default::default()
                    },
                )
                .await
                .ok()?;
            (r.count == 0).then_some(())
        }
    })
    .await;
    (key, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolver_self_registration_like_etcds() {
    let (key, value) = registration(ServerKind::Chorus, ProxyKind::Chorus).await;
    assert_eq!(key, "/reg/127.0.0.1:<port>");
    assert_eq!(
        value["Addr"].as_str().unwrap().split(':').next(),
        Some("127.0.0.1")
    );
    if common::require_etcd() {
        let (etcd_key, etcd_value) = registration(ServerKind::Etcd, ProxyKind::Etcd).await;
        assert_eq!(key, etcd_key);
        let fields = |v: &serde_json::Value| {
            let mut f: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            f.sort();
            f
        };
        assert_eq!(
            fields(&value),
            fields(&etcd_value),
            "{value} vs {etcd_value}"
        );
        assert_eq!(value["Metadata"], etcd_value["Metadata"]);
    }
}

/// SIGTERM: the proxy revokes its registration lease on the way out, so the record goes
/// at once, not after the TTL (60 s here, longer than the wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_deregisters_at_once() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let flags = ["--resolver-prefix=/reg", "--resolver-ttl=60"];
    let mut proxy = start_proxy(ProxyKind::Chorus, &cluster, "proxy", &flags).await;
    let direct = cluster.member_client(0).await;
    let count = || {
        let direct = direct.clone();
        async move {
            let all = GetOptions {
                prefix: true,
                count_only: true,
                ..Default::default()
            };
            direct.get("/reg/", all).await.unwrap().count
        }
    };
    eventually("registered", || async {
        (count().await == 1).then_some(())
    })
    .await;
    assert_eq!(proxy.terminate().await, Some(0));
    assert_eq!(count().await, 0, "revoked before the proxy exited");
}

// --------------------------------------------------------------- TLS and auth

/// A TLS cluster with client-certificate auth behind a TLS proxy that requires client
/// certificates too: etcdctl talks TLS to the proxy, the proxy TLS to the members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_both_sides() {
    if !common::require_etcdctl() {
        return;
    }
    let pki_dir = tempfile::tempdir().unwrap();
    let (_pki, tls) = common::Pki::for_cluster(pki_dir.path());
    let options = common::ClusterOptions {
        tls: Some(tls.clone()),
        ..Default::default()
    };
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    let mut extra = tls.v3_flags();
    extra.extend([
        format!("--cert-file={}", tls.cert),
        format!("--key-file={}", tls.key),
        format!("--trusted-ca-file={}", tls.ca),
    ]);
    let mut proxy = Proxy::spawn(
        ProxyKind::Chorus,
        cluster.dir(),
        "proxy",
        &cluster.endpoints(),
        &extra,
    );
    let url = format!("https://127.0.0.1:{}", proxy.port);
    let client = Client::connect(std::slice::from_ref(&url), cluster.connect_options())
        .await
        .unwrap();
    proxy.wait_ready_with(client).await;
    let ep = [url];
    let with_tls = |args: &[&str]| {
        Etcdctl::v3(&ep)
            .args(tls.v3_flags())
            .args(args.iter().copied())
    };
    with_tls(&["put", "t", "1"]).run().await.ok();
    let got = with_tls(&["get", "t", "--print-value-only"]).run().await;
    assert_eq!(got.ok(), "1\n");
    // Without a client certificate the proxy refuses the handshake.
    let anonymous = Etcdctl::v3(&ep)
        .args([format!("--cacert={}", tls.ca), "get".into(), "t".into()])
        .timeout(Duration::from_secs(30))
        .run()
        .await;
    assert!(!anonymous.success(), "{anonymous:#?}");
}

/// Tokens travel through the proxy: etcdctl authenticates through it and its calls
/// carry the token; without it the member refuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_tokens_are_forwarded() {
    if !common::require_etcdctl() {
        return;
    }
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let proxy = start_proxy(ProxyKind::Chorus, &cluster, "proxy", &[]).await;
    let ep = [proxy.url()];
    let ctl = || Etcdctl::v3(&ep);
    ctl()
        .args(["user", "add", "root", "--new-user-password=pw"])
        .run()
        .await
        .ok();
    ctl().args(["auth", "enable"]).run().await.ok();
    ctl()
        .args(["--user=root:pw", "put", "secret", "1"])
        .run()
        .await
        .ok();
    let got = ctl()
        .args(["--user=root:pw", "get", "secret", "--print-value-only"])
        .run()
        .await;
    assert_eq!(got.ok(), "1\n");
    let mut watch = ctl()
        .args(["--user=root:pw", "watch", "secret"])
        .spawn()
        .await;
    let refused = ctl().args(["get", "secret"]).run().await;
    assert!(!refused.success(), "{refused:#?}");
    assert!(
        refused.stderr.contains("user name is empty"),
        "{refused:#?}"
    );
    // A watch with a token gets events; the permission check ran with that token.
    let mut n = 0;
    loop {
        n += 1;
        assert!(n <= 50, "no event for the authenticated watch");
        ctl()
            .args(["--user=root:pw", "put", "secret", &format!("v{n}")])
            .run()
            .await
            .ok();
        if watch
            .wait_for(Duration::from_millis(400), |s| s.contains("PUT"))
            .await
            .is_ok()
        {
            break;
        }
    }
    watch.stop().await;
}

// ------------------------------------------------------------------- gateway

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_splices_round_robin_and_skips_dead_members() {
    if !common::require_etcdctl() {
        return;
    }
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let gw = start_proxy(
        ProxyKind::ChorusGateway,
        &cluster,
        "gateway",
        &["--retry-delay=1s"],
    )
    .await;
    let ep = [gw.addr()];
    Etcdctl::v3(&ep).args(["put", "g", "1"]).run().await.ok();
    cluster.kill9(0);
    cluster.leader().await;
    for _ in 0..6 {
        let got = Etcdctl::v3(&ep)
            .args(["get", "g", "--print-value-only"])
            .run()
            .await;
        assert_eq!(got.ok(), "1\n");
    }
}

// ----------------------------------------------------------------------- DNS

async fn dig(port: u16, args: &[&str]) -> String {
    let out = tokio::process::Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=2", "+tries=2"])
        .args(args)
        .output()
        .await
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn dns_proxy(cluster: &Cluster) -> (Proxy, u16) {
    let port = common::free_low_ports(1)[0];
    let listen = format!("--dns-listen-addr=127.0.0.1:{port}");
    let p = start_proxy(
        ProxyKind::Chorus,
        cluster,
        "proxy",
        &[&listen, "--dns-domain=chorus.local"],
    )
    .await;
    (p, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_resolves_leased_registrations_and_forgets_revoked_ones() {
    if !common::require_dig() {
        return;
    }
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let (proxy, port) = dns_proxy(&cluster).await;
    let c = proxy.client().await;
    let lease = c.lease_grant(30, 0).await.unwrap().id;
    let with = PutOptions {
        lease,
        ..Default::default()
    };
    let x1 =
        r#"{"host":"10.0.0.1","port":8080,"priority":10,"weight":10,"ttl":30,"text":"v1 web"}"#;
    c.put("/skydns/local/chorus/web/x1", x1, with.clone())
        .await
        .unwrap();
    c.put(
        "/skydns/local/chorus/web/x2",
        r#"{"host":"10.0.0.2","port":8081}"#,
        with,
    )
    .await
    .unwrap();
    c.put(
        "/skydns/local/chorus/web/broken",
        "{not json",
        PutOptions::default(),
    )
    .await
    .unwrap();
    let a = eventually("A records", || async {
        let out = dig(port, &["+short", "web.chorus.local", "A"]).await;
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        lines.sort();
        (lines.len() == 2).then_some(lines)
    })
    .await;
    assert_eq!(a, ["10.0.0.1", "10.0.0.2"]);
    let srv = dig(port, &["+short", "web.chorus.local", "SRV"]).await;
    let mut srv: Vec<&str> = srv.lines().collect();
    srv.sort();
    // CoreDNS shares 100 out per priority: x1 has weight 10 of 110, x2 (none: 100) 100.
    assert_eq!(
        srv,
        [
            "10 9 8080 x1.web.chorus.local.",
            "10 90 8081 x2.web.chorus.local."
        ]
    );
    let txt = dig(port, &["+short", "x1.web.chorus.local", "TXT"]).await;
    assert_eq!(txt.trim(), "\"v1 web\"");
    let tcp = dig(port, &["+tcp", "+short", "x2.web.chorus.local", "A"]).await;
    assert_eq!(tcp.trim(), "10.0.0.2");
    let nodata = dig(port, &["x2.web.chorus.local", "AAAA"]).await;
    assert!(
        nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0"),
        "{nodata}"
    );
    c.lease_revoke(lease).await.unwrap();
    eventually("revoked records gone", || async {
        let out = dig(port, &["web.chorus.local", "A"]).await;
        out.contains("status: NXDOMAIN").then_some(())
    })
    .await;
    let soa = dig(port, &["nothing.chorus.local", "A"]).await;
    assert!(
        soa.contains("status: NXDOMAIN") && soa.contains("SOA"),
        "{soa}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_dns_packets_get_formerr_or_nothing() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let (_proxy, port) = dns_proxy(&cluster).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(("127.0.0.1", port)).await.unwrap();
    // Too short to carry an ID: dropped. Then garbage after a valid header: FORMERR.
    sock.send(b"\x01\x02\x03").await.unwrap();
    let mut garbage = vec![0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    garbage.extend_from_slice(&[0xff; 40]);
    sock.send(&garbage).await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(SETTLE, sock.recv(&mut buf))
        .await
        .expect("a reply")
        .unwrap();
    assert!(n >= 12);
    assert_eq!(
        &buf[..2],
        &[0xab, 0xcd],
        "the first reply answers the garbage, not the runt"
    );
    assert_eq!(buf[3] & 0x0f, 1, "FORMERR");
    // Over TCP too, in a length frame.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut framed = (garbage.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&garbage);
    tcp.write_all(&framed).await.unwrap();
    let mut len = [0u8; 2];
    tokio::time::timeout(SETTLE, tcp.read_exact(&mut len))
        .await
        .expect("reply")
        .unwrap();
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    tcp.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[3] & 0x0f, 1, "FORMERR over TCP");
    if !common::require_dig() {
        return;
    }
    // An answer too large for UDP is truncated; dig then retries over TCP.
    let c = cluster.member_client(0).await;
    for i in 0..30 {
        let v = format!(r#"{{"host":"10.9.0.{i}","text":"{}"}}"#, "t".repeat(200));
        c.put(
            format!("/skydns/local/chorus/big/x{i}"),
            v,
            PutOptions::default(),
        )
        .await
        .unwrap();
    }
    let udp = eventually("a truncated UDP answer", || async {
        let out = dig(port, &["+ignore", "+noedns", "big.chorus.local", "TXT"]).await;
        out.contains(" tc").then_some(out)
    })
    .await;
    assert!(udp.contains("ANSWER: 0"), "{udp}");
    let full = dig(port, &["+short", "big.chorus.local", "TXT"]).await;
    assert_eq!(full.lines().count(), 30);
}

// --------------------------------------------------------------- the recipe

/// The ```bash blocks of docs/recipes.md (section 1b), in order.
fn recipe_blocks() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/recipes.md");
    let guide = std::fs::read_to_string(path).expect("docs/recipes.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in guide.lines() {
        match (&mut current, line) {
            (None, "```bash") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// docs/recipes.md's "a proxy on every machine": each block under `bash -eu` with the
/// real etcdctl and dig, against a 3-member cluster and a proxy as the doc starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipe_proxy_on_every_machine() {
    if !common::require_etcdctl() || !common::require_dig() {
        return;
    }
    let blocks = recipe_blocks();
    assert!(blocks.len() >= 4, "only {} bash blocks", blocks.len());
    let cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let ports = common::free_low_ports(2);
    let (proxy_port, dns_port) = (ports[0], ports[1]);
    let extra = [
        format!("--advertise-client-url=127.0.0.1:{proxy_port}"),
        "--resolver-prefix=/chorus/proxies".to_string(),
        "--resolver-ttl=10".to_string(),
        format!("--dns-listen-addr=127.0.0.1:{dns_port}"),
        "--dns-domain=chorus.local".to_string(),
    ];
    // The doc's unit, on the ports chosen here.
    let mut proxy = Proxy::spawn_on(
        ProxyKind::Chorus,
        cluster.dir(),
        "proxy",
        &cluster.endpoints(),
        &extra,
        proxy_port,
    );
    proxy.wait_ready().await;
    let work = tempfile::tempdir().unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let mut cmd = tokio::process::Command::new("bash");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCDCTL_") {
                cmd.env_remove(name);
            }
        }
        cmd.args(["-eu", "-c", block])
            .current_dir(work.path())
            .env("ETCDCTL_API", "3")
            .env("PROXY", proxy.addr())
            .env("DNS_PORT", dns_port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().unwrap();
        let group = child.id().unwrap() as i32;
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await;
        // SAFETY: kill(2) on the process group this test created for the block; the
        // lease keep-alive it started in the background goes with it.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let out = out
            .unwrap_or_else(|_| panic!("recipe block {i} ran over 60 s:\n{block}"))
            .unwrap();
        assert!(
            out.status.success(),
            "recipe block {i} failed ({}):\n{block}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `--dns-listen-addr` on a member: the member answers DNS from its own keys, following
/// them as they change; a bad address is refused at start-up with the flag's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_serves_dns_from_its_own_keys() {
    if !common::require_dig() {
        return;
    }
    let port = common::free_low_ports(1)[0];
    let options = ClusterOptions {
        extra_args: vec![
            format!("--dns-listen-addr=127.0.0.1:{port}"),
            "--dns-domain=chorus.local".into(),
        ],
        ..Default::default()
    };
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    let c = cluster.client().await;
    let value = r#"{"host":"10.0.0.7","port":8080}"#;
    c.put("/skydns/local/chorus/db/m1", value, PutOptions::default())
        .await
        .unwrap();
    let a = eventually("the member's A record", || async {
        let out = dig(port, &["+short", "db.chorus.local", "A"]).await;
        (out.trim() == "10.0.0.7").then_some(())
    });
    a.await;
    c.delete("/skydns/local/chorus/db/m1", Default::default())
        .await
        .unwrap();
    eventually("the deleted record gone", || async {
        let out = dig(port, &["db.chorus.local", "A"]).await;
        out.contains("status: NXDOMAIN").then_some(())
    })
    .await;

    let mut bad = Cluster::create(
        ServerKind::Chorus,
        1,
        ClusterOptions {
            extra_args: vec!["--dns-listen-addr=localhost".into()],
            ..Default::default()
        },
    );
    bad.spawn(0);
    assert!(!bad.wait_exit(0).await.success());
    let log = bad.log(0);
    assert!(
        log.contains(r#"--dns-listen-addr "localhost" must be \"ip:port\""#)
            || log.contains(r#"--dns-listen-addr "localhost" must be "ip:port""#),
        "{log}"
    );
}
