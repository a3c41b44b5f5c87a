//! The client's authentication against real servers with auth enabled (etcd 3.4 and 3.5
//! now; `CHORUS_AUTH_TEST_SERVERS=chorus` later): login, the token on every service's
//! calls and streams, wrong passwords, a user with a prefix permission, and tokens that
//! expire (`--auth-token-ttl=1`, awaited through the server's own log lines) or are
//! revoked (auth disable + enable), each replaced with one Authenticate.

#[path = "../../../tests/common/auth_server.rs"]
mod auth_server;

use std::path::Path;
use std::time::Duration;

use auth_server::{free_low_port, servers_under_test, AuthServer, ServerSpec};
use chorus_api::v3electionpb::{CampaignRequest, LeaderRequest, ResignRequest};
use chorus_api::v3lockpb::{LockRequest, UnlockRequest};
use chorus_client::pb::{AuthUserListRequest, MemberListRequest, RangeRequest, StatusRequest};
use chorus_client::{
    is_token_refused, messages, Client, ConnectOptions, Credentials, Error, GetOptions, PutOptions,
    TokenSource, WatchOptions,
};
use futures::StreamExt;
use tonic::Code;

const STEP: Duration = Duration::from_secs(10);

fn servers() -> Vec<ServerSpec> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    servers_under_test(&workspace, None)
}

fn opts(user: &str, password: &str) -> ConnectOptions {
    ConnectOptions {
        credentials: Some(Credentials::new(user, password)),
        ..ConnectOptions::default()
    }
}

async fn login(server: &AuthServer, user: &str, password: &str) -> Client {
    Client::connect(&[server.endpoint()], opts(user, password))
        .await
        .unwrap_or_else(|e| panic!("{}: login as {user}: {e}", server.spec.name()))
}

/// A server with auth on, root (`pw`) and alice (`apw`, read-write on prefix `a/`).
async fn with_alice(spec: &ServerSpec, flags: &[&str]) -> AuthServer {
    let s = AuthServer::start(spec, flags).await;
    s.enable_auth("pw").await;
    for args in [
        &["user", "add", "alice:apw"][..],
        &["role", "add", "ra"],
        &[
            "role",
            "grant-permission",
            "ra",
            "readwrite",
            "a/",
            "--prefix",
        ],
        &["user", "grant-role", "alice", "ra"],
    ] {
        let mut all = vec!["--user=root:pw"];
        all.extend_from_slice(args);
        s.etcdctl(&all).await;
    }
    s
}

async fn next<S: futures::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(STEP, stream.next())
        .await
        .expect("no stream message within the bound")
        .expect("stream ended")
}

#[tokio::test]
async fn root_reaches_every_service_with_its_token() {
    for spec in servers() {
        let s = AuthServer::start(&spec, &[]).await;
        s.enable_auth("pw").await;
        let c = login(&s, "root", "pw").await;
        assert!(c.has_token() && c.user() == Some("root"));
        let shown = format!("{c:?} {:?}", opts("root", "pw"));
        assert!(!shown.contains("\"pw\""), "{shown}");
        kv_lease_watch(&c).await;
        raw_clients(&c).await;
        // Without credentials the same calls are refused.
        let anon = Client::connect(&[s.endpoint()], ConnectOptions::default())
            .await
            .unwrap();
        let err = anon.get("k", GetOptions::default()).await.unwrap_err();
        assert_eq!(err.message(), Some(messages::USER_EMPTY), "{}", spec.name());
    }
}

async fn kv_lease_watch(c: &Client) {
    c.put("k", "v", PutOptions::default()).await.unwrap();
    assert_eq!(
        c.get("k", GetOptions::default()).await.unwrap().kvs[0].value,
        b"v"
    );
    let lease = c.lease_grant(30, 0).await.unwrap().id;
    let (sender, mut answers) = c.lease_keep_alive(lease).await.unwrap();
    assert_eq!(next(&mut answers).await.unwrap().id, lease);
    sender.keep_alive().await.unwrap();
    assert_eq!(next(&mut answers).await.unwrap().id, lease);
    let mut w = c.watch("w", WatchOptions::default()).await.unwrap();
    c.put("w", "1", PutOptions::default()).await.unwrap();
    assert_eq!(next(&mut w).await.unwrap().events.len(), 1);
    c.member_list().await.unwrap();
    c.status().await.unwrap();
}

