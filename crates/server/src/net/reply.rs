//! Plain HTTP replies shaped as Go's `net/http` writes them (etcd's handlers use it).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Go's `http.Error`: a plain-text body with a newline, `nosniff`.
pub fn plain_error(status: StatusCode, msg: &str) -> Response {
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
pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = plain_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}
