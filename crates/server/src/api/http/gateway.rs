//! The `/v3/*` JSON gateway (etcd's grpc-gateway): `POST /v3/kv/range` with a JSON body
//! is the Range RPC, and so on for every unary RPC; `/v3/watch` streams JSON lines.
//! Field names are the proto names, 64-bit integers are strings, bytes are base64 (the
//! serde impls generated in `chorus-api`). `/v3beta/` and `/v3alpha/` are aliases.
//!
//! Errors have grpc-gateway's shape, `{"error": msg, "message": msg, "code": grpc code}`,
//! with its HTTP status for the code.

use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chorus_api::etcdserverpb::auth_server::Auth;
use chorus_api::etcdserverpb::cluster_server::Cluster;
use chorus_api::etcdserverpb::kv_server::Kv;
use chorus_api::etcdserverpb::lease_server::Lease;
use chorus_api::etcdserverpb::maintenance_server::Maintenance;
use chorus_api::etcdserverpb::{watch_request, WatchRequest, WatchResponse};
use chorus_api::v3electionpb::election_server::Election;
use chorus_api::v3lockpb::lock_server::Lock;
use futures::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Code, Status};

use crate::api::grpc::health::HealthNotifier;
use crate::api::grpc::{auth, cluster, election, kv, lease, lock, maintenance};
use crate::member::Member;
use crate::watch::StreamHandle;

/// The HTTP status grpc-gateway (v1) gives each gRPC code.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// grpc-gateway's error body, fields in the order etcd 3.5 writes them.
#[derive(Serialize)]
struct GatewayError<'a> {
    error: &'a str,
    code: i32,
    message: &'a str,
}

fn error(s: &Status) -> Response {
    let body = GatewayError {
        error: s.message(),
        code: s.code() as i32,
        message: s.message(),
    };
    let body = serde_json::to_string(&body).expect("plain struct serializes");
    json_response(http_status(s.code()), body)
}

fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Status> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// One gateway call: the JSON body decoded into the request, the `Authorization` header
/// passed on as the `token` metadata (grpc-gateway forwards it; the client certificate's
/// name never stands for the caller here, as in etcd), the response encoded as JSON.
async fn unary<Req, Resp, F, Fut>(body: Bytes, token: Option<&HeaderValue>, call: F) -> Response
where
    Req: DeserializeOwned + Default,
    Resp: Serialize,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let req = match decode::<Req>(&body) {
        Ok(r) => r,
        Err(s) => return error(&s),
    };
    let mut req = tonic::Request::new(req);
    if let Some(token) =
        token.and_then(|t| tonic::metadata::MetadataValue::try_from(t.as_bytes()).ok())
    {
        req.metadata_mut().insert("token", token);
    }
    match call(req).await {
        Ok(resp) => match serde_json::to_string(resp.get_ref()) {
            Ok(s) => json_response(StatusCode::OK, s),
            Err(e) => error(&Status::internal(e.to_string())),
        },
        Err(s) => error(&s),
    }
}

struct Services {
    member: Arc<Member>,
    kv: kv::KvService,
    lease: lease::LeaseService,
    cluster: cluster::ClusterService,
    maintenance: maintenance::MaintenanceService,
    lock: lock::LockService,
    election: election::ElectionService,
    auth: auth::AuthService,
}

