//! `--config-file`: etcd 3.4's YAML configuration file.
//!
//! etcd converts the YAML to JSON and decodes it with Go's `encoding/json`
//! into `embed.configYAML` (and, for the proxy keys, `etcdmain.configProxy`).
//! Consequences mirrored here:
//! - keys are the flag names; matching falls back to case-insensitive;
//! - unknown keys are ignored (chorus adds a warning naming the file);
//! - values must have the JSON type of the Go field: URL lists are single
//!   comma-separated strings, `log-outputs`/`cipher-suites` are lists,
//!   durations are integers in nanoseconds, numbers cannot fill string fields;
//! - TLS settings live under `client-transport-security` /
//!   `peer-transport-security` (`cert-file`, `key-file`, `client-cert-auth`,
//!   `trusted-ca-file`, `auto-tls`); top-level `cert-file` etc. are ignored.
//!
//! YAML 1.1 vs 1.2: etcd's parser is YAML 1.1 (`yes`/`no` are booleans, `010`
//! is octal); chorus reads YAML 1.2 but accepts the YAML 1.1 boolean words
//! for boolean keys.

use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::flags::{self, set_field, FieldMut, FlagSpec, Kind, Yaml, FLAGS};
use super::goparse::{self, go_quote};
use super::url::parse_url_csv;
use super::{ClusterState, Config, ConfigError, DiscoveryFallback, Notice, ProxyMode};

/// Load and validate a config file (etcd's `embed.ConfigFromFile` + proxy keys).
pub(crate) fn load(path: &Path, notices: &mut Vec<Notice>) -> Result<Config, ConfigError> {
    let cfg = load_unvalidated(path, notices)?;
    cfg.validate_with_notices(notices)?;
    Ok(cfg)
}

/// Go-style I/O error text: `open /x: no such file or directory`.
fn io_error(op: &str, path: &Path, e: &std::io::Error) -> String {
    let mut msg = e.to_string();
    if let Some(i) = msg.find(" (os error") {
        msg.truncate(i);
    }
    let mut chars = msg.chars();
    let msg = match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => msg,
    };
    format!("{op} {}: {msg}", path.display())
}

/// A YAML value that, unlike `serde_yaml::Value`, tolerates duplicate keys
/// (etcd's YAML parser does; the last occurrence wins) and keeps key order.
#[derive(Debug, Clone)]
enum Value {
    Null,
    Bool(bool),
    Number(serde_yaml::Number),
    String(String),
    Sequence(Vec<Value>),
    Mapping(Vec<(Value, Value)>),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(kv) = map.next_entry()? {
            entries.push(kv);
        }
        Ok(Value::Mapping(entries))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // A custom `!tag value`: keep the value, drop the tag.
        use de::VariantAccess as _;
        let (_tag, variant): (String, _) = data.variant()?;
        variant.newtype_variant()
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "array",
        Value::Mapping(_) => "object",
    }
}

struct Ctx<'a> {
    path: &'a Path,
}

impl Ctx<'_> {
    fn suffix(&self) -> String {
        format!(
            " (config file {})",
            go_quote(&self.path.display().to_string())
        )
    }

    /// `json: cannot unmarshal <what> into Go struct field <strct>.<key> of type <ty>`.
    fn type_error(&self, what: &str, strct: &str, key: &str, ty: &str) -> ConfigError {
        ConfigError::Invalid(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {what} into Go struct field {strct}.{key} of type {ty}{}",
            self.suffix()
        ))
    }
}

/// Which Go struct etcd decodes a key into (only visible in error messages).
fn go_struct(name: &str) -> &'static str {
    if name == "proxy" || name == "discovery-fallback" || name.starts_with("proxy-") {
        "configProxy"
    } else {
        "configYAML"
    }
}

/// YAML 1.1 boolean words etcd's YAML parser accepts unquoted.
fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// Integer value of a YAML number as Go's JSON decoder sees it (integral floats allowed).
fn integral(n: &serde_yaml::Number) -> Option<i128> {
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    let f = n.as_f64()?;
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1.8e19 {
        return Some(f as i128);
    }
    None
}

