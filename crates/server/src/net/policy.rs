//! etcd's access controller for the HTTP side of the client port
//! (`embed/serve.go`'s `accessController`), and the stream limit of the JSON gateway.
//!
//! ```text
//!  HTTP request ─▶ plain connection and Host not in --host-whitelist? ─▶ 421, etcd's text
//!               ─▶ CORS headers for an allowed Origin (--cors); OPTIONS ─▶ 200
//!               ─▶ the handlers
//!  /v3/ request ─▶ one of --max-concurrent-streams slots of the listener, held until
//!                  the response body ends (etcd's gateway is a gRPC client of its own
//!                  port, so its calls share that limit)
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::reply::plain_error;

/// `--cors` and `--host-whitelist`, as etcd's `AccessController` holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Allowed origins (`*`: all; empty: all).
    pub cors: BTreeSet<String>,
    /// Allowed Host names of plain HTTP requests (`*`: all; empty: all).
    pub host_whitelist: BTreeSet<String>,
}

const ALLOW_METHODS: &str = "POST, GET, OPTIONS, PUT, DELETE";
const ALLOW_HEADERS: &str = "accept, content-type, authorization";

impl HttpPolicy {
    /// Everything allowed (etcd's defaults, `*` for both).
    pub fn allow_all() -> HttpPolicy {
        let star = || BTreeSet::from(["*".to_string()]);
        HttpPolicy {
            cors: star(),
            host_whitelist: star(),
        }
    }

    /// etcd's `OriginAllowed`.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.cors.is_empty() || self.cors.contains("*") || self.cors.contains(origin)
    }

    /// etcd's `IsHostWhitelisted`.
    pub fn host_allowed(&self, host: &str) -> bool {
        self.host_whitelist.is_empty()
            || self.host_whitelist.contains("*")
            || self.host_whitelist.contains(host)
    }

    /// The access checks before a handler runs: a whole reply (421 for a Host not
    /// whitelisted on a plain connection, 200 for OPTIONS), or the CORS origin to
    /// answer with, if any.
    pub fn admit<B>(&self, req: &Request<B>, over_tls: bool) -> Admission {
        if !over_tls {
            let host = request_hostname(req);
            if !self.host_allowed(&host) {
                // etcd 3.4's capnslog line (its zap line is "rejecting HTTP request to
                // prevent DNS rebinding attacks" with a host field).
                tracing::warn!(
                    "rejecting HTTP request from {host:?} to prevent DNS rebinding attacks"
                );
                return Admission::Reply(plain_error(
                    StatusCode::MISDIRECTED_REQUEST,
                    &err_cve_2018_5702(&host),
                ));
            }
        }
        let origin = if self.origin_allowed("*") {
            Some("*".to_string())
        } else {
            req.headers()
                .get(header::ORIGIN)
                .and_then(|o| o.to_str().ok())
                .filter(|o| self.origin_allowed(o))
                .map(str::to_string)
        };
        if req.method() == Method::OPTIONS {
            let mut ok = StatusCode::OK.into_response();
            set_cors(ok.headers_mut(), origin.as_deref());
            return Admission::Reply(ok);
        }
        Admission::Serve {
            cors_origin: origin,
        }
    }
}

/// What the access controller decided about a request.
#[derive(Debug)]
pub enum Admission {
    /// Pass it to the handlers; answer with CORS headers for this origin, if any.
    Serve { cors_origin: Option<String> },
    /// Answer with this (refused Host, or OPTIONS).
    Reply(Response),
}

impl Admission {
    #[cfg(test)]
    fn origin(self) -> Option<String> {
        match self {
            Admission::Serve { cors_origin } => cors_origin,
            Admission::Reply(r) => panic!("replied {}", r.status()),
        }
    }

    #[cfg(test)]
    fn reply(self) -> Response {
        match self {
            Admission::Serve { .. } => panic!("served"),
            Admission::Reply(r) => r,
        }
    }
}

/// The CORS headers of a reply: etcd adds them for an allowed origin, none otherwise
/// (replacing any a handler set).
pub fn set_cors(headers: &mut HeaderMap, origin: Option<&str>) {
    for h in [
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
    ] {
        headers.remove(h);
    }
    let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
}

