//! Running the real etcd (3.4 from /usr/bin, 3.5 from `scripts/install-etcd35.sh`) as a child
//! process on 127.0.0.1, and driving it with etcdctl.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The binaries of one etcd version.
pub struct EtcdBins {
    pub version: &'static str,
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
    /// etcdutl (3.5+); `None` for 3.4, where etcdctl does its work.
    pub etcdutl: Option<PathBuf>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Missing binaries: a failure under CI (`CI=true`), a printed skip otherwise.
fn missing(what: &str) -> Option<EtcdBins> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is missing, and CI=true: the etcd oracle tests must run");
    }
    eprintln!("SKIPPED: {what} is missing");
    None
}

/// etcd 3.4 from /usr/bin.
pub fn etcd34() -> Option<EtcdBins> {
    let (etcd, etcdctl) = (
        PathBuf::from("/usr/bin/etcd"),
        PathBuf::from("/usr/bin/etcdctl"),
    );
    if !etcd.exists() || !etcdctl.exists() {
        return missing("etcd 3.4 (/usr/bin/etcd, /usr/bin/etcdctl)");
    }
    Some(EtcdBins {
        version: "3.4",
        etcd,
        etcdctl,
        etcdutl: None,
    })
}

/// etcd 3.5 from `$ETCD35_DIR` or `<workspace>/target/etcd-v3.5.1`.
pub fn etcd35() -> Option<EtcdBins> {
    let dir = std::env::var_os("ETCD35_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/etcd-v3.5.1"));
    let bins = EtcdBins {
        version: "3.5",
        etcd: dir.join("etcd"),
        etcdctl: dir.join("etcdctl"),
        etcdutl: Some(dir.join("etcdutl")),
    };
    if !bins.etcd.exists() || !bins.etcdctl.exists() || !bins.etcdutl.as_ref().unwrap().exists() {
        return missing(&format!(
            "etcd 3.5 in {} (run scripts/install-etcd35.sh)",
            dir.display()
        ));
    }
    Some(bins)
}

/// A port on 127.0.0.1 below 32768 that is free now.
pub fn free_port() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    let mut x = seed | 1;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20000 + (x % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port pair in 20000..32001");
}

/// A running etcd member (killed on drop if still running).
pub struct Etcd {
    pub bins: &'static EtcdBins,
    pub name: String,
    pub data_dir: PathBuf,
    pub client_url: String,
    pub peer_url: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Etcd {
    /// Starts a single-member cluster on `data_dir` (new, or restored) with client port
    /// `port` and peer port `port + 1`, and waits until it is healthy.
    pub fn start(bins: &'static EtcdBins, data_dir: &Path, port: u16, extra: &[&str]) -> Etcd {
        let client_url = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{}", port + 1);
        let name = "m1".to_string();
        let log = data_dir.with_extension("log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&bins.etcd)
            .args(["--name", &name, "--data-dir"])
            .arg(data_dir)
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("{name}={peer_url}")])
            .args(extra)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn etcd");
        let mut etcd = Etcd {
            bins,
            name,
            data_dir: data_dir.to_path_buf(),
            client_url,
            peer_url,
            child: Some(child),
            log,
        };
        etcd.wait_healthy();
        etcd
    }

    fn wait_healthy(&mut self) {
        for _ in 0..300 {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "etcd {} exited ({status}) before serving:\n{}",
                    self.bins.version,
                    self.log_tail()
                );
            }
            let ok = Command::new(&self.bins.etcdctl)
                .args([
                    "--endpoints",
                    &self.client_url,
                    "--command-timeout=2s",
                    "--dial-timeout=1s",
                    "endpoint",
                    "health",
                ])
                .env("ETCDCTL_API", "3")
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            // Between polls of a member that is starting up.
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "etcd {} not healthy:\n{}",
            self.bins.version,
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs etcdctl against this member; panics unless it succeeds. Returns stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        self.ctl_stdin(args, None)
    }

    /// Runs etcdctl against this member; stdout, or stderr as the error.
    pub fn try_ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bins.etcdctl)
            .args(["--endpoints", &self.client_url, "--command-timeout=30s"])
            .args(args)
            .env("ETCDCTL_API", "3")
            .output()
            .expect("spawn etcdctl");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Like [`Etcd::ctl`], with `stdin` fed to etcdctl.
    pub fn ctl_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new(&self.bins.etcdctl)
            .args(["--endpoints", &self.client_url, "--command-timeout=30s"])
            .args(args)
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn etcdctl");
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Stops the member with SIGTERM (SIGKILL if it lingers) and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..200 {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            // Waiting for the process to exit: there is no event to await without a pidfd.
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a tool (etcdctl or etcdutl) that needs no member; panics unless it succeeds.
pub fn run_tool(tool: &Path, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .expect("spawn tool");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        tool.display(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Standard base64 (as etcdctl's JSON writes bytes).
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in s.trim_end_matches('=').as_bytes().chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | val(c) << (18 - 6 * i));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    out
}
