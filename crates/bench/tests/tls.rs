//! chorus-bench over TLS (`--cacert`, `--cert`, `--key`, `--insecure-skip-tls-verify`)
//! against an in-process chorus member with client-certificate auth (`--cert-file`,
//! `--key-file`, `--trusted-ca-file`, `--client-cert-auth`) and certificates from the test
//! PKI (`chorus_server::net::tls::pki::Ca`); then the same against a real etcd when one is
//! installed (skipped otherwise, failed under `CI=true`, as in `tests/etcd.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chorus_bench::conn::ConnConfig;
use chorus_bench::tls::TlsFlags;
use chorus_config::{Command, Config};
use chorus_server::net::tls::pki::Ca;
use serde_json::Value;
use tempfile::TempDir;

/// Bound on one chorus-bench run.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a member becoming ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

use chorus_testports::free_ports;

/// A CA, a server/client certificate from it for 127.0.0.1, and a CA nobody trusts.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("chorus-bench-tls-")
            .tempdir()
            .expect("temp dir");
        let mut ca = Ca::new("chorus-bench test CA").unwrap();
        let member = ca
            .issue("member", &["127.0.0.1", "localhost"], false)
            .unwrap();
        let client = ca.issue("bench", &["127.0.0.1"], false).unwrap();
        let other = Ca::new("another CA").unwrap();
        let files = [
            ("ca.pem", ca.cert_pem()),
            ("member.pem", member.cert_pem),
            ("member-key.pem", member.key_pem),
            ("client.pem", client.cert_pem),
            ("client-key.pem", client.key_pem),
            ("other-ca.pem", other.cert_pem()),
        ];
        for (name, pem) in files {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// etcd's (and chorus's) flags for one member serving https with client-cert auth.
    fn member_flags(&self, data_dir: &Path, client_port: u16, peer_port: u16) -> Vec<String> {
        let client_url = format!("https://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        vec![
            "--name=default".into(),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            format!("--cert-file={}", self.path("member.pem")),
            format!("--key-file={}", self.path("member-key.pem")),
            format!("--trusted-ca-file={}", self.path("ca.pem")),
            "--client-cert-auth".into(),
        ]
    }

    fn client_flags(&self) -> TlsFlags {
        TlsFlags {
            cacert: Some(self.path("ca.pem").into()),
            cert: Some(self.path("client.pem").into()),
            key: Some(self.path("client-key.pem").into()),
            insecure_skip_verify: false,
        }
    }
}

