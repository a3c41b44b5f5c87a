//! Maintenance operations operators run against a live cluster, with the real etcdctl:
//! `snapshot save` (then chorus's `status` and `restore` of that file into a new cluster),
//! `defrag` and `move-leader`; the gRPC health service and its NOT_SERVING during a
//! defragmentation; Downgrade validate/enable/cancel, whose answers are etcd 3.5.1's.

use crate::common;

use std::collections::BTreeMap;

use chorus_api::etcdserverpb::downgrade_request::DowngradeAction;
use chorus_api::etcdserverpb::maintenance_client::MaintenanceClient;
use chorus_api::etcdserverpb::{DefragmentRequest, DowngradeRequest};
use chorus_client::{Client, DeleteOptions, GetOptions, PutOptions};
use chorus_config::{Command, Config};
use chorus_datadir::snapshot::{self, SnapshotError};
use common::{Cluster, ClusterOptions, Etcdctl, ServerKind};
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn dump(c: &Client) -> BTreeMap<String, String> {
    let opts = GetOptions {
        prefix: true,
        ..Default::default()
    };
    let resp = c.get("", opts).await.unwrap();
    resp.kvs
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key).into_owned(),
                String::from_utf8_lossy(&kv.value).into_owned(),
            )
        })
        .collect()
}

fn config_of(cluster: &Cluster, i: usize) -> Config {
    match Config::parse(&cluster.member(i).args, &[], &mut Vec::new()).unwrap() {
        Command::Run(cfg) => *cfg,
        other => panic!("member flags parse to {other:?}"),
    }
}

async fn db_sizes(cluster: &Cluster) -> Vec<i64> {
    let mut sizes = Vec::new();
    for i in 0..cluster.len() {
        sizes.push(cluster.status(i).await.unwrap().db_size);
    }
    sizes
}

