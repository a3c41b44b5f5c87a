//! Auth end to end, with the real etcdctl (3.4 and 3.5) against chorus:
//!
//! - the auth scenario of `crates/auth/tests/common` answers exactly as the golden tables
//!   recorded from real etcd 3.4.23 and 3.5.1 (less the deliberate differences listed
//!   there);
//! - three members: changes made through one are enforced by the others and survive a
//!   restart of all three;
//! - client-certificate identities (`--client-cert-auth`: the CN is the user);
//! - one regression test per etcd advisory on RBAC (see docs/security.md).

use crate::common;
#[path = "../crates/auth/tests/common/mod.rs"]
mod golden;

use std::time::Duration;

use chorus_api::etcdserverpb::{
    auth_client::AuthClient, kv_client::KvClient, request_op, AuthenticateRequest, PutRequest,
    RangeRequest, RequestOp, TxnRequest,
};
use common::{Cluster, ClusterOptions, Etcdctl, Output, ServerKind};

const ROOT: &str = "--user=root:rootpw";
const ALICE: &str = "--user=alice:alicepw";

/// etcdctl 3.5 (auth status, lease timetolive --keys, alarm list, ...).
fn etcdctl35() -> Option<std::path::PathBuf> {
    golden::require(golden::find_etcd("3.5"), "etcd 3.5").map(|b| b.etcdctl)
}

fn chorus() -> golden::Binaries {
    golden::Binaries {
        etcd: env!("CARGO_BIN_EXE_chorus").into(),
        etcdctl: "/nonexistent".into(),
    }
}

/// The golden scenario against chorus with etcdctl `series`.
fn scenario_matches_golden(series: &str, version: &str) {
    let Some(real) = golden::require(golden::find_etcd(series), &format!("etcd {series}")) else {
        return;
    };
    if !common::require_curl() {
        return;
    }
    let mut b = chorus();
    b.etcdctl = real.etcdctl;
    let member = golden::Etcd::start(&b, &[]).expect("start chorus");
    let want = golden::read_golden(version);
    let differences = golden::deliberate_differences(series);
    for (i, (step, want)) in golden::scenario().iter().zip(&want.steps).enumerate() {
        let got = member.run(step);
        if want.stdout.starts_with("NAME:") {
            continue; // etcdctl 3.4 has no `auth status`: it printed its help
        }
        let (exit, mut want_out, want_err) = differences.get(&i).cloned().unwrap_or((
            want.exit,
            want.stdout.clone(),
            want.stderr.clone(),
        ));
        let mut got_out = got.stdout.clone();
        if matches!(step, golden::Step::Gateway(..)) {
            // JSON: the field order differs between etcd versions.
            let json = |s: &str| {
                serde_json::from_str::<serde_json::Value>(s)
                    .unwrap()
                    .to_string()
            };
            got_out = json(&got_out);
            want_out = json(&want_out);
        }
        assert_eq!(
            (got.exit, got_out, got.stderr.clone()),
            (exit, want_out, want_err),
            "step {i}: {}",
            golden::describe(step)
        );
    }
}

#[test]
fn the_auth_scenario_answers_as_etcd_3_4() {
    scenario_matches_golden("3.4", "3.4.23");
}

#[test]
fn the_auth_scenario_answers_as_etcd_3_5() {
    scenario_matches_golden("3.5", "3.5.1");
}

/// etcdctl 3.5 against `endpoints` with `args`.
async fn ctl(bin: &std::path::Path, endpoints: &[String], args: &[&str]) -> Output {
    Etcdctl::v3(endpoints)
        .binary(bin)
        .args(args)
        .timeout(Duration::from_secs(30))
        .run()
        .await
}

/// etcd's client prints retry warnings as JSON lines; the error line is etcdctl's own.
fn error_line(o: &Output) -> String {
    o.stderr
        .lines()
        .find(|l| l.starts_with("Error:"))
        .unwrap_or_default()
        .to_string()
}