/// Every unary RPC the gateway exposes, by its path after `/v3/`.
async fn call(
    State(s): State<Arc<Services>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers.get(header::AUTHORIZATION);
    if let Some(r) = auth_call(&s, &path, &body, token).await {
        return r;
    }
    match path.as_str() {
        "kv/range" => unary(body, token, |r| s.kv.range(r)).await,
        "kv/put" => unary(body, token, |r| s.kv.put(r)).await,
        "kv/deleterange" => unary(body, token, |r| s.kv.delete_range(r)).await,
        "kv/txn" => unary(body, token, |r| s.kv.txn(r)).await,
        "kv/compaction" => unary(body, token, |r| s.kv.compact(r)).await,
        "lease/grant" => unary(body, token, |r| s.lease.lease_grant(r)).await,
        "lease/revoke" | "kv/lease/revoke" => unary(body, token, |r| s.lease.lease_revoke(r)).await,
        "lease/timetolive" | "kv/lease/timetolive" => {
            unary(body, token, |r| s.lease.lease_time_to_live(r)).await
        }
        "lease/leases" | "kv/lease/leases" => unary(body, token, |r| s.lease.lease_leases(r)).await,
        "cluster/member/add" => unary(body, token, |r| s.cluster.member_add(r)).await,
        "cluster/member/remove" => unary(body, token, |r| s.cluster.member_remove(r)).await,
        "cluster/member/update" => unary(body, token, |r| s.cluster.member_update(r)).await,
        "cluster/member/list" => unary(body, token, |r| s.cluster.member_list(r)).await,
        "cluster/member/promote" => unary(body, token, |r| s.cluster.member_promote(r)).await,
        "maintenance/alarm" => unary(body, token, |r| s.maintenance.alarm(r)).await,
        "maintenance/status" => unary(body, token, |r| s.maintenance.status(r)).await,
        "maintenance/defragment" => unary(body, token, |r| s.maintenance.defragment(r)).await,
        "maintenance/hash" => unary(body, token, |r| s.maintenance.hash(r)).await,
        // etcd 3.5's path for HashKV (3.4 shadows it behind Hash).
        "maintenance/hashkv" => unary(body, token, |r| s.maintenance.hash_kv(r)).await,
        "maintenance/transfer-leadership" => {
            unary(body, token, |r| s.maintenance.move_leader(r)).await
        }
        "lock/lock" => unary(body, token, |r| Lock::lock(&s.lock, r)).await,
        "lock/unlock" => unary(body, token, |r| s.lock.unlock(r)).await,
        "election/campaign" => unary(body, token, |r| s.election.campaign(r)).await,
        "election/proclaim" => unary(body, token, |r| s.election.proclaim(r)).await,
        "election/leader" => unary(body, token, |r| s.election.leader(r)).await,
        "election/resign" => unary(body, token, |r| s.election.resign(r)).await,
        "watch" => watch(s.member.clone(), token, body).await,
        "lease/keepalive" | "kv/lease/keepalive" => keep_alive(s.member.clone(), token, body).await,
        "election/observe" => {
            let req = match decode::<chorus_api::v3electionpb::LeaderRequest>(&body) {
                Ok(r) => with_token(r, token),
                Err(st) => return error(&st),
            };
            match s.election.observe(req).await {
                Ok(resp) => json_stream(resp.into_inner()),
                Err(st) => json_stream(futures::stream::once(async move { Err::<(), _>(st) })),
            }
        }
        "maintenance/snapshot" => {
            let req = match decode::<chorus_api::etcdserverpb::SnapshotRequest>(&body) {
                Ok(r) => with_token(r, token),
                Err(st) => return error(&st),
            };
            match s.maintenance.snapshot(req).await {
                Ok(resp) => json_stream(resp.into_inner()),
                Err(st) => json_stream(futures::stream::once(async move { Err::<(), _>(st) })),
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not Found",
        )
            .into_response(),
    }
}

/// A request as the gRPC services take it, with the `Authorization` header as its token.
fn with_token<T>(msg: T, token: Option<&HeaderValue>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let value = token.and_then(|t| tonic::metadata::MetadataValue::try_from(t.as_bytes()).ok());
    if let Some(value) = value {
        req.metadata_mut().insert("token", value);
    }
    req
}

/// grpc-gateway's error chunk of a stream that failed (its `StreamError`).
#[derive(Serialize)]
struct StreamError<'a> {
    grpc_code: i32,
    http_code: u16,
    message: &'a str,
    http_status: &'a str,
}

