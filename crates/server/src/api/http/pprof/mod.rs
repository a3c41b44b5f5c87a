//! `/debug/pprof/` (`--enable-pprof`, and `--log-level=debug` as in etcd): Go's
//! `net/http/pprof` endpoints that have a meaning for a Rust process.
//!
//! ```text
//!   /debug/pprof/                 index page (HTML)
//!   /debug/pprof/profile?seconds  CPU profile (cpu.rs): SIGPROF sampling at 100 Hz for
//!                                 N seconds (default 30), gzipped pprof protobuf
//!   /debug/pprof/cmdline          the process arguments, NUL-separated
//!   /debug/pprof/{heap,goroutine,allocs,block,mutex,threadcreate,trace,symbol}
//!                                 501: they describe Go's runtime (explained in the body)
//!   /debug/pprof/<other>          404 "Unknown profile", as Go answers
//! ```
//! Nothing here runs unless a request asks for it: with the flag off the routes do not
//! exist, and with it on the profiler's timer and signal handler are armed only for the
//! length of a `profile` request.

mod cpu;

use axum::extract::{Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use cpu::{ProfileError, ProfileRequest};

/// Where etcd mounts the handlers (`debugutil.HTTPPrefixPProf`).
pub const PREFIX: &str = "/debug/pprof";

/// Go's pprof endpoints that report on the Go runtime; chorus has no equivalent.
const GO_RUNTIME_ONLY: [(&str, &str); 8] = [
    (
        "heap",
        "Go's heap profile samples the Go garbage collector's allocations",
    ),
    (
        "allocs",
        "Go's allocation profile samples the Go garbage collector's allocations",
    ),
    (
        "goroutine",
        "chorus has no goroutines; its tasks are tokio tasks",
    ),
    (
        "threadcreate",
        "Go's thread-creation profile records the Go scheduler's threads",
    ),
    (
        "block",
        "Go's blocking profile records the Go scheduler's blocking events",
    ),
    (
        "mutex",
        "Go's mutex profile records contention on Go's sync.Mutex",
    ),
    (
        "trace",
        "Go's execution tracer records the Go scheduler's events",
    ),
    (
        "symbol",
        "the CPU profiles chorus writes are already symbolized",
    ),
];

/// The routes under [`PREFIX`], to merge into the client port's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/debug/pprof", get(index))
        .route("/debug/pprof/", get(index))
        .route("/debug/pprof/profile", get(profile))
        .route("/debug/pprof/cmdline", get(cmdline))
        .route("/debug/pprof/{name}", get(other))
}

async fn profile(Query(req): Query<ProfileRequest>) -> Response {
    match cpu::capture(req.duration()).await {
        Ok(gzipped) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    r#"attachment; filename="profile""#,
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            gzipped,
        )
            .into_response(),
        Err(e) => serve_error(e.status(), &e.to_string()),
    }
}

/// Go's `pprof.Cmdline`: the program's arguments separated by NUL bytes.
async fn cmdline() -> Response {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    text(StatusCode::OK, args.join("\0"))
}

async fn other(Path(name): Path<String>) -> Response {
    match GO_RUNTIME_ONLY.iter().find(|(n, _)| *n == name) {
        Some((_, why)) => serve_error(
            StatusCode::NOT_IMPLEMENTED,
            &format!(
                "profile {name:?} is not available in chorus: {why} (see docs/compatibility.md); \
                 /debug/pprof/profile serves a CPU profile"
            ),
        ),
        None => serve_error(StatusCode::NOT_FOUND, "Unknown profile"),
    }
}

async fn index() -> Response {
    let mut rows = String::from(
        "<tr><td><a href=\"profile?seconds=30\">profile</a></td>\
         <td>CPU profile in the pprof format; add <code>?seconds=N</code> (default 30)</td></tr>\n\
         <tr><td><a href=\"cmdline\">cmdline</a></td>\
         <td>the command line of the running program</td></tr>\n",
    );
    for (name, why) in GO_RUNTIME_ONLY {
        rows.push_str(&format!(
            "<tr><td>{name}</td><td>not available: {why}</td></tr>\n"
        ));
    }
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<title>/debug/pprof/</title>\n</head>\n\
         <body>\n<h1>/debug/pprof/</h1>\n<p>Profiles of the running chorus process.</p>\n\
         <table>\n<tr><th>endpoint</th><th>description</th></tr>\n{rows}</table>\n\
         <p>Read a CPU profile with <code>go tool pprof http://HOST:PORT/debug/pprof/profile?seconds=10</code>.</p>\n\
         </body>\n</html>\n"
    );
    typed(StatusCode::OK, body, "text/html; charset=utf-8")
}

fn text(status: StatusCode, body: String) -> Response {
    typed(status, body, "text/plain; charset=utf-8")
}

fn typed(status: StatusCode, body: String, content_type: &'static str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Go's `serveError`: a text line with the `X-Go-Pprof` marker.
fn serve_error(status: StatusCode, msg: &str) -> Response {
    let mut r = text(status, format!("{msg}\n"));
    r.headers_mut()
        .insert("x-go-pprof", HeaderValue::from_static("1"));
    r
}
