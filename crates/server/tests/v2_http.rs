//! The v2 HTTP API end to end over the raft-less `LocalBackend`, with the clock pinned.
//! Every expected status, `X-Etcd-Index` and body below was recorded from etcd 3.4.23
//! (`etcd --enable-v2 --name n1 --initial-advertise-peer-urls http://127.0.0.1:23800`, fresh
//! data dir) with `curl -si`; the backend makes etcd's three bootstrap writes so that indexes
//! line up, and the clock is set to the instants etcd's expirations imply.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::Router;
use chorus_server::api::v2::local::LocalBackend;
use chorus_server::api::v2::{router, MemberInfo, V2Backend};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const CLUSTER_ID: &str = "48276a8f75b6a87";

fn at(unix_secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(unix_secs, nanos)
}

struct Api {
    app: Router,
    backend: Arc<LocalBackend>,
}

struct Resp {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A v2 keys answer: status, `X-Etcd-Index`, body (etcd ends it with a newline).
    #[track_caller]
    fn is(&self, status: u16, etcd_index: u64, body: &str) {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.body);
        assert_eq!(self.body, format!("{body}\n"));
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.header("x-etcd-cluster-id"), Some(CLUSTER_ID));
        assert_eq!(
            self.header("x-etcd-index"),
            Some(etcd_index.to_string().as_str())
        );
        let raft = self.header("x-raft-index").is_some() && self.header("x-raft-term").is_some();
        // Errors carry no raft headers, results always do.
        assert_eq!(raft, status < 300, "raft headers on {status}");
    }
}

impl Api {
    fn new() -> Api {
        let backend = Arc::new(LocalBackend::new(
            0x48276a8f75b6a87,
            MemberInfo {
                id: 0x2e1259d415f2a040,
                name: "n1".into(),
                peer_urls: vec!["http://127.0.0.1:23800".into()],
                client_urls: vec!["http://127.0.0.1:23790".into()],
            },
        ));
        backend.bootstrap_like_etcd();
        backend.set_now(at(1_795_609_720, 0));
        Api {
            app: router(backend.clone(), None),
            backend,
        }
    }

