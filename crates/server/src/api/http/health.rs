//! Health endpoints, as etcd 3.5 serves them on the client and metrics URLs:
//!
//! ```text
//!   /health[?exclude=NOSPACE][&serializable=true]
//!       alarms (not excluded) ─▶ leader (unless serializable) ─▶ a read (linearizable
//!       unless serializable) ─▶ {"health":"true","reason":""}   or 503 with the reason
//!   /livez   serializable_read                                      ─▶ "ok\n" (probes)
//!   /readyz  data_corruption, serializable_read, linearizable_read ─▶ "ok\n"
//!       ?verbose lists "[+]<check> ok" lines; ?exclude=<check> skips one;
//!       /livez/<check>, /readyz/<check> run one; a failure is 503 with the list
//! ```
//! The checks run in a fixed order (etcd iterates a map: its order varies).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chorus_api::etcdserverpb::AlarmType;

use crate::member::Member;
use crate::net::reply::{method_not_allowed, plain_error};

/// One named check of `/livez` or `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    DataCorruption,
    SerializableRead,
    LinearizableRead,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::DataCorruption => "data_corruption",
            Check::SerializableRead => "serializable_read",
            Check::LinearizableRead => "linearizable_read",
        }
    }
}

const LIVEZ: &[Check] = &[Check::SerializableRead];
const READYZ: &[Check] = &[
    Check::DataCorruption,
    Check::SerializableRead,
    Check::LinearizableRead,
];

/// The query's values of `name` (`?exclude=a&exclude=b`), empty ones dropped.
fn query_values(query: Option<&str>, name: &str) -> BTreeSet<String> {
    let Some(q) = query else {
        return BTreeSet::new();
    };
    form_urlencoded_pairs(q)
        .filter(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v)
        .collect()
}

fn query_has(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| form_urlencoded_pairs(q).any(|(k, _)| k == name))
}

