//! Clusters of real server processes (chorus or etcd) started with etcd's flags.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_client::{pb::StatusResponse, Client, ConnectOptions};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::pki::ClusterTls;
use super::{free_ports, tail};

/// Interval between two polls of a member's Status while waiting for it (there is no event
/// to await from another process); every wait is bounded by a deadline.
const POLL: Duration = Duration::from_millis(20);

/// Which server binary the members run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// This package's `chorus` binary.
    Chorus,
    /// The real etcd chorus imitates (3.5.1: `$CHORUS_TEST_ETCD`, `target/etcd-v3.5.1`).
    Etcd,
    /// etcd 3.4 (`$CHORUS_TEST_ETCD34`, Debian's `/usr/bin/etcd`): the reference for the
    /// v2 API, which etcd 3.5 deprecated and 3.6 removed.
    Etcd34,
    /// etcd 3.5.1 exactly (`target/etcd-v3.5.1`, `$ETCD35_DIR`), never another release.
    Etcd35,
}

impl ServerKind {
    /// `CHORUS_TEST_SERVER=etcd` runs a suite against the real etcd; default chorus.
    pub fn from_env() -> Self {
        match std::env::var("CHORUS_TEST_SERVER").as_deref() {
            Ok("etcd") => ServerKind::Etcd,
            _ => ServerKind::Chorus,
        }
    }

    pub fn binary(self) -> PathBuf {
        match self {
            ServerKind::Chorus => PathBuf::from(env!("CARGO_BIN_EXE_chorus")),
            ServerKind::Etcd => super::etcd_binary().expect("etcd binary (check require_etcd())"),
            ServerKind::Etcd34 => {
                super::etcd34_binary().expect("etcd 3.4 (check require_etcd34())")
            }
            ServerKind::Etcd35 => {
                super::etcd35_binary().expect("etcd 3.5.1 (check require_etcd35())")
            }
        }
    }
}

/// Settings shared by all members of a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `--heartbeat-interval`, milliseconds.
    pub heartbeat_interval_ms: u64,
    /// `--election-timeout`, milliseconds.
    pub election_timeout_ms: u64,
    /// `--snapshot-count`; `None` keeps the server's default.
    pub snapshot_count: Option<u64>,
    /// More etcd flags for every member, e.g. `--enable-v2=true`.
    pub extra_args: Vec<String>,
    /// Bound on a member becoming ready (or a leader being found).
    pub ready_timeout: Duration,
    /// https client and peer URLs with client-certificate auth (see `pki::ClusterTls`);
    /// the harness's own clients present its client certificate.
    pub tls: Option<ClusterTls>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 50,
            election_timeout_ms: 500,
            snapshot_count: None,
            extra_args: Vec::new(),
            ready_timeout: Duration::from_secs(20),
            tls: None,
        }
    }
}

/// One member: its fixed configuration and, while running, its process.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    /// `http` or `https` (client and peer URLs alike).
    pub scheme: &'static str,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    /// The command line after the binary; identical on every (re)start.
    pub args: Vec<String>,
    /// Environment variables set for the process (e.g. `CHORUS_DNS_RESOLVER`).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Member {
    fn new(
        dir: &Path,
        name: String,
        (client_port, peer_port): (u16, u16),
        initial_cluster: &str,
        token: &str,
        state: &str,
        options: &ClusterOptions,
    ) -> Member {
        let data_dir = dir.join(&name).join("data");
        let log_path = dir.join(format!("{name}.log"));
        let scheme = scheme(options);
        let client_url = format!("{scheme}://127.0.0.1:{client_port}");
        let peer_url = format!("{scheme}://127.0.0.1:{peer_port}");
        let mut args = vec![
            format!("--name={name}"),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster={initial_cluster}"),
            format!("--initial-cluster-token={token}"),
            format!("--initial-cluster-state={state}"),
            format!("--heartbeat-interval={}", options.heartbeat_interval_ms),
            format!("--election-timeout={}", options.election_timeout_ms),
        ];
        if let Some(count) = options.snapshot_count {
            args.push(format!("--snapshot-count={count}"));
        }
        if let Some(tls) = &options.tls {
            args.extend(tls.server_args());
        }
        args.extend(options.extra_args.iter().cloned());
        Member {
            name,
            scheme,
            client_port,
            peer_port,
            data_dir,
            log_path,
            args,
            env: Vec::new(),
            child: None,
        }
    }

    pub fn client_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.peer_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

