//! The `/ui/` dashboard in Debian's headless Chromium, driven through chromedriver's
//! WebDriver HTTP API against a live 3-member chorus cluster. Each test checks what a
//! person sees: the members and which is leader, a key written before the page loaded
//! (with its value), a key written after it loaded (no reload: the page's watch), a lease
//! with its key, and under auth a sign-in form, then the keys the user may read and a
//! permission error for the rest; a learner's row and a NOSPACE alarm; the page over TLS
//! (https client URLs). `CHORUS_BLESS=1` saves the screenshot as `docs/dashboard.png`. On
//! an https client URL with client-certificate auth the page is served over TLS (curl).
//!
//! ```text
//!   test ──HTTP/1.1──▶ chromedriver :port ──▶ chromium --headless ──▶ member 0 /ui/
//!                                                                    └─▶ /v3/*, /metrics
//! ```
//!
//! Waits poll the DOM (every 100 ms, bounded by `SETTLE`), as WebDriver's own waits do.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chorus_client::PutOptions;
use common::http::{self, HttpRequest};
use common::{Cluster, ServerKind};
use serde_json::{json, Value};

/// Bound on the browser starting and on anything appearing on the page.
const SETTLE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// One HTTP/1.1 exchange with chromedriver: the body is read to its Content-Length.
fn exchange(port: u16, method: &str, path: &str, body: &Value) -> Value {
    let body = if method == "GET" || method == "DELETE" {
        String::new()
    } else {
        body.to_string()
    };
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write to chromedriver");
    s.write_all(body.as_bytes()).expect("write to chromedriver");
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = s.read(&mut buf).expect("read from chromedriver");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|len| got.len() >= end + 4 + len) {
                break;
            }
        }
    }
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response head from chromedriver");
    serde_json::from_slice(&got[end + 4..])
        .unwrap_or_else(|e| panic!("chromedriver answered no JSON ({e}): {got:?}"))
}

