//! A URL type with Go `net/url` semantics, plus etcd's `types.NewURLs` rules.
//!
//! etcd validates every URL flag with Go's `url.Parse` followed by a few
//! checks of its own, and prints Go's error text verbatim
//! (e.g. `parse "http://[::1": missing ']' in host`). To produce the same
//! acceptance set and messages, this is a port of the relevant subset of
//! `net/url` (Go 1.19), not a general-purpose URL library.

use std::fmt;
use std::net::IpAddr;

use super::goparse::go_quote;

/// A parsed URL, field-for-field like Go's `url.URL` (the parts etcd uses).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Url {
    /// Lower-cased scheme (`http`, `https`, `unix`, `unixs`).
    pub scheme: String,
    /// Opaque part for `scheme:opaque` URLs (never set in a validated etcd URL list).
    pub opaque: String,
    /// Raw userinfo (`user:pass`), if an `@` was present.
    pub user: Option<String>,
    /// `host:port` exactly as written (IPv6 hosts keep their brackets).
    pub host: String,
    /// Path as written (always empty in a validated etcd URL list).
    pub path: String,
    /// Query string without `?`.
    pub raw_query: String,
    /// True when the URL ended with a lone `?`.
    pub force_query: bool,
    /// Fragment without `#`.
    pub fragment: String,
}

impl Url {
    /// Go's `url.Parse`. The error string is Go's, e.g.
    /// `parse "127.0.0.1:2379": first path segment in URL cannot contain colon`.
    pub fn parse_go(raw: &str) -> Result<Url, String> {
        let (u, frag) = match raw.find('#') {
            Some(i) => (&raw[..i], Some(&raw[i + 1..])),
            None => (raw, None),
        };
        let mut url = parse_inner(u).map_err(|e| format!("parse {}: {e}", go_quote(u)))?;
        if let Some(frag) = frag {
            if !frag.is_empty() {
                unescape_check(frag, Mode::Fragment)
                    .map_err(|e| format!("parse {}: {e}", go_quote(raw)))?;
                url.fragment = frag.to_string();
            }
        }
        Ok(url)
    }

    /// Parse one URL with etcd's `types.NewURLs` rules (trimmed, scheme
    /// http/https/unix/unixs, `host:port`, no path).
    pub fn parse_etcd(raw: &str) -> Result<Url, String> {
        let input = raw.trim();
        let u = Url::parse_go(input)?;
        if !matches!(u.scheme.as_str(), "http" | "https" | "unix" | "unixs") {
            return Err(format!(
                "URL scheme must be http, https, unix, or unixs: {input}"
            ));
        }
        if split_host_port(&u.host).is_err() {
            return Err(format!(
                "URL address does not have the form \"host:port\": {input}"
            ));
        }
        if !u.path.is_empty() {
            return Err(format!("URL must not contain a path: {input}"));
        }
        Ok(u)
    }

    /// `url.URL.Hostname()`: host without port and without IPv6 brackets.
    pub fn hostname(&self) -> &str {
        let (host, _) = split_host_port_lenient(&self.host);
        host
    }

    /// `url.URL.Port()`: the port, or "" when there is none.
    pub fn port(&self) -> &str {
        let (_, port) = split_host_port_lenient(&self.host);
        port
    }

    /// True for `https` and `unixs`.
    pub fn is_tls(&self) -> bool {
        self.scheme == "https" || self.scheme == "unixs"
    }

    /// True for `unix` and `unixs`.
    pub fn is_unix(&self) -> bool {
        self.scheme == "unix" || self.scheme == "unixs"
    }
}

/// etcd's `types.NewURLs`: parse each element, fail on the first bad one,
/// then sort by string form. An empty list is an error ("no valid URLs given").
pub fn parse_url_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<Url>, String> {
    if items.is_empty() {
        return Err("no valid URLs given".to_string());
    }
    let mut out = Vec::with_capacity(items.len());
    for s in items {
        out.push(Url::parse_etcd(s.as_ref())?);
    }
    sort_urls(&mut out);
    Ok(out)
}

