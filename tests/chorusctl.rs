//! `chorusctl` against the real `etcdctl` 3.4: the same command, the same server (or twin
//! fresh clusters for writes), and the outputs compared byte for byte.
//!
//! ```text
//!   same server:  etcdctl  --endpoints=S args ──┐ normalize: log timestamps, client UUIDs,
//!                 chorusctl --endpoints=S args ─┘ durations (health), remaining lease TTLs
//!   twin clusters: etcdctl -> A, chorusctl -> B (A and B fresh, same flags): revisions line
//!                 up; member, cluster and lease IDs of each side become placeholders
//! ```
//!
//! Exit code, stdout and stderr must be equal. Each test records every difference and
//! fails at the end with all of them. What is normalized is listed in `Norm`; nothing else.
//! v2 commands run against real etcd with `--enable-v2`, and over HTTPS against a chorus
//! TLS cluster. The binary is built once per run with `cargo build -p chorusctl`.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Background, Cluster, ClusterOptions, Etcdctl, Normalizer, Output, ServerKind};
use regex::Regex;

const WAIT: Duration = Duration::from_secs(15);

fn chorusctl() -> PathBuf {
    common::chorusctl_binary()
}

fn have_etcdctl() -> bool {
    common::require_etcdctl()
}

/// What a comparison may blank, beyond the log timestamps and client UUIDs always blanked.
#[derive(Clone, Default)]
struct Norm {
    /// `took` durations (`endpoint health`).
    durations: bool,
    /// A lease's remaining TTL (`remaining(Ns)`, `"ttl":N`, `"TTL" : N`).
    ttl: bool,
}

