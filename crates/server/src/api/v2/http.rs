//! The v2 HTTP API (etcd's `v2http`): `/v2/keys`, `/v2/members`, `/v2/machines` and
//! `/v2/stats/*`. Requests are parsed exactly as etcd parses them (Go's form rules, etcd's
//! checks in etcd's order), and responses carry etcd's JSON, statuses and headers.
//!
//! The handlers reach the rest of the member only through [`V2Backend`].

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use parking_lot::RwLock;

use super::access::{has_key_prefix_access, has_write_root_access, Credentials};
use super::form::{media_type, unescape, Form};
use super::v3store::{V3Store, V3Watcher};
use crate::net::reply::{method_not_allowed, plain_error};
use crate::v2::auth::AuthStore;
use crate::v2::error::{ecode, V2Error};
use crate::v2::format::{clean, join};
use crate::v2::request::{unix_nanos, Method, V2Request};
use crate::v2::stats::{LeaderStats, SelfStats};
use crate::v2::store::{Action, Event, V2Store, Watcher, KEYS_PREFIX};

pub(super) const KEYS_PATH: &str = "/v2/keys";
pub(super) const MEMBERS_PATH: &str = "/v2/members";
/// Go's `http.Request.ParseForm` refuses larger form bodies ("http: POST too large").
const MAX_FORM_SIZE: usize = 10 << 20;

/// Values for the `X-Etcd-Cluster-Id`, `X-Raft-Index` and `X-Raft-Term` headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V2Headers {
    pub cluster_id: u64,
    /// The member's committed raft index.
    pub raft_index: u64,
    pub raft_term: u64,
}

/// A member as `/v2/members` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

/// Why a membership change failed (etcd's `membership` errors); anything else is `Other`,
/// which etcd answers with 500.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("membership: ID exists")]
    IdExists,
    #[error("membership: peerURL exists")]
    PeerUrlExists,
    #[error("membership: ID not found")]
    NotFound,
    #[error("membership: ID removed")]
    Removed,
    #[error("{0}")]
    Other(String),
}

/// What the v2 handlers need from the member.
pub trait V2Backend: Send + Sync + 'static {
    /// The local store: plain reads and watches go here.
    fn store(&self) -> Arc<RwLock<V2Store>>;
    /// Replicates a POST/PUT/DELETE through raft and returns what [`crate::v2::apply`] returned
    /// for it on this member. Failures outside the store (timeout, stopped) are
    /// [`V2Error::raft_internal`] with etcd's message as the cause.
    fn propose(&self, req: V2Request) -> BoxFuture<'static, Result<Event, V2Error>>;
    /// Waits until the local store has applied everything committed when called
    /// (`quorum=true` reads).
    fn linearizable(&self) -> BoxFuture<'static, Result<(), V2Error>>;
    fn headers(&self) -> V2Headers;
    /// The wall clock: TTLs become expirations, and TTLs left are rendered, against it.
    fn now(&self) -> SystemTime;
    fn members(&self) -> Vec<MemberInfo>;
    /// The current leader; `None` during an election.
    fn leader(&self) -> Option<MemberInfo>;
    /// Adds a member with these (validated, sorted) peer URLs; returns it as added.
    fn add_member(
        &self,
        peer_urls: Vec<String>,
    ) -> BoxFuture<'static, Result<MemberInfo, MemberError>>;
    fn remove_member(&self, id: u64) -> BoxFuture<'static, Result<(), MemberError>>;
    fn update_member(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> BoxFuture<'static, Result<(), MemberError>>;
    fn stats_self(&self) -> SelfStats;
    /// `None` unless this member is the leader.
    fn stats_leader(&self) -> Option<LeaderStats>;
}

pub(super) type Backend = Arc<dyn V2Backend>;

// ---- responses ----

pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// etcd's `httptypes.HTTPError`: `{"message":..}`, no newline.
pub(super) fn http_error(status: StatusCode, msg: &str) -> Response {
    let mut body = String::from("{\"message\":");
    crate::v2::format::push_json_str(&mut body, msg);
    body.push('}');
    json_response(status, body)
}

/// etcd's `writeNoAuth`: the refusal of `/v2/auth/*` and `/v2/members` (no cluster ID).
pub(super) fn no_auth() -> Response {
    http_error(StatusCode::UNAUTHORIZED, "Insufficient credentials")
}