fn query_get(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded_pairs(query?)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `k=v&k2` pairs with %-decoding (Go's `url.ParseQuery`, lenient).
fn form_urlencoded_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split(['&', ';']).filter(|s| !s.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A read as a health probe makes it: ReadIndex unless serializable, then the store.
async fn read(member: &Member, serializable: bool) -> Result<(), crate::error::EtcdError> {
    if serializable {
        let _ = member.kv().current_rev();
        return Ok(());
    }
    tokio::time::timeout(member.limits.request_timeout, member.linearizable_read())
        .await
        .unwrap_or(Err(crate::error::EtcdError::Timeout))
}

async fn run_check(member: &Member, check: Check) -> Result<(), String> {
    match check {
        Check::DataCorruption => match member.alarms().is_active(AlarmType::Corrupt) {
            true => Err("alarm activated: CORRUPT".into()),
            false => Ok(()),
        },
        Check::SerializableRead => read(member, true).await.map_err(|e| e.to_string()),
        Check::LinearizableRead => read(member, false).await.map_err(|e| e.to_string()),
    }
}

/// Runs `checks` in order: whether all passed, and etcd's per-check lines.
async fn run_checks(member: &Member, checks: &[Check]) -> (bool, String) {
    let mut ok = true;
    let mut out = String::new();
    for &c in checks {
        match run_check(member, c).await {
            Ok(()) => out.push_str(&format!("[+]{} ok\n", c.name())),
            Err(e) => {
                ok = false;
                out.push_str(&format!("[-]{} failed: {e}\n", c.name()));
            }
        }
    }
    (ok, out)
}

fn probe_reply(ok: bool, reason: String, verbose: bool) -> Response {
    if !ok {
        return plain_error(StatusCode::SERVICE_UNAVAILABLE, &reason);
    }
    let body = if verbose {
        reason + "ok\n"
    } else {
        "ok\n".into()
    };
    let mut r = (StatusCode::OK, body).into_response();
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

async fn probe(member: &Member, all: &[Check], query: Option<&str>) -> Response {
    let excluded = query_values(query, "exclude");
    let checks: Vec<Check> = all
        .iter()
        .copied()
        .filter(|c| !excluded.contains(c.name()))
        .collect();
    let unknown: Vec<&String> = excluded
        .iter()
        .filter(|e| !all.iter().any(|c| c.name() == e.as_str()))
        .collect();
    if !unknown.is_empty() {
        tracing::warn!(missing = ?unknown, "some health checks cannot be excluded");
    }
    let (ok, reason) = run_checks(member, &checks).await;
    probe_reply(ok, reason, query_has(query, "verbose"))
}

pub async fn livez(
    State(m): State<Arc<Member>>,
    method: Method,
    RawQuery(q): RawQuery,
) -> Response {
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    probe(&m, LIVEZ, q.as_deref()).await
}

pub async fn readyz(
    State(m): State<Arc<Member>>,
    method: Method,
    RawQuery(q): RawQuery,
) -> Response {
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    probe(&m, READYZ, q.as_deref()).await
}

pub async fn one_livez(
    State(m): State<Arc<Member>>,
    method: Method,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    one_check(&m, LIVEZ, method, &name, q.as_deref()).await
}

pub async fn one_readyz(
    State(m): State<Arc<Member>>,
    method: Method,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    one_check(&m, READYZ, method, &name, q.as_deref()).await
}

/// `/livez/<check>` and `/readyz/<check>`: one check; an unknown one is Go's 404.
async fn one_check(
    m: &Member,
    all: &[Check],
    method: Method,
    name: &str,
    q: Option<&str>,
) -> Response {
    let Some(&check) = all.iter().find(|c| c.name() == name) else {
        return plain_error(StatusCode::NOT_FOUND, "404 page not found");
    };
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    let (ok, reason) = run_checks(m, &[check]).await;
    probe_reply(ok, reason, query_has(q, "verbose"))
}

/// Why `/health` is false, in etcd 3.5's words (`None`: healthy).
async fn health_reason(
    member: &Member,
    excluded: &BTreeSet<String>,
    serializable: bool,
) -> Option<String> {
    for a in member.alarms().get(AlarmType::None as i32) {
        let name = AlarmType::try_from(a.alarm).map_or("NONE", |t| t.as_str_name());
        if excluded.contains(name) {
            continue;
        }
        tracing::warn!(alarm = name, "serving /health false due to an alarm");
        return Some(match a.alarm {
            x if x == AlarmType::Nospace as i32 => "ALARM NOSPACE".into(),
            x if x == AlarmType::Corrupt as i32 => "ALARM CORRUPT".into(),
            _ => "ALARM UNKNOWN".into(),
        });
    }
    if !serializable && member.leader() == raft::INVALID_ID {
        tracing::warn!("serving /health false; no leader");
        return Some("RAFT NO LEADER".into());
    }
    let timeout = Duration::from_secs(5);
    match tokio::time::timeout(timeout, read(member, serializable)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("RANGE ERROR:{e}")),
        Err(_) => Some(format!("RANGE ERROR:{}", crate::error::EtcdError::Timeout)),
    }
}

/// `/health`: `{"health":"true","reason":""}`, or 503 with the reason (etcd 3.5).
pub async fn health(
    State(m): State<Arc<Member>>,
    method: Method,
    RawQuery(q): RawQuery,
) -> Response {
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    let excluded = query_values(q.as_deref(), "exclude");
    let serializable = query_get(q.as_deref(), "serializable").as_deref() == Some("true");
    let reason = health_reason(&m, &excluded, serializable).await;
    match reason {
        None => chorus_metrics::HEALTH_SUCCESS.inc(),
        Some(_) => chorus_metrics::HEALTH_FAILURES.inc(),
    }
    let body = serde_json::json!({
        "health": if reason.is_none() { "true" } else { "false" },
        "reason": reason.clone().unwrap_or_default(),
    })
    .to_string();
    match reason {
        None => {
            let ct = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
            (StatusCode::OK, ct, body).into_response()
        }
        // Go's http.Error: the JSON as plain text with a newline.
        Some(_) => plain_error(StatusCode::SERVICE_UNAVAILABLE, &body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_follow_go() {
        let q = Some("exclude=NOSPACE&exclude=&exclude=a%20b&verbose");
        let v = query_values(q, "exclude");
        assert_eq!(v.into_iter().collect::<Vec<_>>(), ["NOSPACE", "a b"]);
        assert!(query_has(q, "verbose"));
        assert!(!query_has(q, "serializable"));
        assert_eq!(
            query_get(Some("serializable=true"), "serializable").as_deref(),
            Some("true")
        );
    }
}