    fn request(method: &str, uri: &str, form: Option<&str>) -> Request<Body> {
        let b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        match form {
            Some(f) => b
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(f.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        }
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let r = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn call(&self, method: &str, uri: &str, form: Option<&str>) -> Resp {
        self.send(Self::request(method, uri, form)).await
    }

    async fn get(&self, uri: &str) -> Resp {
        self.call("GET", uri, None).await
    }

    async fn put(&self, uri: &str, form: &str) -> Resp {
        self.call("PUT", uri, Some(form)).await
    }

    /// Starts a watch: headers now, body lines as events come.
    async fn watch(&self, uri: &str) -> Watch {
        let r = self
            .app
            .clone()
            .oneshot(Self::request("GET", uri, None))
            .await
            .unwrap();
        let (parts, body) = r.into_parts();
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(parts.headers["content-type"], "application/json");
        assert_eq!(parts.headers["x-etcd-cluster-id"], CLUSTER_ID);
        assert!(parts.headers.get("content-length").is_none(), "streamed");
        Watch {
            etcd_index: parts.headers["x-etcd-index"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap(),
            body,
        }
    }
}

struct Watch {
    etcd_index: u64,
    body: Body,
}

impl Watch {
    /// The next event line; `None` when the response ended.
    async fn next(&mut self) -> Option<String> {
        loop {
            let frame = self.body.frame().await?.unwrap();
            if let Ok(data) = frame.into_data() {
                return Some(String::from_utf8(data.to_vec()).unwrap());
            }
        }
    }

    /// What is already there, without waiting.
    fn ready(&mut self) -> Option<String> {
        use futures::FutureExt;
        self.next().now_or_never().flatten()
    }
}

#[tokio::test]
async fn service_registration_with_ttl_and_heartbeat() {
    let api = Api::new();
    api.backend.set_now(at(1_795_609_720, 744_532_584));
    api.put("/v2/keys/services/web/n1", "value=10.0.0.1:8080&ttl=30").await.is(
        201,
        4,
        r#"{"action":"set","node":{"key":"/services/web/n1","value":"10.0.0.1:8080","expiration":"2026-11-25T12:29:10.744532584Z","ttl":30,"modifiedIndex":4,"createdIndex":4}}"#,
    );
    // The heartbeat: refresh the TTL, keep the value, tell no watcher.
    let mut watcher = api
        .watch("/v2/keys/services?wait=true&recursive=true")
        .await;
    api.backend.set_now(at(1_795_609_720, 763_002_428));
    api.put("/v2/keys/services/web/n1?refresh=true&prevExist=true", "ttl=30").await.is(
        200,
        5,
        r#"{"action":"update","node":{"key":"/services/web/n1","value":"10.0.0.1:8080","expiration":"2026-11-25T12:29:10.763002428Z","ttl":30,"modifiedIndex":5,"createdIndex":4},"prevNode":{"key":"/services/web/n1","value":"10.0.0.1:8080","expiration":"2026-11-25T12:29:10.744532584Z","ttl":30,"modifiedIndex":4,"createdIndex":4}}"#,
    );
    assert_eq!(watcher.ready(), None, "a refresh is not a change");
    api.backend.set_now(at(1_795_609_720, 772_712_384));
    api.put("/v2/keys/services/web/n2", "value=10.0.0.2:8080&ttl=2").await.is(
        201,
        6,
        r#"{"action":"set","node":{"key":"/services/web/n2","value":"10.0.0.2:8080","expiration":"2026-11-25T12:28:42.772712384Z","ttl":2,"modifiedIndex":6,"createdIndex":6}}"#,
    );
    assert_eq!(
        watcher.next().await.unwrap(),
        "{\"action\":\"set\",\"node\":{\"key\":\"/services/web/n2\",\"value\":\"10.0.0.2:8080\",\"expiration\":\"2026-11-25T12:28:42.772712384Z\",\"ttl\":2,\"modifiedIndex\":6,\"createdIndex\":6}}\n"
    );
    assert_eq!(watcher.next().await, None, "a long poll answers once");
    api.get("/v2/keys/services/web?recursive=true&sorted=true").await.is(
        200,
        6,
        r#"{"action":"get","node":{"key":"/services/web","dir":true,"nodes":[{"key":"/services/web/n1","value":"10.0.0.1:8080","expiration":"2026-11-25T12:29:10.763002428Z","ttl":30,"modifiedIndex":5,"createdIndex":4},{"key":"/services/web/n2","value":"10.0.0.2:8080","expiration":"2026-11-25T12:28:42.772712384Z","ttl":2,"modifiedIndex":6,"createdIndex":6}],"modifiedIndex":4,"createdIndex":4}}"#,
    );
    // n2 stops heartbeating: the leader's SYNC expires it, and a live watcher hears of it.
    let mut on_n2 = api.watch("/v2/keys/services/web/n2?wait=true").await;
    assert_eq!(on_n2.etcd_index, 6);
    api.backend.set_now(at(1_795_609_723, 0));
    assert_eq!(api.backend.expire_now().len(), 1);
    let expire = r#"{"action":"expire","node":{"key":"/services/web/n2","modifiedIndex":7,"createdIndex":6},"prevNode":{"key":"/services/web/n2","value":"10.0.0.2:8080","expiration":"2026-11-25T12:28:42.772712384Z","modifiedIndex":6,"createdIndex":6}}"#;
    assert_eq!(on_n2.next().await.unwrap(), format!("{expire}\n"));
    api.backend.set_now(at(1_795_609_724, 0));
    api.get("/v2/keys/services/web?recursive=true&sorted=true").await.is(
        200,
        7,
        r#"{"action":"get","node":{"key":"/services/web","dir":true,"nodes":[{"key":"/services/web/n1","value":"10.0.0.1:8080","expiration":"2026-11-25T12:29:10.763002428Z","ttl":27,"modifiedIndex":5,"createdIndex":4}],"modifiedIndex":4,"createdIndex":4}}"#,
    );
    // A late watcher gets the expiry from the history.
    let mut late = api
        .watch("/v2/keys/services/web/n2?wait=true&waitIndex=7")
        .await;
    assert_eq!(late.etcd_index, 7);
    assert_eq!(late.next().await.unwrap(), format!("{expire}\n"));
}

#[tokio::test]
async fn config_watch_long_polls_and_resumes() {
    // At etcd's indexes: the recorded session's service flow used 4..=7.
    let api = Api::new();
    for _ in 0..4 {
        api.put("/v2/keys/pad", "value=x").await;
    }
    api.put("/v2/keys/config/db", "value=postgres://a").await.is(
        201,
        8,
        r#"{"action":"set","node":{"key":"/config/db","value":"postgres://a","modifiedIndex":8,"createdIndex":8}}"#,
    );
    let mut w = api.watch("/v2/keys/config?wait=true&recursive=true").await;
    assert_eq!(w.etcd_index, 8);
    api.put("/v2/keys/config/db", "value=postgres://b").await;
    assert_eq!(
        w.next().await.unwrap(),
        "{\"action\":\"set\",\"node\":{\"key\":\"/config/db\",\"value\":\"postgres://b\",\"modifiedIndex\":9,\"createdIndex\":9},\"prevNode\":{\"key\":\"/config/db\",\"value\":\"postgres://a\",\"modifiedIndex\":8,\"createdIndex\":8}}\n"
    );
    api.put("/v2/keys/config/cache", "value=redis").await;
    let mut w = api
        .watch("/v2/keys/config?wait=true&recursive=true&waitIndex=10")
        .await;
    assert_eq!(w.etcd_index, 10);
    assert_eq!(
        w.next().await.unwrap(),
        "{\"action\":\"set\",\"node\":{\"key\":\"/config/cache\",\"value\":\"redis\",\"modifiedIndex\":10,\"createdIndex\":10}}\n"
    );
    assert_eq!(w.next().await, None);
    assert_eq!(api.backend.store().read().watcher_count(), 0);
}

/// Brings a fresh API to etcd's index 10 (the recorded session's state before the lock).
async fn at_index_10() -> Api {
    let api = Api::new();
    for i in 4..=10 {
        api.put(&format!("/v2/keys/pad{i}"), "value=x").await;
    }
    assert_eq!(api.backend.store().read().index(), 10);
    api
}

#[tokio::test]
async fn cas_lock_with_prev_exist() {
    let api = at_index_10().await;
    api.backend.set_now(at(1_795_609_724, 568_133_145));
    api.put("/v2/keys/lock?prevExist=false", "value=client1&ttl=60").await.is(
        201,
        11,
        r#"{"action":"create","node":{"key":"/lock","value":"client1","expiration":"2026-11-25T12:29:44.568133145Z","ttl":60,"modifiedIndex":11,"createdIndex":11}}"#,
    );
    api.put("/v2/keys/lock?prevExist=false", "value=client2&ttl=60")
        .await
        .is(
            412,
            11,
            r#"{"errorCode":105,"message":"Key already exists","cause":"/lock","index":11}"#,
        );
    // The holder renews without changing the value.
    api.backend.set_now(at(1_795_609_724, 588_183_582));
    api.put("/v2/keys/lock?prevValue=client1&refresh=true", "ttl=60").await.is(
        200,
        12,
        r#"{"action":"compareAndSwap","node":{"key":"/lock","value":"client1","expiration":"2026-11-25T12:29:44.588183582Z","ttl":60,"modifiedIndex":12,"createdIndex":11},"prevNode":{"key":"/lock","value":"client1","expiration":"2026-11-25T12:29:44.568133145Z","ttl":60,"modifiedIndex":11,"createdIndex":11}}"#,
    );
    // A waiter long-polls the lock; only the holder can release it.
    let mut waiter = api.watch("/v2/keys/lock?wait=true").await;
    api.call("DELETE", "/v2/keys/lock?prevValue=client2", None).await.is(
        412,
        12,
        r#"{"errorCode":101,"message":"Compare failed","cause":"[client2 != client1]","index":12}"#,
    );
    let release = r#"{"action":"compareAndDelete","node":{"key":"/lock","modifiedIndex":13,"createdIndex":11},"prevNode":{"key":"/lock","value":"client1","expiration":"2026-11-25T12:29:44.588183582Z","ttl":60,"modifiedIndex":12,"createdIndex":11}}"#;
    api.call("DELETE", "/v2/keys/lock?prevValue=client1", None)
        .await
        .is(200, 13, release);
    assert_eq!(waiter.next().await.unwrap(), format!("{release}\n"));
    api.put("/v2/keys/lock?prevExist=false", "value=client2").await.is(
        201,
        14,
        r#"{"action":"create","node":{"key":"/lock","value":"client2","modifiedIndex":14,"createdIndex":14}}"#,
    );
}

#[tokio::test]
async fn ordered_queue_and_condition() {
    let api = at_index_10().await;
    for i in 11..=14 {
        api.put(&format!("/v2/keys/pad{i}"), "value=x").await;
    }
    api.call("POST", "/v2/keys/queue", Some("value=job1")).await.is(
        201,
        15,
        r#"{"action":"create","node":{"key":"/queue/00000000000000000015","value":"job1","modifiedIndex":15,"createdIndex":15}}"#,
    );
    api.call("POST", "/v2/keys/queue", Some("value=job2")).await.is(
        201,
        16,
        r#"{"action":"create","node":{"key":"/queue/00000000000000000016","value":"job2","modifiedIndex":16,"createdIndex":16}}"#,
    );
    api.get("/v2/keys/queue?recursive=true&sorted=true").await.is(
        200,
        16,
        r#"{"action":"get","node":{"key":"/queue","dir":true,"nodes":[{"key":"/queue/00000000000000000015","value":"job1","modifiedIndex":15,"createdIndex":15},{"key":"/queue/00000000000000000016","value":"job2","modifiedIndex":16,"createdIndex":16}],"modifiedIndex":15,"createdIndex":15}}"#,
    );
    // The consumer takes the head only if it is still the one it saw.
    api.call("DELETE", "/v2/keys/queue/00000000000000000015?prevIndex=15", None)
        .await
        .is(
            200,
            17,
            r#"{"action":"compareAndDelete","node":{"key":"/queue/00000000000000000015","modifiedIndex":17,"createdIndex":15},"prevNode":{"key":"/queue/00000000000000000015","value":"job1","modifiedIndex":15,"createdIndex":15}}"#,
        );
    api.call(
        "DELETE",
        "/v2/keys/queue/00000000000000000016?prevIndex=15",
        None,
    )
    .await
    .is(
        412,
        17,
        r#"{"errorCode":101,"message":"Compare failed","cause":"[15 != 16]","index":17}"#,
    );
    // Waiting for the condition "a new item after index 17".
    let mut w = api
        .watch("/v2/keys/queue?wait=true&recursive=true&waitIndex=18")
        .await;
    assert_eq!(w.etcd_index, 17);
    assert_eq!(w.ready(), None);
    api.call("POST", "/v2/keys/queue", Some("value=job3")).await;
    assert_eq!(
        w.next().await.unwrap(),
        "{\"action\":\"create\",\"node\":{\"key\":\"/queue/00000000000000000018\",\"value\":\"job3\",\"modifiedIndex\":18,\"createdIndex\":18}}\n"
    );
    api.get("/v2/keys/queue?recursive=true&sorted=true").await.is(
        200,
        18,
        r#"{"action":"get","node":{"key":"/queue","dir":true,"nodes":[{"key":"/queue/00000000000000000016","value":"job2","modifiedIndex":16,"createdIndex":16},{"key":"/queue/00000000000000000018","value":"job3","modifiedIndex":18,"createdIndex":18}],"modifiedIndex":15,"createdIndex":15}}"#,
    );
    api.call("DELETE", "/v2/keys/queue?dir=true", None)
        .await
        .is(
            403,
            18,
            r#"{"errorCode":108,"message":"Directory not empty","cause":"/queue","index":18}"#,
        );
}

#[tokio::test]
async fn store_errors_have_etcd_statuses() {
    let api = Api::new();
    api.put("/v2/keys/a/b", "value=x").await.is(
        201,
        4,
        r#"{"action":"set","node":{"key":"/a/b","value":"x","modifiedIndex":4,"createdIndex":4}}"#,
    );
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        (
            "GET",
            "/v2/keys/message",
            None,
            404,
            r#"{"errorCode":100,"message":"Key not found","cause":"/message","index":4}"#,
        ),
        (
            "PUT",
            "/v2/keys/a/b/c",
            Some("value=x"),
            400,
            r#"{"errorCode":104,"message":"Not a directory","cause":"/a/b","index":4}"#,
        ),
        (
            "PUT",
            "/v2/keys/a",
            Some("value=x"),
            403,
            r#"{"errorCode":102,"message":"Not a file","cause":"/a","index":4}"#,
        ),
        (
            "DELETE",
            "/v2/keys/a",
            None,
            403,
            r#"{"errorCode":102,"message":"Not a file","cause":"/a","index":4}"#,
        ),
        (
            "DELETE",
            "/v2/keys/a?dir=true",
            None,
            403,
            r#"{"errorCode":108,"message":"Directory not empty","cause":"/a","index":4}"#,
        ),
        (
            "DELETE",
            "/v2/keys/",
            None,
            400,
            r#"{"errorCode":107,"message":"Root is read only","cause":"/","index":4}"#,
        ),
        (
            "PUT",
            "/v2/keys/",
            Some("value=x"),
            400,
            r#"{"errorCode":107,"message":"Root is read only","cause":"/","index":4}"#,
        ),
        (
            "PUT",
            "/v2/keys/a/b?prevExist=false",
            Some("value=x"),
            412,
            r#"{"errorCode":105,"message":"Key already exists","cause":"/a/b","index":4}"#,
        ),
        (
            "PUT",
            "/v2/keys/a/b?prevValue=two&prevIndex=1",
            Some("value=x"),
            412,
            r#"{"errorCode":101,"message":"Compare failed","cause":"[two != x] [1 != 4]","index":4}"#,
        ),
        (
            "PUT",
            "/v2/keys/nokey?prevExist=true",
            Some("value=x"),
            404,
            r#"{"errorCode":100,"message":"Key not found","cause":"/nokey","index":4}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?refresh=true&ttl=10",
            None,
            403,
            r#"{"errorCode":102,"message":"Not a file","cause":"/a","index":4}"#,
        ),
        // compare-and-delete of the root: etcd reports the root itself, which trims to "".
        (
            "DELETE",
            "/v2/keys/?prevValue=x",
            None,
            403,
            r#"{"errorCode":102,"message":"Not a file","index":4}"#,
        ),
        (
            "POST",
            "/v2/keys/a/b",
            Some("value=y"),
            400,
            r#"{"errorCode":104,"message":"Not a directory","cause":"/a/b","index":4}"#,
        ),
    ];
    for (method, uri, form, status, body) in cases {
        api.call(method, uri, *form).await.is(*status, 4, body);
    }
    assert_eq!(
        api.backend.store().read().index(),
        4,
        "no error changed anything"
    );
}

#[tokio::test]
async fn form_errors_match_etcd() {
    let api = Api::new();
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "PUT",
            "/v2/keys/a?ttl=abc",
            Some("value=y"),
            r#"{"errorCode":202,"message":"The given TTL in POST form is not a number","cause":"invalid value for \"ttl\"","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?ttl=-1",
            Some("value=y"),
            r#"{"errorCode":202,"message":"The given TTL in POST form is not a number","cause":"invalid value for \"ttl\"","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?ttl=5",
            Some("ttl=x&value=1"),
            r#"{"errorCode":202,"message":"The given TTL in POST form is not a number","cause":"invalid value for \"ttl\"","index":0}"#,
        ),
        (
            "GET",
            "/v2/keys/a?recursive=maybe",
            None,
            r#"{"errorCode":209,"message":"Invalid field","cause":"invalid value for \"recursive\"","index":0}"#,
        ),
        (
            "GET",
            "/v2/keys/a?recursive",
            None,
            r#"{"errorCode":209,"message":"Invalid field","cause":"invalid value for \"recursive\"","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?prevIndex=x",
            Some("value=y"),
            r#"{"errorCode":203,"message":"The given index in POST form is not a number","cause":"invalid value for \"prevIndex\"","index":0}"#,
        ),
        (
            "GET",
            "/v2/keys/a?waitIndex=x&wait=true",
            None,
            r#"{"errorCode":203,"message":"The given index in POST form is not a number","cause":"invalid value for \"waitIndex\"","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?prevValue=",
            Some("value=y"),
            r#"{"errorCode":201,"message":"PrevValue is Required in POST form","cause":"\"prevValue\" cannot be empty","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?wait=true",
            Some("value=y"),
            r#"{"errorCode":209,"message":"Invalid field","cause":"\"wait\" can only be used with GET requests","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?refresh=true",
            Some("value=y"),
            r#"{"errorCode":211,"message":"Value provided on refresh","cause":"A value was provided on a refresh","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?refresh=true",
            None,
            r#"{"errorCode":212,"message":"A TTL must be provided on refresh","cause":"No TTL value set","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?prevExist=maybe",
            Some("value=y"),
            r#"{"errorCode":209,"message":"Invalid field","cause":"invalid value for prevExist","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?refresh=",
            None,
            r#"{"errorCode":209,"message":"Invalid field","cause":"invalid value for refresh","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a?noValueOnSuccess=x",
            Some("value=2"),
            r#"{"errorCode":209,"message":"Invalid field","cause":"invalid value for \"noValueOnSuccess\"","index":0}"#,
        ),
        (
            "GET",
            "/v2/keys/a?x=%zz",
            None,
            r#"{"errorCode":210,"message":"Invalid POST form","cause":"invalid URL escape \"%zz\"","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a",
            Some("value=%zz"),
            r#"{"errorCode":210,"message":"Invalid POST form","cause":"invalid URL escape \"%zz\"","index":0}"#,
        ),
        (
            "PUT",
            "/v2/keys/a",
            Some("value=a;b"),
            r#"{"errorCode":210,"message":"Invalid POST form","cause":"invalid semicolon separator in query","index":0}"#,
        ),
    ];
    for (method, uri, form, body) in cases {
        api.call(method, uri, *form).await.is(400, 0, body);
    }
    // A bad Content-Type, and a form over Go's 10 MiB.
    let req = Request::put("/v2/keys/a")
        .header("content-type", ";;")
        .body(Body::from("value=1"))
        .unwrap();
    api.send(req).await.is(
        400,
        0,
        r#"{"errorCode":210,"message":"Invalid POST form","cause":"mime: no media type","index":0}"#,
    );
    let big = format!("value={}", "a".repeat(10 << 20));
    api.put("/v2/keys/big", &big).await.is(
        400,
        0,
        r#"{"errorCode":210,"message":"Invalid POST form","cause":"http: POST too large","index":0}"#,
    );
    // Unknown flags are ignored, as etcd does; a 2 MB value is fine.
    let two_mb = format!("value={}", "a".repeat(2_000_000));
    assert_eq!(api.put("/v2/keys/big?bogus=1", &two_mb).await.status, 201);
    assert_eq!(api.backend.store().read().index(), 4);
}