pub(super) fn set_header(r: &mut Response, name: &'static str, v: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
        r.headers_mut().insert(name, v);
    }
}

pub(super) fn cluster_id(h: &V2Headers) -> String {
    format!("{:x}", h.cluster_id)
}

/// The single place a [`V2Error`] becomes an HTTP response (etcd's `Error.WriteTo`).
pub(super) fn key_error(e: &V2Error, cluster: &str) -> Response {
    let mut r = json_response(e.status(), format!("{}\n", e.to_json()));
    set_header(&mut r, "x-etcd-cluster-id", cluster);
    set_header(&mut r, "x-etcd-index", e.index);
    r
}

/// etcd's `trimErrorPrefix`: store paths in causes become keys.
fn trim_cause(mut e: V2Error) -> V2Error {
    if let Some(rest) = e.cause.strip_prefix(KEYS_PREFIX) {
        e.cause = rest.to_string();
    }
    e
}

fn event_response(ev: &Event, h: &V2Headers, no_value_on_success: bool) -> Response {
    let status = if ev.is_created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let strip = no_value_on_success
        && matches!(
            ev.action,
            Action::Set | Action::CompareAndSwap | Action::Create | Action::Update
        );
    let body = if strip {
        format!("{{\"action\":\"{}\"}}\n", ev.action.as_str())
    } else {
        format!("{}\n", ev.to_json(KEYS_PREFIX))
    };
    let mut r = json_response(status, body);
    set_header(&mut r, "x-etcd-cluster-id", cluster_id(h));
    set_header(&mut r, "x-etcd-index", ev.etcd_index);
    set_header(&mut r, "x-raft-index", h.raft_index);
    set_header(&mut r, "x-raft-term", h.raft_term);
    r
}

/// A long-poll (or `stream=true`) watch: headers at once, then one JSON line per event.
fn watch_response<S>(start: u64, events: S, h: &V2Headers, stream: bool) -> Response
where
    S: futures::Stream<Item = String> + Send + 'static,
{
    use futures::StreamExt as _;
    let lines = events
        .take(if stream { usize::MAX } else { 1 })
        .map(|line| Ok::<_, std::convert::Infallible>(Bytes::from(line)));
    let mut r = Response::new(Body::from_stream(lines));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_header(&mut r, "x-etcd-cluster-id", cluster_id(h));
    set_header(&mut r, "x-etcd-index", start);
    set_header(&mut r, "x-raft-index", h.raft_index);
    set_header(&mut r, "x-raft-term", h.raft_term);
    r
}

/// Something a watch response reads events from: a v2 store watch, or a v2v3 one.
trait EventSource: Send + 'static {
    fn next_event(&mut self) -> impl std::future::Future<Output = Option<String>> + Send;
}

impl EventSource for Watcher {
    async fn next_event(&mut self) -> Option<String> {
        Some(self.recv().await?.to_json(KEYS_PREFIX))
    }
}

impl EventSource for V3Watcher {
    async fn next_event(&mut self) -> Option<String> {
        Some(self.recv().await?.to_json(KEYS_PREFIX))
    }
}

/// A watch's events as JSON lines.
fn lines<W: EventSource>(w: W) -> impl futures::Stream<Item = String> + Send + 'static {
    futures::stream::unfold(w, |mut w| async move {
        let ev = w.next_event().await?;
        Some((format!("{ev}\n"), w))
    })
}

/// Go's `Request.ParseForm`: a urlencoded body of POST/PUT/PATCH (10 MiB at most), then
/// the query string.
async fn parse_form(
    method: &HttpMethod,
    headers: &HeaderMap,
    query: &str,
    body: Body,
) -> Result<Form, String> {
    let mut form = Form::default();
    let mut err = None;
    if matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let ct = if ct.is_empty() {
            "application/octet-stream".to_string()
        } else {
            ct
        };
        match media_type(&ct) {
            Err(e) => err = Some(e),
            Ok(t) if t == "application/x-www-form-urlencoded" => {
                match axum::body::to_bytes(body, MAX_FORM_SIZE).await {
                    Err(_) => return Err("http: POST too large".into()),
                    Ok(b) => {
                        // Form bodies are text; Go keeps raw bytes, here they are UTF-8.
                        let text = String::from_utf8_lossy(&b);
                        err = form.parse_into(&text);
                    }
                }
            }
            Ok(_) => {}
        }
    }
    let qerr = form.parse_into(query);
    match err.or(qerr) {
        Some(e) => Err(e),
        None => Ok(form),
    }
}

