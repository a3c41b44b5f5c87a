//! Listeners and TLS of the client and peer ports as etcd 3.5 serves them, side by side
//! with the real etcd where the behaviour can be seen: the same flags, the same client
//! commands, the same outcome and error text. etcd 3.5.1 (`target/etcd-v3.5.1`,
//! `scripts/install-etcd35.sh`) and 3.4.23 (`/usr/bin/etcd`) are the oracles, each for
//! what it has (3.5.1 has no --max-concurrent-streams, neither has
//! --listen-client-http-urls nor lists of allowed CNs: those run against chorus alone).
//!
//! ```text
//!   unix sockets ........ a 3-member cluster on unix:// client and peer URLs; etcdctl 3.4/3.5
//!   one port ............ http:// and https:// on one host:port
//!   split ............... --listen-client-http-urls: gRPC-only and HTTP-only listeners
//!   TLS ................. DER CRL, self-signed CA:TRUE certificates (clients and peers),
//!                         --peer-client-cert-file, --client-cert-allowed-hostname, several
//!                         allowed CNs, --self-signed-cert-validity, the rejected-connection line
//!   limits .............. --max-concurrent-streams (HTTP/2 SETTINGS, the gateway),
//!                         --socket-reuse-port
//!   HTTP policy ......... --cors, --host-whitelist
//!   start-up ............ bad values fail with etcd's error, before anything is written
//! ```
//! Members run as processes in a temporary directory (their working directory, where
//! Unix sockets are), on 127.0.0.1 ports chosen at run time.

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_server::net::tls::pki::Usage;
use common::{free_ports, tail, Etcdctl, HttpRequest, HttpStream, Pki};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Poll interval while waiting for another process (there is no event to await).
const POLL: Duration = Duration::from_millis(25);
/// Bound on a member becoming healthy, or a log line appearing.
const READY: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Chorus,
    Etcd35,
    Etcd34,
}

impl Kind {
    fn binary(self) -> PathBuf {
        match self {
            Kind::Chorus => PathBuf::from(env!("CARGO_BIN_EXE_chorus")),
            Kind::Etcd35 => common::etcd35_binary().expect("etcd 3.5.1"),
            Kind::Etcd34 => common::etcd34_binary().expect("etcd 3.4"),
        }
    }

    /// chorus, then each oracle that is installed (a missing one fails under CI=true).
    fn with(oracles: &[Kind]) -> Vec<Kind> {
        let mut kinds = vec![Kind::Chorus];
        for &k in oracles {
            let here = match k {
                Kind::Chorus => false,
                Kind::Etcd35 => common::require_etcd35(),
                Kind::Etcd34 => common::require_etcd34(),
            };
            if here {
                kinds.push(k);
            }
        }
        kinds
    }
}

/// A member process; its working directory is `dir`, its output `dir/<name>.log`.
struct Server {
    kind: Kind,
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn command(kind: Kind, dir: &Path, args: &[String], log: &Path) -> Command {
    let out = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(kind.binary());
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCD") {
            cmd.env_remove(name);
        }
    }
    // SAFETY: prctl is async-signal-safe; the member dies with the test process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

