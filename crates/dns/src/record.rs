//! One SkyDNS record: the JSON value of a key under `/skydns/` (CoreDNS's `msg.Service`),
//! e.g. `/skydns/local/chorus/web/x1` = `{"host":"10.0.0.1","port":8080,"priority":10,
//! "weight":10,"ttl":30,"text":"..."}`, and the key ⇄ name mapping.

use std::net::IpAddr;

use serde::Deserialize;

/// CoreDNS's default TTL of a record without one (and without a lease).
pub const DEFAULT_TTL: u32 = 300;
/// TTL of a leased record without its own: CoreDNS's default minimum lease TTL.
pub const LEASED_TTL: u32 = 30;
/// CoreDNS's priority of a record without one.
pub const DEFAULT_PRIORITY: u16 = 10;

/// A record as stored (unknown JSON fields are ignored, as Go's decoder does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Service {
    pub host: String,
    pub port: i64,
    pub priority: i64,
    pub weight: i64,
    pub text: String,
    pub mail: bool,
    pub ttl: u32,
    pub targetstrip: i64,
    pub group: String,
    /// The etcd key (not part of the JSON).
    #[serde(skip)]
    pub key: String,
}

/// What `host` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostType {
    Ip(IpAddr),
    Name(String),
    None,
}

impl Service {
    /// Parses a value; `lease` says whether the key is leased (for the TTL).
    pub fn parse(key: &str, value: &[u8], lease: i64) -> Result<Service, serde_json::Error> {
        let mut s: Service = serde_json::from_slice(value)?;
        s.key = key.to_string();
        if s.ttl == 0 {
            s.ttl = if lease != 0 { LEASED_TTL } else { DEFAULT_TTL };
        }
        if s.priority == 0 {
            s.priority = i64::from(DEFAULT_PRIORITY);
        }
        Ok(s)
    }

    pub fn host_type(&self) -> HostType {
        if self.host.is_empty() {
            return HostType::None;
        }
        match self.host.parse::<IpAddr>() {
            Ok(ip) => HostType::Ip(ip),
            Err(_) => HostType::Name(self.host.clone()),
        }
    }

    pub fn priority16(&self) -> u16 {
        self.priority.clamp(0, i64::from(u16::MAX)) as u16
    }

    pub fn port16(&self) -> u16 {
        self.port.clamp(0, i64::from(u16::MAX)) as u16
    }
}

/// `web.chorus.local.` -> `/skydns/local/chorus/web` (CoreDNS's `msg.Path`).
pub fn path(name: &str, prefix: &str) -> String {
    let labels: Vec<&str> = name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = format!("/{}", prefix.trim_matches('/'));
    for l in labels.iter().rev() {
        out.push('/');
        out.push_str(l);
    }
    out
}

/// The path up to the first `*` or `any` label, and whether there was one
/// (CoreDNS's `msg.PathWithWildcard`).
pub fn path_with_wildcard(name: &str, prefix: &str) -> (String, bool) {
    let full = path(name, prefix);
    let base = format!("/{}", prefix.trim_matches('/'));
    let mut out = base.clone();
    for seg in full[base.len()..].split('/').filter(|s| !s.is_empty()) {
        if seg == "*" || seg == "any" {
            return (out, true);
        }
        out.push('/');
        out.push_str(seg);
    }
    (out, false)
}

/// `/skydns/local/chorus/web/x1` -> `x1.web.chorus.local.` (CoreDNS's `msg.Domain`).
pub fn domain(key: &str) -> String {
    let mut segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    if !segs.is_empty() {
        segs.remove(0);
    }
    segs.reverse();
    let mut out = segs.join(".");
    out.push('.');
    out
}

/// CoreDNS's `msg.Group`: when the shortest key of the answer names a group, only the
/// records of that group (and those without one) are returned.
pub fn group(sx: Vec<Service>) -> Vec<Service> {
    let Some(first) = sx.first() else {
        return sx;
    };
    let depth = |s: &Service| s.key.matches('/').count();
    let mut group = first.group.clone();
    let mut slashes = depth(first);
    for s in &sx {
        let d = depth(s);
        if d < slashes {
            if s.group.is_empty() {
                break;
            }
            slashes = d;
            group = s.group.clone();
        }
    }
    if group.is_empty() {
        return sx;
    }
    let mut out = Vec::new();
    for s in &sx {
        if s.group.is_empty() {
            out.push(s.clone());
            continue;
        }
        if depth(s) == slashes && s.group != group {
            return sx;
        }
        if s.group == group {
            out.push(s.clone());
        }
    }
    out
}

/// Splits text into the 255-byte strings of a TXT record (at char boundaries).
pub fn split255(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if cur.len() + c.len_utf8() > 255 {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_coredns() {
        assert_eq!(
            path("web.chorus.local.", "skydns"),
            "/skydns/local/chorus/web"
        );
        assert_eq!(
            path_with_wildcard("*.web.chorus.local.", "skydns"),
            ("/skydns/local/chorus/web".to_string(), true)
        );
        assert_eq!(
            path_with_wildcard("x.any.chorus.local.", "/skydns"),
            ("/skydns/local/chorus".to_string(), true)
        );
        assert_eq!(
            domain("/skydns/local/chorus/web/x1"),
            "x1.web.chorus.local."
        );
    }

    #[test]
    fn parses_and_defaults() {
        let s = Service::parse(
            "/skydns/a/b",
            br#"{"host":"10.0.0.1","port":8080,"extra":1}"#,
            0,
        )
        .unwrap();
        assert_eq!(s.ttl, DEFAULT_TTL);
        assert_eq!(s.priority, 10);
        assert_eq!(s.host_type(), HostType::Ip("10.0.0.1".parse().unwrap()));
        assert!(Service::parse("/k", b"not json", 0).is_err());
        assert!(Service::parse("/k", br#"{"port":"x"}"#, 0).is_err());
        assert_eq!(Service::parse("/k", b"{}", 7).unwrap().ttl, LEASED_TTL);
    }

    #[test]
    fn groups_as_coredns() {
        let s = |key: &str, group: &str| Service {
            key: key.into(),
            group: group.into(),
            ..Default::default()
        };
        let sx = vec![
            s("/skydns/a/x", "g1"),
            s("/skydns/a/b/y", "g2"),
            s("/skydns/a/b/z", ""),
        ];
        let out = group(sx);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|x| x.group != "g2"));
        assert_eq!(split255(&"a".repeat(600)).len(), 3);
    }
}