/// Go's `ServeMux` cleaning: `None` when the (decoded) path is clean, else where to
/// redirect.
fn clean_redirect(path: &str) -> Option<String> {
    let p = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut np = clean(&p);
    if p.ends_with('/') && np != "/" {
        np.push('/');
    }
    (np != path).then_some(np)
}

/// Go's path escaping for a redirect's `Location` (`url.URL.EscapedPath`).
fn escape_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for &b in p.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The decoded request path, or the response Go's server gives instead: 400 for a bad
/// escape, 301 to the clean path.
pub(super) fn request_path(req: &Request) -> Result<String, Box<Response>> {
    let raw = req.uri().path();
    let Ok(path) = unescape(raw, false) else {
        return Err(Box::new(plain_error(
            StatusCode::BAD_REQUEST,
            "400 Bad Request",
        )));
    };
    if let Some(to) = clean_redirect(&path) {
        let mut loc = escape_path(&to);
        if let Some(q) = req.uri().query() {
            loc.push('?');
            loc.push_str(q);
        }
        let is_get = matches!(*req.method(), HttpMethod::GET | HttpMethod::HEAD);
        let body = if is_get {
            format!(
                "<a href=\"{}\">Moved Permanently</a>.\n\n",
                html_escape(&loc)
            )
        } else {
            String::new()
        };
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
        if is_get {
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
        }
        set_header(&mut r, "location", loc);
        return Err(Box::new(r));
    }
    Ok(path)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

// ---- /v2/keys ----

/// A parsed `/v2/keys` request (etcd's `parseKeyRequest` output).
#[derive(Debug, Default)]
struct KeyRequest {
    path: String,
    val: String,
    dir: bool,
    prev_value: String,
    prev_index: u64,
    prev_exist: Option<bool>,
    wait: bool,
    wait_index: u64,
    recursive: bool,
    sorted: bool,
    quorum: bool,
    stream: bool,
    refresh: Option<bool>,
    ttl: Option<u64>,
    no_value_on_success: bool,
}

fn form_err(code: u32, cause: &str) -> V2Error {
    V2Error::request(code, cause)
}

/// etcd's `parseKeyRequest`, check for check in etcd's order.
fn parse_key_request(method: &HttpMethod, key: &str, form: &Form) -> Result<KeyRequest, V2Error> {
    let mut r = KeyRequest {
        path: join(&[KEYS_PREFIX, key]),
        ..Default::default()
    };
    r.prev_index = form
        .uint64("prevIndex")
        .map_err(|_| form_err(ecode::INDEX_NAN, "invalid value for \"prevIndex\""))?;
    r.wait_index = form
        .uint64("waitIndex")
        .map_err(|_| form_err(ecode::INDEX_NAN, "invalid value for \"waitIndex\""))?;
    let flag = |name: &str| {
        form.bool(name).map_err(|_| {
            form_err(
                ecode::INVALID_FIELD,
                &format!("invalid value for \"{name}\""),
            )
        })
    };
    r.recursive = flag("recursive")?;
    r.sorted = flag("sorted")?;
    r.wait = flag("wait")?;
    r.dir = flag("dir")?;
    r.quorum = flag("quorum")?;
    r.stream = flag("stream")?;
    if r.wait && *method != HttpMethod::GET {
        return Err(form_err(
            ecode::INVALID_FIELD,
            "\"wait\" can only be used with GET requests",
        ));
    }
    r.prev_value = form.value("prevValue").to_string();
    if form.has("prevValue") && r.prev_value.is_empty() {
        return Err(form_err(
            ecode::PREV_VALUE_REQUIRED,
            "\"prevValue\" cannot be empty",
        ));
    }
    r.no_value_on_success = flag("noValueOnSuccess")?;
    if !form.value("ttl").is_empty() {
        let ttl = form
            .uint64("ttl")
            .map_err(|_| form_err(ecode::TTL_NAN, "invalid value for \"ttl\""))?;
        r.ttl = Some(ttl);
    }
    if form.has("prevExist") {
        r.prev_exist = Some(
            form.bool("prevExist")
                .map_err(|_| form_err(ecode::INVALID_FIELD, "invalid value for prevExist"))?,
        );
    }
    if form.has("refresh") {
        let refresh = form
            .bool("refresh")
            .map_err(|_| form_err(ecode::INVALID_FIELD, "invalid value for refresh"))?;
        if refresh {
            if form.has("value") && !form.value("value").is_empty() {
                return Err(form_err(
                    ecode::REFRESH_VALUE,
                    "A value was provided on a refresh",
                ));
            }
            if r.ttl.is_none() {
                return Err(form_err(ecode::REFRESH_TTL_REQUIRED, "No TTL value set"));
            }
        }
        r.refresh = Some(refresh);
    }
    r.val = form.value("value").to_string();
    Ok(r)
}

/// The replicated request for a parsed POST/PUT/DELETE, with the expiration computed here,
/// once, from this member's clock (Go's wrapping `time.Duration` arithmetic included).
fn to_v2_request(method: Method, r: &KeyRequest, now: i64) -> V2Request {
    let expiration = r.ttl.map_or(0, |ttl| {
        now.wrapping_add((ttl as i64).wrapping_mul(1_000_000_000))
    });
    V2Request {
        method: method as i32,
        path: r.path.clone(),
        val: r.val.clone(),
        dir: r.dir,
        prev_value: r.prev_value.clone(),
        prev_index: r.prev_index,
        prev_exist: r.prev_exist,
        expiration,
        recursive: r.recursive,
        sorted: r.sorted,
        refresh: r.refresh.unwrap_or(false),
        time: now,
    }
}

pub(super) async fn keys(
    State(b): State<Backend>,
    State(auth): State<Arc<AuthStore>>,
    State(v3): State<Option<Arc<V3Store>>>,
    req: Request,
) -> Response {
    let path = match request_path(&req) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let method = req.method().clone();
    if !matches!(method.as_str(), "HEAD" | "GET" | "PUT" | "POST" | "DELETE") {
        return method_not_allowed("HEAD,GET,PUT,POST,DELETE");
    }
    let cluster = cluster_id(&keys_headers(&b, v3.is_some()));
    let query = req.uri().query().unwrap_or("").to_string();
    let (parts, body) = req.into_parts();
    let form = match parse_form(&method, &parts.headers, &query, body).await {
        Ok(f) => f,
        Err(cause) => return key_error(&form_err(ecode::INVALID_FORM, &cause), &cluster),
    };
    let key = &path[KEYS_PATH.len()..];
    let r = match parse_key_request(&method, key, &form) {
        Ok(r) => r,
        Err(e) => return key_error(&e, &cluster),
    };
    // etcd checks access once the request parsed, on the path as sent.
    let creds = Credentials::from_request(&parts.headers, &parts.extensions);
    if !has_key_prefix_access(&auth, &creds, key, r.recursive, &method).await {
        let refused = V2Error::request(ecode::UNAUTHORIZED, "Insufficient credentials");
        return key_error(&refused, &cluster);
    }
    let now = unix_nanos(b.now());
    if let Some(v3) = v3 {
        return v3_keys(&v3, &keys_headers(&b, true), method.as_str(), &r, now).await;
    }
    let result = match method.as_str() {
        "GET" if r.quorum => match b.linearizable().await {
            Ok(()) => b.store().read().get(&r.path, r.recursive, r.sorted, now),
            Err(e) => Err(e),
        },
        "GET" if r.wait => {
            let watched = b
                .store()
                .read()
                .watch(&r.path, r.recursive, r.stream, r.wait_index);
            match watched {
                Ok(w) => return watch_response(w.start_index(), lines(w), &b.headers(), r.stream),
                Err(e) => Err(e),
            }
        }
        "GET" | "HEAD" => b.store().read().get(&r.path, r.recursive, r.sorted, now),
        m => {
            let method = match m {
                "POST" => Method::Post,
                "PUT" => Method::Put,
                _ => Method::Delete,
            };
            b.propose(to_v2_request(method, &r, now)).await
        }
    };
    match result {
        Ok(ev) => event_response(&ev, &b.headers(), r.no_value_on_success),
        Err(e) => key_error(&trim_cause(e), &cluster),
    }
}

/// The headers of `/v2/keys` answers. etcd's v2v3 server has no raft index or term of
/// its own (0) and a fixed stand-in cluster ID (`0xe7cd2f00d`, its `ID()` stub).
fn keys_headers(b: &Backend, v2v3: bool) -> V2Headers {
    if v2v3 {
        V2Headers {
            cluster_id: V2V3_CLUSTER_ID,
            raft_index: 0,
            raft_term: 0,
        }
    } else {
        b.headers()
    }
}

/// etcd's v2v3 server's `ID()`.
const V2V3_CLUSTER_ID: u64 = 0xe7cd2f00d;

/// A parsed keys request served by the v2v3 store (etcd's v2v3 server: every GET,
/// `quorum` or not, reads the v3 keyspace linearizably).
async fn v3_keys(v3: &V3Store, h: &V2Headers, method: &str, r: &KeyRequest, now: i64) -> Response {
    let result = match method {
        "GET" if r.wait && !r.quorum => match v3.watch(&r.path, r.recursive, r.wait_index) {
            Ok(w) => return watch_response(w.start_index(), lines(w), h, r.stream),
            Err(e) => Err(e),
        },
        "GET" | "HEAD" => v3.get(&r.path, r.recursive, r.sorted).await,
        m => {
            let method = match m {
                "POST" => Method::Post,
                "PUT" => Method::Put,
                _ => Method::Delete,
            };
            v3.write(&to_v2_request(method, r, now)).await
        }
    };
    match result {
        Ok(ev) => event_response(&ev, h, r.no_value_on_success),
        Err(e) => key_error(&trim_cause(e), &cluster_id(h)),
    }
}

// ---- /v2/members, /v2/machines, /v2/stats ----

fn member_json(out: &mut String, m: &MemberInfo) {
    use crate::v2::format::push_json_str;
    let list = |out: &mut String, items: &[String]| {
        out.push('[');
        for (i, u) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(out, u);
        }
        out.push(']');
    };
    out.push_str(&format!("{{\"id\":\"{:x}\",\"name\":", m.id));
    push_json_str(out, &m.name);
    out.push_str(",\"peerURLs\":");
    list(out, &m.peer_urls);
    out.push_str(",\"clientURLs\":");
    list(out, &m.client_urls);
    out.push('}');
}

