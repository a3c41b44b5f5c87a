//! Leases against real chorus processes: keys go with their lease, keep-alives work
//! through followers, and a leader failure neither expires live leases nor hands them a
//! fresh full TTL.

use crate::common;

use std::time::Duration;

use chorus_client::{Client, GetOptions, PutOptions};
use common::{Cluster, ClusterOptions, ServerKind};

async fn keys(c: &Client, prefix: &str) -> usize {
    let opts = GetOptions {
        prefix: true,
        count_only: true,
        ..Default::default()
    };
    c.get(prefix, opts).await.unwrap().count as usize
}

async fn put_with(c: &Client, k: &str, lease: i64) {
    let opts = PutOptions {
        lease,
        ..Default::default()
    };
    c.put(k, "v", opts).await.unwrap();
}

/// Checkpoints every second, so that a test can wait for one to have been taken.
fn checkpoint_every_second() -> ClusterOptions {
    ClusterOptions {
        extra_args: vec!["--experimental-lease-checkpoint-interval=1s".into()],
        ..Default::default()
    }
}

/// Waits (bounded) until the lease's remaining TTL has dropped to `ttl` seconds.
async fn run_down_to(c: &Client, lease: i64, ttl: i64) {
    for _ in 0..150 {
        if c.lease_time_to_live(lease, false).await.unwrap().ttl <= ttl {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("lease {lease:x} did not run down to {ttl} s within 15 s");
}

#[tokio::test]
async fn revoke_and_expiry_delete_the_keys() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let c = cluster.client().await;
    let granted = c.lease_grant(60, 0).await.unwrap();
    assert!(granted.id > 0);
    for i in 0..3 {
        put_with(&c, &format!("a/{i}"), granted.id).await;
    }
    let ttl = c.lease_time_to_live(granted.id, true).await.unwrap();
    assert_eq!((ttl.granted_ttl, ttl.keys.len()), (60, 3));
    let rev = c
        .lease_revoke(granted.id)
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    assert_eq!(keys(&c, "a/").await, 0);
    // All three keys went in one revision.
    let before = c
        .get(
            "a/",
            GetOptions {
                prefix: true,
                revision: rev - 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(before.count, 3);
    assert_eq!(
        c.lease_time_to_live(granted.id, false).await.unwrap().ttl,
        -1
    );
    assert_eq!(
        c.lease_revoke(granted.id).await.unwrap_err().message(),
        Some("etcdserver: requested lease not found")
    );

    // A short lease expires by itself; the minimum TTL of this cluster is 1 s.
    let short = c.lease_grant(1, 0).await.unwrap();
    put_with(&c, "b/1", short.id).await;
    let mut w = c
        .watch("b/1", chorus_client::WatchOptions::default())
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(15), w.message())
        .await
        .expect("the lease expires")
        .unwrap()
        .unwrap();
    assert_eq!(
        msg.events[0].r#type,
        chorus_api::mvccpb::event::EventType::Delete as i32
    );
    assert_eq!(keys(&c, "b/").await, 0);
}

#[tokio::test]
async fn keep_alive_through_a_follower_and_leader_failure() {
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 3, checkpoint_every_second()).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let f = cluster.member_client(follower).await;
    let lease = f.lease_grant(30, 0).await.unwrap().id;
    put_with(&f, "k/held", lease).await;
    let (sender, mut responses) = f.lease_keep_alive(lease).await.unwrap();
    sender.keep_alive().await.unwrap();
    let resp = responses.message().await.unwrap().unwrap();
    assert_eq!((resp.id, resp.ttl), (lease, 30));

    // Kill the leader once the lease has run down (and been checkpointed at least once):
    // the lease survives, and the new leader does not hand it a fresh 30 s (etcd without
    // checkpoints gives it 30 s plus the election timeout) but the checkpointed remainder
    // plus the election timeout (0.5 s).
    run_down_to(&f, lease, 22).await;
    cluster.kill9(leader);
    let new_leader = cluster.leader().await;
    let n = cluster.member_client(new_leader).await;
    let ttl = n.lease_time_to_live(lease, true).await.unwrap();
    // At most 23 s checkpointed (rounded up), plus the election timeout, rounded up: 25;
    // one more second of slack for a loaded machine.
    assert!(ttl.ttl > 0 && ttl.ttl <= 26, "{ttl:?}");
    assert_eq!(ttl.keys, vec![b"k/held".to_vec()]);
    // Keep-alives keep working through the follower against the new leader.
    let survivor = (0..3).find(|i| *i != leader && *i != new_leader).unwrap();
    let s = cluster.member_client(survivor).await;
    let (sender, mut responses) = s.lease_keep_alive(lease).await.unwrap();
    sender.keep_alive().await.unwrap();
    assert_eq!(responses.message().await.unwrap().unwrap().ttl, 30);
    assert_eq!(keys(&s, "k/").await, 1);
}

#[tokio::test]
async fn remaining_ttl_survives_a_full_restart() {
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 1, checkpoint_every_second()).await;
    let c = cluster.client().await;
    let lease = c.lease_grant(30, 0).await.unwrap().id;
    put_with(&c, "r/held", lease).await;
    run_down_to(&c, lease, 22).await;
    // kill -9: only what went through raft (the checkpoints) survives.
    cluster.kill9(0);
    cluster.restart(0).await;
    let c = cluster.client().await;
    let ttl = c.lease_time_to_live(lease, true).await.unwrap();
    assert_eq!(ttl.granted_ttl, 30);
    // As above: a fresh lease would show 30 or 31.
    assert!(
        ttl.ttl > 0 && ttl.ttl <= 26,
        "a fresh TTL after restart: {ttl:?}"
    );
    assert_eq!(ttl.keys, vec![b"r/held".to_vec()]);
}