/// Root (with the root role), alice (read and write under `app/`), auth enabled.
async fn set_up_users(bin: &std::path::Path, ep: &[String]) {
    for args in [
        &["user", "add", "root", "--new-user-password=rootpw"][..],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "alice", "--new-user-password=alicepw"],
        &["role", "add", "app"],
        &[
            "role",
            "grant-permission",
            "app",
            "readwrite",
            "app/",
            "--prefix=true",
        ],
        &["user", "grant-role", "alice", "app"],
        &["auth", "enable"],
    ] {
        ctl(bin, ep, args).await.ok();
    }
}

/// Waits (bounded) until member `i` answers root's requests again after a restart.
async fn wait_serving(bin: &std::path::Path, endpoint: &str) {
    let ep = [endpoint.to_string()];
    for _ in 0..100 {
        if ctl(bin, &ep, &["get", "app/x", ROOT]).await.success() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{endpoint} does not serve root after a restart");
}

/// What alice may and may not do, asked of one member.
async fn check_enforced(bin: &std::path::Path, endpoint: &str, round: &str) {
    let ep = [endpoint.to_string()];
    let put = ctl(bin, &ep, &["put", &format!("app/{round}"), "v", ALICE]).await;
    assert_eq!(put.ok().trim(), "OK", "{endpoint}");
    let denied = ctl(bin, &ep, &["put", "secret", "v", ALICE]).await;
    assert_eq!(error_line(&denied), "Error: etcdserver: permission denied");
    let anonymous = ctl(bin, &ep, &["get", "app/x"]).await;
    assert_eq!(
        error_line(&anonymous),
        "Error: etcdserver: user name is empty"
    );
    let wrong = ctl(bin, &ep, &["get", "app/x", "--user=alice:nope"]).await;
    assert_eq!(
        error_line(&wrong),
        "Error: etcdserver: authentication failed, invalid user ID or password"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_enforce_auth_changes_made_through_one_across_restarts() {
    let Some(bin) = etcdctl35() else { return };
    let mut cluster = Cluster::start(ServerKind::Chorus, 3).await;
    let first = [cluster.client_url(0)];
    set_up_users(&bin, &first).await;
    for i in 0..3 {
        check_enforced(&bin, &cluster.client_url(i), &format!("m{i}")).await;
    }
    // A change made through member 1 holds on member 2 at once (linearizable).
    let second = [cluster.client_url(1)];
    ctl(
        &bin,
        &second,
        &[
            "role",
            "revoke-permission",
            "app",
            "app/",
            "--prefix=true",
            ROOT,
        ],
    )
    .await
    .ok();
    let third = [cluster.client_url(2)];
    let revoked = ctl(&bin, &third, &["put", "app/y", "v", ALICE]).await;
    assert_eq!(error_line(&revoked), "Error: etcdserver: permission denied");
    ctl(
        &bin,
        &second,
        &[
            "role",
            "grant-permission",
            "app",
            "readwrite",
            "app/",
            "--prefix=true",
            ROOT,
        ],
    )
    .await
    .ok();
    for i in 0..3 {
        cluster.stop(i).await;
    }
    for i in 0..3 {
        cluster.spawn(i);
    }
    for i in 0..3 {
        wait_serving(&bin, &cluster.client_url(i)).await;
        check_enforced(&bin, &cluster.client_url(i), &format!("after{i}")).await;
    }
    let status = ctl(&bin, &first, &["auth", "status", ROOT]).await;
    assert!(
        status.ok().starts_with("Authentication Status: true\n"),
        "{status:?}"
    );
}

/// A token for `user` from the Auth service.
async fn token(endpoint: &str, user: &str, password: &str) -> String {
    let mut auth = AuthClient::connect(endpoint.to_string()).await.unwrap();
    let req = AuthenticateRequest {
        name: user.into(),
        password: password.into(),
    };
    auth.authenticate(req).await.unwrap().into_inner().token
}

fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert("token", token.parse().unwrap());
    req
}

fn put_op(key: &str, prev_kv: bool, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            prev_kv,
            lease,
            ..Default::default()
        })),
    }
}

