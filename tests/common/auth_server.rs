//! The server under test for the authentication tests: real etcd 3.4 and 3.5 now, chorus
//! when it has authentication. Shared by `tests/chorusctl_auth.rs` and
//! `crates/client/tests/auth.rs` (through `#[path]`), so it needs only std, tokio,
//! tempfile, libc and chorus-client.
//!
//! ```text
//!   servers_under_test()   $CHORUS_AUTH_TEST_SERVERS = etcd34,etcd35,chorus (default), or a subset
//!     └─ AuthServer::start(spec, flags) ── one member, 127.0.0.1, ports chosen now in
//!          │                                [20000, 32767] (below the kernel's ephemeral range)
//!          ├─ stderr ──> reader thread ──> LogLines: token events + the last lines
//!          └─ enable_auth("pw")  with the real etcdctl: root user, root role, auth enable
//!   wait_tokens_deleted(user, tokens)   awaits the server's own "deleted a simple token"
//!                                       lines (started with debug logs): no fixed sleep
//! ```
//!
//! Binaries: etcd 3.4 `$CHORUS_TEST_ETCD` or `etcd` on PATH; etcd 3.5 `$ETCD35_DIR/etcd` or
//! `target/etcd-v3.5.1/etcd` (`scripts/install-etcd35.sh`); chorus `$CHORUS_TEST_CHORUS`
//! (the root package's tests pass their own binary); etcdctl `$CHORUS_TEST_ETCDCTL` or
//! PATH. A missing one skips that server with a note, or fails the test when `CI=true`.
//!
//! Token events are etcd's debug log lines (`"msg":"authenticated a user"` and `"msg":
//! "deleted a simple token"`, with `user-name` and `token`); a chorus run needs the same
//! two lines from chorus's log for the expiry tests.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chorus_client::{Client, ConnectOptions};

/// Bound on a server becoming ready, and on any awaited log event.
pub const WAIT: Duration = Duration::from_secs(20);
/// Lines kept besides the token events, for failure reports (the last `SHOWN` shown).
const TAIL_LINES: usize = 300;
const SHOWN: usize = 40;

/// Which server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Etcd34,
    Etcd35,
    Chorus,
}

/// A server to test against: its flavor and binary.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub flavor: Flavor,
    pub binary: PathBuf,
}

impl ServerSpec {
    pub fn name(&self) -> &'static str {
        match self.flavor {
            Flavor::Etcd34 => "etcd34",
            Flavor::Etcd35 => "etcd35",
            Flavor::Chorus => "chorus",
        }
    }
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn from_env_or(var: &str, fallback: impl FnOnce() -> Option<PathBuf>) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => fallback(),
    }
}

/// `name` found, or `None` with a skip note; under `CI=true` a missing binary panics.
fn required(name: &str, how: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    if found.is_some() {
        return found;
    }
    if in_ci() {
        panic!("{name} is required under CI=true but was not found ({how})");
    }
    eprintln!("skipping {name}: not found ({how})");
    None
}

/// The real etcdctl (3.4): the oracle, and the tool that enables authentication.
pub fn etcdctl_binary() -> Option<PathBuf> {
    required(
        "etcdctl",
        "set CHORUS_TEST_ETCDCTL or install etcd-client",
        from_env_or("CHORUS_TEST_ETCDCTL", || on_path("etcdctl")),
    )
}

fn spec_for(flavor: &str, workspace: &Path, chorus: Option<&Path>) -> Option<ServerSpec> {
    let (flavor, binary) = match flavor {
        "etcd34" => (
            Flavor::Etcd34,
            required(
                "etcd 3.4",
                "set CHORUS_TEST_ETCD or install etcd-server",
                from_env_or("CHORUS_TEST_ETCD", || on_path("etcd")),
            )?,
        ),
        "etcd35" => {
            let dir = std::env::var_os("ETCD35_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace.join("target/etcd-v3.5.1"));
            let found = Some(dir.join("etcd")).filter(|p| p.is_file());
            (
                Flavor::Etcd35,
                required("etcd 3.5", "run scripts/install-etcd35.sh", found)?,
            )
        }
        "chorus" => {
            // The crates' own tests pass no binary: the workspace's debug build, which
            // `cargo test --workspace` builds for the root package's tests.
            let built = || Some(workspace.join("target/debug/chorus")).filter(|p| p.is_file());
            let given = || chorus.map(Path::to_path_buf).or_else(built);
            let found = from_env_or("CHORUS_TEST_CHORUS", given);
            (
                Flavor::Chorus,
                required("chorus", "set CHORUS_TEST_CHORUS", found)?,
            )
        }
        other => {
            panic!("CHORUS_AUTH_TEST_SERVERS: unknown server {other:?} (etcd34, etcd35, chorus)")
        }
    };
    Some(ServerSpec { flavor, binary })
}

/// The servers of `$CHORUS_AUTH_TEST_SERVERS` (comma-separated; default `etcd34,etcd35,chorus`)
/// that are here. `workspace` is the workspace root; `chorus` the chorus binary, if the
/// caller has one.
pub fn servers_under_test(workspace: &Path, chorus: Option<&Path>) -> Vec<ServerSpec> {
    let list =
        std::env::var("CHORUS_AUTH_TEST_SERVERS").unwrap_or_else(|_| "etcd34,etcd35,chorus".into());
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| spec_for(s, workspace, chorus))
        .collect()
}

