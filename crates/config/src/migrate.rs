//! Flags that moved between etcd releases: etcd 3.6 renamed most
//! `--experimental-*` flags and turned the boolean ones into feature gates
//! (etcd 3.7 removed the old names); etcd 3.5 deprecated the v2 flags. chorus
//! accepts every name, and settles them after parsing, as etcd 3.6 does:
//!
//! ```text
//! flags / ETCD_* / config file ──► Config (one field per flag) + flags_explicitly_set
//!                                       │
//!      resolve():  --feature-gates ──► feature_gates
//!                  experimental bool flag set? ──► its gate   (both given: etcd's error)
//!                  old name set? ──► new field                (both given: validate's error)
//!                  then every old field mirrors the new one, so both read the same
//!                  deprecation warnings for every name etcd warns about
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use super::config::{Config, Notice};
use super::defaults::DEFAULT_WARNING_UNARY_REQUEST_DURATION;
use super::error::ConfigError;
use super::flags::{self, copy_field, FieldMut};
use super::gates::{self, GateSettings};

/// etcd 3.6's `experimentalFlagMigrationMap`: old name, new name.
pub(crate) const RENAMED: [(&str, &str); 16] = [
    (
        "experimental-compact-hash-check-time",
        "compact-hash-check-time",
    ),
    ("experimental-corrupt-check-time", "corrupt-check-time"),
    (
        "experimental-compaction-batch-limit",
        "compaction-batch-limit",
    ),
    (
        "experimental-watch-progress-notify-interval",
        "watch-progress-notify-interval",
    ),
    (
        "experimental-warning-apply-duration",
        "warning-apply-duration",
    ),
    (
        "experimental-bootstrap-defrag-threshold-megabytes",
        "bootstrap-defrag-threshold-megabytes",
    ),
    ("experimental-memory-mlock", "memory-mlock"),
    (
        "experimental-snapshot-catchup-entries",
        "snapshot-catchup-entries",
    ),
    (
        "experimental-compaction-sleep-interval",
        "compaction-sleep-interval",
    ),
    ("experimental-downgrade-check-time", "downgrade-check-time"),
    (
        "experimental-peer-skip-client-san-verification",
        "peer-skip-client-san-verification",
    ),
    (
        "experimental-enable-distributed-tracing",
        "enable-distributed-tracing",
    ),
    (
        "experimental-distributed-tracing-address",
        "distributed-tracing-address",
    ),
    (
        "experimental-distributed-tracing-service-name",
        "distributed-tracing-service-name",
    ),
    (
        "experimental-distributed-tracing-instance-id",
        "distributed-tracing-instance-id",
    ),
    (
        "experimental-distributed-tracing-sampling-rate",
        "distributed-tracing-sampling-rate",
    ),
];

/// etcd 3.6's `ExperimentalFlagToFeatureMap`: boolean flag, feature gate.
pub(crate) const GATED: [(&str, &str); 6] = [
    (
        "experimental-stop-grpc-service-on-defrag",
        "StopGRPCServiceOnDefrag",
    ),
    ("experimental-initial-corrupt-check", "InitialCorruptCheck"),
    (
        "experimental-compact-hash-check-enabled",
        "CompactHashCheck",
    ),
    (
        "experimental-txn-mode-write-with-shared-buffer",
        "TxnModeWriteWithSharedBuffer",
    ),
    ("experimental-enable-lease-checkpoint", "LeaseCheckpoint"),
    (
        "experimental-enable-lease-checkpoint-persist",
        "LeaseCheckpointPersist",
    ),
];

/// etcd 3.5's `deprecatedFlags` (the v2 API and proxy, gone in 3.6).
const DEPRECATED_IN_3_5: [&str; 8] = [
    "enable-v2",
    "experimental-enable-v2v3",
    "proxy",
    "proxy-failure-wait",
    "proxy-refresh-interval",
    "proxy-dial-timeout",
    "proxy-write-timeout",
    "proxy-read-timeout",
];

