//! What the v2 API parses from a request: query strings and urlencoded bodies, the escaped
//! path, the Content-Type's media type (crates/server/src/api/v2/form.rs), and the JSON
//! bodies of `/v2/auth` (crates/server/src/v2/auth/json.rs, Go's `encoding/json` syntax
//! check and the cursor the user and role decoders walk). Both files are std-only and
//! compiled here as they are (`#[path]`), so the fuzz build does not build the server.
//!
//! Input: a selector byte, then the case's bytes. Contracts beyond no panic:
//! * form: errors are Go's texts; the parsed form, encoded again (`url::query_escape`),
//!   parses to the same form;
//!   a value `uint64` or `bool` accepts is one Go's `ParseUint` or `ParseBool` accepts;
//! * path: an unescaped path escapes and unescapes to itself; a media type is lower case
//!   and parses to itself;
//! * JSON: the first value is a JSON value on its own (`only_value`); whatever serde_json
//!   accepts, Go's syntax check accepts, and strings unquote to what serde_json reads.
#![no_main]

#[allow(dead_code)]
#[rustfmt::skip] // formatted with the server, whose file it is
#[path = "../../crates/server/src/api/v2/form.rs"]
mod form;

#[allow(dead_code)]
#[rustfmt::skip] // formatted with the server, whose file it is
#[path = "../../crates/server/src/v2/auth/json.rs"]
mod json;

use chorus_config::url::query_escape;
use form::{media_type, unescape, Form};
use json::{field_matches, first_value, only_value, Cursor, JsonError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => query(&String::from_utf8_lossy(rest)),
        1 => path_and_type(&String::from_utf8_lossy(rest)),
        _ => auth_body(rest),
    }
});

fn query(text: &str) {
    let mut form = Form::default();
    if let Some(err) = form.parse_into(text) {
        assert!(
            err == "invalid semicolon separator in query"
                || err.starts_with("invalid URL escape \""),
            "not one of Go's errors: {err}"
        );
    }
    let mut again = Form::default();
    assert_eq!(
        again.parse_into(&encode(&form)),
        None,
        "an encoded form parses"
    );
    assert_eq!(again.0, form.0, "form round trip");
    for (key, values) in &form.0 {
        let first = &values[0];
        if form.uint64(key).is_ok() {
            assert!(first.parse::<u64>().is_ok() && !first.starts_with('+'));
        }
        if form.bool(key).is_ok() {
            let go = [
                "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
            ];
            assert!(go.contains(&first.as_str()), "ParseBool refuses {first:?}");
        }
    }
}

/// `url.Values.Encode` without the sorting, with chorus's `QueryEscape`.
fn encode(form: &Form) -> String {
    let mut out = Vec::new();
    for (key, values) in &form.0 {
        for value in values {
            out.push(format!("{}={}", query_escape(key), query_escape(value)));
        }
    }
    out.join("&")
}

/// `QueryEscape` writes a space as `+` (and any `+` as `%2B`): as a path, `%20`.
fn path_escape(s: &str) -> String {
    query_escape(s).replace('+', "%20")
}

fn path_and_type(text: &str) {
    if let Ok(path) = unescape(text, false) {
        assert_eq!(
            unescape(&path_escape(&path), false).as_deref(),
            Ok(path.as_str())
        );
        if !text.contains('+') {
            assert_eq!(unescape(text, true).as_deref(), Ok(path.as_str()));
        }
    }
    if let Ok(t) = media_type(text) {
        assert_eq!(t, t.to_ascii_lowercase());
        assert_eq!(
            media_type(&t).as_deref(),
            Ok(t.as_str()),
            "media type of itself"
        );
    }
}

fn auth_body(body: &[u8]) {
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        assert!(
            only_value(body).is_ok(),
            "serde_json accepts what Go's check refuses"
        );
    }
    let Ok(value) = first_value(body) else {
        return;
    };
    assert_eq!(only_value(value), Ok(value), "the first value alone");
    if let Ok(s) = serde_json::from_slice::<String>(value) {
        assert_eq!(Cursor::new(value).string(), Ok(s), "unquoting");
    }
    let mut role = Role::default();
    let _ = decode_role(&mut Cursor::new(value), &mut role);
    let mut strings = None;
    let _ = Cursor::new(value).into_strings(&mut strings);
    Cursor::new(value).skip().expect("a checked value skips");
}

/// The shape of the role decoder in `v2/auth/model.rs` (which needs the server's types):
/// strings, string lists and nested objects, every other field skipped.
#[derive(Default)]
struct Role {
    role: String,
    read: Option<Vec<String>>,
    write: Option<Vec<String>>,
}

fn decode_role(c: &mut Cursor<'_>, r: &mut Role) -> Result<(), JsonError> {
    if c.null() {
        return Ok(());
    }
    c.object(|c, key| {
        if field_matches(key, "role") {
            c.into_string(&mut r.role)
        } else if field_matches(key, "permissions") || field_matches(key, "kv") {
            decode_role(c, r)
        } else if field_matches(key, "read") {
            c.into_strings(&mut r.read)
        } else if field_matches(key, "write") {
            c.into_strings(&mut r.write)
        } else {
            c.skip()
        }
    })
}
