//! The cluster version, set through raft as etcd sets it: the leader decides it once every
//! member reported its version, every member applies it (backend, v2 `/0/version`,
//! `/version`, Status, `etcd_cluster_version`), a restart keeps it, and
//! `--next-cluster-version-compatible` lets a member run one minor below it.
//!
//! ```text
//!   chorus ×3  ─┬─ /version, Status, etcdctl 3.5.1 endpoint status, /metrics ─┬─ same answers
//!   etcd 3.5.1 ×3 ┘                                                           ┘
//!   chorus ×3  ─┬─ v2 index after bootstrap, after a write, after a restart ─┬─ same indexes
//!   etcd 3.4 ×3 ─┘   (--enable-v2=true)                                      ┘
//!   chorus ×1: cluster version rewritten to 3.6.0 on disk ─ start: refused;
//!              with --next-cluster-version-compatible: runs, the leader lowers it to 3.5
//! ```
//! Under `CI=true` a missing etcd 3.4, etcd 3.5.1 or etcdctl 3.5.1 fails the tests.

use crate::common;

use std::time::{Duration, Instant};

use common::http::{self, HttpRequest};
use common::{Cluster, ClusterOptions, Etcdctl, ServerKind};

const MEMBERS: usize = 3;
/// etcd's v2 index after a bootstrap: per member its raft and published attributes,
/// then the cluster version.
const BOOTSTRAP_INDEX: u64 = 2 * MEMBERS as u64 + 1;
const POLL: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(30);

/// The v2 index through member `i` after a quorum read (it applied every write so far).
async fn v2_index(cluster: &Cluster, i: usize) -> u64 {
    let req = HttpRequest::new("GET", "/v2/keys/?quorum=true");
    let r = http::send(&cluster.client_addr(i), &req).await;
    assert_eq!(r.status, 200, "quorum read on m{i}: {r:#?}");
    r.etcd_index()
}

