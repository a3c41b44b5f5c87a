//! `/debug/pprof/` (`--enable-pprof`, and `--log-level=debug` as in etcd): Go's
//! `net/http/pprof` endpoints that have a meaning for a Rust process.
//!
//! ```text
//!   /debug/pprof/                 index page (HTML)
//!   /debug/pprof/profile?seconds  CPU profile (cpu.rs): SIGPROF sampling at 100 Hz for
//!                                 N seconds (default 30), gzipped pprof protobuf
//!   /debug/pprof/heap             heap profile (heap/): live sampled allocations, about
//!                                 one per 512 KiB allocated, scaled as Go scales them
//!   /debug/pprof/allocs           the same samples, allocated since start-up by default
//!   /debug/pprof/goroutine        tokio task dump (tasks.rs): one sample per task stack;
//!                                 ?debug=1 counts per stack, ?debug=2 every task, as text
//!   /debug/pprof/cmdline          the process arguments, NUL-separated
//!   /debug/pprof/{block,mutex,threadcreate,trace,symbol}
//!                                 501: they describe Go's runtime (explained in the body)
//!   /debug/pprof/<other>          404 "Unknown profile", as Go answers
//! ```
//! The profiles are gzipped pprof protobufs that `go tool pprof` reads (encode.rs).
//! Nothing here runs unless the flag is on: without it the routes do not exist and the
//! sampling allocator only checks one flag per allocation. With it, heap sampling runs
//! from start-up (a live profile needs the allocations made before the request), the
//! CPU profiler's timer and signal handler are armed only for the length of a `profile`
//! request, and tokio dumps its tasks only when `goroutine` is asked for.
//! docs/adr/0011-heap-profiling.md explains the choices, with measurements.

mod cpu;
mod encode;
pub mod heap;
mod tasks;

use axum::extract::{Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use cpu::{ProfileError, ProfileRequest};

/// Where etcd mounts the handlers (`debugutil.HTTPPrefixPProf`).
pub const PREFIX: &str = "/debug/pprof";

/// Go's pprof endpoints that report on the Go runtime; chorus has no equivalent.
const GO_RUNTIME_ONLY: [(&str, &str); 5] = [
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
        .route("/debug/pprof/goroutine", get(goroutine))
        .route("/debug/pprof/heap", get(|| heap_profile(heap::View::Heap)))
        .route(
            "/debug/pprof/allocs",
            get(|| heap_profile(heap::View::Allocs)),
        )
        .route("/debug/pprof/{name}", get(other))
}

async fn profile(Query(req): Query<ProfileRequest>) -> Response {
    match cpu::capture(req.duration()).await {
        Ok(gzipped) => attachment("profile", gzipped),
        Err(e) => serve_error(e.status(), &e.to_string()),
    }
}

/// `?debug=N` of Go's profile handlers: a missing or malformed value means 0 (binary).
#[derive(Debug, Default, serde::Deserialize)]
struct DebugRequest {
    debug: Option<String>,
}

impl DebugRequest {
    fn level(&self) -> i64 {
        self.debug
            .as_deref()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    }
}

/// The task dump (tasks.rs): pprof protobuf, or Go's text forms for `debug=1` and `2`.
async fn goroutine(Query(req): Query<DebugRequest>) -> Response {
    let tasks = match tasks::snapshot().await {
        Ok(t) => t,
        Err(e) => return serve_error(e.status(), &e.to_string()),
    };
    match req.level() {
        d if d >= 2 => text(StatusCode::OK, tasks::each_text(&tasks)),
        1 => text(StatusCode::OK, tasks::counts_text(&tasks)),
        _ => match tasks::pprof(&tasks) {
            Ok(gzipped) => attachment("goroutine", gzipped),
            Err(e) => serve_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &tasks::TasksError::from(e).to_string(),
            ),
        },
    }
}

/// The heap profile (heap/): `heap` and `allocs` are two views of the same samples.
async fn heap_profile(view: heap::View) -> Response {
    let name = match view {
        heap::View::Heap => "heap",
        heap::View::Allocs => "allocs",
    };
    match tokio::task::spawn_blocking(move || heap::profile(view)).await {
        Ok(Ok(gzipped)) => attachment(name, gzipped),
        Ok(Err(e)) => serve_error(e.status(), &e.to_string()),
        Err(e) => serve_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A binary profile, with the headers Go's handlers send.
fn attachment(name: &str, gzipped: Vec<u8>) -> Response {
    let mut r = gzipped.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
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
         <tr><td><a href=\"heap\">heap</a></td>\
         <td>live memory by allocating stack (sampled, one per 512 KiB allocated)</td></tr>\n\
         <tr><td><a href=\"allocs\">allocs</a></td>\
         <td>memory allocated since start-up by stack (the same samples)</td></tr>\n\
         <tr><td><a href=\"goroutine?debug=1\">goroutine</a></td>\
         <td>stacks of the tokio tasks; <code>?debug=2</code> lists every task</td></tr>\n\
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
         <p>Read a profile with <code>go tool pprof http://HOST:PORT/debug/pprof/profile?seconds=10</code> (or <code>heap</code>, <code>goroutine</code>).</p>\n\
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
