//! Leases against real chorus processes: keys go with their lease, keep-alives work
//! through followers, and a leader failure neither expires live leases nor hands them a
//! fresh full TTL.

mod common;

use std::time::Duration;

use chorus_client::{Client, GetOptions, PutOptions};
use common::{Cluster, ServerKind};

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
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let f = cluster.member_client(follower).await;
    let lease = f.lease_grant(30, 0).await.unwrap().id;
    put_with(&f, "k/held", lease).await;
    let (sender, mut responses) = f.lease_keep_alive(lease).await.unwrap();
    sender.keep_alive().await.unwrap();
    let resp = responses.message().await.unwrap().unwrap();
    assert_eq!((resp.id, resp.ttl), (lease, 30));

    // Kill the leader: the lease survives, and the new leader does not reset it to 30 s
    // beyond what the last checkpoint (every 5 s) plus an election timeout allow.
    cluster.kill9(leader);
    let new_leader = cluster.leader().await;
    let n = cluster.member_client(new_leader).await;
    let ttl = n.lease_time_to_live(lease, true).await.unwrap();
    assert!(ttl.ttl > 0 && ttl.ttl <= 31, "{ttl:?}");
    assert_eq!(ttl.keys, vec![b"k/held".to_vec()]);
    // Keep-alives keep working through the follower against the new leader.
    let survivor = (0..3).find(|i| *i != leader && *i != new_leader).unwrap();
    let s = cluster.member_client(survivor).await;
    let (sender, mut responses) = s.lease_keep_alive(lease).await.unwrap();
    sender.keep_alive().await.unwrap();
    assert_eq!(responses.message().await.unwrap().unwrap().ttl, 30);
    assert_eq!(keys(&s, "k/").await, 1);
}
