//! Raft clustering with real chorus processes on 127.0.0.1: replication through any
//! member, linearizable reads everywhere, leader failure without losing acknowledged
//! writes, full restarts, and a follower that catches up from a snapshot.

use crate::common;

use std::collections::BTreeMap;

use chorus_client::{Client, GetOptions, PutOptions};
use common::{Cluster, ClusterOptions, ServerKind};

async fn get(client: &Client, key: &str) -> Option<String> {
    let resp = client.get(key, GetOptions::default()).await.expect("get");
    resp.kvs
        .into_iter()
        .next()
        .map(|kv| String::from_utf8(kv.value).unwrap())
}

async fn put(client: &Client, key: &str, value: &str) -> i64 {
    client
        .put(key, value, PutOptions::default())
        .await
        .expect("put")
        .header
        .unwrap()
        .revision
}

/// Every key with the given prefix, as the member behind `client` sees it.
async fn dump(client: &Client, prefix: &str) -> BTreeMap<String, String> {
    let resp = client
        .get(
            prefix,
            GetOptions {
                prefix: true,
                ..Default::default()
            },
        )
        .await
        .expect("range");
    resp.kvs
        .into_iter()
        .map(|kv| {
            (
                String::from_utf8(kv.key).unwrap(),
                String::from_utf8(kv.value).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn writes_through_any_member_are_read_linearizably_everywhere() {
    let cluster = Cluster::start(ServerKind::Chorus, 3).await;
    for writer in 0..3 {
        let w = cluster.member_client(writer).await;
        let key = format!("from-{writer}");
        let rev = put(&w, &key, &format!("v{writer}")).await;
        // The write is acknowledged: every member's linearizable read sees it at once.
        for reader in 0..3 {
            let r = cluster.member_client(reader).await;
            let resp = r.get(key.as_str(), GetOptions::default()).await.unwrap();
            assert_eq!(resp.kvs.len(), 1, "member {reader} misses {key}");
            assert!(resp.header.unwrap().revision >= rev);
        }
    }
    // All members agree on the history (same hash at the same revision).
    let c = cluster.member_client(0).await;
    let rev = c.status().await.unwrap().header.unwrap().revision;
    let mut hashes = Vec::new();
    for i in 0..3 {
        let m = cluster.member_client(i).await;
        hashes.push(m.hash_kv(rev).await.unwrap().hash);
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
}

#[tokio::test]
async fn leader_kill9_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let client = cluster.client().await;
    let mut acked = BTreeMap::new();
    for i in 0..20 {
        put(&client, &format!("k{i:02}"), &format!("v{i}")).await;
        acked.insert(format!("k{i:02}"), format!("v{i}"));
    }
    let old = cluster.leader().await;
    cluster.kill9(old);
    let new = cluster.leader().await;
    assert_ne!(old, new);
    let survivor = cluster.member_client(new).await;
    for i in 20..30 {
        put(&survivor, &format!("k{i:02}"), &format!("v{i}")).await;
        acked.insert(format!("k{i:02}"), format!("v{i}"));
    }
    assert_eq!(dump(&survivor, "k").await, acked);
    // The old leader comes back as a follower and catches up.
    cluster.restart(old).await;
    let back = cluster.member_client(old).await;
    assert_eq!(dump(&back, "k").await, acked);
}

#[tokio::test]
async fn every_member_restarts_with_its_data() {
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let client = cluster.client().await;
    for i in 0..10 {
        put(&client, &format!("r{i}"), &i.to_string()).await;
    }
    client.delete("r3", Default::default()).await.unwrap();
    let before = dump(&client, "r").await;
    let rev_before = client.status().await.unwrap().header.unwrap().revision;
    for i in 0..3 {
        cluster.stop(i).await;
    }
    for i in 0..3 {
        cluster.spawn(i);
    }
    for i in 0..3 {
        cluster.wait_ready(i).await;
    }
    for i in 0..3 {
        let m = cluster.member_client(i).await;
        assert_eq!(dump(&m, "r").await, before, "member {i}");
        let rev = m.status().await.unwrap().header.unwrap().revision;
        assert_eq!(rev, rev_before, "member {i} revision");
    }
    // And after a kill -9 of everyone (no clean shutdown), too.
    put(&client, "after", "x").await;
    for i in 0..3 {
        cluster.kill9(i);
    }
    for i in 0..3 {
        cluster.spawn(i);
    }
    for i in 0..3 {
        cluster.wait_ready(i).await;
    }
    let c = cluster.client().await;
    assert_eq!(get(&c, "after").await.as_deref(), Some("x"));
}

/// A one-member cluster commits in raft's `advance` (its own fsync is the quorum), which
/// reports the new commit index only once: it must reach the WAL, or every snapshot
/// marker is above the WAL's commit, unusable at restart, and once the bootstrap snapshot
/// file is purged the member cannot start (found by the robustness suite).
#[tokio::test]
async fn single_member_restarts_after_its_early_snapshots_are_purged() {
    let options = ClusterOptions {
        snapshot_count: Some(20),
        extra_args: vec![
            "--experimental-snapshot-catchup-entries=5".into(),
            "--max-snapshots=2".into(),
        ],
        ..Default::default()
    };
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    let client = cluster.client().await;
    for i in 0..100 {
        put(&client, &format!("p{i:03}"), &i.to_string()).await;
    }
    let before = dump(&client, "p").await;
    cluster.kill9(0);
    cluster.spawn(0);
    cluster.wait_ready(0).await;
    let c = cluster.client().await;
    assert_eq!(dump(&c, "p").await, before, "{}", cluster.logs());
    put(&c, "after-restart", "1").await;
    assert_eq!(get(&c, "after-restart").await.as_deref(), Some("1"));
}

/// Three members; one follower is stopped while `n` keys `{prefix}{i:04}` (value `i`) are
/// written through the leader, then started again and ready. Returns the cluster, a client
/// of the leader, the follower's index and a client of it.
async fn write_while_a_follower_is_down(
    options: ClusterOptions,
    n: usize,
    prefix: &str,
) -> (Cluster, Client, usize, Client) {
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 3, options).await;
    let leader = cluster.leader().await;
    let behind = (leader + 1) % 3;
    cluster.stop(behind).await;
    let client = cluster.member_client(leader).await;
    for i in 0..n {
        put(&client, &format!("{prefix}{i:04}"), &i.to_string()).await;
    }
    cluster.spawn(behind);
    cluster.wait_ready(behind).await;
    let follower = cluster.member_client(behind).await;
    (cluster, client, behind, follower)
}

#[tokio::test]
async fn lagging_follower_catches_up_from_a_snapshot() {
    let options = ClusterOptions {
        snapshot_count: Some(50),
        extra_args: vec!["--experimental-snapshot-catchup-entries=10".into()],
        ..Default::default()
    };
    let (cluster, client, behind, follower) =
        write_while_a_follower_is_down(options, 200, "s").await;
    // A linearizable read waits until the follower applied the leader's commit index.
    assert_eq!(dump(&follower, "s").await.len(), 200);
    assert!(
        cluster
            .log(behind)
            .contains("installed snapshot from the leader"),
        "the follower should have needed a snapshot:\n{}",
        cluster.logs()
    );
    let rev = client.status().await.unwrap().header.unwrap().revision;
    let h_leader = client.hash_kv(rev).await.unwrap().hash;
    let h_follower = follower.hash_kv(rev).await.unwrap().hash;
    assert_eq!(h_leader, h_follower);
    // It keeps replicating after the snapshot.
    put(&client, "after-snapshot", "1").await;
    assert_eq!(get(&follower, "after-snapshot").await.as_deref(), Some("1"));
}

/// The leader trims its in-memory log as it goes (not only at snapshots), but never past
/// what a follower has matched: a follower that was down for more than the catch-up
/// entries and the trim batch, with no snapshot taken meanwhile, catches up from the log.
#[tokio::test]
async fn stopped_follower_catches_up_from_the_log_the_leader_kept() {
    let options = ClusterOptions {
        extra_args: vec!["--experimental-snapshot-catchup-entries=10".into()],
        ..Default::default()
    };
    let (cluster, _, behind, follower) = write_while_a_follower_is_down(options, 1500, "t").await;
    assert_eq!(dump(&follower, "t").await.len(), 1500);
    assert!(
        !cluster
            .log(behind)
            .contains("installed snapshot from the leader"),
        "the follower should have caught up from the log:\n{}",
        cluster.logs()
    );
}

/// A single member's commit index advances only through its own appends, which raft-rs
/// reports outside the Ready's hard state; unless the WAL records it, a restart after the
/// WAL released its first segment finds no usable snapshot marker and refuses to start.
#[tokio::test]
async fn single_member_restarts_after_its_wal_released_segments() {
    let options = ClusterOptions {
        snapshot_count: Some(20),
        ..Default::default()
    };
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    let client = cluster.client().await;
    // 160 values of 512 KiB: more than one 64 MiB WAL segment, with snapshots after the cut.
    let value = "v".repeat(512 * 1024);
    for i in 0..160 {
        put(&client, &format!("big{i:03}"), &value).await;
    }
    let wal = cluster.member(0).data_dir.join("member/wal");
    let segments = || {
        std::fs::read_dir(&wal)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".wal"))
            .collect::<Vec<_>>()
    };
    // Snapshots are saved by the raft thread after the apply thread asks for one: wait
    // (bounded) until the first segment is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while segments()
        .iter()
        .any(|n| n.starts_with("0000000000000000-"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first WAL segment was never released: {:?}",
            segments()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    put(&client, "last", "x").await;
    cluster.kill9(0);
    cluster.spawn(0);
    cluster.wait_ready(0).await;
    let c = cluster.client().await;
    assert_eq!(get(&c, "last").await.as_deref(), Some("x"));
    assert_eq!(dump(&c, "big").await.len(), 160);
}
