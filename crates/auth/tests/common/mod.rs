//! Shared by the golden tests: the auth scenario (a sequence of `etcdctl` and gateway
//! calls), the golden table's format, and a harness that runs a real etcd.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const ROOT: &str = "--user=root:rootpw";
pub const ALICE: &str = "--user=alice:alicepw";
pub const LONG_PASSWORD_LEN: usize = 73;

/// One call: `etcdctl <args>` (stdin optional), or a POST to the JSON gateway.
#[derive(Clone, Debug)]
pub enum Step {
    Ctl(Vec<String>, Option<String>),
    Gateway(String, String),
}

fn ctl(args: &[&str]) -> Step {
    Step::Ctl(args.iter().map(|s| s.to_string()).collect(), None)
}

fn ctl_stdin(args: &[&str], stdin: &str) -> Step {
    Step::Ctl(
        args.iter().map(|s| s.to_string()).collect(),
        Some(stdin.into()),
    )
}

/// The scenario both etcd versions run and chorus is compared with. Append only: the
/// golden tables and the replay refer to steps by index.
pub fn scenario() -> Vec<Step> {
    let long = format!("--new-user-password={}", "x".repeat(LONG_PASSWORD_LEN));
    vec![
        ctl(&["auth", "enable"]),
        ctl(&["user", "add", "root", "--new-user-password=rootpw"]),
        ctl(&["user", "add", "root", "--new-user-password=other"]),
        ctl(&["user", "add", "", "--new-user-password=x"]),
        Step::Gateway("/v3/auth/enable".into(), "{}".into()),
        ctl(&["role", "add", ""]),
        ctl(&["role", "add", "root"]),
        ctl(&["role", "add", "root"]),
        ctl(&["user", "grant-role", "root", "root"]),
        ctl(&["user", "grant-role", "root", "root"]),
        ctl(&["user", "grant-role", "nosuch", "root"]),
        ctl(&["user", "grant-role", "root", "nosuch"]),
        ctl(&["role", "add", "reader"]),
        ctl(&["role", "grant-permission", "reader", "read", "foo"]),
        ctl(&[
            "role",
            "grant-permission",
            "reader",
            "readwrite",
            "dir/",
            "--prefix=true",
        ]),
        ctl(&["role", "grant-permission", "reader", "write", "a", "c"]),
        ctl(&[
            "role",
            "grant-permission",
            "reader",
            "read",
            "z",
            "--from-key=true",
        ]),
        ctl(&["role", "grant-permission", "reader", "write", "foo"]),
        ctl(&["role", "grant-permission", "nosuch", "read", "foo"]),
        ctl(&["role", "get", "reader"]),
        ctl(&["role", "revoke-permission", "reader", "nokey"]),
        ctl(&["role", "revoke-permission", "reader", "a", "c"]),
        ctl(&["role", "revoke-permission", "nosuch", "foo"]),
        ctl(&["role", "get", "reader"]),
        ctl(&["role", "get", "nosuch"]),
        ctl(&["user", "add", "alice", "--new-user-password=alicepw"]),
        ctl(&["user", "grant-role", "alice", "reader"]),
        ctl(&["user", "revoke-role", "alice", "nosuch"]),
        ctl(&["user", "revoke-role", "nosuch", "reader"]),
        ctl(&["user", "add", "bob", "--no-password"]),
        ctl(&["user", "list"]),
        ctl(&["role", "list"]),
        ctl(&["user", "get", "alice"]),
        ctl(&["user", "get", "nosuch"]),
        ctl(&["user", "delete", "nosuch"]),
        ctl(&["auth", "enable"]),
        ctl(&["auth", "status", ROOT]),
        ctl(&["get", "foo"]),
        ctl(&["get", "foo", "--user=alice:wrong"]),
        ctl(&["get", "foo", "--user=nosuch:x"]),
        ctl(&["get", "foo", "--user=bob:x"]),
        ctl(&["put", "foo", "v", ALICE]),
        ctl(&["get", "foo", ALICE]),
        ctl(&["put", "dir/x", "1", ALICE]),
        ctl(&["get", "dir/", "--prefix", ALICE]),
        ctl(&["get", "d", "--prefix", ALICE]),
        ctl(&["get", "z", "--from-key", ALICE]),
        ctl(&["get", "y", "--from-key", ALICE]),
        ctl(&["put", "b", "1", ALICE]),
        ctl(&["user", "list", ALICE]),
        ctl(&["user", "get", "alice", ALICE]),
        ctl(&["user", "get", "root", ALICE]),
        ctl(&["role", "get", "reader", ALICE]),
        ctl(&["role", "get", "root", ALICE]),
        ctl(&["role", "add", "x", ALICE]),
        ctl(&["user", "delete", "root", ROOT]),
        ctl(&["user", "revoke-role", "root", "root", ROOT]),
        ctl(&["role", "delete", "root", ROOT]),
        ctl(&["auth", "enable", ROOT]),
        ctl_stdin(
            &["user", "passwd", "alice", "--interactive=false", ROOT],
            "newpw\n",
        ),
        ctl(&["get", "dir/x", ALICE]),
        ctl(&["get", "dir/x", "--user=alice:newpw"]),
        ctl(&[
            "role",
            "revoke-permission",
            "reader",
            "dir/",
            "--prefix=true",
            ROOT,
        ]),
        ctl(&["get", "dir/x", "--user=alice:newpw"]),
        ctl(&["role", "delete", "reader", ROOT]),
        ctl(&["user", "get", "alice", ROOT]),
        ctl(&["user", "add", "carol", &long, ROOT]),
        ctl(&["role", "grant-permission", "root", "read", "b", "a", ROOT]),
        ctl(&["user", "delete", "bob", ROOT]),
        ctl(&["auth", "status", ROOT]),
        ctl(&["auth", "disable", ROOT]),
        ctl(&["auth", "status"]),
        ctl(&["get", "foo", "--user=alice:newpw"]),
        ctl(&["user", "delete", "root"]),
        ctl(&["role", "delete", "root"]),
        ctl(&["auth", "enable"]),
        ctl(&["user", "list"]),
        ctl(&["role", "list"]),
        ctl(&["auth", "disable"]),
    ]
}

