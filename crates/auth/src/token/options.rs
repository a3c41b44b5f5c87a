//! `--auth-token`, parsed as etcd parses it (`decomposeOpts`, `jwtOptions`):
//! `simple`, `jwt,pub-key=<file>,priv-key=<file>,sign-method=<alg>,ttl=<duration>`, or empty
//! (no tokens: Authenticate always fails).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::AuthOptionsError;

/// etcd's JWT `DefaultTTL`.
pub const DEFAULT_JWT_TTL: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOptions {
    /// `--auth-token=` (empty): etcd's no-op provider.
    Nop,
    Simple,
    Jwt(JwtOptions),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtOptions {
    /// As given (`RS256`, `ES256`, `EdDSA`, `HS256`, ...); checked when keys are loaded.
    pub sign_method: String,
    pub pub_key: Option<PathBuf>,
    pub priv_key: Option<PathBuf>,
    pub ttl: Duration,
}

fn invalid(detail: impl Into<String>) -> AuthOptionsError {
    AuthOptionsError::InvalidAuthOpts {
        detail: detail.into(),
    }
}

impl TokenOptions {
    pub fn parse(s: &str) -> Result<TokenOptions, AuthOptionsError> {
        let mut parts = s.split(',');
        let kind = parts.next().unwrap_or("");
        let mut opts = HashMap::new();
        for part in parts {
            let pair: Vec<&str> = part.split('=').collect();
            let [k, v] = pair[..] else {
                return Err(invalid(format!("invalid token option {part:?}")));
            };
            if opts.insert(k.to_owned(), v.to_owned()).is_some() {
                return Err(invalid(format!("duplicate token option {k:?}")));
            }
        }
        match kind {
            "" => Ok(TokenOptions::Nop),
            "simple" => Ok(TokenOptions::Simple),
            "jwt" => JwtOptions::from_map(&opts).map(TokenOptions::Jwt),
            other => Err(invalid(format!("unknown token type {other:?}"))),
        }
    }
}

impl JwtOptions {
    fn from_map(opts: &HashMap<String, String>) -> Result<JwtOptions, AuthOptionsError> {
        let unknown: Vec<&str> = opts
            .keys()
            .map(String::as_str)
            .filter(|k| !["sign-method", "pub-key", "priv-key", "ttl"].contains(k))
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(keys = ?unknown, "unknown JWT options");
        }
        let ttl = match opts.get("ttl").map(String::as_str) {
            None | Some("") => DEFAULT_JWT_TTL,
            Some(t) => parse_go_duration(t).ok_or_else(|| invalid(format!("invalid ttl {t:?}")))?,
        };
        let path = |k: &str| opts.get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let sign_method = opts.get("sign-method").cloned().unwrap_or_default();
        if !super::jwt::is_sign_method(&sign_method) {
            return Err(invalid("invalid auth signature method"));
        }
        Ok(JwtOptions {
            sign_method,
            pub_key: path("pub-key"),
            priv_key: path("priv-key"),
            ttl,
        })
    }
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`. Negative
/// durations are refused (a token TTL cannot be negative).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * nanos;
        rest = next;
    }
    (total < u64::MAX as f64).then(|| Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_etcds_forms() {
        assert_eq!(TokenOptions::parse("").unwrap(), TokenOptions::Nop);
        assert_eq!(TokenOptions::parse("simple").unwrap(), TokenOptions::Simple);
        assert_eq!(
            TokenOptions::parse("simple,a=b").unwrap(),
            TokenOptions::Simple
        );
        let jwt = TokenOptions::parse("jwt,pub-key=/a.pub,priv-key=/a,sign-method=RS256,ttl=10m")
            .unwrap();
        assert_eq!(
            jwt,
            TokenOptions::Jwt(JwtOptions {
                sign_method: "RS256".into(),
                pub_key: Some("/a.pub".into()),
                priv_key: Some("/a".into()),
                ttl: Duration::from_secs(600),
            })
        );
        let TokenOptions::Jwt(j) = TokenOptions::parse("jwt,sign-method=HS256").unwrap() else {
            panic!()
        };
        assert_eq!(j.ttl, DEFAULT_JWT_TTL);
    }

    #[test]
    fn refuses_what_etcd_refuses() {
        for bad in [
            "bogus",
            "simple,a",
            "simple,a=b=c",
            "simple,a=b,a=c",
            "jwt",
            "jwt,sign-method=XX256",
            "jwt,sign-method=none",
            "jwt,sign-method=RS256,ttl=5",
            "jwt,sign-method=RS256,ttl=abc",
        ] {
            let err = TokenOptions::parse(bad).unwrap_err();
            assert_eq!(err.to_string(), "auth: invalid auth options", "{bad}");
        }
    }

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s);
        assert_eq!(d("300s"), Some(Duration::from_secs(300)));
        assert_eq!(d("5m"), Some(Duration::from_secs(300)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(d("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("10"), None);
        assert_eq!(d("-1s"), None);
        assert_eq!(d("1x"), None);
        assert_eq!(d(""), None);
    }
}
