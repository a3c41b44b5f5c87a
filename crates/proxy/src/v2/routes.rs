//! The proxy's router: what it answers itself (`/metrics`, `/v2/config/local/proxy`),
//! CORS as etcd's `WrapCORS`, `--proxy=readonly`'s refusal, and the reverse proxy.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use chorus_config::{Config, ProxyMode};
use chorus_server::net::policy::{set_cors, HttpPolicy};
use chorus_server::net::reply::method_not_allowed;

use super::director::Director;
use super::forward::{forward, Forwarder};
use super::metrics::ProxyMetrics;
use super::timeout_io::Timeouts;

pub fn router(cfg: &Config, director: Arc<Director>, timeouts: Timeouts) -> Router {
    let metrics = Arc::new(ProxyMetrics::default());
    let forwarder = Arc::new(Forwarder::new(director, metrics.clone(), timeouts));
    let policy = Arc::new(HttpPolicy {
        cors: cfg.cors.clone(),
        host_whitelist: Default::default(),
    });
    let mut proxied = Router::new()
        .route("/v2/config/local/proxy", any(config_local_proxy))
        .fallback(forward)
        .with_state(forwarder)
        .layer(axum::middleware::from_fn_with_state(policy, cors));
    if cfg.proxy == ProxyMode::Readonly {
        proxied = proxied.layer(axum::middleware::from_fn(readonly));
    }
    Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .merge(proxied)
}

/// `/v2/config/local/proxy`: the endpoints requests go to now.
async fn config_local_proxy(State(f): State<Arc<Forwarder>>, method: Method) -> Response {
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    let body = serde_json::json!({ "endpoints": f.director.urls() });
    (StatusCode::OK, format!("{body}\n")).into_response()
}

/// `--proxy=readonly`: anything but GET gets 501 with an empty body, as etcd's
/// `NewReadonlyHandler`.
async fn readonly(req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return StatusCode::NOT_IMPLEMENTED.into_response();
    }
    next.run(req).await
}

/// etcd's `corsHandler`: the CORS headers for an allowed origin (the member's own win),
/// 200 for OPTIONS.
async fn cors(State(policy): State<Arc<HttpPolicy>>, req: Request, next: Next) -> Response {
    let origin = if policy.origin_allowed("*") {
        Some("*".to_string())
    } else {
        req.headers()
            .get("origin")
            .and_then(|o| o.to_str().ok())
            .filter(|o| policy.origin_allowed(o))
            .map(str::to_string)
    };
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        next.run(req).await
    };
    if !resp.headers().contains_key("access-control-allow-origin") {
        set_cors(resp.headers_mut(), origin.as_deref());
    }
    resp
}