/// One step's outcome, as the golden table keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub step: String,
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Golden {
    pub etcd_version: String,
    pub steps: Vec<Outcome>,
    /// `--auth-token` value -> the error etcd refuses to start with ("" when it starts).
    pub auth_token_errors: Vec<(String, String)>,
}

pub fn describe(step: &Step) -> String {
    match step {
        Step::Ctl(args, stdin) => {
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    if a.is_empty() {
                        "\"\"".into()
                    } else {
                        a.clone()
                    }
                })
                .collect();
            let mut s = format!("etcdctl {}", args.join(" "));
            if let Some(i) = stdin {
                s += &format!(" <<< {:?}", i.trim_end());
            }
            s
        }
        Step::Gateway(path, body) => format!("POST {path} {body}"),
    }
}

/// The workspace root (this module is also compiled into the root package's tests).
pub fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("Cargo.lock").exists() {
        if !dir.pop() {
            panic!("no Cargo.lock above {}", env!("CARGO_MANIFEST_DIR"));
        }
    }
    dir
}

pub fn golden_dir() -> PathBuf {
    workspace_root().join("crates/auth/tests/golden")
}

pub fn golden_path(version: &str) -> PathBuf {
    golden_dir().join(format!("etcd-{version}.json"))
}

pub fn read_golden(version: &str) -> Golden {
    let path = golden_path(version);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Where etcd `version` (`3.4` or `3.5`) is: its etcd and etcdctl.
pub struct Binaries {
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
}

pub fn find_etcd(series: &str) -> Option<Binaries> {
    let dir = match series {
        "3.4" => PathBuf::from(std::env::var("ETCD34_DIR").unwrap_or_else(|_| "/usr/bin".into())),
        _ => std::env::var("ETCD35_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join("target/etcd-v3.5.1")),
    };
    let b = Binaries {
        etcd: dir.join("etcd"),
        etcdctl: dir.join("etcdctl"),
    };
    let version = Command::new(&b.etcd).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&version.stdout);
    text.contains(&format!("etcd Version: {series}."))
        .then_some(b)
}

/// etcd (or curl) missing: with CI=true a failure, otherwise a printed skip.
pub fn require<T>(what: Option<T>, name: &str) -> Option<T> {
    if what.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} is required when CI=true (scripts/install-etcd35.sh, apt etcd-server)");
        }
        eprintln!("skipped: {name} not found (set CI=true to make this a failure)");
    }
    what
}

