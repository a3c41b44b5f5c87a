//! The HTTP/1.1 side of the client port: `/health`, `/version`, `/metrics`, `/v2/...` and
//! the `/v3` JSON gateway. gRPC requests on the same port never reach here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

pub mod gateway;
pub mod metrics;

use crate::config::ETCD_COMPAT_VERSION;
use crate::server::Server;

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

/// Go's `http.Error`: a plain-text body with a newline, `nosniff`.
pub(crate) fn plain_error(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, format!("{msg}\n")).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// etcd's `allowMethod`: 405 with the allowed methods (HEAD is not GET in Go's mux).
pub(crate) fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = plain_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// A 405 for a route that serves GET (and HEAD) only.
async fn get_only() -> Response {
    method_not_allowed("GET")
}

/// Go's `http.NotFound`.
async fn not_found() -> Response {
    plain_error(StatusCode::NOT_FOUND, "404 page not found")
}

async fn version(method: Method) -> Response {
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    let body = format!(r#"{{"etcdserver":"{ETCD_COMPAT_VERSION}","etcdcluster":"3.4.0"}}"#);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// etcd 3.4's check: a leader exists and a linearizable read completes in time.
async fn health(State(server): State<Arc<Server>>, method: Method) -> Response {
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    let healthy = server.status.leader() != raft::INVALID_ID
        && tokio::time::timeout(Duration::from_secs(5), server.linearizable_read())
            .await
            .is_ok_and(|r| r.is_ok());
    let (status, body) = if healthy {
        (StatusCode::OK, r#"{"health":"true"}"#)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, r#"{"health":"false"}"#)
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `--listen-metrics-urls`: `/metrics` and `/health` only, as etcd serves there.
pub fn metrics_router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/health", any(health))
        .route("/metrics", get(metrics::metrics).fallback(get_only))
        .fallback(not_found)
        .with_state(server)
}

pub fn router(server: Arc<Server>, gateway: bool) -> Router {
    let mut router = Router::new()
        .route("/health", any(health))
        .route("/version", any(version))
        .route("/metrics", get(metrics::metrics).fallback(get_only))
        .fallback(not_found)
        .with_state(server.clone());
    if gateway {
        router = router.merge(gateway::router(server.clone()));
    }
    if server.limits.enable_v2 {
        let backend = Arc::new(crate::v2::member::MemberBackend { server });
        router = router.merge(crate::v2::router(backend));
    }
    router.layer(axum::middleware::from_fn(cors))
}