/// etcd's `types.NewURLs`: trimmed, checked (scheme, host:port, no path) and sorted.
fn parse_peer_urls(urls: &[String]) -> Result<Vec<String>, String> {
    if urls.is_empty() {
        return Err("no valid URLs given".into());
    }
    let mut out = Vec::with_capacity(urls.len());
    for raw in urls {
        let s = raw.trim();
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) if !scheme.is_empty() => (scheme.to_ascii_lowercase(), rest),
            _ if s.starts_with(':') => return Err(format!("parse {s:?}: missing protocol scheme")),
            _ => ("".to_string(), s),
        };
        if !["http", "https", "unix", "unixs"].contains(&scheme.as_str()) {
            return Err(format!(
                "URL scheme must be http, https, unix, or unixs: {s}"
            ));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, tail) = rest.split_at(end);
        if !is_host_port(host) {
            return Err(format!(
                "URL address does not have the form \"host:port\": {s}"
            ));
        }
        let path = tail.split(['?', '#']).next().unwrap_or("");
        if !path.is_empty() {
            return Err(format!("URL must not contain a path: {s}"));
        }
        out.push(format!("{scheme}://{host}{tail}"));
    }
    out.sort();
    Ok(out)
}

/// Go's `net.SplitHostPort` succeeds.
fn is_host_port(h: &str) -> bool {
    if let Some(rest) = h.strip_prefix('[') {
        match rest.split_once(']') {
            Some((_, port)) => port.starts_with(':') && !port[1..].contains(':'),
            None => false,
        }
    } else {
        h.matches(':').count() == 1 && !h.contains(['[', ']'])
    }
}

