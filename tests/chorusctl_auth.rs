//! chorusctl's authentication against the real etcdctl 3.4 (the oracle), both pointed at
//! each server under test: etcd 3.4.23, etcd 3.5.1 and chorus (`CHORUS_AUTH_TEST_SERVERS`
//! selects a subset, see `tests/common/auth_server.rs`).
//!
//! ```text
//!   same server:   login forms, env vars, wrong passwords, a prefix permission, watches
//!   twin servers:  user/role/auth commands (etcdctl -> A, chorusctl -> B, same sequence,
//!                  so revisions line up; cluster and member IDs are blanked)
//!   token expiry:  `txn -i` logs in, waits on stdin while the server expires its tokens
//!                  (awaited in the server's log), then commits: one new login, one warning
//!   v2:            `--username` and the user/role/auth v2 commands (twin --enable-v2)
//! ```
//!
//! Exit codes, stdout and stderr must be equal after normalising only: log timestamps,
//! clientv3's random client UUIDs, `took` durations, the twins' IDs and endpoints, and
//! the `stty: ...` lines etcdctl's password prompt gets from stty(1) when standard input
//! is not a terminal (chorusctl sets the terminal itself and says nothing).

use crate::common;

#[path = "common/auth_server.rs"]
mod auth_server;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use auth_server::{servers_under_test, AuthServer, ServerSpec, WAIT};
use common::{Etcdctl, Output};
use regex::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn servers() -> Vec<ServerSpec> {
    if !common::require_etcdctl() {
        return Vec::new();
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    servers_under_test(workspace, Some(Path::new(env!("CARGO_BIN_EXE_chorus"))))
}

fn chorusctl() -> PathBuf {
    common::chorusctl_binary()
}

/// What legitimately differs between the two tools' runs (see the module doc).
fn normalize(text: &str, endpoints: &[String]) -> String {
    let rules = [
        (r#""ts":"[^"]*""#, r#""ts":<ts>"#),
        (r"client-[0-9a-f-]{36}", "client-<uuid>"),
        (r"took = [0-9.]+[µmn]?s", "took = <took>"),
        (r#""(cluster_id|member_id)":\d+"#, r#""$1":<id>"#),
        (r#""(ClusterID|MemberID)" : \d+"#, r#""$1" : <id>"#),
        (r"(?m)^stty: .*\n", ""),
        (r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ", "<time> "),
    ];
    let mut t = text.to_owned();
    for ep in endpoints {
        t = t.replace(ep, "<ep>");
    }
    for (pattern, with) in rules {
        t = Regex::new(pattern)
            .unwrap()
            .replace_all(&t, with)
            .into_owned();
    }
    t
}

/// Differences collected over a test; `finish` fails with all of them.
#[derive(Default)]
struct Diffs(Vec<String>);

impl Diffs {
    fn compare(&mut self, label: &str, e: &Output, c: &Output, eps: &[String]) {
        let (eo, co) = (normalize(&e.stdout, eps), normalize(&c.stdout, eps));
        let (ee, ce) = (normalize(&e.stderr, eps), normalize(&c.stderr, eps));
        if e.code != c.code || eo != co || ee != ce {
            self.0.push(format!(
                "{label}\n  exit: etcdctl {} chorusctl {}\n  etcdctl stdout: {eo:?}\n  chorusctl stdout: {co:?}\n  etcdctl stderr: {ee:?}\n  chorusctl stderr: {ce:?}",
                e.code, c.code
            ));
        }
    }

    fn check(&mut self, label: &str, ok: bool, detail: impl std::fmt::Debug) {
        if !ok {
            self.0.push(format!("{label}: {detail:?}"));
        }
    }

    fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} difference(s):\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

/// One command line for both tools: arguments, variables, standard input.
#[derive(Clone, Default)]
struct Cmd {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    v2: bool,
}

fn cmd(args: &[&str]) -> Cmd {
    Cmd {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Cmd::default()
    }
}

impl Cmd {
    fn env(mut self, k: &str, v: &str) -> Cmd {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    fn stdin(mut self, s: &str) -> Cmd {
        self.stdin = Some(s.to_owned());
        self
    }

    fn v2(mut self) -> Cmd {
        self.v2 = true;
        self
    }

    fn label(&self) -> String {
        format!("{:?} env {:?} stdin {:?}", self.args, self.env, self.stdin)
    }

    async fn run(&self, endpoint: &str, chorus: bool) -> Output {
        let mut r = if self.v2 {
            Etcdctl::v2(&[format!("http://{endpoint}")])
        } else {
            Etcdctl::v3(&[endpoint])
        };
        r = r.args(&self.args);
        for (k, v) in &self.env {
            r = r.env(k, v);
        }
        if let Some(s) = &self.stdin {
            r = r.stdin(s.clone());
        }
        if chorus {
            r = r.binary(chorusctl());
        }
        r.run().await
    }
}

/// Both tools against the same server.
async fn same(d: &mut Diffs, s: &AuthServer, c: Cmd) -> (Output, Output) {
    let e = c.run(&s.endpoint(), false).await;
    let ch = c.run(&s.endpoint(), true).await;
    d.compare(&format!("{} {}", s.spec.name(), c.label()), &e, &ch, &[]);
    (e, ch)
}

/// etcdctl against `a`, chorusctl against `b`.
async fn twin(d: &mut Diffs, a: &AuthServer, b: &AuthServer, c: Cmd) {
    let e = c.run(&a.endpoint(), false).await;
    let ch = c.run(&b.endpoint(), true).await;
    let eps = [a.endpoint(), b.endpoint()];
    d.compare(&format!("{} {}", a.spec.name(), c.label()), &e, &ch, &eps);
}

/// A server with auth on: root (`pw`), alice (`apw`, read-write on prefix `a/`), keys
/// `k` and `a/1`.
async fn server_with_alice(spec: &ServerSpec, flags: &[&str]) -> AuthServer {
    let s = AuthServer::start(spec, flags).await;
    s.enable_auth("pw").await;
    for args in [
        &["user", "add", "alice:apw"][..],
        &["role", "add", "ra"],
        &[
            "role",
            "grant-permission",
            "ra",
            "readwrite",
            "a/",
            "--prefix",
        ],
        &["user", "grant-role", "alice", "ra"],
        &["put", "k", "v"],
        &["put", "a/1", "x"],
    ] {
        let mut all = vec!["--user=root:pw"];
        all.extend_from_slice(args);
        s.etcdctl(&all).await;
    }
    s
}

#[tokio::test]
async fn login_forms_env_and_wrong_passwords() {
    for spec in servers() {
        let s = server_with_alice(&spec, &[]).await;
        let mut d = Diffs::default();
        for c in [
            cmd(&["--user=root:pw", "get", "k"]),
            cmd(&["--user=root", "--password=pw", "get", "k"]),
            cmd(&["--user", "root", "--password", "p:w", "get", "k"]),
            cmd(&["get", "k"]).env("ETCDCTL_USER", "root:pw"),
            cmd(&["get", "k"])
                .env("ETCDCTL_USER", "root")
                .env("ETCDCTL_PASSWORD", "pw"),
            cmd(&["--user=root:pw", "get", "k"]).env("ETCDCTL_USER", "root:pw"),
            cmd(&["--user=root", "get", "k"]).stdin("pw\n"),
            cmd(&["--user=root", "get", "k"]).stdin("  pw  \nrest\n"),
            cmd(&["--user=root", "get", "k"]).stdin(""),
            cmd(&["--user=root:bad", "get", "k"]),
            cmd(&["--user=nobody:x", "get", "k"]),
            cmd(&["--user=root:pw", "--password=pw", "get", "k"]),
            cmd(&["--user=root:", "get", "k"]),
            cmd(&["get", "k"]),
            cmd(&["--user=root:pw", "user", "list", "-w", "json"]),
            cmd(&["--user=root:pw", "endpoint", "health"]),
            cmd(&["--user=root:bad", "endpoint", "health"]),
            cmd(&["--user=alice:apw", "endpoint", "health"]),
        ] {
            same(&mut d, &s, c).await;
        }
        debug_hides_the_password(&mut d, &s).await;
        d.finish();
    }
}

/// chorusctl's `--debug` lists the flags as etcdctl does, the password blanked.
async fn debug_hides_the_password(d: &mut Diffs, s: &AuthServer) {
    let out = cmd(&["--user=root:s3cret", "--debug", "get", "k"])
        .run(&s.endpoint(), true)
        .await;
    d.check(
        "--debug hides the password",
        out.stderr.contains("ETCDCTL_USER=root:<redacted>\n") && !out.stderr.contains("s3cret"),
        &out.stderr,
    );
}

#[tokio::test]
async fn unreachable_endpoint_with_credentials() {
    if servers().is_empty() {
        return;
    }
    let nowhere = format!("127.0.0.1:{}", auth_server::free_low_port());
    let c = cmd(&["--user=root:pw", "--dial-timeout=500ms", "get", "k"]);
    let e = c.run(&nowhere, false).await;
    let ch = c.run(&nowhere, true).await;
    let mut d = Diffs::default();
    d.compare(&c.label(), &e, &ch, &[]);
    d.finish();
}

#[tokio::test]
async fn a_prefix_permission_for_put_get_and_watch() {
    for spec in servers() {
        let s = server_with_alice(&spec, &[]).await;
        let mut d = Diffs::default();
        for c in [
            cmd(&["--user=alice:apw", "put", "a/2", "y"]),
            cmd(&["--user=alice:apw", "put", "b/1", "y"]),
            cmd(&["--user=alice:apw", "get", "b/1"]),
            cmd(&["--user=alice:apw", "get", "a/", "--prefix"]),
            cmd(&["--user=alice:apw", "get", "a/1", "-w", "json"]),
            cmd(&["--user=alice:apw", "get", "", "--from-key"]),
            cmd(&["--user=alice:apw", "del", "b/1"]),
            cmd(&["--user=alice:apw", "watch", "b/1"]),
            cmd(&["--user=alice:apw", "watch", "a/", "b/"]),
        ] {
            same(&mut d, &s, c).await;
        }
        allowed_watch(&mut d, &s).await;
        d.finish();
    }
}

/// `watch a/w --rev=<the put's revision>` as alice in both tools: both print the event
/// (from history, so no watcher can miss it).
async fn allowed_watch(d: &mut Diffs, s: &AuthServer) {
    let put = s
        .etcdctl(&["--user=root:pw", "put", "a/w", "1", "-w", "json"])
        .await;
    let rev: serde_json::Value = serde_json::from_str(&put).expect("put -w json");
    let rev = rev["header"]["revision"]
        .as_i64()
        .expect("revision")
        .to_string();
    let watch = |chorus: bool| {
        let args = ["--user=alice:apw", "watch", "a/w", "--rev", rev.as_str()];
        let mut r = Etcdctl::v3(&[s.endpoint()]).args(args);
        if chorus {
            r = r.binary(chorusctl());
        }
        r.spawn()
    };
    let (mut e, mut c) = (watch(false).await, watch(true).await);
    let want = |out: &str| out.contains("PUT\na/w\n1\n");
    let (eo, co) = (e.wait_for(WAIT, want).await, c.wait_for(WAIT, want).await);
    d.check(
        "watch a/w as alice",
        eo.is_ok() && co.is_ok() && eo == co,
        (&eo, &co),
    );
    e.stop().await;
    c.stop().await;
}

/// The user/role/auth commands etcdctl 3.4 has, in their forms and errors.
fn user_role_commands() -> Vec<Cmd> {
    let r = |args: &[&str]| {
        let mut all = vec!["--user=root:pw"];
        all.extend_from_slice(args);
        cmd(&all)
    };
    vec![
        cmd(&["auth", "enable"]),
        cmd(&["user", "add", "root:pw"]),
        cmd(&["user", "add", ":pw"]),
        cmd(&["user", "add"]),
        cmd(&["auth", "enable", "x"]),
        cmd(&["auth", "enable"]),
        r(&["auth", "enable"]),
        r(&["user", "add", "u1", "--interactive=false"]).stdin("secret\n"),
        r(&["user", "add", "u2", "--new-user-password=p:2"]),
        r(&["user", "add", "u3", "--no-password"]),
        r(&["user", "add", "u4"]).stdin("p4\np4\n"),
        r(&["user", "add", "u5"]).stdin("p5\nother\n"),
        r(&["user", "add", "u6"]),
        r(&["user", "add", "u7:p7", "-w", "json"]),
        r(&["user", "add", "u8:p8", "-w", "fields"]),
        r(&["user", "add", "u9:p9", "-w", "table"]),
        r(&["user", "add", "u1:again"]),
        r(&["user", "list"]),
        r(&["user", "list", "-w", "json"]),
        r(&["user", "list", "x"]),
        r(&["role", "add", "r1"]),
        r(&["role", "add", "r1"]),
        r(&["role", "add"]),
        r(&["role", "grant-permission", "r1", "read", "k1"]),
        r(&["role", "grant-permission", "r1", "write", "k2", "k5"]),
        r(&[
            "role",
            "grant-permission",
            "r1",
            "readwrite",
            "p/",
            "--prefix",
        ]),
        r(&[
            "role",
            "grant-permission",
            "r1",
            "readwrite",
            "f",
            "--from-key",
        ]),
        r(&[
            "role",
            "grant-permission",
            "r1",
            "readwrite",
            "",
            "--prefix",
        ]),
        r(&["role", "grant-permission", "r1", "bogus", "k"]),
        r(&["role", "grant-permission", "r1", "read"]),
        r(&[
            "role",
            "grant-permission",
            "r1",
            "read",
            "k",
            "--prefix",
            "--from-key",
        ]),
        r(&[
            "role",
            "grant-permission",
            "r1",
            "read",
            "k",
            "e",
            "--prefix",
        ]),
        r(&["role", "grant-permission", "nosuch", "read", "k"]),
        r(&["role", "get", "r1"]),
        r(&["role", "get", "r1", "-w", "json"]),
        r(&["role", "get", "r1", "-w", "fields"]),
        r(&["role", "get", "nosuch"]),
        r(&["role", "list"]),
        r(&["role", "list", "-w", "json"]),
        r(&["user", "grant-role", "u1", "r1"]),
        r(&["user", "grant-role", "u1", "nosuch"]),
        r(&["user", "grant-role", "nosuch", "r1"]),
        r(&["user", "grant-role", "u1"]),
        r(&["user", "get", "u1"]),
        r(&["user", "get", "u1", "--detail"]),
        r(&["user", "get", "u1", "-w", "json"]),
        r(&["user", "get", "nosuch"]),
        r(&["role", "revoke-permission", "r1", "k1"]),
        r(&["role", "revoke-permission", "r1", "k2", "k5"]),
        r(&["role", "revoke-permission", "r1", "p/", "--prefix"]),
        r(&["role", "revoke-permission", "r1", "f", "--from-key"]),
        r(&["role", "revoke-permission", "r1", "nokey"]),
        r(&["role", "revoke-permission", "r1"]),
        r(&["user", "revoke-role", "u1", "r1"]),
        r(&["user", "revoke-role", "u1", "r1"]),
        r(&["user", "passwd", "u2", "--interactive=false"]).stdin("n2\n"),
        r(&["user", "passwd", "u2"]).stdin("n2\nn2\n"),
        cmd(&["--user=u2:n2", "get", "k"]),
        r(&["user", "delete", "u3"]),
        r(&["user", "delete", "u3"]),
        r(&["role", "delete", "r1"]),
        r(&["role", "delete", "root"]),
        r(&["user", "delete", "root"]),
        r(&["user", "revoke-role", "root", "root"]),
        cmd(&["--user=u1:secret", "user", "list"]),
        r(&["auth", "disable"]),
        r(&["auth", "disable"]),
        cmd(&["auth", "status"]),
    ]
}

#[tokio::test]
async fn user_role_and_auth_commands_on_twin_servers() {
    for spec in servers() {
        let a = AuthServer::start(&spec, &[]).await;
        let b = AuthServer::start(&spec, &[]).await;
        let mut d = Diffs::default();
        for c in user_role_commands() {
            twin(&mut d, &a, &b, c).await;
        }
        d.finish();
    }
}

/// What a tool printed while the server expired its token: the `txn -i` run.
async fn txn_after_expiry(s: &AuthServer, chorus: bool) -> Output {
    let bin = if chorus {
        chorusctl()
    } else {
        auth_server::etcdctl_binary().expect("etcdctl")
    };
    let mut cmd = tokio::process::Command::new(bin);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCDCTL_") {
            cmd.env_remove(name);
        }
    }
    let mut child = cmd
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", s.endpoint()))
        .args(["--user=bob:bpw", "txn", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    // The prompt comes after the login (both tools make the client first).
    let mut seen = Vec::new();
    let prompt = async {
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("compares:\n") {
            let n = stdout.read(&mut buf).await.expect("read stdout");
            assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(WAIT, prompt)
        .await
        .expect("txn -i prompt");
    s.barrier("root", "pw").await;
    s.wait_tokens_deleted(&s.tokens_issued("bob")).await;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"\nput t/1 v\n\n\n")
        .await
        .expect("write txn");
    drop(stdin);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("txn -i exits")
        .expect("txn -i output");
    seen.extend_from_slice(&out.stdout);
    Output {
        stdout: String::from_utf8_lossy(&seen).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
        raw_stdout: seen,
    }
}

#[tokio::test]
async fn an_expired_token_is_replaced_as_etcdctl_does() {
    for spec in servers() {
        let s = AuthServer::start(&spec, &["--auth-token-ttl=1"]).await;
        s.enable_auth("pw").await;
        for args in [
            &["user", "add", "bob:bpw"][..],
            &["role", "add", "rb"],
            &[
                "role",
                "grant-permission",
                "rb",
                "readwrite",
                "t/",
                "--prefix",
            ],
            &["user", "grant-role", "bob", "rb"],
        ] {
            let mut all = vec!["--user=root:pw"];
            all.extend_from_slice(args);
            s.etcdctl(&all).await;
        }
        let e = txn_after_expiry(&s, false).await;
        let c = txn_after_expiry(&s, true).await;
        let mut d = Diffs::default();
        d.compare(&format!("{} txn -i after expiry", spec.name()), &e, &c, &[]);
        let refused = "desc = etcdserver: invalid auth token";
        d.check(
            "one refused call, logged",
            c.stderr.matches(refused).count() == 1,
            &c,
        );
        d.finish();
    }
}

/// The v2 auth commands (`/v2/auth`), first without auth, then with `--username`.
fn v2_commands() -> Vec<Cmd> {
    let c = |args: &[&str]| cmd(args).v2();
    let r = |args: &[&str]| {
        let mut all = vec!["-u", "root:rpw"];
        all.extend_from_slice(args);
        cmd(&all).v2()
    };
    vec![
        c(&["user"]),
        c(&["role"]),
        c(&["auth"]),
        c(&["user", "bogus"]),
        c(&["user", "list"]),
        c(&["role", "list"]),
        c(&["auth", "enable"]),
        c(&["user", "add"]),
        c(&["user", "add", "root:rpw"]),
        c(&["user", "get", "root"]),
        c(&["user", "get", "nosuch"]),
        c(&["role", "add", "r1"]),
        c(&["role", "add", "r1"]),
        c(&["role", "grant", "r1", "--path", "/foo/*", "--readwrite"]),
        c(&["role", "grant", "r1", "--path", "/foo/*", "--readwrite"]),
        c(&["role", "grant", "r1", "--path", "foo", "--read"]),
        c(&["role", "grant", "r1", "--read"]),
        c(&["role", "grant", "r1", "--path", "/x"]),
        c(&["role", "grant", "--path", "/x", "--read"]),
        c(&["role", "grant", "r1", "--path=/b", "--rw"]),
        c(&["role", "revoke", "r1", "--path", "/zz", "--read"]),
        c(&["role", "get", "r1"]),
        c(&["user", "add", "u1:p1"]),
        c(&["user", "add", "u2"]).stdin("p2\n"),
        c(&["user", "grant", "u1", "--roles", "r1"]),
        c(&["user", "grant", "u1"]),
        c(&["user", "grant", "--roles", "x"]),
        c(&["user", "get", "u1"]),
        c(&["auth", "enable"]),
        c(&["user", "list"]),
        r(&["user", "list"]),
        cmd(&["-u", "root:bad", "user", "list"]).v2(),
        cmd(&["-u", "root", "role", "list"]).v2().stdin("rpw\n"),
        cmd(&["user", "list"])
            .v2()
            .env("ETCDCTL_USERNAME", "root:rpw"),
        r(&["set", "/k", "v"]),
        r(&["get", "/k"]),
        r(&["user", "revoke", "u1", "--roles", "r1"]),
        r(&["role", "revoke", "r1", "--path", "/foo/*", "--write"]),
        r(&["role", "remove", "r1"]),
        r(&["role", "remove", "r1"]),
        r(&["user", "passwd", "u1"]).stdin("n1\n"),
        r(&["user", "remove", "u1"]),
        r(&["user", "remove", "u1"]),
        r(&["auth", "disable"]),
    ]
}

#[tokio::test]
async fn v2_user_role_auth_commands_with_username() {
    for spec in servers() {
        let a = AuthServer::start(&spec, &["--enable-v2"]).await;
        let b = AuthServer::start(&spec, &["--enable-v2"]).await;
        let mut d = Diffs::default();
        for c in v2_commands() {
            twin(&mut d, &a, &b, c).await;
        }
        d.finish();
    }
}

#[test]
fn normalization_blanks_only_what_differs() {
    let eps = ["127.0.0.1:20001".to_owned()];
    let text = "stty: 'standard input': Inappropriate ioctl for device\n{\"ts\":\"2026\",\"target\":\"endpoint://client-0123456789abcdef0123456789abcdef0123/127.0.0.1:20001\"}\n";
    assert_eq!(
        normalize(text, &eps),
        "{\"ts\":<ts>,\"target\":\"endpoint://client-<uuid>/<ep>\"}\n"
    );
}