fn scheme(options: &ClusterOptions) -> &'static str {
    if options.tls.is_some() {
        "https"
    } else {
        "http"
    }
}

/// N members of one cluster as real processes on 127.0.0.1, data in a temporary directory.
/// Dropping it kills and reaps every process (and prints the logs if the test panicked).
pub struct Cluster {
    pub kind: ServerKind,
    pub options: ClusterOptions,
    binary: PathBuf,
    members: Vec<Member>,
    // Last field: removed after the processes are gone.
    dir: TempDir,
}

impl Cluster {
    /// Starts `n` members with default options and waits until each one knows a leader.
    pub async fn start(kind: ServerKind, n: usize) -> Cluster {
        Self::start_with(kind, n, ClusterOptions::default()).await
    }

    pub async fn start_with(kind: ServerKind, n: usize, options: ClusterOptions) -> Cluster {
        let mut cluster = Self::create(kind, n, options);
        cluster.start_all().await;
        cluster
    }

    /// Lays out `n` members (ports, flags, directories) without starting them, so that a
    /// test can prepare their data directories first; then call [`Cluster::start_all`].
    pub fn create(kind: ServerKind, n: usize, options: ClusterOptions) -> Cluster {
        assert!(n > 0, "a cluster needs a member");
        let dir = tempfile::Builder::new()
            .prefix("chorus-test-")
            .tempdir()
            .expect("temp dir");
        let ports = free_ports(2 * n);
        let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let scheme = scheme(&options);
        let initial_cluster = names
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{name}={scheme}://127.0.0.1:{}", ports[2 * i + 1]))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("chorus-test-{}", ports[0]);
        let members = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                Member::new(
                    dir.path(),
                    name,
                    (ports[2 * i], ports[2 * i + 1]),
                    &initial_cluster,
                    &token,
                    "new",
                    &options,
                )
            })
            .collect();
        Cluster {
            kind,
            binary: kind.binary(),
            options,
            members,
            dir,
        }
    }

    /// Lays out one more member, `m<n>`, that joins the running cluster
    /// (`--initial-cluster-state existing`, every member so far in `--initial-cluster`);
    /// returns its index. Add it with `member add` (its peer URL), then `spawn` it.
    pub fn add_joiner(&mut self) -> usize {
        let i = self.members.len();
        let ports = free_ports(2);
        let name = format!("m{i}");
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .chain([format!(
                "{name}={}://127.0.0.1:{}",
                scheme(&self.options),
                ports[1]
            )])
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("chorus-test-{}", self.members[0].client_port);
        let member = Member::new(
            self.dir.path(),
            name,
            (ports[0], ports[1]),
            &initial_cluster,
            &token,
            "existing",
            &self.options,
        );
        self.members.push(member);
        i
    }

    /// Waits (bounded) for member `i` to exit by itself; returns its exit status.
    pub async fn wait_exit(&mut self, i: usize) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let member = &mut self.members[i];
            let child = member.child.as_mut().expect("member is not running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                member.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within 20 s",
                member.name
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts every member and waits until each one knows a leader.
    pub async fn start_all(&mut self) {
        // All members first: none can elect a leader before a quorum is up.
        for i in 0..self.members.len() {
            self.spawn(i);
        }
        for i in 0..self.members.len() {
            self.wait_ready(i).await;
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn member(&self, i: usize) -> &Member {
        &self.members[i]
    }

    /// Member `i`, to change its flags before the next start.
    pub fn member_mut(&mut self, i: usize) -> &mut Member {
        &mut self.members[i]
    }

    /// The temporary directory holding every member's data dir and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn client_url(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    /// `127.0.0.1:PORT` of member `i`'s client listener (for `common::http`).
    pub fn client_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.members[i].client_port)
    }

    /// Every member's client URL, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// The harness's connection settings (its client certificate on a TLS cluster).
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            tls: self.options.tls.as_ref().map(ClusterTls::client_options),
            ..ConnectOptions::default()
        }
    }

    /// A client over all members (fails over between them).
    pub async fn client(&self) -> Client {
        Client::connect(&self.endpoints(), self.connect_options())
            .await
            .expect("client")
    }

    /// A client bound to member `i` only.
    pub async fn member_client(&self, i: usize) -> Client {
        Client::connect(&[self.client_url(i)], self.connect_options())
            .await
            .expect("client")
    }

    /// PIDs of the running members.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(Member::pid).collect()
    }

    /// Starts member `i`'s process (output appended to its log); does not wait.
    pub fn spawn(&mut self, i: usize) {
        let member = &mut self.members[i];
        assert!(member.child.is_none(), "{} is already running", member.name);
        let mut log = append(&member.log_path);
        writeln!(
            log,
            "=== start: {} {}",
            self.binary.display(),
            member.args.join(" ")
        )
        .expect("member log");
        let mut cmd = Command::new(&self.binary);
        cmd.args(&member.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("member log"))
            .stderr(log);
        // Flags only: an ETCD_* variable of the developer's shell must not change a member.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(member.env.iter().map(|(k, v)| (k, v)));
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        // If the test process dies without running Drop (killed by a timeout), the kernel
        // kills the member too. PDEATHSIG follows the spawning *thread*, so spawn members
        // from the test's own thread (the test body), not from a short-lived helper thread.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        member.child = Some(child);
    }

    /// Waits until member `i` answers Maintenance.Status and knows a leader. Panics with the
    /// member's log if it exits or the deadline passes.
    pub async fn wait_ready(&mut self, i: usize) {
        let client = self.member_client(i).await;
        let deadline = Instant::now() + self.options.ready_timeout;
        loop {
            self.check_alive(i);
            if matches!(client.status().await, Ok(s) if s.leader != 0) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} not ready within {:?}; log:\n{}",
                    self.members[i].name,
                    self.options.ready_timeout,
                    tail(&self.members[i].log_path, 60)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Panics (with the log) if member `i` was started and has exited by itself.
    fn check_alive(&mut self, i: usize) {
        let member = &mut self.members[i];
        let child = member.child.as_mut().expect("member is not running");
        if let Some(status) = child.try_wait().expect("try_wait") {
            member.child = None;
            panic!(
                "{} exited with {status}; log:\n{}",
                member.name,
                tail(&member.log_path, 60)
            );
        }
    }

    /// SIGKILL member `i` and reap it.
    pub fn kill9(&mut self, i: usize) {
        let mut child = self.members[i].child.take().expect("member is not running");
        child.kill().expect("kill -9");
        child.wait().expect("wait");
    }

    /// SIGTERM member `i` and wait (bounded) for it to exit; a member that does not stop
    /// in time is killed and the test fails.
    pub async fn stop(&mut self, i: usize) {
        let mut child = self.members[i].child.take().expect("member is not running");
        // SAFETY: kill(2) on our own child's PID, which is not reaped yet, so not reused.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().expect("try_wait").is_some() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{} did not exit within 10 s of SIGTERM",
            self.members[i].name
        );
    }

    /// Starts member `i` again with the same flags and data dir (stopping it first if it
    /// runs) and waits until it is ready.
    pub async fn restart(&mut self, i: usize) {
        if self.members[i].is_running() {
            self.stop(i).await;
        }
        self.spawn(i);
        self.wait_ready(i).await;
    }

    /// Status of member `i` (one attempt).
    pub async fn status(&self, i: usize) -> chorus_client::Result<StatusResponse> {
        self.member_client(i).await.status().await
    }

    /// Index of the leader: the running member whose own Status names itself leader.
    /// Polls until there is one (after a leader is killed, until a new one is elected),
    /// bounded by `ready_timeout`.
    pub async fn leader(&self) -> usize {
        let deadline = Instant::now() + self.options.ready_timeout;
        loop {
            for (i, member) in self.members.iter().enumerate() {
                if !member.is_running() {
                    continue;
                }
                if let Ok(s) = self.status(i).await {
                    let me = s.header.as_ref().map_or(0, |h| h.member_id);
                    if me != 0 && s.leader == me {
                        return i;
                    }
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "no leader within {:?}\n{}",
                    self.options.ready_timeout,
                    self.logs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Cluster ID and each member's ID (members must be running).
    pub async fn ids(&self) -> (u64, Vec<u64>) {
        let mut cluster_id = 0;
        let mut ids = Vec::new();
        for i in 0..self.len() {
            let header = self
                .status(i)
                .await
                .expect("status")
                .header
                .expect("header");
            cluster_id = header.cluster_id;
            ids.push(header.member_id);
        }
        (cluster_id, ids)
    }

    /// Cluster ID and the IDs of the running members (in member order).
    pub async fn ids_of_running(&self) -> (u64, Vec<u64>) {
        let mut cluster_id = 0;
        let mut ids = Vec::new();
        for i in 0..self.len() {
            if !self.members[i].is_running() {
                continue;
            }
            let header = self
                .status(i)
                .await
                .expect("status")
                .header
                .expect("header");
            cluster_id = header.cluster_id;
            ids.push(header.member_id);
        }
        (cluster_id, ids)
    }

    /// A normalizer for this cluster's outputs that blanks its member and cluster IDs
    /// (`<member-i>`, `<cluster-id>`) and its directory (`<dir>`); add more options to it.
    pub async fn normalizer(&self) -> super::Normalizer {
        let (cluster_id, ids) = self.ids().await;
        super::Normalizer::new()
            .member_ids(&ids)
            .cluster_id(cluster_id)
            .path(self.dir(), "<dir>")
    }

    /// `GET path` on member `i`'s client URL over HTTP/1.0 (so never chunked): status
    /// code and body. For `/health`, `/version`, `/v2/keys/...`.
    pub async fn http_get(&self, i: usize, path: &str) -> (u16, String) {
        self.http(i, "GET", path, "").await
    }

    /// One HTTP/1.0 exchange with member `i` (the server closes the connection after it).
    /// Plain-text clusters only.
    pub async fn http(&self, i: usize, method: &str, path: &str, body: &str) -> (u16, String) {
        let addr = format!("127.0.0.1:{}", self.members[i].client_port);
        http_exchange(&addr, method, path, body).await
    }

    /// Waits (bounded) until member `i`'s `/version` names a cluster version (the leader
    /// sets it through raft once every member answered); returns it (`3.5.0`).
    pub async fn wait_cluster_version(&self, i: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.http_get(i, "/version").await;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            match v["etcdcluster"].as_str() {
                Some(cv) if status == 200 && cv != "not_decided" => return cv.to_owned(),
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "member {i}: no cluster version within 30 s (last /version: {status} {body}); logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The whole log of member `i`.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.members[i].log_path).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "--- {} ({}) ---\n{}\n",
                    m.name,
                    m.log_path.display(),
                    tail(&m.log_path, 80)
                )
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// Opens (creating) a file for appending; used for logs.
fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append")
}

/// One HTTP/1.0 exchange with `addr` (`host:port`; so never chunked, and the server closes
/// the connection after it): status code and body.
pub async fn http_exchange(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("HTTP request timed out")
        .expect("HTTP request");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("HTTP status line");
    (code, body.to_owned())
}
