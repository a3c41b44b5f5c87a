//! chorus's log lines against the real etcd 3.5.1's (`scripts/install-etcd35.sh`, or
//! `$ETCD35_DIR/etcd`; missing: skipped, or a failure under `CI=true`).
//!
//! ```text
//!   etcd 3.5.1 --logger=zap ─┐  same flags, 127.0.0.1, ports chosen now below 32768
//!   chorus     --logger=zap ─┤  stderr ─> reader thread ─> Log (lines + Notify)
//!                            └─ await the lines (no sleeps), then compare per message:
//!                               the same `msg`, the same keys in the same order
//!                               (level, ts, [logger,] caller, msg, fields); values differ
//! ```
//!
//! Also: rotation of a file output that is already full when the member starts (both
//! rename it to `<name>-<stamp>.log`), and the start-up failure without journald.

use crate::common;

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_api::etcdserverpb as pb;
use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};

/// Bound on every awaited line.
const WAIT: Duration = Duration::from_secs(30);
/// Lines every member writes while it starts, in etcd's order.
const START_UP: [&str; 5] = [
    "starting an etcd server",
    "published local member to cluster through raft",
    "ready to serve client requests",
    "serving client traffic insecurely; this is strongly discouraged!",
    "enabled capabilities for version",
];

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// etcd 3.5.1, or `None` with a skip note (a panic under `CI=true`).
fn etcd35() -> Option<PathBuf> {
    let dir = std::env::var_os("ETCD35_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::workspace_root().join("target/etcd-v3.5.1"));
    let bin = dir.join("etcd");
    if bin.is_file() {
        return Some(bin);
    }
    assert!(
        !in_ci(),
        "etcd 3.5.1 is required under CI=true (scripts/install-etcd35.sh)"
    );
    eprintln!(
        "skipping: {} not found (scripts/install-etcd35.sh)",
        bin.display()
    );
    None
}

fn chorus() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chorus"))
}

/// A port on 127.0.0.1 below 32768 that is free now.
fn low_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..12_000 {
        let n = seed.wrapping_add(NEXT.fetch_add(13, Ordering::Relaxed)) % 12_000;
        let port = (20_000 + n) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in [20000, 32000)");
}

/// The stderr lines of a server, as they come.
#[derive(Default)]
struct Log {
    lines: Mutex<(Vec<String>, bool)>,
    changed: tokio::sync::Notify,
}

impl Log {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().0.clone()
    }

    /// Waits until some line satisfies `pred`; panics after `WAIT` or at end of output.
    async fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let g = self.lines.lock().unwrap();
                if let Some(l) = g.0.iter().find(|l| pred(l)) {
                    return l.clone();
                }
                assert!(!g.1, "{what}: output ended:\n{}", tail(&g.0));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("{what}: not within {WAIT:?}:\n{}", tail(&self.lines()));
            }
        }
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("chorus-logging-")
        .tempdir()
        .unwrap()
}

fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// One member with its flags, killed on drop.
struct Server {
    name: &'static str,
    child: Child,
    log: Arc<Log>,
    client_port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(name: &'static str, bin: &Path, flags: &[String]) -> Server {
        Server::start_in(name, bin, flags, temp_dir())
    }