/// The name Go's `encoding/json` gives a JSON value's type in an unmarshal error.
fn go_json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// etcd's `unmarshalRequest` for member add/update: JSON with `peerURLs`.
async fn member_request(headers: &HeaderMap, body: Body) -> Result<Vec<String>, Response> {
    let mut ctype = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if let Some(i) = ctype.find(';') {
        ctype = ctype[..i].trim().to_ascii_lowercase();
    }
    if ctype != "application/json" {
        return Err(http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Bad Content-Type {ctype}, accept application/json"),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_SIZE)
        .await
        .map_err(|e| http_error(StatusCode::BAD_REQUEST, &e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| http_error(StatusCode::BAD_REQUEST, &e.to_string()))?;
    // Go matches field names case-insensitively, preferring the exact one.
    let field = match &v {
        serde_json::Value::Object(m) => m
            .get("peerURLs")
            .or_else(|| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("peerurls"))
                    .map(|(_, v)| v)
            })
            .cloned(),
        serde_json::Value::Null => None,
        other => {
            return Err(http_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "json: cannot unmarshal {} into Go value of type struct {{ PeerURLs []string \"json:\\\"peerURLs\\\"\" }}",
                    go_json_kind(other)
                ),
            ))
        }
    };
    let urls: Vec<String> = match field {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => {
            let mut urls = Vec::with_capacity(items.len());
            for it in items {
                match it {
                    serde_json::Value::String(s) => urls.push(s),
                    serde_json::Value::Null => urls.push(String::new()),
                    other => {
                        return Err(http_error(
                            StatusCode::BAD_REQUEST,
                            &format!(
                                "json: cannot unmarshal {} into Go struct field .peerURLs of type string",
                                go_json_kind(&other)
                            ),
                        ))
                    }
                }
            }
            urls
        }
        Some(other) => {
            return Err(http_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "json: cannot unmarshal {} into Go struct field .peerURLs of type []string",
                    go_json_kind(&other)
                ),
            ))
        }
    };
    parse_peer_urls(&urls).map_err(|e| http_error(StatusCode::BAD_REQUEST, &e))
}

