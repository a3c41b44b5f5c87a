//! Go's URL and form rules as etcd's v2 handlers meet them: `url.ParseQuery` of query
//! strings and urlencoded bodies, `url.QueryUnescape` and `url.PathUnescape`, the scalar
//! parsers of `getUint64` and `getBool`, and `mime.ParseMediaType`'s media type. Plain
//! functions of bytes (std only): the `fuzz/` crate compiles this file as it is
//! (fuzz/fuzz_targets/v2_form.rs).

use std::collections::HashMap;

/// Go's `url.EscapeError` text.
fn escape_error(s: &[u8]) -> String {
    let cut = &s[..s.len().min(3)];
    format!("invalid URL escape {}", go_quote(cut))
}

/// Go's `strconv.Quote` (close enough for the short strings errors quote).
fn go_quote(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('"');
    out
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_val(b: u8) -> u8 {
    (b as char).to_digit(16).unwrap_or(0) as u8
}

/// Go's `url.QueryUnescape` (`plus` true) or `url.PathUnescape` (`plus` false).
pub(super) fn unescape(s: &str, plus: bool) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if i + 2 >= b.len() || !is_hex(b[i + 1]) || !is_hex(b[i + 2]) {
                    return Err(escape_error(&b[i..]));
                }
                out.push(hex_val(b[i + 1]) << 4 | hex_val(b[i + 2]));
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A parsed form: every value of every name, body values before query values.
#[derive(Debug, Default)]
pub(super) struct Form(pub(super) HashMap<String, Vec<String>>);

impl Form {
    /// Go's `url.ParseQuery`: keeps what it can parse, returns the first error (a later
    /// semicolon error replaces an earlier one, as in Go).
    pub(super) fn parse_into(&mut self, query: &str) -> Option<String> {
        let mut err = None;
        for pair in query.split('&') {
            if pair.contains(';') {
                err = Some("invalid semicolon separator in query".to_string());
                continue;
            }
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = match unescape(k, true) {
                Ok(k) => k,
                Err(e) => {
                    err.get_or_insert(e);
                    continue;
                }
            };
            let v = match unescape(v, true) {
                Ok(v) => v,
                Err(e) => {
                    err.get_or_insert(e);
                    continue;
                }
            };
            self.0.entry(k).or_default().push(v);
        }
        err
    }

    pub(super) fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    /// Go's `FormValue`: the first value, or "".
    pub(super) fn value(&self, k: &str) -> &str {
        self.0
            .get(k)
            .and_then(|v| v.first())
            .map_or("", |s| s.as_str())
    }

    /// etcd's `getUint64`: absent is 0; the first value must be a decimal u64.
    pub(super) fn uint64(&self, k: &str) -> Result<u64, ()> {
        match self.0.get(k).and_then(|v| v.first()) {
            None => Ok(0),
            Some(s) => parse_go_uint(s).ok_or(()),
        }
    }

    /// etcd's `getBool`: absent is false; the first value must be a Go bool.
    pub(super) fn bool(&self, k: &str) -> Result<bool, ()> {
        match self.0.get(k).and_then(|v| v.first()) {
            None => Ok(false),
            Some(s) => parse_go_bool(s).ok_or(()),
        }
    }
}

/// `strconv.ParseUint(s, 10, 64)`.
fn parse_go_uint(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii() && c > ' ' && c != '\x7f' && !"()<>@,;:\\\"/[]?=".contains(c)
}

/// The media type of a Content-Type value as Go's `mime.ParseMediaType` sees it (the
/// parameters are not checked).
pub(super) fn media_type(ct: &str) -> Result<String, String> {
    let base = ct.split(';').next().unwrap_or("").trim();
    let token_end = |s: &str| s.find(|c| !is_token_char(c)).unwrap_or(s.len());
    let t = token_end(base);
    if t == 0 {
        return Err("mime: no media type".into());
    }
    let rest = &base[t..];
    if !rest.is_empty() {
        let Some(sub) = rest.strip_prefix('/') else {
            return Err("mime: expected slash after first token".into());
        };
        let s = token_end(sub);
        if s == 0 {
            return Err("mime: expected token after slash".into());
        }
        if s != sub.len() {
            return Err("mime: unexpected content after media subtype".into());
        }
    }
    Ok(base.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_like_go() {
        let mut f = Form::default();
        assert_eq!(f.parse_into("a=1&b=x+y&a=2&&c"), None);
        assert_eq!(f.0["a"], vec!["1", "2"]);
        assert_eq!(f.value("b"), "x y");
        assert!(f.has("c") && f.value("c").is_empty());
        let mut f = Form::default();
        assert_eq!(
            f.parse_into("x=%zz&y=1"),
            Some("invalid URL escape \"%zz\"".into())
        );
        assert_eq!(f.value("y"), "1");
        assert_eq!(
            Form::default().parse_into("a=1;b=2"),
            Some("invalid semicolon separator in query".into())
        );
        assert_eq!(
            Form::default().parse_into("v=%4"),
            Some("invalid URL escape \"%4\"".into())
        );
    }

    #[test]
    fn go_scalars() {
        assert_eq!(parse_go_uint("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_go_uint("18446744073709551616"), None);
        assert_eq!(parse_go_uint("+5"), None);
        assert_eq!(parse_go_uint(""), None);
        assert_eq!(parse_go_bool("T"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
    }

    #[test]
    fn media_types() {
        assert_eq!(
            media_type("APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8").unwrap(),
            "application/x-www-form-urlencoded"
        );
        assert_eq!(media_type(";;").unwrap_err(), "mime: no media type");
        assert_eq!(
            media_type("text/").unwrap_err(),
            "mime: expected token after slash"
        );
    }
}
