//! v2 auth end to end: a 3-member chorus cluster and a 3-member etcd 3.4.23
//! (`--enable-v2=true`) side by side, driven by the real etcdctl 3.4 (`ETCDCTL_API=2`:
//! `user`, `role`, `auth`, and key commands with `--username`) and by raw HTTP (statuses,
//! headers, bodies, what etcdctl does not show). Auth is set up and enabled through member
//! 0 and checked through members 1 and 2; then all three members of each cluster are
//! stopped and started again, and everything is checked on every member once more.
//!
//! ```text
//!   Pair::start() ── Cluster(Etcd, 3) --enable-v2=true   and   Cluster(Chorus, 3)
//!   pair.ok(M, [..]) / pair.fails(M, [..])   etcdctl --no-sync --endpoints=<member M> ..
//!   pair.http(M, status, HttpRequest)        the same request to member M of both
//!        outputs normalized (below), then exit code, stdout, stderr / status, headers and
//!        body compared; a difference is recorded and the test goes on
//!   pair.finish() ── fails with every difference
//! ```
//!
//! A read through another member than the write it must see follows a quorum read there
//! (`sync`): etcd serves v2 reads, auth's included, from the member's own store.
//!
//! What the comparison blanks or shifts, and why: the v2 index (both stores hold the
//! members and the cluster version from bootstrap, 7 writes for 3 members, and one more
//! write per member at every start; each side's base is subtracted and both are checked
//! to stay in lockstep), `X-Raft-Index`, `X-Raft-Term`, `Date`, `Content-Length`, member and cluster
//! IDs, client addresses.

use crate::common;

use std::time::{Duration, Instant};

use common::http::{self, HttpRequest, HttpResponse};
use common::{Cluster, ClusterOptions, Etcdctl, Normalizer, Output, ServerKind};
use regex::{Captures, Regex};

const MEMBERS: usize = 3;
/// The v2 index after a bootstrap, on etcd and chorus alike: each member's raft and
/// published attributes, then the cluster version.
const BOOTSTRAP_INDEX: u64 = 2 * MEMBERS as u64 + 1;
/// Between polls of another process's v2 index; every such wait has a deadline.
const POLL: Duration = Duration::from_millis(20);
/// Bound on a cluster settling to its expected v2 index.
const SETTLE: Duration = Duration::from_secs(20);
const ROOT: &str = "root:rootpw";

fn have_binaries() -> bool {
    common::require_etcd34() && common::require_etcdctl()
}