fn txn_op(success: Vec<RequestOp>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestTxn(TxnRequest {
            success,
            ..Default::default()
        })),
    }
}

/// Advisory regressions through gRPC with alice's token: nested txns, prev_kv on writes
/// (CVE-2026-44283), leases attached in a txn, bad and stale tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_holds_in_nested_txns_prev_kv_leases_and_tokens() {
    let Some(bin) = etcdctl35() else { return };
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let ep = [cluster.client_url(0)];
    set_up_users(&bin, &ep).await;
    // alice may write (only) under wo/, and root owns a lease holding a secret key.
    for args in [
        &["role", "add", "writer", ROOT][..],
        &[
            "role",
            "grant-permission",
            "writer",
            "write",
            "wo/",
            "--prefix=true",
            ROOT,
        ],
        &["user", "grant-role", "alice", "writer", ROOT],
        &["put", "secret", "s", ROOT],
        &["put", "wo/k", "old", ROOT],
    ] {
        ctl(&bin, &ep, args).await.ok();
    }
    let lease = ctl(&bin, &ep, &["lease", "grant", "600", ROOT]).await;
    let lease_hex = lease.ok().split_whitespace().nth(1).unwrap().to_string();
    let lease_id = i64::from_str_radix(&lease_hex, 16).unwrap();
    ctl(
        &bin,
        &ep,
        &["put", "secret2", "s", "--lease", &lease_hex, ROOT],
    )
    .await
    .ok();

    let endpoint = cluster.client_url(0);
    let t = token(&endpoint, "alice", "alicepw").await;
    let mut kv = KvClient::connect(endpoint.clone()).await.unwrap();
    fn denied<T: std::fmt::Debug>(r: Result<T, tonic::Status>) {
        let s = r.expect_err("allowed");
        assert_eq!(
            (s.code(), s.message()),
            (
                tonic::Code::PermissionDenied,
                "etcdserver: permission denied"
            )
        );
    }
    // A write nested in a txn is checked like a top-level one.
    let nested = TxnRequest {
        success: vec![txn_op(vec![put_op("secret", false, 0)])],
        ..Default::default()
    };
    denied(kv.txn(with_token(nested, &t)).await);
    // prev_kv needs read permission: alice may write wo/k but not read it.
    let prev = PutRequest {
        key: b"wo/k".to_vec(),
        value: b"v".to_vec(),
        prev_kv: true,
        ..Default::default()
    };
    denied(kv.put(with_token(prev, &t)).await);
    let in_txn = TxnRequest {
        success: vec![put_op("wo/k", true, 0)],
        ..Default::default()
    };
    denied(kv.txn(with_token(in_txn, &t)).await);
    // A lease holding keys alice cannot write cannot take her keys either.
    let leased = TxnRequest {
        success: vec![put_op("app/l", false, lease_id)],
        ..Default::default()
    };
    denied(kv.txn(with_token(leased, &t)).await);
    // Reads alice may make still work with the same token.
    let ok = RangeRequest {
        key: b"app/".to_vec(),
        range_end: b"app0".to_vec(),
        ..Default::default()
    };
    kv.range(with_token(ok, &t))
        .await
        .expect("alice reads app/");
    // Forged and truncated tokens.
    for bad in ["forged.123", &t[..t.len() - 1], "x"] {
        let r = kv
            .range(with_token(
                RangeRequest {
                    key: b"app/x".to_vec(),
                    ..Default::default()
                },
                bad,
            ))
            .await;
        let s = r.expect_err("bad token accepted");
        assert_eq!(s.message(), "etcdserver: invalid auth token", "{bad}");
    }
    // A password change ends alice's tokens.
    let _ = Etcdctl::v3(&ep)
        .binary(&bin)
        .args(["user", "passwd", "alice", "--interactive=false", ROOT])
        .stdin("newpw\n")
        .run()
        .await;
    let r = kv
        .range(with_token(
            RangeRequest {
                key: b"app/x".to_vec(),
                ..Default::default()
            },
            &t,
        ))
        .await;
    assert_eq!(
        r.expect_err("stale token").message(),
        "etcdserver: invalid auth token"
    );
}

