//! Three members started with the flags kubeadm writes into its etcd static pods
//! (`cmd/kubeadm/app/phases/etcd/local.go`): TLS for clients and peers with client
//! certificates, `--listen-metrics-urls` on plain http, `--snapshot-count=10000`, and the
//! initial corruption check. For an etcd image before 3.6 kubeadm passes the
//! `--experimental-*` spellings and probes `/health?exclude=NOSPACE&serializable=true`;
//! from 3.6 on it passes `--feature-gates=InitialCorruptCheck=true` and probes `/livez`
//! and `/readyz`, all on the metrics URL.
//!
//! The 3.5 command line runs on etcd 3.5.1 too, and its probe answers are compared.

use crate::common;

use common::cluster::http_exchange;
use common::pki::Pki;
use common::{Cluster, ClusterOptions, Etcdctl, ServerKind};

/// kubeadm's flags that are the same on every member (the per-member URLs come from the
/// harness, with the same scheme and certificates kubeadm uses).
fn kubeadm_flags(etcd36: bool) -> Vec<String> {
    let mut flags = vec!["--snapshot-count=10000".to_owned()];
    if etcd36 {
        flags.push("--feature-gates=InitialCorruptCheck=true".to_owned());
        flags.push("--watch-progress-notify-interval=5s".to_owned());
    } else {
        flags.push("--experimental-initial-corrupt-check=true".to_owned());
        flags.push("--experimental-watch-progress-notify-interval=5s".to_owned());
    }
    flags
}

/// Starts three members of `kind` with kubeadm's flags; returns the cluster, the metrics
/// address of each member and the temporary directory holding the certificates.
async fn start(kind: ServerKind, etcd36: bool) -> (Cluster, Vec<String>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let (_, tls) = Pki::for_cluster(&tmp.path().join("pki"));
    let options = ClusterOptions {
        tls: Some(tls),
        extra_args: kubeadm_flags(etcd36),
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::create(kind, 3, options);
    let mut metrics = Vec::new();
    for (i, port) in common::free_ports(3).into_iter().enumerate() {
        let addr = format!("127.0.0.1:{port}");
        cluster
            .member_mut(i)
            .args
            .push(format!("--listen-metrics-urls=http://{addr}"));
        metrics.push(addr);
    }
    cluster.start_all().await;
    (cluster, metrics, tmp)
}

fn etcdctl(cluster: &Cluster) -> Etcdctl {
    let tls = cluster.options.tls.as_ref().unwrap();
    Etcdctl::v3(&cluster.endpoints())
        .binary(common::etcdctl35_binary().unwrap())
        .args(tls.v3_flags())
}

/// A write through one member and a read of it through every member.
async fn check_serves(cluster: &Cluster) {
    let put = etcdctl(cluster)
        .args(["put", "/registry/k", "v"])
        .run()
        .await;
    assert_eq!(put.ok().trim(), "OK");
    for endpoint in cluster.endpoints() {
        let tls = cluster.options.tls.as_ref().unwrap();
        let get = Etcdctl::v3(&[endpoint])
            .binary(common::etcdctl35_binary().unwrap())
            .args(tls.v3_flags())
            .args([
                "get",
                "/registry/k",
                "--print-value-only",
                "--consistency=s",
            ])
            .run()
            .await;
        assert_eq!(get.ok().trim(), "v");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubeadm_etcd_3_6_manifest_starts_and_passes_its_probes() {
    if !common::require_etcdctl35() {
        return;
    }
    let (cluster, metrics, _pki) = start(ServerKind::Chorus, true).await;
    check_serves(&cluster).await;
    for (i, addr) in metrics.iter().enumerate() {
        assert!(
            cluster
                .log(i)
                .contains("initial corruption checking passed"),
            "member {i} did not run the initial check"
        );
        for probe in ["/livez", "/readyz"] {
            let (code, body) = http_exchange(addr, "GET", probe, "").await;
            assert_eq!(
                (code, body.as_str()),
                (200, "ok\n"),
                "{probe} on member {i}"
            );
        }
    }
}

/// kubeadm's probes for etcd before 3.6 (liveness and startup).
const PROBES_3_5: [&str; 2] = [
    "/health?exclude=NOSPACE&serializable=true",
    "/health?serializable=false",
];

async fn probe_answers(metrics: &[String]) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for addr in metrics {
        for probe in PROBES_3_5 {
            out.push(http_exchange(addr, "GET", probe, "").await);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn kubeadm_etcd_3_5_manifest_answers_probes_as_etcd_3_5() {
    if !common::require_etcdctl35() || !common::require_etcd() {
        return;
    }
    let (chorus, chorus_metrics, _pki1) = start(ServerKind::Chorus, false).await;
    check_serves(&chorus).await;
    let (etcd, etcd_metrics, _pki2) = start(ServerKind::Etcd, false).await;
    check_serves(&etcd).await;
    let expected = probe_answers(&etcd_metrics).await;
    assert!(
        expected.iter().all(|(code, _)| *code == 200),
        "{expected:?}"
    );
    assert_eq!(probe_answers(&chorus_metrics).await, expected);
}
