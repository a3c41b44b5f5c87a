//! `/ui/`: the read-only web dashboard, served by the member on its client URLs (over TLS
//! when the listener is TLS). Three files, embedded in the binary, no build step:
//!
//! ```text
//!   GET /ui        ─▶ 308 to /ui/
//!   GET /ui/       ─▶ index.html ─┐
//!   GET /ui/app.css               │ the page, in the browser:
//!   GET /ui/app.js ───────────────┴▶ POST /v3/cluster/member/list, /v3/maintenance/status,
//!                                     /v3/kv/range (paged), /v3/watch (streamed),
//!                                     /v3/lease/leases, /v3/lease/timetolive,
//!                                     /v3/auth/authenticate; GET /metrics
//! ```
//!
//! The page only reads: it calls no endpoint that writes, and it holds nothing but the
//! caller's own auth token (in the tab's `sessionStorage`). Every gateway call carries that
//! token, so the member checks the caller's permissions as for any other client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_CSS: &str = include_str!("ui/app.css");
const APP_JS: &str = include_str!("ui/app.js");

/// Scripts and styles from this origin only; `connect-src` also lets the page ask the
/// other members (their client URLs) for their status.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// The dashboard's routes (GET and HEAD; other methods get axum's 405).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/index.html", get(index))
        .route("/ui/app.css", get(css))
        .route("/ui/app.js", get(js))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_calls_no_endpoint_that_writes() {
        for write in [
            "kv/put",
            "kv/deleterange",
            "kv/txn",
            "kv/compaction",
            "lease/grant",
            "lease/revoke",
            "lease/keepalive",
            "maintenance/alarm",
            "maintenance/defragment",
            "auth/enable",
            "auth/disable",
            "user/",
            "role/",
            "member/add",
            "member/remove",
        ] {
            assert!(!APP_JS.contains(write), "app.js mentions {write}");
        }
    }

    #[test]
    fn assets_are_self_contained() {
        for text in [INDEX_HTML, APP_CSS, APP_JS] {
            assert!(!text.contains("//cdn"), "an asset loads from a CDN");
            assert!(!text.contains("https://"), "an asset names a remote URL");
        }
        assert!(INDEX_HTML.contains("app.js") && INDEX_HTML.contains("app.css"));
    }
}
