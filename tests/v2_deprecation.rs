//! `--v2-deprecation` as etcd 3.5.1 applies it: v2 keys written under `not-yet`, then a
//! restart with `write-only` is refused ("detected disallowed custom content in
//! v2store"), and `--enable-v2=true` with `write-only` is refused outright. A member
//! whose v2 store holds only the membership starts with `write-only`, without the v2 API.

use crate::common;

use common::{Cluster, ClusterOptions, ServerKind};

const REFUSED: &str =
    "detected disallowed custom content in v2store for stage --v2-deprecation=write-only";

/// Writes a v2 key on a one-member cluster of `kind`, restarts it with `write-only`, and
/// returns whether it exited and the line that says why.
async fn restart_write_only(kind: ServerKind) -> (bool, bool) {
    let options = ClusterOptions {
        // etcd checks the store it recovers from a snapshot: take one right away.
        snapshot_count: Some(1),
        extra_args: vec!["--enable-v2=true".into()],
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start_with(kind, 1, options).await;
    let (code, body) = cluster
        .http(0, "PUT", "/v2/keys/app/config", "value=x")
        .await;
    assert_eq!(code, 201, "{kind:?}: {body}");
    // A few more writes so that etcd's snapshot covers the key.
    for i in 0..3 {
        cluster
            .http(0, "PUT", &format!("/v2/keys/app/k{i}"), "value=y")
            .await;
    }
    cluster.stop(0).await;
    let args = &mut cluster.member_mut(0).args;
    args.retain(|a| a != "--enable-v2=true");
    args.push("--v2-deprecation=write-only".into());
    cluster.spawn(0);
    let status = cluster.wait_exit(0).await;
    (!status.success(), cluster.log(0).contains(REFUSED))
}

#[tokio::test(flavor = "multi_thread")]
async fn write_only_refuses_a_store_with_v2_keys_as_etcd() {
    if !common::require_etcd() {
        return;
    }
    assert_eq!(restart_write_only(ServerKind::Etcd).await, (true, true));
    assert_eq!(restart_write_only(ServerKind::Chorus).await, (true, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn write_only_without_v2_content_starts_without_the_v2_api() {
    let options = ClusterOptions {
        extra_args: vec!["--v2-deprecation=write-only".into()],
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    let (code, _) = cluster.http(0, "GET", "/v2/keys/", "").await;
    assert_eq!(code, 404);
    // Its own membership records do not count as content: it restarts.
    cluster.restart(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_v2_and_write_only_are_mutually_exclusive() {
    let mut cluster = Cluster::create(
        ServerKind::Chorus,
        1,
        ClusterOptions {
            extra_args: vec![
                "--enable-v2=true".into(),
                "--v2-deprecation=write-only".into(),
            ],
            ..ClusterOptions::default()
        },
    );
    cluster.spawn(0);
    assert!(!cluster.wait_exit(0).await.success());
    let log = cluster.log(0);
    assert!(
        log.contains("--enable-v2 and --v2-deprecation=write-only are mutually exclusive"),
        "{log}"
    );
}
