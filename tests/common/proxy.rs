//! Proxy processes for the tests: `chorus grpc-proxy start`, `chorus gateway start` and
//! etcd 3.4's `etcd grpc-proxy start`, on ports below 32768 chosen at run time.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_client::{Client, ConnectOptions};

use super::tail;

/// Interval between two polls of another process (there is no event to await).
const POLL: Duration = Duration::from_millis(20);

/// `n` distinct ports below 32768 free for both TCP and UDP (see [`super::free_ports`]).
pub fn free_low_ports(n: usize) -> Vec<u16> {
    super::free_ports(n)
}

/// Which proxy binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// `chorus grpc-proxy start`
    Chorus,
    /// `etcd grpc-proxy start` (etcd 3.4)
    Etcd,
    /// `chorus gateway start`
    ChorusGateway,
}

/// One proxy process; killed and reaped on drop.
pub struct Proxy {
    pub kind: ProxyKind,
    pub port: u16,
    pub args: Vec<String>,
    pub log_path: PathBuf,
    child: Option<Child>,
}

impl Proxy {
    /// Starts a proxy for `endpoints` on a fresh port with `extra` flags; its log goes
    /// to `dir/<name>.log`. Does not wait; see [`Proxy::wait_ready`].
    pub fn spawn(
        kind: ProxyKind,
        dir: &Path,
        name: &str,
        endpoints: &[String],
        extra: &[String],
    ) -> Proxy {
        Self::spawn_on(kind, dir, name, endpoints, extra, free_low_ports(1)[0])
    }

    /// [`Proxy::spawn`] on a given port.
    pub fn spawn_on(
        kind: ProxyKind,
        dir: &Path,
        name: &str,
        endpoints: &[String],
        extra: &[String],
        port: u16,
    ) -> Proxy {
        let endpoints = endpoints.join(",");
        let (binary, mut args) = match kind {
            ProxyKind::Chorus => (
                PathBuf::from(env!("CARGO_BIN_EXE_chorus")),
                vec!["grpc-proxy".to_string(), "start".to_string()],
            ),
            ProxyKind::ChorusGateway => (
                PathBuf::from(env!("CARGO_BIN_EXE_chorus")),
                vec!["gateway".to_string(), "start".to_string()],
            ),
            ProxyKind::Etcd => (
                super::etcd_binary().expect("etcd (check require_etcd())"),
                vec!["grpc-proxy".to_string(), "start".to_string()],
            ),
        };
        args.push(format!("--endpoints={endpoints}"));
        args.push(format!("--listen-addr=127.0.0.1:{port}"));
        args.extend(extra.iter().cloned());
        let log_path = dir.join(format!("{name}.log"));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("proxy log");
        let mut cmd = Command::new(&binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; the proxy dies with the test process.
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
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        Proxy {
            kind,
            port,
            args,
            log_path,
            child: Some(child),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        tail(&self.log_path, 60)
    }

    /// A client of the proxy alone.
    pub async fn client(&self) -> Client {
        Client::connect(&[self.url()], ConnectOptions::default())
            .await
            .expect("client")
    }

    /// Waits (bounded) until a read through the proxy succeeds.
    pub async fn wait_ready(&mut self) {
        let client = self.client().await;
        self.wait_ready_with(client).await
    }

    /// [`Proxy::wait_ready`] with a client of the caller's (TLS, ...).
    pub async fn wait_ready_with(&mut self, client: Client) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    panic!("proxy exited with {status}; log:\n{}", self.log());
                }
            }
            if client.get("ready-check", Default::default()).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "proxy not ready within 20 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns the exit code.
    pub async fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child, not yet reaped, so its PID is not reused.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "proxy did not exit within 10 s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("--- proxy {:?} log ---\n{}", self.kind, self.log());
        }
    }
}

/// The value of an unlabelled metric in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}
