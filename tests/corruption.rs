//! Corruption checks, as etcd 3.5 runs them: one member's backend is changed on disk
//! while it is stopped (every value rewritten, revisions kept), then
//!
//! - `--experimental-initial-corrupt-check` refuses to start it: "<id> found data
//!   inconsistency with peers" (an intact member with the flag starts);
//! - `--experimental-corrupt-check-time` makes the leader raise CORRUPT, after which
//!   every write fails with `etcdserver: corrupt cluster` and reads still work;
//! - `--experimental-compact-hash-check-enabled` compares the hashes the members record
//!   while compacting, and raises CORRUPT too.
//!
//! The alarm and the refused write are read with the real etcdctl 3.5.1.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use chorus_api::mvccpb::KeyValue;
use chorus_client::PutOptions;
use common::{Cluster, ClusterOptions, Etcdctl, ServerKind};
use prost::Message as _;
use redb::{ReadableDatabase as _, ReadableTable as _};

const KEYS: usize = 20;

/// Rewrites every value in the backend's key table (`<data-dir>/member/snap/db`) and
/// returns how many were changed. The member must be stopped.
fn corrupt_backend(data_dir: &Path) -> usize {
    let path = data_dir.join("member/snap/db");
    let db = redb::Database::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows: Vec<((i64, i64), Vec<u8>)> = {
        let tx = db.begin_read().unwrap();
        let table = tx.open_table(chorus_storage::backend::KV).unwrap();
        table
            .iter()
            .unwrap()
            .map(|row| {
                let (k, v) = row.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect()
    };
    let mut tx = db.begin_write().unwrap();
    tx.set_durability(redb::Durability::Immediate).unwrap();
    let mut changed = 0;
    {
        let mut table = tx.open_table(chorus_storage::backend::KV).unwrap();
        for (rev, bytes) in rows {
            let mut kv = KeyValue::decode(bytes.as_slice()).unwrap();
            if kv.create_revision == 0 {
                continue; // a deletion's tombstone
            }
            kv.value.extend_from_slice(b"-corrupted");
            table.insert(rev, kv.encode_to_vec().as_slice()).unwrap();
            changed += 1;
        }
    }
    tx.commit().unwrap();
    changed
}

/// Writes `KEYS` keys and waits until every member has applied them; returns the
/// revision of the last write.
async fn write_keys(cluster: &Cluster) -> i64 {
    let client = cluster.client().await;
    let mut rev = 0;
    for i in 0..KEYS {
        let resp = client
            .put(format!("/k/{i}"), format!("v{i}"), PutOptions::default())
            .await
            .unwrap();
        rev = resp.header.unwrap().revision;
    }
    for i in 0..cluster.len() {
        let member = cluster.member_client(i).await;
        wait_for(&format!("member {i} at revision {rev}"), || async {
            member
                .hash_kv(0)
                .await
                .ok()
                .and_then(|h| h.header)
                .is_some_and(|h| h.revision >= rev)
        })
        .await;
    }
    rev
}

/// Stops member `i`, rewrites its values and starts it again with `flags` added.
async fn corrupt_member(cluster: &mut Cluster, i: usize, flags: &[&str]) {
    cluster.stop(i).await;
    let changed = corrupt_backend(&cluster.member(i).data_dir);
    assert!(changed >= KEYS, "only {changed} values rewritten");
    let args = &mut cluster.member_mut(i).args;
    args.extend(flags.iter().map(|f| f.to_string()));
    cluster.spawn(i);
}

/// Polls `done` every 100 ms for up to 30 s.
async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn etcdctl35(cluster: &Cluster) -> Etcdctl {
    Etcdctl::v3(&cluster.endpoints()).binary(common::etcdctl35_binary().unwrap())
}

/// Waits for CORRUPT in `etcdctl alarm list`, then checks that writes are refused with
/// etcd's error and reads are served.
async fn expect_corrupt_alarm(cluster: &Cluster) {
    wait_for("the CORRUPT alarm", || async {
        let out = etcdctl35(cluster).args(["alarm", "list"]).run().await;
        out.ok().contains("alarm:CORRUPT")
    })
    .await;
    let out = etcdctl35(cluster).args(["alarm", "list"]).run().await;
    // etcdctl prints the alarm as protobuf text, which leaves out memberID 0.
    assert_eq!(out.ok().trim(), "alarm:CORRUPT");
    let put = etcdctl35(cluster)
        .args(["put", "/k/0", "again"])
        .run()
        .await;
    assert!(!put.success(), "{put:?}");
    assert!(
        put.stderr.contains("Error: etcdserver: corrupt cluster"),
        "{}",
        put.stderr
    );
    // Reads are served (through an intact member: member 2 serves its rewritten values).
    let get = Etcdctl::v3(&[cluster.client_url(0)])
        .binary(common::etcdctl35_binary().unwrap())
        .args(["get", "/k/1", "--print-value-only"])
        .run()
        .await;
    assert_eq!(get.ok().trim(), "v1");
}

#[tokio::test(flavor = "multi_thread")]
async fn initial_check_refuses_a_member_whose_data_differ() {
    if !common::require_etcdctl35() {
        return;
    }
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let (_, ids) = cluster.ids().await;
    write_keys(&cluster).await;
    // An intact member passes the check and serves.
    cluster.stop(1).await;
    cluster
        .member_mut(1)
        .args
        .push("--experimental-initial-corrupt-check=true".into());
    cluster.spawn(1);
    cluster.wait_ready(1).await;
    assert!(
        cluster
            .log(1)
            .contains("initial corruption checking passed; no corruption"),
        "{}",
        cluster.log(1)
    );
    // A member whose values were rewritten does not start.
    corrupt_member(
        &mut cluster,
        2,
        &["--feature-gates=InitialCorruptCheck=true"],
    )
    .await;
    let status = cluster.wait_exit(2).await;
    assert!(!status.success());
    let log = cluster.log(2);
    assert!(
        log.contains(&format!("{:x} found data inconsistency with peers", ids[2])),
        "{log}"
    );
    // The others still serve writes: no alarm was raised.
    let put = etcdctl35(&cluster)
        .args(["put", "/k/0", "again"])
        .run()
        .await;
    assert_eq!(put.ok().trim(), "OK");
}

/// Member 2's hash at `rev` differs from member 0's: the rewrite survived the restart.
async fn assert_hashes_differ(cluster: &Cluster, rev: i64) {
    let h0 = cluster.member_client(0).await.hash_kv(rev).await.unwrap();
    let h2 = cluster.member_client(2).await.hash_kv(rev).await.unwrap();
    assert_ne!(h0.hash, h2.hash, "the corrupted member has the same hash");
}

#[tokio::test(flavor = "multi_thread")]
async fn periodic_check_raises_corrupt() {
    if !common::require_etcdctl35() {
        return;
    }
    let options = ClusterOptions {
        extra_args: vec!["--experimental-corrupt-check-time=1s".into()],
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 3, options).await;
    let rev = write_keys(&cluster).await;
    corrupt_member(&mut cluster, 2, &[]).await;
    cluster.wait_ready(2).await;
    assert_hashes_differ(&cluster, rev).await;
    expect_corrupt_alarm(&cluster).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_hash_check_raises_corrupt() {
    if !common::require_etcdctl35() {
        return;
    }
    let options = ClusterOptions {
        extra_args: vec![
            "--experimental-compact-hash-check-enabled=true".into(),
            "--experimental-compact-hash-check-time=1s".into(),
        ],
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 3, options).await;
    let rev = write_keys(&cluster).await;
    corrupt_member(&mut cluster, 2, &[]).await;
    cluster.wait_ready(2).await;
    assert_hashes_differ(&cluster, rev).await;
    // No periodic check runs here: the alarm comes from the hashes compaction records.
    let out = etcdctl35(&cluster)
        .args(["compact", &rev.to_string()])
        .run()
        .await;
    assert_eq!(out.ok().trim(), format!("compacted revision {rev}"));
    expect_corrupt_alarm(&cluster).await;
}

/// Flips one bit of every on-disk copy of `needle` in `file`; returns how many.
fn flip_bit_of_every(file: &Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(file).unwrap();
    let at: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    for &i in &at {
        bytes[i + needle.len() - 1] ^= 0x01;
    }
    std::fs::write(file, bytes).unwrap();
    at.len()
}

/// Two more backend commits after the keys are written, so that both of redb's commit
/// slots hold the keys' values. A value damaged in pages that only the newest commit
/// wrote is taken by redb for a torn last commit: it returns to the commit before (whose
/// checksums hold), and the member re-applies the rest from its WAL, so nothing damaged
/// is served either way; the refusal tested below is for damage the older commit shares.
async fn commit_twice_more(cluster: &Cluster) {
    let client = cluster.client().await;
    for round in 0..2 {
        let before = backend_commits(cluster).await;
        client
            .put(format!("/z/{round}"), "z", PutOptions::default())
            .await
            .unwrap();
        wait_for("a backend commit", || async {
            backend_commits(cluster).await > before
        })
        .await;
    }
}

async fn backend_commits(cluster: &Cluster) -> f64 {
    let name = "etcd_disk_backend_commit_duration_seconds_count ";
    let (_, body) = cluster.http_get(0, "/metrics").await;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// A bit flipped on disk while the member was stopped, in its backend or in its WAL, is
/// found before anything is served: the member refuses to start and names the file.
#[tokio::test(flavor = "multi_thread")]
async fn bit_flips_on_disk_refuse_the_start() {
    for (file, expect) in [
        ("member/snap/db", "is damaged"),
        ("member/wal", "crc mismatch"),
    ] {
        let mut cluster = Cluster::start(ServerKind::Chorus, 1).await;
        write_keys(&cluster).await;
        commit_twice_more(&cluster).await;
        cluster.stop(0).await;
        let data = cluster.member(0).data_dir.clone();
        let mut path = data.join(file);
        if path.is_dir() {
            let mut segments: Vec<_> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "wal"))
                .collect();
            segments.sort();
            path = segments.remove(0);
        }
        let flipped = flip_bit_of_every(&path, b"v13");
        assert!(flipped > 0, "no copy of the value in {}", path.display());
        cluster.spawn(0);
        let status = cluster.wait_exit(0).await;
        assert!(!status.success());
        let log = cluster.log(0);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let line = log
            .lines()
            .find(|l| l.contains(expect))
            .unwrap_or_else(|| panic!("{file}: no {expect:?} in the log:\n{log}"));
        assert!(line.contains(&name), "the file is not named: {line}");
        if file == "member/wal" {
            assert!(line.contains("at offset"), "no offset: {line}");
        }
    }
}
