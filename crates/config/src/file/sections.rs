//! The nested sections of the config file: `client-transport-security` /
//! `peer-transport-security` (etcd's `securityConfig`), `socket-options`
//! (etcd 3.5+) and `discovery-config` (etcd 3.6's v3 discovery).

use std::collections::BTreeSet;

use super::super::config::{Config, Notice, TlsInfo};
use super::super::error::ConfigError;
use super::super::flags::{self, FieldMut, Kind};
use super::decode::{apply_value, string_list, Ctx};
use super::value::{json_kind, key_text, yaml11_bool, Value};

/// The TLS section names.
pub(crate) const TLS_SECTIONS: [&str; 2] = ["client-transport-security", "peer-transport-security"];

/// `securityConfig`'s keys, with the flag each one stands for in the client
/// and the peer section (`None`: no flag).
const TLS_KEYS: [(&str, Option<&str>, Option<&str>); 10] = [
    ("cert-file", Some("cert-file"), Some("peer-cert-file")),
    ("key-file", Some("key-file"), Some("peer-key-file")),
    (
        "client-cert-file",
        Some("client-cert-file"),
        Some("peer-client-cert-file"),
    ),
    (
        "client-key-file",
        Some("client-key-file"),
        Some("peer-client-key-file"),
    ),
    (
        "client-cert-auth",
        Some("client-cert-auth"),
        Some("peer-client-cert-auth"),
    ),
    (
        "trusted-ca-file",
        Some("trusted-ca-file"),
        Some("peer-trusted-ca-file"),
    ),
    ("auto-tls", Some("auto-tls"), Some("peer-auto-tls")),
    ("allowed-cn", None, Some("peer-cert-allowed-cn")),
    (
        "allowed-hostname",
        Some("client-cert-allowed-hostname"),
        Some("peer-cert-allowed-hostname"),
    ),
    (
        "skip-client-san-verification",
        None,
        Some("peer-skip-client-san-verification"),
    ),
];

/// Go's field matching: the exact name, else a case-insensitive one.
fn match_key<'a>(names: impl Iterator<Item = &'a str> + Clone, key: &str) -> Option<&'a str> {
    names
        .clone()
        .find(|n| *n == key)
        .or_else(|| names.into_iter().find(|n| n.eq_ignore_ascii_case(key)))
}

/// Decodes one TLS section. Like etcd, every field of the section replaces
/// the flag default (absent keys leave the default, which is the same).
/// `explicit` gets the flag each key stands for (etcd 3.6 marks
/// `peer-<key>` for the peer section).
pub(crate) fn decode_tls(
    ctx: &Ctx<'_>,
    section: &str,
    m: &[(Value, Value)],
    explicit: &mut BTreeSet<String>,
    notices: &mut Vec<Notice>,
) -> Result<TlsInfo, ConfigError> {
    let peer = section == TLS_SECTIONS[1];
    let mut tls = TlsInfo::default();
    for (k, v) in m {
        let key = key_text(k).unwrap_or_else(|| format!("{k:?}"));
        let Some(known) = match_key(TLS_KEYS.iter().map(|t| t.0), &key) else {
            notices.push(Notice::warn(ctx.unknown_key(&format!("{section}.{key}"))));
            continue;
        };
        if matches!(v, Value::Null) {
            continue;
        }
        let (_, client_flag, peer_flag) = TLS_KEYS.iter().find(|t| t.0 == known).expect("key");
        if let Some(flag) = if peer { peer_flag } else { client_flag } {
            explicit.insert(flag.to_string());
        }
        set_tls_key(ctx, &format!("{section}.{known}"), known, v, &mut tls)?;
    }
    Ok(tls)
}

fn set_tls_key(
    ctx: &Ctx<'_>,
    field: &str,
    known: &str,
    v: &Value,
    tls: &mut TlsInfo,
) -> Result<(), ConfigError> {
    // Go names the innermost struct for nested fields.
    let at = ("securityConfig", field);
    match known {
        "client-cert-auth" | "auto-tls" | "skip-client-san-verification" => {
            let b = match v {
                Value::Bool(b) => *b,
                Value::String(s) => yaml11_bool(s)
                    .ok_or_else(|| ctx.type_error(json_kind(v), at.0, field, "bool"))?,
                _ => return Err(ctx.type_error(json_kind(v), at.0, field, "bool")),
            };
            match known {
                "auto-tls" => tls.auto_tls = b,
                "client-cert-auth" => tls.client_cert_auth = b,
                _ => tls.skip_client_san_verification = b,
            }
        }
        "allowed-cn" => tls.allowed_cns = string_list(ctx, at, v)?,
        "allowed-hostname" => tls.allowed_hostnames = string_list(ctx, at, v)?,
        _ => {
            let Value::String(s) = v else {
                return Err(ctx.type_error(json_kind(v), at.0, field, "string"));
            };
            let slot = match known {
                "cert-file" => &mut tls.cert_file,
                "key-file" => &mut tls.key_file,
                "client-cert-file" => &mut tls.client_cert_file,
                "client-key-file" => &mut tls.client_key_file,
                _ => &mut tls.trusted_ca_file,
            };
            slot.clone_from(s);
        }
    }
    Ok(())
}

