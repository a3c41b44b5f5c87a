//! Members whose binary changes between runs, for migration tests: a member's data dir is
//! written by etcd, then served by chorus (or the reverse), with the same name, URLs and
//! flags. Servers are started from command lines (the blocks of docs/migration.md, run
//! with `bash -c "exec ..."`, so the child is the server itself) with each member's
//! variables set; ports are chosen at run time below 32768, outside Linux's ephemeral
//! range.
//!
//! ```text
//!   Fleet::new(n) ── TempDir ── m0/ (data dir)  m0.log   work/ (cwd of commands)
//!     vars(i): NAME DATA_DIR CLIENT_URL PEER_URL INITIAL_CLUSTER INITIAL_CLUSTER_TOKEN
//!     spawn(i, command, path) / wait_ready(i) (a leader, by `endpoint status`) / stop / kill9
//!     run(command, vars, path) ── bash -euo pipefail -c, to completion
//!   Tools::etcd34() / etcd35() ── etcd, etcdctl (etcdutl) of one version; missing: skip,
//!                                 or fail under CI=true
//! ```

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Between two polls of a starting member's `/health` (no event to await from another
/// process); every wait is bounded.
const POLL: Duration = Duration::from_millis(50);

/// The etcd binaries of one version.
#[derive(Debug, Clone)]
pub struct Tools {
    pub version: &'static str,
    /// The directory of `etcd`, `etcdctl` (and `etcdutl`), put first on `PATH`.
    pub dir: PathBuf,
    pub etcdutl: bool,
}

impl Tools {
    /// etcd 3.4 (Debian's /usr/bin/etcd and etcdctl, or `$CHORUS_TEST_ETCD`'s directory).
    pub fn etcd34() -> Option<Tools> {
        let dir = super::etcd_binary()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .filter(|d| d.join("etcdctl").is_file());
        Self::found(dir, "3.4", false, "etcd 3.4 (etcd and etcdctl on PATH)")
    }

    /// etcd 3.5.1 from `$ETCD35_DIR` or `target/etcd-v3.5.1` (scripts/install-etcd35.sh).
    pub fn etcd35() -> Option<Tools> {
        let dir = std::env::var_os("ETCD35_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/etcd-v3.5.1"));
        let ok = ["etcd", "etcdctl", "etcdutl"]
            .iter()
            .all(|b| dir.join(b).is_file());
        let what = "etcd 3.5.1 in target/etcd-v3.5.1 (run scripts/install-etcd35.sh)";
        Self::found(ok.then_some(dir), "3.5", true, what)
    }

    fn found(
        dir: Option<PathBuf>,
        version: &'static str,
        etcdutl: bool,
        what: &str,
    ) -> Option<Tools> {
        match dir {
            Some(dir) => Some(Tools {
                version,
                dir,
                etcdutl,
            }),
            None if super::in_ci() => panic!("{what} is required under CI=true"),
            None => {
                eprintln!("skipping: {what} not found");
                None
            }
        }
    }

    pub fn etcd(&self) -> PathBuf {
        self.dir.join("etcd")
    }

    pub fn etcdctl(&self) -> PathBuf {
        self.dir.join("etcdctl")
    }

    /// `PATH` with chorus, chorusctl and this version's tools first.
    pub fn path(&self) -> String {
        path_with(Some(&self.dir))
    }
}

/// `PATH` with chorus and chorusctl first.
pub fn chorus_path() -> String {
    path_with(None)
}

