//! The HTTP/1.1 side of the client port: `/health`, `/version`, `/metrics`, `/v2/...`,
//! the `/v3` JSON gateway and the `/ui/` dashboard (`ui.rs`). gRPC requests on the same port never reach here.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

pub mod gateway;
mod gateway_methods;
pub mod health;
pub mod metrics;
pub mod pprof;
pub mod ui;

use crate::api::grpc::health::HealthNotifier;
use crate::member::Member;
use crate::net::reply::{method_not_allowed, plain_error};
use chorus_config::ETCD_COMPAT_VERSION;

/// etcd answers every HTTP request with these CORS headers.
async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("accept, content-type, authorization"),
    );
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
    );
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    resp
}

/// A 405 for a route that serves GET (and HEAD) only.
async fn get_only() -> Response {
    method_not_allowed("GET")
}

/// Go's `http.NotFound`.
async fn not_found() -> Response {
    plain_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// etcd's `/version`: the server version, and the cluster version set through raft
/// (`not_decided` before the leader set it).
async fn version(State(member): State<Arc<Member>>, method: Method) -> Response {
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    let cluster = member.cluster_version().map_or_else(
        || crate::cluster_version::NOT_DECIDED.to_string(),
        |v| v.to_semver(),
    );
    let body = format!(r#"{{"etcdserver":"{ETCD_COMPAT_VERSION}","etcdcluster":"{cluster}"}}"#);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The health endpoints (`health.rs`), on the client and the metrics URLs.
fn health_routes(router: Router<Arc<Member>>) -> Router<Arc<Member>> {
    router
        .route("/health", any(health::health))
        .route("/livez", any(health::livez))
        .route("/readyz", any(health::readyz))
        .route("/livez/{check}", any(health::one_livez))
        .route("/readyz/{check}", any(health::one_readyz))
}

/// `--listen-metrics-urls`: `/metrics` and the health endpoints, as etcd serves there.
pub fn metrics_router(member: Arc<Member>) -> Router {
    health_routes(Router::new())
        .route("/metrics", get(metrics::metrics).fallback(get_only))
        .fallback(not_found)
        .with_state(member)
}

/// The client port's HTTP side; `gateway`: serve the `/v3` JSON gateway, whose
/// Defragment flips this listener's gRPC health service; `pprof`: serve `/debug/pprof/`.
pub fn router(member: Arc<Member>, gateway: Option<HealthNotifier>, pprof: bool) -> Router {
    let mut router = health_routes(Router::new())
        .route("/version", any(version))
        .route("/metrics", get(metrics::metrics).fallback(get_only))
        .merge(ui::router())
        .fallback(not_found)
        .with_state(member.clone());
    if let Some(health) = gateway {
        router = router.merge(gateway::router(member.clone(), health));
    }
    if pprof {
        router = router.merge(pprof::router());
    }
    if member.limits.enable_v2 {
        let v3 = (!member.limits.v2v3_prefix.is_empty()).then(|| {
            let store =
                crate::api::v2::v3store::V3Store::new(member.clone(), &member.limits.v2v3_prefix);
            Arc::new(store)
        });
        let backend = Arc::new(crate::api::v2::member::MemberBackend { member });
        router = router.merge(crate::api::v2::router(backend, v3));
    }
    router.layer(axum::middleware::from_fn(cors))
}