#[tokio::test]
async fn snapshot_save_restore_defragment_and_move_leader() {
    if !common::require_etcdctl() {
        return;
    }
    let source = Cluster::start(ServerKind::Chorus, 3).await;
    let c = source.client().await;
    // History worth compacting: 20 keys overwritten 30 times with 1 KiB values.
    let big = "x".repeat(1024);
    for round in 0..30 {
        for k in 0..20 {
            c.put(
                format!("churn/{k}"),
                format!("{round}{big}"),
                PutOptions::default(),
            )
            .await
            .unwrap();
        }
    }
    c.delete(
        "churn/1",
        DeleteOptions {
            prefix: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let lease = c.lease_grant(600, 0).await.unwrap().id;
    let opts = PutOptions {
        lease,
        ..Default::default()
    };
    c.put("leased", "v", opts).await.unwrap();
    let rev = c
        .put("last", "v", PutOptions::default())
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    let before = dump(&c).await;

    // etcdctl snapshot save, from one member.
    let file = source.dir().join("backup.db");
    let out = Etcdctl::v3(&[source.client_url(1)])
        .args(["snapshot", "save", &file.display().to_string()])
        .run()
        .await;
    assert!(out.ok().starts_with("Snapshot saved at"), "{out:?}");
    let st = snapshot::status(&file).unwrap();
    assert_eq!(st.revision, rev);
    // etcd's format (ADR 0007): the bbolt size, without the 32-byte SHA-256 trailer.
    assert_eq!(st.total_size + 32, std::fs::metadata(&file).unwrap().len());
    assert!(st.total_keys as usize > before.len());

    // A damaged copy is refused, by status and by restore, and restore leaves nothing.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 0xff;
    let damaged = source.dir().join("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();
    assert!(matches!(
        snapshot::status(&damaged),
        Err(SnapshotError::Integrity(_))
    ));

    // Compaction then defragmentation on every member: smaller files, same data.
    c.compact(rev, true).await.unwrap();
    let sizes = db_sizes(&source).await;
    let eps = source.endpoints();
    let out = Etcdctl::v3(&eps).args(["defrag"]).run().await;
    assert_eq!(
        out.ok()
            .matches("Finished defragmenting etcd member")
            .count(),
        3,
        "{out:?}"
    );
    let after = db_sizes(&source).await;
    for (b, a) in sizes.iter().zip(&after) {
        assert!(
            a < b,
            "defragment did not shrink the db: {sizes:?} -> {after:?}"
        );
    }
    for i in 0..3 {
        assert_eq!(dump(&source.member_client(i).await).await, before);
    }
    c.put("after-defrag", "v", PutOptions::default())
        .await
        .unwrap();

    // move-leader to a follower; then the same request to a follower is refused.
    let leader = source.leader().await;
    let target = (leader + 1) % 3;
    let target_id = source
        .status(target)
        .await
        .unwrap()
        .header
        .unwrap()
        .member_id;
    let out = Etcdctl::v3(&eps)
        .args(["move-leader", &format!("{target_id:x}")])
        .run()
        .await;
    assert!(
        out.ok().starts_with("Leadership transferred from "),
        "{out:?}"
    );
    assert_eq!(source.status(0).await.unwrap().leader, target_id);
    let out = Etcdctl::v3(&eps).args(["move-leader", "1234"]).run().await;
    assert!(
        out.stderr.contains("etcdserver: bad leader transferee"),
        "{out:?}"
    );

    // Restore the backup into a new three-member cluster.
    let mut restored = Cluster::create(ServerKind::Chorus, 3, ClusterOptions::default());
    let cfg = config_of(&restored, 0);
    assert!(matches!(
        snapshot::restore(&damaged, &cfg, false),
        Err(SnapshotError::HashMismatch(_))
    ));
    assert!(!cfg.data_dir.exists());
    for i in 0..3 {
        snapshot::restore(&file, &config_of(&restored, i), false).unwrap();
    }
    assert!(matches!(
        snapshot::restore(&file, &cfg, false),
        Err(SnapshotError::DataDirExists(_))
    ));
    restored.start_all().await;
    let r = restored.client().await;
    assert_eq!(dump(&r).await, before);
    let ttl = r.lease_time_to_live(lease, true).await.unwrap();
    assert_eq!(ttl.keys, vec![b"leased".to_vec()]);
    let next = r
        .put("new", "v", PutOptions::default())
        .await
        .unwrap()
        .header
        .unwrap();
    assert_eq!(next.revision, rev + 1);
    let members = r.member_list().await.unwrap().members;
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), 3);
    assert_ne!(
        next.cluster_id,
        source.status(0).await.unwrap().header.unwrap().cluster_id
    );
    for i in 0..3 {
        assert_eq!(
            dump(&restored.member_client(i).await).await.len(),
            before.len() + 1
        );
    }
}

async fn channel(cluster: &Cluster, i: usize) -> Channel {
    Channel::from_shared(cluster.client_url(i))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn health_request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
    }
}

type HealthWatch = tonic::Streaming<tonic_health::pb::HealthCheckResponse>;

async fn next_status(watch: &mut HealthWatch) -> ServingStatus {
    let msg = watch.message().await.unwrap().expect("a status");
    ServingStatus::try_from(msg.status).unwrap()
}

/// chorus, and etcd 3.5.1 when it is here (see `common::require_etcd`).
fn chorus_and_etcd() -> Vec<ServerKind> {
    let mut kinds = vec![ServerKind::Chorus];
    if common::require_etcd() {
        kinds.push(ServerKind::Etcd);
    }
    kinds
}

/// grpc.health.v1.Health as etcd registers grpc-go's: "" is SERVING, another name is
/// unknown to Check (NOT_FOUND) and Watch (SERVICE_UNKNOWN, the call stays open).
#[tokio::test]
async fn grpc_health_service_answers_as_etcd() {
    for kind in chorus_and_etcd() {
        let cluster = Cluster::start(kind, 1).await;
        let mut health = HealthClient::new(channel(&cluster, 0).await);
        let status = health.check(health_request("")).await.unwrap().into_inner();
        assert_eq!(status.status, ServingStatus::Serving as i32, "{kind:?}");
        let e = health
            .check(health_request("etcdserverpb.KV"))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (Code::NotFound, "unknown service"),
            "{kind:?}"
        );
        let mut watch = health
            .watch(health_request("x"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            next_status(&mut watch).await,
            ServingStatus::ServiceUnknown,
            "{kind:?}"
        );
        let mut watch = health.watch(health_request("")).await.unwrap().into_inner();
        assert_eq!(
            next_status(&mut watch).await,
            ServingStatus::Serving,
            "{kind:?}"
        );
    }
}