/// etcd 3.6's `deprecatedFlags` and their warnings, verbatim.
const DEPRECATED_IN_3_6: [(&str, &str); 19] = [
    ("max-snapshots", "--max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8."),
    ("v2-deprecation", "--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input."),
    ("experimental-compact-hash-check-enabled", "--experimental-compact-hash-check-enabled is deprecated in 3.6 and will be decommissioned in 3.7. Use '--feature-gates=CompactHashCheck=true' instead."),
    ("experimental-compact-hash-check-time", "--experimental-compact-hash-check-time is deprecated in 3.6 and will be decommissioned in 3.7. Use '--compact-hash-check-time' instead."),
    ("experimental-txn-mode-write-with-shared-buffer", "--experimental-txn-mode-write-with-shared-buffer is deprecated in v3.6 and will be decommissioned in v3.7. Use '--feature-gates=TxnModeWriteWithSharedBuffer=true' instead."),
    ("experimental-corrupt-check-time", "--experimental-corrupt-check-time is deprecated in v3.6 and will be decommissioned in v3.7. Use '--corrupt-check-time' instead."),
    ("experimental-compaction-batch-limit", "--experimental-compaction-batch-limit is deprecated in v3.6 and will be decommissioned in v3.7. Use '--compaction-batch-limit' instead."),
    ("experimental-watch-progress-notify-interval", "--experimental-watch-progress-notify-interval is deprecated in v3.6 and will be decommissioned in v3.7. Use '--watch-progress-notify-interval' instead."),
    ("experimental-warning-apply-duration", "--experimental-warning-apply-duration is deprecated in v3.6 and will be decommissioned in v3.7. Use '--warning-apply-duration' instead."),
    ("experimental-bootstrap-defrag-threshold-megabytes", "--experimental-bootstrap-defrag-threshold-megabytes is deprecated in v3.6 and will be decommissioned in v3.7. Use '--bootstrap-defrag-threshold-megabytes' instead."),
    ("experimental-memory-mlock", "--experimental-memory-mlock is deprecated in v3.6 and will be decommissioned in v3.7. Use '--memory-mlock' instead."),
    ("experimental-snapshot-catchup-entries", "--experimental-snapshot-catchup-entries is deprecated in v3.6 and will be decommissioned in v3.7. Use '--snapshot-catchup-entries' instead."),
    ("experimental-compaction-sleep-interval", "--experimental-compaction-sleep-interval is deprecated in v3.6 and will be decommissioned in v3.7. Use 'compaction-sleep-interval' instead."),
    ("experimental-downgrade-check-time", "--experimental-downgrade-check-time is deprecated in v3.6 and will be decommissioned in v3.7. Use '--downgrade-check-time' instead."),
    ("experimental-enable-distributed-tracing", "--experimental-enable-distributed-tracing is deprecated in 3.6 and will be decommissioned in 3.7. Use --enable-distributed-tracing instead."),
    ("experimental-distributed-tracing-address", "--experimental-distributed-tracing-address is deprecated in 3.6 and will be decommissioned in 3.7. Use --distributed-tracing-address instead."),
    ("experimental-distributed-tracing-service-name", "--experimental-distributed-tracing-service-name is deprecated in 3.6 and will be decommissioned in 3.7. Use --distributed-tracing-service-name instead."),
    ("experimental-distributed-tracing-instance-id", "--experimental-distributed-tracing-instance-id is deprecated in 3.6 and will be decommissioned in 3.7. Use --distributed-tracing-instance-id instead."),
    ("experimental-distributed-tracing-sampling-rate", "--experimental-distributed-tracing-sampling-rate is deprecated in 3.6 and will be decommissioned in 3.7. Use --distributed-tracing-sampling-rate instead."),
];

/// Settles renamed and gated flags after a command line or a config file
/// was read. `gates_value` is what etcd 3.6 searches for gate names when an
/// experimental flag is also given: the `--feature-gates` flag's
/// `String()` on the command line, the raw `feature-gates` value of a file.
pub(crate) fn resolve(
    cfg: &mut Config,
    gates: &GateSettings,
    gates_value: &str,
    notices: &mut Vec<Notice>,
) -> Result<(), ConfigError> {
    deprecation_notices(cfg, notices);
    warning_unary_request_duration(cfg, notices)?;
    gates.apply(&mut cfg.feature_gates);
    gates_from_experimental_flags(cfg, gates_value)?;
    for (old, new) in RENAMED {
        let (o, n) = (spec(old), spec(new));
        if cfg.flags_explicitly_set.contains(old) {
            copy_field(o, n, cfg);
        }
        copy_field(n, o, cfg);
    }
    for tls in [&mut cfg.client_tls, &mut cfg.peer_tls] {
        tls.allowed_cn = tls.allowed_cns.join(",");
        tls.allowed_hostname = tls.allowed_hostnames.join(",");
    }
    Ok(())
}

