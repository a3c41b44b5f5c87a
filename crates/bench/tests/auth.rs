//! chorus-bench's `--user` against real servers with auth on (etcd 3.4 and 3.5; the
//! server under test is a parameter, see `tests/common/auth_server.rs`): the login forms
//! and errors of the binary, and, through the library, a token revoked between two runs
//! of the driver replaced with one login per connection.

#[path = "../../../tests/common/auth_server.rs"]
mod auth_server;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use auth_server::{servers_under_test, AuthServer, ServerSpec, WAIT};
use chorus_api::etcdserverpb::PutRequest;
use chorus_bench::conn::{Conn, ConnConfig};
use chorus_bench::driver::{self, Op};
use chorus_bench::progress::Progress;
use chorus_bench::tls::TlsFlags;
use chorus_client::{AuthChannel, Credentials};
use tokio::io::AsyncWriteExt;

fn servers() -> Vec<ServerSpec> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    servers_under_test(&workspace, None)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// chorus-bench with `args`, `stdin` written and closed.
async fn bench(endpoint: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus-bench"))
        .arg(format!("--endpoints={endpoint}"))
        .arg("--no-progress")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chorus-bench");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("stdin");
    drop(input);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("chorus-bench ran over its bound")
        .expect("chorus-bench output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn put(total: &str) -> Vec<&str> {
    vec![
        "put",
        "--total",
        total,
        "--key-size",
        "8",
        "--val-size",
        "8",
    ]
}

#[tokio::test]
async fn user_flag_forms_and_errors() {
    for spec in servers() {
        let s = AuthServer::start(&spec, &[]).await;
        s.enable_auth("p:w").await;
        let ep = s.endpoint();
        let ok = |r: &Run| r.code == 0 && !r.stdout.contains("Error distribution");
        let cases: [(&[&str], &str); 3] = [
            (&["--user", "root:p:w"], ""),
            (&["--user", "root", "--password", "p:w"], ""),
            (&["--user", "root"], "p:w\n"),
        ];
        for (login, stdin) in cases {
            let mut args = login.to_vec();
            args.extend(put("20"));
            let r = bench(&ep, &args, stdin).await;
            assert!(
                ok(&r),
                "{}: {login:?}: {}{}",
                spec.name(),
                r.stdout,
                r.stderr
            );
            let asked = !stdin.is_empty();
            assert_eq!(r.stdout.starts_with("Password: \n"), asked, "{login:?}");
        }
        let mut args = vec!["--user", "root:bad"];
        args.extend(put("5"));
        let r = bench(&ep, &args, "").await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("dial error")
                && r.stderr
                    .contains("authentication failed, invalid user ID or password"),
            "{}",
            r.stderr
        );
        // Without a user: etcd lets the dial's Status through and refuses each put (the
        // error distribution, on stdout); chorus refuses Status too (docs/security.md),
        // so the dial fails with the same message on stderr.
        let r = bench(&ep, &put("5"), "").await;
        let said = format!("{}{}", r.stdout, r.stderr);
        assert!(said.contains("user name is empty"), "{said}");
    }
}

/// Puts on one connection, counting on the driver's token retry.
struct PutOp {
    conn: Conn,
    kv: chorus_api::etcdserverpb::kv_client::KvClient<AuthChannel>,
}

impl Op for PutOp {
    type Req = PutRequest;

    fn conn(&self) -> Option<&Conn> {
        Some(&self.conn)
    }

    fn build(&mut self, i: u64) -> (usize, PutRequest) {
        let req = PutRequest {
            key: format!("bench/{i}").into_bytes(),
            value: b"v".to_vec(),
            ..Default::default()
        };
        (0, req)
    }

    async fn send(&mut self, req: PutRequest) -> Result<(), tonic::Status> {
        self.kv.put(req).await.map(drop)
    }
}

async fn run_puts(conn: &Conn, total: u64) -> (usize, u64) {
    let op = PutOp {
        conn: conn.clone(),
        kv: conn.kv_client(),
    };
    let run = driver::run(
        vec![op],
        total,
        1,
        None,
        Progress::default(),
        &Default::default(),
    )
    .await;
    (run.recorders[0].successes(), run.recorders[0].error_count())
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_per_connection() {
    for spec in servers() {
        let s = AuthServer::start(&spec, &[]).await;
        s.enable_auth("pw").await;
        s.etcdctl(&["--user=root:pw", "user", "add", "barrier:b"])
            .await;
        let config = ConnConfig {
            endpoints: vec![s.endpoint()],
            conns: 1,
            dial_timeout: Duration::from_secs(2),
            // Finding the leader logs in first (chorus answers Status only to a user).
            target_leader: true,
            tls: TlsFlags::default(),
            credentials: Some(Credentials::new("root", "pw")),
        };
        let conns = config.connect(0).await.expect("connect with --user");
        assert_eq!(
            run_puts(&conns.clients[0], 3).await,
            (3, 0),
            "{}",
            spec.name()
        );
        // auth disable + enable drops every token (etcdctl's own login is one more).
        s.etcdctl(&["--user=root:pw", "auth", "disable"]).await;
        s.etcdctl(&["--user=root:pw", "auth", "enable"]).await;
        s.barrier("barrier", "b").await;
        let before = s.tokens_issued("root").len();
        assert_eq!(
            run_puts(&conns.clients[0], 5).await,
            (5, 0),
            "{}",
            spec.name()
        );
        s.barrier("barrier", "b").await;
        assert_eq!(s.tokens_issued("root").len(), before + 1, "{}", spec.name());
    }
}