    /// Starts in `dir` (its working directory; data in `dir/data`).
    fn start_in(
        name: &'static str,
        bin: &Path,
        flags: &[String],
        dir: tempfile::TempDir,
    ) -> Server {
        let (client_port, peer_port) = (low_port(), low_port());
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir.path())
            .arg("--name=m0")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=m0={peer}"))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCD_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(
                || match libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) {
                    -1 => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                },
            );
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let log = Arc::new(Log::default());
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lines.lock().unwrap().0.push(line);
                sink.changed.notify_waiters();
            }
            sink.lines.lock().unwrap().1 = true;
            sink.changed.notify_waiters();
        });
        Server {
            name,
            child,
            log,
            client_port,
            _dir: dir,
        }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Waits for the line whose `msg` is `msg`.
    async fn wait_msg(&self, msg: &str) -> String {
        let what = format!("{}: {msg:?}", self.name);
        self.log
            .wait(&what, |l| msg_of(l).as_deref() == Some(msg))
            .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `msg` of a JSON log line.
fn msg_of(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("msg")?.as_str().map(str::to_owned)
}

/// A JSON object's keys in the order written.
fn keys(line: &str) -> Vec<String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(k);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_str(line);
    de.deserialize_map(Keys)
        .unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn zap_flags(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--logger=zap",
        "--log-outputs=stderr",
        "--log-level=debug",
        "--heartbeat-interval=50",
        "--election-timeout=500",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Keys of the first line of each server that satisfies `pred`, compared.
fn compare_keys(d: &mut Vec<String>, what: &str, e: &str, c: &str) {
    let (ek, ck) = (keys(e), keys(c));
    if ek != ck {
        d.push(format!(
            "{what}:\n  etcd:   {ek:?}\n  chorus: {ck:?}\n  etcd line:   {e}\n  chorus line: {c}"
        ));
    }
}

/// Root user and role, authentication on (with the raw Auth API, as etcdctl does).
async fn enable_auth(endpoint: &str) {
    let client = chorus_client::Client::connect(&[endpoint], Default::default())
        .await
        .unwrap_or_else(|e| panic!("connect to {endpoint}: {e}"));
    let mut auth = client.auth_client();
    auth.user_add(pb::AuthUserAddRequest {
        name: "root".into(),
        password: "pw".into(),
        ..Default::default()
    })
    .await
    .expect("user add");
    auth.role_add(pb::AuthRoleAddRequest {
        name: "root".into(),
    })
    .await
    .expect("role add");
    auth.user_grant_role(pb::AuthUserGrantRoleRequest {
        user: "root".into(),
        role: "root".into(),
    })
    .await
    .expect("grant");
    auth.auth_enable(pb::AuthEnableRequest {})
        .await
        .expect("auth enable");
}

/// Logs in as root (one token) and writes a key. The login is bounded by the dial
/// timeout: a debug build's bcrypt on a loaded machine needs more than the default 2 s.
async fn login_and_put(endpoint: &str) {
    let opts = chorus_client::ConnectOptions {
        credentials: Some(chorus_client::Credentials::new("root", "pw")),
        dial_timeout: WAIT,
        ..Default::default()
    };
    let client = chorus_client::Client::connect(&[endpoint], opts)
        .await
        .unwrap_or_else(|e| panic!("login to {endpoint}: {e}"));
    let put = client.put("k", "v", chorus_client::PutOptions::default());
    put.await
        .unwrap_or_else(|e| panic!("put to {endpoint}: {e}"));
}

/// Starts `bin`, waits for the start-up lines, exercises auth and a slow apply, and
/// returns the server (its log holds every line awaited).
async fn exercise(name: &'static str, bin: &Path) -> Server {
    let flags = zap_flags(&[
        "--auth-token-ttl=1",
        "--experimental-warning-apply-duration=1ns",
    ]);
    let s = Server::start(name, bin, &flags);
    for msg in START_UP {
        s.wait_msg(msg).await;
    }
    enable_auth(&s.endpoint()).await;
    login_and_put(&s.endpoint()).await;
    s.wait_msg("authenticated a user").await;
    s.wait_msg("deleted a simple token").await;
    s
}

fn first(lines: &[String], pred: impl Fn(&str) -> bool) -> Option<&str> {
    lines.iter().map(String::as_str).find(|l| pred(l))
}

fn is_leader_line(l: &str) -> bool {
    let re = regex::Regex::new(r"^[0-9a-f]+ became leader at term \d+$").unwrap();
    msg_of(l).is_some_and(|m| re.is_match(&m))
}

fn is_elected_line(l: &str) -> bool {
    let re =
        regex::Regex::new(r"^raft\.node: [0-9a-f]+ elected leader [0-9a-f]+ at term \d+$").unwrap();
    msg_of(l).is_some_and(|m| re.is_match(&m))
}

#[tokio::test]
async fn key_lines_match_etcd_35() {
    let Some(etcd) = etcd35() else { return };
    let e = exercise("etcd 3.5.1", &etcd).await;
    let c = exercise("chorus", &chorus()).await;
    let (el, cl) = (e.log.lines(), c.log.lines());
    let mut diffs = Vec::new();
    let mut msgs: Vec<&str> = START_UP.to_vec();
    msgs.extend(["authenticated a user", "deleted a simple token"]);
    for msg in msgs {
        let is = |l: &str| msg_of(l).as_deref() == Some(msg);
        match (first(&el, is), first(&cl, is)) {
            (Some(a), Some(b)) => compare_keys(&mut diffs, msg, a, b),
            other => diffs.push(format!("{msg}: present in (etcd, chorus) = {other:?}")),
        }
    }
    let slow = |l: &str| {
        msg_of(l).as_deref() == Some("apply request took too long") && !l.contains("\"error\":")
    };
    match (first(&el, slow), first(&cl, slow)) {
        (Some(a), Some(b)) => compare_keys(&mut diffs, "apply request took too long", a, b),
        other => diffs.push(format!("slow apply: {other:?}")),
    }
    match (first(&el, is_leader_line), first(&cl, is_leader_line)) {
        (Some(a), Some(b)) => compare_keys(&mut diffs, "became leader at term", a, b),
        other => diffs.push(format!("became leader: {other:?}")),
    }
    match (first(&el, is_elected_line), first(&cl, is_elected_line)) {
        (Some(a), Some(b)) => compare_keys(&mut diffs, "raft.node: elected leader", a, b),
        other => diffs.push(format!("elected leader: {other:?}")),
    }
    // The start-up lines come in etcd's order (etcd sets the cluster version, and logs
    // its capabilities, in a goroutine of its own: before or after publishing).
    let order = |lines: &[String]| -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for m in lines.iter().filter_map(|l| msg_of(l)) {
            if START_UP[..4].contains(&m.as_str()) && !seen.contains(&m) {
                seen.push(m);
            }
        }
        seen
    };
    if order(&el) != order(&cl) {
        diffs.push(format!(
            "order: etcd {:?} chorus {:?}",
            order(&el),
            order(&cl)
        ));
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// Starts `bin` logging to `<dir>/<file>` (already holding 1 MiB) and stderr with
/// `maxsize: 1`; returns the backups and the file's text once the member serves (zap
/// writes each line to an absolute path before stderr).
async fn rotated_backups(name: &'static str, bin: &Path, file: &str) -> (Vec<String>, String) {
    let tmp = temp_dir();
    let dir = tmp.path().to_path_buf();
    let path = dir.join(file);
    std::fs::write(&path, vec![b'x'; 1024 * 1024]).unwrap();
    let flags = zap_flags(&[
        &format!("--log-outputs={},stderr", path.display()),
        "--enable-log-rotation",
        r#"--log-rotation-config-json={"maxsize": 1, "maxbackups": 2}"#,
    ]);
    let s = Server::start_in(name, bin, &flags, tmp);
    s.wait_msg("ready to serve client requests").await;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != file && n != "data")
        .collect();
    names.sort();
    let current = std::fs::read_to_string(&path).unwrap();
    drop(s);
    (names, current)
}

#[tokio::test]
async fn a_full_log_file_is_rotated_at_start_as_etcd_does() {
    let stamp = regex::Regex::new(r"^m-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$").unwrap();
    let mut servers = vec![("chorus", chorus())];
    servers.extend(etcd35().map(|e| ("etcd 3.5.1", e)));
    for (name, bin) in servers {
        let (backups, current) = rotated_backups(name, &bin, "m.log").await;
        assert_eq!(backups.len(), 1, "{name}: {backups:?}");
        assert!(stamp.is_match(&backups[0]), "{name}: {backups:?}");
        assert!(
            !current.contains("xxxx"),
            "{name}: the new file starts empty"
        );
        assert!(
            current.contains("\"msg\":\"ready to serve client requests\""),
            "{name}: both outputs get the lines"
        );
    }
}

#[tokio::test]
async fn without_journald_the_journal_output_fails_at_start_as_etcd_does() {
    if Path::new("/run/systemd/journal/socket").exists() {
        eprintln!("skipping: journald is running here");
        return;
    }
    let want = "can't find journal (dial unixgram /run/systemd/journal/socket: connect: no such file or directory)";
    let run = |bin: &Path| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(bin)
            .current_dir(dir.path())
            .args([
                "--log-outputs=systemd/journal",
                "--listen-client-urls=http://127.0.0.1:1",
            ])
            .arg("--advertise-client-urls=http://127.0.0.1:1")
            .stdin(Stdio::null())
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&chorus());
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!("error verifying flags, {want}. See 'chorus --help'.")
    );
    if let Some(etcd) = etcd35() {
        let (code, stderr) = run(&etcd);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "\"msg\":\"failed to verify flags\",\"error\":\"{want}\""
            )),
            "{stderr}"
        );
    }
}
