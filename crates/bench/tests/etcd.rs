//! chorus-bench against a real 1-member etcd on free 127.0.0.1 ports: every command runs a
//! short load and the counts of its JSON report are checked.
//!
//! The server is `$CHORUS_TEST_ETCD`, else `etcd` on `PATH`; without one the tests print
//! a skip note and pass, except under `CI=true`, where they fail.
//! `CHORUS_BENCH_TEST_SERVER=/path/to/chorus` runs the same tests against another
//! etcd-compatible binary (it gets etcd's flags).

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_client::{Client, ConnectOptions};
use serde_json::Value;
use tempfile::TempDir;

/// Bound on one bench run (they take well under a second each).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the server becoming ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The server to test against, or `None` (skip) when there is none outside CI.
fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHORUS_BENCH_TEST_SERVER") {
        return Some(PathBuf::from(path));
    }
    common::etcd_binary()
}

/// One member on free ports, killed and reaped on drop.
struct Server {
    child: Child,
    endpoint: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Server {
    fn start(binary: &PathBuf) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("chorus-bench-test-")
            .tempdir()
            .expect("temp dir");
        let ports = chorus_testports::free_ports(2);
        let client_url = format!("http://127.0.0.1:{}", ports[0]);
        let peer_url = format!("http://127.0.0.1:{}", ports[1]);
        let log = dir.path().join("server.log");
        let log_file = File::create(&log).expect("log file");
        let mut cmd = Command::new(binary);
        cmd.args([
            "--name=default".to_owned(),
            format!("--data-dir={}", dir.path().join("data").display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
        ])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file);
        let child = common::spawn_tied(&mut cmd)
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let mut server = Server {
            child,
            endpoint: client_url,
            log,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn wait_ready(&mut self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let endpoint = self.endpoint.clone();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("server exited with {status}; log:\n{}", self.log_tail());
            }
            let ready = runtime.block_on(async {
                let client = Client::connect(&[&endpoint], ConnectOptions::default())
                    .await
                    .ok()?;
                tokio::time::timeout(Duration::from_secs(2), client.status())
                    .await
                    .ok()?
                    .ok()
            });
            if matches!(ready, Some(s) if s.leader != 0) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "server not ready in {READY_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs chorus-bench against this server with `-w json`; the parsed report.
    fn bench(&self, args: &[&str]) -> Value {
        let output = run_bench(&[&["--endpoints", &self.endpoint, "-w", "json"], args].concat());
        assert!(
            output.0.success(),
            "chorus-bench {args:?} failed: {}\nserver log:\n{}",
            output.2,
            self.log_tail()
        );
        serde_json::from_str(&output.1)
            .unwrap_or_else(|e| panic!("chorus-bench {args:?}: not JSON ({e}): {}", output.1))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary (bounded by RUN_TIMEOUT): exit status, stdout, stderr.
fn run_bench(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("out"))
        .stderr(File::create(&err_path).expect("err"))
        .spawn()
        .expect("spawn chorus-bench");
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chorus-bench {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        std::fs::read_to_string(out_path).unwrap_or_default(),
        std::fs::read_to_string(err_path).unwrap_or_default(),
    )
}

/// The report's successful count, with no error; and sane numbers.
fn assert_clean(v: &Value, report: &str, requests: u64) {
    let r = &v["reports"][report];
    assert_eq!(r["requests"], requests, "{report}: {r}");
    assert_eq!(r["errors"], 0, "{report}: {r}");
    assert!(r["requests_per_sec"].as_f64().unwrap() > 0.0, "{r}");
    let lat = &r["latency_seconds"];
    let (fastest, p50, slowest) = (
        lat["fastest"].as_f64().unwrap(),
        lat["p50"].as_f64().unwrap(),
        lat["slowest"].as_f64().unwrap(),
    );
    assert!(fastest <= p50 && p50 <= slowest, "{lat}");
    let counted: u64 = r["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, requests, "histogram counts every request");
}

#[test]
fn put_range_txn_put_against_etcd() {
    let Some(binary) = server_binary() else {
        return;
    };
    let server = Server::start(&binary);

    let v = server.bench(&[
        "--conns=2",
        "--clients=4",
        "put",
        "--total=300",
        "--key-space-size=50",
        "--sequential-keys",
    ]);
    assert_eq!(v["command"], "put");
    assert_eq!(v["conns"], 2);
    assert_eq!(v["clients"], 4);
    assert_eq!(v["params"]["total"], 300);
    assert_clean(&v, "put", 300);

    for consistency in ["l", "s"] {
        let v = server.bench(&[
            "--clients=3",
            "range",
            "foo",
            "fop",
            "--total=200",
            &format!("--consistency={consistency}"),
        ]);
        assert_eq!(v["params"]["consistency"], consistency);
        assert_clean(&v, "range", 200);
    }

    let v = server.bench(&[
        "--clients=2",
        "txn-put",
        "--total=100",
        "--txn-ops=3",
        "--key-space-size=30",
    ]);
    assert_clean(&v, "txn-put", 100);

    let v = server.bench(&["--clients=2", "txn-mixed", "--total=200", "--rw-ratio=1"]);
    let (reads, writes) = (
        v["extra"]["read_ops"].as_u64().unwrap(),
        v["extra"]["write_ops"].as_u64().unwrap(),
    );
    assert_eq!(reads + writes, 200);
    assert!(reads > 0 && writes > 0, "{reads} reads, {writes} writes");
    assert_clean(&v, "read", reads);
    assert_clean(&v, "write", writes);

    // --target-leader finds the (only) member through Status and MemberList.
    let v = server.bench(&["--target-leader", "put", "--total=20"]);
    assert_eq!(v["endpoints"][0], server.endpoint);
    assert_clean(&v, "put", 20);
}

#[test]
fn rate_limit_holds_against_etcd() {
    let Some(binary) = server_binary() else {
        return;
    };
    let server = Server::start(&binary);
    // 40 puts at 100/s: 39 intervals of 10 ms, so at least 0.39 s.
    let v = server.bench(&["--clients=4", "put", "--total=40", "--rate=100"]);
    assert_clean(&v, "put", 40);
    let total = v["reports"]["put"]["total_seconds"].as_f64().unwrap();
    assert!(
        (0.38..2.0).contains(&total),
        "40 puts at 100/s took {total} s"
    );
}

#[test]
fn watch_fan_out_against_etcd() {
    let Some(binary) = server_binary() else {
        return;
    };
    let server = Server::start(&binary);
    // 4 streams x 25 watchers on 2 keys, 60 puts (30 per key): each watcher sees 30
    // events, 3000 in all.
    let v = server.bench(&[
        "--conns=2",
        "--clients=2",
        "watch",
        "--streams=4",
        "--watch-per-stream=25",
        "--watched-key-total=2",
        "--key-space-size=1000",
        "--sequential-keys",
        "--put-total=60",
        "--event-timeout=20s",
    ]);
    assert_eq!(v["extra"]["watchers"], 100);
    assert_eq!(v["extra"]["events_expected"], 3000);
    assert_eq!(v["extra"]["events_received"], 3000);
    assert_clean(&v, "watch-creation", 100);
    assert_clean(&v, "put", 60);
    assert_clean(&v, "events", 3000);

    let v = server.bench(&[
        "--clients=3",
        "watch-latency",
        "--total=30",
        "--put-rate=1000",
    ]);
    assert_clean(&v, "put", 30);
    assert_clean(&v, "watch-latency", 90);
}

#[test]
fn lease_keepalive_against_etcd() {
    let Some(binary) = server_binary() else {
        return;
    };
    let server = Server::start(&binary);
    let v = server.bench(&["--conns=2", "--clients=3", "lease-keepalive", "--total=200"]);
    assert_eq!(v["command"], "lease-keepalive");
    assert_clean(&v, "lease-keepalive", 200);
}

#[test]
fn text_report_has_etcds_layout() {
    let Some(binary) = server_binary() else {
        return;
    };
    let server = Server::start(&binary);
    let (status, out, err) = run_bench(&[
        "--endpoints",
        &server.endpoint,
        "range",
        "foo",
        "--total=50",
    ]);
    assert!(status.success(), "{err}");
    assert!(
        err.is_empty(),
        "no progress bar when stderr is not a terminal: {err:?}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bench with linearizable range");
    assert_eq!(lines[2], "Summary:");
    for (line, label) in lines[3..9].iter().zip([
        "  Total:\t",
        "  Slowest:\t",
        "  Fastest:\t",
        "  Average:\t",
        "  Stddev:\t",
        "  Requests/sec:\t",
    ]) {
        assert!(
            line.starts_with(label),
            "{line:?} should start with {label:?}"
        );
    }
    assert!(out.contains("\nResponse time histogram:\n"), "{out}");
    assert!(out.contains("\nLatency distribution:\n  10% in "), "{out}");
}

#[test]
fn unreachable_endpoint_and_missing_ca_fail_cleanly() {
    // No server needed: a port nobody listens on, and TLS flags.
    let port = chorus_testports::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let (status, out, err) = run_bench(&[
        "--endpoints",
        &endpoint,
        "--dial-timeout=500ms",
        "put",
        "--total=1",
    ]);
    assert!(!status.success());
    assert!(out.is_empty());
    assert!(err.contains("dial error"), "{err}");

    // TLS with a CA file that is not there: refused before dialling, naming the file.
    let (status, _, err) = run_bench(&["--endpoints", &endpoint, "--cacert=/nonexistent", "put"]);
    assert!(!status.success());
    assert!(err.contains("--cacert /nonexistent"), "{err}");
}
