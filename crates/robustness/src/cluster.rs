//! A cluster of real `chorus` processes on 127.0.0.1 whose peer links all pass through the
//! fault [`Proxy`]: each member listens for peers on its real port and advertises its
//! proxy port (`--initial-advertise-peer-urls`, `--initial-cluster`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chorus_client::{Client, ConnectOptions};
use tokio::process::{Child, Command};

use crate::proxy::Proxy;

/// Interval of polls for another process's state (a member's Status), which cannot be
/// awaited as an event; every poll loop has a deadline.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub snapshot_count: u64,
    pub snapshot_catchup_entries: u64,
    pub ready_timeout: Duration,
    /// The binary is a real etcd: no chorus-only flags (etcd 3.4 lacks
    /// `--experimental-snapshot-catchup-entries`).
    pub etcd: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            snapshot_count: 200,
            snapshot_catchup_entries: 100,
            ready_timeout: Duration::from_secs(30),
            etcd: false,
        }
    }
}

pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub proxy_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    args: Vec<String>,
    /// Environment given to every start (e.g. a skewed wall clock), kept over restarts.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    pub paused: bool,
}

impl Member {
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

pub struct Cluster {
    binary: PathBuf,
    pub options: ClusterOptions,
    pub members: Vec<Member>,
    pub proxy: Proxy,
    dir: PathBuf,
}

/// A port below the kernel's ephemeral range (chorus_testports).
fn free_port() -> Result<u16> {
    Ok(chorus_testports::free_port())
}

impl Cluster {
    /// Starts `n` members in `dir` and waits until each knows a leader.
    pub async fn start(
        binary: &Path,
        n: usize,
        options: ClusterOptions,
        dir: &Path,
    ) -> Result<Cluster> {
        let mut proxy_listeners = Vec::new();
        let mut real_ports = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..n {
            let proxy_port = free_port()?;
            let l = std::net::TcpListener::bind(("127.0.0.1", proxy_port))?;
            proxy_listeners.push(l);
            let client_port = free_port()?;
            let peer_port = free_port()?;
            real_ports.push(peer_port);
            ports.push((client_port, peer_port, proxy_port));
        }
        let proxy = Proxy::start(proxy_listeners, real_ports);
        let initial_cluster = (0..n)
            .map(|i| format!("m{i}=http://127.0.0.1:{}", ports[i].2))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("robust-{}", ports[0].0);
        let members = (0..n)
            .map(|i| {
                let (client_port, peer_port, proxy_port) = ports[i];
                let name = format!("m{i}");
                let data_dir = dir.join(&name);
                let log_path = dir.join(format!("{name}.log"));
                let client_url = format!("http://127.0.0.1:{client_port}");
                let mut args = vec![
                    format!("--name={name}"),
                    format!("--data-dir={}", data_dir.display()),
                    format!("--listen-client-urls={client_url}"),
                    format!("--advertise-client-urls={client_url}"),
                    format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                    format!("--initial-advertise-peer-urls=http://127.0.0.1:{proxy_port}"),
                    format!("--initial-cluster={initial_cluster}"),
                    format!("--initial-cluster-token={token}"),
                    "--initial-cluster-state=new".to_owned(),
                    format!("--heartbeat-interval={}", options.heartbeat_interval_ms),
                    format!("--election-timeout={}", options.election_timeout_ms),
                    format!("--snapshot-count={}", options.snapshot_count),
                ];
                if !options.etcd {
                    args.push(format!(
                        "--experimental-snapshot-catchup-entries={}",
                        options.snapshot_catchup_entries
                    ));
                }
                Member {
                    name,
                    client_port,
                    peer_port,
                    proxy_port,
                    data_dir,
                    log_path,
                    args,
                    env: Vec::new(),
                    child: None,
                    paused: false,
                }
            })
            .collect();
        let mut cluster = Cluster {
            binary: binary.to_owned(),
            options,
            members,
            proxy,
            dir: dir.to_owned(),
        };
        for i in 0..n {
            cluster.spawn(i, None)?;
        }
        for i in 0..n {
            cluster.wait_ready(i).await?;
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// Starts member `i` (output appended to its log), with `failpoints` as `FAILPOINTS`.
    pub fn spawn(&mut self, i: usize, failpoints: Option<&str>) -> Result<()> {
        let m = &mut self.members[i];
        if m.child.is_some() {
            bail!("{} is already running", m.name);
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log_path)?;
        let env: String = m.env.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        writeln!(
            log,
            "=== start{}{env}: {} {}",
            failpoints
                .map(|f| format!(" FAILPOINTS={f}"))
                .unwrap_or_default(),
            self.binary.display(),
            m.args.join(" ")
        )?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(&m.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        for (name, _) in std::env::vars_os() {
            let name_s = name.to_string_lossy();
            if name_s.starts_with("ETCD_") || name_s == "FAILPOINTS" {
                cmd.env_remove(name);
            }
        }
        if let Some(fp) = failpoints {
            cmd.env("FAILPOINTS", fp);
        }
        cmd.envs(m.env.iter().cloned());
        // SAFETY: prctl and setrlimit are async-signal-safe and touch no parent memory.
        // The member dies with the harness (its spawning thread: the harness runs on one
        // thread), and a crash point's abort leaves no core file.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", self.binary.display()))?;
        self.proxy.set_pid(i, child.id());
        m.child = Some(child);
        m.paused = false;
        Ok(())
    }

    /// Waits until member `i` answers Status and knows a leader.
    pub async fn wait_ready(&mut self, i: usize) -> Result<()> {
        let client = Client::connect(
            &[self.members[i].client_url()],
            ConnectOptions {
                request_timeout: Some(Duration::from_secs(1)),
                dial_timeout: Duration::from_millis(300),
                ..Default::default()
            },
        )
        .await?;
        let deadline = Instant::now() + self.options.ready_timeout;
        loop {
            if let Some(status) = self.exited(i) {
                bail!(
                    "{} exited with {status} while starting",
                    self.members[i].name
                );
            }
            if matches!(client.status().await, Ok(s) if s.leader != 0) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready within {:?}",
                    self.members[i].name,
                    self.options.ready_timeout
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Empties the data directory of member `i` (stopped, removed from the cluster) and
    /// has its next starts join the existing cluster, as a replaced member does.
    pub fn wipe_for_rejoin(&mut self, i: usize) -> Result<()> {
        let m = &mut self.members[i];
        if m.child.is_some() {
            bail!("{} is still running", m.name);
        }
        if m.data_dir.exists() {
            std::fs::remove_dir_all(&m.data_dir)
                .with_context(|| format!("remove {}", m.data_dir.display()))?;
        }
        for arg in &mut m.args {
            if arg == "--initial-cluster-state=new" {
                *arg = "--initial-cluster-state=existing".to_owned();
            }
        }
        Ok(())
    }

    /// If member `i` has exited by itself: its status (the member is then not running).
    pub fn exited(&mut self, i: usize) -> Option<ExitStatus> {
        let m = &mut self.members[i];
        let status = m.child.as_mut()?.try_wait().ok().flatten()?;
        m.child = None;
        self.proxy.set_pid(i, None);
        Some(status)
    }

    /// Waits up to `limit` for member `i` to exit by itself.
    pub async fn wait_exit(&mut self, i: usize, limit: Duration) -> Option<ExitStatus> {
        let child = self.members[i].child.as_mut()?;
        let status = tokio::time::timeout(limit, child.wait()).await.ok()?.ok()?;
        self.members[i].child = None;
        self.proxy.set_pid(i, None);
        Some(status)
    }

    /// SIGKILL and reap member `i` (no-op if it is not running).
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.members[i].paused = false;
        self.proxy.set_pid(i, None);
    }

    fn signal(&self, i: usize, sig: libc::c_int) -> Result<()> {
        let pid = self.members[i]
            .child
            .as_ref()
            .and_then(Child::id)
            .context("member not running")?;
        // SAFETY: kill(2) on our own unreaped child, so the PID is not reused.
        if unsafe { libc::kill(pid as libc::pid_t, sig) } != 0 {
            bail!("kill: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn pause(&mut self, i: usize) -> Result<()> {
        self.signal(i, libc::SIGSTOP)?;
        self.members[i].paused = true;
        Ok(())
    }

    pub fn resume(&mut self, i: usize) -> Result<()> {
        self.signal(i, libc::SIGCONT)?;
        self.members[i].paused = false;
        Ok(())
    }

    /// The leader's index, polling until a running member names itself leader.
    pub async fn leader(&self, limit: Duration) -> Option<usize> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            for (i, m) in self.members.iter().enumerate() {
                if !m.is_running() || m.paused {
                    continue;
                }
                let Ok(c) = Client::connect(
                    &[m.client_url()],
                    ConnectOptions {
                        request_timeout: Some(Duration::from_millis(500)),
                        ..Default::default()
                    },
                )
                .await
                else {
                    continue;
                };
                if let Ok(s) = c.status().await {
                    let me = s.header.as_ref().map_or(0, |h| h.member_id);
                    if me != 0 && s.leader == me {
                        return Some(i);
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
        None
    }

    /// Restarts every stopped member, resumes paused ones, heals the network, and waits
    /// until all are ready.
    pub async fn recover_all(&mut self) -> Result<()> {
        self.proxy.heal();
        for i in 0..self.len() {
            if self.members[i].paused {
                self.resume(i)?;
            }
            let _ = self.exited(i);
            if !self.members[i].is_running() {
                self.spawn(i, None)?;
            }
        }
        for i in 0..self.len() {
            self.wait_ready(i).await?;
        }
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        for i in 0..self.len() {
            if self.members[i].paused {
                let _ = self.resume(i);
            }
            self.kill(i).await;
        }
    }
}