/// Leases, members, alarms and watches (GHSA-q8m4-xhhv-38mg, CVE-2023-32082, from-key
/// watches), and the NOSPACE alarm not switching the auth check off (etcd PR 22386).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_members_alarms_and_watches_need_the_right_user() {
    let Some(bin) = etcdctl35() else { return };
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let ep = [cluster.client_url(0)];
    set_up_users(&bin, &ep).await;
    let lease = ctl(&bin, &ep, &["lease", "grant", "600", ROOT]).await;
    let lease_hex = lease.ok().split_whitespace().nth(1).unwrap().to_string();
    ctl(
        &bin,
        &ep,
        &["put", "secret", "s", "--lease", &lease_hex, ROOT],
    )
    .await
    .ok();
    let anonymous = [
        &["member", "list"][..],
        &["alarm", "list"],
        &["lease", "grant", "10"],
        &["lease", "list"],
        &["lease", "timetolive", &lease_hex],
        &["endpoint", "status"],
    ];
    for args in anonymous {
        let o = ctl(&bin, &ep, args).await;
        assert!(
            o.stderr.contains("etcdserver: user name is empty"),
            "{args:?} without a user: {o:?}"
        );
    }
    // alice may list members and alarms, not raise or disarm them.
    ctl(&bin, &ep, &["member", "list", ALICE]).await.ok();
    ctl(&bin, &ep, &["alarm", "list", ALICE]).await.ok();
    // The keys of a lease are not for everyone (CVE-2023-32082).
    let keys = ctl(
        &bin,
        &ep,
        &["lease", "timetolive", &lease_hex, "--keys", ALICE],
    )
    .await;
    assert_eq!(error_line(&keys), "Error: etcdserver: permission denied");
    ctl(&bin, &ep, &["lease", "timetolive", &lease_hex, ALICE])
        .await
        .ok();
    let revoke = ctl(&bin, &ep, &["lease", "revoke", &lease_hex, ALICE]).await;
    assert_eq!(
        error_line(&revoke),
        "Error: failed to revoke lease (etcdserver: permission denied)"
    );
    let list = ctl(&bin, &ep, &["lease", "list", ALICE]).await;
    assert_eq!(error_line(&list), "Error: etcdserver: permission denied");
    for args in [
        &["defrag", ALICE][..],
        &["snapshot", "save", "/dev/null", ALICE],
    ] {
        let o = ctl(&bin, &ep, args).await;
        assert!(o.stderr.contains("permission denied"), "{args:?}: {o:?}");
    }
    // A from-key watch reaches keys alice may not read; her prefix is fine.
    let t = token(&ep[0], "alice", "alicepw").await;
    let refused = first_watch_response(&ep[0], &t, b"app/", b"\0").await;
    assert!(refused.created && refused.canceled, "{refused:?}");
    assert_eq!(
        refused.cancel_reason,
        "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
    );
    let allowed = first_watch_response(&ep[0], &t, b"app/", b"app0").await;
    assert!(allowed.created && !allowed.canceled, "{allowed:?}");
}

