//! The flag table: one [`FlagSpec`] per flag of etcd 3.4, 3.5, 3.6 and 3.7
//! (the union), each with the etcd releases that define it. The same entry
//! drives argv parsing, `ETCD_*` environment lookup and (via [`Yaml`]) the
//! config-file key, so a flag is described exactly once.
//!
//! Derived by reading etcd's `server/etcdmain/config.go` and
//! `server/embed/config.go` at v3.4.23, v3.5.1, v3.5.33, v3.6.14 and v3.7.1.
//! "3.5" means any 3.5.x release, "3.4" any 3.4.x: flags added in a patch
//! release (3.4.25's TLS bounds, 3.4.31's `--next-cluster-version-compatible`,
//! 3.5.5's `--max-concurrent-streams`, ...) say so in `docs/compatibility.md`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::config::{ClusterState, Config, DiscoveryFallback, Notice, ProxyMode, V2Deprecation};
use super::gates::GateSettings;
use super::goparse::{self, go_quote, parse_bool, NumError};
use super::release::{EtcdRelease, R34, R35, R36, R37};
use super::url::{parse_url_csv, Url};

const ALL: u8 = R34 | R35 | R36 | R37;
const V35UP: u8 = R35 | R36 | R37;
const V36UP: u8 = R36 | R37;
const V345: u8 = R34 | R35;
const V3456: u8 = R34 | R35 | R36;
const V356: u8 = R35 | R36;

/// The flags `release` defines (its ignored legacy names included), in
/// chorus's table order. chorus accepts all of them.
pub fn flag_names(release: EtcdRelease) -> Vec<&'static str> {
    FLAGS
        .iter()
        .filter(|f| f.releases & release.bit() != 0)
        .map(|f| f.name)
        .collect()
}

/// How a flag's value is parsed (mirrors the Go `flag.Value` etcd uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `fs.StringVar`.
    Str,
    /// `fs.BoolVar`.
    Bool,
    /// `fs.UintVar` (Go `uint`).
    Uint,
    /// `fs.Uint64Var`.
    Uint64,
    /// `fs.IntVar` (Go `int`).
    Int,
    /// `fs.Int64Var`.
    Int64,
    /// etcd's `flags.NewUint32Value` (reports raw `strconv` errors).
    Uint32,
    /// `fs.DurationVar`.
    Duration,
    /// `flags.NewUniqueURLsWithExceptions(default, "")`.
    Urls,
    /// `flags.NewUniqueURLsWithExceptions("*", "*")` (`--cors`).
    Cors,
    /// `flags.NewUniqueStringsValue`.
    UniqueStrings,
    /// `flags.NewStringsValue` (`--cipher-suites`, the allowed CN/host lists).
    Strings,
    /// `flags.NewSelectiveStringValue` with these choices.
    Select(&'static [&'static str]),
    /// `--v2-deprecation` (`flags.NewSelectiveStringsValue`).
    V2Deprecation,
    /// `--feature-gates` (etcd's `featuregate`; repeated flags merge).
    FeatureGates,
    /// `flags.IgnoredFlag`: accepted like a bool flag, warns, does nothing.
    Ignored,
    /// `--version`.
    Version,
    /// `--config-file`.
    ConfigFile,
    /// `--log-output` (deprecated alias of `--log-outputs`).
    LogOutput,
}

impl Kind {
    pub(crate) fn is_bool(self) -> bool {
        matches!(self, Kind::Bool | Kind::Ignored | Kind::Version)
    }

    /// Go type name, as in `json: cannot unmarshal ... of type uint`.
    pub(crate) fn go_type(self) -> &'static str {
        match self {
            Kind::Bool | Kind::Ignored | Kind::Version => "bool",
            Kind::Uint => "uint",
            Kind::Uint64 => "uint64",
            Kind::Int => "int",
            Kind::Int64 => "int64",
            Kind::Uint32 => "uint32",
            Kind::Duration => "time.Duration",
            Kind::Strings | Kind::LogOutput => "[]string",
            Kind::V2Deprecation => "config.V2DeprecationEnum",
            _ => "string",
        }
    }
}

/// Where a flag lives in the YAML config file (etcd's `json:"..."` tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Yaml {
    /// Top-level key named like the flag, typed by the flag's kind.
    Key,
    /// Top-level key named like the flag, a YAML list of strings (`[]string`).
    List,
    /// Only inside `client-transport-security` / `peer-transport-security`.
    Tls,
    /// Inside another section (`socket-options`, `discovery-config`, a TLS
    /// section under another name); decoded by hand in `file.rs`.
    Nested,
    /// Not settable from the file.
    No,
}

