//! The real etcdctl 3.4 (`ETCDCTL_API=3`) against chorus, compared command by command with
//! the same etcdctl against the real etcd 3.4.23.
//!
//! ```text
//!   Pair::start(n) ── Cluster(Etcd, n) and Cluster(Chorus, n): fresh, same flags
//!   pair.check(ok(["get", "k", "-w", "json"]))
//!       ├─ etcdctl --endpoints=127.0.0.1:<etcd>   get k -w json ──┐ normalize each side
//!       └─ etcdctl --endpoints=127.0.0.1:<chorus> get k -w json ──┘ (its own IDs, ports)
//!          exit code, stdout and stderr must be equal; a difference is recorded and the
//!          test goes on, so that one run lists every difference
//!   pair.finish() ── fails the test with all the differences recorded
//! ```
//!
//! Both sides get the same commands in the same order, so revisions line up: they are
//! compared as printed, never blanked. What is blanked:
//!
//! - always: member and cluster IDs, lease IDs (random per cluster), ports (free ports), the
//!   temp dir, the raft term (etcd appends its bootstrap entries at term 1 and first elects
//!   at term 2; chorus elects at term 1, so its terms are one lower), and the timestamp and
//!   client UUID of the JSON log lines etcdctl's client library writes to stderr (their
//!   level, caller, attempt and gRPC error are kept and compared);
//! - per command, where the command prints it: raft indexes (deliberate, see
//!   docs/compatibility.md: etcd logs bootstrap conf changes and a cluster-version entry),
//!   DB sizes (redb, not bbolt), durations (`endpoint health`), HashKV hashes (deliberate,
//!   chorus hashes its own record encoding), a lease's remaining TTL (wall clock), table
//!   widths (they follow the blanked values).
//!
//! Endpoints are given as `127.0.0.1:PORT`, without `http://`, except in
//! `endpoint_commands_with_http_scheme` (with a scheme, etcdctl's `endpoint status`/`hashkv`
//! send the URL as the HTTP/2 `:authority`; see `crates/server/src/serve/authority.rs`).

use crate::common;

use std::time::Duration;

use chorus_api::etcdserverpb::{
    DeleteRangeResponse, PutResponse, RangeResponse, ResponseHeader, TxnResponse,
};
use common::{Background, Cluster, Etcdctl, Normalizer, Output, ServerKind};
use regex::Regex;

/// Bound on waiting for a background etcdctl's output (a watch's events).
const WAIT: Duration = Duration::from_secs(10);

/// The terminating value written last into every watched range: a watch has printed all
/// it should once this value is printed.
const END: &str = "watch-end";
/// `END` in base64, as `-w json` prints values.
const END_B64: &str = "d2F0Y2gtZW5k";

fn have_binaries() -> bool {
    common::require_etcd() && common::require_etcdctl()
}

// ---------------------------------------------------------------------------------------
// The pair of clusters and the comparison.

/// One etcdctl command and what its comparison blanks beyond the IDs, ports and term.
#[derive(Clone, Default)]
struct Cmd {
    args: Vec<String>,
    stdin: Option<String>,
    /// Whether etcd must succeed (`Some(true)`), fail (`Some(false)`): guards the test's
    /// own commands against typos that would make both sides print the same usage error.
    expect_success: Option<bool>,
    /// Raft indexes and DB sizes (`endpoint status`).
    status: bool,
    /// Durations (`endpoint health`).
    took: bool,
    /// Table widths.
    table: bool,
    /// Rewrites of both streams before the normalizer (on the raw output), in order.
    pre: Vec<fn(&str) -> String>,
    /// More rewrites of both streams, applied after the normalizer, in order.
    post: Vec<fn(&str) -> String>,
}

/// A command etcd must succeed with.
fn ok<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Cmd {
    Cmd {
        args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
        expect_success: Some(true),
        ..Cmd::default()
    }
}

/// A command etcd must fail with.
fn fails<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Cmd {
    Cmd {
        expect_success: Some(false),
        ..ok(args)
    }
}

impl Cmd {
    fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_owned());
        self
    }
    fn status(mut self) -> Self {
        self.status = true;
        self
    }
    fn took(mut self) -> Self {
        self.took = true;
        self
    }
    fn table(mut self) -> Self {
        self.table = true;
        self
    }
    fn pre(mut self, f: fn(&str) -> String) -> Self {
        self.pre.push(f);
        self
    }
    fn post(mut self, f: fn(&str) -> String) -> Self {
        self.post.push(f);
        self
    }
    fn label(&self) -> String {
        let mut label = format!("etcdctl {}", self.args.join(" "));
        if let Some(stdin) = &self.stdin {
            let shown: String = stdin.chars().take(200).collect();
            label += &format!(" <<< {shown:?}");
        }
        label
    }
}

/// One cluster of the pair.
struct Side {
    name: &'static str,
    cluster: Cluster,
    /// `127.0.0.1:PORT` of every member (no scheme, see the module doc).
    endpoints: Vec<String>,
    /// IDs, leases, ports, term, temp dir.
    base: Normalizer,
    /// Hex IDs of the leases granted through `Pair::grant`, for `{lease-N}` in arguments.
    leases: Vec<String>,
}

impl Side {
    async fn new(name: &'static str, cluster: Cluster, one_placeholder_per_member: bool) -> Side {
        let (cluster_id, ids) = cluster.ids().await;
        let mut base = Normalizer::new()
            .cluster_id(cluster_id)
            .path(cluster.dir(), "<dir>")
            .ports()
            .raft_terms();
        base = if one_placeholder_per_member {
            base.member_ids(&ids)
        } else {
            // Several members: which one answers, and which leads, is not the same on both
            // sides; tests compare sorted lines with every member as `<member>`.
            ids.iter().fold(base, |n, &id| n.id(id, "<member>"))
        };
        let endpoints = (0..cluster.len())
            .map(|i| format!("127.0.0.1:{}", cluster.member(i).client_port))
            .collect();
        Side {
            name,
            cluster,
            endpoints,
            base,
            leases: Vec::new(),
        }
    }

    /// The arguments with `{lease-N}` replaced by this side's N-th lease (hex).
    fn args(&self, args: &[String]) -> Vec<String> {
        args.iter()
            .map(|arg| {
                self.leases
                    .iter()
                    .enumerate()
                    .fold(arg.clone(), |a, (i, id)| {
                        a.replace(&format!("{{lease-{i}}}"), id)
                    })
            })
            .collect()
    }

    fn etcdctl(&self, cmd: &Cmd) -> Etcdctl {
        let mut etcdctl = Etcdctl::v3(&self.endpoints).args(self.args(&cmd.args));
        if let Some(stdin) = &cmd.stdin {
            etcdctl = etcdctl.stdin(stdin.clone());
        }
        etcdctl
    }

    async fn run(&self, cmd: &Cmd) -> Output {
        self.etcdctl(cmd).run().await
    }