/// A chromedriver we started and its one browser session; dropped, it ends both.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        Browser::start_with(&[])
    }

    /// A browser with more Chromium flags.
    fn start_with(extra: &[&str]) -> Browser {
        let port = common::free_low_ports(1)[0];
        let driver = Command::new(common::chromedriver_binary().expect("require_chromium()"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("temp dir");
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let deadline = Instant::now() + SETTLE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(POLL);
        }
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1400",
        ]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", b._profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": common::chromium_binary().expect("require_chromium()"),
                "args": args,
            },
        }}});
        let v = exchange(port, "POST", "/session", &caps);
        b.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_owned();
        b
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let v = exchange(self.port, method, &path, &body);
        if v["value"]["error"].is_string() {
            panic!("WebDriver {method} {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    /// The element matching a CSS selector (WebDriver's find element).
    fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element id for {css}: {v}"))
            .to_owned()
    }

    /// The rendered text of the element matching `css` (WebDriver's element text).
    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        let v = self.cmd("GET", &format!("/element/{id}/text"), json!({}));
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The visible text of `css`, or "" while it is not there.
    fn peek(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/execute/sync",
            json!({
                "script": "const e = document.querySelector(arguments[0]); \
                           return e && e.getClientRects().length ? e.innerText : '';",
                "args": [css],
            }),
        );
        v.as_str().unwrap_or_default().to_owned()
    }

    /// An attribute of the element matching `css` (WebDriver's get element attribute).
    fn attr(&self, css: &str, name: &str) -> String {
        let id = self.find(css);
        let v = self.cmd("GET", &format!("/element/{id}/attribute/{name}"), json!({}));
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Polls until the text of `css` satisfies `ok` (bounded by `SETTLE`); returns it.
    fn wait_for(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SETTLE;
        loop {
            let t = self.peek(css);
            if ok(&t) {
                return self.text(css);
            }
            if Instant::now() > deadline {
                let page = self.peek("body");
                panic!("{what}: `{css}` shows {t:?} after {SETTLE:?}; the page:\n{page}");
            }
            std::thread::sleep(POLL);
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/clear"), json!({}));
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        );
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd("GET", "/screenshot", json!({}));
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("valid base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(|| exchange(self.port, "DELETE", &path, &json!({})));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A `/v3` gateway call on member 0 (a token under auth); the JSON answer.
async fn gateway(c: &Cluster, path: &str, body: Value, token: Option<&str>) -> Value {
    let mut req = HttpRequest::new("POST", &format!("/v3/{path}")).json(&body.to_string());
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    let resp = http::send(&c.client_addr(0), &req).await;
    assert_eq!(resp.status, 200, "{path}: {resp:?}");
    resp.json()
}

async fn put(c: &Cluster, key: &str, value: &str, lease: u64, token: Option<&str>) {
    let body = json!({"key": b64(key), "value": b64(value), "lease": lease.to_string()});
    gateway(c, "kv/put", body, token).await;
}

/// The key browser's row for `key` (its `data-key`).
fn row(key: &str) -> String {
    format!("#kv tr[data-key=\"{key}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_members_leader_keys_live_updates_and_leases() {
    if !common::require_chromium() {
        return;
    }
    let c = Cluster::start(ServerKind::Chorus, 3).await;
    let leader = c.leader().await;
    put(
        &c,
        "app/config",
        r#"{"replicas":3,"image":"web:1.2"}"#,
        0,
        None,
    )
    .await;
    put(&c, "app/name", "before-load", 0, None).await;
    let lease = gateway(&c, "lease/grant", json!({"TTL": "600"}), None).await;
    let lease_id: u64 = lease["ID"].as_str().unwrap().parse().unwrap();
    put(&c, "app/session", "held", lease_id, None).await;
    for i in 0..25 {
        put(&c, &format!("page/{i:02}"), "p", 0, None).await;
    }

    let b = tokio::task::block_in_place(Browser::start);
    let url = format!("{}/ui/", c.client_url(0));
    tokio::task::block_in_place(|| b.goto(&url));

    // The three members, and the leader's row says so.
    let members = tokio::task::block_in_place(|| {
        b.wait_for("#members tbody", "three members", |t| {
            (0..3).all(|i| t.contains(&format!("m{i}"))) && t.contains("leader")
        })
    });
    // Every member's own status (asked by the browser at its client URL): its version.
    tokio::task::block_in_place(|| {
        b.wait_for("#members tbody", "every member's status", |t| {
            t.matches("3.5.1").count() == 3
        })
    });
    let leader_row = tokio::task::block_in_place(|| b.text("#members tr.is-leader th"));
    assert_eq!(
        leader_row,
        format!("m{leader}"),
        "members table:\n{members}"
    );
    let summary = tokio::task::block_in_place(|| b.text("#cluster-summary"));
    assert!(summary.contains(&format!("leader m{leader}")), "{summary}");

    // The key written before the page loaded, with its value (JSON pretty-printed).
    let before = tokio::task::block_in_place(|| {
        b.wait_for(&row("app/name"), "app/name", |t| t.contains("before-load"))
    });
    assert!(before.contains("app/name"), "{before}");
    let config = tokio::task::block_in_place(|| b.text(&row("app/config")));
    assert!(config.contains("\"replicas\": 3"), "{config}");

    // A key written after the page loaded appears without a reload (the watch).
    put(&c, "app/live", "after-load", 0, None).await;
    tokio::task::block_in_place(|| {
        b.wait_for(&row("app/live"), "live update", |t| {
            t.contains("after-load")
        })
    });

    // The lease with its key, and the charts got at least one interval.
    tokio::task::block_in_place(|| {
        b.wait_for("#lease-table tbody", "lease", |t| t.contains("app/session"))
    });
    tokio::task::block_in_place(|| {
        b.wait_for("#chart-rate .last", "request-rate chart", |t| {
            t.contains("/s")
        })
    });

    // A prefix that matches nothing says so; a prefix over 1024 bytes (600 two-byte
    // characters fit the input's 1024-character limit) is refused; nothing changed.
    tokio::task::block_in_place(|| {
        b.type_into("#prefix", "nothing/here/");
        b.click("#prefix-form button[type=submit]");
        b.wait_for("#kv tbody", "empty prefix", |t| t.contains("No keys"));
        b.type_into("#prefix", &"é".repeat(600));
        b.click("#prefix-form button[type=submit]");
    });
    let err = tokio::task::block_in_place(|| {
        b.wait_for("#keys-error", "long prefix", |t| t.contains("at most 1024"))
    });
    assert!(err.contains("1200 bytes"), "{err}");
    // 25 keys, 10 a page: each page is its own range from the last key shown.
    tokio::task::block_in_place(|| {
        b.click("#page-size option:nth-child(1)");
        b.type_into("#prefix", "page/\u{E007}");
        let status = b.wait_for("#keys-status", "page 1", |t| t.contains("page 1, 10 shown"));
        assert!(status.starts_with("25 key(s) under"), "{status}");
        let rows = b.text("#kv tbody");
        assert!(
            rows.contains("page/00") && rows.contains("page/09"),
            "{rows}"
        );
        assert!(!rows.contains("page/10"), "page 1 holds 10 keys:\n{rows}");
        b.click("#next-page");
        b.wait_for("#keys-status", "page 2", |t| t.contains("page 2, 10 shown"));
        let rows = b.text("#kv tbody");
        assert!(
            rows.contains("page/10") && rows.contains("page/19"),
            "{rows}"
        );
        assert!(
            !rows.contains("page/09"),
            "page 2 starts after page 1:\n{rows}"
        );
        b.click("#next-page");
        b.wait_for("#keys-status", "page 3", |t| t.contains("page 3, 5 shown"));
        assert_eq!(b.attr("#next-page", "disabled"), "true", "the last page");
        b.click("#prev-page");
        b.wait_for("#keys-status", "back to page 2", |t| {
            t.contains("page 2, 10 shown")
        });
    });
    // Back to app/ with the keyboard only: the prefix, then Enter.
    tokio::task::block_in_place(|| {
        b.type_into("#prefix", "app/\u{E007}");
        b.wait_for(&row("app/live"), "back to app/", |t| {
            t.contains("after-load")
        })
    });
    let range = gateway(
        &c,
        "kv/range",
        json!({"key": b64("app/"), "range_end": b64("app0")}),
        None,
    )
    .await;
    assert_eq!(
        range["count"].as_str(),
        Some("4"),
        "the page changed nothing: {range}"
    );

    // Writes through gRPC while the charts take a few intervals: the request rate, WAL
    // fsync p99 and backend commit p99 get points (what the screenshot shows).
    let client = c.client().await;
    let load = tokio::spawn(async move {
        for i in 0u64.. {
            let key = format!("load/{}", i % 50);
            client.put(key, "x", PutOptions::default()).await.ok();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let rate = tokio::task::block_in_place(|| {
        b.wait_for("#chart-rate", "requests on the chart", |t| {
            t.contains("latest") && !t.contains("latest 0.0/s")
        });
        let deadline = Instant::now() + SETTLE;
        while b
            .attr("#chart-commit", "data-points")
            .parse::<u32>()
            .unwrap_or(0)
            < 4
        {
            assert!(
                Instant::now() < deadline,
                "the commit chart has under 4 points"
            );
            std::thread::sleep(POLL);
        }
        b.wait_for("#chart-commit .last", "a commit p99", |t| t.contains("ms"))
    });
    load.abort();
    assert!(rate.contains("latest"), "{rate}");

    let png = tokio::task::block_in_place(|| b.screenshot());
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    if std::env::var("CHORUS_BLESS").as_deref() == Ok("1") {
        std::fs::write(common::workspace_root().join("docs/dashboard.png"), &png).unwrap();
    }

    // At phone width the page does not scroll sideways (wide tables scroll in their own
    // box) and the keys are still there.
    let fits = tokio::task::block_in_place(|| {
        b.cmd("POST", "/window/rect", json!({"width": 390, "height": 844}));
        b.wait_for(&row("app/name"), "phone width", |t| {
            t.contains("before-load")
        });
        b.cmd(
            "POST",
            "/execute/sync",
            json!({"script": "return [document.documentElement.scrollWidth, window.innerWidth];", "args": []}),
        )
    });
    let (scroll, inner) = (fits[0].as_u64().unwrap(), fits[1].as_u64().unwrap());
    assert!(inner <= 500, "the window narrowed to phone width: {fits}");
    assert!(
        scroll <= inner,
        "the page scrolls sideways at phone width: {fits}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_auth_the_dashboard_asks_for_a_login_and_shows_what_the_user_may_read() {
    if !common::require_chromium() {
        return;
    }
    let c = Cluster::start(ServerKind::Chorus, 3).await;
    for (path, body) in [
        (
            "auth/user/add",
            json!({"name": "root", "password": "rootpw"}),
        ),
        ("auth/user/grant", json!({"user": "root", "role": "root"})),
        (
            "auth/user/add",
            json!({"name": "reader", "password": "readerpw"}),
        ),
        ("auth/role/add", json!({"name": "app-read"})),
        (
            "auth/role/grant",
            json!({"name": "app-read", "perm": {"permType": "READ", "key": b64("app/"), "range_end": b64("app0")}}),
        ),
        (
            "auth/user/grant",
            json!({"user": "reader", "role": "app-read"}),
        ),
        ("auth/enable", json!({})),
    ] {
        gateway(&c, path, body, None).await;
    }
    let root = gateway(
        &c,
        "auth/authenticate",
        json!({"name": "root", "password": "rootpw"}),
        None,
    )
    .await;
    let token = root["token"].as_str().unwrap().to_owned();
    put(&c, "app/visible", "for-readers", 0, Some(&token)).await;
    put(&c, "secret/hidden", "root-only", 0, Some(&token)).await;

    let b = tokio::task::block_in_place(Browser::start);
    let url = format!("{}/ui/", c.client_url(0));
    tokio::task::block_in_place(|| {
        b.goto(&url);
        b.wait_for("#login-h", "the sign-in form", |t| t.contains("Sign in"));
        // A wrong password is a message, and the form stays.
        b.type_into("#login-user", "reader");
        b.type_into("#login-password", "wrong");
        b.click("#login-submit");
        b.wait_for("#login-error", "a failed sign-in", |t| {
            t.contains("authentication failed")
        });
        b.type_into("#login-password", "readerpw");
        b.click("#login-submit");
        b.wait_for("#session", "signed in", |t| {
            t.contains("Signed in as reader")
        });
        // Everything: the reader may not read it all, and is told so.
        b.wait_for("#keys-error", "permission denied", |t| {
            t.contains("permission denied")
        });
        b.type_into("#prefix", "app/");
        b.click("#prefix-form button[type=submit]");
        b.wait_for(&row("app/visible"), "app/visible", |t| {
            t.contains("for-readers")
        });
    });
    // The reader's watch on app/ brings a key root writes now.
    put(&c, "app/later", "live-for-readers", 0, Some(&token)).await;
    tokio::task::block_in_place(|| {
        b.wait_for(&row("app/later"), "live update under auth", |t| {
            t.contains("live-for-readers")
        })
    });
    let page = tokio::task::block_in_place(|| b.peek("body"));
    assert!(
        !page.contains("root-only"),
        "a value the reader may not read:\n{page}"
    );
    // The members, and each member's status asked with the reader's token.
    tokio::task::block_in_place(|| {
        b.wait_for("#members tbody", "members under auth", |t| {
            (0..3).all(|i| t.contains(&format!("m{i}"))) && t.matches("3.5.1").count() == 3
        })
    });
    // A forged token in the tab's storage: the member refuses it, the page asks again.
    tokio::task::block_in_place(|| {
        b.cmd(
            "POST",
            "/execute/sync",
            json!({"script": "sessionStorage.setItem('chorus-token', 'forged.1'); location.reload();", "args": []}),
        );
        b.wait_for("#login-error", "a forged token", |t| {
            t.contains("invalid auth token")
        });
    });
}

/// Three members on https URLs with the test PKI (kept in the returned directory), with
/// `extra` flags after the harness's TLS flags.
async fn tls_cluster(
    extra: &[&str],
) -> (tempfile::TempDir, common::Pki, common::ClusterTls, Cluster) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (pki, tls) = common::Pki::for_cluster(&tmp.path().join("ssl"));
    let options = common::ClusterOptions {
        tls: Some(tls.clone()),
        extra_args: extra.iter().map(|a| a.to_string()).collect(),
        ..common::ClusterOptions::default()
    };
    let c = Cluster::start_with(ServerKind::Chorus, 3, options).await;
    (tmp, pki, tls, c)
}

/// On an https client URL the page and its script are served over TLS by the member
/// (curl with the cluster's CA and the client certificate `--client-cert-auth` asks for);
/// `over_tls_the_dashboard_shows_members_and_keys` runs the page itself in the browser.
#[tokio::test]
async fn on_a_tls_client_url_the_dashboard_is_served_over_tls() {
    if !common::require_curl() {
        return;
    }
    let (_tmp, _pki, tls, c) = tls_cluster(&[]).await;
    let base = c.client_url(0);
    assert!(base.starts_with("https://"), "{base}");
    for (path, expect) in [
        ("/ui/", "<title>chorus dashboard</title>"),
        ("/ui/app.js", "\"use strict\""),
    ] {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert", &tls.ca])
            .args(["--cert", &tls.client_cert, "--key", &tls.client_key])
            .arg(format!("{base}{path}"))
            .output()
            .await
            .expect("run curl");
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && body.contains(expect),
            "{path} over TLS: {}\n{body}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The members' three statuses and a key's row, once the page has them.
fn wait_for_members_and_key(b: &Browser, key: &str, value: &str) {
    b.wait_for("#members tbody", "three members and their statuses", |t| {
        (0..3).all(|i| t.contains(&format!("m{i}"))) && t.matches("3.5.1").count() == 3
    });
    b.wait_for(&row(key), key, |t| t.contains(value));
}

/// The page served over TLS works in the browser: the members (each one's status asked
/// at its https client URL) and a key. Chromium is started with
/// `--ignore-certificate-errors` (adding the test CA to its trust store needs NSS's
/// `certutil`, not installed), and the members do not ask for a client certificate here
/// (`--client-cert-auth=false` after the harness's TLS flags): a browser would need one
/// installed. The TLS handshake, the https origins and the cross-origin status calls are
/// what this covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_dashboard_shows_members_and_keys() {
    if !common::require_chromium() {
        return;
    }
    let (_tmp, _pki, _, c) = tls_cluster(&["--client-cert-auth=false"]).await;
    let client = c.client().await;
    client
        .put("tls/key", "over-tls", PutOptions::default())
        .await
        .unwrap();
    let url = format!("{}/ui/", c.client_url(0));
    assert!(url.starts_with("https://"), "{url}");
    let b = tokio::task::block_in_place(|| Browser::start_with(&["--ignore-certificate-errors"]));
    tokio::task::block_in_place(|| {
        b.goto(&url);
        let scheme = b.cmd(
            "POST",
            "/execute/sync",
            json!({"script": "return location.protocol;", "args": []}),
        );
        assert_eq!(scheme, json!("https:"));
        wait_for_members_and_key(&b, "tls/key", "over-tls");
    });
}

/// A learner's row says so (it was added with `member add --learner` and started), and a
/// NOSPACE alarm (a 13-page `--quota-backend-bytes` filled with 4 KiB values) shows in
/// every member's alarm column (each member's status lists the cluster's alarms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_learner_and_an_alarm() {
    if !common::require_chromium() {
        return;
    }
    let options = common::ClusterOptions {
        extra_args: vec![format!("--quota-backend-bytes={}", 13 * 4096)],
        ..common::ClusterOptions::default()
    };
    let mut c = Cluster::start_with(ServerKind::Chorus, 3, options).await;
    put(&c, "small", "fits", 0, None).await;
    let j = c.add_joiner();
    let peer = c.member(j).peer_url();
    let added = json!({"peerURLs": [peer], "isLearner": true});
    gateway(&c, "cluster/member/add", added, None).await;
    c.spawn(j);
    c.wait_ready(j).await;
    let client = c.client().await;
    let page = "b".repeat(4096);
    let mut refused = None;
    for i in 0..200 {
        if let Err(e) = client
            .put(format!("fill/{i}"), page.as_str(), PutOptions::default())
            .await
        {
            refused = Some(e.to_string());
            break;
        }
    }
    let refused = refused.expect("200 pages of 4 KiB fit in a 13-page quota");
    assert!(refused.contains("database space exceeded"), "{refused}");

    let b = tokio::task::block_in_place(Browser::start);
    let url = format!("{}/ui/", c.client_url(0));
    tokio::task::block_in_place(|| {
        b.goto(&url);
        let learner = b.wait_for(
            "#members tr[data-member=\"m3\"]",
            "the learner's row",
            |t| t.contains("learner"),
        );
        assert!(!learner.contains("follower"), "{learner}");
        for i in 0..4 {
            let css = format!("#members tr[data-member=\"m{i}\"]");
            b.wait_for(&css, "the alarm in the member's row", |t| {
                t.contains("NOSPACE")
            });
        }
        let members = b.text("#members tbody");
        assert_eq!(members.matches("learner").count(), 1, "{members}");
    });
}
