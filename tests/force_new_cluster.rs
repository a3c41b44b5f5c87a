//! etcd's disaster-recovery runbook (op-guide/recovery.md, "restore quorum from one
//! surviving member"): two of three members are lost for good; the survivor is stopped
//! and restarted with `--force-new-cluster`, which makes it the only member of the same
//! cluster with all its data; then a new member is added back. Run on etcd 3.5.1 and on
//! chorus with etcdctl 3.5.1, comparing what the operator sees.

use crate::common;

use common::{Cluster, Etcdctl, ServerKind};

fn etcdctl(cluster: &Cluster, i: usize) -> Etcdctl {
    Etcdctl::v3(&[cluster.client_url(i)]).binary(common::etcdctl35_binary().unwrap())
}

/// What the operator sees along the runbook.
#[derive(Debug, PartialEq)]
struct Seen {
    members_after_force: usize,
    same_cluster: bool,
    keys: String,
    put_alone: String,
    members_after_add: usize,
    keys_on_new_member: String,
}

async fn runbook(kind: ServerKind) -> Seen {
    let mut cluster = Cluster::start(kind, 3).await;
    let (cluster_id, _) = cluster.ids().await;
    for i in 0..5 {
        let out = etcdctl(&cluster, 0)
            .args(["put", &format!("/k{i}"), &format!("v{i}")])
            .run()
            .await;
        assert_eq!(out.ok().trim(), "OK");
    }
    // m1 and m2 are lost; m0 alone has no quorum.
    cluster.kill9(1);
    cluster.kill9(2);
    cluster.stop(0).await;
    cluster
        .member_mut(0)
        .args
        .push("--force-new-cluster".into());
    cluster.spawn(0);
    cluster.wait_ready(0).await;
    let list = etcdctl(&cluster, 0).args(["member", "list"]).run().await;
    let members_after_force = list.ok().lines().count();
    let (cluster_id_after, _) = cluster.ids_of_running().await;
    let keys = etcdctl(&cluster, 0)
        .args(["get", "/k", "--prefix", "--print-value-only"])
        .run()
        .await;
    let put_alone = etcdctl(&cluster, 0).args(["put", "/k5", "v5"]).run().await;
    // A new member joins the one-member cluster.
    let new = cluster.add_joiner();
    let add = etcdctl(&cluster, 0)
        .args([
            "member",
            "add",
            "m3",
            &format!("--peer-urls={}", cluster.member(new).peer_url()),
        ])
        .run()
        .await;
    assert!(add.success(), "{kind:?}: {}", add.stderr);
    // As `member add` prints it: the survivor and the new member.
    let initial = format!(
        "--initial-cluster=m0={},m3={}",
        cluster.member(0).peer_url(),
        cluster.member(new).peer_url()
    );
    for arg in &mut cluster.member_mut(new).args {
        if arg.starts_with("--initial-cluster=") {
            *arg = initial.clone();
        }
    }
    cluster.spawn(new);
    cluster.wait_ready(new).await;
    let list = etcdctl(&cluster, 0).args(["member", "list"]).run().await;
    let on_new = etcdctl(&cluster, new)
        .args(["get", "/k", "--prefix", "--print-value-only"])
        .run()
        .await;
    if kind == ServerKind::Chorus {
        assert!(
            cluster.log(0).contains("forcing restart member"),
            "{}",
            cluster.log(0)
        );
    }
    Seen {
        members_after_force,
        same_cluster: cluster_id_after == cluster_id,
        keys: keys.ok().to_owned(),
        put_alone: put_alone.ok().trim().to_owned(),
        members_after_add: list.ok().lines().count(),
        keys_on_new_member: on_new.ok().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn force_new_cluster_restores_quorum_from_one_member_as_etcd() {
    if !common::require_etcd() || !common::require_etcdctl35() {
        return;
    }
    let etcd = runbook(ServerKind::Etcd).await;
    assert_eq!(
        etcd,
        Seen {
            members_after_force: 1,
            same_cluster: true,
            keys: "v0\nv1\nv2\nv3\nv4\n".into(),
            put_alone: "OK".into(),
            members_after_add: 2,
            keys_on_new_member: "v0\nv1\nv2\nv3\nv4\nv5\n".into(),
        }
    );
    assert_eq!(runbook(ServerKind::Chorus).await, etcd);
}