/// A streamed reply as grpc-gateway writes it: one `{"result": <message>}` line per
/// message; a failure is one `{"error": {...}}` line and the end (still status 200, as
/// grpc-gateway has sent its header by then).
fn json_stream<T, S>(stream: S) -> Response
where
    T: Serialize + Send + 'static,
    S: futures::Stream<Item = Result<T, Status>> + Send + 'static,
{
    use futures::StreamExt;
    let lines = stream.scan(false, |failed, item| {
        if *failed {
            return std::future::ready(None);
        }
        let line = match item {
            Ok(m) => format!(
                "{{\"result\":{}}}\n",
                serde_json::to_string(&m).unwrap_or_default()
            ),
            Err(st) => {
                *failed = true;
                let http = http_status(st.code());
                let e = StreamError {
                    grpc_code: st.code() as i32,
                    http_code: http.as_u16(),
                    message: st.message(),
                    http_status: http.canonical_reason().unwrap_or(""),
                };
                format!(
                    "{{\"error\":{}}}\n",
                    serde_json::to_string(&e).unwrap_or_default()
                )
            }
        };
        std::future::ready(Some(Ok::<_, std::convert::Infallible>(line)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(lines))
        .expect("static response parts")
}

/// `/v3/lease/keepalive`: each JSON request in the body renews once and answers one
/// `{"result": ...}` line (a lease that does not exist answers TTL 0, as the gRPC stream
/// does); the stream ends with the body, as grpc-gateway closes its send side. Patroni and
/// lua-resty-etcd renew leases this way.
async fn keep_alive(member: Arc<Member>, token: Option<&HeaderValue>, body: Bytes) -> Response {
    use chorus_api::etcdserverpb::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
    let requests: Vec<LeaseKeepAliveRequest> = match serde_json::Deserializer::from_slice(&body)
        .into_iter()
        .collect::<Result<_, _>>()
    {
        Ok(r) => r,
        Err(e) => return error(&Status::invalid_argument(e.to_string())),
    };
    let creds = crate::member::Credentials {
        token: token.and_then(|t| t.to_str().ok()),
        common_name: None,
    };
    let who = member.caller(creds).await;
    let replies = futures::stream::iter(requests).then(move |r| {
        let (member, who) = (member.clone(), who.clone());
        async move {
            let who = who.map_err(Status::from)?;
            let ttl = match member.lease_renew(who.as_ref(), r.id).await {
                Ok(ttl) => ttl,
                Err(crate::error::EtcdError::LeaseNotFound) => 0,
                Err(e) => return Err(Status::from(e)),
            };
            Ok(LeaseKeepAliveResponse {
                header: Some(member.current_header()),
                id: r.id,
                ttl,
            })
        }
    });
    json_stream(replies)
}

/// `/v3/auth/*`: the Auth service's calls, by etcd's gateway paths.
async fn auth_call(
    s: &Services,
    path: &str,
    body: &Bytes,
    token: Option<&HeaderValue>,
) -> Option<Response> {
    let a = &s.auth;
    let body = body.clone();
    Some(match path {
        "auth/enable" => unary(body, token, |r| a.auth_enable(r)).await,
        "auth/disable" => unary(body, token, |r| a.auth_disable(r)).await,
        "auth/status" => unary(body, token, |r| a.auth_status(r)).await,
        "auth/authenticate" => unary(body, token, |r| a.authenticate(r)).await,
        "auth/user/add" => unary(body, token, |r| a.user_add(r)).await,
        "auth/user/get" => unary(body, token, |r| a.user_get(r)).await,
        "auth/user/list" => unary(body, token, |r| a.user_list(r)).await,
        "auth/user/delete" => unary(body, token, |r| a.user_delete(r)).await,
        "auth/user/changepw" => unary(body, token, |r| a.user_change_password(r)).await,
        "auth/user/grant" => unary(body, token, |r| a.user_grant_role(r)).await,
        "auth/user/revoke" => unary(body, token, |r| a.user_revoke_role(r)).await,
        "auth/role/add" => unary(body, token, |r| a.role_add(r)).await,
        "auth/role/get" => unary(body, token, |r| a.role_get(r)).await,
        "auth/role/list" => unary(body, token, |r| a.role_list(r)).await,
        "auth/role/delete" => unary(body, token, |r| a.role_delete(r)).await,
        "auth/role/grant" => unary(body, token, |r| a.role_grant_permission(r)).await,
        "auth/role/revoke" => unary(body, token, |r| a.role_revoke_permission(r)).await,
        _ => return None,
    })
}

/// Splits a body holding one or more JSON values (grpc-gateway reads a stream of them).
fn json_values(body: &[u8]) -> Result<Vec<WatchRequest>, Status> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<WatchRequest>()
        .collect::<Result<_, _>>()
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

/// `/v3/watch`: the body's watch requests are applied to one watch stream and every
/// response is written as a `{"result": ...}` line until the client goes away.
async fn watch(member: Arc<Member>, token: Option<&HeaderValue>, body: Bytes) -> Response {
    let requests = match json_values(&body) {
        Ok(r) => r,
        Err(s) => return error(&s),
    };
    let creds = crate::member::Credentials {
        token: token.and_then(|t| t.to_str().ok()),
        common_name: None,
    };
    let who = match member.caller(creds).await {
        Ok(who) => who,
        Err(e) => return error(&Status::from(e)),
    };
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 61);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let hub = member.watch_hub().clone();
    let (handle, rx) = StreamHandle::new(id);
    for r in requests {
        match r.request_union {
            Some(watch_request::RequestUnion::CreateRequest(c)) => {
                crate::api::grpc::watch::create(&member, who.as_ref(), &handle, &c);
            }
            Some(watch_request::RequestUnion::CancelRequest(c)) => {
                hub.cancel(&handle, c.watch_id);
            }
            Some(watch_request::RequestUnion::ProgressRequest(_)) => hub.request_progress(&handle),
            None => {}
        }
    }
    struct Guard(Arc<crate::watch::WatchHub>, u64);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.close_stream(self.1);
        }
    }
    let state = (rx, handle, member, Guard(hub, id));
    let lines = futures::stream::unfold(state, |(mut rx, handle, member, guard)| async move {
        let m = rx.recv().await?;
        handle.taken(&m);
        let resp: WatchResponse = crate::api::grpc::watch::response(&member, m);
        let line = format!(
            "{{\"result\":{}}}\n",
            serde_json::to_string(&resp).expect("generated serde impl")
        );
        Some((
            Ok::<_, std::convert::Infallible>(line),
            (rx, handle, member, guard),
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(lines))
        .expect("static response parts")
}

pub fn router(member: Arc<Member>, health: HealthNotifier) -> Router {
    let services = Arc::new(Services {
        kv: kv::KvService::new(member.clone()),
        lease: lease::LeaseService::new(member.clone()),
        cluster: cluster::ClusterService::new(member.clone()),
        maintenance: maintenance::MaintenanceService::new(member.clone(), health),
        lock: lock::LockService::new(member.clone()),
        election: election::ElectionService::new(member.clone()),
        auth: auth::AuthService::new(member.clone()),
        member,
    });
    Router::new()
        .route("/v3/{*path}", post(call))
        .route("/v3beta/{*path}", post(call))
        .route("/v3alpha/{*path}", post(call))
        .with_state(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_grpc_gateway() {
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::OutOfRange), StatusCode::BAD_REQUEST);
        assert_eq!(
            http_status(Code::FailedPrecondition),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn error_body_has_grpc_gateways_shape() {
        let r = error(&Status::invalid_argument("etcdserver: key is not provided"));
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn watch_bodies_may_hold_several_requests() {
        let reqs =
            json_values(br#"{"create_request":{"key":"YQ=="}} {"progress_request":{}}"#).unwrap();
        assert_eq!(reqs.len(), 2);
        assert!(json_values(b"{nope").is_err());
        assert!(decode::<chorus_api::etcdserverpb::RangeRequest>(b"  ").is_ok());
    }
}
