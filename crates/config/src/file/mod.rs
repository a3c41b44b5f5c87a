//! `--config-file`: etcd's YAML configuration file (keys of etcd 3.4-3.7).
//!
//! etcd converts the YAML to JSON and decodes it with Go's `encoding/json`
//! into `embed.configYAML` (and, in 3.4/3.5, the proxy keys into
//! `etcdmain.configProxy`). Consequences mirrored here:
//! - keys are the flag names (etcd's `json` tags); matching falls back to
//!   case-insensitive; etcd 3.5's `experimental-snapshot-catch-up-entries`
//!   is the tag of `--experimental-snapshot-catchup-entries`;
//! - unknown keys are ignored (chorus adds a warning naming the file);
//! - values must have the JSON type of the Go field: URL lists are single
//!   comma-separated strings, `log-outputs`/`cipher-suites` are lists,
//!   durations are integers in nanoseconds, numbers cannot fill string fields;
//!   `feature-gates` is one `Name=bool,...` string;
//! - TLS settings live under `client-transport-security` /
//!   `peer-transport-security` (top-level `cert-file` etc. are ignored), the
//!   socket options under `socket-options`, v3 discovery under
//!   `discovery-config` (see [`sections`]).
//!
//! YAML 1.1 vs 1.2: etcd's parser is YAML 1.1 (`yes`/`no` are booleans, `010`
//! is octal); chorus reads YAML 1.2 but accepts the YAML 1.1 boolean words
//! for boolean keys.

mod decode;
mod sections;
mod value;

use std::collections::BTreeSet;
use std::path::Path;

use super::config::{
    ClusterState, Config, DiscoveryFallback, Notice, ProxyMode, TlsInfo, V2Deprecation,
};
use super::error::ConfigError;
use super::flags::{FieldMut, FlagSpec, Kind, Yaml, FLAGS};
use super::gates::GateSettings;
use super::goparse::go_quote;
use super::logging::reconcile_log_outputs;
use super::migrate;
use super::url::parse_url_csv;
use decode::{apply_value, go_struct, string_list, string_value, Ctx};
use sections::{decode_section, decode_tls, is_section, TLS_SECTIONS};
use value::{json_kind, key_text, Value};

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

/// etcd 3.5's json tag of `--experimental-snapshot-catchup-entries`.
const CATCH_UP_ALIAS: (&str, &str) = (
    "experimental-snapshot-catch-up-entries",
    "experimental-snapshot-catchup-entries",
);

fn find_spec(key: &str) -> Option<&'static FlagSpec> {
    let key = if key.eq_ignore_ascii_case(CATCH_UP_ALIAS.0) {
        CATCH_UP_ALIAS.1
    } else {
        key
    };
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

/// What decoding a file collects besides the fields themselves.
struct FileState {
    cfg: Config,
    /// etcd 3.6's `FlagsExplicitlySet`: the keys present (as flag names).
    explicit: BTreeSet<String>,
    /// String keys etcd post-processes after decoding (URLs, enums), in file order.
    deferred: Vec<(&'static FlagSpec, String)>,
    client_tls: Option<TlsInfo>,
    peer_tls: Option<TlsInfo>,
    log_output: Vec<String>,
    /// The raw `feature-gates` value.
    gates: String,
}

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
    let map = match doc {
        Value::Null => Vec::new(),
        Value::Mapping(m) => m,
        other => {
            return Err(ConfigError::Invalid(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type embed.configYAML{}",
                json_kind(&other),
                ctx.suffix()
            )))
        }
    };
    let mut st = FileState {
        cfg: Config::file_defaults(),
        explicit: BTreeSet::new(),
        deferred: Vec::new(),
        client_tls: None,
        peer_tls: None,
        log_output: vec!["default".to_string()],
        gates: String::new(),
    };
    st.cfg.config_file = Some(path.to_path_buf());
    // Pass 1: JSON decoding of every key (type errors), in file order.
    for (k, v) in &map {
        decode_key(&ctx, &mut st, k, v, notices)?;
    }
    finish(st, notices)
}

/// Pass 1 for one top-level key.
fn decode_key(
    ctx: &Ctx<'_>,
    st: &mut FileState,
    k: &Value,
    v: &Value,
    notices: &mut Vec<Notice>,
) -> Result<(), ConfigError> {
    let Some(key) = key_text(k) else {
        notices.push(Notice::warn(format!(
            "ignoring config file key of type {}{}",
            json_kind(k),
            ctx.suffix()
        )));
        return Ok(());
    };
    if let Some(section) = TLS_SECTIONS.iter().find(|s| s.eq_ignore_ascii_case(&key)) {
        return decode_tls_section(ctx, st, section, v, notices);
    }
    if let Some(section) = is_section(&key) {
        st.explicit.insert(section.to_string());
        return decode_section(ctx, section, v, &mut st.cfg, &mut st.explicit, notices);
    }
    let Some(spec) = find_spec(&key) else {
        notices.push(Notice::warn(ctx.unknown_key(&key)));
        return Ok(());
    };
    st.explicit.insert(spec.name.to_string());
    if matches!(v, Value::Null) {
        return Ok(());
    }
    let at = (go_struct(spec.name), key.as_str());
    match (spec.kind, spec.yaml) {
        (Kind::LogOutput, _) => st.log_output = string_list(ctx, at, v)?,
        (_, Yaml::List) => {
            let list = string_list(ctx, at, v)?;
            if let Some(FieldMut::List(f)) = spec.access.map(|a| a(&mut st.cfg)) {
                *f = list;
            }
        }
        (Kind::FeatureGates, _) => st.gates = string_value(ctx, at, v)?.to_string(),
        (Kind::Urls | Kind::Cors | Kind::UniqueStrings | Kind::Select(_), _)
        | (Kind::V2Deprecation, _) => {
            let s = string_value(ctx, at, v)?;
            st.deferred.push((spec, s.to_string()));
        }
        _ => apply_value(ctx, spec, at, v, &mut st.cfg)?,
    }
    Ok(())
}

