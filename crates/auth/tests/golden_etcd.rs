//! Runs the auth scenario (tests/common) against real etcd 3.4 and 3.5 and compares every
//! `etcdctl` output, error and gateway reply with the golden tables in `tests/golden/`
//! (`UPDATE_GOLDEN=1` rewrites them). The server's tests compare chorus with the same
//! tables. Also checks JWT interop: etcd's tokens verify here and ours work on etcd.
//!
//! Needs etcd 3.4 (`/usr/bin`, or ETCD34_DIR), etcd 3.5 (`scripts/install-etcd35.sh`, or
//! ETCD35_DIR) and curl: missing ones fail the test when CI=true and skip it otherwise.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chorus_auth::token::JwtTokens;
use chorus_auth::ManualClock;
use common::*;

fn curl_present() -> Option<()> {
    Command::new("curl")
        .arg("--version")
        .output()
        .ok()
        .map(|_| ())
}

/// `--auth-token` values etcd refuses (or takes) at start-up; `$KEYS` is tests/keys.
const AUTH_TOKEN_CASES: &[&str] = &[
    "bogus",
    "simple,a",
    "simple,a=b,a=c",
    "jwt,sign-method=XX256",
    "jwt,sign-method=RS256",
    "jwt,sign-method=HS256",
    "jwt,sign-method=RS256,ttl=5",
    "jwt,sign-method=RS256,priv-key=$KEYS/nonexistent",
    "jwt,sign-method=RS256,priv-key=$KEYS/ec256.key",
    "jwt,sign-method=RS256,pub-key=$KEYS/rsa2.pub,priv-key=$KEYS/rsa.key",
    "jwt,sign-method=ES256,pub-key=$KEYS/ec256.pub",
    "jwt,sign-method=EdDSA,priv-key=$KEYS/ed25519.key",
];

fn keys_dir() -> String {
    format!("{}/tests/keys", env!("CARGO_MANIFEST_DIR"))
}

/// The error etcd exits with for `--auth-token=<value>`, or "" when it starts.
fn auth_token_error(b: &Binaries, value: &str) -> String {
    let value = value.replace("$KEYS", &keys_dir());
    match Etcd::start(b, &[&format!("--auth-token={value}")]) {
        Ok(_etcd) => String::new(),
        Err(line) => serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(line),
    }
}

fn run_golden(series: &str) {
    let Some(b) = require(find_etcd(series), &format!("etcd {series}")) else {
        return;
    };
    let Some(()) = require(curl_present(), "curl") else {
        return;
    };
    let version = String::from_utf8_lossy(
        &Command::new(&b.etcd)
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .lines()
    .next()
    .unwrap()
    .trim_start_matches("etcd Version: ")
    .to_owned();
    let etcd = Etcd::start(&b, &[]).expect("start etcd");
    let steps: Vec<Outcome> = scenario().iter().map(|s| etcd.run(s)).collect();
    drop(etcd);
    let auth_token_errors = AUTH_TOKEN_CASES
        .iter()
        .map(|v| (v.to_string(), auth_token_error(&b, v)))
        .collect();
    let got = Golden {
        etcd_version: version.clone(),
        steps,
        auth_token_errors,
    };
    let path = golden_path(&version);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let want = read_golden(&version);
    for (i, (g, w)) in got.steps.iter().zip(&want.steps).enumerate() {
        assert_eq!(g, w, "step {i} differs from {}", path.display());
    }
    assert_eq!(
        got,
        want,
        "{} (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

#[test]
fn etcd_3_4_matches_its_golden_table() {
    run_golden("3.4");
}

#[test]
fn etcd_3_5_matches_its_golden_table() {
    run_golden("3.5");
}

fn gateway(etcd: &Etcd, path: &str, body: &str, token: Option<&str>) -> serde_json::Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-X", "POST", "--max-time", "10", "-d", body]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: {t}")]);
    }
    let out = cmd
        .arg(format!("http://{}{path}", etcd.endpoint()))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{path}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn jwt_interop(series: &str, sign_method: &str, key: &str, public: &str) {
    let Some(b) = require(find_etcd(series), &format!("etcd {series}")) else {
        return;
    };
    let Some(()) = require(curl_present(), "curl") else {
        return;
    };
    let keys = keys_dir();
    let opt = format!(
        "--auth-token=jwt,pub-key={keys}/{public},priv-key={keys}/{key},sign-method={sign_method},ttl=10m"
    );
    let etcd = Etcd::start(&b, &[&opt]).expect("start etcd");
    for args in [
        &["user", "add", "root", "--new-user-password=rootpw"][..],
        &["role", "add", "root"],
        &["user", "grant-role", "root", "root"],
        &["auth", "enable"],
    ] {
        let out = etcd.run(&Step::Ctl(
            args.iter().map(|s| s.to_string()).collect(),
            None,
        ));
        assert_eq!(out.exit, 0, "{out:?}");
    }
    let resp = gateway(
        &etcd,
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"rootpw"}"#,
        None,
    );
    let etcd_token = resp["token"].as_str().expect("token");

    let read = |f: &str| std::fs::read(format!("{keys}/{f}")).unwrap();
    let clock = Arc::new(ManualClock::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    ));
    let ours = JwtTokens::from_keys(
        sign_method,
        Some(&read(public)),
        Some(&read(key)),
        Duration::from_secs(600),
        clock,
    )
    .unwrap();
    // etcd's token verifies here, with etcd's claims.
    let ai = ours.info(etcd_token).expect("etcd's token verifies");
    assert_eq!(ai.username, "root");
    assert!(ai.revision > 0);
    // Ours works on etcd.
    let token = ours.sign("root", ai.revision).unwrap();
    let range = r#"{"key":"Zm9v"}"#;
    let ok = gateway(&etcd, "/v3/kv/range", range, Some(&token));
    assert!(ok["header"]["revision"].is_string(), "{ok}");
    // A forged one does not (a signature character changed; not the last one, whose low
    // bits base64 decoders may ignore).
    let at = token.len() - 10;
    let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
    let denied = gateway(&etcd, "/v3/kv/range", range, Some(&forged));
    assert_eq!(
        denied["message"], "etcdserver: invalid auth token",
        "{denied}"
    );
}

#[test]
fn jwt_rs256_interop_with_etcd_3_5() {
    jwt_interop("3.5", "RS256", "rsa.key", "rsa.pub");
}

#[test]
fn jwt_es256_interop_with_etcd_3_5() {
    jwt_interop("3.5", "ES256", "ec256.key", "ec256.pub");
}

#[test]
fn jwt_es512_interop_with_etcd_3_5() {
    jwt_interop("3.5", "ES512", "ec521.key", "ec521.pub");
}

#[test]
fn jwt_ps256_interop_with_etcd_3_4() {
    jwt_interop("3.4", "PS256", "rsa.key", "rsa.pub");
}