/// Waits (bounded) until every member's v2 index is `expected`; one past it fails.
async fn settle(cluster: &Cluster, expected: u64) {
    let deadline = Instant::now() + DEADLINE;
    for i in 0..cluster.len() {
        loop {
            let index = v2_index(cluster, i).await;
            if index == expected {
                break;
            }
            assert!(
                index < expected && Instant::now() < deadline,
                "{:?} m{i}: v2 index {index}, expected {expected}; logs:\n{}",
                cluster.kind,
                cluster.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

/// A v2 set through member `i`; its modified index.
async fn v2_set(cluster: &Cluster, i: usize, key: &str) -> u64 {
    let req = HttpRequest::new("PUT", &format!("/v2/keys/{key}")).form("value=v");
    let r = http::send(&cluster.client_addr(i), &req).await;
    assert!(r.status == 200 || r.status == 201, "set {key}: {r:#?}");
    r.json()["node"]["modifiedIndex"]
        .as_u64()
        .expect("modifiedIndex")
}

async fn version_body(cluster: &Cluster, i: usize) -> String {
    let (status, body) = cluster.http_get(i, "/version").await;
    assert_eq!(status, 200, "/version on m{i}");
    body
}

/// The `etcd_cluster_version` series of member `i`'s `/metrics`.
async fn cluster_version_series(cluster: &Cluster, i: usize) -> Vec<String> {
    let (_, text) = cluster.http_get(i, "/metrics").await;
    text.lines()
        .filter(|l| l.starts_with("etcd_cluster_version{"))
        .map(str::to_owned)
        .collect()
}

/// chorus and etcd 3.5.1 report the same versions everywhere a client reads them.
#[tokio::test]
async fn cluster_version_is_reported_as_etcd_35_reports_it() {
    if !common::require_etcd35() || !common::require_etcdctl35() {
        return;
    }
    let (chorus, etcd) = tokio::join!(
        Cluster::start(ServerKind::Chorus, MEMBERS),
        Cluster::start(ServerKind::Etcd35, MEMBERS)
    );
    for cluster in [&chorus, &etcd] {
        for i in 0..MEMBERS {
            assert_eq!(cluster.wait_cluster_version(i).await, "3.5.0");
        }
    }
    let want = r#"{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}"#;
    for cluster in [&chorus, &etcd] {
        for i in 0..MEMBERS {
            assert_eq!(
                version_body(cluster, i).await,
                want,
                "{:?} m{i}",
                cluster.kind
            );
            let series = cluster_version_series(cluster, i).await;
            assert_eq!(series, [r#"etcd_cluster_version{cluster_version="3.5"} 1"#]);
            let status = cluster.status(i).await.expect("status");
            assert_eq!(status.version, "3.5.1");
        }
        let out = Etcdctl::v3(&cluster.endpoints())
            .binary(common::etcdctl35_binary().expect("etcdctl 3.5.1"))
            .args(["endpoint", "status", "-w", "json"])
            .run()
            .await;
        let statuses: serde_json::Value = serde_json::from_str(out.ok()).expect("json");
        let versions: Vec<&str> = statuses
            .as_array()
            .expect("one status per endpoint")
            .iter()
            .map(|s| s["Status"]["version"].as_str().expect("version"))
            .collect();
        assert_eq!(versions, ["3.5.1"; MEMBERS], "{:?}", cluster.kind);
    }
    // etcd 3.6's Status field, which etcd 3.5.1 leaves empty.
    let status = chorus.status(0).await.expect("status");
    assert_eq!(status.storage_version, "3.5.0");
}

/// The v2 index counts the cluster version as etcd 3.4 counts it: 2n+1 after a
/// bootstrap; a restart publishes the member again and keeps the version.
#[tokio::test]
async fn v2_index_counts_the_cluster_version_as_etcd_34() {
    if !common::require_etcd34() {
        return;
    }
    let v2 = ClusterOptions {
        extra_args: vec!["--enable-v2=true".into()],
        ..ClusterOptions::default()
    };
    let (mut chorus, mut etcd) = tokio::join!(
        Cluster::start(ServerKind::Chorus, MEMBERS),
        Cluster::start_with(ServerKind::Etcd34, MEMBERS, v2)
    );
    tokio::join!(
        settle(&chorus, BOOTSTRAP_INDEX),
        settle(&etcd, BOOTSTRAP_INDEX)
    );
    let (c, e) = tokio::join!(v2_set(&chorus, 0, "k"), v2_set(&etcd, 0, "k"));
    assert_eq!((c, e), (BOOTSTRAP_INDEX + 1, BOOTSTRAP_INDEX + 1));
    tokio::join!(chorus.restart(1), etcd.restart(1));
    // The restarted member knows the version from its own data before any leader acts.
    let body = version_body(&chorus, 1).await;
    assert_eq!(body, r#"{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}"#);
    // It published itself again (one index), and no one set the version again.
    tokio::join!(
        settle(&chorus, BOOTSTRAP_INDEX + 2),
        settle(&etcd, BOOTSTRAP_INDEX + 2)
    );
    let (c, e) = tokio::join!(v2_set(&chorus, 2, "k2"), v2_set(&etcd, 2, "k2"));
    assert_eq!((c, e), (BOOTSTRAP_INDEX + 3, BOOTSTRAP_INDEX + 3));
    assert!(chorus.log(0).contains("enabled capabilities for version"));
}

/// Rewrites the cluster version a stopped chorus member keeps in its backend.
fn rewrite_cluster_version(cluster: &Cluster, i: usize, version: &str) {
    let db = cluster.member(i).data_dir.join("member/snap/db");
    let opts = chorus_storage::backend::BackendOptions::default();
    let backend = chorus_storage::backend::Backend::open(&db, &opts).expect("open backend");
    let tx = backend.begin_durable_write().expect("write");
    chorus_storage::members::set_cluster_version(&tx, version).expect("set");
    tx.commit().expect("commit");
}

/// Waits (bounded) until member `i` reports cluster version `want`.
async fn wait_version(cluster: &Cluster, i: usize, want: &str) {
    let deadline = Instant::now() + DEADLINE;
    let want = format!(r#"{{"etcdserver":"3.5.1","etcdcluster":"{want}"}}"#);
    loop {
        let body = version_body(cluster, i).await;
        if body == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "m{i}: /version {body}, waiting for {want}; log:\n{}",
            cluster.log(i)
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A member at 3.5 refuses a cluster version of 3.6 unless started with
/// `--next-cluster-version-compatible`; then it runs, and as leader it lowers the
/// version to what every member runs (a valid one-minor downgrade).
#[tokio::test]
async fn next_cluster_version_compatible_runs_one_minor_below() {
    let mut cluster = Cluster::start(ServerKind::Chorus, 1).await;
    assert_eq!(cluster.wait_cluster_version(0).await, "3.5.0");
    cluster.stop(0).await;
    rewrite_cluster_version(&cluster, 0, "3.6.0");
    cluster.spawn(0);
    let status = cluster.wait_exit(0).await;
    assert!(
        !status.success(),
        "started at cluster version 3.6: {status}"
    );
    let refused = "invalid downgrade; server version is lower than determined cluster version";
    assert!(cluster.log(0).contains(refused), "{}", cluster.log(0));

    cluster
        .member_mut(0)
        .args
        .push("--next-cluster-version-compatible".into());
    cluster.spawn(0);
    cluster.wait_ready(0).await;
    wait_version(&cluster, 0, "3.5.0").await;
    assert!(cluster.log(0).contains("updated cluster version"));
    let series = cluster_version_series(&cluster, 0).await;
    assert_eq!(series, [r#"etcd_cluster_version{cluster_version="3.5"} 1"#]);
}