/// With `--experimental-stop-grpc-service-on-defrag` (etcd 3.5.14+; 3.6's gate), a Watch
/// opened before Defragment sees NOT_SERVING then SERVING; without it, nothing changes.
#[tokio::test]
async fn defragment_reports_not_serving_with_the_flag() {
    for stop in [false, true] {
        let options = ClusterOptions {
            extra_args: vec![format!("--experimental-stop-grpc-service-on-defrag={stop}")],
            ..ClusterOptions::default()
        };
        let cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
        let mut health = HealthClient::new(channel(&cluster, 0).await);
        let mut watch = health.watch(health_request("")).await.unwrap().into_inner();
        assert_eq!(next_status(&mut watch).await, ServingStatus::Serving);
        let mut maintenance = MaintenanceClient::new(channel(&cluster, 0).await);
        maintenance.defragment(DefragmentRequest {}).await.unwrap();
        if stop {
            assert_eq!(next_status(&mut watch).await, ServingStatus::NotServing);
            assert_eq!(next_status(&mut watch).await, ServingStatus::Serving);
        } else {
            assert!(!cluster.log(0).contains("defrag is active"));
        }
        let status = health.check(health_request("")).await.unwrap().into_inner();
        assert_eq!(status.status, ServingStatus::Serving as i32);
    }
}

/// One Downgrade call: the version answered, or the status's code and message.
async fn downgrade(
    m: &mut MaintenanceClient<Channel>,
    action: i32,
    version: &str,
) -> Result<String, (Code, String)> {
    let r = DowngradeRequest {
        action,
        version: version.into(),
    };
    match m.downgrade(r).await {
        Ok(resp) => Ok(resp.into_inner().version),
        Err(e) => Err((e.code(), e.message().to_string())),
    }
}

const VALIDATE: i32 = DowngradeAction::Validate as i32;
const ENABLE: i32 = DowngradeAction::Enable as i32;
const CANCEL: i32 = DowngradeAction::Cancel as i32;

fn refused(code: Code, message: &str) -> Result<String, (Code, String)> {
    Err((code, message.to_string()))
}

/// Answers recorded from etcd 3.5.1 (cluster version 3.5.0) with no downgrade job.
fn idle_answers() -> Vec<(i32, &'static str, Result<String, (Code, String)>)> {
    let format = "etcdserver: wrong downgrade target version format";
    let target = "etcdserver: invalid downgrade target version";
    vec![
        (VALIDATE, "3.4", Ok("3.5.0".into())),
        (VALIDATE, "3.4.7", Ok("3.5.0".into())),
        (VALIDATE, "3.3", refused(Code::InvalidArgument, target)),
        (VALIDATE, "3.5", refused(Code::InvalidArgument, target)),
        (VALIDATE, "x", refused(Code::InvalidArgument, format)),
        (VALIDATE, "v3.4", refused(Code::InvalidArgument, format)),
        (VALIDATE, "", refused(Code::InvalidArgument, format)),
        (ENABLE, "3.3", refused(Code::InvalidArgument, target)),
        (
            CANCEL,
            "",
            refused(
                Code::FailedPrecondition,
                "etcdserver: no inflight downgrade job",
            ),
        ),
        (
            5,
            "3.4",
            refused(Code::Unknown, "etcdserver: unknown method"),
        ),
    ]
}

#[tokio::test]
async fn downgrade_answers_as_etcd_without_a_job() {
    for kind in chorus_and_etcd() {
        let cluster = Cluster::start(kind, 1).await;
        assert_eq!(cluster.wait_cluster_version(0).await, "3.5.0", "{kind:?}");
        let mut m = MaintenanceClient::new(channel(&cluster, 0).await);
        for (action, version, want) in idle_answers() {
            let got = downgrade(&mut m, action, version).await;
            assert_eq!(got, want, "{kind:?} action {action} version {version:?}");
        }
    }
}

