//! Debian's real Prometheus scrapes a 3-member chorus cluster (`/metrics` on the client
//! URLs, `--metrics=extensive`), and the expressions of etcd's documented alerts evaluate
//! to data through its HTTP API: each alert's measured expression has a series per member
//! (or per job), a healthy cluster fires none of the alerts whose outcome does not depend
//! on this machine's speed, and a killed member fires "members down". The expressions are
//! written here from etcd's operations guide (its alerting rules), not vendored.

use crate::common;

use std::time::{Duration, Instant};

use chorus_client::PutOptions;
use common::http::{self, HttpRequest};
use common::{Cluster, ClusterOptions, ServerKind};

/// Bound on Prometheus starting, scraping, and a series appearing after a change
/// (scrapes are every second; polled, Prometheus has nothing to await).
const SETTLE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(250);

/// Each alert's measured expression (etcd's rule without its threshold) and how many
/// series it must have on a healthy 3-member cluster under writes.
const MEASURED: &[(&str, &str, usize)] = &[
    (
        "etcdNoLeader",
        r#"etcd_server_has_leader{job=~".*etcd.*"}"#,
        3,
    ),
    (
        "etcdHighNumberOfLeaderChanges",
        r#"max by (job) (etcd_server_leader_changes_seen_total{job=~".*etcd.*"})"#,
        1,
    ),
    (
        "etcdHighNumberOfFailedGRPCRequests",
        r#"sum(rate(grpc_server_handled_total{job=~".*etcd.*"}[5m])) without (grpc_type, grpc_code)"#,
        0,
    ),
    (
        "etcdGRPCRequestsSlow",
        r#"histogram_quantile(0.99, sum(rate(grpc_server_handling_seconds_bucket{job=~".*etcd.*", grpc_method!="Defragment", grpc_type="unary"}[5m])) without(grpc_type))"#,
        0,
    ),
    (
        "etcdHighNumberOfFailedProposals",
        r#"rate(etcd_server_proposals_failed_total{job=~".*etcd.*"}[15m])"#,
        3,
    ),
    (
        "etcdHighFsyncDurations",
        r#"histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{job=~".*etcd.*"}[5m]))"#,
        3,
    ),
    (
        "etcdHighCommitDurations",
        r#"histogram_quantile(0.99, rate(etcd_disk_backend_commit_duration_seconds_bucket{job=~".*etcd.*"}[5m]))"#,
        3,
    ),
    (
        "etcdDatabaseQuotaLowSpace",
        r#"(last_over_time(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[5m]) / last_over_time(etcd_server_quota_backend_bytes{job=~".*etcd.*"}[5m])) * 100"#,
        3,
    ),
    (
        "etcdDatabaseHighFragmentationRatio",
        r#"last_over_time(etcd_mvcc_db_total_size_in_use_in_bytes{job=~".*etcd.*"}[5m]) / last_over_time(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[5m])"#,
        3,
    ),
];

/// Alerts that must not fire on a healthy cluster, whatever the machine's speed.
const QUIET: &[(&str, &str)] = &[
    (
        "etcdNoLeader",
        r#"etcd_server_has_leader{job=~".*etcd.*"} == 0"#,
    ),
    (
        "etcdInsufficientMembers",
        r#"sum(up{job=~".*etcd.*"} == bool 1) by (job) < ((count(up{job=~".*etcd.*"}) by (job) + 1) / 2)"#,
    ),
    (
        "etcdHighNumberOfFailedProposals",
        r#"rate(etcd_server_proposals_failed_total{job=~".*etcd.*"}[15m]) > 5"#,
    ),
    (
        "etcdHighNumberOfFailedGRPCRequests",
        r#"100 * sum(rate(grpc_server_handled_total{job=~".*etcd.*", grpc_code=~"Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"}[5m])) without (grpc_type, grpc_code) / sum(rate(grpc_server_handled_total{job=~".*etcd.*"}[5m])) without (grpc_type, grpc_code) > 1"#,
    ),
];