    fn normalize(&self, cmd: &Cmd, out: &Output) -> Output {
        let mut norm = self.base.clone();
        if cmd.status {
            norm = norm.raft_indexes().db_sizes();
        }
        if cmd.took {
            norm = norm.durations();
        }
        if cmd.table {
            norm = norm.tables();
        }
        let apply = |text: &str| {
            let text = cmd.pre.iter().fold(text.to_owned(), |t, f| f(&t));
            let text = norm.apply(&client_logs(&text));
            cmd.post.iter().fold(text, |t, f| f(&t))
        };
        Output {
            stdout: apply(&out.stdout),
            stderr: apply(&out.stderr),
            code: out.code,
            raw_stdout: out.raw_stdout.clone(),
        }
    }
}

/// A fresh etcd cluster and a fresh chorus cluster of the same size, driven in step.
struct Pair {
    etcd: Side,
    chorus: Side,
    diffs: Vec<String>,
}

impl Pair {
    async fn start(n: usize) -> Pair {
        let (etcd, chorus) = tokio::join!(
            Cluster::start(ServerKind::Etcd, n),
            Cluster::start(ServerKind::Chorus, n)
        );
        Pair {
            etcd: Side::new("etcd", etcd, n == 1).await,
            chorus: Side::new("chorus", chorus, n == 1).await,
            diffs: Vec::new(),
        }
    }

    /// Runs `cmd` on both sides; records a difference if the normalized exit codes,
    /// stdouts or stderrs differ. Returns etcd's normalized output.
    async fn check(&mut self, cmd: Cmd) -> Output {
        let (e, c) = tokio::join!(self.etcd.run(&cmd), self.chorus.run(&cmd));
        let (e, c) = (
            self.etcd.normalize(&cmd, &e),
            self.chorus.normalize(&cmd, &c),
        );
        if let Some(success) = cmd.expect_success {
            assert_eq!(
                e.success(),
                success,
                "the test's premise about etcd is wrong for `{}`: {e:#?}",
                cmd.label()
            );
        }
        self.compare(&cmd.label(), &e, &c);
        e
    }

    /// Records a difference between two normalized outputs.
    fn compare(&mut self, label: &str, e: &Output, c: &Output) {
        if (e.code, &e.stdout, &e.stderr) != (c.code, &c.stdout, &c.stderr) {
            self.diffs.push(format!(
                "{label}\n  etcd   exit {}\n    stdout {:?}\n    stderr {:?}\n  chorus exit {}\n    stdout {:?}\n    stderr {:?}",
                e.code, e.stdout, e.stderr, c.code, c.stdout, c.stderr
            ));
        }
    }

    /// Records a difference found by a test's own check.
    fn differ(&mut self, what: String) {
        self.diffs.push(what);
    }

    /// `lease grant <ttl> [-w json]` on both sides; the new leases become `{lease-N}` in
    /// later arguments and `<lease-N>` in outputs.
    async fn grant(&mut self, args: &[&str]) {
        let cmd = ok(["lease", "grant"].iter().chain(args));
        let (e, c) = tokio::join!(self.etcd.run(&cmd), self.chorus.run(&cmd));
        for (side, out) in [(&mut self.etcd, &e), (&mut self.chorus, &c)] {
            let id = match out.stdout.strip_prefix("lease ") {
                // lease 1c1ba21281cf772d granted with TTL(100s)
                Some(rest) => rest
                    .split_whitespace()
                    .next()
                    .and_then(|hex| u64::from_str_radix(hex, 16).ok()),
                // {"cluster_id":...,"ID":2025390657804138287,"TTL":100,"Error":""}
                None => serde_json::from_str::<serde_json::Value>(&out.stdout)
                    .ok()
                    .and_then(|json| json["ID"].as_u64()),
            }
            .unwrap_or_else(|| panic!("{}: lease grant printed {out:#?}", side.name));
            let hex = format!("{id:x}");
            let placeholder = format!("<lease-{}>", side.leases.len());
            side.base = side.base.clone().id(id, &placeholder);
            side.leases.push(hex);
        }
        let (e, c) = (
            self.etcd.normalize(&cmd, &e),
            self.chorus.normalize(&cmd, &c),
        );
        assert!(e.success(), "lease grant on etcd: {e:#?}");
        self.compare(&cmd.label(), &e, &c);
    }

    /// Starts `cmd` in the background on both sides (for `watch`).
    async fn spawn(&self, cmd: &Cmd) -> (Background, Background) {
        tokio::join!(
            self.etcd.etcdctl(cmd).spawn(),
            self.chorus.etcdctl(cmd).spawn()
        )
    }

    /// Waits (bounded) until both background commands printed what `done` expects, stops
    /// them and compares what they printed. A side that never gets there shows up as a
    /// difference.
    async fn finish_background(
        &mut self,
        cmd: &Cmd,
        (mut e, mut c): (Background, Background),
        done: fn(&str) -> bool,
    ) {
        let (e_done, c_done) = tokio::join!(e.wait_for(WAIT, done), c.wait_for(WAIT, done));
        assert!(
            e_done.is_ok(),
            "etcd's `{}` never printed what the test expects: {e_done:?}",
            cmd.label()
        );
        if let Err(partial) = c_done {
            self.differ(format!(
                "{}: chorus's output never completed within {WAIT:?}; so far {partial:?}",
                cmd.label()
            ));
        }
        let (e, c) = tokio::join!(e.stop(), c.stop());
        let (e, c) = (self.etcd.normalize(cmd, &e), self.chorus.normalize(cmd, &c));
        self.compare(&cmd.label(), &e, &c);
    }

    /// Fails the test with every difference recorded.
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
// Rewrites of outputs.

/// The JSON log lines of etcdctl's client library (`{"level":"warn","ts":...}`) without
/// their timestamp and target (which names a random client UUID); the rest is kept.
fn client_logs(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            if !line.starts_with("{\"level\":") {
                return line.to_owned();
            }
            let Ok(mut log) = serde_json::from_str::<serde_json::Value>(line) else {
                return line.to_owned();
            };
            if let Some(fields) = log.as_object_mut() {
                fields.remove("ts");
                fields.remove("target");
            }
            format!("<client-log {log}>\n")
        })
        .collect()
}