/// Member `i`'s Status after a linearizable read through it (it applied everything
/// committed before).
async fn downgrade_info(cluster: &Cluster, i: usize) -> Option<(bool, String)> {
    let c = cluster.member_client(i).await;
    c.get("fence", GetOptions::default()).await.unwrap();
    let status = cluster.status(i).await.unwrap();
    status.downgrade_info.map(|d| (d.enabled, d.target_version))
}

async fn every_member_shows(cluster: &Cluster, job: &Option<(bool, String)>) {
    for i in 0..cluster.len() {
        assert_eq!(&downgrade_info(cluster, i).await, job, "member {i}");
    }
}

/// Enable and cancel go through raft: every member refuses a second job, Status shows
/// the job (etcd 3.6's `downgradeInfo`) on every member and after a restart. (etcd 3.5
/// applies them too but answers "etcdserver: request timed out"; chorus answers.)
#[tokio::test]
async fn downgrade_job_is_replicated_and_persisted() {
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    cluster.wait_cluster_version(0).await;
    let mut m0 = MaintenanceClient::new(channel(&cluster, 0).await);
    let mut m2 = MaintenanceClient::new(channel(&cluster, 2).await);
    assert_eq!(downgrade_info(&cluster, 0).await, None);
    assert_eq!(downgrade(&mut m0, ENABLE, "3.4").await, Ok("3.5.0".into()));
    let busy = refused(
        Code::FailedPrecondition,
        "etcdserver: cluster has a downgrade job in progress",
    );
    assert_eq!(downgrade(&mut m2, VALIDATE, "3.4").await, busy);
    assert_eq!(downgrade(&mut m2, ENABLE, "3.4").await, busy);
    let job = Some((true, "3.4.0".to_string()));
    every_member_shows(&cluster, &job).await;
    cluster.restart(1).await;
    assert_eq!(downgrade_info(&cluster, 1).await, job);
    assert_eq!(downgrade(&mut m2, CANCEL, "").await, Ok("3.5.0".into()));
    let none = refused(
        Code::FailedPrecondition,
        "etcdserver: no inflight downgrade job",
    );
    assert_eq!(downgrade(&mut m0, CANCEL, "").await, none);
    every_member_shows(&cluster, &Some((false, String::new()))).await;
    assert_eq!(
        downgrade(&mut m0, VALIDATE, "3.4").await,
        Ok("3.5.0".into())
    );
}

/// A defragment writes its copy while applying goes on: puts sent to the member while
/// the copy waits (a crash point of the test build holds it 5 s before the switch) are
/// answered before the defragment ends, are in the backend it switches to, and every
/// member ends with the same HashKV.
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn puts_are_served_while_a_defragment_copies() {
    let mut cluster = Cluster::create(ServerKind::Chorus, 3, ClusterOptions::default());
    cluster
        .member_mut(0)
        .env
        .push(("FAILPOINTS".into(), "defragAfterCopy=sleep(5000)".into()));
    cluster.start_all().await;
    let m0 = cluster.member_client(0).await;
    for i in 0..100 {
        m0.put(format!("before/{i:03}"), "v", PutOptions::default())
            .await
            .unwrap();
    }
    let defragmenting = m0.clone();
    let defrag = tokio::spawn(async move { defragmenting.defragment().await });
    // The copy is written when the member logs it (bounded poll of its log).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cluster.log(0).contains("defragment: copy written") {
        assert!(std::time::Instant::now() < deadline, "{}", cluster.log(0));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for i in 0..20 {
        m0.put(format!("during/{i:02}"), "v", PutOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(dump(&m0).await.len(), 120);
    assert!(
        !defrag.is_finished(),
        "the defragment ended before the puts made during its copy were answered"
    );
    defrag.await.unwrap().unwrap();
    let log = cluster.log(0);
    assert!(log.contains("\"records-after-copy\":20"), "{log}");
    assert_eq!(dump(&m0).await.len(), 120);
    let rev = m0.get("before/000", GetOptions::default()).await.unwrap();
    let rev = rev.header.unwrap().revision;
    let mut hashes = Vec::new();
    for i in 0..3 {
        let c = cluster.member_client(i).await;
        hashes.push(c.hash_kv(rev).await.unwrap().hash);
    }
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
}
