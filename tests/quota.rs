//! `--quota-backend-bytes` counted as etcd counts it: etcd's own alarm test
//! (`tests/e2e/ctl_v3_alarm_test.go`) runs a member with a 13-page quota, where a small
//! put fits and 4 KiB values fill the backend until `database space exceeded`; then the
//! NOSPACE runbook (compact, defrag, disarm) makes room again. The same steps run with
//! etcdctl 3.5.1 against etcd 3.5.1 and chorus, and their outputs are compared.

use crate::common;

use common::{Cluster, ClusterOptions, Etcdctl, ServerKind};

const QUOTA: usize = 13 * 4096;
const NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";
/// Bound on the filling loop: etcd 3.5.1 refuses the 9th 4 KiB put.
const MAX_FILL: usize = 200;

fn etcdctl(cluster: &Cluster) -> Etcdctl {
    Etcdctl::v3(&cluster.endpoints()).binary(common::etcdctl35_binary().unwrap())
}

/// What one member answered along etcd's alarm test, for comparison.
#[derive(Debug, PartialEq)]
struct Transcript {
    first_put: String,
    alarms: String,
    health: (u16, String),
    refused_put: bool,
    after_runbook: String,
}

async fn alarm_test(kind: ServerKind) -> (Transcript, usize) {
    let options = ClusterOptions {
        extra_args: vec![format!("--quota-backend-bytes={QUOTA}")],
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(kind, 1, options).await;
    let small = "a".repeat(64);
    let first_put = etcdctl(&cluster)
        .args(["put", "1st_test", &small])
        .run()
        .await;
    let page = "b".repeat(4096);
    let mut filled = 0;
    loop {
        let out = etcdctl(&cluster)
            .args(["put", "2nd_test", &page])
            .run()
            .await;
        if !out.success() {
            assert!(out.stderr.contains(NO_SPACE), "{kind:?}: {}", out.stderr);
            break;
        }
        filled += 1;
        assert!(
            filled < MAX_FILL,
            "{kind:?}: {MAX_FILL} pages of values fit in {QUOTA} bytes"
        );
    }
    let alarms = etcdctl(&cluster).args(["alarm", "list"]).run().await;
    let health = cluster.http_get(0, "/health").await;
    let refused = etcdctl(&cluster)
        .args(["put", "3rd_test", &small])
        .run()
        .await;
    let rev = cluster.status(0).await.unwrap().header.unwrap().revision;
    let compact = etcdctl(&cluster)
        .args(["compact", &rev.to_string(), "--physical"])
        .run()
        .await;
    assert!(compact.success(), "{kind:?}: {}", compact.stderr);
    let defrag = etcdctl(&cluster).args(["defrag"]).run().await;
    assert!(defrag.success(), "{kind:?}: {}", defrag.stderr);
    let disarm = etcdctl(&cluster).args(["alarm", "disarm"]).run().await;
    assert!(disarm.success(), "{kind:?}: {}", disarm.stderr);
    let after = etcdctl(&cluster)
        .args(["put", "4th_test", &small])
        .run()
        .await;
    let (_, ids) = cluster.ids().await;
    let transcript = Transcript {
        first_put: first_put.ok().trim().to_owned(),
        alarms: alarms.ok().trim().replace(&ids[0].to_string(), "<member>"),
        health,
        refused_put: !refused.success() && refused.stderr.contains(NO_SPACE),
        after_runbook: after.ok().trim().to_owned(),
    };
    (transcript, filled)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thirteen_page_quota_behaves_as_in_etcd() {
    if !common::require_etcd() || !common::require_etcdctl35() {
        return;
    }
    let (etcd, etcd_filled) = alarm_test(ServerKind::Etcd).await;
    let (chorus, chorus_filled) = alarm_test(ServerKind::Chorus).await;
    assert_eq!(
        etcd,
        Transcript {
            first_put: "OK".into(),
            alarms: "memberID:<member> alarm:NOSPACE".into(),
            health: (
                503,
                "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}\n".into()
            ),
            refused_put: true,
            after_runbook: "OK".into(),
        }
    );
    assert_eq!(chorus, etcd);
    // Both let some 4 KiB values in before the quota is reached.
    assert!(
        etcd_filled > 0 && chorus_filled > 0,
        "{etcd_filled} {chorus_filled}"
    );
    eprintln!("4 KiB puts before NOSPACE: etcd {etcd_filled}, chorus {chorus_filled}");
}