/// Sections that hold other keys: dotted path, the Go struct that holds the
/// section, the section's Go type.
const SECTIONS: [(&str, &str, &str); 5] = [
    ("socket-options", "configYAML", "transport.SocketOpts"),
    (
        "discovery-config",
        "configYAML",
        "v3discovery.DiscoveryConfig",
    ),
    (
        "discovery-config.client",
        "DiscoveryConfig",
        "clientv3.ConfigSpec",
    ),
    (
        "discovery-config.client.secure",
        "ConfigSpec",
        "clientv3.SecureConfig",
    ),
    (
        "discovery-config.client.auth",
        "ConfigSpec",
        "clientv3.AuthConfig",
    ),
];

/// Leaves of those sections: dotted path, the flag, the Go struct holding it.
const LEAVES: [(&str, &str, &str); 15] = [
    (
        "socket-options.reuse-port",
        "socket-reuse-port",
        "SocketOpts",
    ),
    (
        "socket-options.reuse-address",
        "socket-reuse-address",
        "SocketOpts",
    ),
    (
        "discovery-config.token",
        "discovery-token",
        "DiscoveryConfig",
    ),
    (
        "discovery-config.client.endpoints",
        "discovery-endpoints",
        "ConfigSpec",
    ),
    (
        "discovery-config.client.request-timeout",
        "discovery-request-timeout",
        "ConfigSpec",
    ),
    (
        "discovery-config.client.dial-timeout",
        "discovery-dial-timeout",
        "ConfigSpec",
    ),
    (
        "discovery-config.client.keepalive-time",
        "discovery-keepalive-time",
        "ConfigSpec",
    ),
    (
        "discovery-config.client.keepalive-timeout",
        "discovery-keepalive-timeout",
        "ConfigSpec",
    ),
    (
        "discovery-config.client.secure.cert",
        "discovery-cert",
        "SecureConfig",
    ),
    (
        "discovery-config.client.secure.key",
        "discovery-key",
        "SecureConfig",
    ),
    (
        "discovery-config.client.secure.cacert",
        "discovery-cacert",
        "SecureConfig",
    ),
    (
        "discovery-config.client.secure.insecure-transport",
        "discovery-insecure-transport",
        "SecureConfig",
    ),
    (
        "discovery-config.client.secure.insecure-skip-tls-verify",
        "discovery-insecure-skip-tls-verify",
        "SecureConfig",
    ),
    (
        "discovery-config.client.auth.username",
        "discovery-user",
        "AuthConfig",
    ),
    (
        "discovery-config.client.auth.password",
        "discovery-password",
        "AuthConfig",
    ),
];

/// Whether `name` is a top-level section [`decode_section`] handles.
pub(crate) fn is_section(name: &str) -> Option<&'static str> {
    match_key(SECTIONS.iter().take(2).map(|s| s.0), name)
}

/// Decodes the section at `path` (`socket-options`, `discovery-config`, or
/// one nested in it) into `cfg`.
pub(crate) fn decode_section(
    ctx: &Ctx<'_>,
    path: &str,
    v: &Value,
    cfg: &mut Config,
    explicit: &mut BTreeSet<String>,
    notices: &mut Vec<Notice>,
) -> Result<(), ConfigError> {
    let (_, holder, ty) = SECTIONS.iter().find(|s| s.0 == path).expect("section");
    let m = match v {
        Value::Null => return Ok(()),
        Value::Mapping(m) => m,
        other => return Err(ctx.type_error(json_kind(other), holder, path, ty)),
    };
    for (k, v) in m {
        let key = key_text(k).unwrap_or_else(|| format!("{k:?}"));
        let prefix = format!("{path}.");
        let children = SECTIONS
            .iter()
            .map(|s| s.0)
            .chain(LEAVES.iter().map(|l| l.0))
            .filter_map(|p| p.strip_prefix(prefix.as_str()))
            .filter(|rest| !rest.contains('.'));
        let Some(child) = match_key(children, &key) else {
            notices.push(Notice::warn(ctx.unknown_key(&format!("{path}.{key}"))));
            continue;
        };
        let child_path = format!("{path}.{child}");
        match LEAVES.iter().find(|l| l.0 == child_path) {
            Some(&(_, flag, strct)) => {
                if !matches!(v, Value::Null) {
                    explicit.insert(flag.to_string());
                    decode_leaf(ctx, flag, (strct, &child_path), v, cfg)?;
                }
            }
            None => decode_section(ctx, &child_path, v, cfg, explicit, notices)?,
        }
    }
    Ok(())
}

fn decode_leaf(
    ctx: &Ctx<'_>,
    flag: &str,
    at: (&str, &str),
    v: &Value,
    cfg: &mut Config,
) -> Result<(), ConfigError> {
    let spec = flags::lookup(flag).expect("section leaf names a flag");
    if spec.kind == Kind::UniqueStrings {
        let list = string_list(ctx, at, v)?;
        if let FieldMut::List(f) = (spec.access.expect("field"))(cfg) {
            *f = list;
        }
        return Ok(());
    }
    apply_value(ctx, spec, at, v, cfg)
}
