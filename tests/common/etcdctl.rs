//! Runs the real `etcdctl` (v3 or v2 API) against a cluster.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What a command printed and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panics with both streams unless the command succeeded; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(self.success(), "etcdctl failed: {self:#?}");
        &self.stdout
    }
}

/// An etcdctl invocation: `Etcdctl::v3(&endpoints).args(["put", "k", "v"]).run().await`.
/// `ETCDCTL_*` variables of the developer's shell are removed; set them with `env`.
#[derive(Debug, Clone)]
pub struct Etcdctl {
    api: &'static str,
    endpoints: Vec<String>,
    args: Vec<String>,
    stdin: Option<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
}

impl Etcdctl {
    /// The v3 API (`ETCDCTL_API=3`), `--endpoints` set to `endpoints`.
    pub fn v3(endpoints: &[impl AsRef<str>]) -> Self {
        Self::new("3", endpoints)
    }

    /// The v2 API (`ETCDCTL_API=2`; the server needs `--enable-v2`).
    pub fn v2(endpoints: &[impl AsRef<str>]) -> Self {
        Self::new("2", endpoints)
    }

    fn new(api: &'static str, endpoints: &[impl AsRef<str>]) -> Self {
        Self {
            api,
            endpoints: endpoints.iter().map(|e| e.as_ref().to_owned()).collect(),
            args: Vec::new(),
            stdin: None,
            env: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }

    pub fn args(mut self, args: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn arg(self, arg: impl AsRef<str>) -> Self {
        self.args([arg])
    }

    /// Text fed to standard input (for `txn`, `put` without a value, ...).
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Bound on the whole command (default 30 s); past it the command is killed and the
    /// test fails.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub async fn run(self) -> Output {
        let binary = super::etcdctl_binary().expect("etcdctl (check require_etcdctl())");
        let mut cmd = Command::new(binary);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCDCTL_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("ETCDCTL_API", self.api)
            .arg(format!("--endpoints={}", self.endpoints.join(",")))
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn etcdctl");
        if let Some(text) = &self.stdin {
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(text.as_bytes()).await.expect("write stdin");
            // Dropping `input` closes standard input: etcdctl reads to the end.
        }
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("etcdctl {:?} ran over {:?}", self.args, self.timeout))
            .expect("etcdctl output");
        Output {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code().unwrap_or(-1),
        }
    }
}