/// Blanks zap/capnslog timestamps and clientv3's random resolver name; drops Go's
/// `readLoopPeekFailLocked: ` prefix.
fn base_normalize(text: &str) -> String {
    let ts = Regex::new(r#""ts":("[^"]*"|[0-9.e+]+)"#).unwrap();
    let uuid = Regex::new(r"client-[0-9a-f-]{36}").unwrap();
    let capns = Regex::new(r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ").unwrap();
    let took = Regex::new(r#""took":[0-9.e-]+"#).unwrap();
    let t = ts.replace_all(text, "\"ts\":<ts>");
    let t = uuid.replace_all(&t, "client-<uuid>");
    let t = capns.replace_all(&t, "<time> ");
    // Go's HTTP client names a refused TLS connection's error after the step that saw it
    // first, a race between its reader and writer: the cause is the same.
    let t = t.replace("readLoopPeekFailLocked: ", "");
    // When the deadline passes, grpc-go reports the balancer's last error if a connection
    // attempt failed by then and the deadline otherwise: under load either comes first.
    let t = t.replace(
        "desc = latest balancer error: all SubConns are in TransientFailure",
        "desc = context deadline exceeded",
    );
    took.replace_all(&t, "\"took\":<took>").into_owned()
}

fn normalize(norm: &Norm, ids: &Normalizer, text: &str) -> String {
    let mut t = base_normalize(text);
    if norm.ttl {
        let re = Regex::new(r#"remaining\(\d+s\)|"ttl":\d+|"TTL" : \d+"#).unwrap();
        t = re.replace_all(&t, "<ttl>").into_owned();
    }
    let mut n = ids.clone();
    if norm.durations {
        n = n.durations();
    }
    n.apply(&t)
}

/// Collected differences of one test.
#[derive(Default)]
struct Diffs(Vec<String>);

impl Diffs {
    fn compare(
        &mut self,
        label: &str,
        e: &Output,
        c: &Output,
        norm: &Norm,
        en: &Normalizer,
        cn: &Normalizer,
    ) {
        let (eo, co) = (
            normalize(norm, en, &e.stdout),
            normalize(norm, cn, &c.stdout),
        );
        let (ee, ce) = (
            normalize(norm, en, &e.stderr),
            normalize(norm, cn, &c.stderr),
        );
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

fn endpoints(c: &Cluster) -> Vec<String> {
    (0..c.len())
        .map(|i| format!("127.0.0.1:{}", c.member(i).client_port))
        .collect()
}

/// One command for both tools.
#[derive(Clone, Default)]
struct Cmd {
    args: Vec<String>,
    stdin: Option<String>,
    env: Vec<(String, String)>,
    norm: Norm,
    v2: bool,
    /// Run without `--endpoints` (the environment gives them).
    no_endpoints: bool,
}

fn cmd<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Cmd {
    Cmd {
        args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
        ..Cmd::default()
    }
}

impl Cmd {
    fn stdin(mut self, s: &str) -> Self {
        self.stdin = Some(s.to_owned());
        self
    }
    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }
    fn took(mut self) -> Self {
        self.norm.durations = true;
        self
    }
    fn ttl(mut self) -> Self {
        self.norm.ttl = true;
        self
    }
    fn v2(mut self) -> Self {
        self.v2 = true;
        self
    }

    fn runner(&self, eps: &[String], chorus: bool) -> Etcdctl {
        let eps: Vec<String> = if self.no_endpoints {
            Vec::new()
        } else {
            eps.to_vec()
        };
        let mut r = if self.v2 {
            Etcdctl::v2(&eps)
        } else {
            Etcdctl::v3(&eps)
        };
        if self.no_endpoints {
            r = if self.v2 {
                Etcdctl::v2(&[] as &[String])
            } else {
                Etcdctl::v3(&[] as &[String])
            };
        }
        r = r.args(&self.args);
        if let Some(s) = &self.stdin {
            r = r.stdin(s.clone());
        }
        for (k, v) in &self.env {
            r = r.env(k, v);
        }
        if chorus {
            r = r.binary(chorusctl());
        }
        r
    }

    fn label(&self) -> String {
        format!(
            "{}{:?} env {:?} stdin {:?}",
            if self.v2 { "v2 " } else { "" },
            self.args,
            self.env,
            self.stdin
        )
    }
}

/// Both tools against the same endpoints.
async fn same(d: &mut Diffs, eps: &[String], ids: &Normalizer, c: Cmd) -> (Output, Output) {
    let e = c.runner(eps, false).run().await;
    let ch = c.runner(eps, true).run().await;
    d.compare(&c.label(), &e, &ch, &c.norm, ids, ids);
    (e, ch)
}

/// etcdctl against side A, chorusctl against side B.
async fn twin(d: &mut Diffs, a: &Side, b: &Side, c: Cmd) -> (Output, Output) {
    let e = c.runner(&a.eps, false).run().await;
    let ch = c.runner(&b.eps, true).run().await;
    d.compare(&c.label(), &e, &ch, &c.norm, &a.ids, &b.ids);
    (e, ch)
}

struct Side {
    cluster: Cluster,
    eps: Vec<String>,
    ids: Normalizer,
}

async fn side(kind: ServerKind, n: usize, options: ClusterOptions) -> Side {
    let cluster = Cluster::start_with(kind, n, options).await;
    let ids = cluster.normalizer().await.ports();
    Side {
        eps: endpoints(&cluster),
        cluster,
        ids,
    }
}

// ---------------------------------------------------------------------------------------

/// Read-only commands, errors, usage and the RPCs chorus answers `Unimplemented`: both
/// tools against one chorus member.
#[tokio::test]
async fn same_server_reads_errors_and_unimplemented() {
    if !have_etcdctl() {
        return;
    }
    let s = side(ServerKind::Chorus, 1, ClusterOptions::default()).await;
    let client = s.cluster.client().await;
    for (k, v) in [
        ("a", "1"),
        ("b", "2"),
        ("b/c", "3"),
        ("d", "x y"),
        ("e", "<&>\"\t"),
    ] {
        client.put(k, v, Default::default()).await.expect("put");
    }
    client
        .put("a", "11", Default::default())
        .await
        .expect("put");
    let lease = client.lease_grant(600, 0).await.expect("grant").id;
    client
        .put(
            "l",
            "v",
            chorus_client::PutOptions {
                lease,
                ..Default::default()
            },
        )
        .await
        .expect("put");
    let ids = s.ids.clone().id(lease as u64, "<lease>");
    let lease_hex = format!("{lease:x}");
    let own_peer_url = format!("--peer-urls={}", s.cluster.member(0).peer_url());
    let mut d = Diffs::default();
    let eps = &s.eps;
    // The leader checkpoints the lease's TTL through raft every 5 s
    // (--experimental-lease-checkpoint-interval), so the raft index and the db size may
    // move between the two calls of `endpoint status`.
    let moving = ids.clone().raft_indexes().db_sizes();
    for w in ["simple", "json", "fields", "protobuf", "table"] {
        for args in [
            vec!["get", "a"],
            vec!["get", "b", "--prefix"],
            vec!["get", "", "--prefix", "--keys-only"],
            vec!["get", "a", "--from-key", "--limit", "2"],
            vec!["get", "a", "z", "--sort-by=MODIFY", "--order=DESCEND"],
            vec!["get", "a", "--rev", "2"],
            vec!["get", "e"],
            vec!["get", "nothing"],
            vec!["member", "list"],
            vec!["endpoint", "status"],
            vec!["endpoint", "hashkv"],
            vec!["endpoint", "hashkv", "--cluster"],
            vec!["lease", "list"],
            vec!["defrag"],
            vec!["user", "list"],
            vec!["role", "list"],
        ] {
            let mut c = cmd(args.iter().chain(&["-w", w]));
            if args[0] == "endpoint" && w != "simple" {
                c = c.ttl();
            }
            let ids = match (args.starts_with(&["endpoint", "status"]), w) {
                (true, "table") => moving.clone().tables(),
                (true, _) => moving.clone(),
                (false, _) => ids.clone(),
            };
            same(&mut d, eps, &ids, c).await;
        }
        same(
            &mut d,
            eps,
            &ids,
            cmd(["lease", "timetolive", &lease_hex, "--keys", "-w", w]).ttl(),
        )
        .await;
        let ids_t = if w == "table" {
            ids.clone().tables()
        } else {
            ids.clone()
        };
        same(
            &mut d,
            eps,
            &ids_t,
            cmd(["endpoint", "health", "-w", w]).took(),
        )
        .await;
    }
    for args in [
        vec!["get", "a", "--hex"],
        vec!["get", "b", "--prefix", "--print-value-only"],
        vec!["get", "a", "--print-value-only", "-w", "json"],
        vec!["get", "a", "--consistency=s"],
        vec!["get", "a", "--consistency=x"],
        vec!["get", "a", "--order=UP"],
        vec!["get", "a", "--sort-by=SIZE"],
        vec!["get"],
        vec!["get", "a", "b", "--prefix"],
        vec!["get", "a", "--prefix", "--from-key"],
        vec!["get", "--foo"],
        vec!["get", "--limit"],
        vec!["get", "--limit=x", "a"],
        vec!["get", "a", "-w"],
        vec!["get", "a", "-w", "yaml"],
        vec!["get", "a", "--rev", "1000"],
        vec!["ge", "a"],
        vec!["bogus"],
        vec!["a"],
        vec!["--help"],
        vec!["get", "--help"],
        vec!["lease"],
        vec!["member", "list", "-h"],
        vec!["version"],
        vec!["compaction"],
        vec!["compaction", "x"],
        vec!["compaction", "1000"],
        vec!["lease", "revoke", "zz"],
        vec!["lease", "revoke", "123"],
        vec!["lease", "timetolive", "123"],
        vec!["lease", "keep-alive", "--once", "123"],
        vec!["lease", "grant"],
        vec!["lease", "grant", "x"],
        vec!["del"],
        vec!["put"],
        vec!["txn", "x"],
        vec!["watch"],
        vec!["watch", "a", "--"],
        vec!["watch", "a", "b", "--prefix"],
        vec!["lock"],
        vec!["elect"],
        vec!["elect", "e"],
        vec!["elect", "e", "v", "-l"],
        vec!["make-mirror"],
        vec!["move-leader"],
        vec!["move-leader", "zz"],
        vec!["member", "remove"],
        vec!["member", "add"],
        vec!["member", "add", "x"],
        vec!["member", "add", "x", "http://1.2.3.4:5"],
        vec!["alarm", "list", "x"],
        vec!["check", "perf", "--load=huge"],
        vec!["check", "datascale", "--load=huge"],
        vec!["snapshot", "save"],
        vec!["user", "add"],
        vec!["role", "grant-permission", "r", "read"],
        vec!["role", "grant-permission", "r", "bad", "k"],
        vec!["defrag", "--cluster"],
        // Membership changes refused by the server: its error, as etcdctl prints it.
        vec!["member", "add", "x", &own_peer_url],
        vec!["member", "add", "x", "--peer-urls=127.0.0.1:1"],
        vec!["member", "remove", "1234"],
        vec!["member", "update", "1234", "--peer-urls=http://127.0.0.1:1"],
        vec!["member", "promote", "1234"],
        vec!["move-leader", "1234"],
        // Auth calls the server refuses (or that change nothing), so both tools see the
        // same answer: its error, as etcdctl prints it.
        vec!["auth", "enable"],
        vec!["auth", "disable"],
        vec!["user", "get", "u"],
        vec!["user", "delete", "u"],
        vec!["role", "get", "r"],
        vec!["role", "grant-permission", "r", "read", "k", "--prefix"],
    ] {
        same(&mut d, eps, &ids, cmd(args)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("snap.db").display().to_string();
    same(&mut d, eps, &ids, cmd(["snapshot", "save", snap.as_str()])).await;
    // Interactive txn prompts and stdin errors do not write.
    for w in ["simple", "json", "protobuf", "table"] {
        same(&mut d, eps, &ids, cmd(["alarm", "list", "-w", w])).await;
    }
    // (`-w fields` makes etcdctl 3.4 crash on etcd's header-less AlarmResponse, an invalid
    // `txn` operator makes it panic, and a bad flag in a `txn` line prints cobra's usage:
    // chorusctl prints the fields, `panic: ...` and `Error: invalid txn request: ...`.)
    for stdin in ["bad\n", "value(\"a\" = \"b\"\n", "\nget\n", "\n\n"] {
        same(&mut d, eps, &ids, cmd(["txn", "-i"]).stdin(stdin)).await;
    }
    same(
        &mut d,
        eps,
        &ids,
        cmd(["txn"])
            .stdin("value(\"a\") = \"11\"\n\nget a\nget b --prefix --keys-only\n\nget d\n\n"),
    )
    .await;
    same(&mut d, eps, &ids, cmd(["put", "k"])).await;
    d.finish();
}

/// Writes: the same sequence on twin fresh chorus clusters, etcdctl on one, chorusctl on
/// the other.
#[tokio::test]
async fn twin_clusters_writes_txn_compaction_leases() {
    if !have_etcdctl() {
        return;
    }
    let a = side(ServerKind::Chorus, 1, ClusterOptions::default()).await;
    let b = side(ServerKind::Chorus, 1, ClusterOptions::default()).await;
    let mut a = a;
    let mut b = b;
    let mut d = Diffs::default();
    // (`-w protobuf` carries the member and cluster IDs in binary: compared on one server
    // in `same_server_reads_errors_and_unimplemented` instead.)
    for w in ["simple", "json", "fields", "table"] {
        twin(
            &mut d,
            &a,
            &b,
            cmd(["put", &format!("k-{w}"), "v", "-w", w]),
        )
        .await;
        twin(
            &mut d,
            &a,
            &b,
            cmd(["put", &format!("k-{w}"), "v2", "--prev-kv", "-w", w]),
        )
        .await;
        twin(
            &mut d,
            &a,
            &b,
            cmd(["del", &format!("k-{w}"), "--prev-kv", "-w", w]),
        )
        .await;
        twin(
            &mut d,
            &a,
            &b,
            cmd(["txn", "-w", w]).stdin(
                "mod(\"x\") = \"0\"\nversion(\"x\") < \"1\"\n\nput x 1\nget x\ndel y\n\nget x\n\n",
            ),
        )
        .await;
    }
    twin(&mut d, &a, &b, cmd(["put", "s"]).stdin("from stdin\n")).await;
    twin(&mut d, &a, &b, cmd(["put", "--", "dash", "-v"])).await;
    twin(&mut d, &a, &b, cmd(["put", "s", "--ignore-value"])).await;
    twin(&mut d, &a, &b, cmd(["put", "nokey", "--ignore-value"])).await;
    twin(&mut d, &a, &b, cmd(["put", "p/1", "1"])).await;
    twin(&mut d, &a, &b, cmd(["put", "p/2", "2"])).await;
    twin(&mut d, &a, &b, cmd(["del", "p", "--prefix", "-w", "json"])).await;
    twin(&mut d, &a, &b, cmd(["del", "", "--from-key", "--prev-kv"])).await;
    twin(
        &mut d,
        &a,
        &b,
        cmd(["txn", "-i"]).stdin("c(\"x\") > \"0\"\n\nput 'q' \"w\\n\"\n\nput r 1\n\n"),
    )
    .await;
    twin(
        &mut d,
        &a,
        &b,
        cmd(["txn"]).stdin("\nput d 1\nput d 2\n\n\n"),
    )
    .await;
    twin(&mut d, &a, &b, cmd(["compaction", "3"])).await;
    twin(&mut d, &a, &b, cmd(["compaction", "4", "--physical"])).await;
    twin(&mut d, &a, &b, cmd(["compaction", "3"])).await;
    twin(&mut d, &a, &b, cmd(["get", "x", "--rev", "2"])).await;
    // Leases: each side's IDs become placeholders.
    let e = cmd(["lease", "grant", "600"])
        .runner(&a.eps, false)
        .run()
        .await;
    let c = cmd(["lease", "grant", "600"])
        .runner(&b.eps, true)
        .run()
        .await;
    let granted = Regex::new(r"^lease [0-9a-f]{1,16} granted with TTL\(600s\)\n$").unwrap();
    d.check(
        "lease grant",
        granted.is_match(&e.stdout) && granted.is_match(&c.stdout),
        (&e, &c),
    );
    let hex = |o: &Output| o.stdout.split_whitespace().nth(1).unwrap_or("0").to_owned();
    let (la, lb) = (hex(&e), hex(&c));
    a.ids = a
        .ids
        .clone()
        .id(u64::from_str_radix(&la, 16).unwrap_or(0), "<lease>");
    b.ids = b
        .ids
        .clone()
        .id(u64::from_str_radix(&lb, 16).unwrap_or(0), "<lease>");
    for w in ["json", "fields", "protobuf"] {
        let e = cmd(["lease", "grant", "700", "-w", w])
            .runner(&a.eps, false)
            .run()
            .await;
        let c = cmd(["lease", "grant", "700", "-w", w])
            .runner(&b.eps, true)
            .run()
            .await;
        d.check(
            &format!("lease grant -w {w}"),
            e.code == 0 && c.code == 0,
            (&e, &c),
        );
    }
    let per_side = |args: &[&str], lease: &str| -> Vec<String> {
        args.iter().map(|x| x.replace("{lease}", lease)).collect()
    };
    for args in [
        vec!["put", "lk", "v", "--lease={lease}"],
        vec!["put", "lk", "v2", "--ignore-lease"],
        vec!["lease", "keep-alive", "--once", "{lease}"],
        vec!["lease", "keep-alive", "--once", "{lease}", "-w", "json"],
        vec!["lease", "keep-alive", "--once", "{lease}", "-w", "fields"],
        vec!["lease", "timetolive", "{lease}", "--keys"],
        vec!["get", "lk", "-w", "json"],
        vec!["lease", "revoke", "{lease}", "-w", "json"],
        vec!["lease", "revoke", "{lease}"],
        vec!["lease", "timetolive", "{lease}"],
        vec!["get", "lk"],
    ] {
        let label = format!("{args:?}");
        let e = cmd(per_side(&args, &la)).runner(&a.eps, false).run().await;
        let c = cmd(per_side(&args, &lb)).runner(&b.eps, true).run().await;
        let norm = Norm {
            ttl: true,
            ..Norm::default()
        };
        d.compare(&label, &e, &c, &norm, &a.ids, &b.ids);
    }
    // A keep-alive without --once ends when the lease is revoked.
    let grant = |s: &Side| {
        let eps = s.eps.clone();
        async move {
            let c = Etcdctl::v3(&eps).args(["lease", "grant", "3"]).run().await;
            c.stdout.split_whitespace().nth(1).unwrap_or("0").to_owned()
        }
    };
    let (ka, kb) = (grant(&a).await, grant(&b).await);
    let mut be = cmd(["lease", "keep-alive", &ka])
        .runner(&a.eps, false)
        .spawn()
        .await;
    let mut bc = cmd(["lease", "keep-alive", &kb])
        .runner(&b.eps, true)
        .spawn()
        .await;
    let _ = be.wait_for(WAIT, |o| o.contains("keepalived")).await;
    let _ = bc.wait_for(WAIT, |o| o.contains("keepalived")).await;
    Etcdctl::v3(&a.eps)
        .args(["lease", "revoke", &ka])
        .run()
        .await
        .ok();
    Etcdctl::v3(&b.eps)
        .args(["lease", "revoke", &kb])
        .run()
        .await
        .ok();
    let oe = be
        .wait_for(WAIT, |o| o.contains("expired or revoked"))
        .await;
    let oc = bc
        .wait_for(WAIT, |o| o.contains("expired or revoked"))
        .await;
    let strip = |r: Result<String, String>, l: &str| {
        r.unwrap_or_else(|e| e)
            .lines()
            .last()
            .unwrap_or("")
            .replace(l, "<lease>")
    };
    let (le, lc) = (strip(oe, &ka), strip(oc, &kb));
    d.check(
        "keep-alive ends on revoke",
        le == lc && le.ends_with("expired or revoked."),
        (le, lc),
    );
    be.stop().await;
    bc.stop().await;
    d.finish();
}

/// `watch` in its forms; both tools watch the same chorus member at the same time.
#[tokio::test]
async fn watch_plain_exec_interactive() {
    if !have_etcdctl() {
        return;
    }
    let s = side(ServerKind::Chorus, 1, ClusterOptions::default()).await;
    let client = s.cluster.client().await;
    client
        .put("w/0", "before", Default::default())
        .await
        .expect("put");
    let mut d = Diffs::default();
    // Every watcher starts at revision `from`, so none misses an event whenever it starts.
    let from = client
        .put("w/x", "start", Default::default())
        .await
        .expect("put")
        .header
        .expect("header")
        .revision
        + 1;
    let r = from.to_string();
    let forms: Vec<(Cmd, bool)> = vec![
        (cmd(["watch", "w/1", "--rev", &r]), false),
        (
            cmd([
                "watch",
                "w/",
                "--prefix",
                "--prev-kv",
                "-w",
                "json",
                "--rev",
                &r,
            ]),
            false,
        ),
        (
            cmd(["watch", "w/", "--prefix", "-w", "fields", "--rev", "1"]),
            false,
        ),
        (cmd(["watch", "w/0", "w/9", "--hex", "--rev", &r]), false),
        (
            cmd([
                "watch",
                "w/1",
                "--rev",
                &r,
                "--",
                "sh",
                "-c",
                "echo \"exec $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE\"",
            ]),
            false,
        ),
        (
            cmd(["watch", "--rev", &r]).env("ETCDCTL_WATCH_KEY", "w/1"),
            false,
        ),
        (
            cmd(["watch", "-i"]).stdin(&format!("watch w/1 --rev {r}\nbogus\nwatch\n")),
            true,
        ),
    ];
    client
        .put("w/1", "one", Default::default())
        .await
        .expect("put");
    client
        .put("w/2", "two", Default::default())
        .await
        .expect("put");
    client.delete("w/1", Default::default()).await.expect("del");
    client
        .put("w/1", "end", Default::default())
        .await
        .expect("put");
    let mut running: Vec<(Cmd, Background, Background)> = Vec::new();
    for (c, keep) in forms {
        let (mut re, mut rc) = (c.runner(&s.eps, false), c.runner(&s.eps, true));
        if keep {
            re = re.keep_stdin_open();
            rc = rc.keep_stdin_open();
        }
        let be = re.spawn().await;
        let bc = rc.spawn().await;
        running.push((c, be, bc));
    }
    for (c, mut be, mut bc) in running {
        let done =
            |o: &str| o.contains("end") || o.contains("ZW5k") || o.contains("\\x65\\x6e\\x64");
        let oe = be.wait_for(WAIT, done).await;
        let oc = bc.wait_for(WAIT, done).await;
        let e = be.stop().await;
        let ch = bc.stop().await;
        let label = format!("{} (background)", c.label());
        let norm = Norm::default();
        d.check(&label, oe.is_ok() == oc.is_ok(), (&oe, &oc));
        let (eo, co) = (
            normalize(&norm, &s.ids, &e.stdout),
            normalize(&norm, &s.ids, &ch.stdout),
        );
        d.check(&label, eo == co, (eo, co));
        let (ee, ce) = (
            normalize(&norm, &s.ids, &e.stderr),
            normalize(&norm, &s.ids, &ch.stderr),
        );
        d.check(&format!("{label} stderr"), ee == ce, (ee, ce));
    }
    // A watch from a compacted revision is cancelled by the server: both exit 5.
    client.compact(3, true).await.expect("compact");
    same(
        &mut d,
        &s.eps,
        &s.ids,
        cmd(["watch", "w/", "--prefix", "--rev", "2"]),
    )
    .await;
    same(
        &mut d,
        &s.eps,
        &s.ids,
        cmd(["watch", "w/", "--prefix", "--rev", "2", "-w", "json"]),
    )
    .await;
    same(
        &mut d,
        &s.eps,
        &s.ids,
        cmd(["watch", "-i"]).stdin("watch\n"),
    )
    .await;
    d.finish();
}

/// `lock` (exec form) and `elect` (campaign, observers) on one chorus member.
#[tokio::test]
async fn lock_and_elect() {
    if !have_etcdctl() {
        return;
    }
    let s = side(ServerKind::Chorus, 1, ClusterOptions::default()).await;
    let mut d = Diffs::default();
    // Lease IDs in hex, without padding: fewer digits when the top nibbles are zero.
    let lease_re = Regex::new(r"/[0-9a-f]{1,16}\b").unwrap();
    let rev_re = Regex::new(r"REV=\d+").unwrap();
    let norm = |t: &str| {
        rev_re
            .replace_all(&lease_re.replace_all(t, "/<lease>"), "REV=<rev>")
            .into_owned()
    };
    let script = "echo \"key=$ETCD_LOCK_KEY REV=$ETCD_LOCK_REV\"";
    let c = cmd(["lock", "mylock", "sh", "-c", script]);
    let e = c.runner(&s.eps, false).run().await;
    let ch = c.runner(&s.eps, true).run().await;
    d.check(
        "lock exec",
        e.code == ch.code && norm(&e.stdout) == norm(&ch.stdout),
        (&e, &ch),
    );
    let c = cmd(["lock", "mylock", "sh", "-c", "exit 3"]);
    let e = c.runner(&s.eps, false).run().await;
    let ch = c.runner(&s.eps, true).run().await;
    d.check(
        "lock exec failing",
        e.code == ch.code && e.stderr == ch.stderr,
        (&e, &ch),
    );
    // Lock held until killed: both print the key and an empty value.
    for chorus in [false, true] {
        let mut b = cmd(["lock", "held"]).runner(&s.eps, chorus).spawn().await;
        let out = b.wait_for(WAIT, |o| o.lines().count() >= 2).await;
        d.check(
            &format!("lock held (chorusctl: {chorus})"),
            out.as_ref().is_ok_and(|o| norm(o) == "held/<lease>\n\n"),
            &out,
        );
        b.stop().await;
    }
    // Election: chorusctl campaigns, both tools observe.
    let mut leader = cmd(["elect", "el", "v1"])
        .runner(&s.eps, true)
        .spawn()
        .await;
    let out = leader.wait_for(WAIT, |o| o.contains("v1")).await;
    d.check(
        "elect campaign",
        out.as_ref().is_ok_and(|o| norm(o) == "el/<lease>\nv1\n"),
        &out,
    );
    for w in ["simple", "json"] {
        let mut oe = cmd(["elect", "-l", "el", "-w", w])
            .runner(&s.eps, false)
            .spawn()
            .await;
        let mut oc = cmd(["elect", "-l", "el", "-w", w])
            .runner(&s.eps, true)
            .spawn()
            .await;
        let e = oe
            .wait_for(WAIT, |o| o.contains("v1") || o.contains("djE="))
            .await;
        let c = oc
            .wait_for(WAIT, |o| o.contains("v1") || o.contains("djE="))
            .await;
        let (e, c) = (e.map(|o| norm(&o)), c.map(|o| norm(&o)));
        d.check(&format!("elect -l -w {w}"), e.is_ok() && e == c, (&e, &c));
        oe.stop().await;
        oc.stop().await;
    }
    leader.stop().await;
    d.finish();
}

/// Several endpoints with the first one down, the environment variables, and a cluster
/// that cannot be reached at all.
#[tokio::test]
async fn endpoints_failover_and_environment() {
    if !have_etcdctl() {
        return;
    }
    let mut s = side(ServerKind::Chorus, 3, ClusterOptions::default()).await;
    let client = s.cluster.client().await;
    client.put("k", "v", Default::default()).await.expect("put");
    let mut d = Diffs::default();
    let eps = s.eps.clone();
    let all = eps.join(",");
    s.cluster.kill9(0);
    // Which live member answers is not the same for both tools: every member is <member>.
    let (cluster_id, member_ids) = s.cluster.ids_of_running().await;
    let ids = member_ids.iter().fold(
        Normalizer::new().cluster_id(cluster_id).ports(),
        |n, &id| n.id(id, "<member>"),
    );
    same(&mut d, &eps, &ids, cmd(["get", "k"])).await;
    same(&mut d, &eps, &ids, cmd(["get", "k", "-w", "json"]).ttl()).await;
    same(&mut d, &eps, &ids, cmd(["put", "k2", "v"])).await;
    let mut env = cmd(["get", "k"]).env("ETCDCTL_ENDPOINTS", &all);
    env.no_endpoints = true;
    same(&mut d, &eps, &ids, env.clone()).await;
    let mut env = cmd(["get", "k"])
        .env("ETCDCTL_ENDPOINTS", &eps[1])
        .env("ETCDCTL_WRITE_OUT", "fields")
        .env("ETCDCTL_HEX", "true");
    env.no_endpoints = true;
    same(&mut d, &eps, &ids, env.clone()).await;
    // Flag and variable both given: fatal. An unknown ETCDCTL_ variable: a warning.
    same(
        &mut d,
        &eps,
        &ids,
        cmd(["get", "k"]).env("ETCDCTL_ENDPOINTS", &all),
    )
    .await;
    same(
        &mut d,
        &eps,
        &ids,
        cmd(["get", "k"]).env("ETCDCTL_FOO", "1"),
    )
    .await;
    same(
        &mut d,
        &eps,
        &ids,
        cmd(["get", "k"]).env("ETCDCTL_DIAL_TIMEOUT", "zz"),
    )
    .await;
    same(
        &mut d,
        &eps,
        &ids,
        cmd(["get", "k"]).env("ETCDCTL_API", "4"),
    )
    .await;
    // Nothing reachable: the command timeout, then clientv3's error.
    let dead = [eps[0].clone()];
    same(
        &mut d,
        &dead,
        &ids,
        cmd(["get", "k", "--command-timeout=1s"]),
    )
    .await;
    same(
        &mut d,
        &dead,
        &ids,
        cmd(["endpoint", "health", "--command-timeout=1s"]).took(),
    )
    .await;
    same(
        &mut d,
        &dead,
        &ids,
        cmd(["endpoint", "status", "--command-timeout=1s"]),
    )
    .await;
    d.finish();
}

/// `make-mirror` into two fresh clusters (one per tool) and `check` on chorus.
#[tokio::test]
async fn make_mirror_and_check() {
    if !have_etcdctl() {
        return;
    }
    let src = side(ServerKind::Chorus, 1, ClusterOptions::default()).await;
    let de = side(ServerKind::Chorus, 1, ClusterOptions::default()).await;
    let dc = side(ServerKind::Chorus, 1, ClusterOptions::default()).await;
    let client = src.cluster.client().await;
    client
        .put("m/base", "1", Default::default())
        .await
        .expect("put");
    client
        .put("other", "1", Default::default())
        .await
        .expect("put");
    let mut d = Diffs::default();
    let me = cmd(["make-mirror", &de.eps[0], "--prefix=m/", "--dest-prefix=n/"])
        .runner(&src.eps, false)
        .spawn()
        .await;
    let mc = cmd(["make-mirror", &dc.eps[0], "--prefix=m/", "--dest-prefix=n/"])
        .runner(&src.eps, true)
        .spawn()
        .await;
    // Wait until both mirrors copied the base, then write updates.
    for s in [&de, &dc] {
        let mut w = Etcdctl::v3(&s.eps)
            .args(["watch", "n/", "--prefix", "--rev", "1"])
            .spawn()
            .await;
        w.wait_for(WAIT, |o| o.contains("n/base"))
            .await
            .expect("base mirrored");
        w.stop().await;
    }
    client
        .put("m/u", "2", Default::default())
        .await
        .expect("put");
    client
        .delete("m/base", Default::default())
        .await
        .expect("del");
    client
        .put("m/end", "3", Default::default())
        .await
        .expect("put");
    for s in [&de, &dc] {
        let mut w = Etcdctl::v3(&s.eps)
            .args(["watch", "n/end", "--rev", "1"])
            .spawn()
            .await;
        w.wait_for(WAIT, |o| o.contains("n/end"))
            .await
            .expect("updates mirrored");
        w.stop().await;
    }
    let ge = Etcdctl::v3(&de.eps)
        .args(["get", "", "--prefix", "-w", "json"])
        .run()
        .await;
    let gc = Etcdctl::v3(&dc.eps)
        .args(["get", "", "--prefix", "-w", "json"])
        .run()
        .await;
    let (ge, gc) = (de.ids.apply(&ge.stdout), dc.ids.apply(&gc.stdout));
    d.check(
        "mirrored contents",
        ge == gc && ge.contains("bi9lbmQ="),
        (ge, gc),
    );
    me.stop().await;
    mc.stop().await;
    // check: workload errors, a non-empty prefix, and datascale.
    same(
        &mut d,
        &src.eps,
        &src.ids,
        cmd(["check", "perf", "--load=x"]),
    )
    .await;
    same(
        &mut d,
        &src.eps,
        &src.ids,
        cmd(["check", "perf", "--prefix=m/"]),
    )
    .await;
    // datascale reads /metrics' process_resident_memory_bytes; the memory figure and
    // the progress bar differ between runs, the verdict line must not. The figure is the
    // change in resident memory, negative when the member freed more than the load took
    // (its raft log is trimmed as it applies).
    let verdict =
        Regex::new(r"(?m)^PASS: Approximate system memory used : -?\d+\.\d\d MB\.$").unwrap();
    for chorus in [false, true] {
        let out = cmd(["check", "datascale"])
            .runner(&src.eps, chorus)
            .run()
            .await;
        d.check(
            &format!("check datascale (chorusctl: {chorus})"),
            out.code == 0 && verdict.is_match(&out.stdout),
            &out,
        );
    }
    d.finish();
}

/// Member, maintenance and auth commands that chorus answers `Unimplemented`, on twin etcd
/// clusters where they work.
#[tokio::test]
async fn etcd_member_maintenance_auth() {
    if !have_etcdctl() || !common::require_etcd() {
        return;
    }
    let a = side(ServerKind::Etcd, 1, ClusterOptions::default()).await;
    let b = side(ServerKind::Etcd, 1, ClusterOptions::default()).await;
    let mut d = Diffs::default();
    // Random member IDs: hex as printed (fewer than 16 digits when the top nibbles are
    // zero; `Member %16x ... cluster %16x` pads those with spaces) or decimal.
    let norm_id = Regex::new(r"\b[0-9a-f]{12,16}\b|\b\d{17,20}\b").unwrap();
    let padded = Regex::new(r"(Member|cluster) +").unwrap();
    // Members are listed in ID order, and IDs are random: lines and the
    // ETCD_INITIAL_CLUSTER items are compared sorted.
    let sorted = |t: String| {
        let mut lines: Vec<String> = t
            .lines()
            .map(|l| match l.strip_prefix("ETCD_INITIAL_CLUSTER=\"") {
                Some(rest) => {
                    let mut items: Vec<&str> = rest.trim_end_matches('"').split(',').collect();
                    items.sort_unstable();
                    format!("ETCD_INITIAL_CLUSTER=\"{}\"", items.join(","))
                }
                None => l.to_owned(),
            })
            .collect();
        lines.sort();
        lines.join("\n")
    };
    let cmp_loose = |d: &mut Diffs, label: &str, e: &Output, c: &Output, a: &Side, b: &Side| {
        let ne = norm_id
            .replace_all(&base_normalize(&a.ids.apply(&e.stdout)), "<id>")
            .into_owned();
        let nc = norm_id
            .replace_all(&base_normalize(&b.ids.apply(&c.stdout)), "<id>")
            .into_owned();
        let (ne, nc) = (
            padded.replace_all(&ne, "$1 ").into_owned(),
            padded.replace_all(&nc, "$1 ").into_owned(),
        );
        let ee = norm_id
            .replace_all(&base_normalize(&a.ids.apply(&e.stderr)), "<id>")
            .into_owned();
        let ec = norm_id
            .replace_all(&base_normalize(&b.ids.apply(&c.stderr)), "<id>")
            .into_owned();
        let (ne, nc) = (sorted(ne), sorted(nc));
        d.check(
            label,
            e.code == c.code && ne == nc && ee == ec,
            (ne, nc, ee, ec),
        );
    };
    // A learner does not count for the quorum, so the one-member clusters stay available.
    let e = cmd([
        "member",
        "add",
        "newbie",
        "--learner",
        "--peer-urls=http://127.0.0.9:1",
    ])
    .runner(&a.eps, false)
    .run()
    .await;
    let c = cmd([
        "member",
        "add",
        "newbie",
        "--learner",
        "--peer-urls=http://127.0.0.9:2",
    ])
    .runner(&b.eps, true)
    .run()
    .await;
    let (e_out, c_out) = (
        e.stdout.replace("127.0.0.9:1", "P"),
        c.stdout.replace("127.0.0.9:2", "P"),
    );
    cmp_loose(
        &mut d,
        "member add --learner",
        &Output {
            stdout: e_out,
            ..e.clone()
        },
        &Output {
            stdout: c_out,
            ..c.clone()
        },
        &a,
        &b,
    );
    let learner = |s: &Side| {
        let eps = s.eps.clone();
        async move {
            let o = Etcdctl::v3(&eps).args(["member", "list"]).run().await;
            o.stdout
                .lines()
                .find(|l| l.contains("unstarted"))
                .and_then(|l| l.split(',').next())
                .unwrap_or("0")
                .to_owned()
        }
    };
    let (la, lb) = (learner(&a).await, learner(&b).await);
    for w in ["simple"] {
        let e = cmd(["member", "list", "-w", w])
            .runner(&a.eps, false)
            .run()
            .await;
        let c = cmd(["member", "list", "-w", w])
            .runner(&b.eps, true)
            .run()
            .await;
        let fix = |o: &Output| Output {
            stdout: o
                .stdout
                .replace("127.0.0.9:1", "P")
                .replace("127.0.0.9:2", "P"),
            ..o.clone()
        };
        cmp_loose(
            &mut d,
            &format!("member list with learner -w {w}"),
            &fix(&e),
            &fix(&c),
            &a,
            &b,
        );
    }
    for args in [
        vec!["member", "promote", "{id}"],
        vec!["member", "update", "{id}", "--peer-urls=http://127.0.0.1:3"],
        vec!["member", "remove", "{id}"],
        vec!["member", "remove", "{id}"],
    ] {
        let e = cmd(args.iter().map(|x| x.replace("{id}", &la)))
            .runner(&a.eps, false)
            .run()
            .await;
        let c = cmd(args.iter().map(|x| x.replace("{id}", &lb)))
            .runner(&b.eps, true)
            .run()
            .await;
        cmp_loose(&mut d, &format!("{args:?}"), &e, &c, &a, &b);
    }
    for args in [
        vec!["defrag"],
        vec!["defrag", "--cluster"],
        vec!["alarm", "disarm"],
        vec!["move-leader", "1234"],
        vec!["role", "add", "root"],
        vec!["role", "add", "r"],
        vec!["role", "add", "r"],
        vec![
            "role",
            "grant-permission",
            "r",
            "readwrite",
            "k",
            "--prefix",
        ],
        vec!["role", "grant-permission", "r", "read", "a", "c"],
        vec!["role", "grant-permission", "r", "write", "z", "--from-key"],
        vec!["role", "get", "r"],
        vec!["role", "get", "r", "-w", "json"],
        vec!["role", "get", "r", "-w", "fields"],
        vec!["role", "list", "-w", "fields"],
        vec!["role", "revoke-permission", "r", "a", "c"],
        vec!["user", "add", "root:pw"],
        vec!["user", "add", "u", "--new-user-password=pw"],
        vec!["user", "grant-role", "root", "root"],
        vec!["user", "grant-role", "u", "r"],
        vec!["user", "get", "u"],
        vec!["user", "get", "u", "--detail"],
        vec!["user", "list", "-w", "json"],
        vec!["user", "revoke-role", "u", "r"],
        vec!["user", "delete", "u"],
        vec!["role", "delete", "r"],
        vec!["role", "delete", "r"],
    ] {
        twin(&mut d, &a, &b, cmd(args)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (se, sc) = (dir.path().join("e.db"), dir.path().join("c.db"));
    let e = cmd(["snapshot", "save", &se.display().to_string()])
        .runner(&a.eps, false)
        .run()
        .await;
    let c = cmd(["snapshot", "save", &sc.display().to_string()])
        .runner(&b.eps, true)
        .run()
        .await;
    d.check(
        "snapshot save",
        e.code == 0 && c.code == 0 && c.stdout.starts_with("Snapshot saved at"),
        (&e, &c),
    );
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    d.check(
        "snapshot sizes",
        size(&se) > 0 && size(&sc) > 0,
        (size(&se), size(&sc)),
    );
    d.finish();
}

/// The v2 commands on twin etcd clusters started with `--enable-v2`.
#[tokio::test]
async fn v2_commands_against_etcd() {
    if !have_etcdctl() || !common::require_etcd() {
        return;
    }
    let opts = ClusterOptions {
        extra_args: vec!["--enable-v2=true".to_owned()],
        ..ClusterOptions::default()
    };
    let a = side(ServerKind::Etcd, 1, opts.clone()).await;
    let b = side(ServerKind::Etcd, 1, opts).await;
    let a_eps: Vec<String> = a.eps.iter().map(|e| format!("http://{e}")).collect();
    let b_eps: Vec<String> = b.eps.iter().map(|e| format!("http://{e}")).collect();
    let a = Side { eps: a_eps, ..a };
    let b = Side { eps: b_eps, ..b };
    let mut d = Diffs::default();
    let exp = Regex::new(r#""expiration":"[^"]*""#).unwrap();
    for args in [
        vec!["set", "/a", "1"],
        vec!["-o", "json", "set", "/a", "2"],
        vec!["-o", "extended", "get", "/a"],
        vec!["-o", "json", "get", "/a"],
        vec!["get", "/nope"],
        vec!["get"],
        vec!["mkdir", "/d"],
        vec!["-o", "json", "mkdir", "/d2"],
        vec!["mk", "/d/x", "1"],
        vec!["mk", "/d/x", "1"],
        vec!["mk", "--in-order", "/q", "job"],
        vec!["update", "/d/x", "2"],
        vec!["update", "/nope", "2"],
        vec!["set", "/a", "3", "--swap-with-value", "2"],
        vec!["set", "/a", "4", "--swap-with-value", "2"],
        vec!["get", "/d"],
        vec!["ls", "--sort"],
        vec!["ls", "/", "-r", "-p", "--sort"],
        vec!["-o", "json", "ls", "/d"],
        vec!["rm", "/a"],
        vec!["rm", "/d"],
        vec!["rm", "/d", "-r"],
        vec!["-o", "extended", "rm", "/d2", "--dir"],
        vec!["set", "/t", "x", "--ttl", "100"],
        vec!["--version"],
        vec!["member", "list"],
        vec!["cluster-health"],
        vec!["--no-sync", "get", "/t"],
        vec!["get", "/t", "-x"],
    ] {
        let c = cmd(args).v2();
        let e = c.runner(&a.eps, false).run().await;
        let ch = c.runner(&b.eps, true).run().await;
        let fix = |o: &Output| Output {
            stdout: exp
                .replace_all(&o.stdout, "\"expiration\":<t>")
                .into_owned(),
            ..o.clone()
        };
        d.compare(
            &c.label(),
            &fix(&e),
            &fix(&ch),
            &Norm::default(),
            &a.ids,
            &b.ids,
        );
    }
    let c = cmd(["get", "/a"]).v2();
    let e = Etcdctl::v2(&["127.0.0.1:1".to_owned()])
        .args(["get", "/a"])
        .run()
        .await;
    let ch = Etcdctl::v2(&["127.0.0.1:1".to_owned()])
        .args(["get", "/a"])
        .binary(chorusctl())
        .run()
        .await;
    d.compare(
        "v2 endpoint without scheme",
        &e,
        &ch,
        &Norm::default(),
        &a.ids,
        &b.ids,
    );
    let e = Etcdctl::v2(&["http://127.0.0.1:1".to_owned()])
        .args(["get", "/a"])
        .run()
        .await;
    let ch = Etcdctl::v2(&["http://127.0.0.1:1".to_owned()])
        .args(["get", "/a"])
        .binary(chorusctl())
        .run()
        .await;
    d.compare("v2 unreachable", &e, &ch, &Norm::default(), &a.ids, &b.ids);
    let _ = c;
    // watch / exec-watch from the v2 history (after index 1), so that none starts late.
    for s in [&a, &b] {
        Etcdctl::v2(&s.eps)
            .args(["set", "/w", "changed"])
            .run()
            .await
            .ok();
    }
    let mut we = cmd(["watch", "/w", "--after-index", "1"])
        .v2()
        .runner(&a.eps, false)
        .spawn()
        .await;
    let mut wc = cmd(["watch", "/w", "--after-index", "1"])
        .v2()
        .runner(&b.eps, true)
        .spawn()
        .await;
    let script = "echo exec $ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE";
    let xe = cmd([
        "exec-watch",
        "--after-index",
        "1",
        "/w",
        "--",
        "sh",
        "-c",
        script,
    ])
    .v2()
    .runner(&a.eps, false)
    .spawn()
    .await;
    let mut xc = cmd([
        "exec-watch",
        "--after-index",
        "1",
        "/w",
        "--",
        "sh",
        "-c",
        script,
    ])
    .v2()
    .runner(&b.eps, true)
    .spawn()
    .await;
    let oe = we.wait_for(WAIT, |o| o.contains("changed")).await;
    let oc = wc.wait_for(WAIT, |o| o.contains("changed")).await;
    d.check("v2 watch", oe.is_ok() && oe == oc, (&oe, &oc));
    // (etcdctl 3.4's exec-watch prints nothing here within the bound; chorusctl's output is
    // checked on its own.)
    let oc = xc.wait_for(WAIT, |o| o.contains("exec")).await;
    d.check(
        "v2 exec-watch",
        oc.as_deref() == Ok("exec set /w changed\n"),
        &oc,
    );
    for b in [we, wc, xe, xc] {
        b.stop().await;
    }
    d.finish();
}

/// DNS discovery that finds nothing fails with etcdctl's message (a resolver that is not
/// there: `CHORUS_DNS_RESOLVER` on a closed port); tests/discovery.rs covers the rest.
#[tokio::test]
async fn discovery_without_records_fails_as_etcdctl() {
    let port = common::free_ports(1)[0];
    let args = ["--discovery-srv=example.com", "get", "a"];
    let out = Etcdctl::v3(&["127.0.0.1:1"])
        .args(args)
        .env("CHORUS_DNS_RESOLVER", format!("127.0.0.1:{port}"))
        .binary(chorusctl())
        .run()
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.starts_with(
            "Error: dns lookup errors: lookup _etcd-client-ssl._tcp.example.com on 127.0.0.1:"
        ),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// A three-member chorus cluster with https client and peer URLs and client-certificate
/// auth: both tools, the same commands (v3 and v2, flags and variables), the same output;
/// and the same errors for a missing, foreign or expired client certificate, an untrusted
/// server and bad TLS files.
#[tokio::test]
async fn tls_cluster_v3_v2_and_refusals() {
    if !have_etcdctl() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut pki, tls) = common::Pki::for_cluster(&tmp.path().join("ssl"));
    pki.issue("old", &[], true);
    let mut other = common::Pki::named(&tmp.path().join("other"), "another CA");
    other.issue("mallory", &[], false);
    let options = ClusterOptions {
        tls: Some(tls.clone()),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(ServerKind::Chorus, 3, options).await;
    let ids = cluster.normalizer().await.ports();
    let eps = cluster.endpoints();
    assert!(eps.iter().all(|e| e.starts_with("https://")), "{eps:?}");
    let bare = endpoints(&cluster);
    let one = &eps[..1];
    let v3 = |args: &[&str]| {
        cmd(tls
            .v3_flags()
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied()))
    };
    let v2 = |args: &[&str]| {
        cmd(tls
            .v2_flags()
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied()))
        .v2()
    };
    let t = "--command-timeout=2s";
    let mut d = Diffs::default();

    // Working commands.
    same(&mut d, &eps, &ids, v3(&["put", "k", "v"])).await;
    for args in [
        vec!["get", "k"],
        vec!["member", "list"],
        vec!["member", "list", "-w", "table"],
    ] {
        same(&mut d, &eps, &ids, v3(&args)).await;
    }
    // (The header names the member that answered: one endpoint, so the same for both.)
    same(&mut d, one, &ids, v3(&["get", "k", "-w", "json"])).await;
    same(&mut d, &eps, &ids, v3(&["endpoint", "health"]).took()).await;
    // Discovery: the members' https client URLs, dialled with the same flags.
    same(
        &mut d,
        one,
        &ids,
        v3(&["endpoint", "health", "--cluster"]).took(),
    )
    .await;
    // Scheme-less endpoints use TLS when TLS flags are given.
    same(&mut d, &bare, &ids, v3(&["get", "k"])).await;
    // The variables instead of the flags.
    same(
        &mut d,
        &eps,
        &ids,
        cmd(["get", "k"])
            .env("ETCDCTL_CACERT", &tls.ca)
            .env("ETCDCTL_CERT", &tls.client_cert)
            .env("ETCDCTL_KEY", &tls.client_key),
    )
    .await;
    // No CA: the server is not checked; the client certificate still goes.
    same(
        &mut d,
        &eps,
        &ids,
        cmd([
            "--insecure-skip-tls-verify",
            "--cert",
            &tls.client_cert,
            "--key",
            &tls.client_key,
            "get",
            "k",
        ]),
    )
    .await;
    same(
        &mut d,
        &bare,
        &ids,
        cmd(["get", "k"])
            .env("ETCDCTL_INSECURE_TRANSPORT", "false")
            .env("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "true")
            .env("ETCDCTL_CERT", &tls.client_cert)
            .env("ETCDCTL_KEY", &tls.client_key),
    )
    .await;
    // v2 over HTTPS: the seed's health check, and keys.
    same(&mut d, &eps, &ids, v2(&["cluster-health"])).await;
    same(&mut d, &eps, &ids, v2(&["member", "list"])).await;
    same(&mut d, &eps, &ids, v2(&["set", "/v2k", "x"])).await;
    same(&mut d, &eps, &ids, v2(&["-o", "extended", "get", "/v2k"])).await;
    same(
        &mut d,
        &eps,
        &ids,
        cmd(["cluster-health"])
            .v2()
            .env("ETCDCTL_CA_FILE", &tls.ca)
            .env("ETCDCTL_CERT_FILE", &tls.client_cert)
            .env("ETCDCTL_KEY_FILE", &tls.client_key),
    )
    .await;

    // Refusals: no client certificate, another CA's, an expired one, an untrusted server.
    let ca = tls.ca.as_str();
    let other_ca = other.path("ca.pem");
    let (mallory, mallory_key) = other.pair("mallory");
    let (old, old_key) = pki.pair("old");
    let cases: Vec<Vec<&str>> = vec![
        vec!["--cacert", ca],
        vec!["--cacert", ca, "--cert", &mallory, "--key", &mallory_key],
        vec!["--cacert", ca, "--cert", &old, "--key", &old_key],
        vec![
            "--cacert",
            &other_ca,
            "--cert",
            &tls.client_cert,
            "--key",
            &tls.client_key,
        ],
    ];
    for flags in &cases {
        let args = |rest: &[&str]| cmd(flags.iter().chain(rest.iter()).copied());
        same(&mut d, one, &ids, args(&["get", "k", t])).await;
        same(&mut d, one, &ids, args(&["endpoint", "health", t]).took()).await;
        // etcdctl v2 takes --ca-file, --cert-file, --key-file.
        let v2_flags: Vec<String> = flags
            .iter()
            .map(|f| match *f {
                "--cacert" => "--ca-file",
                "--cert" => "--cert-file",
                "--key" => "--key-file",
                other => other,
            })
            .map(str::to_owned)
            .collect();
        let v2_args = |rest: &[&str]| {
            cmd(v2_flags
                .iter()
                .map(String::as_str)
                .chain(rest.iter().copied()))
            .v2()
        };
        same(&mut d, one, &ids, v2_args(&["cluster-health"])).await;
        same(&mut d, one, &ids, v2_args(&["get", "/v2k"])).await;
    }
    // Across all three endpoints, and the per-endpoint error of a refused server.
    same(
        &mut d,
        &eps,
        &ids,
        cmd(["--cacert", ca, "put", "k", "w", t]),
    )
    .await;
    same(
        &mut d,
        one,
        &ids,
        cmd(["--cacert", &other_ca, "endpoint", "status", t]),
    )
    .await;
    // Bad TLS files.
    let missing = tmp.path().join("missing.pem").display().to_string();
    for flags in [
        vec!["--cert", tls.client_cert.as_str()],
        vec!["--key", tls.client_key.as_str()],
        vec!["--cacert", &missing],
        vec!["--cacert", ca, "--cert", ca, "--key", &tls.client_key],
        vec!["--cert=", "--key", &tls.client_key],
    ] {
        same(
            &mut d,
            one,
            &ids,
            cmd(flags.iter().copied().chain(["get", "k"])),
        )
        .await;
    }
    for flags in [
        vec!["--cert-file", tls.client_cert.as_str()],
        vec!["--ca-file", &missing],
    ] {
        same(
            &mut d,
            one,
            &ids,
            cmd(flags.iter().copied().chain(["get", "/v2k"])).v2(),
        )
        .await;
        same(
            &mut d,
            one,
            &ids,
            cmd(flags.iter().copied().chain(["cluster-health"])).v2(),
        )
        .await;
    }
    d.finish();
}

/// `make-mirror` into a TLS cluster with `--dest-cacert/--dest-cert/--dest-key`.
#[tokio::test]
async fn make_mirror_into_a_tls_cluster() {
    if !have_etcdctl() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_pki, tls) = common::Pki::for_cluster(&tmp.path().join("ssl"));
    let src = Cluster::start(ServerKind::Chorus, 1).await;
    let options = ClusterOptions {
        tls: Some(tls.clone()),
        ..ClusterOptions::default()
    };
    let dest = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    src.client()
        .await
        .put("m/k", "v", Default::default())
        .await
        .expect("put");
    let mirror = cmd([
        "make-mirror",
        &dest.client_url(0),
        "--prefix=m/",
        "--dest-cacert",
        &tls.ca,
        "--dest-cert",
        &tls.client_cert,
        "--dest-key",
        &tls.client_key,
    ])
    .runner(&endpoints(&src), true)
    .spawn()
    .await;
    let mut w = Etcdctl::v3(&dest.endpoints())
        .args(tls.v3_flags())
        .args(["watch", "m/k", "--rev", "1"])
        .spawn()
        .await;
    let seen = w.wait_for(WAIT, |o| o.contains("m/k")).await;
    w.stop().await;
    let out = mirror.stop().await;
    assert!(seen.is_ok(), "not mirrored: {seen:?}; make-mirror: {out:?}");
    // Bad destination files: etcd's message, exit 128.
    let out = cmd([
        "make-mirror",
        &dest.client_url(0),
        "--dest-cert",
        &tls.client_cert,
    ])
    .runner(&endpoints(&src), true)
    .run()
    .await;
    assert_eq!(out.code, 128, "{out:?}");
    assert!(
        out.stderr
            .starts_with("Error: KeyFile and CertFile must both be present"),
        "{out:?}"
    );
}

/// `chorusctl snapshot save`, `status` of the file (all formats), and `restore` into the
/// data directories of a new three-member cluster that then serves the data.
#[tokio::test]
async fn snapshot_save_status_restore() {
    let source = Cluster::start(ServerKind::Chorus, 3).await;
    let c = source.client().await;
    for i in 0..20 {
        c.put(format!("k/{i:02}"), format!("v{i}"), Default::default())
            .await
            .expect("put");
    }
    c.delete("k/00", Default::default()).await.expect("del");
    let lease = c.lease_grant(600, 0).await.expect("grant").id;
    let leased = chorus_client::PutOptions {
        lease,
        ..Default::default()
    };
    c.put("leased", "v", leased).await.expect("put");
    let rev = c
        .put("last", "v", Default::default())
        .await
        .expect("put")
        .header
        .expect("header")
        .revision;
    let all = chorus_client::GetOptions {
        prefix: true,
        ..Default::default()
    };
    let before = c.get("", all.clone()).await.expect("get").kvs;

    let file = source.dir().join("backup.db").display().to_string();
    let out = Etcdctl::v3(&[source.client_url(1)])
        .args(["snapshot", "save", &file])
        .binary(chorusctl())
        .run()
        .await;
    assert_eq!(out.ok(), format!("Snapshot saved at {file}\n"));

    let st = chorus_datadir::snapshot::status(std::path::Path::new(&file)).expect("status");
    assert_eq!(st.revision, rev);
    let size = std::fs::metadata(&file).expect("stat").len();
    let status = |w: &str| {
        Etcdctl::v3(&[] as &[String])
            .args(["snapshot", "status", &file, "-w", w])
            .binary(chorusctl())
            .run()
    };
    let json: serde_json::Value =
        serde_json::from_str(status("json").await.ok()).expect("status json");
    assert_eq!(json["revision"], rev);
    // etcd's format (ADR 0007): the bbolt size, as etcdutl prints it (no trailer).
    assert_eq!(json["totalSize"], size - 32);
    assert_eq!(json["hash"], st.hash);
    // Every key of the store is counted (and members, leases, meta records besides).
    let keys = json["totalKey"].as_u64().expect("totalKey");
    assert_eq!(keys, st.total_keys);
    assert!(keys as usize > before.len(), "{keys} <= {}", before.len());
    let simple = status("simple").await;
    let fields: Vec<&str> = simple.ok().trim_end().split(", ").collect();
    assert_eq!(
        fields[..3],
        [format!("{:x}", st.hash), rev.to_string(), keys.to_string()]
    );
    let table = status("table").await;
    assert!(table.ok().contains("| TOTAL KEYS |"), "{table:?}");
    let fields_out = status("fields").await;
    assert!(
        fields_out.ok().contains(&format!("\"Revision\" : {rev}\n")),
        "{fields_out:?}"
    );
    // A damaged or truncated file.
    let damaged = source.dir().join("damaged.db");
    let bytes = std::fs::read(&file).expect("read");
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).expect("write");
    let damaged = damaged.display().to_string();
    let out = Etcdctl::v3(&[] as &[String])
        .args(["snapshot", "status", &damaged])
        .binary(chorusctl())
        .run()
        .await;
    // An etcd-format file (ADR 0007) says what is wrong with it.
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("Error: snapshot file integrity check failed. "),
        "{out:?}"
    );

    // Restore into the data directories of a new cluster laid out by the harness.
    let mut restored = Cluster::create(ServerKind::Chorus, 3, ClusterOptions::default());
    let flag = |m: &common::Member, name: &str| {
        let prefix = format!("--{name}=");
        m.args
            .iter()
            .find_map(|a| a.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{name} in {:?}", m.args))
            .to_owned()
    };
    for i in 0..3 {
        let m = restored.member(i);
        let args: Vec<String> = [
            "name",
            "data-dir",
            "initial-cluster",
            "initial-cluster-token",
            "initial-advertise-peer-urls",
        ]
        .iter()
        .map(|n| format!("--{n}={}", flag(m, n)))
        .collect();
        let restore = |file: &str| {
            Etcdctl::v3(&[] as &[String])
                .args(["snapshot", "restore", file])
                .args(args.clone())
                .binary(chorusctl())
                .run()
        };
        if i == 0 {
            let out = restore(&damaged).await;
            assert_eq!(out.code, 1, "{out:?}");
            assert!(
                !m.data_dir.exists(),
                "a failed restore left {:?}",
                m.data_dir
            );
        }
        let out = restore(&file).await;
        assert!(out.success(), "{out:?}");
        assert!(
            out.stderr.contains("\"msg\":\"restored snapshot\""),
            "{out:?}"
        );
        assert_eq!(out.stderr.matches("\"msg\":\"added member\"").count(), 3);
        if i == 0 {
            let again = restore(&file).await;
            assert_eq!(
                again.stderr,
                format!(
                    "Error: data-dir {:?} exists\n",
                    m.data_dir.display().to_string()
                )
            );
        }
    }
    restored.start_all().await;
    let r = restored.client().await;
    assert_eq!(r.get("", all.clone()).await.expect("get").kvs, before);
    let ttl = r.lease_time_to_live(lease, true).await.expect("ttl");
    assert_eq!(ttl.keys, vec![b"leased".to_vec()]);
    let next = r
        .put("new", "v", Default::default())
        .await
        .expect("put")
        .header
        .expect("header");
    assert_eq!(next.revision, rev + 1);
    // Every member has the restored data and the new write (serializable reads of its
    // own store, polled until it has applied the write).
    for i in 0..3 {
        let m = restored.member_client(i).await;
        let local = chorus_client::GetOptions {
            prefix: true,
            serializable: true,
            ..Default::default()
        };
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let kvs = m.get("", local.clone()).await.expect("get").kvs;
            if kvs.len() == before.len() + 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "member {i} has {} keys, want {}",
                kvs.len(),
                before.len() + 1
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