/// HashKV hashes (`endpoint hashkv`, all formats) become `<hash>`: chorus's differ from
/// etcd's by design (docs/compatibility.md).
fn blank_hashes(text: &str) -> String {
    let json = Regex::new(r#""hash":\d+"#).expect("regex");
    let simple = Regex::new(r"(?m)^(\S+:<port>, )\d+$").expect("regex");
    let table = Regex::new(r"(?m)^(\| \S+:<port> \| )\d+( \|)$").expect("regex");
    let text = json.replace_all(text, r#""hash":<hash>"#);
    let text = simple.replace_all(&text, "${1}<hash>");
    table.replace_all(&text, "${1}<hash>${2}").into_owned()
}

/// A lease's remaining TTL (`remaining(199s)`, `"ttl":199`) becomes `<ttl>`: it depends
/// on the wall clock between grant and query.
fn blank_remaining_ttl(text: &str) -> String {
    let simple = Regex::new(r"remaining\(\d+s\)").expect("regex");
    let json = Regex::new(r#""ttl":\d+"#).expect("regex");
    let text = simple.replace_all(text, "remaining(<ttl>s)");
    json.replace_all(&text, r#""ttl":<ttl>"#).into_owned()
}

/// The keys of `lease timetolive --keys` sorted: etcd lists them in Go map order, which
/// is random from one call to the next.
fn sort_lease_keys(text: &str) -> String {
    let simple = Regex::new(r"keys\(\[([^\]]*)\]\)").expect("regex");
    let json = Regex::new(r#""keys":\[([^\]]*)\]"#).expect("regex");
    let sorted = |list: &str, sep: &str| {
        let mut keys: Vec<&str> = list.split(sep).collect();
        keys.sort_unstable();
        keys.join(sep)
    };
    let text = simple.replace_all(text, |c: &regex::Captures| {
        format!("keys([{}])", sorted(&c[1], " "))
    });
    json.replace_all(&text, |c: &regex::Captures| {
        format!(r#""keys":[{}]"#, sorted(&c[1], ","))
    })
    .into_owned()
}

/// Lines sorted: for outputs whose line order follows which member answers first or
/// which one is leader, both of which differ between the sides.
fn sort_lines(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// `member list -w json` with the members sorted by name (the list is in ID order, and
/// IDs are random).
fn sort_members_json(text: &str) -> String {
    let Ok(mut list) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_owned();
    };
    if let Some(members) = list.get_mut("members").and_then(|m| m.as_array_mut()) {
        members.sort_by_key(|m| m["name"].as_str().unwrap_or_default().to_owned());
    }
    format!("{list}\n")
}

/// The header revision of a `-w json` response (normalized: not quite JSON any more).
fn json_revision(out: &Output) -> i64 {
    let re = Regex::new(r#""header":\{[^}]*"revision":(\d+)"#).expect("regex");
    re.captures(&out.stdout)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("no header revision in {out:#?}"))
}

/// Events in the complete lines of `watch -w json` output.
fn json_events(text: &str) -> usize {
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|resp| resp["Events"].as_array().map_or(0, Vec::len))
        .sum()
}

// ---------------------------------------------------------------------------------------
// -w protobuf

/// etcdctl's `-w protobuf` prints the response re-marshalled from what it decoded, so the
/// bytes are stable for equal responses. Each side's bytes are decoded and re-encoded
/// (which must give them back exactly, so the comparison below loses nothing), the header's
/// cluster and member IDs and raft term are zeroed, and the two encodings compared.
fn protobuf_differs<M: prost::Message + Default + std::fmt::Debug>(
    e: &Output,
    c: &Output,
    header: fn(&mut M) -> &mut Option<ResponseHeader>,
) -> Option<String> {
    let decode = |out: &Output, side: &str| -> Result<Vec<u8>, String> {
        let mut msg = M::decode(out.raw_stdout.as_slice())
            .map_err(|err| format!("{side}: not a protobuf response ({err}): {out:?}"))?;
        if msg.encode_to_vec() != out.raw_stdout {
            return Err(format!(
                "{side}: the bytes do not re-encode identically: {out:?}"
            ));
        }
        if let Some(h) = header(&mut msg) {
            h.cluster_id = 0;
            h.member_id = 0;
            h.raft_term = 0;
        }
        Ok(msg.encode_to_vec())
    };
    let e_bytes = decode(e, "etcd").unwrap_or_else(|err| panic!("{err}"));
    match decode(c, "chorus") {
        Err(err) => Some(err),
        Ok(c_bytes) if c_bytes != e_bytes => Some(format!(
            "etcd {:?}\nchorus {:?}",
            M::decode(e_bytes.as_slice()),
            M::decode(c_bytes.as_slice())
        )),
        Ok(_) => None,
    }
}

impl Pair {
    /// Runs a `-w protobuf` command on both sides and compares the responses (see
    /// `protobuf_differs`).
    async fn check_protobuf<M: prost::Message + Default + std::fmt::Debug>(
        &mut self,
        cmd: Cmd,
        header: fn(&mut M) -> &mut Option<ResponseHeader>,
    ) {
        let (e, c) = tokio::join!(self.etcd.run(&cmd), self.chorus.run(&cmd));
        assert!(e.success(), "{}: {e:#?}", cmd.label());
        if c.code != 0 || !c.stderr.is_empty() {
            self.compare(&cmd.label(), &e, &c);
        } else if let Some(diff) = protobuf_differs::<M>(&e, &c, header) {
            self.differ(format!("{}\n{diff}", cmd.label()));
        }
    }
}

// ---------------------------------------------------------------------------------------
// KV: put, get, del

#[tokio::test]
async fn put_get_del() {
    if !have_binaries() {
        return;
    }
    let mut pair = Pair::start(1).await;

    // put and its flags.
    let out = pair.check(ok(["put", "p/k", "v1"])).await;
    assert_eq!(out.stdout, "OK\n");
    pair.check(ok(["put", "p/k", "v2", "--prev-kv"])).await;
    pair.check(ok(["put", "p/k", "v3", "--prev-kv", "-w", "json"]))
        .await;
    pair.check(ok(["put", "p/k", "v4", "--prev-kv", "-w", "fields"]))
        .await;
    pair.check(ok(["put", "p/new", "n", "--prev-kv"])).await;
    pair.check(ok(["put", "p/new", "n2", "-w", "json"])).await;
    pair.check(ok(["put", "p/stdin"]).stdin("from stdin")).await;
    // --ignore-value keeps the value; on a missing key it is an error.
    pair.check(ok(["put", "p/k", "--ignore-value"])).await;
    pair.check(ok([
        "put",
        "p/k",
        "--ignore-value",
        "--prev-kv",
        "-w",
        "json",
    ]))
    .await;
    pair.check(fails(["put", "p/missing", "--ignore-value"]))
        .await;
    pair.check(ok(["put", "p/k", "v5", "--ignore-lease"])).await;
    pair.check(fails(["put", "p/missing", "v", "--ignore-lease"]))
        .await;
    pair.check(ok(["get", "p/", "--prefix", "-w", "json"]))
        .await;

    // Four keys whose orders by key, create, mod, version and value all differ:
    // key a<b<c<d, create c<a<d<b, mod a<b<d<c, version a<c<b<d, value b<d<a<c.
    for (key, value) in [
        ("s/c", "x1"),
        ("s/a", "p"),
        ("s/d", "x2"),
        ("s/b", "x3"),
        ("s/b", "x4"),
        ("s/d", "x5"),
        ("s/b", "a"),
        ("s/d", "x6"),
        ("s/d", "k"),
        ("s/c", "z"),
    ] {
        pair.check(ok(["put", key, value])).await;
    }
    let out = pair.check(ok(["get", "s/", "--prefix"])).await;
    assert_eq!(out.stdout, "s/a\np\ns/b\na\ns/c\nz\ns/d\nk\n");
    for sort in ["KEY", "CREATE", "MODIFY", "VALUE", "VERSION"] {
        for order in ["ASCEND", "DESCEND"] {
            let sort_by = format!("--sort-by={sort}");
            let order = format!("--order={order}");
            pair.check(ok(["get", "s/", "--prefix", &sort_by, &order]))
                .await;
            pair.check(ok([
                "get", "s/", "--prefix", &sort_by, &order, "--limit", "2", "-w", "json",
            ]))
            .await;
        }
    }
    pair.check(ok(["get", "s/", "--prefix", "--sort-by=MODIFY"]))
        .await;
    pair.check(ok(["get", "s/", "--prefix", "--order=DESCEND"]))
        .await;
    pair.check(ok(["get", "s/a", "s/c"])).await;
    pair.check(ok(["get", "s/b", "--from-key"])).await;
    pair.check(ok(["get", "s/b", "--from-key", "--limit", "2"]))
        .await;
    pair.check(ok(["get", "s/", "--prefix", "--limit", "1", "-w", "json"]))
        .await;
    pair.check(ok(["get", "s/", "--prefix", "--keys-only"]))
        .await;
    pair.check(ok(["get", "s/", "--prefix", "--keys-only", "-w", "json"]))
        .await;
    pair.check(ok(["get", "s/", "--prefix", "--print-value-only"]))
        .await;
    pair.check(ok(["get", "s/", "--prefix", "--consistency=s"]))
        .await;
    pair.check(ok([
        "get",
        "s/",
        "--prefix",
        "--consistency=s",
        "-w",
        "json",
    ]))
    .await;
    pair.check(ok(["get", "s/", "--prefix", "-w", "fields"]))
        .await;
    pair.check(ok(["get", "missing"])).await;
    pair.check(ok(["get", "missing", "-w", "json"])).await;
    // History: the first revisions of s/b and s/d (revisions line up on both sides).
    let rev = json_revision(&pair.check(ok(["get", "s/b", "-w", "json"])).await);
    for back in [1, 3, 6, 9] {
        let at = (rev - back).to_string();
        pair.check(ok(["get", "s/", "--prefix", "--rev", &at]))
            .await;
        pair.check(ok(["get", "s/", "--prefix", "--rev", &at, "-w", "json"]))
            .await;
    }
    // etcdctl 3.4 has no --count-only (etcdctl 3.5 does): the count is in `-w json`
    // above, with --keys-only and --limit.
    pair.check(fails(["get", "s/", "--prefix", "--count-only"]))
        .await;

    // -w protobuf.
    pair.check_protobuf::<RangeResponse>(ok(["get", "s/", "--prefix", "-w", "protobuf"]), |r| {
        &mut r.header
    })
    .await;
    pair.check_protobuf::<RangeResponse>(ok(["get", "missing", "-w", "protobuf"]), |r| {
        &mut r.header
    })
    .await;
    pair.check_protobuf::<PutResponse>(
        ok(["put", "p/k", "v6", "--prev-kv", "-w", "protobuf"]),
        |r| &mut r.header,
    )
    .await;
    pair.check_protobuf::<DeleteRangeResponse>(
        ok(["del", "p/new", "--prev-kv", "-w", "protobuf"]),
        |r| &mut r.header,
    )
    .await;

    // del and its flags.
    let out = pair.check(ok(["del", "p/k"])).await;
    assert_eq!(out.stdout, "1\n");
    pair.check(ok(["del", "p/k"])).await;
    pair.check(ok(["del", "p/stdin", "--prev-kv"])).await;
    pair.check(ok(["put", "p/x", "1"])).await;
    pair.check(ok(["del", "p/x", "--prev-kv", "-w", "json"]))
        .await;
    pair.check(ok(["put", "p/y", "1"])).await;
    pair.check(ok(["del", "p/y", "-w", "fields"])).await;
    pair.check(ok(["del", "s/c", "--from-key", "--prev-kv"]))
        .await;
    pair.check(ok(["get", "", "--from-key"])).await;
    pair.check(ok(["del", "s/", "--prefix", "--prev-kv", "-w", "json"]))
        .await;
    pair.check(ok(["del", "s/", "--prefix"])).await;
    pair.check(ok(["get", "", "--from-key", "-w", "json"]))
        .await;
    pair.finish();
}

// ---------------------------------------------------------------------------------------
// txn

#[tokio::test]
async fn txn() {
    if !have_binaries() {
        return;
    }
    let mut pair = Pair::start(1).await;
    for (key, value) in [("t/a", "1"), ("t/b", "2"), ("t/a", "1"), ("t/c", "3")] {
        pair.check(ok(["put", key, value])).await;
    }
    // t/a: create 2, mod 4, version 2, value 1; t/b: create 3, mod 3; t/c: create 5.

    // Every comparison kind true, several operations in the success branch.
    let all_true = "value(\"t/a\") = \"1\"\nversion(\"t/a\") = \"2\"\ncreate(\"t/b\") > \"2\"\nmod(\"t/a\") > \"3\"\nversion(\"t/none\") = \"0\"\n\nput t/d 4\nget t/ --prefix\ndel t/b\n\nput t/failed 1\n\n";
    let out = pair.check(ok(["txn"]).stdin(all_true)).await;
    assert!(out.stdout.starts_with("SUCCESS\n"), "{out:#?}");
    // The same compares are now false (t/b is gone): the failure branch runs.
    let out = pair.check(ok(["txn"]).stdin(all_true)).await;
    assert!(out.stdout.starts_with("FAILURE\n"), "{out:#?}");
    for compares in [
        "value(\"t/a\") != \"1\"\n",
        "value(\"t/a\") > \"1\"\n",
        "version(\"t/a\") < \"2\"\n",
        "create(\"t/c\") = \"4\"\n",
        "mod(\"t/c\") != \"5\"\n",
        "create(\"t/none\") > \"0\"\n",
    ] {
        let input = format!("{compares}\nput t/yes 1\n\nget t/a\nget t/none\n\n");
        let out = pair.check(ok(["txn"]).stdin(&input)).await;
        assert!(out.stdout.starts_with("FAILURE\n"), "{input}: {out:#?}");
    }
    // No compare: the success branch. Operations with their own flags.
    let flags = "\nput t/a 5 --prev-kv\nget t/ --prefix --keys-only --limit 2 --sort-by=KEY --order=DESCEND\ndel t/c --prev-kv\nput t/e 6\n\n\n";
    pair.check(ok(["txn"]).stdin(flags)).await;
    pair.check(ok(["put", "t/a", "7"])).await;
    pair.check(ok(["txn", "-w", "json"]).stdin(flags)).await;
    pair.check(ok(["put", "t/a", "8"])).await;
    pair.check(ok(["txn", "-w", "fields"]).stdin(flags)).await;
    pair.check(ok(["txn", "-w", "json"]).stdin(all_true)).await;
    pair.check(ok(["txn", "-w", "fields"]).stdin(all_true))
        .await;
    // --interactive prints its prompts on stdout.
    pair.check(ok(["txn", "--interactive"]).stdin(all_true))
        .await;
    pair.check(ok(["txn", "-i", "-w", "json"]).stdin(flags))
        .await;
    pair.check_protobuf::<TxnResponse>(ok(["txn", "-w", "protobuf"]).stdin(flags), |r| {
        &mut r.header
    })
    .await;
    // Empty branches.
    pair.check(ok(["txn"]).stdin("\n\n\n")).await;
    pair.check(ok(["txn", "-w", "json"]).stdin("value(\"t/e\") = \"6\"\n\n\n\n"))
        .await;
    // `lease("k") = "0"` makes etcdctl 3.4.23 itself panic (clientv3.Compare wants an
    // int64 and etcdctl passes the string): lease compares cannot be sent with it.
    // etcdctl cannot express a nested txn either (RequestOp.request_txn).
    pair.check(ok(["get", "t/", "--prefix", "-w", "json"]))
        .await;
    pair.finish();
}

// ---------------------------------------------------------------------------------------
// compaction

#[tokio::test]
async fn compaction() {
    if !have_binaries() {
        return;
    }
    let mut pair = Pair::start(1).await;
    // A store never compacted has compact revision -1 in etcd: compacting at 0 is
    // accepted, once.
    pair.check(ok(["endpoint", "hashkv", "-w", "json"]).post(blank_hashes))
        .await;
    let out = pair.check(ok(["compaction", "0"])).await;
    assert_eq!(out.stdout, "compacted revision 0\n");
    pair.check(fails(["compaction", "0"])).await;
    for value in ["1", "2", "3", "4", "5", "6"] {
        pair.check(ok(["put", "c/a", value])).await;
    }
    pair.check(ok(["put", "c/b", "x"])).await;
    // Revisions 2..=7 are c/a's, 8 is c/b's.
    let out = pair.check(ok(["compaction", "4"])).await;
    assert_eq!(out.stdout, "compacted revision 4\n");
    pair.check(ok(["get", "c/a", "--rev", "4"])).await;
    pair.check(ok(["get", "c/a", "--rev", "5", "-w", "json"]))
        .await;
    pair.check(fails(["get", "c/a", "--rev", "3"])).await;
    pair.check(fails(["get", "c/a", "--rev", "2", "-w", "json"]))
        .await;
    pair.check(fails(["get", "c/", "--prefix", "--rev", "1"]))
        .await;
    pair.check(fails(["compaction", "4"])).await;
    pair.check(fails(["compaction", "3"])).await;
    pair.check(fails(["compaction", "0"])).await;
    pair.check(fails(["compaction", "100"])).await;
    pair.check(ok(["endpoint", "hashkv", "-w", "json"]).post(blank_hashes))
        .await;
    pair.check(fails(["endpoint", "hashkv", "--rev", "3"]).post(blank_hashes))
        .await;
    // HashKV at the compact revision itself is refused (etcd: `rev <= compactRev`), while
    // a range at it is served (`rev < compactRev` is the error there).
    pair.check(fails(["endpoint", "hashkv", "--rev", "4"]).post(blank_hashes))
        .await;
    let out = pair.check(ok(["compaction", "6", "--physical"])).await;
    assert_eq!(out.stdout, "compacted revision 6\n");
    pair.check(fails(["get", "c/a", "--rev", "5"])).await;
    pair.check(fails(["endpoint", "hashkv", "--rev", "6"]).post(blank_hashes))
        .await;
    pair.check(ok(["get", "c/a", "--rev", "6"])).await;
    pair.check(ok(["get", "c/", "--prefix", "-w", "json"]))
        .await;
    pair.check(ok(["endpoint", "hashkv", "-w", "json"]).post(blank_hashes))
        .await;
    pair.check(ok(["endpoint", "hashkv", "--rev", "7", "-w", "json"]).post(blank_hashes))
        .await;
    pair.check(ok(["put", "c/a", "after"])).await;
    pair.check(ok(["get", "c/a", "-w", "json"])).await;
    pair.finish();
}

// ---------------------------------------------------------------------------------------
// watch

/// `watch` prints `PUT`/`DELETE`, then the previous key and value (with `--prev-kv`), then
/// the key and value; with `-w json`, one line per response; with `-w fields`, a header
/// and the fields of each event. `END` is always the last value of a watched range.
fn ended_simple(text: &str) -> bool {
    text.ends_with(&format!("\n{END}\n"))
}
fn ended_json(text: &str) -> bool {
    text.contains(END_B64) && text.ends_with('\n')
}
fn ended_fields(text: &str) -> bool {
    text.ends_with(&format!("\"Value\" : \"{END}\"\n\"Lease\" : 0\n"))
}

#[tokio::test]
async fn watch() {
    if !have_binaries() {
        return;
    }
    let mut pair = Pair::start(1).await;
    pair.check(ok(["put", "other", "x"])).await;

    // History first, then watches from its start: they catch up on all of it. etcd sends
    // a catch-up in one response (one JSON line); each put, delete and txn is a revision.
    let start = json_revision(&pair.check(ok(["get", "w/", "-w", "json"])).await) + 1;
    let history: [&[&str]; 6] = [
        &["put", "w/a", "1"],
        &["put", "w/b", "2"],
        &["put", "w/a", "3"],
        &["del", "w/b"],
        &["put", "w/b", "4"],
        &["del", "w/", "--prefix"],
    ];
    for args in history {
        pair.check(ok(args)).await;
    }
    pair.check(ok(["txn"]).stdin("\nput w/c 5\nput w/d 6\n\n\n"))
        .await;
    pair.check(ok(["put", "w/zz", END])).await;
    let from = start.to_string();
    for (extra, done) in [
        (&[][..], ended_simple as fn(&str) -> bool),
        (&["--prev-kv"][..], ended_simple),
        (&["--prev-kv", "-w", "json"][..], ended_json),
        (&["-w", "json"][..], ended_json),
        (&["--prev-kv", "-w", "fields"][..], ended_fields),
    ] {
        let mut args = vec!["watch", "w/", "--prefix", "--rev", &from];
        args.extend_from_slice(extra);
        let cmd = ok(args);
        let both = pair.spawn(&cmd).await;
        pair.finish_background(&cmd, both, done).await;
    }
    // A single key from a revision, with its previous values.
    let cmd = ok(["watch", "w/a", "--rev", &from, "--prev-kv"]);
    let both = pair.spawn(&cmd).await;
    pair.check(ok(["put", "w/a", END])).await;
    pair.finish_background(&cmd, both, ended_simple).await;

    // Live: a watch from the next revision (so nothing is missed however late it is
    // registered), each write awaited in its output before the next one, so that every
    // response holds exactly one revision's events.
    let next = json_revision(&pair.check(ok(["get", "l/", "-w", "json"])).await) + 1;
    let next = next.to_string();
    let cmd = ok([
        "watch",
        "l/",
        "--prefix",
        "--rev",
        &next,
        "--prev-kv",
        "-w",
        "json",
    ]);
    let (mut e, mut c) = pair.spawn(&cmd).await;
    let steps: [(Cmd, usize); 5] = [
        (ok(["put", "l/a", "1"]), 1),
        (ok(["put", "l/a", "2"]), 2),
        (ok(["txn"]).stdin("\nput l/b 3\nput l/c 4\n\n\n"), 4),
        (ok(["del", "l/", "--prefix"]), 7),
        (ok(["put", "l/zz", END]), 8),
    ];
    for (write, events) in steps {
        pair.check(write).await;
        let wait = |text: &str| json_events(text) >= events;
        let (e_seen, c_seen) = tokio::join!(e.wait_for(WAIT, wait), c.wait_for(WAIT, wait));
        assert!(e_seen.is_ok(), "etcd's live watch: {e_seen:?}");
        if c_seen.is_err() {
            // The comparison below shows what chorus printed.
            break;
        }
    }
    pair.finish_background(&cmd, (e, c), ended_json).await;

    // A watch from a compacted revision is canceled by the server; etcdctl exits. One
    // from the compact revision itself is served, from what compaction kept.
    pair.check(ok(["compaction", &next])).await;
    let cmd = ok(["watch", "l/", "--prefix", "--rev", &next, "-w", "json"]);
    let both = pair.spawn(&cmd).await;
    pair.finish_background(&cmd, both, ended_json).await;
    let cmd = fails(["watch", "w/", "--prefix", "--rev", &from]);
    let (mut e, mut c) = pair.spawn(&cmd).await;
    // Never true: returns when etcdctl exits (its output closes) or at the deadline.
    let (_, _) = tokio::join!(e.wait_for(WAIT, |_| false), c.wait_for(WAIT, |_| false));
    let (e, c) = tokio::join!(e.stop(), c.stop());
    // etcdctl exits by itself (ExitInterrupted, 5), not killed (-1).
    assert_eq!(e.code, 5, "etcd: {e:#?}");
    let (e, c) = (
        pair.etcd.normalize(&cmd, &e),
        pair.chorus.normalize(&cmd, &c),
    );
    pair.compare(&cmd.label(), &e, &c);

    // Live, without a start revision: the watch sees only what is written after it is
    // registered, which etcdctl does not announce. A sentinel value is written until the
    // watch prints it (bounded); the output before the last sentinel is dropped. The
    // sentinels are not the same number on both sides, so revisions stop lining up here:
    // this comes last, and only the simple format (no revisions) is compared.
    let cmd = ok(["watch", "live"]);
    let (mut e, mut c) = pair.spawn(&cmd).await;
    for (side, watch) in [(&pair.etcd, &mut e), (&pair.chorus, &mut c)] {
        let sentinel = ok(["put", "live", "sync"]);
        let mut synced = false;
        for _ in 0..30 {
            side.run(&sentinel).await.ok();
            let seen = watch
                .wait_for(Duration::from_millis(300), |t| t.contains("\nsync\n"))
                .await;
            if seen.is_ok() {
                synced = true;
                break;
            }
        }
        assert!(synced, "{}: `watch live` never printed a put", side.name);
    }
    for write in [
        ok(["put", "live", "1"]),
        ok(["put", "live", "2"]),
        ok(["del", "live"]),
        ok(["put", "live", END]),
    ] {
        pair.check(write).await;
    }
    let drop_sync = |text: &str| match text.rfind("PUT\nlive\nsync\n") {
        Some(at) => text[at + "PUT\nlive\nsync\n".len()..].to_owned(),
        None => text.to_owned(),
    };
    let (e_done, c_done) = tokio::join!(
        e.wait_for(WAIT, ended_simple),
        c.wait_for(WAIT, ended_simple)
    );
    assert!(e_done.is_ok(), "etcd: {e_done:?}");
    if let Err(partial) = c_done {
        pair.differ(format!(
            "{}: chorus never printed {END:?}; so far {partial:?}",
            cmd.label()
        ));
    }
    let (e, c) = tokio::join!(e.stop(), c.stop());
    let (mut e, mut c) = (
        pair.etcd.normalize(&cmd, &e),
        pair.chorus.normalize(&cmd, &c),
    );
    e.stdout = drop_sync(&e.stdout);
    c.stdout = drop_sync(&c.stdout);
    assert_eq!(
        e.stdout,
        format!("PUT\nlive\n1\nPUT\nlive\n2\nDELETE\nlive\n\nPUT\nlive\n{END}\n")
    );
    pair.compare(&cmd.label(), &e, &c);
    pair.finish();
}

// ---------------------------------------------------------------------------------------
// lease

#[tokio::test]
async fn lease() {
    if !have_binaries() {
        return;
    }
    let mut pair = Pair::start(1).await;
    // Granted in an order that is neither ID order nor expiry order.
    pair.grant(&["300"]).await; // <lease-0>
    pair.grant(&["100"]).await; // <lease-1>
    pair.grant(&["200"]).await; // <lease-2>
    pair.grant(&["50", "-w", "json"]).await; // <lease-3>
                                             // etcd lists leases in expiry order (lessor.Leases sorts them by expiry).
    let out = pair.check(ok(["lease", "list"])).await;
    assert!(out.stdout.starts_with("found 4 leases\n"), "{out:#?}");
    pair.check(ok(["lease", "list", "-w", "json"])).await;

    pair.check(ok(["put", "lk", "v", "--lease={lease-0}"]))
        .await;
    pair.check(ok(["put", "lk2", "v", "--lease={lease-0}"]))
        .await;
    pair.check(ok(["get", "lk", "-w", "json"])).await;
    let ttl = blank_remaining_ttl;
    let keys = sort_lease_keys;
    pair.check(ok(["lease", "timetolive", "{lease-0}"]).post(ttl))
        .await;
    pair.check(
        ok(["lease", "timetolive", "{lease-0}", "--keys"])
            .post(ttl)
            .post(keys),
    )
    .await;
    pair.check(
        ok(["lease", "timetolive", "{lease-0}", "--keys", "-w", "json"])
            .post(ttl)
            .post(keys),
    )
    .await;
    pair.check(ok(["lease", "timetolive", "{lease-2}", "--keys"]).post(ttl))
        .await;
    pair.check(ok(["lease", "keep-alive", "--once", "{lease-0}"]))
        .await;
    pair.check(ok([
        "lease",
        "keep-alive",
        "--once",
        "{lease-1}",
        "-w",
        "json",
    ]))
    .await;

    // The streaming form: its first response (the next is TTL/3 = 66 s later), then it
    // is stopped.
    let cmd = ok(["lease", "keep-alive", "{lease-2}"]);
    let both = pair.spawn(&cmd).await;
    pair.finish_background(&cmd, both, |t| t.ends_with(" keepalived with TTL(200)\n"))
        .await;

    // --ignore-lease keeps the key's lease; --ignore-value keeps its value.
    pair.check(ok(["put", "lk", "v2", "--ignore-lease"])).await;
    pair.check(ok(["get", "lk", "-w", "json"])).await;
    pair.check(ok(["put", "lk", "--ignore-value", "--lease={lease-1}"]))
        .await;
    pair.check(ok(["get", "lk", "-w", "json"])).await;
    pair.check(ok(["put", "lk", "v3"])).await;
    pair.check(ok(["get", "lk", "-w", "json"])).await;
    pair.check(ok(["put", "lk", "v4", "--lease={lease-2}", "--prev-kv"]))
        .await;

    // Revoke deletes the keys still attached; the lease is then gone.
    let out = pair.check(ok(["lease", "revoke", "{lease-0}"])).await;
    assert_eq!(out.stdout, "lease <lease-0> revoked\n");
    pair.check(ok(["get", "", "--from-key", "-w", "json"]))
        .await;
    pair.check(ok(["lease", "timetolive", "{lease-0}"])).await;
    pair.check(ok(["lease", "timetolive", "{lease-0}", "-w", "json"]))
        .await;
    pair.check(fails(["lease", "revoke", "{lease-0}"])).await;
    pair.check(fails(["lease", "keep-alive", "--once", "{lease-0}"]))
        .await;
    pair.check(fails(["put", "k", "v", "--lease={lease-0}"]))
        .await;
    pair.check(fails([
        "lease",
        "keep-alive",
        "--once",
        "{lease-0}",
        "-w",
        "json",
    ]))
    .await;
    pair.check(ok(["lease", "list"])).await;

    // Too long a TTL (the minimum is below, with expiry).
    pair.check(fails(["lease", "grant", "9000000001"])).await;
    pair.check(ok(["lease", "revoke", "{lease-1}"])).await;
    pair.check(ok(["lease", "revoke", "{lease-2}"])).await;
    pair.check(ok(["get", "", "--from-key"])).await;

    // A revoke deletes its keys in one revision, in key order (etcd sorts them so that
    // every member's backend hash agrees), whatever order they were attached in.
    pair.grant(&["300"]).await; // <lease-4>
    let from = json_revision(&pair.check(ok(["get", "r/", "-w", "json"])).await) + 1;
    let from = from.to_string();
    for key in ["r/c", "r/a", "r/d", "r/b"] {
        pair.check(ok(["put", key, "v", "--lease={lease-4}"])).await;
    }
    pair.check(ok(["lease", "revoke", "{lease-4}"])).await;
    pair.check(ok(["put", "r/zz", END])).await;
    let cmd = ok([
        "watch",
        "r/",
        "--prefix",
        "--rev",
        &from,
        "--prev-kv",
        "-w",
        "json",
    ]);
    let both = pair.spawn(&cmd).await;
    pair.finish_background(&cmd, both, ended_json).await;

    // Expiry: TTL 0 gets the minimum TTL (1 s, from the election timeout); a key on it
    // is deleted by the leader when the lease runs out. A watch from the put's revision
    // (so registered in time however late) waits for the delete.
    pair.grant(&["0"]).await; // <lease-5>
    let from = json_revision(&pair.check(ok(["get", "e/", "-w", "json"])).await) + 1;
    pair.check(ok(["put", "e/k", "v", "--lease={lease-5}"]))
        .await;
    let cmd = ok(["watch", "e/k", "--rev", &from.to_string()]);
    let both = pair.spawn(&cmd).await;
    pair.finish_background(&cmd, both, |t| t.ends_with("DELETE\ne/k\n\n"))
        .await;
    pair.check(ok(["get", "", "--from-key", "-w", "json"]))
        .await;
    pair.check(ok(["lease", "timetolive", "{lease-5}"])).await;
    pair.check(ok(["lease", "list"])).await;
    pair.finish();
}

// ---------------------------------------------------------------------------------------
// endpoint, member, alarm on one member

#[tokio::test]
async fn endpoint_member_alarm() {
    if !have_binaries() {
        return;
    }
    let mut pair = Pair::start(1).await;
    pair.check(ok(["put", "k", "v"])).await;
    pair.check(ok(["endpoint", "status"]).status()).await;
    pair.check(ok(["endpoint", "status", "-w", "table"]).status().table())
        .await;
    pair.check(ok(["endpoint", "status", "-w", "json"]).status())
        .await;
    pair.check(ok(["endpoint", "status", "-w", "fields"]).status())
        .await;
    // `endpoint health` prints its verdict on stderr.
    let out = pair.check(ok(["endpoint", "health"]).took()).await;
    assert_eq!(
        out.stderr,
        "127.0.0.1:<port> is healthy: successfully committed proposal: took = <duration>\n"
    );
    pair.check(ok(["endpoint", "health", "-w", "json"]).took())
        .await;
    pair.check(ok(["endpoint", "health", "-w", "table"]).took().table())
        .await;
    pair.check(ok(["endpoint", "hashkv"]).post(blank_hashes))
        .await;
    pair.check(ok(["endpoint", "hashkv", "-w", "json"]).post(blank_hashes))
        .await;
    pair.check(
        ok(["endpoint", "hashkv", "-w", "table"])
            .table()
            .post(blank_hashes),
    )
    .await;
    pair.check(ok(["endpoint", "hashkv", "--rev", "1"]).post(blank_hashes))
        .await;
    pair.check(fails(["endpoint", "hashkv", "--rev", "100"]).post(blank_hashes))
        .await;
    // chorus's hash is its own, but it must be a function of the revision.
    let hash = |side: &Side, rev: Option<&str>| {
        let mut args = vec!["endpoint", "hashkv", "-w", "json"];
        args.extend(rev.map(|r| ["--rev", r]).into_iter().flatten());
        let out = side.etcdctl(&ok(args)).run();
        async move {
            let out = out.await;
            let json: serde_json::Value = serde_json::from_str(out.ok()).expect("json");
            json[0]["HashKV"]["hash"].as_u64().expect("hash")
        }
    };
    let (now, at_2, again) = (
        hash(&pair.chorus, None).await,
        hash(&pair.chorus, Some("2")).await,
        hash(&pair.chorus, None).await,
    );
    assert_eq!(
        now, at_2,
        "chorus: HashKV at the current revision (2) and at --rev 2"
    );
    assert_eq!(now, again, "chorus: HashKV twice at the same revision");

    let out = pair.check(ok(["member", "list"])).await;
    assert_eq!(
        out.stdout,
        "<member-0>, started, m0, http://127.0.0.1:<port>, http://127.0.0.1:<port>, false\n"
    );
    pair.check(ok(["member", "list", "-w", "table"]).table())
        .await;
    pair.check(ok(["member", "list", "-w", "json"])).await;
    pair.check(ok(["member", "list", "-w", "fields"])).await;

    pair.check(ok(["alarm", "list"])).await;
    pair.check(ok(["alarm", "list", "-w", "json"])).await;
    pair.check(ok(["alarm", "disarm"])).await;
    // `alarm list -w fields` makes etcdctl 3.4 panic on etcd (the AlarmResponse has no
    // header): not compared; the JSON form above shows the header.
    pair.finish();
}

// ---------------------------------------------------------------------------------------
// Errors: stderr text and exit codes

#[tokio::test]
async fn errors() {
    if !have_binaries() {
        return;
    }
    let mut pair = Pair::start(1).await;
    pair.check(ok(["put", "k", "v"])).await;
    // Empty key.
    pair.check(fails(["put", "", "v"])).await;
    pair.check(fails(["get", ""])).await;
    pair.check(fails(["del", ""])).await;
    pair.check(fails(["put", "", "--ignore-value"])).await;
    // A revision in the future.
    pair.check(fails(["get", "k", "--rev", "100"])).await;
    pair.check(fails(["get", "k", "--rev", "100", "-w", "json"]))
        .await;
    // A lease that never existed.
    let unknown = "1234abcd";
    pair.check(fails(["put", "k", "v", "--lease", unknown]))
        .await;
    pair.check(fails(["lease", "revoke", unknown])).await;
    pair.check(fails(["lease", "keep-alive", "--once", unknown]))
        .await;
    pair.check(ok(["lease", "timetolive", unknown])).await;
    pair.check(ok(["lease", "timetolive", unknown, "-w", "json"]))
        .await;
    // Too large a TTL.
    pair.check(fails(["lease", "grant", "9000000001"])).await;
    // The same key twice in a txn branch, or put and delete of the same key.
    pair.check(fails(["txn"]).stdin("\nput dup 1\nput dup 2\n\n\n"))
        .await;
    pair.check(fails(["txn", "-w", "json"]).stdin("\nput dup 1\nput dup 2\n\n\n"))
        .await;
    pair.check(fails(["txn"]).stdin("\n\nput dup 1\ndel dup\n\n"))
        .await;
    pair.check(fails(["txn"]).stdin("\nput a/b 1\ndel a/ --prefix\n\n\n"))
        .await;
    // The same key in both branches is fine.
    pair.check(ok(["txn"]).stdin("\nput dup 1\n\nput dup 2\n\n"))
        .await;
    // More operations than --max-txn-ops (128).
    let many: String = (0..129).map(|i| format!("put many/{i} v\n")).collect();
    pair.check(fails(["txn"]).stdin(&format!("\n{many}\n\n")))
        .await;
    // A request over --max-request-bytes (1.5 MiB).
    let big = "x".repeat(1_600_000);
    pair.check(fails(["put", "big"]).stdin(&big)).await;
    // Compaction in the future.
    pair.check(fails(["compaction", "100"])).await;
    pair.check(ok(["get", "", "--from-key", "-w", "json"]))
        .await;
    pair.finish();
}

// ---------------------------------------------------------------------------------------
// Three members

/// IDs of the members as `member list` prints them (hex, first column), in its order.
fn listed_ids(out: &Output) -> Vec<u64> {
    out.stdout
        .lines()
        .map(|line| {
            let hex = line.split(',').next().expect("member line");
            u64::from_str_radix(hex, 16).expect("member ID")
        })
        .collect()
}

#[tokio::test]
async fn three_members() {
    if !have_binaries() {
        return;
    }
    let mut pair = Pair::start(3).await;
    // Members are listed in ID order; IDs are random, so the order is checked on each
    // side and the lines are compared sorted.
    for side in [&pair.etcd, &pair.chorus] {
        let ids = listed_ids(&side.run(&ok(["member", "list"])).await);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids.len(), 3, "{}", side.name);
        if ids != sorted {
            let what = format!("{}: `member list` is not in ID order: {ids:x?}", side.name);
            assert_eq!(side.name, "chorus", "{what}");
            pair.diffs.push(what);
        }
    }
    pair.check(ok(["member", "list"]).post(sort_lines)).await;
    pair.check(
        ok(["member", "list", "-w", "table"])
            .table()
            .post(sort_lines),
    )
    .await;
    pair.check(ok(["member", "list", "-w", "json"]).pre(sort_members_json))
        .await;

    // One line per member, in completion order.
    pair.check(
        ok(["endpoint", "health", "--cluster"])
            .took()
            .post(sort_lines),
    )
    .await;
    let out = pair
        .check(ok(["endpoint", "health"]).took().post(sort_lines))
        .await;
    assert_eq!(out.stderr.lines().count(), 3, "{out:#?}");
    pair.check(
        ok(["endpoint", "health", "-w", "table"])
            .took()
            .table()
            .post(sort_lines),
    )
    .await;
    // One leader among the three rows (`<member>`: which one leads differs).
    let out = pair
        .check(ok(["endpoint", "status"]).status().post(sort_lines))
        .await;
    assert_eq!(out.stdout.matches(", true, false, ").count(), 1, "{out:#?}");
    pair.check(
        ok(["endpoint", "status", "-w", "table"])
            .status()
            .table()
            .post(sort_lines),
    )
    .await;
    pair.check(
        ok(["endpoint", "hashkv"])
            .post(blank_hashes)
            .post(sort_lines),
    )
    .await;

    // Through a follower only: writes and lease calls are forwarded to the leader, reads
    // are linearizable, a watch is served by the follower.
    for side in [&mut pair.etcd, &mut pair.chorus] {
        let leader = side.cluster.leader().await;
        let follower = side.cluster.member((leader + 1) % 3).client_port;
        side.endpoints = vec![format!("127.0.0.1:{follower}")];
    }
    let out = pair.check(ok(["endpoint", "status"]).status()).await;
    assert!(out.stdout.contains(", false, false, "), "{out:#?}");
    pair.check(ok(["put", "f/a", "1"])).await;
    pair.check(ok(["put", "f/a", "2", "--prev-kv", "-w", "json"]))
        .await;
    pair.check(ok(["get", "f/", "--prefix", "-w", "json"]))
        .await;
    pair.check(
        ok(["txn", "-w", "json"]).stdin("value(\"f/a\") = \"2\"\n\nput f/b 3\nget f/a\n\n\n"),
    )
    .await;
    pair.grant(&["100"]).await; // <lease-0>
    pair.check(ok(["put", "f/c", "4", "--lease={lease-0}"]))
        .await;
    pair.check(
        ok(["lease", "timetolive", "{lease-0}", "--keys", "-w", "json"]).post(blank_remaining_ttl),
    )
    .await;
    pair.check(ok(["lease", "keep-alive", "--once", "{lease-0}"]))
        .await;
    pair.check(ok(["lease", "list"])).await;
    pair.check(ok(["lease", "revoke", "{lease-0}"])).await;
    pair.check(ok(["del", "f/a", "--prev-kv"])).await;
    pair.check(ok(["put", "f/zz", END])).await;
    pair.check(ok(["compaction", "3"])).await;
    pair.check(fails(["get", "f/a", "--rev", "2"])).await;
    let cmd = ok(["watch", "f/", "--prefix", "--rev", "3", "--prev-kv"]);
    let both = pair.spawn(&cmd).await;
    pair.finish_background(&cmd, both, ended_simple).await;
    pair.check(ok(["get", "", "--from-key", "-w", "json"]))
        .await;
    pair.finish();
}

/// `--endpoints=http://...`, as most scripts give them, and `--cluster` (which takes the
/// `http://` client URLs from the member list). etcdctl then sends the URL, scheme and all,
/// as the HTTP/2 `:authority` of `endpoint status`/`hashkv`, which h2 alone would reset
/// with PROTOCOL_ERROR (chorus rewrites it: `serve/authority.rs`).
#[tokio::test]
async fn endpoint_commands_with_http_scheme() {
    if !have_binaries() {
        return;
    }
    let mut pair = Pair::start(3).await;
    for side in [&mut pair.etcd, &mut pair.chorus] {
        side.endpoints = side.cluster.endpoints();
    }
    pair.check(ok(["endpoint", "health"]).took().post(sort_lines))
        .await;
    pair.check(ok(["endpoint", "status"]).status().post(sort_lines))
        .await;
    pair.check(ok(["endpoint", "status", "-w", "json"]).status())
        .await;
    pair.check(
        ok(["endpoint", "hashkv"])
            .post(blank_hashes)
            .post(sort_lines),
    )
    .await;
    pair.check(
        ok(["endpoint", "status", "--cluster"])
            .status()
            .post(sort_lines),
    )
    .await;
    pair.check(
        ok(["endpoint", "status", "--cluster", "-w", "table"])
            .status()
            .table()
            .post(sort_lines),
    )
    .await;
    pair.check(
        ok(["endpoint", "hashkv", "--cluster"])
            .post(blank_hashes)
            .post(sort_lines),
    )
    .await;
    pair.finish();
}