/// etcd's "members down" rule: fires while a member's target is down.
const MEMBERS_DOWN: &str = r#"max without (endpoint) (sum without (instance) (up{job=~".*etcd.*"} == bool 0) or count without (To) (sum without (instance) (rate(etcd_network_peer_sent_failures_total{job=~".*etcd.*"}[120s])) > 0.01)) > 0"#;

struct Prometheus {
    addr: String,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Prometheus on a port chosen here, scraping `targets` every second as job `etcd`.
    async fn start(targets: &[String]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: etcd\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let addr = format!("127.0.0.1:{}", common::free_low_ports(1)[0]);
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = tokio::process::Command::new(common::prometheus_binary().unwrap())
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            addr,
            child,
            _dir: dir,
        };
        p.wait_ready().await;
        p
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + SETTLE;
        while tokio::net::TcpStream::connect(&self.addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "prometheus did not listen: {}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
        loop {
            let ready = http::send(&self.addr, &HttpRequest::new("GET", "/-/ready")).await;
            if ready.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready: {}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The series an instant query returns (`/api/v1/query`), as (labels, value).
    async fn query(&self, expr: &str) -> Vec<(serde_json::Value, String)> {
        let req =
            HttpRequest::new("POST", "/api/v1/query").form(&format!("query={}", encode(expr)));
        let resp = http::send(&self.addr, &req).await;
        let body = resp.json();
        assert_eq!(body["status"], "success", "{expr}: {}", resp.body);
        body["data"]["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|s| {
                (
                    s["metric"].clone(),
                    s["value"][1].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// Waits (bounded) until `expr` has `n` series whose values are numbers (with `n` 0:
    /// any number of series, one of them a number); returns them.
    async fn series(&self, name: &str, expr: &str, n: usize) -> Vec<(serde_json::Value, String)> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let found = self.query(expr).await;
            let number = |v: &String| v.parse::<f64>().is_ok_and(|x| !x.is_nan());
            // Per-method series (n = 0) exist for every method, as etcd initialises them;
            // those never called are NaN, so one number is enough there.
            let done = if n == 0 {
                found.iter().any(|(_, v)| number(v))
            } else {
                found.len() == n && found.iter().all(|(_, v)| number(v))
            };
            if done {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: `{expr}` gave {found:?}, want {n} series of numbers"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Form encoding of a PromQL expression.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_alert_expressions_evaluate_on_a_chorus_cluster() {
    if !common::require_prometheus() {
        return;
    }
    let options = ClusterOptions {
        extra_args: vec!["--metrics=extensive".into()],
        ..Default::default()
    };
    let mut cluster = Cluster::start_with(ServerKind::Chorus, 3, options).await;
    let targets: Vec<String> = (0..3).map(|i| cluster.client_addr(i)).collect();
    let prom = Prometheus::start(&targets).await;
    prom.series("up", r#"up{job="etcd"} == 1"#, 3).await;

    // Writes while the histograms fill: bounded in count, stopped when the checks end.
    let client = cluster.client().await;
    let writer = tokio::spawn(async move {
        for i in 0..20_000u32 {
            let _ = client
                .put(format!("k{}", i % 100), "v", PutOptions::default())
                .await;
        }
    });
    for (name, expr, n) in MEASURED {
        prom.series(name, expr, *n).await;
    }
    let leaders = prom.query(MEASURED[0].1).await;
    assert!(leaders.iter().all(|(_, v)| v == "1"), "{leaders:?}");
    for (name, expr) in QUIET {
        let fired = prom.query(expr).await;
        assert!(
            fired.is_empty(),
            "{name} fires on a healthy cluster: {fired:?}"
        );
    }
    writer.abort();

    // A member down: its target goes down and etcd's "members down" rule fires.
    cluster.kill9(2);
    let down = prom.series("etcdMembersDown", MEMBERS_DOWN, 1).await;
    assert_eq!(down[0].1, "1", "{down:?}");
}