/// Waits until the member at `endpoint` answers Status with a leader, dialling as
/// chorus-bench does.
async fn wait_ready(endpoint: &str, tls: TlsFlags, alive: &mut dyn FnMut() -> bool) {
    let config = ConnConfig {
        endpoints: vec![endpoint.to_owned()],
        conns: 1,
        dial_timeout: Duration::from_secs(1),
        target_leader: false,
        tls,
        credentials: None,
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        assert!(alive(), "the member exited");
        match config.connect(0).await {
            Ok(conns) => match conns.clients[0].status().await {
                Ok(s) if s.leader != 0 => return,
                Ok(_) => last = "no leader yet".into(),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{endpoint} not ready in {READY_TIMEOUT:?}: {last}");
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Runs chorus-bench (bounded): exit success, stdout, stderr.
async fn run_bench(args: &[String]) -> (bool, String, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chorus-bench");
    let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("chorus-bench {args:?} did not finish in {RUN_TIMEOUT:?}"))
        .expect("chorus-bench output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs chorus-bench with `-w json`; the report of `report`, which must count `requests`
/// successes and no error.
async fn bench_ok(args: &[String], report: &str, requests: u64) -> Value {
    let args = [&["-w".to_owned(), "json".to_owned()], args].concat();
    let (ok, out, err) = run_bench(&args).await;
    assert!(ok, "chorus-bench {args:?} failed: {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    let r = &v["reports"][report];
    assert_eq!(r["requests"], requests, "{args:?}: {r}");
    assert_eq!(r["errors"], 0, "{args:?}: {r}");
    v
}

/// chorus-bench must fail before the run, with `expect` in its message.
async fn bench_refused(args: &[&str], expect: &[&str]) {
    let args = owned(args);
    let (ok, out, err) = run_bench(&args).await;
    assert!(!ok, "chorus-bench {args:?} should fail; it printed {out}");
    assert!(out.is_empty(), "{out}");
    eprintln!("refused as expected: {}", err.trim());
    for e in expect {
        assert!(
            err.contains(e),
            "chorus-bench {args:?}: {e:?} not in {err:?}"
        );
    }
}

/// The checks, against any member serving `https://127.0.0.1:port` with client-cert auth
/// by the PKI's CA.
async fn check_tls(pki: &Pki, port: u16) {
    let https = format!("https://127.0.0.1:{port}");
    let bare = format!("127.0.0.1:{port}");
    let (ca, cert, key) = (
        format!("--cacert={}", pki.path("ca.pem")),
        format!("--cert={}", pki.path("client.pem")),
        format!("--key={}", pki.path("client-key.pem")),
    );
    // `--endpoints <endpoint>`, the CA and the client certificate, then `rest`.
    let with_auth = |endpoint: &str, rest: &[&str]| -> Vec<String> {
        owned(&[&["--endpoints", endpoint, &ca, &cert, &key], rest].concat())
    };

    // https:// endpoint, CA and client certificate: a clean run.
    let put = with_auth(
        &https,
        &[
            "--conns=2",
            "--clients=4",
            "put",
            "--total=100",
            "--key-space-size=10",
        ],
    );
    let v = bench_ok(&put, "put", 100).await;
    assert_eq!(v["endpoints"][0], https);

    // No scheme: the TLS flags make it https. Linearizable range and watch too.
    let range = with_auth(&bare, &["--clients=2", "range", "foo", "--total=50"]);
    bench_ok(&range, "range", 50).await;
    let watch = with_auth(
        &bare,
        &[
            "--clients=2",
            "watch-latency",
            "--total=5",
            "--put-rate=100",
        ],
    );
    bench_ok(&watch, "watch-latency", 10).await;

    // --target-leader finds the advertised https:// URL and dials it with TLS.
    let txn = with_auth(&bare, &["--target-leader", "txn-put", "--total=20"]);
    let v = bench_ok(&txn, "txn-put", 20).await;
    assert_eq!(v["endpoints"][0], https);

    // --insecure-skip-tls-verify: no CA needed, the client certificate still goes.
    let insecure = [
        "--endpoints",
        &bare,
        "--insecure-skip-tls-verify",
        &cert,
        &key,
    ];
    bench_ok(
        &owned(&[&insecure[..], &["put", "--total=10"]].concat()),
        "put",
        10,
    )
    .await;

    // Refusals: no client certificate, a CA that did not sign the server's, plain text
    // to a TLS port, half a key pair.
    bench_refused(
        &["--endpoints", &https, &ca, "put", "--total=1"],
        &["dial error"],
    )
    .await;
    let other = format!("--cacert={}", pki.path("other-ca.pem"));
    bench_refused(
        &[
            "--endpoints",
            &https,
            &other,
            &cert,
            &key,
            "put",
            "--total=1",
        ],
        &["dial error", "UnknownIssuer"],
    )
    .await;
    let plain = format!("http://127.0.0.1:{port}");
    bench_refused(
        &[
            "--endpoints",
            &plain,
            "--dial-timeout=1s",
            "put",
            "--total=1",
        ],
        &["dial error"],
    )
    .await;
    bench_refused(
        &["--endpoints", &https, &ca, &cert, "put", "--total=1"],
        &["--cert needs --key"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_against_chorus_with_client_cert_auth() {
    let pki = Pki::new();
    let ports = free_ports(2);
    let flags = pki.member_flags(&pki.data_dir("chorus"), ports[0], ports[1]);
    let cfg = match Config::parse(&flags, &[], &mut Vec::new()).expect("config") {
        Command::Run(cfg) => cfg,
        _ => panic!("not a run command"),
    };
    let tls = chorus_server::net::tls::MemberTls::from_config(&cfg).expect("member TLS");
    let listeners = chorus_server::net::bind_listeners(
        "--listen-client-urls",
        &cfg.listen_client_urls,
        tls.client.is_some(),
    )
    .await
    .expect("bind");
    let running = chorus_server::bootstrap::start(&cfg, &tls)
        .await
        .expect("start member");
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = listeners
        .into_iter()
        .map(|(_, listener)| {
            tokio::spawn(chorus_server::api::serve_clients(
                running.member.clone(),
                listener,
                chorus_server::net::ListenerOptions {
                    tls: tls.client.clone(),
                    keepalive: None,
                    shutdown: shutdown_rx.clone(),
                    drain: chorus_server::net::CLIENT_DRAIN_TIMEOUT,
                },
            ))
        })
        .collect();
    tokio::spawn(chorus_server::bootstrap::publish_attributes(
        running.member.clone(),
        vec![format!("https://127.0.0.1:{}", ports[0])],
    ));

    wait_ready(
        &format!("https://127.0.0.1:{}", ports[0]),
        pki.client_flags(),
        &mut || true,
    )
    .await;
    check_tls(&pki, ports[0]).await;

    let _ = shutdown_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    running.shutdown().await.expect("clean shutdown");
}

/// A child process killed and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_against_etcd_with_client_cert_auth() {
    let Some(etcd) = common::etcd_binary() else {
        return;
    };
    let pki = Pki::new();
    let ports = free_ports(2);
    let log = pki.data_dir("etcd.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut cmd = std::process::Command::new(etcd);
    cmd.args(pki.member_flags(&pki.data_dir("etcd"), ports[0], ports[1]))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    let mut proc = Proc(common::spawn_tied(&mut cmd).expect("spawn etcd"));
    let mut alive = || proc.0.try_wait().map(|s| s.is_none()).unwrap_or(false);
    wait_ready(
        &format!("https://127.0.0.1:{}", ports[0]),
        pki.client_flags(),
        &mut alive,
    )
    .await;
    check_tls(&pki, ports[0]).await;
}