/// The first response to one watch create request sent with `token`.
async fn first_watch_response(
    endpoint: &str,
    token: &str,
    key: &[u8],
    range_end: &[u8],
) -> chorus_api::etcdserverpb::WatchResponse {
    use chorus_api::etcdserverpb::{
        watch_client::WatchClient, watch_request, WatchCreateRequest, WatchRequest,
    };
    let mut client = WatchClient::connect(endpoint.to_string()).await.unwrap();
    let create = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: key.to_vec(),
                range_end: range_end.to_vec(),
                ..Default::default()
            },
        )),
    };
    // The request stream stays open (a closed one would end the watch).
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(create).await.unwrap();
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut responses = client
        .watch(with_token(stream, token))
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("a watch response within 10 s")
        .unwrap()
        .expect("a response");
    drop(tx);
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nospace_does_not_switch_auth_off() {
    let Some(bin) = etcdctl35() else { return };
    let options = ClusterOptions {
        extra_args: vec!["--quota-backend-bytes=1048576".into()],
        ..Default::default()
    };
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    let ep = [cluster.client_url(0)];
    set_up_users(&bin, &ep).await;
    ctl(&bin, &ep, &["put", "secret", "s", ROOT]).await.ok();
    let big = "x".repeat(100 * 1024);
    let mut full = false;
    for i in 0..64 {
        let o = ctl(&bin, &ep, &["put", &format!("app/{i}"), &big, ALICE]).await;
        if o.stderr.contains("database space exceeded") {
            full = true;
            break;
        }
    }
    assert!(full, "the quota was never reached");
    let disable = ctl(&bin, &ep, &["auth", "disable", ALICE]).await;
    assert!(disable.stderr.contains("permission denied"), "{disable:?}");
    let del = ctl(&bin, &ep, &["del", "secret", ALICE]).await;
    assert_eq!(error_line(&del), "Error: etcdserver: permission denied");
    let still = ctl(&bin, &ep, &["get", "secret", ROOT]).await;
    assert_eq!(still.ok(), "secret\ns\n");
}

/// With `--client-cert-auth`, a request without a token is the certificate's CN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_names_the_user() {
    let Some(bin) = etcdctl35() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut pki, tls) = common::Pki::for_cluster(dir.path());
    pki.issue("root", &[], false);
    pki.issue("alice", &[], false);
    let options = ClusterOptions {
        tls: Some(tls.clone()),
        ..Default::default()
    };
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    let ep = [cluster.client_url(0)];
    let as_cert = |name: &str| {
        let (cert, key) = pki.pair(name);
        vec![
            format!("--cacert={}", tls.ca),
            format!("--cert={cert}"),
            format!("--key={key}"),
        ]
    };
    let root = as_cert("root");
    let alice = as_cert("alice");
    let run = |tls: &Vec<String>, args: &[&str]| {
        let mut all: Vec<String> = tls.clone();
        all.extend(args.iter().map(|s| s.to_string()));
        Etcdctl::v3(&ep).binary(&bin).args(all).run()
    };
    for args in [
        &["user", "add", "root", "--new-user-password=rootpw"][..],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "alice", "--new-user-password=alicepw"],
        &["role", "add", "app"],
        &[
            "role",
            "grant-permission",
            "app",
            "readwrite",
            "app/",
            "--prefix=true",
        ],
        &["user", "grant-role", "alice", "app"],
        &["auth", "enable"],
    ] {
        run(&root, args).await.ok();
    }
    assert_eq!(run(&alice, &["put", "app/x", "1"]).await.ok().trim(), "OK");
    let denied = run(&alice, &["put", "secret", "1"]).await;
    assert_eq!(error_line(&denied), "Error: etcdserver: permission denied");
    assert_eq!(run(&root, &["put", "secret", "1"]).await.ok().trim(), "OK");
    // A token still wins over the certificate.
    let mut args = vec!["--user=root:rootpw", "get", "secret"];
    let via_token = run(&alice, &std::mem::take(&mut args)).await;
    assert_eq!(via_token.ok(), "secret\n1\n");
}

