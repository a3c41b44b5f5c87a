//! `--experimental-enable-v2v3=/v2/`: the v2 keys API served from the v3 keyspace,
//! compared with etcd 3.4.23 given the same flag (and `--enable-v2=true`, without which
//! etcd ignores it). One member each; the same HTTP requests go to both, and statuses,
//! bodies and the `X-Etcd-Index` header must be equal; then `etcdctl get --prefix /v2/`
//! must show the same v3 keys, values and revisions on both.
//!
//! ```text
//!   Pair::start ── etcd 3.4 (--enable-v2 --experimental-enable-v2v3=/v2/)
//!               └─ chorus   (--experimental-enable-v2v3=/v2/)
//!   pair.same(req)        both answer; status, X-Etcd-Index, body compared
//!   pair.same_watch(...)  a wait=true GET opened on both, a write, the event lines compared
//!   pair.same_layout()    etcdctl v3 get --prefix /v2/ -w json, keys decoded, compared
//! ```
//!
//! Nothing is normalised but the name of a POSTed key, which etcd takes from its clock
//! (`time.Now().String()`): both start at revision 1 and make the same writes, so every
//! index and revision must match.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::http::{self, HttpRequest, HttpStream};
use common::{Cluster, ClusterOptions, Etcdctl, ServerKind};
use serde_json::Value;

/// Bound on a watch's event arriving.
const WAIT: Duration = Duration::from_secs(10);
const PREFIX: &str = "/v2/";

struct Pair {
    etcd: Cluster,
    chorus: Cluster,
    /// The client `host:port` of etcd's member and of chorus's.
    addr: (String, String),
}

impl Pair {
    async fn start() -> Pair {
        let flag = format!("--experimental-enable-v2v3={PREFIX}");
        let etcd_opts = ClusterOptions {
            extra_args: vec!["--enable-v2=true".into(), flag.clone()],
            ..Default::default()
        };
        let chorus_opts = ClusterOptions {
            extra_args: vec![flag],
            ..Default::default()
        };
        let (etcd, chorus) = tokio::join!(
            Cluster::start_with(ServerKind::Etcd34, 1, etcd_opts),
            Cluster::start_with(ServerKind::Chorus, 1, chorus_opts)
        );
        let addr = (etcd.client_addr(0), chorus.client_addr(0));
        Pair { etcd, chorus, addr }
    }