fn decode_tls_section(
    ctx: &Ctx<'_>,
    st: &mut FileState,
    section: &'static str,
    v: &Value,
    notices: &mut Vec<Notice>,
) -> Result<(), ConfigError> {
    st.explicit.insert(section.to_string());
    let m = match v {
        Value::Null => return Ok(()),
        Value::Mapping(m) => m,
        other => {
            return Err(ctx.type_error(
                json_kind(other),
                "configYAML",
                section,
                "embed.securityConfig",
            ))
        }
    };
    let tls = decode_tls(ctx, section, m, &mut st.explicit, notices)?;
    if section == TLS_SECTIONS[0] {
        st.client_tls = Some(tls);
    } else {
        st.peer_tls = Some(tls);
    }
    Ok(())
}

/// Pass 2 and the rest of etcd's `configFromFile`.
fn finish(mut st: FileState, notices: &mut Vec<Notice>) -> Result<Config, ConfigError> {
    let default_initial_cluster = st.cfg.initial_cluster.clone();
    apply_deferred(&st.deferred, &mut st.cfg)?;
    let cfg = &mut st.cfg;
    // If a discovery flag is set, clear the default initial cluster.
    if (!cfg.discovery.is_empty()
        || !cfg.discovery_srv.is_empty()
        || !cfg.discovery_cfg.endpoints.is_empty())
        && cfg.initial_cluster == default_initial_cluster
    {
        cfg.initial_cluster.clear();
    }
    if let Some(t) = st.client_tls.take() {
        cfg.client_tls = t;
    }
    if let Some(t) = st.peer_tls.take() {
        cfg.peer_tls = t;
    }
    if cfg.self_signed_cert_validity == 0 {
        cfg.self_signed_cert_validity = 1;
    }
    apply_proxy_keys(&st.deferred, cfg)?;
    let mut gates = GateSettings::default();
    if !st.gates.is_empty() {
        gates.set(&st.gates).map_err(ConfigError::Invalid)?;
    }
    reconcile_log_outputs(cfg, std::mem::take(&mut st.log_output), notices)?;
    cfg.flags_explicitly_set = std::mem::take(&mut st.explicit);
    migrate::resolve(cfg, &gates, &st.gates, notices)?;
    Ok(st.cfg)
}

/// The last value of a deferred key, if any and not empty.
fn last<'a>(deferred: &'a [(&'static FlagSpec, String)], name: &str) -> Option<&'a str> {
    deferred
        .iter()
        .rev()
        .find(|(sp, _)| sp.name == name)
        .map(|(_, s)| s.as_str())
        .filter(|s| !s.is_empty())
}

/// Pass 2: values etcd post-processes after decoding (later keys win).
fn apply_deferred(
    deferred: &[(&'static FlagSpec, String)],
    cfg: &mut Config,
) -> Result<(), ConfigError> {
    for name in [
        "listen-peer-urls",
        "listen-client-urls",
        "listen-client-http-urls",
        "initial-advertise-peer-urls",
        "advertise-client-urls",
        "listen-metrics-urls",
        "cors",
        "host-whitelist",
        "initial-cluster-state",
        "v2-deprecation",
    ] {
        let Some(s) = last(deferred, name) else {
            continue;
        };
        let spec = super::flags::lookup(name).expect("deferred key is a flag");
        set_deferred(name, spec.kind, (spec.access.expect("field"))(cfg), s)?;
    }
    Ok(())
}

fn set_deferred(name: &str, kind: Kind, field: FieldMut<'_>, s: &str) -> Result<(), ConfigError> {
    let fatal = |e: String| ConfigError::Fatal(format!("unexpected error setting up {name}: {e}"));
    match (kind, field) {
        (Kind::Urls, FieldMut::Urls(f)) => *f = parse_url_csv(s).map_err(fatal)?,
        (Kind::Cors, FieldMut::Set(f)) => {
            f.clear();
            if s == "*" {
                f.insert(s.to_string());
            } else {
                *f = parse_url_csv(s)
                    .map_err(fatal)?
                    .iter()
                    .map(|u| u.to_string())
                    .collect();
            }
        }
        (Kind::UniqueStrings, FieldMut::Set(f)) => *f = s.split(',').map(str::to_string).collect(),
        (Kind::Select(_), FieldMut::State(f)) => {
            *f = match s {
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
        // etcd decodes any string and panics on an unknown stage when it uses it.
        (Kind::V2Deprecation, FieldMut::V2Depr(f)) => {
            *f = V2Deprecation::parse(s)
                .ok_or_else(|| ConfigError::Invalid(format!("Unknown V2DeprecationEnum: {s}")))?;
        }
        _ => unreachable!("pass 2 key {name}"),
    }
    Ok(())
}

/// etcd 3.4/3.5's `configProxy` keys (`log.Fatalf` on a bad value).
fn apply_proxy_keys(
    deferred: &[(&'static FlagSpec, String)],
    cfg: &mut Config,
) -> Result<(), ConfigError> {
    if let Some(s) = last(deferred, "discovery-fallback") {
        cfg.discovery_fallback = match s {
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
    if let Some(s) = last(deferred, "proxy") {
        cfg.proxy = match s {
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
    Ok(())
}