/// `types.NewURLs(strings.Split(s, ","))`.
pub fn parse_url_csv(s: &str) -> Result<Vec<Url>, String> {
    let parts: Vec<&str> = s.split(',').collect();
    parse_url_list(&parts)
}

/// Sort like `types.URLs.Sort` (lexicographic on `String()`).
pub fn sort_urls(urls: &mut [Url]) {
    urls.sort_by_cached_key(|u| u.to_string());
}

/// Query-string escaping as Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Comma-join the string forms (`types.URLs.String()`).
pub fn join_urls(urls: &[Url]) -> String {
    urls.iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Url {
    /// Go's `url.URL.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.scheme.is_empty() {
            write!(f, "{}:", self.scheme)?;
        }
        if !self.opaque.is_empty() {
            f.write_str(&self.opaque)?;
        } else {
            if (!self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some())
                && (!self.host.is_empty() || !self.path.is_empty() || self.user.is_some())
            {
                f.write_str("//")?;
            }
            if let Some(user) = &self.user {
                write!(f, "{user}@")?;
            }
            if !self.host.is_empty() {
                f.write_str(&escape_host(&self.host))?;
            }
            if !self.path.is_empty() && !self.path.starts_with('/') && !self.host.is_empty() {
                f.write_str("/")?;
            }
            f.write_str(&self.path)?;
        }
        if self.force_query || !self.raw_query.is_empty() {
            write!(f, "?{}", self.raw_query)?;
        }
        if !self.fragment.is_empty() {
            write!(f, "#{}", self.fragment)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Host,
    Path,
    Fragment,
    UserInfo,
}

fn parse_inner(raw: &str) -> Result<Url, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_string());
    }
    let mut url = Url {
        scheme: String::new(),
        opaque: String::new(),
        user: None,
        host: String::new(),
        path: String::new(),
        raw_query: String::new(),
        force_query: false,
        fragment: String::new(),
    };
    if raw == "*" {
        url.path = "*".to_string();
        return Ok(url);
    }
    let (scheme, rest) = get_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = rest;
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        url.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some(i) = rest.find('?') {
        url.raw_query = rest[i + 1..].to_string();
        rest = &rest[..i];
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_string();
            return Ok(url);
        }
        let segment = rest.split('/').next().unwrap_or("");
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".to_string());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let mut authority = &rest[2..];
        rest = "";
        if let Some(i) = authority.find('/') {
            rest = &authority[i..];
            authority = &authority[..i];
        }
        let (user, host) = parse_authority(authority)?;
        url.user = user;
        url.host = host;
    }
    unescape_check(rest, Mode::Path)?;
    url.path = rest.to_string();
    Ok(url)
}

fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        if c.is_ascii_alphabetic() {
            continue;
        }
        if c.is_ascii_digit() || c == b'+' || c == b'-' || c == b'.' {
            if i == 0 {
                return Ok(("", raw));
            }
            continue;
        }
        if c == b':' {
            if i == 0 {
                return Err("missing protocol scheme".to_string());
            }
            return Ok((&raw[..i], &raw[i + 1..]));
        }
        return Ok(("", raw));
    }
    Ok(("", raw))
}

fn parse_authority(authority: &str) -> Result<(Option<String>, String), String> {
    match authority.rfind('@') {
        None => Ok((None, parse_host(authority)?)),
        Some(i) => {
            let host = parse_host(&authority[i + 1..])?;
            let userinfo = &authority[..i];
            if !valid_userinfo(userinfo) {
                return Err("net/url: invalid userinfo".to_string());
            }
            unescape_check(userinfo, Mode::UserInfo)?;
            Ok((Some(userinfo.to_string()), host))
        }
    }
}

fn valid_userinfo(s: &str) -> bool {
    s.chars().all(|r| {
        r.is_ascii_alphanumeric()
            || matches!(
                r,
                '-' | '.'
                    | '_'
                    | ':'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | '%'
                    | '@'
            )
    })
}

