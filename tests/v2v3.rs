//! `--experimental-enable-v2v3=/v2/`: the v2 keys API served from the v3 keyspace,
//! compared with etcd 3.4.23 and etcd 3.5.1 given the same flag (and `--enable-v2=true`,
//! without which etcd ignores it). One member each; the same HTTP requests go to all
//! three, and statuses, bodies and the `X-Etcd-*`/`X-Raft-*` headers must be equal; then
//! `etcdctl get --prefix /v2/` must show the same v3 keys, values and revisions.
//!
//! ```text
//!   Trio::start ── etcd 3.4, etcd 3.5.1 (--enable-v2 --experimental-enable-v2v3=/v2/)
//!               └─ chorus               (--experimental-enable-v2v3=/v2/)
//!   trio.same(req)        all answer; status, X-Etcd-Index, body compared with chorus's
//!   trio.same_watch(...)  a wait=true GET opened on all, a write, the event lines compared
//!   trio.same_layout()    etcdctl v3 get --prefix /v2/ -w json, keys decoded, compared
//! ```
//!
//! Nothing is normalised but the name of a POSTed key, which etcd takes from its clock
//! (`time.Now().String()`): all start at revision 1 and make the same writes, so every
//! index and revision must match.

use crate::common;

use std::time::Duration;

use base64::Engine as _;
use common::http::{self, HttpRequest, HttpStream};
use common::{Cluster, ClusterOptions, Etcdctl, ServerKind};
use futures::future::join_all;
use serde_json::Value;

/// Bound on a watch's event arriving.
const WAIT: Duration = Duration::from_secs(10);
const PREFIX: &str = "/v2/";
/// What each server is called in a failure's message, in `Trio::servers` order.
const NAMES: [&str; 3] = ["etcd 3.4", "etcd 3.5.1", "chorus"];
/// The headers that must be equal. etcd's v2v3 server answers with a stand-in cluster ID
/// (`e7cd2f00d`) and no raft index or term (0).
const HEADERS: [&str; 5] = [
    "x-etcd-index",
    "x-etcd-cluster-id",
    "x-raft-index",
    "x-raft-term",
    "content-type",
];

struct Trio {
    /// etcd 3.4, etcd 3.5.1, chorus: one member each.
    servers: Vec<Cluster>,
    /// Their client `host:port`s.
    addrs: Vec<String>,
}

impl Trio {
    /// The three servers, or `None` (the test is skipped) when etcd or etcdctl is not
    /// here outside CI.
    async fn start() -> Option<Trio> {
        Trio::start_with(&[]).await
    }

    /// [`Trio::start`] with more flags for every server.
    async fn start_with(extra: &[&str]) -> Option<Trio> {
        let present =
            common::require_etcd34() && common::require_etcd35() && common::require_etcdctl();
        if !present {
            return None;
        }
        let flag = format!("--experimental-enable-v2v3={PREFIX}");
        let opts = |args: &[&str]| ClusterOptions {
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        };
        let etcd = opts(&[&["--enable-v2=true", &flag], extra].concat());
        let chorus = opts(&[&[flag.as_str()], extra].concat());
        let servers = vec![
            Cluster::start_with(ServerKind::Etcd34, 1, etcd.clone()),
            Cluster::start_with(ServerKind::Etcd35, 1, etcd),
            Cluster::start_with(ServerKind::Chorus, 1, chorus),
        ];
        let servers = join_all(servers).await;
        let addrs = servers.iter().map(|c| c.client_addr(0)).collect();
        Some(Trio { servers, addrs })
    }

    /// Sends `req` to all; panics unless status, index and body are chorus's. Returns
    /// chorus's body as JSON (null for HEAD's empty body).
    async fn same(&self, req: HttpRequest) -> Value {
        let answers = join_all(self.addrs.iter().map(|a| http::send(a, &req))).await;
        let c = answers.last().expect("chorus's answer");
        for (e, name) in answers.iter().zip(NAMES) {
            let what = format!("{name}: {} {} {}", req.method, req.target, req.body);
            assert_eq!((e.status, &e.body), (c.status, &c.body), "{what}");
            for h in HEADERS {
                assert_eq!(e.header(h), c.header(h), "{what}: {h}");
            }
        }
        serde_json::from_str(&c.body).unwrap_or(Value::Null)
    }