fn member_error(e: &MemberError, id: u64) -> Response {
    match e {
        MemberError::IdExists | MemberError::PeerUrlExists => {
            http_error(StatusCode::CONFLICT, &e.to_string())
        }
        MemberError::NotFound => {
            http_error(StatusCode::NOT_FOUND, &format!("No such member: {id:x}"))
        }
        MemberError::Removed => http_error(
            StatusCode::GONE,
            &format!("Member permanently removed: {id:x}"),
        ),
        MemberError::Other(_) => {
            http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

pub(super) async fn members(
    State(b): State<Backend>,
    State(auth): State<Arc<AuthStore>>,
    req: Request,
) -> Response {
    let path = match request_path(&req) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let method = req.method().clone();
    if !matches!(method.as_str(), "GET" | "POST" | "DELETE" | "PUT") {
        return method_not_allowed("GET,POST,DELETE,PUT");
    }
    let creds = Credentials::from_request(req.headers(), req.extensions());
    if !has_write_root_access(&auth, &creds, &method).await {
        return no_auth();
    }
    let cluster = cluster_id(&b.headers());
    let mut r = members_inner(&b, &method, &path, req).await;
    set_header(&mut r, "x-etcd-cluster-id", cluster);
    r
}

async fn members_inner(b: &Backend, method: &HttpMethod, path: &str, req: Request) -> Response {
    let id_str = path[MEMBERS_PATH.len()..]
        .strip_prefix('/')
        .unwrap_or(&path[MEMBERS_PATH.len()..])
        .to_string();
    let parse_id = || -> Result<u64, Box<Response>> {
        if id_str.is_empty() {
            return Err(Box::new(plain_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
            )));
        }
        u64::from_str_radix(&id_str, 16)
            .ok()
            .filter(|_| id_str.bytes().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| {
                Box::new(http_error(
                    StatusCode::NOT_FOUND,
                    &format!("No such member: {id_str}"),
                ))
            })
    };
    match method.as_str() {
        "GET" => match id_str.as_str() {
            "" => {
                let mut out = String::from("{\"members\":[");
                for (i, m) in b.members().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    member_json(&mut out, m);
                }
                out.push_str("]}\n");
                json_response(StatusCode::OK, out)
            }
            "leader" => match b.leader() {
                None => http_error(StatusCode::SERVICE_UNAVAILABLE, "During election"),
                Some(m) => {
                    let mut out = String::new();
                    member_json(&mut out, &m);
                    out.push('\n');
                    json_response(StatusCode::OK, out)
                }
            },
            _ => http_error(StatusCode::NOT_FOUND, "Not found"),
        },
        "POST" => {
            let (parts, body) = req.into_parts();
            let urls = match member_request(&parts.headers, body).await {
                Ok(u) => u,
                Err(r) => return r,
            };
            match b.add_member(urls).await {
                Ok(m) => {
                    let mut out = String::new();
                    member_json(&mut out, &m);
                    out.push('\n');
                    json_response(StatusCode::CREATED, out)
                }
                Err(e) => member_error(&e, 0),
            }
        }
        "DELETE" => {
            let id = match parse_id() {
                Ok(id) => id,
                Err(r) => return *r,
            };
            match b.remove_member(id).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => member_error(&e, id),
            }
        }
        _ => {
            let id = match parse_id() {
                Ok(id) => id,
                Err(r) => return *r,
            };
            let (parts, body) = req.into_parts();
            let urls = match member_request(&parts.headers, body).await {
                Ok(u) => u,
                Err(r) => return r,
            };
            match b.update_member(id, urls).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                // etcd's update handler knows no removed IDs: they fall through to 500.
                Err(MemberError::Removed) => {
                    http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                }
                Err(e) => member_error(&e, id),
            }
        }
    }
}