/// Go's `base64.StdEncoding` of `text` (for `Authorization: Basic`).
fn base64(text: &str) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                B64[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A request with HTTP basic credentials (`name:password`).
fn as_user(req: HttpRequest, user: &str) -> HttpRequest {
    req.header("Authorization", &format!("Basic {}", base64(user)))
}

fn get(target: &str) -> HttpRequest {
    HttpRequest::new("GET", target)
}

/// A quorum read of the root as root, allowed whether auth is on or off.
fn quorum_read() -> HttpRequest {
    as_user(get("/v2/keys/?quorum=true"), ROOT)
}

/// Where the v2 index of a side's own writes starts: from absolute index `.0` on, `.1`
/// internal writes (etcd's members) came before. A new span starts after each restart.
type Bases = Vec<(u64, u64)>;

/// The base for absolute index `n`.
fn base_of(bases: &Bases, n: u64) -> u64 {
    bases
        .iter()
        .rev()
        .find(|(from, _)| *from <= n)
        .map_or(0, |(_, base)| *base)
}

/// Subtracts the base from every v2 index in `text`: JSON index fields, etcdctl's `[N]`.
fn shift_indexes(text: &str, bases: &Bases) -> String {
    let rules = [
        r#""(?:createdIndex|modifiedIndex|index)":(\d+)"#,
        r"(?m)^Error:\s+\d+: .* \[(\d+)\]$",
    ];
    rules.iter().fold(text.to_owned(), |text, rule| {
        Regex::new(rule)
            .expect("regex")
            .replace_all(&text, |c: &Captures| {
                let whole = c.get(0).expect("match");
                let g = c.get(1).expect("group");
                let n: u64 = g.as_str().parse().expect("index");
                let shifted = if n == 0 {
                    0
                } else {
                    n.saturating_sub(base_of(bases, n))
                };
                format!(
                    "{}{shifted}{}",
                    &text[whole.start()..g.start()],
                    &text[g.end()..whole.end()]
                )
            })
            .into_owned()
    })
}

// ---------------------------------------------------------------------------------------
// One cluster of the pair.

struct Side {
    name: &'static str,
    cluster: Cluster,
    /// The v2 index before the first user write, now (after the last start).
    base: u64,
    /// The bases of earlier indexes (see [`Bases`]).
    bases: Bases,
    /// What one start of every member adds to `base` (etcd: each member publishes itself).
    per_start: u64,
    norm: Normalizer,
}

impl Side {
    async fn new(name: &'static str, cluster: Cluster, base: u64, per_start: u64) -> Side {
        let mut side = Side {
            name,
            cluster,
            base,
            bases: vec![(0, base)],
            per_start,
            norm: Normalizer::new(),
        };
        side.renormalize().await;
        side.settle().await;
        side
    }

    async fn renormalize(&mut self) {
        let mut norm = self.cluster.normalizer().await;
        for i in 0..self.cluster.len() {
            let addr = self.cluster.client_addr(i);
            norm = norm.text(&addr, &format!("<client-{i}>"));
        }
        self.norm = norm;
    }

    /// Waits (bounded) until every member's v2 index is `base` (etcd writes its members
    /// and the cluster version in the first moments after an election).
    async fn settle(&self) {
        self.settle_at(self.base).await
    }

    /// Waits (bounded) until every member's v2 index is `expected`.
    async fn settle_at(&self, expected: u64) {
        let deadline = Instant::now() + SETTLE;
        for i in 0..self.cluster.len() {
            loop {
                let index = self.send(i, &quorum_read()).await.etcd_index();
                if index == expected {
                    break;
                }
                assert!(
                    index < expected && Instant::now() < deadline,
                    "{}: member {i}'s v2 index is {index}, the test expects {expected}",
                    self.name,
                );
                tokio::time::sleep(POLL).await;
            }
        }
    }

    async fn send(&self, i: usize, req: &HttpRequest) -> HttpResponse {
        http::send(&self.cluster.client_addr(i), req).await
    }

    /// Member `i` has applied every write acknowledged so far (a quorum read through it).
    async fn sync(&self, i: usize) {
        let r = self.send(i, &quorum_read()).await;
        assert_eq!(r.status, 200, "{}: quorum read on m{i}: {r:#?}", self.name);
    }

    /// The v2 index through member `i`, relative to the base.
    async fn index(&self, i: usize) -> u64 {
        self.send(i, &quorum_read()).await.etcd_index() - self.base
    }

    fn normalize_text(&self, text: &str) -> String {
        self.norm.apply(&shift_indexes(text, &self.bases))
    }

    fn normalize_response(&self, r: &HttpResponse) -> HttpResponse {
        let mut headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| {
                let n = n.to_ascii_lowercase();
                !matches!(
                    n.as_str(),
                    "date" | "content-length" | "x-raft-index" | "x-raft-term"
                )
            })
            .map(|(n, v)| {
                let v = match n.to_ascii_lowercase().as_str() {
                    "x-etcd-index" => {
                        let n: u64 = v.parse().expect("X-Etcd-Index");
                        if n == 0 {
                            0
                        } else {
                            n.saturating_sub(self.base)
                        }
                        .to_string()
                    }
                    _ => self.normalize_text(v),
                };
                (n.clone(), v)
            })
            .collect();
        headers.sort();
        HttpResponse {
            status: r.status,
            headers,
            body: self.normalize_text(&r.body),
        }
    }

    fn etcdctl(&self, i: usize, args: &[&str]) -> Etcdctl {
        Etcdctl::v2(&[self.cluster.client_url(i)])
            .arg("--no-sync")
            .args(args)
    }

    /// Stops every member, then starts them all again; the base moves by what etcd
    /// writes at a start.
    async fn restart_all(&mut self) {
        let written = self.index(0).await;
        for i in 0..self.cluster.len() {
            self.cluster.stop(i).await;
        }
        self.cluster.start_all().await;
        self.base += self.per_start;
        self.bases.push((self.base + written + 1, self.base));
        self.renormalize().await;
        self.settle_at(self.base + written).await;
    }
}

// ---------------------------------------------------------------------------------------
// The pair.

/// `V2_AUTH_TRACE=1` prints every comparison.
fn trace(label: &str, etcd: &impl std::fmt::Debug, chorus: &impl std::fmt::Debug) {
    if std::env::var_os("V2_AUTH_TRACE").is_some() {
        eprintln!("TRACE {label}\n  etcd   {etcd:?}\n  chorus {chorus:?}");
    }
}

