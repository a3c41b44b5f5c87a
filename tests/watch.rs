//! Watch guarantees against real chorus processes: ordered, unique, atomic per revision,
//! nothing missed between the start revision and now, resumable after a member restart
//! or a leader change, served by followers, and correct progress notifications.

use crate::common;

use std::time::Duration;

use chorus_api::mvccpb::event::EventType;
use chorus_client::{Client, DeleteOptions, Op, PutOptions, Txn, WatchOptions, WatchStream};
use common::{Cluster, ServerKind};

/// (revision, key, is_put) for every event until `n` events arrived (bounded by a deadline).
async fn collect(w: &mut WatchStream, n: usize) -> Vec<(i64, String, bool)> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let msg = tokio::time::timeout_at(deadline, w.message())
            .await
            .unwrap_or_else(|_| panic!("timed out with {} of {n} events: {out:?}", out.len()))
            .expect("watch stream")
            .expect("watch stream ended");
        assert!(!msg.canceled, "watch canceled: {msg:?}");
        for e in msg.events {
            let kv = e.kv.unwrap();
            out.push((
                kv.mod_revision,
                String::from_utf8(kv.key).unwrap(),
                e.r#type == EventType::Put as i32,
            ));
        }
    }
    out
}

async fn put(c: &Client, k: &str, v: &str) -> i64 {
    c.put(k, v, PutOptions::default())
        .await
        .unwrap()
        .header
        .unwrap()
        .revision
}

const PO: PutOptions = PutOptions {
    lease: 0,
    prev_kv: false,
    ignore_value: false,
    ignore_lease: false,
};
const DO: DeleteOptions = DeleteOptions {
    prefix: false,
    from_key: false,
    range_end: None,
    prev_kv: false,
};

fn prefix(start_revision: i64) -> WatchOptions {
    WatchOptions {
        prefix: true,
        start_revision,
        ..Default::default()
    }
}

#[tokio::test]
async fn ordered_unique_atomic_and_from_history() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let c = cluster.client().await;
    let first = put(&c, "w/a", "1").await;
    put(&c, "w/b", "1").await;
    // Watch from the first revision: history first, then live events, no gap, no repeat.
    let mut w = c.watch("w/", prefix(first)).await.unwrap();
    let txn = Txn::new().and_then([
        Op::put("w/c", "1", &PO),
        Op::put("w/d", "1", &PO),
        Op::delete("w/a", &DO),
    ]);
    c.txn(txn).await.unwrap();
    put(&c, "w/e", "1").await;
    let got = collect(&mut w, 6).await;
    let revs: Vec<i64> = got.iter().map(|e| e.0).collect();
    assert_eq!(
        revs,
        vec![first, first + 1, first + 2, first + 2, first + 2, first + 3]
    );
    assert_eq!(got[4], (first + 2, "w/a".to_string(), false));

    // All events of one txn arrive in a single response.
    let mut live = c.watch("w/", prefix(0)).await.unwrap();
    let txn = Txn::new().and_then([Op::put("w/x", "1", &PO), Op::put("w/y", "1", &PO)]);
    c.txn(txn).await.unwrap();
    let msg = live.message().await.unwrap().unwrap();
    assert_eq!(msg.events.len(), 2);
}

#[tokio::test]
async fn resume_after_member_restart_sees_exactly_the_missing_events() {
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let writer = cluster.member_client(leader).await;
    let watcher = cluster.member_client(follower).await;
    let mut w = watcher.watch("r/", prefix(0)).await.unwrap();
    for i in 0..5 {
        put(&writer, &format!("r/{i}"), "x").await;
    }
    let seen = collect(&mut w, 5).await;
    let last = seen.last().unwrap().0;
    drop(w);
    // The member the watcher was on restarts; writes continue meanwhile.
    cluster.stop(follower).await;
    for i in 5..10 {
        put(&writer, &format!("r/{i}"), "x").await;
    }
    cluster.spawn(follower);
    cluster.wait_ready(follower).await;
    let watcher = cluster.member_client(follower).await;
    let mut w = watcher.watch("r/", prefix(last + 1)).await.unwrap();
    let resumed = collect(&mut w, 5).await;
    let keys: Vec<&str> = resumed.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(keys, vec!["r/5", "r/6", "r/7", "r/8", "r/9"]);
    assert_eq!(resumed[0].0, last + 1);
}

#[tokio::test]
async fn resume_after_leader_change_and_on_followers() {
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let leader = cluster.leader().await;
    let c = cluster.client().await;
    // One watcher per member: followers serve watches from their own apply stream.
    let mut watchers = Vec::new();
    for i in 0..3 {
        let m = cluster.member_client(i).await;
        watchers.push(m.watch("l/", prefix(0)).await.unwrap());
    }
    let r1 = put(&c, "l/1", "a").await;
    for w in &mut watchers {
        assert_eq!(collect(w, 1).await, vec![(r1, "l/1".to_string(), true)]);
    }
    cluster.kill9(leader);
    let new_leader = cluster.leader().await;
    let c = cluster.member_client(new_leader).await;
    let r2 = put(&c, "l/2", "b").await;
    // Watchers on the surviving members keep going; a new watch from r1+1 resumes exactly.
    for i in (0..3).filter(|i| *i != leader) {
        assert_eq!(
            collect(&mut watchers[i], 1).await,
            vec![(r2, "l/2".to_string(), true)]
        );
        let m = cluster.member_client(i).await;
        let mut w = m.watch("l/", prefix(r1 + 1)).await.unwrap();
        assert_eq!(
            collect(&mut w, 1).await,
            vec![(r2, "l/2".to_string(), true)]
        );
    }
}

#[tokio::test]
async fn progress_requests_and_compacted_start() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let c = cluster.client().await;
    let r = put(&c, "p/a", "1").await;
    put(&c, "p/a", "2").await;
    let mut w = c.watch("p/", prefix(0)).await.unwrap();
    w.request_progress().await.unwrap();
    let msg = w.message().await.unwrap().unwrap();
    assert!(msg.events.is_empty());
    assert_eq!(msg.header.unwrap().revision, r + 1);
    // A watch from a compacted revision is told the compact revision and canceled.
    c.compact(r + 1, true).await.unwrap();
    let err = c.watch("p/", prefix(r)).await;
    match err {
        Err(chorus_client::Error::WatchCanceled {
            compact_revision, ..
        }) => {
            assert_eq!(compact_revision, r + 1)
        }
        Ok(mut s) => {
            let msg = s.message().await.unwrap().unwrap();
            assert!(msg.canceled);
            assert_eq!(msg.compact_revision, r + 1);
        }
        Err(e) => panic!("{e}"),
    }
}