/// Decode one scalar key into its Config field.
fn apply_value(
    ctx: &Ctx<'_>,
    spec: &FlagSpec,
    key: &str,
    v: &Value,
    cfg: &mut Config,
) -> Result<(), ConfigError> {
    let strct = go_struct(spec.name);
    let ty = spec.kind.go_type();
    let mismatch = |v: &Value| ctx.type_error(json_kind(v), strct, key, ty);
    let access = spec.access.expect("yaml key with a Config field");
    match spec.kind {
        Kind::Bool => {
            let b = match v {
                Value::Bool(b) => *b,
                Value::String(s) => yaml11_bool(s).ok_or_else(|| mismatch(v))?,
                _ => return Err(mismatch(v)),
            };
            if let FieldMut::Bool(f) = access(cfg) {
                *f = b;
            }
        }
        Kind::Uint | Kind::Uint64 | Kind::Uint32 | Kind::Int | Kind::Int64 | Kind::Duration => {
            let Value::Number(n) = v else {
                return Err(mismatch(v));
            };
            let bad = || ctx.type_error(&format!("number {n}"), strct, key, ty);
            let i = integral(n).ok_or_else(bad)?;
            match access(cfg) {
                FieldMut::U64(f) => *f = u64::try_from(i).map_err(|_| bad())?,
                FieldMut::U32(f) => *f = u32::try_from(i).map_err(|_| bad())?,
                FieldMut::I64(f) => *f = i64::try_from(i).map_err(|_| bad())?,
                FieldMut::Dur(f) => {
                    let nanos = i64::try_from(i).map_err(|_| bad())?;
                    *f = goparse::nanos_to_duration(nanos).ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "{key}: negative durations are not supported by chorus{}",
                            ctx.suffix()
                        ))
                    })?;
                }
                _ => unreachable!("numeric kind on non-numeric field"),
            }
        }
        Kind::Str => {
            let Value::String(s) = v else {
                return Err(mismatch(v));
            };
            set_field(Kind::Str, access(cfg), s).expect("string field");
        }
        _ => unreachable!("apply_value on {:?}", spec.kind),
    }
    Ok(())
}

fn string_list(ctx: &Ctx<'_>, key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    let Value::Sequence(items) = v else {
        return Err(ctx.type_error(json_kind(v), "configYAML", key, "[]string"));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(ctx.type_error(json_kind(other), "configYAML", key, "string")),
        })
        .collect()
}

fn find_spec(key: &str) -> Option<&'static FlagSpec> {
    let usable = |f: &&FlagSpec| matches!(f.yaml, Yaml::Key | Yaml::List);
    FLAGS
        .iter()
        .filter(usable)
        .find(|f| f.name == key)
        .or_else(|| {
            FLAGS
                .iter()
                .filter(usable)
                .find(|f| f.name.eq_ignore_ascii_case(key))
        })
}

const TLS_SECTIONS: [&str; 2] = ["client-transport-security", "peer-transport-security"];