/// Go's `httputil.GetHostname`: the request's host without its port.
fn request_hostname<B>(req: &Request<B>) -> String {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    match chorus_config::url::split_host_port(&host) {
        Ok((h, _)) => h.to_string(),
        Err(_) => host,
    }
}

/// etcd's `errCVE20185702` (the reply body to a Host not whitelisted).
pub fn err_cve_2018_5702(host: &str) -> String {
    format!(
        r#"
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist {host:?}

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
"#
    )
}

/// `--max-concurrent-streams` for the JSON gateway of one listener.
#[derive(Clone, Debug)]
pub struct StreamLimit(Arc<tokio::sync::Semaphore>);

impl StreamLimit {
    /// None for etcd's default, `math.MaxUint32`: no limit.
    pub fn new(max_concurrent_streams: u32) -> Option<StreamLimit> {
        (max_concurrent_streams < u32::MAX).then(|| {
            let n = max_concurrent_streams as usize;
            StreamLimit(Arc::new(tokio::sync::Semaphore::new(n)))
        })
    }

    /// Waits for a slot (as a gRPC client waits for stream quota), runs `call`, and
    /// keeps the slot until the response body has been sent or dropped.
    pub async fn hold<F>(&self, call: F) -> Response
    where
        F: std::future::Future<Output = Response>,
    {
        let Ok(slot) = self.0.clone().acquire_owned().await else {
            return call.await;
        };
        let resp = call.await;
        resp.map(move |body| {
            axum::body::Body::new(body.map_frame(move |frame| {
                let _held = &slot;
                frame
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, host: &str, origin: Option<&str>) -> Request<()> {
        let mut b = Request::builder()
            .method(method)
            .uri("/v2/keys/a")
            .header(header::HOST, host);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn host_whitelist_applies_to_plain_requests_only() {
        let p = HttpPolicy {
            host_whitelist: BTreeSet::from(["example.com".to_string()]),
            ..HttpPolicy::allow_all()
        };
        let _ = p
            .admit(&req(Method::GET, "example.com:2379", None), false)
            .origin();
        let refused = p
            .admit(&req(Method::GET, "127.0.0.1:2379", None), false)
            .reply();
        assert_eq!(refused.status(), StatusCode::MISDIRECTED_REQUEST);
        let _ = p
            .admit(&req(Method::GET, "127.0.0.1:2379", None), true)
            .origin();
    }

    #[test]
    fn cors_echoes_an_allowed_origin_and_answers_options() {
        let p = HttpPolicy {
            cors: BTreeSet::from(["http://a.example".to_string()]),
            ..HttpPolicy::allow_all()
        };
        let get = |o| p.admit(&req(Method::GET, "h:1", o), false).origin();
        assert_eq!(
            get(Some("http://a.example")).as_deref(),
            Some("http://a.example")
        );
        assert_eq!(get(Some("http://b.example")), None);
        assert_eq!(get(None), None);
        let star = HttpPolicy::allow_all();
        assert_eq!(
            star.admit(&req(Method::GET, "h:1", None), false)
                .origin()
                .as_deref(),
            Some("*")
        );
        let options = p
            .admit(
                &req(Method::OPTIONS, "h:1", Some("http://a.example")),
                false,
            )
            .reply();
        assert_eq!(options.status(), StatusCode::OK);
        assert_eq!(
            options.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://a.example"
        );
    }

    #[test]
    fn the_rebinding_text_is_etcds() {
        let text = err_cve_2018_5702("evil.com");
        assert!(text
            .starts_with("\netcd received your request, but the Host header was unrecognized.\n"));
        assert!(text.contains("  - e.g. etcd --host-whitelist \"evil.com\"\n"));
    }

    #[tokio::test]
    async fn a_stream_slot_is_held_until_the_body_is_dropped() {
        let limit = StreamLimit::new(1).unwrap();
        assert!(StreamLimit::new(u32::MAX).is_none());
        let first = limit.hold(async { "a".into_response() }).await;
        assert_eq!(limit.0.available_permits(), 0);
        drop(first);
        assert_eq!(limit.0.available_permits(), 1);
    }
}