struct Pair {
    etcd: Side,
    chorus: Side,
    diffs: Vec<String>,
}

impl Pair {
    async fn start() -> Pair {
        let etcd_options = ClusterOptions {
            extra_args: vec!["--enable-v2=true".into()],
            ..ClusterOptions::default()
        };
        let (etcd, chorus) = tokio::join!(
            Cluster::start_with(ServerKind::Etcd34, MEMBERS, etcd_options),
            Cluster::start(ServerKind::Chorus, MEMBERS)
        );
        let (etcd, chorus) = tokio::join!(
            Side::new("etcd", etcd, BOOTSTRAP_INDEX, MEMBERS as u64),
            Side::new("chorus", chorus, BOOTSTRAP_INDEX, MEMBERS as u64)
        );
        Pair {
            etcd,
            chorus,
            diffs: Vec::new(),
        }
    }

    /// Runs etcdctl with `args` through member `i` of both sides (`stdin` fed to it),
    /// checks etcd `succeeds` as the test expects, and compares the normalized outputs.
    async fn ctl(&mut self, i: usize, args: &[&str], stdin: Option<&str>, succeeds: bool) {
        let with_stdin = |c: Etcdctl| match stdin {
            Some(text) => c.stdin(text),
            None => c,
        };
        let (e, c) = tokio::join!(
            with_stdin(self.etcd.etcdctl(i, args)).run(),
            with_stdin(self.chorus.etcdctl(i, args)).run()
        );
        let label = format!("etcdctl {} (m{i})", args.join(" "));
        assert_eq!(
            e.success(),
            succeeds,
            "the test's premise about etcd is wrong for `{label}`: {e:#?}"
        );
        let norm = |side: &Side, o: &Output| {
            (
                o.code,
                side.normalize_text(&o.stdout),
                side.normalize_text(&o.stderr),
            )
        };
        let (e, c) = (norm(&self.etcd, &e), norm(&self.chorus, &c));
        trace(&label, &e, &c);
        if e != c {
            self.diffs
                .push(format!("{label}\n  etcd   {e:?}\n  chorus {c:?}"));
        }
    }

    async fn ok(&mut self, i: usize, args: &[&str]) {
        self.ctl(i, args, None, true).await
    }

    async fn fails(&mut self, i: usize, args: &[&str]) {
        self.ctl(i, args, None, false).await
    }

    /// Sends `req` to member `i` of both sides; etcd must answer `status`.
    async fn http(&mut self, i: usize, status: u16, req: HttpRequest) {
        let (e, c) = tokio::join!(self.etcd.send(i, &req), self.chorus.send(i, &req));
        let label = format!("{} {} (m{i}, body {:?})", req.method, req.target, req.body);
        assert_eq!(
            e.status, status,
            "the test's premise about etcd is wrong for {label}: {e:#?}"
        );
        let (e, c) = (
            self.etcd.normalize_response(&e),
            self.chorus.normalize_response(&c),
        );
        trace(&label, &(e.status, &e.body), &(c.status, &c.body));
        if e != c {
            self.diffs.push(format!(
                "{label}\n  etcd   {} {:?}\n         {:?}\n  chorus {} {:?}\n         {:?}",
                e.status, e.headers, e.body, c.status, c.headers, c.body
            ));
        }
    }

    async fn sync(&self, i: usize) {
        tokio::join!(self.etcd.sync(i), self.chorus.sync(i));
    }

    async fn sync_all(&self) {
        for i in 0..MEMBERS {
            self.sync(i).await;
        }
    }

    /// Both sides took the same number of v2 indexes since their base.
    async fn lockstep(&mut self, i: usize, what: &str) {
        let (e, c) = tokio::join!(self.etcd.index(i), self.chorus.index(i));
        if e != c {
            self.diffs.push(format!(
                "{what}: v2 index out of lockstep through m{i}: etcd {e}, chorus {c}"
            ));
        }
    }

    async fn restart_all(&mut self) {
        tokio::join!(self.etcd.restart_all(), self.chorus.restart_all());
    }

    fn finish(self) {
        assert!(
            self.diffs.is_empty(),
            "{} difference(s) between etcd and chorus:\n\n{}",
            self.diffs.len(),
            self.diffs.join("\n\n")
        );
    }
}

// ---------------------------------------------------------------------------------------
// The scenario, in blocks.

