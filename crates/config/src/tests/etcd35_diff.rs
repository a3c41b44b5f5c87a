//! Side by side with the real etcd 3.5.1 (`scripts/install-etcd35.sh`, or
//! `$ETCD35_DIR`): the same bad command line or environment goes to the
//! etcd binary and to chorus's parser, and the exit code and message must
//! agree. Without the binary the test is skipped, unless `CI=true`.
//!
//! What is compared: for a Go `flag` error (exit 2) etcd's first stderr line
//! against the first line of chorus's report; for a verification error
//! (exit 1) the `error` field of etcd 3.5's `failed to verify flags` log line
//! (etcd 3.5 logs JSON, so its first line is a timestamped `Running:` entry)
//! against chorus's message. Only bad inputs are listed: etcd exits before
//! it binds or writes anything (each run gets an empty working directory and
//! is killed, failing the test, if it is still up after 10 s).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// Bad inputs etcd 3.5.1 and chorus refuse identically.
const CASES: &[(&[&str], &[(&str, &str)])] = &[
    // Go flag syntax and unknown flags (exit 2).
    (&["--foo"], &[]),
    (&["-foo=1"], &[]),
    (&["--name"], &[]),
    (&["---name", "x"], &[]),
    (&["-=x"], &[]),
    (&["--experimental-max-learners=2"], &[]),
    // Bad values (exit 2).
    (&["--snapshot-count=abc"], &[]),
    (&["--snapshot-count=-1"], &[]),
    (&["--snapshot-count=99999999999999999999999"], &[]),
    (&["--max-txn-ops=+1"], &[]),
    (&["--heartbeat-interval=x"], &[]),
    (&["--grpc-keepalive-min-time=5"], &[]),
    (&["--raft-read-timeout=5"], &[]),
    (&["--experimental-downgrade-check-time=soon"], &[]),
    (
        &["--experimental-bootstrap-defrag-threshold-megabytes=-1"],
        &[],
    ),
    (&["--self-signed-cert-validity=one"], &[]),
    (&["--experimental-distributed-tracing-address"], &[]),
    (&["--initial-cluster-state=foo"], &[]),
    (&["--discovery-fallback=foo"], &[]),
    (&["--proxy=foo"], &[]),
    (&["--v2-deprecation=bad"], &[]),
    (&["--v2-deprecation=write-only,bad"], &[]),
    (&["--listen-peer-urls=foo"], &[]),
    (&["--listen-client-urls=http://127.0.0.1:2379/foo"], &[]),
    (&["--listen-client-urls=http://127.0.0.1"], &[]),
    (&["--listen-client-urls=http://[::1"], &[]),
    (&["--listen-client-urls=127.0.0.1:2379"], &[]),
    (&["--cors=*,http://a:1"], &[]),
    (&["--pre-vote=yes"], &[]),
    (&["--pre-vote="], &[]),
    (&["--socket-reuse-port=maybe"], &[]),
    (&["--enable-v2=2"], &[]),
    (&["--experimental-memory-mlock=on"], &[]),
    // Verification (exit 1).
    (&["extra"], &[]),
    (&["--pre-vote", "false"], &[]),
    (&["--heartbeat-interval=0"], &[]),
    (&["--election-timeout=0"], &[]),
    (&["--heartbeat-interval=100", "--election-timeout=400"], &[]),
    (&["--election-timeout=60000"], &[]),
    (&["--listen-client-urls=http://127.0.0.1:23791"], &[]),
    (
        &[
            "--listen-client-urls=http://example.com:2379",
            "--advertise-client-urls=http://x:1",
        ],
        &[],
    ),
    (&["--initial-advertise-peer-urls=http://:1"], &[]),
    (
        &[
            "--initial-cluster=default=http://127.0.0.1:23801",
            "--discovery=http://127.0.0.1:1/x",
        ],
        &[],
    ),
    (&["--auto-compaction-mode=foo"], &[]),
    (&["--logger=foo"], &[]),
    (&["--logger=zap", "--log-outputs=stdout,default"], &[]),
    (&["--logger=zap", "--enable-log-rotation"], &[]),
    (
        &[
            "--enable-log-rotation",
            "--log-outputs=a.log",
            "--log-rotation-config-json={\"maxsize\":\"a\"}",
        ],
        &[],
    ),
    (
        &[
            "--enable-log-rotation",
            "--log-outputs=a.log",
            "--log-rotation-config-json={\"maxage\":1.5}",
        ],
        &[],
    ),
    (
        &[
            "--enable-log-rotation",
            "--log-outputs=a.log",
            "--log-rotation-config-json={maxsize:1}",
        ],
        &[],
    ),
    // Environment (exit 1).
    (&[], &[("ETCD_SNAPSHOT_COUNT", "abc")]),
    (&[], &[("ETCD_PRE_VOTE", "yes")]),
    (&[], &[("ETCD_V2_DEPRECATION", "bad")]),
    (&[], &[("ETCD_RAFT_WRITE_TIMEOUT", "2")]),
    (&[], &[("ETCD_HEARTBEAT_INTERVAL", "1000")]),
];

fn etcd_binary() -> Option<PathBuf> {
    let dir = std::env::var_os("ETCD35_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/etcd-v3.5.1")
        });
    let bin = dir.join("etcd");
    if bin.exists() {
        return Some(bin);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("etcd 3.5.1 is required when CI=true (scripts/install-etcd35.sh)");
    }
    eprintln!(
        "skipped: {} not found (scripts/install-etcd35.sh)",
        bin.display()
    );
    None
}

/// Runs etcd with `args` and only `env` (plus `PATH`); its exit code and stderr.
fn run_etcd(bin: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Process::new(bin)
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("etcd 3.5.1 kept running with {args:?} {env:?}: not a bad input");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code().unwrap_or(-1), stderr)
}

/// The message etcd printed: its first line for a flag error, else the
/// `error` of the `failed to verify flags` entry.
fn etcd_message(code: i32, stderr: &str) -> String {
    if code == 2 {
        return stderr.lines().next().unwrap_or("").to_string();
    }
    let line = stderr
        .lines()
        .find(|l| l.contains("\"msg\":\"failed to verify flags\""))
        .unwrap_or_else(|| panic!("no verification error in {stderr:?}"));
    json_string_field(line, "error").unwrap_or_else(|| panic!("no error field in {line:?}"))
}

/// The string value of `field` in a one-line JSON object (zap's output:
/// escapes `\"`, `\\`, `\n`, `\t`, `\uXXXX`).
fn json_string_field(line: &str, field: &str) -> Option<String> {
    let start = line.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[test]
fn bad_input_is_refused_like_etcd_3_5_1() {
    let Some(bin) = etcd_binary() else {
        return;
    };
    let mut compared = 0;
    for (args, env) in CASES {
        let (code, stderr) = run_etcd(&bin, args, env);
        let want = etcd_message(code, &stderr);
        let e = err_env(args, env);
        let got = if code == 2 {
            e.report().lines().next().unwrap_or("").to_string()
        } else {
            e.to_string()
        };
        assert_eq!(
            (e.exit_code(), got.as_str()),
            (code, want.as_str()),
            "{args:?} {env:?}"
        );
        compared += 1;
    }
    assert_eq!(compared, CASES.len());
}