    async fn put(&self, key: &str, form: &str) -> Value {
        let req = HttpRequest::new("PUT", &format!("/v2/keys{key}")).form(form);
        self.same(req).await
    }

    async fn get(&self, target: &str) -> Value {
        self.same(HttpRequest::new("GET", &format!("/v2/keys{target}")))
            .await
    }

    async fn delete(&self, target: &str) -> Value {
        self.same(HttpRequest::new("DELETE", &format!("/v2/keys{target}")))
            .await
    }

    /// Opens the watch `target` on all, runs `write` (if any) on all, and compares the
    /// `lines` event lines each watch then sends; returns chorus's.
    async fn same_watch(&self, target: &str, write: Option<HttpRequest>, lines: usize) -> String {
        let req = HttpRequest::new("GET", &format!("/v2/keys{target}"));
        let mut watches = join_all(self.addrs.iter().map(|a| HttpStream::open(a, &req))).await;
        let heads: Vec<_> = watches
            .iter()
            .map(|w| {
                let headers = HEADERS.map(|h| w.header(h).map(str::to_string));
                (w.status, headers)
            })
            .collect();
        if let Some(write) = write {
            self.same(write).await;
        }
        let bodies = join_all(watches.iter_mut().map(|w| w.lines(lines, WAIT))).await;
        let chorus = bodies.last().cloned().expect("chorus's watch");
        let chorus = chorus.expect("chorus's watch events");
        let chorus_head = heads.last().expect("chorus's head");
        for ((e, head), name) in bodies.into_iter().zip(&heads).zip(NAMES) {
            assert_eq!(head, chorus_head, "{name}: watch {target}");
            assert_eq!(
                e.expect("etcd's watch events"),
                chorus,
                "{name}: watch {target}"
            );
        }
        chorus
    }

    /// The v3 keys under the prefix as `etcdctl get --prefix -w json` prints them, keys
    /// and values decoded, the same on all.
    async fn same_layout(&self) -> Vec<Value> {
        let urls: Vec<String> = self.servers.iter().map(|c| c.client_url(0)).collect();
        let layouts = join_all(urls.iter().map(|u| v3_keys(u))).await;
        let chorus = layouts.last().cloned().expect("chorus's keys");
        for (e, name) in layouts.iter().zip(NAMES) {
            assert_eq!(e, &chorus, "{name}: v3 keys under {PREFIX}");
        }
        chorus
    }
}

/// A POSTed key's name (Go's `time.Now().String()`), as `<time>`.
fn blank_time(key: &str) -> String {
    let re =
        regex::Regex::new(r"/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC m=\+\d+\.\d{9}$")
            .expect("regex");
    re.replace(key, "/<time>").into_owned()
}