/// Read, decode and normalize a config file, without validation.
pub(crate) fn load_unvalidated(
    path: &Path,
    notices: &mut Vec<Notice>,
) -> Result<Config, ConfigError> {
    if path.is_dir() {
        return Err(ConfigError::Invalid(format!(
            "read {}: is a directory",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Invalid(io_error("open", path, &e)))?;
    parse_str(&text, path, notices)
}

/// Decode YAML `text` as if read from `path`.
pub(crate) fn parse_str(
    text: &str,
    path: &Path,
    notices: &mut Vec<Notice>,
) -> Result<Config, ConfigError> {
    let ctx = Ctx { path };
    let doc: Value = serde_yaml::from_str(text).map_err(|e| {
        ConfigError::Invalid(format!(
            "error converting YAML to JSON: yaml: {e}{}",
            ctx.suffix()
        ))
    })?;
    let mut cfg = Config::file_defaults();
    cfg.config_file = Some(path.to_path_buf());
    let default_initial_cluster = cfg.initial_cluster.clone();
    let mut log_output = vec!["default".to_string()];

    let map = match &doc {
        Value::Null => Vec::new(),
        Value::Mapping(m) => m.clone(),
        other => {
            return Err(ConfigError::Invalid(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type embed.configYAML{}",
                json_kind(other),
                ctx.suffix()
            )))
        }
    };

    // Pass 1: JSON decoding of every key (type errors), in file order.
    let mut url_values: Vec<(&'static FlagSpec, String)> = Vec::new();
    let mut client_tls = None;
    let mut peer_tls = None;
    for (k, v) in &map {
        let key = match k {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                notices.push(Notice::warn(format!(
                    "ignoring config file key of type {}{}",
                    json_kind(other),
                    ctx.suffix()
                )));
                continue;
            }
        };
        if let Some(section) = TLS_SECTIONS.iter().find(|s| s.eq_ignore_ascii_case(&key)) {
            if matches!(v, Value::Null) {
                continue;
            }
            let Value::Mapping(m) = v else {
                return Err(ctx.type_error(
                    json_kind(v),
                    "configYAML",
                    section,
                    "embed.securityConfig",
                ));
            };
            let tls = decode_tls(&ctx, section, m, notices)?;
            if *section == TLS_SECTIONS[0] {
                client_tls = Some(tls);
            } else {
                peer_tls = Some(tls);
            }
            continue;
        }
        let Some(spec) = find_spec(&key) else {
            notices.push(Notice::warn(format!(
                "unknown key {} in config file {} is ignored (as etcd 3.4 does)",
                go_quote(&key),
                go_quote(&path.display().to_string())
            )));
            continue;
        };
        if matches!(v, Value::Null) {
            continue;
        }
        match (spec.kind, spec.yaml) {
            (Kind::LogOutput, _) => log_output = string_list(&ctx, &key, v)?,
            (_, Yaml::List) => {
                let list = string_list(&ctx, &key, v)?;
                if let Some(access) = spec.access {
                    if let FieldMut::List(f) = access(&mut cfg) {
                        *f = list;
                    }
                }
            }
            (Kind::Urls | Kind::Cors | Kind::UniqueStrings | Kind::Select(_), _) => {
                let Value::String(s) = v else {
                    return Err(ctx.type_error(json_kind(v), go_struct(spec.name), &key, "string"));
                };
                url_values.push((spec, s.clone()));
            }
            _ => apply_value(&ctx, spec, &key, v, &mut cfg)?,
        }
    }

    // Pass 2: values etcd post-processes after decoding (later keys win).
    for name in [
        "listen-peer-urls",
        "listen-client-urls",
        "initial-advertise-peer-urls",
        "advertise-client-urls",
        "listen-metrics-urls",
        "cors",
        "host-whitelist",
        "initial-cluster-state",
    ] {
        let Some((spec, s)) = url_values.iter().rev().find(|(sp, _)| sp.name == name) else {
            continue;
        };
        if s.is_empty() {
            continue;
        }
        let access = spec.access.expect("field");
        match (spec.kind, access(&mut cfg)) {
            (Kind::Urls, FieldMut::Urls(f)) => {
                *f = parse_url_csv(s).map_err(|e| {
                    ConfigError::Fatal(format!("unexpected error setting up {name}: {e}"))
                })?;
            }
            (Kind::Cors, FieldMut::Set(f)) => {
                f.clear();
                if s == "*" {
                    f.insert(s.clone());
                } else {
                    let urls = parse_url_csv(s).map_err(|e| {
                        ConfigError::Fatal(format!("unexpected error setting up cors: {e}"))
                    })?;
                    *f = urls.iter().map(|u| u.to_string()).collect();
                }
            }
            (Kind::UniqueStrings, FieldMut::Set(f)) => {
                *f = s.split(',').map(str::to_string).collect();
            }
            (Kind::Select(_), FieldMut::State(f)) => {
                *f = match s.as_str() {
                    "new" => ClusterState::New,
                    "existing" => ClusterState::Existing,
                    other => {
                        return Err(ConfigError::Invalid(format!(
                            "unexpected clusterState {}",
                            go_quote(other)
                        )))
                    }
                };
            }
            _ => unreachable!("pass 2 key {name}"),
        }
    }

    // If a discovery flag is set, clear the default initial cluster.
    if (!cfg.discovery.is_empty() || !cfg.discovery_srv.is_empty())
        && cfg.initial_cluster == default_initial_cluster
    {
        cfg.initial_cluster.clear();
    }
    if let Some(t) = client_tls {
        cfg.client_tls = t;
    }
    if let Some(t) = peer_tls {
        cfg.peer_tls = t;
    }

    // etcdmain's configProxy keys.
    if let Some((_, s)) = url_values
        .iter()
        .rev()
        .find(|(sp, _)| sp.name == "discovery-fallback")
    {
        if !s.is_empty() {
            cfg.discovery_fallback = match s.as_str() {
                "proxy" => DiscoveryFallback::Proxy,
                "exit" => DiscoveryFallback::Exit,
                _ => {
                    return Err(ConfigError::Fatal(
                        "unexpected error setting up discovery-fallback flag: invalid value"
                            .to_string(),
                    ))
                }
            };
        }
    }
    if let Some((_, s)) = url_values.iter().rev().find(|(sp, _)| sp.name == "proxy") {
        if !s.is_empty() {
            cfg.proxy = match s.as_str() {
                "off" => ProxyMode::Off,
                "readonly" => ProxyMode::Readonly,
                "on" => ProxyMode::On,
                _ => {
                    return Err(ConfigError::Fatal(
                        "unexpected error setting up proxyFlag: invalid value".to_string(),
                    ))
                }
            };
        }
    }
    flags::reconcile_log_outputs(&mut cfg, log_output, notices)?;
    Ok(cfg)
}

fn decode_tls(
    ctx: &Ctx<'_>,
    section: &str,
    m: &[(Value, Value)],
    notices: &mut Vec<Notice>,
) -> Result<super::TlsInfo, ConfigError> {
    let mut tls = super::TlsInfo::default();
    const KEYS: [&str; 5] = [
        "cert-file",
        "key-file",
        "client-cert-auth",
        "trusted-ca-file",
        "auto-tls",
    ];
    for (k, v) in m {
        let key = match k {
            Value::String(s) => s.clone(),
            other => format!("{other:?}"),
        };
        let Some(known) = KEYS
            .iter()
            .find(|n| **n == key)
            .or_else(|| KEYS.iter().find(|n| n.eq_ignore_ascii_case(&key)))
        else {
            notices.push(Notice::warn(format!(
                "unknown key {} in config file {} is ignored (as etcd 3.4 does)",
                go_quote(&format!("{section}.{key}")),
                go_quote(&ctx.path.display().to_string())
            )));
            continue;
        };
        if matches!(v, Value::Null) {
            continue;
        }
        let field = format!("{section}.{known}");
        // Go names the innermost struct for nested fields.
        let strct = "securityConfig";
        match *known {
            "client-cert-auth" | "auto-tls" => {
                let b = match v {
                    Value::Bool(b) => *b,
                    Value::String(s) => yaml11_bool(s)
                        .ok_or_else(|| ctx.type_error(json_kind(v), strct, &field, "bool"))?,
                    _ => return Err(ctx.type_error(json_kind(v), strct, &field, "bool")),
                };
                if *known == "auto-tls" {
                    tls.auto_tls = b;
                } else {
                    tls.client_cert_auth = b;
                }
            }
            _ => {
                let Value::String(s) = v else {
                    return Err(ctx.type_error(json_kind(v), strct, &field, "string"));
                };
                match *known {
                    "cert-file" => tls.cert_file = s.clone(),
                    "key-file" => tls.key_file = s.clone(),
                    _ => tls.trusted_ca_file = s.clone(),
                }
            }
        }
    }
    Ok(tls)
}
