//! The command-line path: Go's `flag` parsing of argv, the `ETCD_*`
//! environment, the config-file switch, and the defaulting etcd's
//! `startEtcdOrProxyV2` does before starting the server.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::config::{Command, Config, Notice, DEFAULT_NAME, DEFAULT_PEER_URL};
use super::error::ConfigError;
use super::file;
use super::flags::{env_key, lookup, set_value, FlagSpec, FlagState, FLAGS};
use super::goparse::{go_duration_string, go_quote};
use super::logging::reconcile_log_outputs;
use super::migrate;

/// Outcome of Go's `FlagSet.Parse` that is not a success.
enum ParseStop {
    /// `-h`/`-help`: `flag.ErrHelp`.
    Help,
    /// `f.failf(...)`: message (usage is printed after it).
    Fail(String),
}

/// Go 1.19 `flag.FlagSet.Parse`; returns the remaining (positional) arguments.
fn go_flag_parse(
    st: &mut FlagState,
    args: &[String],
    notices: &mut Vec<Notice>,
) -> Result<Vec<String>, ParseStop> {
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        if s.len() < 2 || !s.starts_with('-') {
            break;
        }
        let mut num_minuses = 1;
        if s.as_bytes()[1] == b'-' {
            num_minuses += 1;
            if s.len() == 2 {
                // "--" terminates the flags
                i += 1;
                break;
            }
        }
        let name_full = &s[num_minuses..];
        if name_full.is_empty() || name_full.starts_with('-') || name_full.starts_with('=') {
            return Err(ParseStop::Fail(format!("bad flag syntax: {s}")));
        }
        i += 1;
        // "equals cannot be first" (byte index >= 1; '=' is ASCII so slicing is safe).
        let (name, value) = match name_full.bytes().skip(1).position(|b| b == b'=') {
            Some(p) => (&name_full[..p + 1], Some(&name_full[p + 2..])),
            None => (name_full, None),
        };
        let Some(spec) = lookup(name) else {
            if name == "help" || name == "h" {
                return Err(ParseStop::Help);
            }
            return Err(ParseStop::Fail(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        if spec.kind.is_bool() {
            let v = value.unwrap_or("true");
            if let Err(e) = set_value(spec, st, v, notices) {
                return Err(ParseStop::Fail(match value {
                    Some(v) => format!("invalid boolean value {} for -{name}: {e}", go_quote(v)),
                    None => format!("invalid boolean flag {name}: {e}"),
                }));
            }
        } else {
            let v = match value {
                Some(v) => v.to_string(),
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => {
                    return Err(ParseStop::Fail(format!("flag needs an argument: -{name}")));
                }
            };
            if let Err(e) = set_value(spec, st, &v, notices) {
                return Err(ParseStop::Fail(format!(
                    "invalid value {} for flag -{name}: {e}",
                    go_quote(&v)
                )));
            }
        }
        st.actual.insert(spec.name);
    }
    Ok(args[i..].to_vec())
}

/// First value of `key` in an environment list (Go's `os.Getenv`).
fn getenv<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// etcd's `flags.SetFlagsFromEnv("ETCD", fs)` including `verifyEnv`.
fn set_flags_from_env(
    st: &mut FlagState,
    env: &[(String, String)],
    notices: &mut Vec<Notice>,
) -> Result<(), ConfigError> {
    let already_set: BTreeSet<String> = st.actual.iter().map(|n| env_key(n)).collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut err = None;
    // fs.VisitAll visits flags in lexicographical order.
    let mut specs: Vec<&'static FlagSpec> = FLAGS.iter().collect();
    specs.sort_by_key(|f| f.name);
    for spec in specs {
        let key = env_key(spec.name);
        if already_set.contains(&key) {
            continue;
        }
        let Some(val) = getenv(env, &key) else {
            continue;
        };
        if val.is_empty() {
            continue;
        }
        used.insert(key.clone());
        match set_value(spec, st, val, notices) {
            Ok(()) => {
                st.actual.insert(spec.name);
                notices.push(Notice::info(format!(
                    "recognized and used environment variable {key}={val}"
                )));
            }
            // Go keeps the last error.
            Err(e) => err = Some(format!("invalid value {} for {key}: {e}", go_quote(val))),
        }
    }
    for (k, v) in env {
        if used.contains(k) {
            continue;
        }
        if already_set.contains(k) {
            // etcd 3.4+ stops here; etcd 3.3 warned and used the flag. chorus warns, so that
            // units passing the same setting both ways (EnvironmentFile= plus flags, as the
            // classic etcd deployment guides do) keep working.
            notices.push(Notice::warn(format!(
                "conflicting environment variable {} is shadowed by corresponding command-line flag (either unset environment variable or disable flag); using the flag",
                go_quote(k)
            )));
            continue;
        }
        if k.starts_with("ETCD_") {
            notices.push(Notice::warn(format!(
                "unrecognized environment variable {k}={v}"
            )));
        }
    }
    match err {
        Some(e) => Err(ConfigError::Invalid(e)),
        None => Ok(()),
    }
}

/// etcd's `startEtcdOrProxyV2` up to (not including) starting the server.
pub(crate) fn parse_command_line(
    args: &[String],
    env: &[(String, String)],
    notices: &mut Vec<Notice>,
    default_host: &dyn Fn() -> Result<String, String>,
) -> Result<Command, ConfigError> {
    if let Some(sub @ ("gateway" | "grpc-proxy")) = args.first().map(String::as_str) {
        return Err(ConfigError::not_implemented(format!("`{sub}`")));
    }
    let mut st = FlagState::new();
    let rest = match go_flag_parse(&mut st, args, notices) {
        Ok(rest) => rest,
        Err(ParseStop::Help) => return Ok(Command::PrintHelp),
        Err(ParseStop::Fail(m)) => return Err(ConfigError::Usage(m)),
    };
    if let Some(first) = rest.first() {
        return Err(ConfigError::Invalid(format!(
            "'{first}' is not a valid flag"
        )));
    }
    if st.print_version {
        return Ok(Command::PrintVersion);
    }
    if st.config_file.is_empty() {
        st.config_file = getenv(env, "ETCD_CONFIG_FILE").unwrap_or("").to_string();
    }
    let mut cfg = if !st.config_file.is_empty() {
        let path = PathBuf::from(&st.config_file);
        let loaded = file::load_unvalidated(&path, notices);
        notices.push(Notice::info(format!(
            "Loading server configuration from {}. Other configuration command line flags and environment variables will be ignored if provided.",
            go_quote(&st.config_file)
        )));
        loaded?
    } else {
        from_command_line(st, env, notices)?
    };
    cfg.validate_with_notices(notices)?;
    finish(&mut cfg, notices, default_host);
    Ok(Command::Run(Box::new(cfg)))
}

/// etcd's `configFromCmdLine` after the flags were parsed: the environment,
/// the raft timeouts' floor, the defaults that setting other flags removes,
/// then the renamed and gated flags (everything but `Config::validate`).
fn from_command_line(
    mut st: FlagState,
    env: &[(String, String)],
    notices: &mut Vec<Notice>,
) -> Result<Config, ConfigError> {
    let env = without_etcd_version(env, notices);
    set_flags_from_env(&mut st, &env, notices)?;
    raise_raft_timeouts(&mut st.cfg, notices);
    // Disable the default advertise-client-urls if listen-client-urls is set.
    let missing_ac = st.is_set("listen-client-urls") && !st.is_set("advertise-client-urls");
    if !st.cfg.may_be_proxy() && missing_ac {
        st.cfg.advertise_client_urls.clear();
    }
    // Disable the default initial-cluster if discovery is set.
    if (!st.cfg.discovery.is_empty()
        || !st.cfg.discovery_srv.is_empty()
        || !st.cfg.discovery_srv_name.is_empty()
        || !st.cfg.discovery_cfg.endpoints.is_empty())
        && !st.is_set("initial-cluster")
    {
        st.cfg.initial_cluster.clear();
    }
    let log_output = std::mem::take(&mut st.log_output);
    reconcile_log_outputs(&mut st.cfg, log_output, notices)?;
    st.cfg.flags_explicitly_set = st.actual.iter().map(|n| n.to_string()).collect();
    migrate::resolve(&mut st.cfg, &st.gates, &st.gates.text(), notices)?;
    Ok(st.cfg)
}

/// etcd 3.5+ unsets `ETCD_VERSION` before reading the environment: it would
/// otherwise set `--version`.
fn without_etcd_version(
    env: &[(String, String)],
    notices: &mut Vec<Notice>,
) -> Vec<(String, String)> {
    const KEY: &str = "ETCD_VERSION";
    if let Some(v) = getenv(env, KEY).filter(|v| !v.is_empty()) {
        notices.push(Notice::warn(format!(
            "cannot set special environment variable {KEY}={v}"
        )));
    }
    env.iter().filter(|(k, _)| k != KEY).cloned().collect()
}

/// etcd 3.5+: `--raft-read-timeout` / `--raft-write-timeout` below etcd's
/// default (5s) are raised to it.
fn raise_raft_timeouts(cfg: &mut Config, notices: &mut Vec<Notice>) {
    let floor = Duration::from_secs(5);
    for (name, t) in [
        ("raft-read-timeout", &mut cfg.raft_read_timeout),
        ("raft-write-timeout", &mut cfg.raft_write_timeout),
    ] {
        if *t < floor {
            *t = floor;
            notices.push(Notice::info(format!(
                "{name} increased to minimum value: {}",
                go_duration_string(floor)
            )));
        }
    }
}

/// Post-verification defaulting done in etcd's `startEtcdOrProxyV2`.
pub(crate) fn finish(
    cfg: &mut Config,
    notices: &mut Vec<Notice>,
    default_host: &dyn Fn() -> Result<String, String>,
) {
    let default_initial_cluster = format!("{DEFAULT_NAME}={DEFAULT_PEER_URL}");
    // Only consult the host detector when etcd's result depends on it.
    let needs_host = cfg
        .listen_peer_urls
        .first()
        .is_some_and(|u| u.hostname() == "0.0.0.0")
        || cfg
            .listen_client_urls
            .first()
            .is_some_and(|u| u.hostname() == "0.0.0.0");
    let host = if needs_host {
        default_host()
    } else {
        Ok(String::new())
    };
    let (used, err) = cfg.update_default_cluster_from_name(&default_initial_cluster, host);
    if let Some(h) = used {
        notices.push(Notice::info(format!(
            "advertising using detected default host {}",
            go_quote(&h)
        )));
    }
    if let Some(e) = err {
        notices.push(Notice::info(format!("failed to detect default host ({e})")));
    }
    if cfg.data_dir.as_os_str().is_empty() {
        cfg.data_dir = Config::default_data_dir(&cfg.name);
        notices.push(Notice::warn(format!(
            "no data-dir provided, using default data-dir ./{}",
            cfg.data_dir.display()
        )));
    }
}