impl Server {
    fn spawn(kind: Kind, dir: &Path, name: &str, args: &[String]) -> Server {
        let log = dir.join(format!("{name}.log"));
        let child = command(kind, dir, args, &log)
            .spawn()
            .expect("spawn member");
        Server {
            kind,
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn check_alive(&mut self) {
        let child = self.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("try_wait") {
            self.child = None;
            panic!(
                "{:?} {} exited with {status}:\n{}",
                self.kind,
                self.name,
                tail(&self.log, 40)
            );
        }
    }

    /// Waits until `GET /health` over `probe` says healthy.
    async fn wait_healthy(&mut self, probe: &Probe) {
        let deadline = Instant::now() + READY;
        loop {
            self.check_alive();
            if let Some((200, body)) = probe.get("/health", &[]).await {
                if body.contains("true") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{:?} {} not healthy; log:\n{}",
                self.kind,
                self.name,
                tail(&self.log, 40)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the log has a line containing every one of `needles`; returns it.
    async fn wait_log(&mut self, needles: &[&str]) -> String {
        let deadline = Instant::now() + READY;
        loop {
            let text = self.log_text();
            if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "{:?} {}: no line with {needles:?}:\n{}",
                self.kind,
                self.name,
                tail(&self.log, 40)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM and a bounded wait for the exit.
    async fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child, not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().expect("try_wait").is_none() {
            assert!(Instant::now() < deadline, "{} did not stop", self.name);
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Runs a member that must fail to start; returns its exit code and output.
async fn start_failure(kind: Kind, dir: &Path, args: &[String]) -> (i32, String) {
    let log = dir.join(format!("fail-{kind:?}.log"));
    let mut child = command(kind, dir, args, &log).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{kind:?} {args:?} kept running:\n{}", tail(&log, 20));
        }
        tokio::time::sleep(POLL).await;
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    (status.code().unwrap_or(-1), text)
}

/// The error a failed start reports: chorus's `chorus: <error>` line, etcd 3.5's fatal
/// line's `error` field, etcd 3.4's `C | ...: <error>`.
fn start_error(kind: Kind, output: &str) -> String {
    let found = match kind {
        Kind::Chorus => output
            .lines()
            .find_map(|l| l.strip_prefix("chorus: "))
            .map(str::to_string),
        Kind::Etcd35 => output
            .lines()
            .filter(|l| l.contains(r#""level":"fatal""#))
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["error"].as_str().map(str::to_string)),
        Kind::Etcd34 => output
            .lines()
            .find_map(|l| l.split_once(" C | ").map(|(_, r)| r.to_string()))
            .and_then(|r| r.split_once(": ").map(|(_, e)| e.to_string())),
    };
    found.unwrap_or_else(|| panic!("{kind:?}: no start-up error in:\n{output}"))
}

/// Where to send a raw HTTP/1.0 request: a TCP address or a Unix socket file.
enum Probe {
    Tcp(String),
    Unix(PathBuf),
}

impl Probe {
    /// `GET path` with extra headers; status and body, None when the exchange failed.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
        let exchange = async {
            match self {
                Probe::Tcp(addr) => {
                    let io = tokio::net::TcpStream::connect(addr).await.ok()?;
                    raw_get(io, addr, path, headers).await
                }
                Probe::Unix(p) => {
                    let io = tokio::net::UnixStream::connect(p).await.ok()?;
                    raw_get(io, "localhost", path, headers).await
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .ok()
            .flatten()
    }
}

async fn raw_get<I: AsyncRead + AsyncWrite + Unpin>(
    mut io: I,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    let mut req = format!("GET {path} HTTP/1.0\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req += &format!("Host: {host}\r\n");
    }
    for (n, v) in headers {
        req += &format!("{n}: {v}\r\n");
    }
    req += "\r\n";
    io.write_all(req.as_bytes()).await.ok()?;
    let mut resp = Vec::new();
    io.read_to_end(&mut resp).await.ok()?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The flags of member `name` of a cluster (data dir under the working directory).
fn member_args(name: &str, client: &str, peer: &str, cluster: &str) -> Vec<String> {
    vec![
        format!("--name={name}"),
        format!("--data-dir={name}.data"),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster={cluster}"),
        "--initial-cluster-token=listeners".into(),
        "--heartbeat-interval=50".into(),
        "--election-timeout=500".into(),
    ]
}

/// A one-member cluster on 127.0.0.1: client URLs as given, peer URL on `peer_port`.
fn single(client: &str, peer_port: u16, extra: &[String]) -> Vec<String> {
    let peer = format!("http://127.0.0.1:{peer_port}");
    let mut args = member_args("m0", client, &peer, &format!("m0={peer}"));
    args[3] = format!(
        "--advertise-client-urls={}",
        client.split(',').next().unwrap_or(client)
    );
    args.extend(extra.iter().cloned());
    args
}

fn kind_dir(root: &Path, kind: Kind) -> PathBuf {
    let dir = root.join(format!("{kind:?}"));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

// ------------------------------------------------------------------ unix sockets

/// `member list` rows without the member ID (it differs run to run), sorted.
fn members_without_ids(out: &str) -> Vec<String> {
    let mut rows: Vec<String> = out
        .lines()
        .map(|l| l.split_once(", ").map_or(l, |(_, rest)| rest).to_string())
        .collect();
    rows.sort();
    rows
}

/// TLS of a cluster on `unixs://` client URLs (and, with `peers`, peer URLs): the PKI's
/// `server` certificate, valid for `localhost` (the host part of the URLs), with a
/// metrics URL per member to probe.
struct UnixTls<'a> {
    pki: &'a Pki,
    metrics: Vec<u16>,
    peers: bool,
}

impl UnixTls<'_> {
    fn flags(&self, i: usize) -> Vec<String> {
        let (cert, key) = self.pki.pair("server");
        let ca = self.pki.path("ca.pem");
        let mut flags = vec![
            format!("--cert-file={cert}"),
            format!("--key-file={key}"),
            format!("--listen-metrics-urls=http://127.0.0.1:{}", self.metrics[i]),
        ];
        if self.peers {
            flags.extend([
                format!("--peer-cert-file={cert}"),
                format!("--peer-key-file={key}"),
                format!("--peer-trusted-ca-file={ca}"),
                "--peer-client-cert-auth".to_string(),
            ]);
        }
        flags
    }
}

/// A 3-member cluster on `unix://` (or, with `tls`, `unixs://`) client and peer URLs:
/// what etcdctl 3.4 and 3.5 see through them.
async fn unix_cluster(kind: Kind, dir: &Path, tls: Option<UnixTls<'_>>) -> Vec<String> {
    let scheme = |on: bool| if on { "unixs" } else { "unix" };
    let (client_scheme, peer_scheme) = (
        scheme(tls.is_some()),
        scheme(tls.as_ref().is_some_and(|t| t.peers)),
    );
    let client = |i: usize| format!("{client_scheme}://localhost:2379{i}");
    let peer = |i: usize| format!("{peer_scheme}://localhost:2380{i}");
    let cluster = (0..3)
        .map(|i| format!("m{i}={}", peer(i)))
        .collect::<Vec<_>>()
        .join(",");
    let mut members = Vec::new();
    for i in 0..3 {
        let name = format!("m{i}");
        let mut args = member_args(&name, &client(i), &peer(i), &cluster);
        args.extend(tls.as_ref().map(|t| t.flags(i)).unwrap_or_default());
        members.push(Server::spawn(kind, dir, &name, &args));
    }
    for (i, m) in members.iter_mut().enumerate() {
        let probe = match &tls {
            Some(t) => Probe::Tcp(format!("127.0.0.1:{}", t.metrics[i])),
            None => Probe::Unix(dir.join(format!("localhost:2379{i}"))),
        };
        m.wait_healthy(&probe).await;
    }
    let ca = tls.as_ref().map(|t| t.pki.path("ca.pem"));
    let ctl = |i: usize| {
        let e = Etcdctl::v3(&[client(i)]).current_dir(dir);
        match &ca {
            Some(ca) => e.args(["--cacert", ca]),
            None => e,
        }
    };
    let mut seen = vec![ctl(0).args(["put", "k", "v"]).run().await.ok().to_string()];
    seen.push(ctl(2).args(["get", "k"]).run().await.ok().to_string());
    let list = ctl(1).args(["member", "list"]).run().await;
    seen.extend(members_without_ids(list.ok()));
    if let Some(v35) = common::etcdctl35_binary() {
        let out = ctl(1)
            .binary(v35)
            .args(["get", "k", "--print-value-only"])
            .run()
            .await;
        seen.push(out.ok().to_string());
    }
    for m in &mut members {
        m.stop().await;
    }
    for i in 0..3 {
        for f in [format!("localhost:2379{i}"), format!("localhost:2380{i}")] {
            assert!(!dir.join(&f).exists(), "{kind:?} left the socket {f}");
        }
    }
    seen
}

#[tokio::test]
async fn unix_sockets_carry_a_three_member_cluster_like_etcd() {
    if !common::require_etcdctl() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for kind in Kind::with(&[Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        results.push((kind, unix_cluster(kind, &dir, None).await));
    }
    let (_, chorus) = &results[0];
    assert_eq!(chorus[..2], ["OK\n", "k\nv\n"]);
    assert!(
        chorus
            .iter()
            .any(|r| r == "started, m1, unix://localhost:23801, unix://localhost:23791, false"),
        "{chorus:?}"
    );
    for (kind, seen) in &results[1..] {
        assert_eq!(seen, chorus, "{kind:?} differs from chorus");
    }
}

#[tokio::test]
async fn unixs_sockets_carry_tls_like_etcd() {
    if !common::require_etcdctl() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    pki.issue("server", &["localhost", "127.0.0.1"], false);
    let mut results = Vec::new();
    for kind in Kind::with(&[Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        let tls = UnixTls {
            pki: &pki,
            metrics: free_ports(3),
            peers: false,
        };
        results.push((kind, unix_cluster(kind, &dir, Some(tls)).await));
    }
    let (_, chorus) = &results[0];
    assert_eq!(chorus[..2], ["OK\n", "k\nv\n"]);
    assert!(
        chorus
            .iter()
            .any(|r| r == "started, m2, unix://localhost:23802, unixs://localhost:23792, false"),
        "{chorus:?}"
    );
    for (kind, seen) in &results[1..] {
        assert_eq!(seen, chorus, "{kind:?} differs from chorus");
    }
    // unixs:// peer URLs: TLS on both ends in chorus. etcd 3.5.1 cannot do this (its
    // Unix listener skips TLS while its dialer speaks it), so chorus alone.
    let dir = root.path().join("chorus-unixs-peers");
    std::fs::create_dir_all(&dir).unwrap();
    let tls = UnixTls {
        pki: &pki,
        metrics: free_ports(3),
        peers: true,
    };
    let seen = unix_cluster(Kind::Chorus, &dir, Some(tls)).await;
    assert!(
        seen.iter()
            .any(|r| r == "started, m2, unixs://localhost:23802, unixs://localhost:23792, false"),
        "{seen:?}"
    );
}

// ------------------------------------------------- one port, http and https

/// A member on `http://` and `https://` of one port: etcdctl's put over plain, get over
/// TLS, get over TLS without the CA (refused), and plain HTTP `/version`'s status.
async fn one_port_answers(
    kind: Kind,
    dir: &Path,
    pki: &Pki,
) -> (String, String, bool, Option<u16>) {
    let (cert, key) = pki.pair("server");
    let ca = pki.path("ca.pem");
    let p = free_ports(2);
    let (plain, secure) = (
        format!("http://127.0.0.1:{}", p[0]),
        format!("https://127.0.0.1:{}", p[0]),
    );
    let tls = [format!("--cert-file={cert}"), format!("--key-file={key}")];
    let args = single(&format!("{plain},{secure}"), p[1], &tls);
    let mut m = Server::spawn(kind, dir, "m0", &args);
    let probe = Probe::Tcp(format!("127.0.0.1:{}", p[0]));
    m.wait_healthy(&probe).await;
    // etcdctl's 2 s dial timeout is not what this checks; a loaded CI machine has
    // exceeded it (debug build, the TLS sniffing and handshake on one port).
    let patient = ["--dial-timeout", "20s", "--command-timeout", "30s"];
    let put = Etcdctl::v3(&[&plain])
        .args(patient)
        .args(["put", "a", "1"])
        .run()
        .await;
    let get = Etcdctl::v3(&[&secure])
        .args(patient)
        .args(["--cacert", &ca, "get", "a"])
        .run()
        .await;
    let quick = ["--dial-timeout", "2s", "--command-timeout", "3s"];
    let untrusted = Etcdctl::v3(&[&secure])
        .args(quick)
        .args(["get", "a"])
        .run()
        .await;
    let version = probe.get("/version", &[]).await;
    let port = p[0].to_string();
    m.wait_log(&["serving client traffic insecurely", &port])
        .await;
    m.wait_log(&["serving client traffic securely", &port])
        .await;
    (
        put.ok().to_string(),
        get.ok().to_string(),
        untrusted.success(),
        version.map(|v| v.0),
    )
}

#[tokio::test]
async fn http_and_https_share_one_port_like_etcd() {
    if !common::require_etcdctl() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    pki.issue("server", &["127.0.0.1", "localhost"], false);
    let mut results = Vec::new();
    for kind in Kind::with(&[Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        results.push((kind, one_port_answers(kind, &dir, &pki).await));
    }
    let chorus = &results[0].1;
    let want = ("OK\n".to_string(), "a\n1\n".to_string(), false, Some(200));
    assert_eq!(chorus, &want);
    for (kind, r) in &results[1..] {
        assert_eq!(r, chorus, "{kind:?}");
    }
}

// ------------------------------------------------------ --listen-client-http-urls

#[tokio::test]
async fn listen_client_http_urls_split_grpc_from_http() {
    if !common::require_etcdctl() {
        return;
    }
    // Neither oracle has the flag (etcd 3.4.25+, 3.5.8+): chorus against etcd's code.
    let root = tempfile::tempdir().unwrap();
    let p = free_ports(3);
    let (grpc, http) = (
        format!("http://127.0.0.1:{}", p[0]),
        format!("http://127.0.0.1:{}", p[1]),
    );
    let extra = [format!("--listen-client-http-urls={http}")];
    let mut m = Server::spawn(
        Kind::Chorus,
        root.path(),
        "m0",
        &single(&grpc, p[2], &extra),
    );
    let http_probe = Probe::Tcp(format!("127.0.0.1:{}", p[1]));
    m.wait_healthy(&http_probe).await;
    let quick = ["--dial-timeout", "2s", "--command-timeout", "3s"];
    let put = Etcdctl::v3(&[&grpc]).args(["put", "k", "v"]).run().await;
    assert_eq!(put.ok(), "OK\n");
    let on_http = Etcdctl::v3(&[&http])
        .args(quick)
        .args(["get", "k"])
        .run()
        .await;
    assert!(
        !on_http.success(),
        "gRPC served on the HTTP-only URL: {on_http:?}"
    );
    assert_eq!(
        http_probe.get("/version", &[]).await.map(|r| r.0),
        Some(200)
    );
    let grpc_probe = Probe::Tcp(format!("127.0.0.1:{}", p[0]));
    assert_eq!(
        grpc_probe.get("/version", &[]).await,
        None,
        "HTTP/1 served on the gRPC-only URL"
    );
    m.wait_log(&["serving client traffic insecurely", r#""traffic":"http""#])
        .await;
    m.wait_log(&["serving client traffic insecurely", r#""traffic":"grpc""#])
        .await;
    m.stop().await;

    // One address in both lists is refused, in etcd's words, before anything is written.
    let both = single(&grpc, p[2], &[format!("--listen-client-http-urls={grpc}")]);
    let (code, out) = start_failure(Kind::Chorus, root.path(), &both).await;
    assert_eq!(code, 1);
    assert_eq!(
        start_error(Kind::Chorus, &out),
        format!("cannot bind both --client-listen-urls and --client-listen-http-urls on the same url {grpc}")
    );
}

// ----------------------------------------------------------------------- TLS

/// etcdctl v3 with a client certificate (`name.pem`), short timeouts.
fn ctl_tls(pki: &Pki, url: &str, cert: Option<&str>) -> Etcdctl {
    let ca = pki.path("ca.pem");
    let mut e = Etcdctl::v3(&[url]).args([
        "--cacert",
        &ca,
        "--dial-timeout",
        "2s",
        "--command-timeout",
        "3s",
    ]);
    if let Some(name) = cert {
        let (c, k) = pki.pair(name);
        e = e.args(["--cert", &c, "--key", &k]);
    }
    e
}

/// An https client URL with client-certificate auth against the PKI's CA, `/health` on a
/// plain metrics URL (for the probe); returns (args, client URL, metrics probe).
fn tls_member(pki: &Pki, extra: &[String]) -> (Vec<String>, String, Probe) {
    let p = free_ports(3);
    let url = format!("https://127.0.0.1:{}", p[0]);
    let (cert, key) = pki.pair("server");
    let mut flags = vec![
        format!("--cert-file={cert}"),
        format!("--key-file={key}"),
        format!("--trusted-ca-file={}", pki.path("ca.pem")),
        "--client-cert-auth".to_string(),
        format!("--listen-metrics-urls=http://127.0.0.1:{}", p[2]),
    ];
    flags.extend(extra.iter().cloned());
    (
        single(&url, p[1], &flags),
        url,
        Probe::Tcp(format!("127.0.0.1:{}", p[2])),
    )
}

/// The `rejected connection from ...` lines of a text log (chorus, etcd 3.4), from the
/// message on, the client's port blanked; sorted, without repeats.
fn rejection_lines(log: &str) -> Vec<String> {
    let port = regex::Regex::new(r#""127\.0\.0\.1:\d+""#).unwrap();
    let mut lines: Vec<String> = log
        .lines()
        .filter_map(|l| l.find("rejected connection from ").map(|i| &l[i..]))
        .map(|l| {
            port.replace_all(l, r#""127.0.0.1:PORT""#)
                .trim_end()
                .to_string()
        })
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

/// The error texts of refused handshakes: the JSON `error` fields of etcd 3.5's and
/// chorus's zap lines, or the `(error "...")` of etcd 3.4's text lines.
fn rejection_errors(kind: Kind, log: &str) -> Vec<String> {
    let mut errors: Vec<String> = match kind {
        Kind::Etcd35 | Kind::Chorus => log
            .lines()
            .filter(|l| l.contains(r#""msg":"rejected connection"#))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["error"].as_str().map(str::to_string))
            .collect(),
        Kind::Etcd34 => {
            let re =
                regex::Regex::new(r#"rejected connection from "[^"]*" \(error "([^"]*)""#).unwrap();
            log.lines()
                .filter_map(|l| re.captures(l).map(|c| c[1].to_string()))
                .collect()
        }
    };
    errors.sort();
    errors.dedup();
    errors
}

#[tokio::test]
async fn a_der_crl_refuses_revoked_clients_like_etcd() {
    if !common::require_etcdctl() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    pki.issue("server", &["127.0.0.1"], false);
    pki.issue("alice", &[], false);
    let revoked = pki.issue("revoked", &[], false);
    let crl = pki.crl_der("crl.der", &[revoked.serial]);
    let mut logs = Vec::new();
    for kind in Kind::with(&[Kind::Etcd34, Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        let (args, url, probe) = tls_member(&pki, &[format!("--client-crl-file={crl}")]);
        let mut m = Server::spawn(kind, &dir, "m0", &args);
        m.wait_healthy(&probe).await;
        let ok = ctl_tls(&pki, &url, Some("alice"))
            .args(["put", "k", "v"])
            .run()
            .await;
        assert_eq!(ok.ok(), "OK\n", "{kind:?}");
        let refused = ctl_tls(&pki, &url, Some("revoked"))
            .args(["put", "k", "v"])
            .run()
            .await;
        assert!(
            !refused.success(),
            "{kind:?} accepted a revoked certificate"
        );
        m.wait_log(&["rejected connection", "revoked"]).await;
        logs.push((kind, m.log_text()));
    }
    let want = format!(
        "transport: certificate serial {:02x} revoked",
        revoked.serial
    );
    for (kind, log) in &logs {
        assert_eq!(
            rejection_errors(*kind, log),
            std::slice::from_ref(&want),
            "{kind:?}"
        );
    }
    // etcd 3.5's fields (a certificate was presented: its addresses and names too).
    let keys = |log: &str| -> Vec<String> {
        let line = log
            .lines()
            .find(|l| l.contains(r#""msg":"rejected connection""#))
            .expect("a rejected connection line");
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        v.as_object().expect("object").keys().cloned().collect()
    };
    let chorus = keys(&logs[0].1);
    assert_eq!(
        chorus,
        [
            "caller",
            "dns-names",
            "error",
            "ip-addresses",
            "level",
            "msg",
            "remote-addr",
            "server-name",
            "ts"
        ]
    );
    if let Some((_, etcd35)) = logs.iter().find(|(k, _)| *k == Kind::Etcd35) {
        assert_eq!(keys(etcd35), chorus);
    }
}

#[tokio::test]
async fn a_self_signed_ca_certificate_is_a_client_certificate_like_etcd() {
    if !common::require_etcdctl() {
        return;
    }
    // Go accepts a certificate that is itself in the trusted pool, CA:TRUE or not.
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    pki.issue("server", &["127.0.0.1"], false);
    pki.self_signed("own", &[]);
    pki.issue("alice", &[], false);
    for kind in Kind::with(&[Kind::Etcd34, Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        let (mut args, url, probe) = tls_member(&pki, &[]);
        // Trust the self-signed certificate, not the CA that issued alice's.
        for a in &mut args {
            if a.starts_with("--trusted-ca-file=") {
                *a = format!("--trusted-ca-file={}", pki.path("own.pem"));
            }
        }
        let mut m = Server::spawn(kind, &dir, "m0", &args);
        m.wait_healthy(&probe).await;
        let own = ctl_tls(&pki, &url, Some("own"))
            .args(["put", "k", "v"])
            .run()
            .await;
        assert_eq!(own.ok(), "OK\n", "{kind:?}");
        let alice = ctl_tls(&pki, &url, Some("alice"))
            .args(["get", "k"])
            .run()
            .await;
        assert!(
            !alice.success(),
            "{kind:?} accepted a certificate of another CA"
        );
    }
}

/// A 3-member cluster with https peer URLs, plain client URLs; `peer_flags(i)` are
/// member i's TLS flags. Waits until every member is healthy; returns the members and
/// their client and peer URLs.
async fn tls_peer_cluster(
    kind: Kind,
    dir: &Path,
    peer_flags: impl Fn(usize) -> Vec<String>,
) -> (Vec<Server>, Vec<String>, Vec<String>) {
    let p = free_ports(6);
    let client = |i: usize| format!("http://127.0.0.1:{}", p[2 * i]);
    let peer = |i: usize| format!("https://127.0.0.1:{}", p[2 * i + 1]);
    let cluster = (0..3)
        .map(|i| format!("m{i}={}", peer(i)))
        .collect::<Vec<_>>()
        .join(",");
    let mut members = Vec::new();
    for i in 0..3 {
        let name = format!("m{i}");
        let mut args = member_args(&name, &client(i), &peer(i), &cluster);
        args.extend(peer_flags(i));
        members.push(Server::spawn(kind, dir, &name, &args));
    }
    for (i, m) in members.iter_mut().enumerate() {
        m.wait_healthy(&Probe::Tcp(format!("127.0.0.1:{}", p[2 * i])))
            .await;
    }
    let clients = (0..3).map(client).collect();
    (members, clients, (0..3).map(peer).collect())
}

/// Writes through member 0 and reads through member 2.
async fn replicated(kind: Kind, clients: &[String]) {
    let put = Etcdctl::v3(&[&clients[0]])
        .args(["put", "k", "v"])
        .run()
        .await;
    assert_eq!(put.ok(), "OK\n", "{kind:?}");
    let get = Etcdctl::v3(&[&clients[2]]).args(["get", "k"]).run().await;
    assert_eq!(get.ok(), "k\nv\n", "{kind:?}");
}

#[tokio::test]
async fn peers_with_one_self_signed_ca_certificate_form_a_cluster_like_etcd() {
    if !common::require_etcdctl() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let pki = Pki::new(&root.path().join("pki"));
    pki.self_signed("peer", &["127.0.0.1"]);
    let (cert, key) = pki.pair("peer");
    for kind in Kind::with(&[Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        let flags = |_| {
            vec![
                format!("--peer-cert-file={cert}"),
                format!("--peer-key-file={key}"),
                format!("--peer-trusted-ca-file={cert}"),
                "--peer-client-cert-auth".to_string(),
            ]
        };
        let (_members, clients, _) = tls_peer_cluster(kind, &dir, flags).await;
        replicated(kind, &clients).await;
    }
}

#[tokio::test]
async fn peer_client_cert_file_is_what_a_member_presents_like_etcd() {
    if !common::require_etcdctl() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    // A server-only certificate for the peer port, a client-only one for dialing: the
    // cluster forms only if members present the client one.
    pki.issue_for("server", &["127.0.0.1"], Usage::Server);
    pki.issue_for("member", &[], Usage::Client);
    let (cert, key) = pki.pair("server");
    let (client_cert, client_key) = pki.pair("member");
    for kind in Kind::with(&[Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        let flags = |_| {
            vec![
                format!("--peer-cert-file={cert}"),
                format!("--peer-key-file={key}"),
                format!("--peer-client-cert-file={client_cert}"),
                format!("--peer-client-key-file={client_key}"),
                format!("--peer-trusted-ca-file={}", pki.path("ca.pem")),
                "--peer-client-cert-auth".to_string(),
            ]
        };
        let (_members, clients, _) = tls_peer_cluster(kind, &dir, flags).await;
        replicated(kind, &clients).await;
    }
}

#[tokio::test]
async fn allowed_peer_names_bind_the_dialed_peer_too_like_etcd() {
    // etcd's --peer-cert-allowed-cn is checked by the side that dials as well: a member
    // refuses a peer whose server certificate has another name.
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    pki.issue("server", &["127.0.0.1"], false);
    pki.issue("member", &[], false);
    let (cert, key) = pki.pair("server");
    let (client_cert, client_key) = pki.pair("member");
    for kind in Kind::with(&[Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        let p = free_ports(4);
        let peer = |i: usize| format!("https://127.0.0.1:{}", p[2 * i + 1]);
        let cluster = format!("m0={},m1={}", peer(0), peer(1));
        let mut members = Vec::new();
        for i in 0..2 {
            let name = format!("m{i}");
            let client = format!("http://127.0.0.1:{}", p[2 * i]);
            let mut args = member_args(&name, &client, &peer(i), &cluster);
            args.extend([
                format!("--peer-cert-file={cert}"),
                format!("--peer-key-file={key}"),
                format!("--peer-client-cert-file={client_cert}"),
                format!("--peer-client-key-file={client_key}"),
                format!("--peer-trusted-ca-file={}", pki.path("ca.pem")),
                "--peer-client-cert-auth".to_string(),
                "--peer-cert-allowed-cn=member".to_string(),
            ]);
            members.push(Server::spawn(kind, &dir, &name, &args));
        }
        let line = members[0]
            .wait_log(&["rejected connection", "remote error: tls: bad certificate"])
            .await;
        assert!(line.contains("127.0.0.1"), "{kind:?}: {line}");
    }
}

#[tokio::test]
async fn several_allowed_peer_names_are_accepted() {
    if !common::require_etcdctl() || !common::require_curl() {
        return;
    }
    // etcd 3.5.1 takes one name only (the lists came in later 3.5 releases): chorus
    // against etcd's code; a stranger's refusal is etcd's text.
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    for name in ["m0", "m1", "m2", "stranger"] {
        pki.issue(name, &["127.0.0.1"], false);
    }
    let flags = |i: usize| {
        let (cert, key) = pki.pair(&format!("m{i}"));
        vec![
            format!("--peer-cert-file={cert}"),
            format!("--peer-key-file={key}"),
            format!("--peer-trusted-ca-file={}", pki.path("ca.pem")),
            "--peer-client-cert-auth".to_string(),
            "--peer-cert-allowed-cn=m0,m1,m2".to_string(),
        ]
    };
    let (mut members, clients, peers) = tls_peer_cluster(Kind::Chorus, root.path(), flags).await;
    replicated(Kind::Chorus, &clients).await;
    let (cert, key) = pki.pair("stranger");
    curl(&[
        "-k",
        "--cert",
        &cert,
        "--key",
        &key,
        &format!("{}/", peers[0]),
    ])
    .await;
    let line = members[0]
        .wait_log(&[r#""msg":"rejected connection""#])
        .await;
    assert!(
        line.contains(r#""server-name":"","error":"client certificate authentication failed""#),
        "{line}"
    );
}

/// Runs curl (bounded); its outcome does not matter, the server's log does.
async fn curl(args: &[&str]) {
    let run = tokio::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "5"])
        .args(args)
        .kill_on_drop(true)
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(10), run).await;
}

#[tokio::test]
async fn a_rejected_peer_is_logged_as_etcd_logs_it() {
    if !common::require_curl() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    pki.issue("peer", &["127.0.0.1"], false);
    // Another CA of another name: Go names a same-named CA's bad signature in its text.
    let mut other = Pki::named(&root.path().join("other"), "another CA");
    other.issue("mallory", &["127.0.0.1"], false);
    let mut lines = Vec::new();
    for kind in Kind::with(&[Kind::Etcd34]) {
        let dir = kind_dir(root.path(), kind);
        let p = free_ports(2);
        let peer = format!("https://127.0.0.1:{}", p[1]);
        let mut args = member_args(
            "m0",
            &format!("http://127.0.0.1:{}", p[0]),
            &peer,
            &format!("m0={peer}"),
        );
        let (cert, key) = pki.pair("peer");
        args.extend([
            format!("--peer-cert-file={cert}"),
            format!("--peer-key-file={key}"),
            format!("--peer-trusted-ca-file={}", pki.path("ca.pem")),
            "--peer-client-cert-auth".to_string(),
        ]);
        if kind == Kind::Chorus {
            // Compared with etcd 3.4's text lines: the same layout.
            args.push("--logger=capnslog".to_string());
        }
        let mut m = Server::spawn(kind, &dir, "m0", &args);
        m.wait_healthy(&Probe::Tcp(format!("127.0.0.1:{}", p[0])))
            .await;
        curl(&["-k", &format!("{peer}/members")]).await;
        m.wait_log(&["rejected connection from", "didn't provide"])
            .await;
        let (mc, mk) = other.pair("mallory");
        curl(&[
            "-k",
            "--cert",
            &mc,
            "--key",
            &mk,
            &format!("{peer}/members"),
        ])
        .await;
        m.wait_log(&["rejected connection from", "unknown authority"])
            .await;
        lines.push((kind, rejection_lines(&m.log_text())));
    }
    let want = [
        r#"rejected connection from "127.0.0.1:PORT" (error "tls: client didn't provide a certificate", ServerName "")"#,
        r#"rejected connection from "127.0.0.1:PORT" (error "tls: failed to verify client certificate: x509: certificate signed by unknown authority", ServerName "")"#,
    ];
    for (kind, got) in &lines {
        assert_eq!(got, &want, "{kind:?}");
    }
}

#[tokio::test]
async fn client_cert_allowed_hostname_like_etcd() {
    if !common::require_etcdctl() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    pki.issue("server", &["127.0.0.1"], false);
    pki.issue("good", &["client.example"], false);
    pki.issue("bad", &["other.example"], false);
    let mut errors = Vec::new();
    for kind in Kind::with(&[Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        let extra = ["--client-cert-allowed-hostname=client.example".to_string()];
        let (args, url, probe) = tls_member(&pki, &extra);
        let mut m = Server::spawn(kind, &dir, "m0", &args);
        m.wait_healthy(&probe).await;
        let good = ctl_tls(&pki, &url, Some("good"))
            .args(["put", "k", "v"])
            .run()
            .await;
        assert_eq!(good.ok(), "OK\n", "{kind:?}");
        let bad = ctl_tls(&pki, &url, Some("bad"))
            .args(["put", "k", "v"])
            .run()
            .await;
        assert!(
            !bad.success(),
            "{kind:?} accepted a certificate for another host"
        );
        m.wait_log(&["rejected connection"]).await;
        errors.push((kind, rejection_errors(kind, &m.log_text())));
    }
    // etcd 3.5.1 also logs its gateway's own connection to the port, which its client
    // side refuses ("remote error: tls: bad certificate"); chorus has no such client.
    assert_eq!(errors[0].1, ["client certificate authentication failed"]);
    for (kind, got) in &errors[1..] {
        assert!(
            got.iter()
                .any(|e| e == "client certificate authentication failed"),
            "{kind:?}: {got:?}"
        );
    }
}

/// Days between a PEM certificate's notBefore and notAfter (a small DER walk: the
/// validity is the fifth element of the TBSCertificate, after an explicit version).
fn validity_days(pem: &[u8]) -> i64 {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem).expect("PEM certificate");
    fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let (tag, first) = (b[0], b[1] as usize);
        let (len, start) = if first < 0x80 {
            (first, 2)
        } else {
            let n = first & 0x7f;
            let len = b[2..2 + n].iter().fold(0usize, |a, x| a << 8 | *x as usize);
            (len, 2 + n)
        };
        (tag, &b[start..start + len], &b[start + len..])
    }
    let (_, cert, _) = tlv(der.as_ref());
    let (_, mut tbs, _) = tlv(cert);
    let mut fields = Vec::new();
    while !tbs.is_empty() {
        let (tag, content, rest) = tlv(tbs);
        fields.push((tag, content));
        tbs = rest;
    }
    let skip = usize::from(fields[0].0 == 0xa0);
    let (_, validity) = fields[skip + 3];
    let (t1, before, rest) = tlv(validity);
    let (t2, after, _) = tlv(rest);
    (der_time(t2, after) - der_time(t1, before)) / 86_400
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn der_time(tag: u8, b: &[u8]) -> i64 {
    let s = std::str::from_utf8(b).expect("time");
    let (year, rest) = if tag == 0x17 {
        let yy: i64 = s[..2].parse().unwrap();
        (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
    } else {
        (s[..4].parse().unwrap(), &s[4..])
    };
    let n = |i: usize| rest[i..i + 2].parse::<i64>().unwrap();
    let (m, d) = (n(0), n(2));
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(4) * 3600 + n(6) * 60 + n(8)
}

#[tokio::test]
async fn self_signed_cert_validity_like_etcd() {
    let root = tempfile::tempdir().unwrap();
    for kind in Kind::with(&[Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        let p = free_ports(3);
        let peer = format!("https://127.0.0.1:{}", p[1]);
        let mut args = member_args(
            "m0",
            &format!("https://127.0.0.1:{}", p[0]),
            &peer,
            &format!("m0={peer}"),
        );
        args.extend([
            "--auto-tls".to_string(),
            "--peer-auto-tls".to_string(),
            "--self-signed-cert-validity=3".to_string(),
            format!("--listen-metrics-urls=http://127.0.0.1:{}", p[2]),
        ]);
        let mut m = Server::spawn(kind, &dir, "m0", &args);
        m.wait_healthy(&Probe::Tcp(format!("127.0.0.1:{}", p[2])))
            .await;
        for side in ["client", "peer"] {
            let pem = std::fs::read(dir.join(format!("m0.data/fixtures/{side}/cert.pem")))
                .unwrap_or_else(|e| panic!("{kind:?} {side} certificate: {e}"));
            assert_eq!(validity_days(&pem), 3 * 365, "{kind:?} {side}");
        }
    }
}

// ------------------------------------------------------------ start-up errors

#[tokio::test]
async fn bad_listener_and_tls_values_fail_at_start_like_etcd() {
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    pki.issue("server", &["127.0.0.1"], false);
    let (cert, key) = pki.pair("server");
    let p = free_ports(3);
    let busy = std::net::TcpListener::bind(("127.0.0.1", p[2])).expect("hold a port");
    let peer_tls = |peer: &str, extra: &[&str]| {
        let mut args = member_args(
            "m0",
            &format!("http://127.0.0.1:{}", p[0]),
            peer,
            &format!("m0={peer}"),
        );
        args.extend([
            format!("--peer-cert-file={cert}"),
            format!("--peer-key-file={key}"),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let https = format!("https://127.0.0.1:{}", p[1]);
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            peer_tls(&https, &[&format!("--peer-client-cert-file={cert}")]),
            format!("ClientKeyFile and ClientCertFile must both be present or both absent: key: , cert: {cert}]"),
        ),
        (
            peer_tls(&https, &["--peer-cert-allowed-cn=a", "--peer-cert-allowed-hostname=b"]),
            r#"AllowedCN and AllowedHostname are mutually exclusive (cn="a", hostname="b")"#.into(),
        ),
        (
            peer_tls(&format!("http://127.0.0.1:{}", p[2]), &[]),
            format!("listen tcp 127.0.0.1:{}: bind: address already in use", p[2]),
        ),
        (
            {
                let mut a = member_args(
                    "m0",
                    &format!("http://127.0.0.1:{}", p[0]),
                    &https,
                    &format!("m0={https}"),
                );
                a.extend(["--peer-auto-tls".into(), "--self-signed-cert-validity=0".into()]);
                a
            },
            "selfSignedCertValidity is invalid,it should be greater than 0".into(),
        ),
    ];
    for kind in Kind::with(&[Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        for (args, want) in &cases {
            let (code, out) = start_failure(kind, &dir, args).await;
            assert_eq!(code, 1, "{kind:?} {args:?}:\n{out}");
            assert_eq!(&start_error(kind, &out), want, "{kind:?}");
            assert!(
                !dir.join("m0.data").exists(),
                "{kind:?} wrote its data dir for {want}"
            );
        }
    }
    drop(busy);
}

// -------------------------------------------------------------------- limits

/// The MAX_CONCURRENT_STREAMS of the server's first HTTP/2 SETTINGS frame (prior
/// knowledge, as gRPC clients speak to a plain port).
async fn h2_max_concurrent_streams(addr: &str) -> Option<u32> {
    let exchange = async {
        let mut io = tokio::net::TcpStream::connect(addr).await.ok()?;
        io.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .await
            .ok()?;
        loop {
            let mut head = [0u8; 9];
            io.read_exact(&mut head).await.ok()?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            io.read_exact(&mut payload).await.ok()?;
            // A SETTINGS frame (type 4) that is not an ACK (flag 1).
            if head[3] == 4 && head[4] & 1 == 0 {
                return Some(
                    payload
                        .chunks(6)
                        .find(|p| p[..2] == [0, 3])
                        .map(|p| u32::from_be_bytes([p[2], p[3], p[4], p[5]])),
                );
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
        .flatten()
}

#[tokio::test]
async fn max_concurrent_streams_is_the_http2_setting_like_etcd() {
    // etcd 3.5.1 has no --max-concurrent-streams (3.5.5+); 3.4 has.
    let root = tempfile::tempdir().unwrap();
    for kind in Kind::with(&[Kind::Etcd34]) {
        let dir = kind_dir(root.path(), kind);
        let p = free_ports(2);
        let url = format!("http://127.0.0.1:{}", p[0]);
        let extra = ["--max-concurrent-streams=3".to_string()];
        let mut m = Server::spawn(kind, &dir, "m0", &single(&url, p[1], &extra));
        let addr = format!("127.0.0.1:{}", p[0]);
        m.wait_healthy(&Probe::Tcp(addr.clone())).await;
        assert_eq!(h2_max_concurrent_streams(&addr).await, Some(3), "{kind:?}");
    }
}

#[tokio::test]
async fn the_gateway_shares_the_stream_limit_like_etcd() {
    // etcd's JSON gateway is a gRPC client of its own port: with one stream allowed, a
    // second gateway call waits until the open watch ends.
    let root = tempfile::tempdir().unwrap();
    for kind in Kind::with(&[Kind::Etcd34]) {
        let dir = kind_dir(root.path(), kind);
        let p = free_ports(2);
        let url = format!("http://127.0.0.1:{}", p[0]);
        let extra = ["--max-concurrent-streams=1".to_string()];
        let mut m = Server::spawn(kind, &dir, "m0", &single(&url, p[1], &extra));
        let addr = format!("127.0.0.1:{}", p[0]);
        m.wait_healthy(&Probe::Tcp(addr.clone())).await;
        let watch =
            HttpRequest::new("POST", "/v3/watch").json(r#"{"create_request":{"key":"Zm9v"}}"#);
        let mut stream = HttpStream::open(&addr, &watch).await;
        let created = stream.lines(1, Duration::from_secs(10)).await;
        assert!(
            created
                .as_ref()
                .is_ok_and(|b| b.contains("\"created\":true")),
            "{kind:?}: {created:?}"
        );
        let range = HttpRequest::new("POST", "/v3/kv/range").json(r#"{"key":"Zm9v"}"#);
        let range_addr = addr.clone();
        let mut second = tokio::spawn(async move { common::http::send(&range_addr, &range).await });
        // Nothing to await for "not yet": a bounded look, which a slow machine only
        // lengthens (it cannot make a waiting call finish).
        let early = tokio::time::timeout(Duration::from_millis(500), &mut second).await;
        assert!(
            early.is_err(),
            "{kind:?}: the second gateway call did not wait: {early:?}"
        );
        drop(stream);
        let done = tokio::time::timeout(Duration::from_secs(15), second)
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: the call still waits after the watch ended"))
            .expect("range task");
        assert_eq!(done.status, 200, "{kind:?}: {done:?}");
    }
}

/// Whether another socket with SO_REUSEPORT can bind `port` now.
fn can_share_port(port: u16) -> bool {
    // SAFETY: plain socket calls on a descriptor this function owns and closes.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::bind(
            fd,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        libc::close(fd);
        rc == 0
    }
}

#[tokio::test]
async fn socket_reuse_port_lets_another_socket_share_the_port_like_etcd() {
    let root = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for kind in Kind::with(&[Kind::Etcd35]) {
        for reuse in [true, false] {
            let dir = kind_dir(root.path(), kind).join(format!("reuse-{reuse}"));
            std::fs::create_dir_all(&dir).unwrap();
            let p = free_ports(2);
            let url = format!("http://127.0.0.1:{}", p[0]);
            let extra: Vec<String> = if reuse {
                vec![
                    "--socket-reuse-port".into(),
                    "--socket-reuse-address".into(),
                ]
            } else {
                Vec::new()
            };
            let mut m = Server::spawn(kind, &dir, "m0", &single(&url, p[1], &extra));
            m.wait_healthy(&Probe::Tcp(format!("127.0.0.1:{}", p[0])))
                .await;
            results.push((kind, reuse, can_share_port(p[0]), can_share_port(p[1])));
        }
    }
    for (kind, reuse, client, peer) in results {
        assert_eq!(
            (client, peer),
            (reuse, reuse),
            "{kind:?} --socket-reuse-port={reuse}"
        );
    }
}

// --------------------------------------------------------------- HTTP policy

const CORS_HEADERS: [&str; 3] = [
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
];

#[tokio::test]
async fn cors_allows_the_listed_origins_like_etcd() {
    let root = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for kind in Kind::with(&[Kind::Etcd34, Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        let p = free_ports(2);
        let url = format!("http://127.0.0.1:{}", p[0]);
        // etcd takes --cors values as URLs with a port.
        let extra = ["--cors=http://a.example:8080".to_string()];
        let mut m = Server::spawn(kind, &dir, "m0", &single(&url, p[1], &extra));
        let addr = format!("127.0.0.1:{}", p[0]);
        m.wait_healthy(&Probe::Tcp(addr.clone())).await;
        let mut seen = Vec::new();
        for (method, origin) in [
            ("GET", "http://a.example:8080"),
            ("GET", "http://b.example:8080"),
            ("OPTIONS", "http://a.example:8080"),
            ("OPTIONS", "http://b.example:8080"),
        ] {
            let req = HttpRequest::new(method, "/version").header("Origin", origin);
            let resp = common::http::send(&addr, &req).await;
            let cors: Vec<Option<String>> = CORS_HEADERS
                .iter()
                .map(|h| resp.header(h).map(str::to_string))
                .collect();
            seen.push((method, origin, resp.status, cors));
        }
        results.push((kind, seen));
    }
    let chorus = &results[0].1;
    assert_eq!(chorus[0].3[0].as_deref(), Some("http://a.example:8080"));
    assert_eq!(chorus[1].3, [None, None, None]);
    assert_eq!((chorus[2].2, chorus[3].2), (200, 200));
    for (kind, seen) in &results[1..] {
        assert_eq!(seen, chorus, "{kind:?}");
    }
}

/// What a member with `--host-whitelist=example.com` on http+https of one port answers:
/// (status, Content-Type, body) for Host `evil.example`, the status for
/// `example.com`, and the status over TLS for `evil.example` (curl).
async fn whitelist_answers(
    kind: Kind,
    dir: &Path,
    pki: &Pki,
) -> (u16, Option<String>, String, u16, String) {
    let (cert, key) = pki.pair("server");
    let p = free_ports(2);
    let both = format!("http://127.0.0.1:{0},https://127.0.0.1:{0}", p[0]);
    let extra = [
        "--host-whitelist=example.com".to_string(),
        format!("--cert-file={cert}"),
        format!("--key-file={key}"),
    ];
    let addr = format!("127.0.0.1:{}", p[0]);
    let mut m = Server::spawn(kind, dir, "m0", &single(&both, p[1], &extra));
    // /health too is refused for Host 127.0.0.1: probe with an allowed one.
    let deadline = Instant::now() + READY;
    let probe = Probe::Tcp(addr.clone());
    while probe
        .get("/health", &[("Host", "example.com")])
        .await
        .map(|r| r.0)
        != Some(200)
    {
        m.check_alive();
        assert!(
            Instant::now() < deadline,
            "{kind:?} not healthy:\n{}",
            m.log_text()
        );
        tokio::time::sleep(POLL).await;
    }
    let get = |host: &'static str| HttpRequest::new("GET", "/version").header("Host", host);
    let refused = common::http::send(&addr, &get("evil.example:2379")).await;
    let allowed = common::http::send(&addr, &get("example.com:2379")).await;
    let tls = tokio::process::Command::new("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .args([
            "-H",
            "Host: evil.example",
            &format!("https://{addr}/version"),
        ])
        .output()
        .await
        .expect("curl");
    m.wait_log(&[
        "rejecting HTTP request",
        "DNS rebinding attacks",
        "evil.example",
    ])
    .await;
    (
        refused.status,
        refused.header("Content-Type").map(str::to_string),
        refused.body,
        allowed.status,
        String::from_utf8_lossy(&tls.stdout).into_owned(),
    )
}

#[tokio::test]
async fn host_whitelist_refuses_other_hosts_like_etcd() {
    if !common::require_curl() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&root.path().join("pki"));
    pki.issue("server", &["127.0.0.1"], false);
    let mut results = Vec::new();
    for kind in Kind::with(&[Kind::Etcd34, Kind::Etcd35]) {
        let dir = kind_dir(root.path(), kind);
        results.push((kind, whitelist_answers(kind, &dir, &pki).await));
    }
    let chorus = &results[0].1;
    // Refused over plain HTTP with etcd's text, allowed for a listed Host, and over TLS.
    assert_eq!((chorus.0, chorus.3, &chorus.4[..]), (421, 200, "200"));
    assert!(
        chorus.2.contains("etcd --host-whitelist \"evil.example\""),
        "{}",
        chorus.2
    );
    for (kind, r) in &results[1..] {
        assert_eq!(r, chorus, "{kind:?}");
    }
}