async fn v3_keys(endpoint: &str) -> Vec<Value> {
    let out = Etcdctl::v3(&[endpoint])
        .args(["get", "--prefix", PREFIX, "-w", "json"])
        .run()
        .await;
    let json: Value = serde_json::from_str(out.ok()).expect("etcdctl's JSON");
    let decode = |v: &Value| {
        let b = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .expect("base64");
        String::from_utf8(b).expect("utf-8")
    };
    let kvs = json["kvs"].as_array().cloned().unwrap_or_default();
    kvs.iter()
        .map(|kv| {
            let mut kv = kv.clone();
            kv["key"] = Value::from(blank_time(&decode(&kv["key"])));
            kv["value"] = Value::from(decode(&kv["value"]));
            kv
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_dirs_match_etcd() {
    let Some(trio) = Trio::start().await else {
        return;
    };
    trio.put("/foo", "value=bar").await;
    trio.put("/a/b/c", "value=1").await;
    trio.put("/d1", "dir=true").await;
    trio.put("/d1", "value=x").await; // not a file
    trio.put("/a/b/c/d", "value=x").await; // not a directory
    trio.put("/a/b/c", "dir=true").await;
    for target in [
        "/foo",
        "/a",
        "/",
        "/?recursive=true",
        "/a?recursive=true&sorted=true",
    ] {
        trio.get(target).await;
    }
    trio.get("/missing").await;
    trio.same(HttpRequest::new("HEAD", "/v2/keys/foo")).await;
    trio.same(HttpRequest::new("GET", "/v2/keys/foo?quorum=true"))
        .await;
    // The root is read-only.
    trio.put("/", "value=x").await;
    // Refused before the store: the same errors, headers included.
    trio.put("/foo?prevIndex=abc", "value=x").await;
    trio.put("/foo?wait=true", "value=x").await;
    // etcd's v2v3 server keeps no stats.
    for stats in ["store", "self", "leader"] {
        trio.same(HttpRequest::new("GET", &format!("/v2/stats/{stats}")))
            .await;
    }
    let layout = trio.same_layout().await;
    let keys: Vec<&str> = layout.iter().filter_map(|kv| kv["key"].as_str()).collect();
    assert!(keys.contains(&"/v2//004/k//1/a/b/c"), "{keys:?}");
    assert!(keys.contains(&"/v2//002/k//1/d1/"), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_and_ttls_match_etcd() {
    let Some(trio) = Trio::start().await else {
        return;
    };
    trio.put("/foo", "value=bar").await;
    trio.put("/foo", "value=baz&prevExist=true").await;
    trio.put("/foo", "value=baz&prevExist=false").await;
    trio.put("/new", "value=1&prevExist=false").await;
    trio.put("/missing", "value=1&prevExist=true").await;
    trio.put("/foo?prevValue=baz", "value=q").await;
    trio.put("/foo?prevValue=zz", "value=q").await;
    trio.put("/foo?prevIndex=1", "value=q").await;
    trio.put("/foo?prevIndex=1&prevValue=zz", "value=q").await;
    trio.put("/foo?prevIndex=3", "value=r").await;
    trio.put("/nokey?prevValue=a", "value=r").await;
    // TTLs are refused by etcd's v2v3 store, refresh too.
    trio.put("/t", "value=q&ttl=5").await;
    trio.put("/foo", "ttl=5&refresh=true&prevExist=true").await;
    trio.delete("/foo?prevValue=zz").await;
    trio.delete("/foo?prevValue=r").await;
    trio.delete("/new?prevIndex=4").await;
    trio.same_layout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_in_order_keys_match_etcd() {
    let Some(trio) = Trio::start().await else {
        return;
    };
    trio.put("/foo", "value=bar").await;
    trio.put("/a/b/c", "value=1").await;
    trio.put("/e", "dir=true").await;
    for target in ["/foo", "/foo", "/a", "/a?dir=true", "/foo2?recursive=true"] {
        trio.delete(target).await;
    }
    // A file deleted with recursive or dir is refused as "Key already exists" by etcd's
    // v2v3 store; a file below a directory deleted recursively goes with it.
    trio.put("/f", "value=1").await;
    trio.delete("/f?recursive=true").await;
    trio.delete("/f?dir=true").await;
    trio.delete("/a?recursive=true").await;
    trio.get("/a/b/c").await;
    trio.delete("/e?dir=true").await;
    trio.delete("/e?dir=true").await;
    trio.delete("/").await;
    trio.get("/a").await;
    let post = |v: &str| HttpRequest::new("POST", "/v2/keys/queue").form(v);
    trio.same(post("value=j1")).await;
    trio.same(post("value=j2")).await;
    // etcd's v2v3 store makes no directory for the queue: the items are unreachable by
    // GET, but there under the prefix.
    trio.get("/queue").await;
    let layout = trio.same_layout().await;
    let queued = layout
        .iter()
        .filter(|kv| kv["key"] == "/v2//003/k//1/queue/<time>");
    assert_eq!(queued.count(), 2, "{layout:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_match_etcd() {
    let Some(trio) = Trio::start().await else {
        return;
    };
    trio.put("/w/x", "value=0").await;
    let set = |k: &str, v: &str| Some(HttpRequest::new("PUT", &format!("/v2/keys{k}")).form(v));
    let line = trio
        .same_watch("/w/x?wait=true", set("/w/x", "value=1"), 1)
        .await;
    assert!(line.contains("\"action\":\"set\""), "{line}");
    let recursive = "/w?wait=true&recursive=true";
    trio.same_watch(recursive, set("/w/y", "value=2"), 1).await;
    // A set that makes directories: the event is the deepest key's.
    trio.same_watch(recursive, set("/w/d/e/f", "value=3"), 1)
        .await;
    // Hidden keys below the watched path are not sent; the next write is.
    let req = HttpRequest::new("GET", &format!("/v2/keys{recursive}"));
    let mut hidden = join_all(trio.addrs.iter().map(|a| HttpStream::open(a, &req))).await;
    trio.put("/w/_hidden", "value=h").await;
    trio.put("/w/shown", "value=s").await;
    let bodies = join_all(hidden.iter_mut().map(|w| w.lines(1, WAIT))).await;
    for (b, name) in bodies.into_iter().zip(NAMES) {
        let b = b.unwrap_or_else(|b| panic!("{name}: no event: {b}"));
        assert!(
            b.contains("/w/shown") && !b.contains("_hidden"),
            "{name}: {b}"
        );
    }
    let del = Some(HttpRequest::new("DELETE", "/v2/keys/w/x"));
    trio.same_watch("/w/x?wait=true", del, 1).await;
    let rm = Some(HttpRequest::new("DELETE", "/v2/keys/w/d?recursive=true"));
    trio.same_watch(recursive, rm, 1).await;
    let cas = set("/w/y?prevValue=2", "value=3");
    let stream = "/w?wait=true&recursive=true&stream=true";
    trio.same_watch(stream, cas, 1).await;
    // waitIndex is taken as a v3 revision (one more than the v2 index) by etcd's store:
    // the index of the last write, plus one, still sees that write.
    let last = trio.get("/w/y").await;
    let index = last["node"]["modifiedIndex"].as_u64().expect("index");
    let target = format!("/w/y?wait=true&waitIndex={}", index + 1);
    trio.same_watch(&target, None, 1).await;
}

/// Concurrent sets under one new directory: every set lands, and the directory is made
/// once (a set that raced and lost re-reads and commits again), on etcd and chorus alike
/// (the order, so the indexes, differ by the race).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sets_make_one_directory() {
    const SETS: usize = 16;
    let Some(trio) = Trio::start().await else {
        return;
    };
    for ((addr, server), name) in trio.addrs.iter().zip(&trio.servers).zip(NAMES) {
        let sets = (0..SETS).map(|i| {
            let req = HttpRequest::new("PUT", &format!("/v2/keys/c/k{i:02}")).form("value=v");
            async move { http::send(addr, &req).await.status }
        });
        let statuses = join_all(sets).await;
        assert!(statuses.iter().all(|s| *s == 201), "{name}: {statuses:?}");
        let listing = http::send(addr, &HttpRequest::new("GET", "/v2/keys/c")).await;
        let children = listing.json()["node"]["nodes"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(children, SETS, "{name}: {}", listing.body);
        let layout = v3_keys(&server.client_url(0)).await;
        let dir = layout.iter().find(|kv| kv["key"] == "/v2//002/k//1/c/");
        let version = dir.map(|kv| kv["version"].clone());
        assert_eq!(version, Some(Value::from(1)), "{name}: {layout:?}");
        // The keys, the directory and the action key.
        assert_eq!(layout.len(), SETS + 2, "{name}: {layout:?}");
    }
}

/// A recursive delete is one txn of 65 operations (a range delete per depth): over
/// `--max-txn-ops` it is refused with the v3 error as the cause, as etcd refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_limits_apply_as_in_etcd() {
    let Some(trio) = Trio::start_with(&["--max-txn-ops=16"]).await else {
        return;
    };
    trio.put("/a/b", "value=1").await;
    let refused = trio.delete("/a?recursive=true").await;
    assert_eq!(refused["errorCode"], 300, "{refused}");
    trio.delete("/a/b").await;
    trio.same_layout().await;
}