/// Mutable view of the `Config` field a flag writes.
pub(crate) enum FieldMut<'a> {
    Str(&'a mut String),
    Path(&'a mut PathBuf),
    OptPath(&'a mut Option<PathBuf>),
    Bool(&'a mut bool),
    U64(&'a mut u64),
    I64(&'a mut i64),
    U32(&'a mut u32),
    Dur(&'a mut Duration),
    Urls(&'a mut Vec<Url>),
    Set(&'a mut BTreeSet<String>),
    List(&'a mut Vec<String>),
    State(&'a mut ClusterState),
    Proxy(&'a mut ProxyMode),
    Fallback(&'a mut DiscoveryFallback),
    V2Depr(&'a mut V2Deprecation),
}

macro_rules! field_from {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl<'a> From<&'a mut $t> for FieldMut<'a> {
            fn from(r: &'a mut $t) -> Self { FieldMut::$v(r) }
        }
    )*};
}

field_from!(
    String => Str,
    PathBuf => Path,
    Option<PathBuf> => OptPath,
    bool => Bool,
    u64 => U64,
    i64 => I64,
    u32 => U32,
    Duration => Dur,
    Vec<Url> => Urls,
    BTreeSet<String> => Set,
    Vec<String> => List,
    ClusterState => State,
    ProxyMode => Proxy,
    DiscoveryFallback => Fallback,
    V2Deprecation => V2Depr,
);

pub(crate) type Access = for<'a> fn(&'a mut Config) -> FieldMut<'a>;

/// One etcd flag.
pub(crate) struct FlagSpec {
    pub name: &'static str,
    pub kind: Kind,
    /// The etcd releases that define the flag (`R34 | R35 ...`; 0: chorus's own).
    pub releases: u8,
    pub access: Option<Access>,
    pub yaml: Yaml,
}

macro_rules! flag {
    ($name:literal, $kind:expr, $rel:expr, $yaml:expr, |$c:ident| $field:expr) => {
        FlagSpec {
            name: $name,
            kind: $kind,
            releases: $rel,
            access: Some(|$c: &mut Config| FieldMut::from(&mut $field)),
            yaml: $yaml,
        }
    };
    ($name:literal, $kind:expr, $rel:expr, $yaml:expr) => {
        FlagSpec {
            name: $name,
            kind: $kind,
            releases: $rel,
            access: None,
            yaml: $yaml,
        }
    };
}

macro_rules! ignored {
    ($name:literal) => {
        flag!($name, Kind::Ignored, ALL, Yaml::No)
    };
}

use Kind as K;
use Yaml as Y;

const CLUSTER_STATES: &[&str] = &["new", "existing"];
const FALLBACKS: &[&str] = &["exit", "proxy"];
const PROXIES: &[&str] = &["off", "on", "readonly"];

/// Every flag of etcd 3.4-3.7, grouped like etcd 3.5's `--help`.
#[rustfmt::skip]
pub(crate) static FLAGS: &[FlagSpec] = &[
    // Member
    flag!("name", K::Str, ALL, Y::Key, |c| c.name),
    flag!("data-dir", K::Str, ALL, Y::Key, |c| c.data_dir),
    flag!("wal-dir", K::Str, ALL, Y::Key, |c| c.wal_dir),
    flag!("snapshot-count", K::Uint64, ALL, Y::Key, |c| c.snapshot_count),
    flag!("heartbeat-interval", K::Uint, ALL, Y::Key, |c| c.heartbeat_interval_ms),
    flag!("election-timeout", K::Uint, ALL, Y::Key, |c| c.election_timeout_ms),
    flag!("initial-election-tick-advance", K::Bool, ALL, Y::Key, |c| c.initial_election_tick_advance),
    flag!("listen-peer-urls", K::Urls, ALL, Y::Key, |c| c.listen_peer_urls),
    flag!("listen-client-urls", K::Urls, ALL, Y::Key, |c| c.listen_client_urls),
    flag!("listen-client-http-urls", K::Urls, ALL, Y::Key, |c| c.listen_client_http_urls),
    flag!("max-snapshots", K::Uint, ALL, Y::Key, |c| c.max_snapshots),
    flag!("max-wals", K::Uint, ALL, Y::Key, |c| c.max_wals),
    flag!("quota-backend-bytes", K::Int64, ALL, Y::Key, |c| c.quota_backend_bytes),
    flag!("backend-bbolt-freelist-type", K::Str, V35UP, Y::Key, |c| c.backend_bbolt_freelist_type),
    flag!("backend-batch-interval", K::Duration, ALL, Y::Key, |c| c.backend_batch_interval),
    flag!("backend-batch-limit", K::Int, ALL, Y::Key, |c| c.backend_batch_limit),
    flag!("max-txn-ops", K::Uint, ALL, Y::Key, |c| c.max_txn_ops),
    flag!("max-request-bytes", K::Uint, ALL, Y::Key, |c| c.max_request_bytes),
    flag!("max-concurrent-streams", K::Uint32, ALL, Y::Key, |c| c.max_concurrent_streams),
    flag!("grpc-keepalive-min-time", K::Duration, ALL, Y::Key, |c| c.grpc_keepalive_min_time),
    flag!("grpc-keepalive-interval", K::Duration, ALL, Y::Key, |c| c.grpc_keepalive_interval),
    flag!("grpc-keepalive-timeout", K::Duration, ALL, Y::Key, |c| c.grpc_keepalive_timeout),
    flag!("socket-reuse-port", K::Bool, V35UP, Y::Nested, |c| c.socket_opts.reuse_port),
    flag!("socket-reuse-address", K::Bool, V35UP, Y::Nested, |c| c.socket_opts.reuse_address),
    flag!("raft-read-timeout", K::Duration, V35UP, Y::No, |c| c.raft_read_timeout),
    flag!("raft-write-timeout", K::Duration, V35UP, Y::No, |c| c.raft_write_timeout),
    flag!("max-learners", K::Int, V36UP, Y::Key, |c| c.max_learners),
    flag!("snapshot-catchup-entries", K::Uint64, V36UP, Y::Key, |c| c.snapshot_catchup_entries),
    flag!("experimental-snapshot-catchup-entries", K::Uint64, V356, Y::Key, |c| c.experimental_snapshot_catchup_entries),
    // Clustering
    flag!("initial-advertise-peer-urls", K::Urls, ALL, Y::Key, |c| c.initial_advertise_peer_urls),
    flag!("initial-cluster", K::Str, ALL, Y::Key, |c| c.initial_cluster),
    flag!("initial-cluster-state", K::Select(CLUSTER_STATES), ALL, Y::Key, |c| c.initial_cluster_state),
    flag!("initial-cluster-token", K::Str, ALL, Y::Key, |c| c.initial_cluster_token),
    flag!("advertise-client-urls", K::Urls, ALL, Y::Key, |c| c.advertise_client_urls),
    flag!("discovery", K::Str, V3456, Y::Key, |c| c.discovery),
    flag!("discovery-fallback", K::Select(FALLBACKS), ALL, Y::Key, |c| c.discovery_fallback),
    flag!("discovery-proxy", K::Str, V3456, Y::Key, |c| c.discovery_proxy),
    flag!("discovery-srv", K::Str, ALL, Y::Key, |c| c.discovery_srv),
    flag!("discovery-srv-name", K::Str, ALL, Y::Key, |c| c.discovery_srv_name),
    flag!("discovery-endpoints", K::UniqueStrings, V36UP, Y::Nested, |c| c.discovery_cfg.endpoints),
    flag!("discovery-token", K::Str, V36UP, Y::Nested, |c| c.discovery_cfg.token),
    flag!("discovery-dial-timeout", K::Duration, V36UP, Y::Nested, |c| c.discovery_cfg.dial_timeout),
    flag!("discovery-request-timeout", K::Duration, V36UP, Y::Nested, |c| c.discovery_cfg.request_timeout),
    flag!("discovery-keepalive-time", K::Duration, V36UP, Y::Nested, |c| c.discovery_cfg.keepalive_time),
    flag!("discovery-keepalive-timeout", K::Duration, V36UP, Y::Nested, |c| c.discovery_cfg.keepalive_timeout),
    flag!("discovery-insecure-transport", K::Bool, V36UP, Y::Nested, |c| c.discovery_cfg.insecure_transport),
    flag!("discovery-insecure-skip-tls-verify", K::Bool, V36UP, Y::Nested, |c| c.discovery_cfg.insecure_skip_tls_verify),
    flag!("discovery-cert", K::Str, V36UP, Y::Nested, |c| c.discovery_cfg.cert),
    flag!("discovery-key", K::Str, V36UP, Y::Nested, |c| c.discovery_cfg.key),
    flag!("discovery-cacert", K::Str, V36UP, Y::Nested, |c| c.discovery_cfg.cacert),
    flag!("discovery-user", K::Str, V36UP, Y::Nested, |c| c.discovery_cfg.user),
    flag!("discovery-password", K::Str, V36UP, Y::Nested, |c| c.discovery_cfg.password),
    flag!("strict-reconfig-check", K::Bool, ALL, Y::Key, |c| c.strict_reconfig_check),
    flag!("pre-vote", K::Bool, ALL, Y::Key, |c| c.pre_vote),
    flag!("auto-compaction-retention", K::Str, ALL, Y::Key, |c| c.auto_compaction_retention),
    flag!("auto-compaction-mode", K::Str, ALL, Y::Key, |c| c.auto_compaction_mode),
    flag!("enable-v2", K::Bool, V345, Y::Key, |c| c.enable_v2),
    flag!("v2-deprecation", K::V2Deprecation, V35UP, Y::Key, |c| c.v2_deprecation),
    // Security
    flag!("cert-file", K::Str, ALL, Y::Tls, |c| c.client_tls.cert_file),
    flag!("key-file", K::Str, ALL, Y::Tls, |c| c.client_tls.key_file),
    flag!("client-cert-file", K::Str, V35UP, Y::Tls, |c| c.client_tls.client_cert_file),
    flag!("client-key-file", K::Str, V35UP, Y::Tls, |c| c.client_tls.client_key_file),
    flag!("client-cert-auth", K::Bool, ALL, Y::Tls, |c| c.client_tls.client_cert_auth),
    flag!("client-crl-file", K::Str, ALL, Y::No, |c| c.client_tls.crl_file),
    flag!("client-cert-allowed-hostname", K::Strings, ALL, Y::Nested, |c| c.client_tls.allowed_hostnames),
    flag!("trusted-ca-file", K::Str, ALL, Y::Tls, |c| c.client_tls.trusted_ca_file),
    flag!("auto-tls", K::Bool, ALL, Y::Tls, |c| c.client_tls.auto_tls),
    flag!("peer-cert-file", K::Str, ALL, Y::Tls, |c| c.peer_tls.cert_file),
    flag!("peer-key-file", K::Str, ALL, Y::Tls, |c| c.peer_tls.key_file),
    flag!("peer-client-cert-file", K::Str, V35UP, Y::Tls, |c| c.peer_tls.client_cert_file),
    flag!("peer-client-key-file", K::Str, V35UP, Y::Tls, |c| c.peer_tls.client_key_file),
    flag!("peer-client-cert-auth", K::Bool, ALL, Y::Tls, |c| c.peer_tls.client_cert_auth),
    flag!("peer-trusted-ca-file", K::Str, ALL, Y::Tls, |c| c.peer_tls.trusted_ca_file),
    flag!("peer-cert-allowed-cn", K::Strings, ALL, Y::Nested, |c| c.peer_tls.allowed_cns),
    flag!("peer-cert-allowed-hostname", K::Strings, ALL, Y::Nested, |c| c.peer_tls.allowed_hostnames),
    flag!("peer-auto-tls", K::Bool, ALL, Y::Tls, |c| c.peer_tls.auto_tls),
    flag!("self-signed-cert-validity", K::Uint, V35UP, Y::Key, |c| c.self_signed_cert_validity),
    flag!("peer-crl-file", K::Str, ALL, Y::No, |c| c.peer_tls.crl_file),
    flag!("peer-skip-client-san-verification", K::Bool, V36UP, Y::Nested, |c| c.peer_tls.skip_client_san_verification),
    flag!("experimental-peer-skip-client-san-verification", K::Bool, V3456, Y::Key, |c| c.experimental_peer_skip_client_san_verification),
    flag!("cipher-suites", K::Strings, ALL, Y::List, |c| c.cipher_suites),
    flag!("tls-min-version", K::Str, ALL, Y::Key, |c| c.tls_min_version),
    flag!("tls-max-version", K::Str, ALL, Y::Key, |c| c.tls_max_version),
    flag!("cors", K::Cors, ALL, Y::Key, |c| c.cors),
    flag!("host-whitelist", K::UniqueStrings, ALL, Y::Key, |c| c.host_whitelist),
    // Auth
    flag!("auth-token", K::Str, ALL, Y::Key, |c| c.auth_token),
    flag!("bcrypt-cost", K::Uint, ALL, Y::Key, |c| c.bcrypt_cost),
    flag!("auth-token-ttl", K::Uint, ALL, Y::Key, |c| c.auth_token_ttl),
    // Profiling and Monitoring
    flag!("enable-pprof", K::Bool, ALL, Y::Key, |c| c.enable_pprof),
    flag!("metrics", K::Str, ALL, Y::Key, |c| c.metrics),
    flag!("listen-metrics-urls", K::Urls, ALL, Y::Key, |c| c.listen_metrics_urls),
    // Distributed tracing
    flag!("enable-distributed-tracing", K::Bool, V36UP, Y::Key, |c| c.enable_distributed_tracing),
    flag!("distributed-tracing-address", K::Str, V36UP, Y::Key, |c| c.distributed_tracing_address),
    flag!("distributed-tracing-service-name", K::Str, V36UP, Y::Key, |c| c.distributed_tracing_service_name),
    flag!("distributed-tracing-instance-id", K::Str, V36UP, Y::Key, |c| c.distributed_tracing_instance_id),
    flag!("distributed-tracing-sampling-rate", K::Int, V36UP, Y::Key, |c| c.distributed_tracing_sampling_rate),
    flag!("experimental-enable-distributed-tracing", K::Bool, V356, Y::Key, |c| c.experimental_enable_distributed_tracing),
    flag!("experimental-distributed-tracing-address", K::Str, V356, Y::Key, |c| c.experimental_distributed_tracing_address),
    flag!("experimental-distributed-tracing-service-name", K::Str, V356, Y::Key, |c| c.experimental_distributed_tracing_service_name),
    flag!("experimental-distributed-tracing-instance-id", K::Str, V356, Y::Key, |c| c.experimental_distributed_tracing_instance_id),
    flag!("experimental-distributed-tracing-sampling-rate", K::Int, V356, Y::Key, |c| c.experimental_distributed_tracing_sampling_rate),
    // Logging
    flag!("logger", K::Str, ALL, Y::Key, |c| c.logger),
    flag!("log-outputs", K::UniqueStrings, ALL, Y::List, |c| c.log_outputs),
    flag!("log-level", K::Str, ALL, Y::Key, |c| c.log_level),
    flag!("log-format", K::Str, V36UP, Y::Key, |c| c.log_format),
    flag!("enable-log-rotation", K::Bool, V35UP, Y::Key, |c| c.enable_log_rotation),
    flag!("log-rotation-config-json", K::Str, V35UP, Y::Key, |c| c.log_rotation_config_json),
    flag!("debug", K::Bool, R34, Y::Key, |c| c.debug),
    flag!("log-package-levels", K::Str, R34, Y::Key, |c| c.log_package_levels),
    flag!("log-output", K::LogOutput, R34, Y::List),
    // v2 Proxy
    flag!("proxy", K::Select(PROXIES), V345, Y::Key, |c| c.proxy),
    flag!("proxy-failure-wait", K::Uint, V345, Y::Key, |c| c.proxy_failure_wait_ms),
    flag!("proxy-refresh-interval", K::Uint, V345, Y::Key, |c| c.proxy_refresh_interval_ms),
    flag!("proxy-dial-timeout", K::Uint, V345, Y::Key, |c| c.proxy_dial_timeout_ms),
    flag!("proxy-write-timeout", K::Uint, V345, Y::Key, |c| c.proxy_write_timeout_ms),
    flag!("proxy-read-timeout", K::Uint, V345, Y::Key, |c| c.proxy_read_timeout_ms),
    // Feature gates, and the experimental flags etcd 3.6 renamed or turned into gates
    flag!("feature-gates", K::FeatureGates, V36UP, Y::Key),
    flag!("experimental-initial-corrupt-check", K::Bool, V3456, Y::Key, |c| c.experimental_initial_corrupt_check),
    flag!("corrupt-check-time", K::Duration, V36UP, Y::Key, |c| c.corrupt_check_time),
    flag!("experimental-corrupt-check-time", K::Duration, V3456, Y::Key, |c| c.experimental_corrupt_check_time),
    flag!("experimental-compact-hash-check-enabled", K::Bool, V356, Y::Key, |c| c.experimental_compact_hash_check_enabled),
    flag!("compact-hash-check-time", K::Duration, V36UP, Y::Key, |c| c.compact_hash_check_time),
    flag!("experimental-compact-hash-check-time", K::Duration, V356, Y::Key, |c| c.experimental_compact_hash_check_time),
    flag!("compaction-batch-limit", K::Int, V36UP, Y::Key, |c| c.compaction_batch_limit),
    flag!("experimental-compaction-batch-limit", K::Int, V3456, Y::Key, |c| c.experimental_compaction_batch_limit),
    flag!("compaction-sleep-interval", K::Duration, V36UP, Y::Key, |c| c.compaction_sleep_interval),
    flag!("experimental-compaction-sleep-interval", K::Duration, V356, Y::Key, |c| c.experimental_compaction_sleep_interval),
    flag!("watch-progress-notify-interval", K::Duration, V36UP, Y::Key, |c| c.watch_progress_notify_interval),
    flag!("experimental-watch-progress-notify-interval", K::Duration, V3456, Y::Key, |c| c.experimental_watch_progress_notify_interval),
    flag!("warning-apply-duration", K::Duration, V36UP, Y::Key, |c| c.warning_apply_duration),
    flag!("experimental-warning-apply-duration", K::Duration, V3456, Y::Key, |c| c.experimental_warning_apply_duration),
    flag!("warning-unary-request-duration", K::Duration, V36UP, Y::Key, |c| c.warning_unary_request_duration),
    flag!("experimental-warning-unary-request-duration", K::Duration, R36, Y::Key, |c| c.experimental_warning_unary_request_duration),
    flag!("bootstrap-defrag-threshold-megabytes", K::Uint, V36UP, Y::Key, |c| c.bootstrap_defrag_threshold_megabytes),
    flag!("experimental-bootstrap-defrag-threshold-megabytes", K::Uint, V356, Y::Key, |c| c.experimental_bootstrap_defrag_threshold_megabytes),
    flag!("memory-mlock", K::Bool, V36UP, Y::Key, |c| c.memory_mlock),
    flag!("experimental-memory-mlock", K::Bool, V356, Y::Key, |c| c.experimental_memory_mlock),
    flag!("downgrade-check-time", K::Duration, V36UP, Y::Key, |c| c.downgrade_check_time),
    flag!("experimental-downgrade-check-time", K::Duration, V356, Y::Key, |c| c.experimental_downgrade_check_time),
    flag!("experimental-txn-mode-write-with-shared-buffer", K::Bool, V356, Y::Key, |c| c.experimental_txn_mode_write_with_shared_buffer),
    flag!("experimental-stop-grpc-service-on-defrag", K::Bool, V356, Y::Key, |c| c.experimental_stop_grpc_service_on_defrag),
    flag!("experimental-enable-v2v3", K::Str, V345, Y::Key, |c| c.experimental_enable_v2v3),
    flag!("experimental-backend-bbolt-freelist-type", K::Str, R34, Y::Key, |c| c.experimental_backend_bbolt_freelist_type),
    flag!("experimental-enable-lease-checkpoint", K::Bool, V3456, Y::Key, |c| c.experimental_enable_lease_checkpoint),
    flag!("experimental-enable-lease-checkpoint-persist", K::Bool, V3456, Y::Key, |c| c.experimental_enable_lease_checkpoint_persist),
    // chorus's own: how often the leader checkpoints remaining lease TTLs.
    flag!("experimental-lease-checkpoint-interval", K::Duration, 0, Y::Key, |c| c.experimental_lease_checkpoint_interval),
    // chorus's own: DNS service discovery from the keys under /skydns (as the proxy's).
    flag!("dns-listen-addr", K::Str, 0, Y::Key, |c| c.dns_listen_addr),
    flag!("dns-domain", K::Str, 0, Y::Key, |c| c.dns_domain),
    // Unsafe
    flag!("force-new-cluster", K::Bool, ALL, Y::Key, |c| c.force_new_cluster),
    flag!("next-cluster-version-compatible", K::Bool, R34, Y::Key, |c| c.next_cluster_version_compatible),
    flag!("unsafe-no-fsync", K::Bool, ALL, Y::Key, |c| c.unsafe_no_fsync),
    // Not listed by etcd 3.5.1's --help
    flag!("enable-grpc-gateway", K::Bool, ALL, Y::Key, |c| c.enable_grpc_gateway),
    flag!("config-file", K::ConfigFile, ALL, Y::No),
    flag!("version", K::Version, ALL, Y::No),
    // etcd's `ignored` list: accepted (bool-like), warn, no effect.
    ignored!("cluster-active-size"),
    ignored!("cluster-remove-delay"),
    ignored!("cluster-sync-interval"),
    ignored!("config"),
    ignored!("force"),
    ignored!("max-result-buffer"),
    ignored!("max-retry-attempts"),
    ignored!("peer-heartbeat-interval"),
    ignored!("peer-election-timeout"),
    ignored!("retry-interval"),
    ignored!("snapshot"),
    ignored!("v"),
    ignored!("vv"),
    ignored!("test.coverprofile"),
    ignored!("test.outputdir"),
];

/// Look up a flag by name (without dashes).
pub(crate) fn lookup(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|f| f.name == name)
}

/// `flags.FlagToEnv("ETCD", name)`.
pub(crate) fn env_key(name: &str) -> String {
    format!("ETCD_{}", name.replace('-', "_").to_uppercase())
}

/// Whether two configs hold the same value for `spec`'s field.
pub(crate) fn field_equal(spec: &FlagSpec, a: &Config, b: &Config) -> bool {
    let Some(access) = spec.access else {
        return true;
    };
    let (mut a, mut b) = (a.clone(), b.clone());
    use FieldMut as F;
    match (access(&mut a), access(&mut b)) {
        (F::Str(x), F::Str(y)) => x == y,
        (F::Path(x), F::Path(y)) => x == y,
        (F::OptPath(x), F::OptPath(y)) => x == y,
        (F::Bool(x), F::Bool(y)) => x == y,
        (F::U64(x), F::U64(y)) => x == y,
        (F::I64(x), F::I64(y)) => x == y,
        (F::U32(x), F::U32(y)) => x == y,
        (F::Dur(x), F::Dur(y)) => x == y,
        (F::Urls(x), F::Urls(y)) => x == y,
        (F::Set(x), F::Set(y)) => x == y,
        (F::List(x), F::List(y)) => x == y,
        (F::State(x), F::State(y)) => x == y,
        (F::Proxy(x), F::Proxy(y)) => x == y,
        (F::Fallback(x), F::Fallback(y)) => x == y,
        (F::V2Depr(x), F::V2Depr(y)) => x == y,
        _ => false,
    }
}

/// Copies the value of `from`'s field into `to`'s field (two flags of one
/// setting, as etcd 3.6 copies `ExperimentalX` into `X`).
pub(crate) fn copy_field(from: &FlagSpec, to: &FlagSpec, cfg: &mut Config) {
    let (Some(src), Some(dst)) = (from.access, to.access) else {
        return;
    };
    let mut snapshot = cfg.clone();
    use FieldMut as F;
    match (src(&mut snapshot), dst(cfg)) {
        (F::Str(x), F::Str(y)) => y.clone_from(x),
        (F::Bool(x), F::Bool(y)) => *y = *x,
        (F::U64(x), F::U64(y)) => *y = *x,
        (F::I64(x), F::I64(y)) => *y = *x,
        (F::Dur(x), F::Dur(y)) => *y = *x,
        _ => unreachable!("flag table: {} and {} differ in type", from.name, to.name),
    }
}

/// Mutable parse state: etcd's `config` struct during `flagSet.Parse`.
pub(crate) struct FlagState {
    pub cfg: Config,
    /// Flags set on the command line or from the environment (`fs.Visit`).
    pub actual: BTreeSet<&'static str>,
    pub config_file: String,
    pub print_version: bool,
    /// `--log-output` (deprecated), reconciled with `--log-outputs` later.
    pub log_output: Vec<String>,
    /// `--feature-gates` so far.
    pub gates: GateSettings,
}

impl FlagState {
    pub(crate) fn new() -> Self {
        FlagState {
            cfg: Config::flag_defaults(),
            actual: BTreeSet::new(),
            config_file: String::new(),
            print_version: false,
            log_output: vec!["default".to_string()],
            gates: GateSettings::default(),
        }
    }

    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.actual.contains(name)
    }
}

/// Split by comma into a sorted, de-duplicated list (`UniqueStringsValue`).
fn unique_strings(s: &str) -> BTreeSet<String> {
    s.split(',').map(str::to_string).collect()
}

/// `flag.Value.Set` for `spec`. The error is the Go `err.Error()` text.
pub(crate) fn set_value(
    spec: &'static FlagSpec,
    st: &mut FlagState,
    value: &str,
    notices: &mut Vec<Notice>,
) -> Result<(), String> {
    match spec.kind {
        Kind::Ignored => {
            notices.push(Notice::warn(format!(
                "flag \"-{}\" is no longer supported - ignoring.",
                spec.name
            )));
            return Ok(());
        }
        Kind::Version => {
            st.print_version = parse_bool(value).ok_or("parse error")?;
            return Ok(());
        }
        Kind::ConfigFile => {
            st.config_file = value.to_string();
            return Ok(());
        }
        Kind::LogOutput => {
            st.log_output = unique_strings(value).into_iter().collect();
            return Ok(());
        }
        Kind::FeatureGates => return st.gates.set(value),
        _ => {}
    }
    let access = spec.access.expect("flag with a Config field");
    set_field(spec.kind, access(&mut st.cfg), value)
}

/// Parse `value` per `kind` into `field`.
pub(crate) fn set_field(kind: Kind, field: FieldMut<'_>, value: &str) -> Result<(), String> {
    use FieldMut as F;
    let num = |e: NumError| e.flag_text().to_string();
    match (kind, field) {
        (Kind::Str, F::Str(f)) => *f = value.to_string(),
        (Kind::Str, F::Path(f)) => *f = PathBuf::from(value),
        (Kind::Str, F::OptPath(f)) => {
            *f = (!value.is_empty()).then(|| PathBuf::from(value));
        }
        (Kind::Bool, F::Bool(f)) => *f = parse_bool(value).ok_or("parse error")?,
        (Kind::Uint | Kind::Uint64, F::U64(f)) => {
            *f = goparse::parse_uint(value, 64).map_err(num)?
        }
        (Kind::Int | Kind::Int64, F::I64(f)) => *f = goparse::parse_int(value).map_err(num)?,
        (Kind::Uint32, F::U32(f)) => {
            *f = goparse::parse_uint(value, 32).map_err(|e| {
                format!(
                    "strconv.ParseUint: parsing {}: {}",
                    go_quote(value),
                    e.strconv_text()
                )
            })? as u32;
        }
        (Kind::Duration, F::Dur(f)) => {
            let n = goparse::parse_go_duration(value).map_err(|_| "parse error")?;
            *f = goparse::nanos_to_duration(n)
                .ok_or("negative durations are not supported by chorus")?;
        }
        (Kind::Urls, F::Urls(f)) => {
            // UniqueURLs.Set: a value already present, or the "" exception, is a no-op.
            if value.is_empty() || f.iter().any(|u| u.to_string() == value) {
                return Ok(());
            }
            *f = parse_url_csv(value)?;
        }
        (Kind::Cors, F::Set(f)) => set_cors(f, value)?,
        (Kind::UniqueStrings, F::Set(f)) => *f = unique_strings(value),
        (Kind::UniqueStrings, F::List(f)) => *f = unique_strings(value).into_iter().collect(),
        (Kind::Strings, F::List(f)) => *f = value.split(',').map(str::to_string).collect(),
        (Kind::V2Deprecation, F::V2Depr(f)) => *f = parse_v2_deprecation(value)?,
        (Kind::Select(_), field) => set_select(field, value)?,
        (kind, _) => unreachable!("flag table: kind {kind:?} does not match its field"),
    }
    Ok(())
}

/// `--cors`: `flags.NewUniqueURLsWithExceptions("*", "*")`.
fn set_cors(f: &mut BTreeSet<String>, value: &str) -> Result<(), String> {
    if f.contains(value) {
        return Ok(());
    }
    if value == "*" {
        f.insert(value.to_string());
        return Ok(());
    }
    *f = parse_url_csv(value)?
        .iter()
        .map(|u| u.to_string())
        .collect();
    Ok(())
}

/// `flags.SelectiveStringValue.Set`.
fn set_select(field: FieldMut<'_>, value: &str) -> Result<(), String> {
    use FieldMut as F;
    let invalid = || "invalid value".to_string();
    match field {
        F::State(f) => {
            *f = match value {
                "new" => ClusterState::New,
                "existing" => ClusterState::Existing,
                _ => return Err(invalid()),
            }
        }
        F::Proxy(f) => {
            *f = match value {
                "off" => ProxyMode::Off,
                "readonly" => ProxyMode::Readonly,
                "on" => ProxyMode::On,
                _ => return Err(invalid()),
            }
        }
        F::Fallback(f) => {
            *f = match value {
                "proxy" => DiscoveryFallback::Proxy,
                "exit" => DiscoveryFallback::Exit,
                _ => return Err(invalid()),
            }
        }
        _ => unreachable!("flag table: a select flag without an enum field"),
    }
    Ok(())
}

/// `--v2-deprecation`: etcd's `SelectiveStringsValue` checks every
/// comma-separated stage (`invalid value "x"`). etcd keeps them all and
/// panics later when there is more than one; chorus keeps the furthest.
fn parse_v2_deprecation(value: &str) -> Result<V2Deprecation, String> {
    let mut out = V2Deprecation::NotYet;
    for part in value.split(',') {
        let v = V2Deprecation::parse(part)
            .ok_or_else(|| format!("invalid value {}", go_quote(part)))?;
        out = out.max(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind) -> &'static str {
        match kind {
            Kind::Str | Kind::ConfigFile => "x",
            Kind::Bool | Kind::Ignored | Kind::Version => "true",
            Kind::Uint | Kind::Uint64 | Kind::Int | Kind::Int64 | Kind::Uint32 => "7",
            Kind::Duration => "3s",
            Kind::Urls | Kind::Cors => "http://127.0.0.1:1",
            Kind::UniqueStrings | Kind::Strings | Kind::LogOutput => "a,b",
            Kind::Select(v) => v[0],
            Kind::V2Deprecation => "write-only",
            Kind::FeatureGates => "CompactHashCheck=true",
        }
    }

    #[test]
    fn every_flag_accepts_a_sample_value() {
        for spec in FLAGS {
            let mut st = FlagState::new();
            set_value(spec, &mut st, sample(spec.kind), &mut Vec::new())
                .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        }
    }

    #[test]
    fn flag_names_are_unique() {
        let names: BTreeSet<&str> = FLAGS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FLAGS.len());
    }

    #[test]
    fn env_keys() {
        assert_eq!(env_key("initial-cluster"), "ETCD_INITIAL_CLUSTER");
        assert_eq!(
            env_key("experimental-enable-v2v3"),
            "ETCD_EXPERIMENTAL_ENABLE_V2V3"
        );
        assert_eq!(env_key("test.coverprofile"), "ETCD_TEST.COVERPROFILE");
    }

    #[test]
    fn v2_deprecation_values() {
        assert_eq!(parse_v2_deprecation("gone"), Ok(V2Deprecation::Gone));
        assert_eq!(
            parse_v2_deprecation("write-only,not-yet"),
            Ok(V2Deprecation::WriteOnly)
        );
        assert_eq!(
            parse_v2_deprecation("write-only,nope"),
            Err("invalid value \"nope\"".to_string())
        );
    }
}