pub(super) async fn machines(State(b): State<Backend>, method: HttpMethod) -> Response {
    if !matches!(method, HttpMethod::GET | HttpMethod::HEAD) {
        return method_not_allowed("GET,HEAD");
    }
    let urls: Vec<String> = b
        .members()
        .into_iter()
        .flat_map(|m| m.client_urls)
        .collect();
    let mut r = urls.join(", ").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The v2 stats, or, under `--experimental-enable-v2v3`, none: etcd's v2v3 server has no
/// stats (empty bodies, and "not current leader").
type V3 = Option<Arc<V3Store>>;

/// A `/v2/stats/*` body: `stats()`, or empty under v2v3.
fn stats_response(method: HttpMethod, v3: V3, stats: impl FnOnce() -> String) -> Response {
    if method != HttpMethod::GET {
        return method_not_allowed("GET");
    }
    let body = if v3.is_some() { String::new() } else { stats() };
    json_response(StatusCode::OK, body)
}

pub(super) async fn stats_store(
    State(b): State<Backend>,
    State(v3): State<V3>,
    method: HttpMethod,
) -> Response {
    stats_response(method, v3, || b.store().read().stats_json())
}

pub(super) async fn stats_self(
    State(b): State<Backend>,
    State(v3): State<V3>,
    method: HttpMethod,
) -> Response {
    stats_response(method, v3, || b.stats_self().to_json())
}

pub(super) async fn stats_leader(
    State(b): State<Backend>,
    State(v3): State<V3>,
    method: HttpMethod,
) -> Response {
    if method != HttpMethod::GET {
        return method_not_allowed("GET");
    }
    match b.stats_leader().filter(|_| v3.is_none()) {
        Some(s) => json_response(StatusCode::OK, s.to_json()),
        None => http_error(StatusCode::FORBIDDEN, "not current leader"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_and_urls() {
        assert_eq!(clean_redirect("/v2/keys/a"), None);
        assert_eq!(clean_redirect("/v2/keys/a/"), None);
        assert_eq!(
            clean_redirect("/v2/keys//double//slash/").as_deref(),
            Some("/v2/keys/double/slash/")
        );
        assert_eq!(
            clean_redirect("/v2/keys/double/../slash2").as_deref(),
            Some("/v2/keys/slash2")
        );
        assert_eq!(escape_path("/v2/keys/sp ace"), "/v2/keys/sp%20ace");
        assert_eq!(
            parse_peer_urls(&["http://b:1".into(), " http://a:2 ".into()]).unwrap(),
            vec!["http://a:2", "http://b:1"]
        );
        assert_eq!(
            parse_peer_urls(&["bad".into()]).unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: bad"
        );
        assert_eq!(
            parse_peer_urls(&["http://a".into()]).unwrap_err(),
            "URL address does not have the form \"host:port\": http://a"
        );
        assert_eq!(
            parse_peer_urls(&["http://a:1/x".into()]).unwrap_err(),
            "URL must not contain a path: http://a:1/x"
        );
        assert_eq!(parse_peer_urls(&[]).unwrap_err(), "no valid URLs given");
    }
}