fn valid_optional_port(port: &str) -> bool {
    if port.is_empty() {
        return true;
    }
    let Some(digits) = port.strip_prefix(':') else {
        return false;
    };
    digits.bytes().all(|b| b.is_ascii_digit())
}

fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else {
            return Err("missing ']' in host".to_string());
        };
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", go_quote(colon_port)));
        }
        // zone (`%25...`) inside brackets: validate escapes only.
        let inner = &host[..i];
        if let Some(z) = inner.find("%25") {
            unescape_check(&inner[..z], Mode::Host)?;
            return Ok(host.to_string());
        }
    } else if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", go_quote(colon_port)));
        }
    }
    unescape_check(host, Mode::Host)?;
    Ok(host.to_string())
}

fn should_escape_host(c: u8) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    !matches!(
        c,
        b'!' | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'['
            | b']'
            | b'<'
            | b'>'
            | b'"'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
    )
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Validation half of Go's `unescape` (we keep raw text; Go keeps decoded
/// text, which only differs for `%`-escaped input).
fn unescape_check(s: &str, mode: Mode) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let valid = i + 2 < b.len() && unhex(b[i + 1]).is_some() && unhex(b[i + 2]).is_some();
            if !valid {
                let end = (i + 3).min(b.len());
                let esc = String::from_utf8_lossy(&b[i..end]);
                return Err(format!("invalid URL escape {}", go_quote(&esc)));
            }
            if mode == Mode::Host && unhex(b[i + 1]).unwrap_or(0) < 8 && &b[i..i + 3] != b"%25" {
                let esc = String::from_utf8_lossy(&b[i..i + 3]);
                return Err(format!("invalid URL escape {}", go_quote(&esc)));
            }
            i += 3;
            continue;
        }
        if mode == Mode::Host && b[i] < 0x80 && should_escape_host(b[i]) {
            let ch = String::from_utf8_lossy(&b[i..i + 1]);
            return Err(format!("invalid character {} in host name", go_quote(&ch)));
        }
        i += 1;
    }
    Ok(())
}

fn escape_host(host: &str) -> String {
    if host.bytes().all(|b| b < 0x80) {
        return host.to_string();
    }
    let mut out = String::with_capacity(host.len() * 3);
    for b in host.bytes() {
        if b >= 0x80 {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Go's `net.SplitHostPort`, error text included (`address x: missing port in address`).
pub fn split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    let addr_err = |why: &str| {
        if hostport.is_empty() {
            why.to_string()
        } else {
            format!("address {hostport}: {why}")
        }
    };
    let Some(i) = hostport.rfind(':') else {
        return Err(addr_err("missing port in address"));
    };
    let (host, j, k);
    if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err(addr_err("missing ']' in address"));
        };
        if end + 1 == hostport.len() {
            return Err(addr_err("missing port in address"));
        } else if end + 1 != i {
            if hostport.as_bytes()[end + 1] == b':' {
                return Err(addr_err("too many colons in address"));
            }
            return Err(addr_err("missing port in address"));
        }
        host = &hostport[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return Err(addr_err("too many colons in address"));
        }
        j = 0;
        k = 0;
    }
    if hostport[j..].contains('[') {
        return Err(addr_err("unexpected '[' in address"));
    }
    if hostport[k..].contains(']') {
        return Err(addr_err("unexpected ']' in address"));
    }
    Ok((host, &hostport[i + 1..]))
}

