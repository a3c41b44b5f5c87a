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

use super::gateway_methods;
use crate::api::grpc::health::HealthNotifier;
use crate::api::grpc::metrics::Call;
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
async fn unary<Req, Resp, F, Fut>(
    slot: Option<usize>,
    body: Bytes,
    token: Option<&HeaderValue>,
    call: F,
) -> Response
where
    Req: DeserializeOwned + Default + prost::Message,
    Resp: Serialize + prost::Message,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let (req, metered) = match begin_call::<Req>(slot, &body) {
        Ok(started) => started,
        Err(s) => return error(&s),
    };
    match call(with_token(req, token)).await {
        Ok(resp) => {
            if let Some(m) = &metered {
                m.sent(resp.get_ref().encoded_len());
            }
            end_call(metered, Code::Ok);
            match serde_json::to_string(resp.get_ref()) {
                Ok(s) => json_response(StatusCode::OK, s),
                Err(e) => error(&Status::internal(e.to_string())),
            }
        }
        Err(s) => {
            end_call(metered, s.code());
            error(&s)
        }
    }
}

/// One server-streaming gateway call (Observe, Snapshot): the JSON body decoded into the
/// request, each message the call streams back a `{"result": ...}` line.
async fn server_stream<Req, Resp, S, F, Fut>(
    slot: Option<usize>,
    body: Bytes,
    token: Option<&HeaderValue>,
    call: F,
) -> Response
where
    Req: DeserializeOwned + Default + prost::Message,
    Resp: Serialize + prost::Message + Send + 'static,
    S: futures::Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<S>, Status>>,
{
    let (req, metered) = match begin_call::<Req>(slot, &body) {
        Ok(started) => started,
        Err(st) => return error(&st),
    };
    match call(with_token(req, token)).await {
        Ok(resp) => json_stream(metered, resp.into_inner()),
        Err(st) => json_stream(
            metered,
            futures::stream::once(async move { Err::<Resp, _>(st) }),
        ),
    }
}

/// A gateway call's request decoded from its JSON body, and the call counted as started
/// with that message received (a body that is not the request is refused uncounted).
fn begin_call<Req>(slot: Option<usize>, body: &[u8]) -> Result<(Req, Option<Call>), Status>
where
    Req: DeserializeOwned + Default + prost::Message,
{
    let req = decode::<Req>(body)?;
    let metered = begin(slot);
    received(&metered, &req);
    Ok((req, metered))
}

/// Counts the start of a gateway call to the method in `slot` (the gateway sends no
/// client API version).
fn begin(slot: Option<usize>) -> Option<Call> {
    slot.map(|slot| Call::begin(slot, "unknown"))
}