    /// Sends `req` to both; panics unless status, index and body are the same. Returns
    /// chorus's body as JSON (null for HEAD's empty body).
    async fn same(&self, req: HttpRequest) -> Value {
        let (e, c) = tokio::join!(
            http::send(&self.addr.0, &req),
            http::send(&self.addr.1, &req)
        );
        let what = format!("{} {} {}", req.method, req.target, req.body);
        assert_eq!((e.status, &e.body), (c.status, &c.body), "{what}");
        assert_eq!(e.header("x-etcd-index"), c.header("x-etcd-index"), "{what}");
        assert_eq!(e.header("content-type"), c.header("content-type"), "{what}");
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

    /// Opens the watch `target` on both, runs `write` on both, and compares the `lines`
    /// event lines each watch then sends.
    async fn same_watch(&self, target: &str, write: HttpRequest, lines: usize) -> String {
        let req = HttpRequest::new("GET", &format!("/v2/keys{target}"));
        let (mut e, mut c) = tokio::join!(
            HttpStream::open(&self.addr.0, &req),
            HttpStream::open(&self.addr.1, &req)
        );
        assert_eq!(
            (e.status, e.header("x-etcd-index")),
            (c.status, c.header("x-etcd-index"))
        );
        self.same(write).await;
        let (e, c) = tokio::join!(e.lines(lines, WAIT), c.lines(lines, WAIT));
        let (e, c) = (
            e.expect("etcd's watch event"),
            c.expect("chorus's watch event"),
        );
        assert_eq!(e, c, "watch {target}");
        c
    }

    /// The v3 keys under the prefix as `etcdctl get --prefix -w json` prints them, keys
    /// and values decoded, on both.
    async fn same_layout(&self) -> Vec<Value> {
        let urls = (self.etcd.client_url(0), self.chorus.client_url(0));
        let (e, c) = tokio::join!(v3_keys(&urls.0), v3_keys(&urls.1));
        assert_eq!(e, c, "v3 keys under {PREFIX}");
        c
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

fn have_binaries() -> bool {
    common::require_etcd34() && common::require_etcdctl()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_dirs_match_etcd_34() {
    if !have_binaries() {
        return;
    }
    let pair = Pair::start().await;
    pair.put("/foo", "value=bar").await;
    pair.put("/a/b/c", "value=1").await;
    pair.put("/d1", "dir=true").await;
    pair.put("/d1", "value=x").await; // not a file
    pair.put("/a/b/c/d", "value=x").await; // not a directory
    pair.put("/a/b/c", "dir=true").await;
    for target in [
        "/foo",
        "/a",
        "/",
        "/?recursive=true",
        "/a?recursive=true&sorted=true",
    ] {
        pair.get(target).await;
    }
    pair.get("/missing").await;
    pair.same(HttpRequest::new("HEAD", "/v2/keys/foo")).await;
    pair.same(HttpRequest::new("GET", "/v2/keys/foo?quorum=true"))
        .await;
    pair.put("/", "value=x").await; // the root is read-only
    let layout = pair.same_layout().await;
    let keys: Vec<&str> = layout.iter().filter_map(|kv| kv["key"].as_str()).collect();
    assert!(keys.contains(&"/v2//004/k//1/a/b/c"), "{keys:?}");
    assert!(keys.contains(&"/v2//002/k//1/d1/"), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_and_ttls_match_etcd_34() {
    if !have_binaries() {
        return;
    }
    let pair = Pair::start().await;
    pair.put("/foo", "value=bar").await;
    pair.put("/foo", "value=baz&prevExist=true").await;
    pair.put("/foo", "value=baz&prevExist=false").await;
    pair.put("/new", "value=1&prevExist=false").await;
    pair.put("/missing", "value=1&prevExist=true").await;
    pair.put("/foo?prevValue=baz", "value=q").await;
    pair.put("/foo?prevValue=zz", "value=q").await;
    pair.put("/foo?prevIndex=1", "value=q").await;
    pair.put("/foo?prevIndex=1&prevValue=zz", "value=q").await;
    pair.put("/foo?prevIndex=3", "value=r").await;
    pair.put("/nokey?prevValue=a", "value=r").await;
    // TTLs are refused by etcd's v2v3 store, refresh too.
    pair.put("/t", "value=q&ttl=5").await;
    pair.put("/foo", "ttl=5&refresh=true&prevExist=true").await;
    pair.delete("/foo?prevValue=zz").await;
    pair.delete("/foo?prevValue=r").await;
    pair.delete("/new?prevIndex=4").await;
    pair.same_layout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_in_order_keys_match_etcd_34() {
    if !have_binaries() {
        return;
    }
    let pair = Pair::start().await;
    pair.put("/foo", "value=bar").await;
    pair.put("/a/b/c", "value=1").await;
    pair.put("/e", "dir=true").await;
    for target in ["/foo", "/foo", "/a", "/a?dir=true", "/foo2?recursive=true"] {
        pair.delete(target).await;
    }
    pair.delete("/a?recursive=true").await;
    pair.delete("/e?dir=true").await;
    pair.delete("/e?dir=true").await;
    pair.delete("/").await;
    pair.get("/a").await;
    let post = |v: &str| HttpRequest::new("POST", "/v2/keys/queue").form(v);
    pair.same(post("value=j1")).await;
    pair.same(post("value=j2")).await;
    // etcd's v2v3 store makes no directory for the queue: the items are unreachable by
    // GET, but there under the prefix.
    pair.get("/queue").await;
    let layout = pair.same_layout().await;
    let queued = layout
        .iter()
        .filter(|kv| kv["key"] == "/v2//003/k//1/queue/<time>");
    assert_eq!(queued.count(), 2, "{layout:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_match_etcd_34() {
    if !have_binaries() {
        return;
    }
    let pair = Pair::start().await;
    pair.put("/w/x", "value=0").await;
    let set = |k: &str, v: &str| HttpRequest::new("PUT", &format!("/v2/keys{k}")).form(v);
    let line = pair
        .same_watch("/w/x?wait=true", set("/w/x", "value=1"), 1)
        .await;
    assert!(line.contains("\"action\":\"set\""), "{line}");
    pair.same_watch("/w?wait=true&recursive=true", set("/w/y", "value=2"), 1)
        .await;
    let del = HttpRequest::new("DELETE", "/v2/keys/w/x");
    pair.same_watch("/w/x?wait=true", del, 1).await;
    let cas = set("/w/y?prevValue=2", "value=3");
    pair.same_watch("/w?wait=true&recursive=true&stream=true", cas, 1)
        .await;
    // waitIndex is taken as a v3 revision (one more than the v2 index) by etcd's store.
    let last = pair.get("/w/y").await;
    let index = last["node"]["modifiedIndex"].as_u64().expect("index");
    let req = HttpRequest::new(
        "GET",
        &format!("/v2/keys/w/y?wait=true&waitIndex={}", index + 1),
    );
    let (mut e, mut c) = tokio::join!(
        HttpStream::open(&pair.addr.0, &req),
        HttpStream::open(&pair.addr.1, &req)
    );
    let (e, c) = tokio::join!(e.lines(1, WAIT), c.lines(1, WAIT));
    assert_eq!(e.expect("etcd's event"), c.expect("chorus's event"));
}
