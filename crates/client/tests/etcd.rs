//! The client against a real etcd (`/usr/bin/etcd`, or `$CHORUS_TEST_ETCD`): one single-member
//! server per test, on free 127.0.0.1 ports in a temporary directory. Without etcd the
//! tests print a skip note and pass, except under `CI=true`, where etcd is required.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_client::mvccpb::event::EventType;
use chorus_client::{
    messages, pb, prefix_range_end, Client, Cmp, CompareResult, ConnectOptions, DeleteOptions,
    Error, GetOptions, Op, PutOptions, SortOrder, SortTarget, Txn, WatchOptions,
};
use futures::StreamExt;
use tonic::Code;

/// A bounded wait for one stream message in these tests.
const STEP: Duration = Duration::from_secs(10);

fn etcd_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("CHORUS_TEST_ETCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    if bin.exists() {
        return Some(bin);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "etcd is required under CI=true but {} is missing",
            bin.display()
        );
    }
    eprintln!("skipping: etcd not found at {}", bin.display());
    None
}

use chorus_testports::free_port;

/// One etcd member; killed (and reaped) on drop.
struct Etcd {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Etcd {
    async fn start() -> Option<Etcd> {
        let bin = etcd_bin()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, peer) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = dir.path().join("etcd.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(bin);
        // Flags only: an ETCD_* variable of the developer's shell must not change the server.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(name);
            }
        }
        let child = cmd
            .arg("--name=m0")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={url}"))
            .arg(format!("--advertise-client-urls={url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=m0={peer_url}"))
            .args(["--heartbeat-interval=50", "--election-timeout=500"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("spawn etcd");
        let mut etcd = Etcd {
            child,
            url,
            log,
            _dir: dir,
        };
        etcd.wait_ready().await;
        Some(etcd)
    }

    /// Polls Status until the member reports a leader; bounded by a deadline.
    async fn wait_ready(&mut self) {
        let client = Client::connect(&[&self.url], ConnectOptions::default())
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("etcd exited with {status}:\n{}", self.log_text());
            }
            if matches!(client.status().await, Ok(s) if s.leader != 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("etcd not ready in 15 s:\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn client(&self) -> Client {
        Client::connect(&[&self.url], ConnectOptions::default())
            .await
            .unwrap()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- etcd log ---\n{}", self.log_text());
        }
    }
}

async fn next<S: futures::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(STEP, stream.next())
        .await
        .expect("no stream message within the bound")
        .expect("stream ended")
}