/// `--auth-token` values: chorus refuses at start-up what etcd refuses, with etcd's message
/// (the golden tables recorded etcd's), and starts where etcd starts. Cases where chorus is
/// stricter on purpose are in docs/security.md and not compared here.
#[test]
fn bad_auth_token_options_are_refused_as_etcd_refuses_them() {
    let golden = golden::read_golden("3.5.1");
    let keys = golden::workspace_root().join("crates/auth/tests/keys");
    let stricter = [
        "jwt,sign-method=RS256,priv-key=$KEYS/ec256.key",
        "jwt,sign-method=RS256,pub-key=$KEYS/rsa2.pub,priv-key=$KEYS/rsa.key",
        "jwt,sign-method=EdDSA,priv-key=$KEYS/ed25519.key",
    ];
    for (value, want) in golden.auth_token_errors.iter() {
        if stricter.contains(&value.as_str()) {
            continue;
        }
        let value = value.replace("$KEYS", &keys.display().to_string());
        let result = golden::Etcd::start(&chorus(), &[&format!("--auth-token={value}")]);
        match result {
            Ok(_member) => assert_eq!(want, "", "{value}: chorus started, etcd refused"),
            Err(line) => assert!(
                !want.is_empty() && line.contains(want.as_str()),
                "{value}: chorus said {line:?}, etcd {want:?}"
            ),
        }
    }
}

/// With JWT tokens every member verifies a token another member signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_from_one_member_is_accepted_by_every_member() {
    let Some(bin) = etcdctl35() else { return };
    let keys = golden::workspace_root().join("crates/auth/tests/keys");
    let k = |f: &str| keys.join(f).display().to_string();
    let options = ClusterOptions {
        extra_args: vec![format!(
            "--auth-token=jwt,pub-key={},priv-key={},sign-method=RS256,ttl=10m",
            k("rsa.pub"),
            k("rsa.key")
        )],
        ..Default::default()
    };
    let cluster = Cluster::start_with(ServerKind::Chorus, 3, options).await;
    set_up_users(&bin, &[cluster.client_url(0)]).await;
    let t = token(&cluster.client_url(0), "alice", "alicepw").await;
    assert_eq!(t.split('.').count(), 3, "not a JWT: {t}");
    for i in 0..3 {
        let mut kv = KvClient::connect(cluster.client_url(i)).await.unwrap();
        let put = PutRequest {
            key: format!("app/{i}").into_bytes(),
            value: b"v".to_vec(),
            ..Default::default()
        };
        kv.put(with_token(put, &t))
            .await
            .expect("a JWT from member 0");
        let other = PutRequest {
            key: b"secret".to_vec(),
            ..Default::default()
        };
        let s = kv.put(with_token(other, &t)).await.expect_err("allowed");
        assert_eq!(s.message(), "etcdserver: permission denied");
    }
}

/// A login right after `user add` or a password change finds the new password: auth
/// changes are committed before they are answered (password checks read the committed
/// backend). Before that, a login within the backend's batch interval (100 ms) failed
/// with `authentication failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_right_after_user_add_or_password_change_succeeds() {
    use chorus_api::etcdserverpb::{
        AuthEnableRequest, AuthRoleAddRequest, AuthUserAddRequest, AuthUserChangePasswordRequest,
        AuthUserGrantRoleRequest,
    };
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let ep = cluster.client_url(0);
    let mut auth = AuthClient::connect(ep.clone()).await.unwrap();
    let user = |name: &str, password: &str| AuthUserAddRequest {
        name: name.into(),
        password: password.into(),
        ..Default::default()
    };
    auth.user_add(user("root", "rootpw")).await.unwrap();
    auth.role_add(AuthRoleAddRequest {
        name: "root".into(),
    })
    .await
    .unwrap();
    let grant = AuthUserGrantRoleRequest {
        user: "root".into(),
        role: "root".into(),
    };
    auth.user_grant_role(grant).await.unwrap();
    auth.auth_enable(AuthEnableRequest {}).await.unwrap();
    let root = token(&ep, "root", "rootpw").await;
    for i in 0..10 {
        let name = format!("u{i}");
        let add = with_token(user(&name, "first"), &root);
        auth.user_add(add).await.unwrap();
        assert!(!token(&ep, &name, "first").await.is_empty(), "{name}");
        let change = AuthUserChangePasswordRequest {
            name: name.clone(),
            password: "second".into(),
            ..Default::default()
        };
        auth.user_change_password(with_token(change, &root))
            .await
            .unwrap();
        assert!(!token(&ep, &name, "second").await.is_empty(), "{name}");
    }
}