/// Counts one request message of a metered call.
fn received(metered: &Option<Call>, msg: &impl prost::Message) {
    if let Some(m) = metered {
        m.received(msg.encoded_len());
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
    let slot = gateway_methods::slot(&path);
    if let Some(r) = auth_call(&s, slot, &path, &body, token).await {
        return r;
    }
    match path.as_str() {
        "kv/range" => unary(slot, body, token, |r| s.kv.range(r)).await,
        "kv/put" => unary(slot, body, token, |r| s.kv.put(r)).await,
        "kv/deleterange" => unary(slot, body, token, |r| s.kv.delete_range(r)).await,
        "kv/txn" => unary(slot, body, token, |r| s.kv.txn(r)).await,
        "kv/compaction" => unary(slot, body, token, |r| s.kv.compact(r)).await,
        "lease/grant" => unary(slot, body, token, |r| s.lease.lease_grant(r)).await,
        "lease/revoke" | "kv/lease/revoke" => {
            unary(slot, body, token, |r| s.lease.lease_revoke(r)).await
        }
        "lease/timetolive" | "kv/lease/timetolive" => {
            unary(slot, body, token, |r| s.lease.lease_time_to_live(r)).await
        }
        "lease/leases" | "kv/lease/leases" => {
            unary(slot, body, token, |r| s.lease.lease_leases(r)).await
        }
        "cluster/member/add" => unary(slot, body, token, |r| s.cluster.member_add(r)).await,
        "cluster/member/remove" => unary(slot, body, token, |r| s.cluster.member_remove(r)).await,
        "cluster/member/update" => unary(slot, body, token, |r| s.cluster.member_update(r)).await,
        "cluster/member/list" => unary(slot, body, token, |r| s.cluster.member_list(r)).await,
        "cluster/member/promote" => unary(slot, body, token, |r| s.cluster.member_promote(r)).await,
        "maintenance/alarm" => unary(slot, body, token, |r| s.maintenance.alarm(r)).await,
        "maintenance/status" => unary(slot, body, token, |r| s.maintenance.status(r)).await,
        "maintenance/defragment" => unary(slot, body, token, |r| s.maintenance.defragment(r)).await,
        "maintenance/hash" => unary(slot, body, token, |r| s.maintenance.hash(r)).await,
        // etcd 3.5's path for HashKV (3.4 shadows it behind Hash).
        "maintenance/hashkv" => unary(slot, body, token, |r| s.maintenance.hash_kv(r)).await,
        "maintenance/transfer-leadership" => {
            unary(slot, body, token, |r| s.maintenance.move_leader(r)).await
        }
        "lock/lock" => unary(slot, body, token, |r| Lock::lock(&s.lock, r)).await,
        "lock/unlock" => unary(slot, body, token, |r| s.lock.unlock(r)).await,
        "election/campaign" => unary(slot, body, token, |r| s.election.campaign(r)).await,
        "election/proclaim" => unary(slot, body, token, |r| s.election.proclaim(r)).await,
        "election/leader" => unary(slot, body, token, |r| s.election.leader(r)).await,
        "election/resign" => unary(slot, body, token, |r| s.election.resign(r)).await,
        "watch" => watch(s.member.clone(), slot, token, body).await,
        "lease/keepalive" | "kv/lease/keepalive" => {
            keep_alive(s.member.clone(), slot, token, body).await
        }
        "election/observe" => server_stream(slot, body, token, |r| s.election.observe(r)).await,
        "maintenance/snapshot" => {
            server_stream(slot, body, token, |r| s.maintenance.snapshot(r)).await
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
/// grpc-gateway has sent its header by then). `metered` counts the messages and the
/// call's end (a client that goes away first: `Canceled`).
fn json_stream<T, S>(metered: Option<Call>, stream: S) -> Response
where
    T: Serialize + prost::Message + Send + 'static,
    S: futures::Stream<Item = Result<T, Status>> + Send + 'static,
{
    use futures::StreamExt;
    let items = stream
        .map(Some)
        .chain(futures::stream::once(async { None }));
    // State: the metered call, and whether an error line ended the stream.
    let lines = items.scan((metered, false), |(metered, failed), item| {
        let line = match item {
            _ if *failed => None,
            Some(Ok(m)) => {
                if let Some(call) = metered.as_ref() {
                    call.sent(m.encoded_len());
                }
                let m = serde_json::to_string(&m).unwrap_or_default();
                Some(format!("{{\"result\":{m}}}\n"))
            }
            Some(Err(st)) => {
                *failed = true;
                end_call(metered.take(), st.code());
                Some(stream_error(&st))
            }
            None => {
                end_call(metered.take(), Code::Ok);
                None
            }
        };
        std::future::ready(line.map(Ok::<_, std::convert::Infallible>))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(lines))
        .expect("static response parts")
}

fn end_call(metered: Option<Call>, code: Code) {
    if let Some(call) = metered {
        call.end(code);
    }
}

/// grpc-gateway's error line of a stream that failed.
fn stream_error(st: &Status) -> String {
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

/// `/v3/lease/keepalive`: each JSON request in the body renews once and answers one
/// `{"result": ...}` line (a lease that does not exist answers TTL 0, as the gRPC stream
/// does); the stream ends with the body, as grpc-gateway closes its send side. Patroni and
/// lua-resty-etcd renew leases this way.
async fn keep_alive(
    member: Arc<Member>,
    slot: Option<usize>,
    token: Option<&HeaderValue>,
    body: Bytes,
) -> Response {
    use chorus_api::etcdserverpb::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
    let requests: Vec<LeaseKeepAliveRequest> = match serde_json::Deserializer::from_slice(&body)
        .into_iter()
        .collect::<Result<_, _>>()
    {
        Ok(r) => r,
        Err(e) => return error(&Status::invalid_argument(e.to_string())),
    };
    let metered = begin(slot);
    requests.iter().for_each(|r| received(&metered, r));
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
    json_stream(metered, replies)
}

/// `/v3/auth/*`: the Auth service's calls, by etcd's gateway paths.
async fn auth_call(
    s: &Services,
    slot: Option<usize>,
    path: &str,
    body: &Bytes,
    token: Option<&HeaderValue>,
) -> Option<Response> {
    let a = &s.auth;
    let body = body.clone();
    Some(match path {
        "auth/enable" => unary(slot, body, token, |r| a.auth_enable(r)).await,
        "auth/disable" => unary(slot, body, token, |r| a.auth_disable(r)).await,
        "auth/status" => unary(slot, body, token, |r| a.auth_status(r)).await,
        "auth/authenticate" => unary(slot, body, token, |r| a.authenticate(r)).await,
        "auth/user/add" => unary(slot, body, token, |r| a.user_add(r)).await,
        "auth/user/get" => unary(slot, body, token, |r| a.user_get(r)).await,
        "auth/user/list" => unary(slot, body, token, |r| a.user_list(r)).await,
        "auth/user/delete" => unary(slot, body, token, |r| a.user_delete(r)).await,
        "auth/user/changepw" => unary(slot, body, token, |r| a.user_change_password(r)).await,
        "auth/user/grant" => unary(slot, body, token, |r| a.user_grant_role(r)).await,
        "auth/user/revoke" => unary(slot, body, token, |r| a.user_revoke_role(r)).await,
        "auth/role/add" => unary(slot, body, token, |r| a.role_add(r)).await,
        "auth/role/get" => unary(slot, body, token, |r| a.role_get(r)).await,
        "auth/role/list" => unary(slot, body, token, |r| a.role_list(r)).await,
        "auth/role/delete" => unary(slot, body, token, |r| a.role_delete(r)).await,
        "auth/role/grant" => unary(slot, body, token, |r| a.role_grant_permission(r)).await,
        "auth/role/revoke" => unary(slot, body, token, |r| a.role_revoke_permission(r)).await,
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
async fn watch(
    member: Arc<Member>,
    slot: Option<usize>,
    token: Option<&HeaderValue>,
    body: Bytes,
) -> Response {
    let requests = match json_values(&body) {
        Ok(r) => r,
        Err(s) => return error(&s),
    };
    let metered = begin(slot);
    requests.iter().for_each(|r| received(&metered, r));
    let creds = crate::member::Credentials {
        token: token.and_then(|t| t.to_str().ok()),
        common_name: None,
    };
    let who = match member.caller(creds).await {
        Ok(who) => who,
        Err(e) => {
            let st = Status::from(e);
            end_call(metered, st.code());
            return error(&st);
        }
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
    // The call ends when the client goes away (`Canceled`, as the metered call drops).
    let state = (rx, handle, member, Guard(hub, id), metered);
    let lines = futures::stream::unfold(
        state,
        |(mut rx, handle, member, guard, metered)| async move {
            let m = rx.recv().await?;
            handle.taken(&m);
            let resp: WatchResponse = crate::api::grpc::watch::response(&member, m);
            if let Some(call) = &metered {
                call.sent(prost::Message::encoded_len(&resp));
            }
            let line = format!(
                "{{\"result\":{}}}\n",
                serde_json::to_string(&resp).expect("generated serde impl")
            );
            Some((
                Ok::<_, std::convert::Infallible>(line),
                (rx, handle, member, guard, metered),
            ))
        },
    );
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