async fn raw_clients(c: &Client) {
    let range = RangeRequest {
        key: b"k".to_vec(),
        ..Default::default()
    };
    c.kv_client().range(range).await.unwrap();
    let users = c
        .auth_client()
        .user_list(AuthUserListRequest {})
        .await
        .unwrap();
    assert_eq!(users.into_inner().users, ["root"]);
    c.maintenance_client()
        .status(StatusRequest {})
        .await
        .unwrap();
    c.cluster_client()
        .member_list(MemberListRequest::default())
        .await
        .unwrap();
    let lease = c.lease_grant(30, 0).await.unwrap().id;
    let locked = c
        .lock_client()
        .lock(LockRequest {
            name: b"l".to_vec(),
            lease,
        })
        .await
        .unwrap()
        .into_inner();
    c.lock_client()
        .unlock(UnlockRequest { key: locked.key })
        .await
        .unwrap();
    let campaign = CampaignRequest {
        name: b"e".to_vec(),
        lease,
        value: b"me".to_vec(),
    };
    let leader = c.election_client().campaign(campaign).await.unwrap();
    let leader = leader.into_inner().leader;
    let now = c
        .election_client()
        .leader(LeaderRequest {
            name: b"e".to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(now.into_inner().kv.unwrap().value, b"me");
    c.election_client()
        .resign(ResignRequest { leader })
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_password_unreachable_and_auth_not_enabled() {
    for spec in servers() {
        let s = AuthServer::start(&spec, &[]).await;
        // Auth not enabled yet: credentials are no error and no token is sent.
        let early = login(&s, "root", "pw").await;
        assert!(!early.has_token());
        early.put("k", "v", PutOptions::default()).await.unwrap();
        s.enable_auth("pw").await;
        // Now the server wants a token: the client gets one and sends the call again.
        early.put("k", "v2", PutOptions::default()).await.unwrap();
        assert!(early.has_token(), "{}", spec.name());

        let err = Client::connect(&[s.endpoint()], opts("root", "bad"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
        assert_eq!(err.message(), Some(messages::AUTH_FAILED));
        // clientv3's rule: an empty password means no authentication at all.
        let anon = login(&s, "root", "").await;
        assert!(anon.user().is_none() && !anon.has_token());
    }
    let nowhere = format!("127.0.0.1:{}", free_low_port());
    let quick = ConnectOptions {
        dial_timeout: Duration::from_millis(300),
        ..opts("root", "pw")
    };
    let err = Client::connect(&[nowhere], quick).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
}

#[tokio::test]
async fn a_prefix_permission_allows_and_denies() {
    for spec in servers() {
        let s = with_alice(&spec, &[]).await;
        let alice = login(&s, "alice", "apw").await;
        alice.put("a/1", "x", PutOptions::default()).await.unwrap();
        let denied = alice
            .put("b/1", "x", PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Some(Code::PermissionDenied));
        assert_eq!(denied.message(), Some(messages::PERMISSION_DENIED));
        let denied = alice.get("b/1", GetOptions::default()).await.unwrap_err();
        assert_eq!(denied.message(), Some(messages::PERMISSION_DENIED));
        let prefix = WatchOptions {
            prefix: true,
            ..Default::default()
        };
        let mut w = alice.watch("a/", prefix).await.unwrap();
        alice.put("a/2", "y", PutOptions::default()).await.unwrap();
        assert_eq!(
            next(&mut w).await.unwrap().events[0]
                .kv
                .as_ref()
                .unwrap()
                .key,
            b"a/2"
        );
        // A denied watcher: one new token is tried (etcd 3.5 words a stale token so), no more.
        s.barrier("root", "pw").await;
        let before = s.tokens_issued("alice").len();
        match alice.watch("b/1", WatchOptions::default()).await {
            Err(Error::WatchCanceled { reason, .. }) => {
                assert!(reason.ends_with(messages::PERMISSION_DENIED), "{reason}")
            }
            Err(other) => panic!("{}: {other}", spec.name()),
            Ok(_) => panic!("{}: a watch outside alice's prefix", spec.name()),
        }
        s.barrier("root", "pw").await;
        assert_eq!(
            s.tokens_issued("alice").len(),
            before + 1,
            "{}",
            spec.name()
        );
    }
}

#[tokio::test]
async fn an_expired_token_is_replaced_once_for_concurrent_calls() {
    for spec in servers() {
        let s = with_alice(&spec, &["--auth-token-ttl=1"]).await;
        let alice = login(&s, "alice", "apw").await;
        s.barrier("root", "pw").await;
        let first = s.tokens_issued("alice");
        assert_eq!(first.len(), 1, "{}", spec.name());
        s.wait_tokens_deleted(&first).await;
        let puts = (0..8).map(|i| {
            let c = alice.clone();
            tokio::spawn(async move { c.put(format!("a/{i}"), "v", PutOptions::default()).await })
        });
        for put in futures::future::join_all(puts).await {
            put.unwrap().unwrap();
        }
        s.barrier("root", "pw").await;
        let second = s.tokens_issued("alice");
        assert_eq!(second.len(), 2, "{}: one Authenticate for all", spec.name());

        // A watcher created with a stale token (etcd cancels it) is created again.
        let root = login(&s, "root", "pw").await;
        s.wait_tokens_deleted(&second).await;
        let mut w = alice.watch("a/w", WatchOptions::default()).await.unwrap();
        root.put("a/w", "1", PutOptions::default()).await.unwrap();
        assert_eq!(next(&mut w).await.unwrap().events.len(), 1);

        // Raw clients send the token; `with_token_retry` replaces a refused one.
        s.wait_tokens_deleted(&s.tokens_issued("alice")).await;
        let range = RangeRequest {
            key: b"a/1".to_vec(),
            ..Default::default()
        };
        let refused = alice.kv_client().range(range.clone()).await.unwrap_err();
        assert!(is_token_refused(&refused), "{refused:?}");
        let got = alice
            .with_token_retry(|| {
                let mut kv = alice.kv_client();
                let req = range.clone();
                async move { Ok(kv.range(req).await?.into_inner()) }
            })
            .await
            .unwrap();
        assert_eq!(got.kvs.len(), 1);
    }
}

#[tokio::test]
async fn tokens_revoked_by_auth_disable_and_enable() {
    for spec in servers() {
        let s = with_alice(&spec, &[]).await;
        let root = login(&s, "root", "pw").await;
        root.put("k", "1", PutOptions::default()).await.unwrap();
        s.barrier("alice", "apw").await;
        let issued = s.tokens_issued("root").len();
        s.etcdctl(&["--user=root:pw", "auth", "disable"]).await;
        s.etcdctl(&["--user=root:pw", "auth", "enable"]).await;
        root.put("k", "2", PutOptions::default()).await.unwrap();
        assert_eq!(
            root.get("k", GetOptions::default()).await.unwrap().kvs[0].value,
            b"2"
        );
        s.barrier("alice", "apw").await;
        // etcdctl's login for `auth disable` (none for `auth enable`: auth was off), then
        // the client's one new token.
        assert_eq!(s.tokens_issued("root").len(), issued + 2, "{}", spec.name());
    }
}

#[tokio::test]
async fn a_token_source_serves_channels_dialled_elsewhere() {
    for spec in servers() {
        let s = with_alice(&spec, &[]).await;
        let raw = tonic::transport::Endpoint::from_shared(format!("http://{}", s.endpoint()))
            .unwrap()
            .connect_lazy();
        let source = TokenSource::new(Credentials::new("root", "pw"));
        assert!(!format!("{source:?}").contains("\"pw\""));
        let mut kv = chorus_client::pb::kv_client::KvClient::new(source.channel(raw.clone()));
        let range = RangeRequest {
            key: b"k".to_vec(),
            ..Default::default()
        };
        let refused = kv.range(range.clone()).await.unwrap_err();
        assert!(is_token_refused(&refused), "{refused:?}");
        let seen = source.generation();
        source.refresh(raw.clone(), seen).await.unwrap();
        s.barrier("alice", "apw").await;
        let before = s.tokens_issued("root").len();
        source.refresh(raw, seen).await.unwrap(); // already refreshed: no second login
        kv.range(range).await.unwrap();
        s.barrier("alice", "apw").await;
        assert_eq!(s.tokens_issued("root").len(), before, "{}", spec.name());
    }
}
