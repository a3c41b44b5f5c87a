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
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chorus_api::etcdserverpb::cluster_server::Cluster;
use chorus_api::etcdserverpb::kv_server::Kv;
use chorus_api::etcdserverpb::lease_server::Lease;
use chorus_api::etcdserverpb::maintenance_server::Maintenance;
use chorus_api::etcdserverpb::{watch_request, WatchRequest, WatchResponse};
use chorus_api::v3electionpb::election_server::Election;
use chorus_api::v3lockpb::lock_server::Lock;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Code, Status};

use crate::grpc::{cluster, election, kv, lease, lock, maintenance};
use crate::server::Server;
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

/// grpc-gateway's error body, fields in its order.
#[derive(Serialize)]
struct GatewayError<'a> {
    error: &'a str,
    message: &'a str,
    code: i32,
}

fn error(s: &Status) -> Response {
    let body = GatewayError {
        error: s.message(),
        message: s.message(),
        code: s.code() as i32,
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

async fn unary<Req, Resp, F, Fut>(body: Bytes, call: F) -> Response
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
    match call(tonic::Request::new(req)).await {
        Ok(resp) => match serde_json::to_string(resp.get_ref()) {
            Ok(s) => json_response(StatusCode::OK, s),
            Err(e) => error(&Status::internal(e.to_string())),
        },
        Err(s) => error(&s),
    }
}

struct Services {
    server: Arc<Server>,
    kv: kv::KvService,
    lease: lease::LeaseService,
    cluster: cluster::ClusterService,
    maintenance: maintenance::MaintenanceService,
    lock: lock::LockService,
    election: election::ElectionService,
}

/// Every unary RPC the gateway exposes, by its path after `/v3/`.
async fn call(State(s): State<Arc<Services>>, Path(path): Path<String>, body: Bytes) -> Response {
    match path.as_str() {
        "kv/range" => unary(body, |r| s.kv.range(r)).await,
        "kv/put" => unary(body, |r| s.kv.put(r)).await,
        "kv/deleterange" => unary(body, |r| s.kv.delete_range(r)).await,
        "kv/txn" => unary(body, |r| s.kv.txn(r)).await,
        "kv/compaction" => unary(body, |r| s.kv.compact(r)).await,
        "lease/grant" => unary(body, |r| s.lease.lease_grant(r)).await,
        "lease/revoke" | "kv/lease/revoke" => unary(body, |r| s.lease.lease_revoke(r)).await,
        "lease/timetolive" | "kv/lease/timetolive" => {
            unary(body, |r| s.lease.lease_time_to_live(r)).await
        }
        "lease/leases" | "kv/lease/leases" => unary(body, |r| s.lease.lease_leases(r)).await,
        "cluster/member/add" => unary(body, |r| s.cluster.member_add(r)).await,
        "cluster/member/remove" => unary(body, |r| s.cluster.member_remove(r)).await,
        "cluster/member/update" => unary(body, |r| s.cluster.member_update(r)).await,
        "cluster/member/list" => unary(body, |r| s.cluster.member_list(r)).await,
        "cluster/member/promote" => unary(body, |r| s.cluster.member_promote(r)).await,
        "maintenance/alarm" => unary(body, |r| s.maintenance.alarm(r)).await,
        "maintenance/status" => unary(body, |r| s.maintenance.status(r)).await,
        "maintenance/defragment" => unary(body, |r| s.maintenance.defragment(r)).await,
        "maintenance/hash" => unary(body, |r| s.maintenance.hash(r)).await,
        // etcd 3.5's path for HashKV (3.4 shadows it behind Hash).
        "maintenance/hashkv" => unary(body, |r| s.maintenance.hash_kv(r)).await,
        "maintenance/transfer-leadership" => unary(body, |r| s.maintenance.move_leader(r)).await,
        "lock/lock" => unary(body, |r| Lock::lock(&s.lock, r)).await,
        "lock/unlock" => unary(body, |r| s.lock.unlock(r)).await,
        "election/campaign" => unary(body, |r| s.election.campaign(r)).await,
        "election/proclaim" => unary(body, |r| s.election.proclaim(r)).await,
        "election/leader" => unary(body, |r| s.election.leader(r)).await,
        "election/resign" => unary(body, |r| s.election.resign(r)).await,
        "watch" => watch(s.server.clone(), body),
        p if p.starts_with("auth/") => error(&Status::unimplemented(
            "chorus: authentication is not implemented yet",
        )),
        p if matches!(
            p,
            "lease/keepalive" | "maintenance/snapshot" | "election/observe"
        ) =>
        {
            error(&Status::unimplemented(format!(
                "chorus: the streaming gateway endpoint /v3/{p} is not implemented yet"
            )))
        }
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not Found",
        )
            .into_response(),
    }
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
fn watch(server: Arc<Server>, body: Bytes) -> Response {
    let requests = match json_values(&body) {
        Ok(r) => r,
        Err(s) => return error(&s),
    };
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 61);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let hub = server.watch_hub().clone();
    let (handle, rx) = StreamHandle::new(id);
    for r in requests {
        match r.request_union {
            Some(watch_request::RequestUnion::CreateRequest(c)) => {
                let _ = hub.watch(&handle, c.watch_id, crate::grpc::watch::to_spec(&c));
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
    let state = (rx, handle, server, Guard(hub, id));
    let lines = futures::stream::unfold(state, |(mut rx, handle, server, guard)| async move {
        let m = rx.recv().await?;
        handle.taken(&m);
        let resp: WatchResponse = crate::grpc::watch::response(&server, m);
        let line = format!(
            "{{\"result\":{}}}\n",
            serde_json::to_string(&resp).expect("generated serde impl")
        );
        Some((
            Ok::<_, std::convert::Infallible>(line),
            (rx, handle, server, guard),
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(lines))
        .expect("static response parts")
}

pub fn router(server: Arc<Server>) -> Router {
    let services = Arc::new(Services {
        kv: kv::KvService::new(server.clone()),
        lease: lease::LeaseService::new(server.clone()),
        cluster: cluster::ClusterService::new(server.clone()),
        maintenance: maintenance::MaintenanceService::new(server.clone()),
        lock: lock::LockService::new(server.clone()),
        election: election::ElectionService::new(server.clone()),
        server,
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
