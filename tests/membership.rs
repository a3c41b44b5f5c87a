//! Runtime membership changes with the real etcdctl against real chorus processes: a
//! learner joins (`--initial-cluster-state existing`), is refused writes, is promoted
//! through a follower; peer URLs are updated; a follower and then the leader are removed
//! and stop by themselves; the quorum rules of `--strict-reconfig-check` hold.

use crate::common;

use chorus_client::{Client, GetOptions, PutOptions};
use common::{Cluster, Etcdctl, ServerKind};

async fn get_serializable(c: &Client, key: &str) -> Option<String> {
    let opts = GetOptions {
        serializable: true,
        ..Default::default()
    };
    let resp = c.get(key, opts).await.ok()?;
    resp.kvs
        .first()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

/// etcdctl's `member list` lines: `id, status, name, peers, clients, learner`.
async fn member_list(endpoints: &[String]) -> Vec<Vec<String>> {
    let out = Etcdctl::v3(endpoints).args(["member", "list"]).run().await;
    out.ok()
        .lines()
        .map(|l| l.split(", ").map(str::to_owned).collect())
        .collect()
}

async fn member_id(cluster: &Cluster, i: usize) -> String {
    let id = cluster.status(i).await.unwrap().header.unwrap().member_id;
    format!("{id:x}")
}

#[tokio::test]
async fn learner_joins_is_promoted_and_members_are_removed() {
    if !common::require_etcdctl() {
        return;
    }
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let c = cluster.client().await;
    for i in 0..20 {
        c.put(format!("k{i}"), format!("v{i}"), PutOptions::default())
            .await
            .unwrap();
    }
    let eps = cluster.endpoints();

    // member add --learner prints the environment for the new member.
    let j = cluster.add_joiner();
    let peer = cluster.member(j).peer_url();
    let out = Etcdctl::v3(&eps)
        .args([
            "member",
            "add",
            "m3",
            "--learner",
            &format!("--peer-urls={peer}"),
        ])
        .run()
        .await;
    let text = out.ok();
    assert!(text.starts_with("Member "), "{text}");
    assert!(
        text.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
        "{text}"
    );
    assert!(text.contains(&format!("m3={peer}")), "{text}");
    let listed = member_list(&eps).await;
    let added = listed
        .iter()
        .find(|m| m[3] == peer)
        .expect("new member listed");
    assert_eq!(
        (added[1].as_str(), added[5].as_str()),
        ("unstarted", "true")
    );
    // One learner at a time, as etcd 3.4.
    let out = Etcdctl::v3(&eps)
        .args([
            "member",
            "add",
            "m9",
            "--learner",
            "--peer-urls=http://127.0.0.1:9",
        ])
        .run()
        .await;
    assert!(
        out.stderr
            .contains("etcdserver: too many learner members in cluster"),
        "{out:?}"
    );

    // The learner starts, receives the data and serves only serializable reads.
    cluster.spawn(j);
    cluster.wait_ready(j).await;
    let learner = cluster.member_client(j).await;
    let mut seen = None;
    for _ in 0..200 {
        seen = get_serializable(&learner, "k19").await;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen.as_deref(), Some("v19"));
    let refused = learner
        .put("no", "v", PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        refused.message(),
        Some("etcdserver: rpc not supported for learner")
    );
    let refused = learner.get("k1", GetOptions::default()).await.unwrap_err();
    assert_eq!(
        refused.message(),
        Some("etcdserver: rpc not supported for learner")
    );
    assert!(cluster.status(j).await.unwrap().is_learner);

    // Promotion through a follower (the leader decides), then it is a voter.
    let learner_id = member_id(&cluster, j).await;
    let leader = cluster.leader().await;
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let out = Etcdctl::v3(&[cluster.client_url(follower)])
        .args(["member", "promote", &learner_id])
        .run()
        .await;
    assert!(out.ok().contains("promoted in cluster"), "{out:?}");
    let out = Etcdctl::v3(&eps)
        .args(["member", "promote", &learner_id])
        .run()
        .await;
    assert!(
        out.stderr
            .contains("etcdserver: can only promote a learner member"),
        "{out:?}"
    );
    // The promoted member serves writes once it has applied its promotion itself.
    for _ in 0..200 {
        if !cluster.status(j).await.unwrap().is_learner {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!cluster.status(j).await.unwrap().is_learner);
    let promoted = cluster.member_client(j).await;
    promoted
        .put("from-m3", "v", PutOptions::default())
        .await
        .unwrap();

    // member update: the same URLs are accepted; another member's URL and unknown IDs
    // are refused with etcd's messages.
    let out = Etcdctl::v3(&eps)
        .args([
            "member",
            "update",
            &learner_id,
            &format!("--peer-urls={peer}"),
        ])
        .run()
        .await;
    assert!(out.ok().contains("updated in cluster"), "{out:?}");
    let taken = cluster.member(0).peer_url();
    let out = Etcdctl::v3(&eps)
        .args([
            "member",
            "update",
            &learner_id,
            &format!("--peer-urls={taken}"),
        ])
        .run()
        .await;
    assert!(
        out.stderr.contains("etcdserver: Peer URLs already exists"),
        "{out:?}"
    );
    for cmd in ["update", "remove", "promote"] {
        let mut args = vec!["member", cmd, "1234"];
        if cmd == "update" {
            args.push("--peer-urls=http://127.0.0.1:9");
        }
        let out = Etcdctl::v3(&eps).args(args).run().await;
        assert!(
            out.stderr.contains("etcdserver: member not found"),
            "{cmd}: {out:?}"
        );
    }

    // Remove a follower: it stops by itself (exit 0) and cannot come back.
    let leader = cluster.leader().await;
    let gone = (0..3).find(|i| *i != leader).unwrap();
    let gone_id = member_id(&cluster, gone).await;
    let out = Etcdctl::v3(&eps)
        .args(["member", "remove", &gone_id])
        .run()
        .await;
    assert!(out.ok().contains("removed from cluster"), "{out:?}");
    let status = cluster.wait_exit(gone).await;
    assert!(status.success(), "removed member exited with {status}");
    assert!(cluster
        .log(gone)
        .contains("the member has been permanently removed from the cluster"));
    cluster.spawn(gone);
    let status = cluster.wait_exit(gone).await;
    assert!(!status.success());

    // Remove the leader: it stops, the others elect a leader and keep every write.
    let live: Vec<usize> = (0..=j).filter(|i| *i != gone).collect();
    let leader = cluster.leader().await;
    let leader_id = member_id(&cluster, leader).await;
    let live_eps: Vec<String> = live.iter().map(|i| cluster.client_url(*i)).collect();
    let out = Etcdctl::v3(&live_eps)
        .args(["member", "remove", &leader_id])
        .run()
        .await;
    assert!(out.ok().contains("removed from cluster"), "{out:?}");
    assert!(cluster.wait_exit(leader).await.success());
    let rest: Vec<String> = live
        .iter()
        .filter(|i| **i != leader)
        .map(|i| cluster.client_url(*i))
        .collect();
    assert_eq!(rest.len(), 2);
    let out = Etcdctl::v3(&rest)
        .args(["put", "after-removals", "ok"])
        .run()
        .await;
    assert_eq!(out.ok(), "OK\n");
    let out = Etcdctl::v3(&rest)
        .args(["get", "k", "--prefix", "--keys-only"])
        .run()
        .await;
    assert_eq!(out.ok().lines().filter(|l| !l.is_empty()).count(), 20);
    assert_eq!(member_list(&rest).await.len(), 2);
}

#[tokio::test]
async fn strict_reconfig_check_and_joining_without_member_add() {
    if !common::require_etcdctl() {
        return;
    }
    let mut cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let eps = cluster.endpoints();
    // A member that was never added cannot join.
    let stranger = cluster.add_joiner();
    cluster.spawn(stranger);
    assert!(!cluster.wait_exit(stranger).await.success());
    assert!(cluster.log(stranger).contains("member add"));

    // One member may grow to two (etcd's restore case) before the second started...
    let out = Etcdctl::v3(&eps)
        .args(["member", "add", "a", "--peer-urls=http://127.0.0.1:9"])
        .run()
        .await;
    assert!(out.ok().starts_with("Member "), "{out:?}");
    // ...but not to three: the started voters would be no quorum.
    let out = Etcdctl::v3(&eps)
        .args(["member", "add", "b", "--peer-urls=http://127.0.0.1:10"])
        .run()
        .await;
    assert!(
        out.stderr
            .contains("etcdserver: re-configuration failed due to not enough started members"),
        "{out:?}"
    );
}