/// A port on 127.0.0.1 below 32768 that is free now. Another process may take it before
/// the server binds it; the server then fails to start and the test says so.
pub fn free_low_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20000;
    const SPAN: u32 = 32767 - LOW;
    let seed = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    for _ in 0..SPAN {
        let port = (LOW + (seed + NEXT.fetch_add(7, Ordering::Relaxed)) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in [{LOW}, 32767]");
}

/// A token event from the server's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenEvent {
    Issued { user: String, token: String },
    Deleted { user: String, token: String },
}

/// `"key":"value"` of a JSON log line (values without escapes, as these are).
fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = line.find(&pat)? + pat.len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// The token event a log line reports, if any.
pub fn token_event(line: &str) -> Option<TokenEvent> {
    let msg = json_field(line, "msg")?;
    let user = json_field(line, "user-name")?.to_owned();
    let token = json_field(line, "token")?.to_owned();
    match msg {
        "authenticated a user" => Some(TokenEvent::Issued { user, token }),
        "deleted a simple token" => Some(TokenEvent::Deleted { user, token }),
        _ => None,
    }
}

/// What the reader thread keeps of the server's output.
#[derive(Default)]
struct LogState {
    events: Vec<TokenEvent>,
    tail: VecDeque<String>,
    closed: bool,
}

#[derive(Default)]
struct LogLines {
    state: Mutex<LogState>,
    changed: tokio::sync::Notify,
}

impl LogLines {
    fn push(&self, line: String) {
        let mut s = self.state.lock().unwrap();
        if let Some(ev) = token_event(&line) {
            s.events.push(ev);
        }
        if s.tail.len() == TAIL_LINES {
            s.tail.pop_front();
        }
        s.tail.push_back(line);
        drop(s);
        self.changed.notify_waiters();
    }
}

/// One member, killed and reaped on drop.
pub struct AuthServer {
    pub spec: ServerSpec,
    pub client_port: u16,
    child: Child,
    log: Arc<LogLines>,
    _dir: tempfile::TempDir,
}