/// Go's `url.URL.Hostname()`/`Port()` split, which never fails.
fn split_host_port_lenient(hostport: &str) -> (&str, &str) {
    let (mut host, mut port) = (hostport, "");
    if let Some(colon) = hostport.rfind(':') {
        if valid_optional_port(&hostport[colon..]) {
            host = &hostport[..colon];
            port = &hostport[colon + 1..];
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        host = &host[1..host.len() - 1];
    }
    (host, port)
}

/// Go's `net.ParseIP(s) != nil` (no zones, no leading-zero IPv4 octets).
pub fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        Url::parse_etcd(s).unwrap_err()
    }

    // Each expectation below is the text real etcd 3.4.23 printed after
    // `invalid value "..." for flag -listen-client-urls: `.
    #[test]
    fn etcd_url_errors_match_real_etcd() {
        assert_eq!(
            err("foo"),
            "URL scheme must be http, https, unix, or unixs: foo"
        );
        assert_eq!(
            err("127.0.0.1:2379"),
            "parse \"127.0.0.1:2379\": first path segment in URL cannot contain colon"
        );
        assert_eq!(
            err("localhost:2379"),
            "URL scheme must be http, https, unix, or unixs: localhost:2379"
        );
        assert_eq!(
            err("http://127.0.0.1:abc"),
            "parse \"http://127.0.0.1:abc\": invalid port \":abc\" after host"
        );
        assert_eq!(
            err("http://a b:1"),
            "parse \"http://a b:1\": invalid character \" \" in host name"
        );
        assert_eq!(err(":foo"), "parse \":foo\": missing protocol scheme");
        assert_eq!(
            err("http://%zz:1"),
            "parse \"http://%zz:1\": invalid URL escape \"%zz\""
        );
        assert_eq!(
            err("http://[::1"),
            "parse \"http://[::1\": missing ']' in host"
        );
        assert_eq!(
            err("http://[::1]:1x"),
            "parse \"http://[::1]:1x\": invalid port \":1x\" after host"
        );
        assert_eq!(
            err("unix:///tmp/x"),
            "URL address does not have the form \"host:port\": unix:///tmp/x"
        );
        assert_eq!(
            err("http://127.0.0.1"),
            "URL address does not have the form \"host:port\": http://127.0.0.1"
        );
        assert_eq!(
            err("http://127.0.0.1:2379/foo"),
            "URL must not contain a path: http://127.0.0.1:2379/foo"
        );
        assert_eq!(
            err("*"),
            "URL scheme must be http, https, unix, or unixs: *"
        );
        assert_eq!(err(""), "URL scheme must be http, https, unix, or unixs: ");
    }

    #[test]
    fn go_string_form() {
        let u = Url::parse_etcd(" HTTP://127.0.0.1:2379 ").unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:2379");
        assert_eq!(u.hostname(), "127.0.0.1");
        assert_eq!(u.port(), "2379");
        let u = Url::parse_etcd("http://[::1]:2379").unwrap();
        assert_eq!(u.to_string(), "http://[::1]:2379");
        assert_eq!(u.hostname(), "::1");
        let u = Url::parse_etcd("unix://localhost:123").unwrap();
        assert!(u.is_unix());
        assert_eq!(u.to_string(), "unix://localhost:123");
        let u = Url::parse_etcd("http://u:p@h:1?x=1").unwrap();
        assert_eq!(u.to_string(), "http://u:p@h:1?x=1");
    }

    #[test]
    fn list_parse_sorts_and_keeps_duplicates() {
        let l = parse_url_csv("http://b:1,http://a:1,http://a:1").unwrap();
        assert_eq!(join_urls(&l), "http://a:1,http://a:1,http://b:1");
        assert_eq!(
            parse_url_csv("http://127.0.0.1:1,,http://127.0.0.1:2").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: "
        );
    }

    #[test]
    fn split_host_port_matches_go() {
        assert_eq!(split_host_port("a:1"), Ok(("a", "1")));
        assert_eq!(split_host_port("[::1]:1"), Ok(("::1", "1")));
        assert_eq!(split_host_port(":1"), Ok(("", "1")));
        assert_eq!(
            split_host_port("a").unwrap_err(),
            "address a: missing port in address"
        );
        assert_eq!(
            split_host_port("a:b:c").unwrap_err(),
            "address a:b:c: too many colons in address"
        );
        assert_eq!(split_host_port("").unwrap_err(), "missing port in address");
    }
}
