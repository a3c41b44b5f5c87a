//! etcd's httpproxy `reverseProxy`: each request goes to the first available member
//! client URL that answers; a member that cannot be reached is marked failed and the
//! next one is tried. The answer (status, headers, streamed body: v2 watches stay open)
//! is relayed as it comes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chorus_server::net::RemoteAddr;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::director::Director;
use super::metrics::ProxyMetrics;
use super::timeout_io::{TimeoutConnector, Timeouts};

/// Go's `ioutil.ReadAll` has no bound; chorus reads at most this much of a request body
/// (far above the member's own `--max-request-bytes`).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// etcd's `DefaultMaxIdleConnsPerHost`.
const MAX_IDLE_PER_HOST: usize = 128;

/// Hop-by-hop headers (Go's httputil list), never forwarded.
const SINGLE_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// What the proxy handler shares.
pub struct Forwarder {
    pub director: Arc<Director>,
    pub metrics: Arc<ProxyMetrics>,
    client: Client<TimeoutConnector, Full<Bytes>>,
}

impl Forwarder {
    pub fn new(
        director: Arc<Director>,
        metrics: Arc<ProxyMetrics>,
        timeouts: Timeouts,
    ) -> Forwarder {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .build(TimeoutConnector(timeouts));
        Forwarder {
            director,
            metrics,
            client,
        }
    }
}

/// `httptypes.HTTPError`: `{"message":"..."}` with its status.
pub fn http_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn strip_single_hop(headers: &mut HeaderMap) {
    for h in SINGLE_HOP {
        headers.remove(h);
    }
}

/// `X-Forwarded-For`: earlier proxies' addresses, then the client's IP.
fn forwarded_for(headers: &mut HeaderMap, remote: Option<&RemoteAddr>) {
    let Some(ip) = remote.and_then(|r| r.0.rsplit_once(':').map(|(h, _)| h.to_string())) else {
        return;
    };
    let prior: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let value = if prior.is_empty() {
        ip
    } else {
        format!("{}, {ip}", prior.join(", "))
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
}

fn upstream_request(
    parts: &axum::http::request::Parts,
    headers: &HeaderMap,
    base: &str,
    body: Bytes,
) -> Option<hyper::Request<Full<Bytes>>> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: http::Uri = format!("{}{path}", base.trim_end_matches('/'))
        .parse()
        .ok()?;
    let mut req = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .body(Full::new(body))
        .ok()?;
    *req.headers_mut() = headers.clone();
    Some(req)
}

/// The reverse proxy: every path the proxy does not answer itself.
pub async fn forward(State(f): State<Arc<Forwarder>>, req: Request) -> Response {
    let method = req.method().to_string();
    f.metrics.incoming(&method);
    let remote = req.extensions().get::<RemoteAddr>().cloned();
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let msg = format!("failed to read request body: {e}");
            tracing::info!(error = %e, "failed to read request body");
            return http_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("httpproxy: {msg}"),
            );
        }
    };
    let mut headers = parts.headers.clone();
    strip_single_hop(&mut headers);
    forwarded_for(&mut headers, remote.as_ref());
    let endpoints = f.director.available();
    if endpoints.is_empty() {
        f.metrics.dropped(&method, "zero_endpoints");
        tracing::info!("zero endpoints currently available");
        return http_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "httpproxy: zero endpoints currently available",
        );
    }
    for ep in &endpoints {
        let Some(up) = upstream_request(&parts, &headers, &ep.url, body.clone()) else {
            continue;
        };
        match f.client.request(up).await {
            Ok(resp) => return relay(&f, &method, resp),
            Err(e) => {
                f.metrics.dropped(&method, "failed_sending_request");
                tracing::info!(url = %ep.url, error = %e, "failed to direct request");
                f.director.failed(ep);
            }
        }
    }
    f.metrics.dropped(&method, "failed_getting_response");
    let msg = format!(
        "unable to get response from {} endpoint(s)",
        endpoints.len()
    );
    tracing::info!("{msg}");
    http_error(StatusCode::BAD_GATEWAY, &format!("httpproxy: {msg}"))
}

fn relay(f: &Forwarder, method: &str, resp: hyper::Response<hyper::body::Incoming>) -> Response {
    f.metrics.handled(method, resp.status().as_u16());
    let (mut parts, body) = resp.into_parts();
    strip_single_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}