fn path_with(tools: Option<&Path>) -> String {
    let chorus = PathBuf::from(env!("CARGO_BIN_EXE_chorus"));
    let ctl = super::chorusctl_binary();
    let mut dirs = vec![
        chorus.parent().unwrap().to_path_buf(),
        ctl.parent().unwrap().to_path_buf(),
    ];
    dirs.extend(tools.map(Path::to_path_buf));
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// `n` distinct ports below 32768 that are free now (bound together while choosing).
pub fn low_ports(n: usize) -> Vec<u16> {
    let mut x = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    let mut held = Vec::new();
    for _ in 0..10_000 {
        if held.len() == n {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 10_000 + (x % 22_000) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    assert_eq!(held.len(), n, "no {n} free ports below 32768");
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// One member slot: fixed name, URLs and data dir; a process while it runs.
#[derive(Debug)]
pub struct Slot {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Slot {
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// The members of one cluster; dropping it kills and reaps the processes it started.
pub struct Fleet {
    pub slots: Vec<Slot>,
    pub token: String,
    dir: TempDir,
}

impl Fleet {
    pub fn new(n: usize) -> Fleet {
        let dir = tempfile::Builder::new()
            .prefix("chorus-migration-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let ports = low_ports(2 * n);
        let slots = (0..n)
            .map(|i| Slot {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                data_dir: dir.path().join(format!("m{i}")),
                log: dir.path().join(format!("m{i}.log")),
                child: None,
            })
            .collect();
        Fleet {
            slots,
            token: format!("migration-{}", ports[0]),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where commands run (files like `etcd-backup.db` land here).
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.slots.iter().map(Slot::client_url).collect()
    }

    pub fn initial_cluster(&self) -> String {
        let parts: Vec<String> = self
            .slots
            .iter()
            .map(|s| format!("{}={}", s.name, s.peer_url()))
            .collect();
        parts.join(",")
    }

    /// The variables of docs/migration.md for member `i`.
    pub fn vars(&self, i: usize) -> Vec<(String, String)> {
        let s = &self.slots[i];
        [
            ("NAME", s.name.clone()),
            ("DATA_DIR", s.data_dir.display().to_string()),
            ("CLIENT_URL", s.client_url()),
            ("PEER_URL", s.peer_url()),
            ("INITIAL_CLUSTER", self.initial_cluster()),
            ("INITIAL_CLUSTER_TOKEN", self.token.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Starts member `i` as `command` (a server command line: `bash -c "exec command"`,
    /// so the child is the server) with its variables, `extra` ones and `path`.
    pub fn spawn(&mut self, i: usize, command: &str, extra: &[(String, String)], path: &str) {
        assert!(self.slots[i].child.is_none(), "m{i} is already running");
        let vars = self.vars(i);
        let slot = &mut self.slots[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&slot.log)
            .unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!("exec {command}"))
            .current_dir(self.dir.path().join("work"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        clean_env(&mut cmd);
        cmd.envs(vars).envs(extra.iter().cloned()).env("PATH", path);
        // SAFETY: prctl is async-signal-safe; the member dies with the test process.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        slot.child = Some(cmd.spawn().expect("spawn a member"));
    }

    /// Waits until member `i` knows a leader, as `ctl endpoint status` (etcdctl or
    /// chorusctl, as `user` when given) reports it. (`/health` cannot tell: etcd answers
    /// it false while an alarm is active.)
    pub async fn wait_ready(&mut self, i: usize, ctl: &Path, user: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            self.check_alive(i);
            if self.leader(i, ctl, user).await.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "m{i} not ready within 40 s; log:\n{}",
                super::tail(&self.slots[i].log, 60)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The leader member `i` reports now (`None`: none, or no answer).
    pub async fn leader(&self, i: usize, ctl: &Path, user: Option<&str>) -> Option<u64> {
        let mut cmd = tokio::process::Command::new(ctl);
        cmd.arg(format!("--endpoints={}", self.slots[i].client_url()))
            .args(["--command-timeout=2s", "--dial-timeout=1s"])
            .args(user.map(|u| format!("--user={u}")))
            .args(["endpoint", "status", "-w", "json"])
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
            .await
            .ok()?
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v[0]["Status"]["leader"].as_u64().filter(|&l| l != 0)
    }

    fn check_alive(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let child = slot.child.as_mut().expect("member is not running");
        if let Some(status) = child.try_wait().unwrap() {
            slot.child = None;
            panic!(
                "{} exited with {status}; log:\n{}",
                slot.name,
                super::tail(&slot.log, 60)
            );
        }
    }

    /// Waits (bounded) for member `i` to exit by itself; its exit status.
    pub async fn wait_exit(&mut self, i: usize) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(40);
        let slot = &mut self.slots[i];
        loop {
            let child = slot.child.as_mut().expect("member is not running");
            if let Some(status) = child.try_wait().unwrap() {
                slot.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within 40 s",
                slot.name
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM member `i` and wait (bounded) for it to exit.
    pub async fn stop(&mut self, i: usize) {
        let pid = self.slots[i]
            .child
            .as_ref()
            .expect("member is not running")
            .id();
        // SAFETY: kill(2) on our own child, not reaped yet, so the PID is not reused.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM: {}", std::io::Error::last_os_error());
        self.wait_exit(i).await;
    }

    /// SIGKILL member `i` and reap it.
    pub fn kill9(&mut self, i: usize) {
        let mut child = self.slots[i].child.take().expect("member is not running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.slots[i].log).unwrap_or_default()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for slot in &self.slots {
                eprintln!("--- {} ---\n{}", slot.name, super::tail(&slot.log, 80));
            }
        }
    }
}

/// No `ETCD_*`/`ETCDCTL_*` variable of the developer's shell reaches a command.
fn clean_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if n.starts_with("ETCD_") || n.starts_with("ETCDCTL_") {
            cmd.env_remove(name);
        }
    }
}

/// What a command printed.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `script` with `bash -euo pipefail` in `cwd` with `vars` and `path`, to completion
/// (bounded by 120 s).
pub async fn run(script: &str, cwd: &Path, vars: &[(String, String)], path: &str) -> Ran {
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(cwd)
        .stdin(Stdio::null());
    clean_env(&mut cmd);
    cmd.envs(vars.iter().cloned()).env("PATH", path);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("a command took more than 120 s")
        .expect("run bash");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The command block tagged `test=<name>` in docs/migration.md.
pub fn doc_block(name: &str) -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/migration.md"))
            .expect("docs/migration.md");
    let fence = format!("```sh test={name}\n");
    let start = doc
        .find(&fence)
        .unwrap_or_else(|| panic!("no block test={name}"))
        + fence.len();
    let len = doc[start..].find("```").expect("an unterminated block");
    doc[start..start + len].to_owned()
}