/// Users and roles through member 0 while auth is off; reads through the others.
async fn set_up(p: &mut Pair) {
    p.fails(0, &["auth", "enable"]).await;
    p.ok(0, &["user", "list"]).await;
    p.ok(0, &["role", "list"]).await;
    p.ok(0, &["user", "add", ROOT]).await;
    p.ok(0, &["role", "add", "reader"]).await;
    p.fails(0, &["role", "add", "reader"]).await;
    p.ok(
        0,
        &["role", "grant", "reader", "--path", "/pub/*", "--read"],
    )
    .await;
    p.ok(
        0,
        &["role", "grant", "reader", "--path", "/pub/w", "--readwrite"],
    )
    .await;
    p.fails(
        0,
        &["role", "grant", "reader", "--path", "/pub/*", "--read"],
    )
    .await;
    p.fails(
        0,
        &["role", "revoke", "reader", "--path", "/none", "--write"],
    )
    .await;
    p.ok(0, &["user", "add", "alice:alicepw"]).await;
    p.ok(0, &["user", "grant", "alice", "--roles", "reader"])
        .await;
    p.fails(0, &["user", "grant", "alice", "--roles", "reader"])
        .await;
    p.fails(0, &["user", "revoke", "alice", "--roles", "writer"])
        .await;
    p.ok(0, &["user", "add", "bob:bobpw"]).await;
    p.ok(0, &["user", "remove", "bob"]).await;
    p.fails(0, &["user", "remove", "bob"]).await;
    p.fails(0, &["role", "remove", "nope"]).await;
    p.sync_all().await;
    p.ok(1, &["role", "get", "reader"]).await;
    p.ok(1, &["user", "get", "alice"]).await;
    p.ok(2, &["user", "list"]).await;
    p.ok(2, &["role", "list"]).await;
    p.http(1, 200, get("/v2/auth/users")).await;
    p.http(2, 200, get("/v2/auth/roles/reader")).await;
    p.http(2, 200, get("/v2/auth/enable")).await;
    p.lockstep(0, "set-up").await;
}