#[tokio::test]
async fn request_details_match_etcd() {
    let api = Api::new();
    // The body's value wins over the query's; the query is used when the body has none.
    api.put("/v2/keys/bad?value=q", "value=b").await.is(
        201,
        4,
        r#"{"action":"set","node":{"key":"/bad","value":"b","modifiedIndex":4,"createdIndex":4}}"#,
    );
    api.call("PUT", "/v2/keys/bad?value=q", None).await.is(
        200,
        5,
        r#"{"action":"set","node":{"key":"/bad","value":"q","modifiedIndex":5,"createdIndex":5},"prevNode":{"key":"/bad","value":"b","modifiedIndex":4,"createdIndex":4}}"#,
    );
    // Bodies that are not urlencoded forms are not read; DELETE bodies neither.
    let req = Request::put("/v2/keys/bad")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"value":"j"}"#))
        .unwrap();
    api.send(req).await.is(
        200,
        6,
        r#"{"action":"set","node":{"key":"/bad","value":"","modifiedIndex":6,"createdIndex":6},"prevNode":{"key":"/bad","value":"q","modifiedIndex":5,"createdIndex":5}}"#,
    );
    let req = Request::put("/v2/keys/bad")
        .header(
            "content-type",
            "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8",
        )
        .body(Body::from("value=up"))
        .unwrap();
    assert_eq!(api.send(req).await.status, 200);
    let req = Request::delete("/v2/keys/bad?prevValue=up")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("prevValue=nope"))
        .unwrap();
    assert_eq!(api.send(req).await.status, 200);
    // noValueOnSuccess, quorum reads, plus signs and escapes in keys and values.
    api.put("/v2/keys/message?noValueOnSuccess=true", "value=x")
        .await
        .is(201, 9, r#"{"action":"set"}"#);
    api.get("/v2/keys/message?quorum=true").await.is(
        200,
        9,
        r#"{"action":"get","node":{"key":"/message","value":"x","modifiedIndex":9,"createdIndex":9}}"#,
    );
    // wait=true with quorum=true is a quorum read, as in etcd.
    api.get("/v2/keys/message?wait=true&quorum=true").await.is(
        200,
        9,
        r#"{"action":"get","node":{"key":"/message","value":"x","modifiedIndex":9,"createdIndex":9}}"#,
    );
    api.call("PUT", "/v2/keys/plus+sign?value=a+b", None).await.is(
        201,
        10,
        r#"{"action":"set","node":{"key":"/plus+sign","value":"a b","modifiedIndex":10,"createdIndex":10}}"#,
    );
    api.put("/v2/keys/sp%20ace", "value=1").await.is(
        201,
        11,
        r#"{"action":"set","node":{"key":"/sp ace","value":"1","modifiedIndex":11,"createdIndex":11}}"#,
    );
    api.put("/v2/keys/esc", "value=%3Ca%26b%3E%22%5C%01%09%C3%A9").await.is(
        201,
        12,
        r#"{"action":"set","node":{"key":"/esc","value":"\u003ca\u0026b\u003e\"\\\u0001\té","modifiedIndex":12,"createdIndex":12}}"#,
    );
    // Huge TTLs wrap like Go's time arithmetic: ttl=9223372036 ends up permanent.
    api.put("/v2/keys/bad?ttl=9223372036", "value=1").await.is(
        201,
        13,
        r#"{"action":"set","node":{"key":"/bad","value":"1","modifiedIndex":13,"createdIndex":13}}"#,
    );
    // The root has no key; HEAD has the headers and no body.
    let root = api.get("/v2/keys?sorted=true").await;
    assert!(root
        .body
        .starts_with(r#"{"action":"get","node":{"dir":true,"nodes":[{"key":"/bad","#));
    let head = api.call("HEAD", "/v2/keys/message", None).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    assert_eq!(head.header("x-etcd-index"), Some("13"));
    let head = api.call("HEAD", "/v2/keys/nope", None).await;
    assert_eq!((head.status.as_u16(), head.body.as_str()), (404, ""));
}

#[tokio::test]
async fn methods_and_unclean_paths_like_go() {
    let api = Api::new();
    let r = api.call("PATCH", "/v2/keys/a", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("HEAD,GET,PUT,POST,DELETE"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("x-etcd-cluster-id"), None);
    assert_eq!(r.body, "Method Not Allowed\n");
    let r = api.put("/v2/keys//double//slash/", "value=1").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/v2/keys/double/slash/"));
    assert_eq!(r.body, "");
    let r = api.get("/v2/keys//a?x=1").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/v2/keys/a?x=1"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        r.body,
        "<a href=\"/v2/keys/a?x=1\">Moved Permanently</a>.\n\n"
    );
    let r = api.put("/v2/keys/double/../slash2", "value=1").await;
    assert_eq!(r.header("location"), Some("/v2/keys/slash2"));
    assert_eq!(api.backend.store().read().index(), 3);
}

#[tokio::test]
async fn stream_watch_and_history_window() {
    let api = Api::new();
    let mut w = api
        .watch("/v2/keys/cfg?wait=true&recursive=true&stream=true")
        .await;
    api.put("/v2/keys/cfg/a", "value=1").await;
    api.put("/v2/keys/cfg/b", "value=2").await;
    api.put("/v2/keys/cfg/_h", "value=2").await;
    api.call("DELETE", "/v2/keys/cfg?recursive=true", None)
        .await;
    let delete = "{\"action\":\"delete\",\"node\":{\"key\":\"/cfg\",\"dir\":true,\"modifiedIndex\":7,\"createdIndex\":4},\"prevNode\":{\"key\":\"/cfg\",\"dir\":true,\"modifiedIndex\":4,\"createdIndex\":4}}\n";
    let mut lines = Vec::new();
    for _ in 0..4 {
        lines.push(w.next().await.unwrap());
    }
    assert_eq!(
        lines,
        vec![
            "{\"action\":\"set\",\"node\":{\"key\":\"/cfg/a\",\"value\":\"1\",\"modifiedIndex\":4,\"createdIndex\":4}}\n".to_string(),
            "{\"action\":\"set\",\"node\":{\"key\":\"/cfg/b\",\"value\":\"2\",\"modifiedIndex\":5,\"createdIndex\":5}}\n".to_string(),
            // etcd sends a recursive delete twice to a stream on the deleted directory.
            delete.to_string(),
            delete.to_string(),
        ]
    );
    assert_eq!(w.ready(), None, "the stream stays open");
    drop(w);
    assert_eq!(api.backend.store().read().watcher_count(), 0);

    for i in 0..1005 {
        api.put("/v2/keys/load", &format!("value={i}")).await;
    }
    api.get("/v2/keys/load?wait=true&waitIndex=10").await.is(
        400,
        1012,
        r#"{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [13/10]","index":1012}"#,
    );
    let mut w = api
        .watch("/v2/keys/load?wait=true&waitIndex=50&recursive=true")
        .await;
    assert_eq!(w.etcd_index, 1012);
    assert_eq!(
        w.next().await.unwrap(),
        "{\"action\":\"set\",\"node\":{\"key\":\"/load\",\"value\":\"42\",\"modifiedIndex\":50,\"createdIndex\":50},\"prevNode\":{\"key\":\"/load\",\"value\":\"41\",\"modifiedIndex\":49,\"createdIndex\":49}}\n"
    );
}

#[tokio::test]
async fn members_machines_and_stats() {
    let api = Api::new();
    let members = api.get("/v2/members").await;
    assert_eq!(members.status, 200);
    assert_eq!(members.header("x-etcd-cluster-id"), Some(CLUSTER_ID));
    assert_eq!(members.header("content-type"), Some("application/json"));
    assert_eq!(
        members.body,
        "{\"members\":[{\"id\":\"2e1259d415f2a040\",\"name\":\"n1\",\"peerURLs\":[\"http://127.0.0.1:23800\"],\"clientURLs\":[\"http://127.0.0.1:23790\"]}]}\n"
    );
    assert_eq!(api.get("/v2/members/").await.body, members.body);
    assert_eq!(
        api.get("/v2/members/leader").await.body,
        "{\"id\":\"2e1259d415f2a040\",\"name\":\"n1\",\"peerURLs\":[\"http://127.0.0.1:23800\"],\"clientURLs\":[\"http://127.0.0.1:23790\"]}\n"
    );
    let json = |method: &str, uri: &str, ct: Option<&str>, body: &str| {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (
            json("GET", "/v2/members/foo", None, ""),
            404,
            r#"{"message":"Not found"}"#,
        ),
        (
            json(
                "POST",
                "/v2/members",
                Some("application/x-www-form-urlencoded"),
                r#"{"peerURLs":["http://127.0.0.1:23800"]}"#,
            ),
            415,
            r#"{"message":"Bad Content-Type application/x-www-form-urlencoded, accept application/json"}"#,
        ),
        (
            json(
                "POST",
                "/v2/members",
                Some("application/json"),
                r#"{"peerURLs":["bad"]}"#,
            ),
            400,
            r#"{"message":"URL scheme must be http, https, unix, or unixs: bad"}"#,
        ),
        (
            json("DELETE", "/v2/members/zz", None, ""),
            404,
            r#"{"message":"No such member: zz"}"#,
        ),
        (
            json("DELETE", "/v2/members/1234", None, ""),
            404,
            r#"{"message":"No such member: 1234"}"#,
        ),
        (
            json(
                "PUT",
                "/v2/members/1234",
                Some("application/json"),
                r#"{"peerURLs":["http://127.0.0.1:23809"]}"#,
            ),
            404,
            r#"{"message":"No such member: 1234"}"#,
        ),
        // Membership changes need raft: the local backend refuses them, with etcd's 500.
        (
            json(
                "POST",
                "/v2/members",
                Some("application/json"),
                r#"{"peerURLs":["http://127.0.0.1:23801"]}"#,
            ),
            500,
            r#"{"message":"Internal Server Error"}"#,
        ),
    ];
    for (req, status, body) in cases {
        let r = api.send(req).await;
        assert_eq!((r.status.as_u16(), r.body.as_str()), (status, body));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-etcd-cluster-id"), Some(CLUSTER_ID));
    }
    let r = api.call("DELETE", "/v2/members", None).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (405, "Method Not Allowed\n")
    );
    assert_eq!(r.header("x-etcd-cluster-id"), Some(CLUSTER_ID));
    assert_eq!(r.header("allow"), None);
    let r = api.call("PATCH", "/v2/members", None).await;
    assert_eq!(r.header("allow"), Some("GET,POST,DELETE,PUT"));
    assert_eq!(r.header("x-etcd-cluster-id"), None);

    let r = api.get("/v2/machines").await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (200, "http://127.0.0.1:23790")
    );
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        api.call("POST", "/v2/machines", None).await.header("allow"),
        Some("GET,HEAD")
    );

    let r = api.get("/v2/stats/leader").await;
    assert_eq!(r.body, r#"{"leader":"2e1259d415f2a040","followers":{}}"#);
    let r = api.call("POST", "/v2/stats/store", None).await;
    assert_eq!((r.status.as_u16(), r.header("allow")), (405, Some("GET")));
    api.get("/v2/keys/nope").await;
    let r = api.get("/v2/stats/store").await;
    // getsFail: the missing key, and etcd's auth probe (a failed get of `/2/enabled`) for
    // that request and for each of the 7 membership changes above that passed the method
    // check.
    assert_eq!(
        r.body,
        r#"{"getsSuccess":0,"getsFail":9,"setsSuccess":2,"setsFail":0,"deleteSuccess":0,"deleteFail":0,"updateSuccess":0,"updateFail":0,"createSuccess":1,"createFail":0,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}"#
    );
    let r = api.get("/v2/stats/self").await;
    assert!(r.body.starts_with(
        r#"{"name":"n1","id":"2e1259d415f2a040","state":"StateLeader","startTime":""#
    ));
}