fn keys(resp: &pb::RangeResponse) -> Vec<String> {
    resp.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

#[tokio::test]
async fn put_get_delete_with_options() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let c = etcd.client().await;

    let first = c.put("a/1", "one", PutOptions::default()).await.unwrap();
    let rev1 = first.header.unwrap().revision;
    c.put("a/2", "two", PutOptions::default()).await.unwrap();
    c.put("a/3", "three", PutOptions::default()).await.unwrap();
    c.put("b", "bee", PutOptions::default()).await.unwrap();

    let one = c.get("a/1", GetOptions::default()).await.unwrap();
    assert_eq!(one.count, 1);
    assert_eq!(one.kvs[0].value, b"one");
    assert_eq!(one.kvs[0].create_revision, rev1);
    assert_eq!(one.kvs[0].version, 1);

    let prefix = GetOptions {
        prefix: true,
        ..Default::default()
    };
    assert_eq!(
        keys(&c.get("a/", prefix.clone()).await.unwrap()),
        ["a/1", "a/2", "a/3"]
    );

    let limited = c
        .get(
            "a/",
            GetOptions {
                limit: 2,
                ..prefix.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (limited.kvs.len(), limited.more, limited.count),
        (2, true, 3)
    );

    let from = GetOptions {
        from_key: true,
        ..Default::default()
    };
    assert_eq!(keys(&c.get("a/3", from).await.unwrap()), ["a/3", "b"]);
    let everything = GetOptions {
        prefix: true,
        ..Default::default()
    };
    assert_eq!(keys(&c.get("", everything).await.unwrap()).len(), 4);

    let range = GetOptions {
        range_end: Some(b"a/3".to_vec()),
        ..Default::default()
    };
    assert_eq!(keys(&c.get("a/1", range).await.unwrap()), ["a/1", "a/2"]);

    let desc = GetOptions {
        sort: Some((SortTarget::Key, SortOrder::Descend)),
        ..prefix.clone()
    };
    assert_eq!(
        keys(&c.get("a/", desc).await.unwrap()),
        ["a/3", "a/2", "a/1"]
    );

    let keys_only = c
        .get(
            "a/1",
            GetOptions {
                keys_only: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(keys_only.kvs[0].value.is_empty());
    let count_only = c
        .get(
            "a/",
            GetOptions {
                count_only: true,
                ..prefix.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!((count_only.count, count_only.kvs.len()), (3, 0));
    let serializable = c
        .get(
            "b",
            GetOptions {
                serializable: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(serializable.kvs[0].value, b"bee");
    let newer = c
        .get(
            "a/",
            GetOptions {
                min_mod_revision: rev1 + 1,
                ..prefix.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&newer), ["a/2", "a/3"]);

    let prev = c
        .put(
            "a/1",
            "uno",
            PutOptions {
                prev_kv: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(prev.prev_kv.unwrap().value, b"one");
    let old = c
        .get(
            "a/1",
            GetOptions {
                revision: rev1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(old.kvs[0].value, b"one");

    let deleted = c
        .delete(
            "a/",
            DeleteOptions {
                prefix: true,
                prev_kv: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted.deleted, 3);
    assert_eq!(deleted.prev_kvs.len(), 3);
    assert_eq!(c.get("a/", prefix).await.unwrap().count, 0);

    let both = GetOptions {
        prefix: true,
        from_key: true,
        ..Default::default()
    };
    assert!(matches!(c.get("x", both).await, Err(Error::InvalidArgs(_))));
}

#[tokio::test]
async fn server_errors_keep_code_and_message() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let c = etcd.client().await;

    let err = c.put("", "v", PutOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert_eq!(err.message(), Some(messages::EMPTY_KEY));

    let ignore_value = PutOptions {
        ignore_value: true,
        ..Default::default()
    };
    let err = c.put("k", "v", ignore_value.clone()).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert_eq!(err.message(), Some("etcdserver: value is provided"));
    let err = c.put("k", "", ignore_value).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert_eq!(err.message(), Some("etcdserver: key not found"));

    let err = c
        .get(
            "k",
            GetOptions {
                revision: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::OutOfRange));
    assert_eq!(err.message(), Some(messages::FUTURE_REV));
    assert!(!err.is_connect_error());
}

#[tokio::test]
async fn txn_compares_and_branches() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let c = etcd.client().await;
    let put = c.put("k", "v1", PutOptions::default()).await.unwrap();
    let rev = put.header.unwrap().revision;

    let txn = Txn::new()
        .when([
            Cmp::value("k", CompareResult::Equal, "v1"),
            Cmp::mod_revision("k", CompareResult::Equal, rev),
            Cmp::version("missing", CompareResult::Equal, 0),
        ])
        .and_then([
            Op::put("k", "v2", &PutOptions::default()),
            Op::get("k", &GetOptions::default()),
        ])
        .or_else([Op::delete("k", &DeleteOptions::default())]);
    let resp = c.txn(txn.clone()).await.unwrap();
    assert!(resp.succeeded);
    assert_eq!(resp.header.unwrap().revision, rev + 1);
    match &resp.responses[1].response {
        Some(pb::response_op::Response::ResponseRange(r)) => assert_eq!(r.kvs[0].value, b"v2"),
        other => panic!("expected a range response, got {other:?}"),
    }

    // The same guards fail now (value is v2), so the failure branch deletes the key.
    let resp = c.txn(txn).await.unwrap();
    assert!(!resp.succeeded);
    match &resp.responses[0].response {
        Some(pb::response_op::Response::ResponseDeleteRange(d)) => assert_eq!(d.deleted, 1),
        other => panic!("expected a delete response, got {other:?}"),
    }

    let nested = Txn::new()
        .when([Cmp::with_prefix(Cmp::version("k", CompareResult::Equal, 0))])
        .and_then([Op::txn(Txn::new().and_then([Op::put(
            "n",
            "1",
            &PutOptions::default(),
        )]))]);
    assert!(c.txn(nested).await.unwrap().succeeded);
    assert_eq!(c.get("n", GetOptions::default()).await.unwrap().count, 1);
}

#[tokio::test]
async fn compact_hash_status_members() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let c = etcd.client().await;
    let mut rev = 0;
    for i in 0..5 {
        rev = c
            .put("k", format!("v{i}"), PutOptions::default())
            .await
            .unwrap()
            .header
            .unwrap()
            .revision;
    }
    let hash_before = c.hash_kv(rev).await.unwrap();
    assert_eq!(hash_before.header.unwrap().revision, rev);

    c.compact(rev - 1, true).await.unwrap();
    let err = c
        .get(
            "k",
            GetOptions {
                revision: rev - 2,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::OutOfRange));
    assert_eq!(err.message(), Some(messages::COMPACTED));
    let err = c.compact(rev - 2, false).await.unwrap_err();
    assert_eq!(err.message(), Some(messages::COMPACTED));
    assert_eq!(c.hash_kv(rev).await.unwrap().compact_revision, rev - 1);

    let status = c.status().await.unwrap();
    let header = status.header.unwrap();
    assert_eq!(status.version, "3.4.23");
    assert_eq!(status.leader, header.member_id);
    assert!(status.raft_index > 0);
    assert!(status.db_size > 0);

    let members = c.member_list().await.unwrap();
    assert_eq!(members.members.len(), 1);
    let m = &members.members[0];
    assert_eq!(m.id, header.member_id);
    assert_eq!(m.name, "m0");
    assert_eq!(m.client_ur_ls, std::slice::from_ref(&etcd.url));
}

#[tokio::test]
async fn watch_events_and_cancel() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let c = etcd.client().await;
    let opts = WatchOptions {
        prefix: true,
        prev_kv: true,
        ..Default::default()
    };
    let mut watch = c.watch("w/", opts).await.unwrap();
    assert!(watch.created().created);

    c.put("w/a", "1", PutOptions::default()).await.unwrap();
    c.put("w/a", "2", PutOptions::default()).await.unwrap();
    c.put("other", "x", PutOptions::default()).await.unwrap();
    c.delete("w/a", DeleteOptions::default()).await.unwrap();

    let mut events = Vec::new();
    for _ in 0..3 {
        let resp = next(&mut watch).await.unwrap();
        assert_eq!(resp.watch_id, watch.watch_id());
        events.extend(resp.events);
        if events.len() >= 3 {
            break;
        }
    }
    let kinds: Vec<_> = events.iter().map(|e| e.r#type).collect();
    let (put, del) = (EventType::Put as i32, EventType::Delete as i32);
    assert_eq!(kinds, [put, put, del]);
    assert_eq!(events[1].prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(events[2].prev_kv.as_ref().unwrap().value, b"2");

    watch.cancel().await.unwrap();
    let resp = next(&mut watch).await.unwrap();
    assert!(resp.canceled);

    // A watcher from an old revision replays history.
    let first_rev = events[0].kv.as_ref().unwrap().mod_revision;
    let replay = WatchOptions {
        start_revision: first_rev,
        ..Default::default()
    };
    let mut watch = c.watch("w/a", replay).await.unwrap();
    let resp = next(&mut watch).await.unwrap();
    assert_eq!(resp.events.len(), 3);
}

#[tokio::test]
async fn watch_from_compacted_revision_is_canceled() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let c = etcd.client().await;
    for i in 0..3 {
        c.put("k", format!("{i}"), PutOptions::default())
            .await
            .unwrap();
    }
    let rev = c
        .put("k", "last", PutOptions::default())
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    c.compact(rev, true).await.unwrap();
    let opts = WatchOptions {
        start_revision: 2,
        ..Default::default()
    };
    // etcd 3.4 confirms the watcher, then cancels it with the compaction revision.
    let mut watch = c.watch("k", opts).await.unwrap();
    let resp = next(&mut watch).await.unwrap();
    assert!(resp.canceled);
    assert_eq!(resp.compact_revision, rev);
}

#[tokio::test]
async fn leases() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let c = etcd.client().await;
    let grant = c.lease_grant(60, 0).await.unwrap();
    assert_eq!(grant.ttl, 60);
    let id = grant.id;
    c.put(
        "l",
        "v",
        PutOptions {
            lease: id,
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let ttl = c.lease_time_to_live(id, true).await.unwrap();
    assert_eq!(ttl.granted_ttl, 60);
    assert!(ttl.ttl > 0 && ttl.ttl <= 60);
    assert_eq!(ttl.keys, [b"l".to_vec()]);
    let all = c.leases().await.unwrap();
    assert_eq!(all.leases.iter().map(|l| l.id).collect::<Vec<_>>(), [id]);

    let (sender, mut stream) = c.lease_keep_alive(id).await.unwrap();
    let first = next(&mut stream).await.unwrap();
    assert_eq!((first.id, first.ttl), (id, 60));
    sender.keep_alive().await.unwrap();
    assert_eq!(next(&mut stream).await.unwrap().ttl, 60);

    c.lease_revoke(id).await.unwrap();
    assert_eq!(c.get("l", GetOptions::default()).await.unwrap().count, 0);
    assert_eq!(c.lease_time_to_live(id, false).await.unwrap().ttl, -1);
    sender.keep_alive().await.unwrap();
    assert!(next(&mut stream).await.unwrap().ttl <= 0);

    let err = c.lease_revoke(id).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound));
    assert_eq!(err.message(), Some(messages::LEASE_NOT_FOUND));

    let chosen = c.lease_grant(30, 0x1234).await.unwrap();
    assert_eq!(chosen.id, 0x1234);
}

#[tokio::test]
async fn fails_over_from_a_dead_endpoint() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let dead = format!("127.0.0.1:{}", free_port());
    let c = Client::connect(
        &[dead.as_str(), etcd.url.as_str()],
        ConnectOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(c.current_endpoint(), format!("http://{dead}"));
    // A write may fail over too: the connection was refused, so it was never sent.
    c.put("k", "v", PutOptions::default()).await.unwrap();
    assert_eq!(c.current_endpoint(), etcd.url);
    assert_eq!(c.get("k", GetOptions::default()).await.unwrap().count, 1);

    let pinned = c.for_endpoint(0).unwrap();
    let err = pinned.status().await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Unavailable));
    assert!(err.is_connect_error(), "{err:?}");

    let mut watch = c.watch("k", WatchOptions::default()).await.unwrap();
    c.delete("k", DeleteOptions::default()).await.unwrap();
    assert_eq!(next(&mut watch).await.unwrap().events.len(), 1);
}

#[tokio::test]
async fn all_endpoints_dead_is_unavailable() {
    let ports = [free_port(), free_port()];
    let endpoints: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let c = Client::connect(&endpoints, ConnectOptions::default())
        .await
        .unwrap();
    let err = c.get("k", GetOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Unavailable));
    assert!(err.is_connect_error());
}

#[tokio::test]
async fn connect_rejects_bad_endpoints() {
    let none: [&str; 0] = [];
    let opts = ConnectOptions::default;
    assert!(matches!(
        Client::connect(&none, opts()).await,
        Err(Error::NoEndpoints)
    ));
    assert!(matches!(
        Client::connect(&["unix:///tmp/sock"], opts()).await,
        Err(Error::InvalidEndpoint { .. })
    ));
    assert!(matches!(
        Client::connect(&["127.0.0.1:2379/path"], opts()).await,
        Err(Error::InvalidEndpoint { .. })
    ));
    // TLS by scheme, or for scheme-less endpoints when TLS options are given.
    let tls = ConnectOptions {
        tls: Some(chorus_client::TlsOptions {
            insecure_skip_verify: true,
            ..Default::default()
        }),
        ..opts()
    };
    let c = Client::connect(
        &[
            "127.0.0.1:2379",
            "https://127.0.0.1:2380",
            "http://127.0.0.1:2381",
        ],
        tls,
    )
    .await
    .unwrap();
    assert_eq!(
        c.endpoints(),
        [
            "https://127.0.0.1:2379",
            "https://127.0.0.1:2380",
            "http://127.0.0.1:2381"
        ]
    );
    let bad = ConnectOptions {
        tls: Some(chorus_client::TlsOptions {
            cert_pem: Some(b"x".to_vec()),
            ..Default::default()
        }),
        ..opts()
    };
    assert!(matches!(
        Client::connect(&["127.0.0.1:2379"], bad).await,
        Err(Error::Tls(_))
    ));
    let c = Client::connect(&["127.0.0.1:2379", "http://127.0.0.1:2380/"], opts())
        .await
        .unwrap();
    assert_eq!(
        c.endpoints(),
        ["http://127.0.0.1:2379", "http://127.0.0.1:2380"]
    );
    assert!(c.for_endpoint(2).is_none());
}

#[test]
fn prefix_end_is_etcds() {
    assert_eq!(prefix_range_end(b"abc"), b"abd");
    assert_eq!(prefix_range_end(b"\xff"), b"\0");
}
