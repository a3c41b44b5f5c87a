//! A member whose disk fails under it. Its data directory is served through
//! crates/robustness/faultfs.py, a FUSE layer that fails one kind of I/O call, so the
//! error comes from the kernel through the same calls a bad disk would fail (the
//! robustness suite's `fs-*` scenarios do the same under traffic on three members).
//! fsyncgate's rule: the member stops by itself, acknowledges nothing it could not make
//! durable, and, restarted on a healthy disk, has every acknowledged write.

use chorus_client::{GetOptions, PutOptions};
use chorus_robustness::faultfs::{FsFault, Mount};

use crate::common;
use crate::common::cluster::{Cluster, ServerKind};

/// A fault of `op` on the files matching `path`, failing with `errno`.
fn fault(op: &'static str, path: &'static str, errno: &'static str) -> FsFault {
    FsFault {
        name: "test",
        op,
        path,
        errno,
        max_after: 0,
    }
}

/// Starts a one-member chorus on faultfs failing `fault`, puts until a put fails, and
/// returns the cluster (the member exited), the acknowledged keys, the failed put's
/// error and faultfs (still mounted).
async fn run_until_the_disk_fails(
    fault: FsFault,
    after: u32,
) -> (Cluster, Vec<String>, String, Mount) {
    // The member's files are made on the plain disk (a new WAL writes its zeros ahead
    // of the log end, whose writes would count), then served through faultfs.
    let mut c = Cluster::start(ServerKind::Chorus, 1).await;
    c.stop(0).await;
    let data = c.member(0).data_dir.clone();
    // Armed once the member is up: a restart's own writes (zeros ahead of the log end)
    // are not what is under test.
    let arm = c.dir().join("arm");
    let log = c.dir().join("faultfs.log");
    let fs = Mount::over(&data, &fault, after, Some(&arm), &log)
        .await
        .expect("mount faultfs");
    c.spawn(0);
    c.wait_ready(0).await;
    std::fs::write(&arm, b"").unwrap();
    let client = c.client().await;
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..500 {
        let key = format!("k{i:03}");
        match client.put(key.as_str(), "v", PutOptions::default()).await {
            Ok(_) => acked.push(key),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let failure = failure.expect("500 puts and the disk fault never struck");
    let status = c.wait_exit(0).await;
    assert_eq!(status.code(), Some(1), "{}", c.log(0));
    (c, acked, failure, fs)
}

/// Unmounts faultfs, puts the files back under the member's data directory, restarts
/// the member there and checks that every acknowledged key is in it.
async fn restart_on_a_healthy_disk(mut c: Cluster, acked: &[String], fs: Mount) {
    fs.remove().await.expect("unmount faultfs");
    c.spawn(0);
    c.wait_ready(0).await;
    let client = c.client().await;
    let options = GetOptions {
        prefix: true,
        keys_only: true,
        ..Default::default()
    };
    let all = client.get("k", options).await.unwrap();
    let present: Vec<String> = all
        .kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|k| !present.contains(k)).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
}

/// A WAL whose `op` fails with `errno`: the put waiting on it hears at once that the
/// server stopped (not a broken connection at the end of the drain), the log names the
/// segment and the error, and a restart on a healthy disk has every acknowledged put.
async fn wal_fault(op: &'static str, errno: &'static str, after: u32, logged: &str) {
    let fault = fault(op, "member/wal/*.wal", errno);
    let (c, acked, failure, fs) = run_until_the_disk_fails(fault, after).await;
    assert!(failure.contains("etcdserver: server stopped"), "{failure}");
    let log = c.log(0);
    let segment = format!("member/wal/0000000000000000-0000000000000000.wal: {logged}");
    assert!(log.contains(&segment), "{log}");
    assert!(!log.contains("permanently removed"), "{log}");
    restart_on_a_healthy_disk(c, &acked, fs).await;
}

#[tokio::test]
async fn a_failed_wal_sync_stops_the_member_and_loses_nothing_acknowledged() {
    if common::require_faultfs() {
        wal_fault("fsync", "EIO", 20, "Input/output error").await;
    }
}

#[tokio::test]
async fn a_full_disk_under_the_wal_stops_the_member_and_loses_nothing_acknowledged() {
    if common::require_faultfs() {
        wal_fault("write", "ENOSPC", 20, "No space left on device").await;
    }
}

#[tokio::test]
async fn a_failed_backend_write_stops_the_member_and_loses_nothing_acknowledged() {
    if !common::require_faultfs() {
        return;
    }
    // Past start-up's writes: the failure comes while applying puts.
    let fault = fault("write", "member/snap/db", "EIO");
    let (c, acked, _failure, fs) = run_until_the_disk_fails(fault, 30).await;
    let log = c.log(0);
    assert!(
        log.contains("apply failed on") && log.contains("member/snap/db: backend:"),
        "{log}"
    );
    restart_on_a_healthy_disk(c, &acked, fs).await;
}