fn spec(name: &str) -> &'static flags::FlagSpec {
    flags::lookup(name).expect("migration table names a flag")
}

fn bool_field<'a>(cfg: &'a mut Config, flag: &str) -> &'a mut bool {
    match (spec(flag).access.expect("boolean flag field"))(cfg) {
        FieldMut::Bool(b) => b,
        _ => unreachable!("{flag} is a boolean flag"),
    }
}

/// etcd 3.6's `SetFeatureGatesFromExperimentalFlags`, then the mirror of
/// every gate into its experimental flag's field.
fn gates_from_experimental_flags(cfg: &mut Config, gates_value: &str) -> Result<(), ConfigError> {
    let mut from_flags = BTreeMap::new();
    for (flag, gate) in GATED {
        if !cfg.flags_explicitly_set.contains(flag) {
            continue;
        }
        let value = *bool_field(cfg, flag);
        if gates_value.contains(gate) {
            let g = gates::lookup(gate).expect("gate table");
            let enabled = g.get(&cfg.feature_gates);
            return Err(ConfigError::Invalid(format!(
                "cannot specify both flags: --{flag}={value} and --feature-gates={gate}={enabled} at the same time, please just use --feature-gates={gate}={enabled}"
            )));
        }
        from_flags.insert(gate, value);
    }
    for (gate, value) in from_flags {
        *(gates::lookup(gate).expect("gate table").access)(&mut cfg.feature_gates) = value;
    }
    for (flag, gate) in GATED {
        let value = gates::lookup(gate)
            .expect("gate table")
            .get(&cfg.feature_gates);
        *bool_field(cfg, flag) = value;
    }
    Ok(())
}

/// etcd 3.6's `parseWarningUnaryRequestDuration`.
fn warning_unary_request_duration(
    cfg: &mut Config,
    notices: &mut Vec<Notice>,
) -> Result<(), ConfigError> {
    let new_set = cfg
        .flags_explicitly_set
        .contains("warning-unary-request-duration")
        && !cfg.warning_unary_request_duration.is_zero();
    let old = cfg.experimental_warning_unary_request_duration;
    if new_set && !old.is_zero() {
        return Err(ConfigError::Invalid(
            "both --experimental-warning-unary-request-duration and --warning-unary-request-duration flags are set. Use only --warning-unary-request-duration".to_string(),
        ));
    }
    if !new_set {
        cfg.warning_unary_request_duration = if old.is_zero() {
            DEFAULT_WARNING_UNARY_REQUEST_DURATION
        } else {
            notices.push(Notice::warn("--experimental-warning-unary-request-duration is deprecated, and will be decommissioned in v3.7. Use --warning-unary-request-duration instead."));
            old
        };
    }
    debug_assert!(cfg.warning_unary_request_duration > Duration::ZERO);
    Ok(())
}

/// etcd 3.5 warns about the flags given on the command line (`fs.Visit`),
/// etcd 3.6 also about the keys of a config file.
fn deprecation_notices(cfg: &Config, notices: &mut Vec<Notice>) {
    let set = |f: &str| cfg.flags_explicitly_set.contains(f);
    let command_line = cfg.config_file.is_none();
    for flag in DEPRECATED_IN_3_5
        .into_iter()
        .filter(|f| command_line && set(f))
    {
        notices.push(Notice::warn(format!(
            "--{flag} is deprecated in 3.5 and will be decommissioned in 3.6."
        )));
    }
    for (_, message) in DEPRECATED_IN_3_6.into_iter().filter(|(f, _)| set(f)) {
        notices.push(Notice::warn(message));
    }
}

/// The conflict check at the top of etcd 3.6's `Config.Validate`: an old and
/// a new name given together.
pub(crate) fn check_renamed_conflicts(cfg: &Config) -> Result<(), ConfigError> {
    for (old, new) in RENAMED {
        if cfg.flags_explicitly_set.contains(old) && cfg.flags_explicitly_set.contains(new) {
            return Err(ConfigError::Invalid(format!(
                "cannot set --{old} and --{new} at the same time, please use --{new} only"
            )));
        }
    }
    Ok(())
}