impl AuthServer {
    /// Starts a one-member cluster with `flags` added (`--auth-token-ttl=1`, ...) and
    /// debug logs on stderr, and waits until it serves with a leader.
    pub async fn start(spec: &ServerSpec, flags: &[&str]) -> AuthServer {
        let dir = tempfile::Builder::new()
            .prefix("chorus-auth-test-")
            .tempdir()
            .expect("temp dir");
        let (client_port, peer_port) = (free_low_port(), free_low_port());
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = Command::new(&spec.binary);
        cmd.arg("--name=m0")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=m0={peer_url}"))
            .args(["--heartbeat-interval=50", "--election-timeout=500"])
            .args(log_flags(spec.flavor))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child =
            spawn_tied(&mut cmd).unwrap_or_else(|e| panic!("spawn {}: {e}", spec.binary.display()));
        let log = Arc::new(LogLines::default());
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.push(line);
            }
            sink.state.lock().unwrap().closed = true;
            sink.changed.notify_waiters();
        });
        let mut server = AuthServer {
            spec: spec.clone(),
            client_port,
            child,
            log,
            _dir: dir,
        };
        server.wait_ready().await;
        server
    }

    /// `127.0.0.1:<port>`, as the tools take it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Polls Maintenance.Status (allowed without a token) until the member has a leader:
    /// there is no event common to every flavor to await. Bounded by `WAIT`.
    async fn wait_ready(&mut self) {
        let client = Client::connect(&[self.endpoint()], ConnectOptions::default())
            .await
            .expect("client");
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "{} exited with {status}:\n{}",
                    self.spec.name(),
                    self.tail()
                );
            }
            if matches!(client.status().await, Ok(s) if s.leader != 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{} not ready within {WAIT:?}:\n{}",
            self.spec.name(),
            self.tail()
        );
    }

    /// With the real etcdctl: user root (password `root_password`), role root, granted,
    /// authentication on.
    pub async fn enable_auth(&self, root_password: &str) {
        let root = format!("root:{root_password}");
        self.etcdctl(&["user", "add", &root]).await;
        self.etcdctl(&["role", "add", "root"]).await;
        self.etcdctl(&["user", "grant-role", "root", "root"]).await;
        self.etcdctl(&["auth", "enable"]).await;
    }

    /// The real etcdctl with `args` (and `--user`, if the caller gives it); panics unless
    /// it succeeds. Returns stdout.
    pub async fn etcdctl(&self, args: &[&str]) -> String {
        let bin = etcdctl_binary().expect("etcdctl");
        let mut cmd = tokio::process::Command::new(bin);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCDCTL_") {
                cmd.env_remove(name);
            }
        }
        let out = cmd
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(WAIT, out)
            .await
            .unwrap_or_else(|_| panic!("etcdctl {args:?} ran over {WAIT:?}"))
            .expect("run etcdctl");
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every token event so far.
    pub fn token_events(&self) -> Vec<TokenEvent> {
        self.log.state.lock().unwrap().events.clone()
    }

    /// Tokens issued to `user` so far, in order.
    pub fn tokens_issued(&self, user: &str) -> Vec<String> {
        self.token_events()
            .into_iter()
            .filter_map(|e| match e {
                TokenEvent::Issued { user: u, token } if u == user => Some(token),
                _ => None,
            })
            .collect()
    }

    /// Waits until the log satisfies `done` (re-checked on every new line); panics with
    /// the log's tail after `WAIT` or if the server's output ends first.
    pub async fn wait_log(&self, what: &str, mut done: impl FnMut(&[TokenEvent]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.log.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = self.log.state.lock().unwrap();
                if done(&s.events) {
                    return;
                }
                assert!(
                    !s.closed,
                    "{what}: the server's log ended:\n{}",
                    self.tail()
                );
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("{what}: not within {WAIT:?}; log tail:\n{}", self.tail());
            }
        }
    }

    /// Waits until the server has deleted (expired) every token in `tokens`.
    pub async fn wait_tokens_deleted(&self, tokens: &[String]) {
        let what = format!("expiry of {} token(s)", tokens.len());
        self.wait_log(&what, |events| {
            tokens.iter().all(|t| {
                events
                    .iter()
                    .any(|e| matches!(e, TokenEvent::Deleted { token, .. } if token == t))
            })
        })
        .await;
    }

    /// Logs in as `user` and waits for that token's log line. The log is in order, so
    /// every token issued before is in `tokens_issued` afterwards: a barrier before
    /// counting another user's tokens.
    pub async fn barrier(&self, user: &str, password: &str) {
        let before = self.tokens_issued(user).len();
        let creds = chorus_client::Credentials::new(user, password);
        let opts = ConnectOptions {
            credentials: Some(creds),
            ..ConnectOptions::default()
        };
        Client::connect(&[self.endpoint()], opts)
            .await
            .unwrap_or_else(|e| panic!("barrier login as {user}: {e}"));
        let what = format!("{user}'s barrier token");
        self.wait_log(&what, |events| {
            let issued = events
                .iter()
                .filter(|e| matches!(e, TokenEvent::Issued { user: u, .. } if u == user));
            issued.count() > before
        })
        .await;
    }

    /// The last lines of the server's output.
    pub fn tail(&self) -> String {
        let s = self.log.state.lock().unwrap();
        let skip = s.tail.len().saturating_sub(SHOWN);
        s.tail
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} log tail ---\n{}", self.spec.name(), self.tail());
        }
    }
}

/// Debug logs as JSON lines on stderr: the token events are debug lines.
fn log_flags(flavor: Flavor) -> Vec<&'static str> {
    match flavor {
        Flavor::Etcd34 => vec!["--logger=zap", "--log-outputs=stderr", "--log-level=debug"],
        Flavor::Etcd35 | Flavor::Chorus => vec!["--log-outputs=stderr", "--log-level=debug"],
    }
}

/// Spawns without our `ETCD_*` variables and tied to this process (the kernel kills the
/// server if the test dies without dropping it).
fn spawn_tied(cmd: &mut Command) -> std::io::Result<Child> {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCD_") {
            cmd.env_remove(name);
        }
    }
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_events_are_read_from_etcds_debug_lines() {
        let issued = r#"{"level":"debug","ts":"x","caller":"auth/store.go:342","msg":"authenticated a user","user-name":"bob","token":"VqBX.18"}"#;
        let deleted = r#"{"level":"info","ts":"x","caller":"auth/simple_token.go:165","msg":"deleted a simple token","user-name":"bob","token":"VqBX.18"}"#;
        assert_eq!(
            token_event(issued),
            Some(TokenEvent::Issued {
                user: "bob".into(),
                token: "VqBX.18".into()
            })
        );
        assert!(matches!(
            token_event(deleted),
            Some(TokenEvent::Deleted { .. })
        ));
        assert_eq!(token_event(r#"{"msg":"ready"}"#), None);
    }

    #[test]
    fn low_ports_are_below_the_ephemeral_range() {
        let p = free_low_port();
        assert!((20000..32768).contains(&p), "{p}");
    }
}
