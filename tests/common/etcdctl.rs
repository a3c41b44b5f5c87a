//! Runs the real `etcdctl` (v3 or v2 API) against a cluster: to completion (`run`), or in
//! the background (`spawn`, for `watch`) with its output awaited line by line.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a command printed and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
    /// Standard output as bytes (`-w protobuf` is binary; `stdout` is its lossy UTF-8).
    pub raw_stdout: Vec<u8>,
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
    /// Another etcdctl-compatible binary (chorusctl); default the real etcdctl.
    binary: Option<std::path::PathBuf>,
    /// Keep standard input open after writing `stdin` (for `watch -i`).
    keep_stdin: bool,
    /// The working directory (Unix socket endpoints are relative to it).
    dir: Option<std::path::PathBuf>,
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
            binary: None,
            keep_stdin: false,
            dir: None,
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

    /// Runs `binary` (chorusctl, say) instead of the real etcdctl, with the same arguments.
    pub fn binary(mut self, binary: impl Into<std::path::PathBuf>) -> Self {
        self.binary = Some(binary.into());
        self
    }

    /// Runs in `dir` (`unix://localhost:2379` names the socket file `dir/localhost:2379`).
    pub fn current_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Leaves standard input open after writing the `stdin` text (until the process ends).
    pub fn keep_stdin_open(mut self) -> Self {
        self.keep_stdin = true;
        self
    }

    fn command(&self) -> Command {
        let binary = self
            .binary
            .clone()
            .unwrap_or_else(|| super::etcdctl_binary().expect("etcdctl (check require_etcdctl())"));
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
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    pub async fn run(self) -> Output {
        let mut child = self.command().spawn().expect("spawn etcdctl");
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
            raw_stdout: output.stdout,
        }
    }

    /// Starts the command in the background (standard input, if any, is written and
    /// closed first); its output is collected as it comes. For `watch`.
    pub async fn spawn(self) -> Background {
        let mut child = self.command().spawn().expect("spawn etcdctl");
        let mut open_stdin = None;
        if let Some(text) = &self.stdin {
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(text.as_bytes()).await.expect("write stdin");
            if self.keep_stdin {
                open_stdin = Some(input);
            }
        }
        let (stdout_tx, stdout) = watch::channel(Vec::new());
        let (stderr_tx, stderr) = watch::channel(Vec::new());
        let readers = [
            tokio::spawn(collect(child.stdout.take().expect("stdout"), stdout_tx)),
            tokio::spawn(collect(child.stderr.take().expect("stderr"), stderr_tx)),
        ];
        Background {
            args: self.args,
            _stdin: open_stdin,
            child,
            stdout,
            stderr,
            readers,
        }
    }
}

/// Appends everything `from` yields to the channel's value until end of file.
async fn collect(mut from: impl AsyncRead + Unpin, to: watch::Sender<Vec<u8>>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        to.send_modify(|all| all.extend_from_slice(&buf[..n]));
    }
}

/// A running etcdctl (see `Etcdctl::spawn`). Dropping it kills the process.
#[derive(Debug)]
pub struct Background {
    args: Vec<String>,
    _stdin: Option<tokio::process::ChildStdin>,
    child: Child,
    stdout: watch::Receiver<Vec<u8>>,
    stderr: watch::Receiver<Vec<u8>>,
    readers: [JoinHandle<()>; 2],
}

impl Background {
    /// Waits until the standard output so far satisfies `done` and returns it. Returns
    /// `Err` with the output so far when `timeout` passes or the process closes its
    /// output first (it exited) — the caller decides whether that is a failure.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&str) -> bool,
    ) -> Result<String, String> {
        let wait = self
            .stdout
            .wait_for(|bytes| done(&String::from_utf8_lossy(bytes)));
        let reached = matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)));
        let text = String::from_utf8_lossy(&self.stdout.borrow()).into_owned();
        if reached {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// Kills the process (if it still runs) and returns all it printed; `code` is its exit
    /// code if it exited by itself, else -1.
    pub async fn stop(mut self) -> Output {
        let _ = self.child.start_kill();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("etcdctl {:?} did not exit after SIGKILL", self.args))
            .expect("wait etcdctl");
        for reader in &mut self.readers {
            tokio::time::timeout(Duration::from_secs(10), reader)
                .await
                .expect("etcdctl output not closed after exit")
                .expect("output reader");
        }
        let raw_stdout = self.stdout.borrow().clone();
        let stderr = String::from_utf8_lossy(&self.stderr.borrow()).into_owned();
        Output {
            stdout: String::from_utf8_lossy(&raw_stdout).into_owned(),
            stderr,
            code: status.code().unwrap_or(-1),
            raw_stdout,
        }
    }
}