/// Requests etcd refuses for what they are: the same answers, nothing changed.
async fn bad_input(p: &mut Pair) {
    let put = |target: &str, body: &str| HttpRequest::new("PUT", target).json(body);
    p.http(1, 400, put("/v2/auth/users/x", "{")).await;
    p.http(1, 400, put("/v2/auth/users/x", "")).await;
    p.http(
        1,
        400,
        put("/v2/auth/users/x", r#"{"user":"x","roles":"r"}"#),
    )
    .await;
    p.http(
        1,
        400,
        put("/v2/auth/users/x", r#"{"user":"y","password":"p"}"#),
    )
    .await;
    p.http(
        1,
        400,
        put("/v2/auth/users/x", r#"{"user":"x","password":""}"#),
    )
    .await;
    p.http(
        2,
        400,
        put(
            "/v2/auth/roles/q",
            r#"{"role":"q","permissions":{"kv":{"read":["/a"]}},"grant":{"kv":{"read":["/b"]}}}"#,
        ),
    )
    .await;
    p.http(2, 403, put("/v2/auth/roles/root", r#"{"role":"root"}"#))
        .await;
    p.http(
        2,
        404,
        put(
            "/v2/auth/roles/q",
            r#"{"role":"q","revoke":{"kv":{"read":["/b"]}}}"#,
        ),
    )
    .await;
    p.http(2, 400, get("/v2/auth/users/a/b")).await;
    p.http(2, 405, HttpRequest::new("POST", "/v2/auth/users"))
        .await;
    p.http(0, 405, HttpRequest::new("POST", "/v2/auth/enable"))
        .await;
    p.http(0, 404, get("/v2/auth/enable/")).await;
    p.http(0, 500, get("/v2/auth/roles?x=%zz")).await;
    p.http(0, 301, get("/v2/auth/users/./alice")).await;
    p.lockstep(1, "bad input").await;
}

/// Enabled through member 0, enforced by members 1 and 2.
async fn enforce(p: &mut Pair) {
    let alice = ["--username", "alice:alicepw"];
    let root = ["--username", ROOT];
    p.ok(0, &["auth", "enable"]).await;
    p.sync_all().await;
    p.fails(1, &["user", "list"]).await;
    p.ok(1, &[&root[..], &["user", "list"]].concat()).await;
    p.ok(2, &[&root[..], &["role", "get", "guest"]].concat())
        .await;
    p.ok(1, &["set", "/open", "1"]).await;
    p.ok(
        0,
        &[
            &root[..],
            &["role", "revoke", "guest", "--path", "/*", "--readwrite"],
        ]
        .concat(),
    )
    .await;
    p.sync_all().await;
    p.fails(1, &["set", "/open", "2"]).await;
    p.fails(2, &["get", "/open"]).await;
    p.ok(1, &[&root[..], &["set", "/pub/a", "x"]].concat())
        .await;
    p.sync(2).await;
    p.ok(2, &[&alice[..], &["get", "/pub/a"]].concat()).await;
    p.fails(2, &[&alice[..], &["set", "/pub/a", "y"]].concat())
        .await;
    p.ok(1, &[&alice[..], &["set", "/pub/w", "y"]].concat())
        .await;
    p.fails(1, &["--username", "alice:wrong", "get", "/pub/a"])
        .await;
    p.fails(2, &["--username", "nobody:x", "ls", "/"]).await;
    p.fails(2, &[&alice[..], &["ls", "--recursive", "/pub"]].concat())
        .await;
    p.fails(0, &[&root[..], &["user", "remove", "root"]].concat())
        .await;
    p.fails(1, &[&alice[..], &["auth", "disable"]].concat())
        .await;
    p.http(2, 200, get("/v2/auth/enable")).await;
    p.http(2, 401, get("/v2/auth/users")).await;
    p.http(
        2,
        401,
        HttpRequest::new("PUT", "/v2/keys/x").form("value=1"),
    )
    .await;
    p.http(1, 200, as_user(get("/v2/keys/pub/a"), "alice:alicepw"))
        .await;
    p.http(1, 401, as_user(get("/v2/keys/pub/a"), "alice:nope"))
        .await;
    p.http(
        2,
        401,
        as_user(
            HttpRequest::new("POST", "/v2/members").json("{}"),
            "alice:alicepw",
        ),
    )
    .await;
    p.http(0, 200, as_user(get("/v2/auth/users"), ROOT)).await;
    p.lockstep(2, "enforcement").await;
}

/// A password changed through member 1 holds on member 2.
async fn password_change(p: &mut Pair) {
    let alice = ["--username", "alice:alicepw"];
    let root = ["--username", ROOT];
    p.ctl(
        1,
        &[&root[..], &["user", "passwd", "alice"]].concat(),
        Some("alice2\n"),
        true,
    )
    .await;
    p.sync(2).await;
    p.fails(2, &[&alice[..], &["get", "/pub/a"]].concat()).await;
    p.ok(2, &["--username", "alice:alice2", "get", "/pub/a"])
        .await;
    p.lockstep(2, "password change").await;
}

/// After every member restarted: still enabled, still enforced, everywhere.
async fn after_restart(p: &mut Pair) {
    for i in 0..MEMBERS {
        p.http(i, 200, get("/v2/auth/enable")).await;
        p.http(i, 200, as_user(get("/v2/keys/pub/a"), "alice:alice2"))
            .await;
        p.http(i, 401, as_user(get("/v2/keys/pub/a"), "alice:alicepw"))
            .await;
        p.http(
            i,
            401,
            HttpRequest::new("PUT", "/v2/keys/pub/w").form("value=z"),
        )
        .await;
        p.fails(i, &["user", "list"]).await;
    }
    p.ok(2, &["--username", ROOT, "user", "add", "carol:carolpw"])
        .await;
    p.sync_all().await;
    p.ok(1, &["--username", ROOT, "user", "list"]).await;
    p.ok(0, &["--username", ROOT, "auth", "disable"]).await;
    p.sync_all().await;
    p.ok(1, &["get", "/pub/a"]).await;
    p.fails(2, &["auth", "disable"]).await;
    p.ok(0, &["user", "remove", "alice"]).await;
    p.ok(0, &["role", "remove", "reader"]).await;
    p.sync_all().await;
    p.ok(1, &["user", "list"]).await;
    p.ok(2, &["role", "list"]).await;
    p.lockstep(0, "after the restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v2_auth_matches_etcd_and_survives_a_full_restart() {
    if !have_binaries() {
        return;
    }
    let mut p = Pair::start().await;
    set_up(&mut p).await;
    bad_input(&mut p).await;
    enforce(&mut p).await;
    password_change(&mut p).await;
    p.restart_all().await;
    after_restart(&mut p).await;
    p.finish();
}
