//! etcd 3.6's tuning flags, each seen doing what it says on a running member:
//! `--max-learners`, `--bootstrap-defrag-threshold-megabytes`, `--memory-mlock`,
//! `--warning-unary-request-duration`, and the peer timeouts `--raft-read-timeout` /
//! `--raft-write-timeout` on a 3-member cluster. (etcd 3.5.1 has none of the first four
//! under these names; the learner limit's default is compared with etcd in
//! tests/membership.rs.)

use crate::common;

use chorus_client::{Client, PutOptions};
use common::{Cluster, ClusterOptions, Etcdctl, ServerKind};

fn with_args(args: &[&str]) -> ClusterOptions {
    ClusterOptions {
        extra_args: args.iter().map(|a| a.to_string()).collect(),
        ..ClusterOptions::default()
    }
}

async fn add_learner(endpoints: &[String], name: &str, port: u16) -> common::Output {
    Etcdctl::v3(endpoints)
        .args([
            "member".to_string(),
            "add".to_string(),
            name.to_string(),
            "--learner".to_string(),
            format!("--peer-urls=http://127.0.0.1:{port}"),
        ])
        .run()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn max_learners_sets_how_many_learners_the_cluster_may_hold() {
    if !common::require_etcdctl() {
        return;
    }
    let cluster =
        Cluster::start_with(ServerKind::Chorus, 1, with_args(&["--max-learners=2"])).await;
    let eps = cluster.endpoints();
    let ports = common::free_ports(3);
    add_learner(&eps, "l1", ports[0]).await.ok();
    add_learner(&eps, "l2", ports[1]).await.ok();
    let third = add_learner(&eps, "l3", ports[2]).await;
    assert!(
        third
            .stderr
            .contains("etcdserver: too many learner members in cluster"),
        "{}",
        third.stderr
    );
}

async fn db_size(cluster: &Cluster) -> i64 {
    cluster.status(0).await.expect("status").db_size
}

/// Fills the backend with `n` values of 64 KiB, deletes them and compacts, so most of
/// the file is free pages.
async fn fill_and_free(c: &Client, n: usize) {
    let value = vec![b'x'; 64 * 1024];
    for i in 0..n {
        c.put(format!("big/{i:04}"), value.clone(), PutOptions::default())
            .await
            .expect("put");
    }
    let deleted = c
        .delete(
            "big/",
            chorus_client::DeleteOptions {
                prefix: true,
                ..Default::default()
            },
        )
        .await
        .expect("delete");
    let rev = deleted.header.expect("header").revision;
    c.compact(rev, true).await.expect("compact");
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_defrag_threshold_defragments_a_fragmented_backend_at_start() {
    let mut cluster = Cluster::start(ServerKind::Chorus, 1).await;
    fill_and_free(&cluster.client().await, 64).await;
    let before = db_size(&cluster).await;
    assert!(before > 4 << 20, "the backend holds the values: {before}");
    // Below the threshold: left alone.
    cluster.stop(0).await;
    cluster
        .member_mut(0)
        .args
        .push("--bootstrap-defrag-threshold-megabytes=1000".into());
    cluster.spawn(0);
    cluster.wait_ready(0).await;
    assert!(cluster.log(0).contains("Skipping defragmentation"));
    // (The file's allocated size may move at a restart; the free pages stay.)
    let skipped = db_size(&cluster).await;
    // At or above it: defragmented before serving.
    cluster.stop(0).await;
    let args = &mut cluster.member_mut(0).args;
    args.retain(|a| !a.starts_with("--bootstrap-defrag"));
    args.push("--bootstrap-defrag-threshold-megabytes=1".into());
    cluster.spawn(0);
    cluster.wait_ready(0).await;
    let after = db_size(&cluster).await;
    assert!(
        after < skipped / 2,
        "db size {before}, {skipped} after the skipping start, {after} after the defragmenting one"
    );
}

/// The `VmLck` line of /proc/<pid>/status, in kB.
fn locked_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmLck:"))
        .expect("VmLck line");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmLck value")
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_mlock_locks_the_members_memory() {
    let plain = Cluster::start(ServerKind::Chorus, 1).await;
    assert_eq!(locked_kb(plain.pids()[0]), 0);
    if !may_lock_everything() {
        // Without CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK the member must refuse to
        // start, saying why, rather than run unlocked.
        let mut refused = Cluster::create(ServerKind::Chorus, 1, with_args(&["--memory-mlock"]));
        refused.spawn(0);
        assert!(!refused.wait_exit(0).await.success());
        let log = refused.log(0);
        assert!(
            log.contains("--memory-mlock: cannot lock the process's memory"),
            "{log}"
        );
        return;
    }
    let locked = Cluster::start_with(ServerKind::Chorus, 1, with_args(&["--memory-mlock"])).await;
    let kb = locked_kb(locked.pids()[0]);
    assert!(kb > 1024, "VmLck {kb} kB");
}

/// Whether a process of ours may lock all its memory: root, or no RLIMIT_MEMLOCK limit.
fn may_lock_everything() -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; geteuid has no arguments.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
    let root = unsafe { libc::geteuid() } == 0;
    root || (ok && limit.rlim_cur == libc::RLIM_INFINITY)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_reads_are_logged_with_etcds_message() {
    let args = ["--warning-unary-request-duration=1ns"];
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, with_args(&args)).await;
    let c = cluster.client().await;
    c.put("k", "v", PutOptions::default()).await.expect("put");
    c.get("k", Default::default()).await.expect("get");
    let log = cluster.log(0);
    let line = log
        .lines()
        .find(|l| l.contains("apply request took too long") && l.contains("read-only range "))
        .unwrap_or_else(|| panic!("no slow-read line in:\n{log}"));
    assert!(line.contains("range_response_count:1"), "{line}");
    assert!(line.contains("\"expected-duration\":\"1ns\""), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn peer_timeouts_are_accepted_and_the_cluster_serves() {
    let args = ["--raft-read-timeout=7s", "--raft-write-timeout=9s"];
    let cluster = Cluster::start_with(ServerKind::Chorus, 3, with_args(&args)).await;
    let c = cluster.client().await;
    c.put("k", "v", PutOptions::default()).await.expect("put");
    for i in 0..3 {
        let status = cluster.status(i).await.expect("status");
        assert_ne!(status.leader, 0, "member {i} knows the leader");
    }
}