/// Two free ports below 32768 (client, peer). Each call starts at a new offset so that
/// parallel tests in this process do not collide; bounded.
pub fn free_ports() -> (u16, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20000 + (std::process::id() % 2000) as u16 * 4;
    for _ in 0..200 {
        let p = base + NEXT.fetch_add(2, Ordering::SeqCst) % 10000;
        let free = |p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if p + 1 < 32768 && free(p) && free(p + 1) {
            return (p, p + 1);
        }
    }
    panic!("no two free ports found below 32768");
}

/// A running etcd, killed (by its own PID) on drop.
pub struct Etcd {
    child: Child,
    pub client_port: u16,
    pub etcdctl: PathBuf,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd and waits (bounded) for its "serving client traffic" log line, which both
    /// 3.4 and 3.5 write once the server is ready and the client listener serves.
    pub fn start(b: &Binaries, extra: &[&str]) -> Result<Etcd, String> {
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = free_ports();
        let mut child = Command::new(&b.etcd)
            .args(etcd_args(dir.path(), client, peer))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut last = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving client traffic") {
                    let _ = tx.send(Ok(()));
                } else if line.contains("\"level\":\"fatal\"") {
                    let _ = tx.send(Err(line.clone()));
                }
                last = line;
            }
            // The process ended (chorus prints its start-up error last, without JSON).
            let _ = tx.send(Err(last));
        });
        let etcd = Etcd {
            child,
            client_port: client,
            etcdctl: b.etcdctl.clone(),
            _dir: dir,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => Ok(etcd),
            Ok(Err(line)) => Err(line),
            Err(_) => Err("etcd did not become ready within 60 s".into()),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn run(&self, step: &Step) -> Outcome {
        let out = match step {
            Step::Ctl(args, stdin) => {
                let mut cmd = Command::new(&self.etcdctl);
                cmd.env("ETCDCTL_API", "3")
                    .arg(format!("--endpoints={}", self.endpoint()))
                    .arg("--command-timeout=10s")
                    .args(args);
                run_with_stdin(cmd, stdin.as_deref())
            }
            Step::Gateway(path, body) => {
                let mut cmd = Command::new("curl");
                cmd.args(["-s", "-X", "POST", "--max-time", "10", "-d", body])
                    .arg(format!("http://{}{path}", self.endpoint()));
                run_with_stdin(cmd, None)
            }
        };
        Outcome {
            step: describe(step),
            exit: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: normalize_stderr(&String::from_utf8_lossy(&out.stderr)),
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn etcd_args(dir: &Path, client: u16, peer: u16) -> Vec<String> {
    vec![
        "--name=golden".into(),
        format!("--data-dir={}", dir.join("data").display()),
        format!("--listen-client-urls=http://127.0.0.1:{client}"),
        format!("--advertise-client-urls=http://127.0.0.1:{client}"),
        format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
        format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
        format!("--initial-cluster=golden=http://127.0.0.1:{peer}"),
        "--logger=zap".into(),
    ]
}

fn run_with_stdin(mut cmd: Command, stdin: Option<&str>) -> std::process::Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Drops the client library's JSON log lines (retry warnings with timestamps) and
/// terminal noise; keeps what etcdctl itself prints.
pub fn normalize_stderr(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with('{') && !l.starts_with("stty:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Steps where chorus answers otherwise than etcd 3.5.1 on purpose (later etcd 3.5
/// releases answer as chorus does), and the steps whose output they change.
pub fn deliberate_differences(series: &str) -> BTreeMap<usize, (i32, String, String)> {
    let unknown = |m: &str| {
        (
            1,
            String::new(),
            format!("Error: rpc error: code = Unknown desc = {m}\n"),
        )
    };
    let mut d = BTreeMap::new();
    // A 73-byte password: Go's bcrypt in current etcd 3.5 refuses it; 3.5.1 cut it at 72.
    d.insert(66, unknown("bcrypt: password length exceeds 72 bytes"));
    // A permission range holding no key ([b, a)): refused since etcd 3.5.3.
    d.insert(
        67,
        (
            1,
            String::new(),
            "Error: etcdserver: invalid auth management\n".into(),
        ),
    );
    // So carol does not exist and the two changes made no revision.
    if series == "3.5" {
        d.insert(
            69,
            ok_out("Authentication Status: true\nAuthRevision: 18\n".into()),
        );
        d.insert(
            71,
            ok_out("Authentication Status: false\nAuthRevision: 19\n".into()),
        );
    }
    d.insert(76, ok_out("alice\n".into()));
    d
}

fn ok_out(stdout: String) -> (i32, String, String) {
    (0, stdout, String::new())
}
