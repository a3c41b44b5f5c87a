//! Server configuration: etcd 3.4 compatible flags, `ETCD_*` environment
//! variables, YAML config file, defaults, validation and cluster identity.
//!
//! The entry point is [`Config::parse`], which mirrors what `etcd` 3.4.23 does
//! between `main()` and starting the server:
//!
//! 1. Go `flag` parsing of argv (`--name x`, `-name=x`, bool flags, `-h`);
//! 2. `--version` / `--help`;
//! 3. either the config file (`--config-file` / `ETCD_CONFIG_FILE`, which makes
//!    etcd ignore all other flags and environment variables), or the
//!    `ETCD_*` environment variables for flags not given on the command line;
//! 4. validation ([`Config::validate`]) with etcd's messages;
//! 5. defaulting of `--data-dir` (`${name}.chorus`) and of `--initial-cluster`
//!    from `--name`.
//!
//! Checks that etcd performs only when bootstrapping a fresh member (local name
//! present in `--initial-cluster`, advertised peer URLs matching, duplicate
//! URLs) are in [`Config::bootstrap_cluster`], because etcd skips them when the
//! data directory already holds a member.
//!
//! # Deliberate differences from etcd 3.4.23
//!
//! - Default data dir is `${name}.chorus`; `--enable-v2` defaults to `true`.
//! - Flags in [`NOT_IMPLEMENTED`] (and the `gateway` / `grpc-proxy`
//!   subcommands) are accepted by the parser but rejected by validation when
//!   set to a non-default value.
//! - An unknown `--log-level` is an error (etcd 3.4 panics, exit 2).
//! - Negative durations (`--grpc-keepalive-interval=-1s`) are rejected.
//! - Config file: unknown keys produce a warning (etcd ignores them silently);
//!   decoding errors name the file; the YAML parser is YAML 1.2 (the YAML 1.1
//!   words `yes`/`no`/`on`/`off` are still accepted for boolean keys, but
//!   `010` is decimal and `name: yes` is the string "yes"); a bad
//!   `advertise-client-urls` is reported under its own name (etcd says
//!   `advertise-peer-urls`).
//! - Advertise/initial-cluster URL matching resolves DNS names once instead of
//!   retrying for 30 s; the peer TLS error names the configured host:port,
//!   not the bound address.
//! - The default host (for `0.0.0.0` listeners with default advertise URLs)
//!   comes from `/proc/net/route` and is only looked up when needed.
//! - The `[WARNING] Deprecated '--logger=capnslog'` line etcd prints on every
//!   start is not reproduced.

mod cluster;
mod default_host;
mod error;
mod file;
mod flags;
mod goparse;
pub mod url;
mod version;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cluster::{
    cluster_id, format_id, member_id, member_id_at, BootstrapCluster, InitialCluster, Member,
};
pub use default_host::detect_default_host;
pub use error::{ConfigError, ERR_UNSET_ADVERTISE_CLIENT_URLS};
pub use flags::{flags_text, help_text, usage_text};
pub use url::{join_urls, parse_url_csv, parse_url_list, sort_urls, Url};
pub use version::{
    git_sha, os_arch, rust_version, version_lines, version_text, API_VERSION, CHORUS_VERSION,
    ETCD_COMPAT_VERSION,
};

use goparse::{go_quote, go_quote_list};

/// Flags chorus accepts (so existing etcd command lines still parse) but does
/// not implement yet. [`Config::validate`] rejects a non-default value for any
/// of them with [`ConfigError::NotImplemented`]. Remove a name here when the
/// feature lands.
pub const NOT_IMPLEMENTED: &[&str] = &[
    // TLS (etcd 3.5 client flag)
    "client-cert-allowed-hostname",
    // discovery
    "discovery",
    "discovery-fallback",
    "discovery-proxy",
    "discovery-srv",
    "discovery-srv-name",
    // v2 proxy
    "proxy",
    "proxy-failure-wait",
    "proxy-refresh-interval",
    "proxy-dial-timeout",
    "proxy-write-timeout",
    "proxy-read-timeout",
    // misc
    "force-new-cluster",
    "enable-pprof",
    "auth-token",
    "experimental-enable-v2v3",
    "experimental-initial-corrupt-check",
    "experimental-corrupt-check-time",
    // auth (the Auth service arrives later)
    "bcrypt-cost",
    "auth-token-ttl",
    // HTTP policies and metrics
    "cors",
    "host-whitelist",
    // `extensive` adds latency histograms, which chorus does not export yet
    "metrics",
    "log-package-levels",
];

/// Default client URL (`--listen-client-urls`, `--advertise-client-urls`).
pub const DEFAULT_CLIENT_URL: &str = "http://localhost:2379";
/// Default peer URL (`--listen-peer-urls`, `--initial-advertise-peer-urls`).
pub const DEFAULT_PEER_URL: &str = "http://localhost:2380";
/// Default member name.
pub const DEFAULT_NAME: &str = "default";
/// Default `--initial-cluster-token`.
pub const DEFAULT_INITIAL_CLUSTER_TOKEN: &str = "etcd-cluster";
/// etcd's `DefaultSnapshotCount`, used when `--snapshot-count` is 0.
pub const DEFAULT_SNAPSHOT_COUNT: u64 = 100_000;
/// etcd's `DefaultQuotaBytes` (2 GiB), used when `--quota-backend-bytes` is 0.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// etcd's `MaxQuotaBytes` (8 GiB): larger quotas only produce a warning.
pub const MAX_QUOTA_BYTES: i64 = 8 * 1024 * 1024 * 1024;
/// etcd's `recommendedMaxRequestBytes` (10 MiB): larger values only warn.
pub const RECOMMENDED_MAX_REQUEST_BYTES: u64 = 10 * 1024 * 1024;
/// etcd's `maxElectionMs`.
pub const MAX_ELECTION_MS: u64 = 50_000;
/// Suffix of the default data directory (`${name}.chorus`; etcd uses `.etcd`).
pub const DATA_DIR_SUFFIX: &str = "chorus";

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterState {
    /// Bootstrap a new cluster.
    #[default]
    New,
    /// Join an existing cluster.
    Existing,
}

/// `--proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// Not a proxy.
    #[default]
    Off,
    /// Read-only v2 proxy.
    Readonly,
    /// Read-write v2 proxy.
    On,
}

/// `--discovery-fallback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiscoveryFallback {
    /// Fall back to v2 proxy mode when the discovery cluster is full.
    #[default]
    Proxy,
    /// Exit when the discovery cluster is full.
    Exit,
}

impl ClusterState {
    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }
    }
}

impl ProxyMode {
    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Off => "off",
            ProxyMode::Readonly => "readonly",
            ProxyMode::On => "on",
        }
    }
}

impl DiscoveryFallback {
    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscoveryFallback::Proxy => "proxy",
            DiscoveryFallback::Exit => "exit",
        }
    }
}

impl fmt::Display for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ProxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DiscoveryFallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TLS settings of one endpoint class (etcd's `transport.TLSInfo` + auto-TLS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `--cert-file` / `--peer-cert-file`.
    pub cert_file: String,
    /// `--key-file` / `--peer-key-file`.
    pub key_file: String,
    /// `--client-cert-auth` / `--peer-client-cert-auth`.
    pub client_cert_auth: bool,
    /// `--trusted-ca-file` / `--peer-trusted-ca-file`.
    pub trusted_ca_file: String,
    /// `--client-crl-file` / `--peer-crl-file`.
    pub crl_file: String,
    /// `--peer-cert-allowed-cn` (peer only).
    pub allowed_cn: String,
    /// `--client-cert-allowed-hostname` / `--peer-cert-allowed-hostname`.
    pub allowed_hostname: String,
    /// `--auto-tls` / `--peer-auto-tls`.
    pub auto_tls: bool,
    /// `--experimental-peer-skip-client-san-verification` (peer only).
    pub skip_client_san_verification: bool,
}

impl TlsInfo {
    /// etcd's `TLSInfo.Empty()`: no cert and no key file.
    pub fn is_empty(&self) -> bool {
        self.cert_file.is_empty() && self.key_file.is_empty()
    }
}

/// Server configuration: every etcd 3.4 flag, with etcd's defaults (chorus
/// deliberately differs in `data_dir` — `${name}.chorus` — and `enable_v2`,
/// which defaults to `true`).
///
/// Fields hold the values etcd's `embed.Config` would hold; where etcd treats
/// 0 / empty as "use the built-in default", so does this struct (see the
/// `effective_*` helpers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    // --- Member ---
    /// `--name`.
    pub name: String,
    /// `--data-dir`. After [`Config::parse`] never empty (`${name}.chorus`).
    pub data_dir: PathBuf,
    /// `--wal-dir` (`None`: `<data-dir>/member/wal`).
    pub wal_dir: Option<PathBuf>,
    /// `--snapshot-count` (0 means [`DEFAULT_SNAPSHOT_COUNT`]).
    pub snapshot_count: u64,
    /// `--heartbeat-interval`, milliseconds.
    pub heartbeat_interval_ms: u64,
    /// `--election-timeout`, milliseconds.
    pub election_timeout_ms: u64,
    /// `--initial-election-tick-advance`.
    pub initial_election_tick_advance: bool,
    /// `--listen-peer-urls` (sorted, as etcd stores them).
    pub listen_peer_urls: Vec<Url>,
    /// `--listen-client-urls` (sorted).
    pub listen_client_urls: Vec<Url>,
    /// `--max-snapshots` (0: unlimited).
    pub max_snapshots: u64,
    /// `--max-wals` (0: unlimited).
    pub max_wals: u64,
    /// `--quota-backend-bytes` (0: 2 GiB default; negative: no quota).
    pub quota_backend_bytes: i64,
    /// `--backend-batch-interval` (0: backend default).
    pub backend_batch_interval: Duration,
    /// `--backend-batch-limit` (0: backend default).
    pub backend_batch_limit: i64,
    /// `--max-txn-ops`.
    pub max_txn_ops: u64,
    /// `--max-request-bytes`.
    pub max_request_bytes: u64,
    /// `--max-concurrent-streams`.
    pub max_concurrent_streams: u32,
    /// `--grpc-keepalive-min-time`.
    pub grpc_keepalive_min_time: Duration,
    /// `--grpc-keepalive-interval` (0 disables).
    pub grpc_keepalive_interval: Duration,
    /// `--grpc-keepalive-timeout` (0 disables).
    pub grpc_keepalive_timeout: Duration,

    // --- Clustering ---
    /// `--initial-advertise-peer-urls` (sorted).
    pub initial_advertise_peer_urls: Vec<Url>,
    /// `--initial-cluster`, raw (`name=url,...`); see [`Config::initial_cluster_map`].
    pub initial_cluster: String,
    /// `--initial-cluster-state`.
    pub initial_cluster_state: ClusterState,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--advertise-client-urls` (sorted).
    pub advertise_client_urls: Vec<Url>,
    /// `--discovery`.
    pub discovery: String,
    /// `--discovery-fallback`.
    pub discovery_fallback: DiscoveryFallback,
    /// `--discovery-proxy`.
    pub discovery_proxy: String,
    /// `--discovery-srv`.
    pub discovery_srv: String,
    /// `--discovery-srv-name`.
    pub discovery_srv_name: String,
    /// `--strict-reconfig-check`.
    pub strict_reconfig_check: bool,
    /// `--pre-vote`.
    pub pre_vote: bool,
    /// `--auto-compaction-retention`, raw; see [`Config::auto_compaction`].
    pub auto_compaction_retention: String,
    /// `--auto-compaction-mode`, raw (`periodic`, `revision`, or empty when a
    /// config file omits it).
    pub auto_compaction_mode: String,
    /// `--enable-v2` (chorus default: `true`; etcd 3.4: `false`).
    pub enable_v2: bool,

    // --- Security ---
    /// Client-facing TLS (`--cert-file`, `--key-file`, ...).
    pub client_tls: TlsInfo,
    /// Peer TLS (`--peer-cert-file`, ...).
    pub peer_tls: TlsInfo,
    /// `--cipher-suites`.
    pub cipher_suites: Vec<String>,
    /// `--cors` (set of origins; `*` allows all).
    pub cors: BTreeSet<String>,
    /// `--host-whitelist` (`*` allows all).
    pub host_whitelist: BTreeSet<String>,

    // --- Auth ---
    /// `--auth-token`.
    pub auth_token: String,
    /// `--bcrypt-cost`.
    pub bcrypt_cost: u64,
    /// `--auth-token-ttl`, seconds.
    pub auth_token_ttl: u64,

    // --- Profiling and monitoring ---
    /// `--enable-pprof`.
    pub enable_pprof: bool,
    /// `--metrics` (`basic` or `extensive`).
    pub metrics: String,
    /// `--listen-metrics-urls`.
    pub listen_metrics_urls: Vec<Url>,

    // --- Logging ---
    /// `--logger` (`capnslog` or `zap`).
    pub logger: String,
    /// `--log-outputs` (sorted, de-duplicated when given as a flag).
    pub log_outputs: Vec<String>,
    /// `--log-level`.
    pub log_level: String,
    /// `--debug` (deprecated).
    pub debug: bool,
    /// `--log-package-levels` (deprecated).
    pub log_package_levels: String,

    // --- v2 proxy ---
    /// `--proxy`.
    pub proxy: ProxyMode,
    /// `--proxy-failure-wait`, ms.
    pub proxy_failure_wait_ms: u64,
    /// `--proxy-refresh-interval`, ms.
    pub proxy_refresh_interval_ms: u64,
    /// `--proxy-dial-timeout`, ms.
    pub proxy_dial_timeout_ms: u64,
    /// `--proxy-write-timeout`, ms.
    pub proxy_write_timeout_ms: u64,
    /// `--proxy-read-timeout`, ms.
    pub proxy_read_timeout_ms: u64,

    // --- Experimental ---
    /// `--experimental-initial-corrupt-check`.
    pub experimental_initial_corrupt_check: bool,
    /// `--experimental-corrupt-check-time` (0: disabled).
    pub experimental_corrupt_check_time: Duration,
    /// `--experimental-enable-v2v3` (prefix; empty: disabled).
    pub experimental_enable_v2v3: String,
    /// `--experimental-backend-bbolt-freelist-type` (accepted; no effect on chorus storage).
    pub experimental_backend_bbolt_freelist_type: String,
    /// `--experimental-enable-lease-checkpoint`.
    pub experimental_enable_lease_checkpoint: bool,
    /// `--experimental-enable-lease-checkpoint-persist` (hidden flag in 3.4).
    pub experimental_enable_lease_checkpoint_persist: bool,
    /// `--tls-min-version` / `--tls-max-version` (etcd 3.5): `TLS1.2`, `TLS1.3`, or empty.
    pub tls_min_version: String,
    pub tls_max_version: String,
    /// `--experimental-lease-checkpoint-interval` (etcd 3.5; hidden here; chorus default 5s).
    pub experimental_lease_checkpoint_interval: Duration,
    /// `--experimental-compaction-batch-limit` (0: 1000, as etcd's mvcc).
    pub experimental_compaction_batch_limit: i64,
    /// `--experimental-snapshot-catchup-entries` (etcd 3.5; hidden): raft entries kept in
    /// memory after a snapshot so that slow followers catch up without one.
    pub experimental_snapshot_catchup_entries: u64,
    /// `--experimental-watch-progress-notify-interval` (0: 10m, as etcd).
    pub experimental_watch_progress_notify_interval: Duration,
    /// `--experimental-warning-apply-duration`.
    pub experimental_warning_apply_duration: Duration,

    // --- Unsafe / hidden ---
    /// `--force-new-cluster`.
    pub force_new_cluster: bool,
    /// `--unsafe-no-fsync` (hidden flag in 3.4).
    pub unsafe_no_fsync: bool,
    /// `--enable-grpc-gateway` (hidden flag; `true` by flag default, `false`
    /// when a config file does not set it — as in etcd 3.4).
    pub enable_grpc_gateway: bool,

    /// The config file this configuration was loaded from, if any.
    pub config_file: Option<PathBuf>,
}

fn url(s: &str) -> Url {
    Url::parse_etcd(s).expect("built-in default URL is valid")
}

fn star() -> BTreeSet<String> {
    BTreeSet::from(["*".to_string()])
}

impl Config {
    /// Values the flag set starts from (etcd's `embed.NewConfig()` plus flag
    /// defaults), before `data-dir` and `initial-cluster` are derived from the name.
    pub(crate) fn flag_defaults() -> Config {
        Config {
            name: DEFAULT_NAME.to_string(),
            data_dir: PathBuf::new(),
            wal_dir: None,
            snapshot_count: DEFAULT_SNAPSHOT_COUNT,
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            initial_election_tick_advance: true,
            listen_peer_urls: vec![url(DEFAULT_PEER_URL)],
            listen_client_urls: vec![url(DEFAULT_CLIENT_URL)],
            max_snapshots: 5,
            max_wals: 5,
            quota_backend_bytes: 0,
            backend_batch_interval: Duration::ZERO,
            backend_batch_limit: 0,
            max_txn_ops: 128,
            max_request_bytes: 1024 * 1024 * 3 / 2,
            max_concurrent_streams: u32::MAX,
            grpc_keepalive_min_time: Duration::from_secs(5),
            grpc_keepalive_interval: Duration::from_secs(2 * 3600),
            grpc_keepalive_timeout: Duration::from_secs(20),
            initial_advertise_peer_urls: vec![url(DEFAULT_PEER_URL)],
            initial_cluster: format!("{DEFAULT_NAME}={DEFAULT_PEER_URL}"),
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: DEFAULT_INITIAL_CLUSTER_TOKEN.to_string(),
            advertise_client_urls: vec![url(DEFAULT_CLIENT_URL)],
            discovery: String::new(),
            discovery_fallback: DiscoveryFallback::Proxy,
            discovery_proxy: String::new(),
            discovery_srv: String::new(),
            discovery_srv_name: String::new(),
            strict_reconfig_check: true,
            // chorus runs pre-vote by default (etcd 3.4: off; 3.5: on).
            pre_vote: true,
            auto_compaction_retention: "0".to_string(),
            auto_compaction_mode: "periodic".to_string(),
            enable_v2: true,
            client_tls: TlsInfo::default(),
            peer_tls: TlsInfo::default(),
            cipher_suites: Vec::new(),
            cors: star(),
            host_whitelist: star(),
            auth_token: "simple".to_string(),
            bcrypt_cost: 10,
            auth_token_ttl: 300,
            enable_pprof: false,
            metrics: "basic".to_string(),
            listen_metrics_urls: Vec::new(),
            logger: "capnslog".to_string(),
            log_outputs: vec!["default".to_string()],
            log_level: "info".to_string(),
            debug: false,
            log_package_levels: String::new(),
            proxy: ProxyMode::Off,
            proxy_failure_wait_ms: 5000,
            proxy_refresh_interval_ms: 30000,
            proxy_dial_timeout_ms: 1000,
            proxy_write_timeout_ms: 5000,
            proxy_read_timeout_ms: 0,
            experimental_initial_corrupt_check: false,
            experimental_corrupt_check_time: Duration::ZERO,
            experimental_enable_v2v3: String::new(),
            experimental_backend_bbolt_freelist_type: String::new(),
            // chorus checkpoints remaining lease TTLs by default (etcd: off).
            experimental_enable_lease_checkpoint: true,
            experimental_enable_lease_checkpoint_persist: true,
            experimental_lease_checkpoint_interval: Duration::from_secs(5),
            tls_min_version: String::new(),
            tls_max_version: String::new(),
            experimental_compaction_batch_limit: 0,
            experimental_snapshot_catchup_entries: 5000,
            experimental_watch_progress_notify_interval: Duration::ZERO,
            experimental_warning_apply_duration: Duration::from_millis(100),
            force_new_cluster: false,
            unsafe_no_fsync: false,
            enable_grpc_gateway: true,
            config_file: None,
        }
    }

    /// What etcd's `embed.NewConfig()` holds before a config file is applied:
    /// the flag defaults except for the few flags whose default lives only in
    /// the flag definition.
    pub(crate) fn file_defaults() -> Config {
        Config {
            enable_grpc_gateway: false,
            auto_compaction_retention: String::new(),
            auto_compaction_mode: String::new(),
            ..Config::flag_defaults()
        }
    }

    /// The default data directory for a member name: `${name}.chorus`.
    pub fn default_data_dir(name: &str) -> PathBuf {
        PathBuf::from(format!("{name}.{DATA_DIR_SUFFIX}"))
    }

    /// etcd's `InitialClusterFromName`: `name=<advertise peer url>,...`.
    pub fn initial_cluster_from_name(&self, name: &str) -> String {
        let n = if name.is_empty() { DEFAULT_NAME } else { name };
        self.initial_advertise_peer_urls
            .iter()
            .map(|u| format!("{n}={u}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parse a command line and environment exactly as etcd 3.4 does
    /// (see the module docs). `args` excludes the program name; `env` is the
    /// process environment in `environ` order (e.g. `std::env::vars()`).
    ///
    /// Log-worthy events etcd would log while parsing (environment variables
    /// used, unrecognized `ETCD_*` variables, ignored legacy flags, deprecation
    /// warnings, default data dir) are appended to `notices`, in order, even
    /// when an error is returned.
    pub fn parse<I, S>(
        args: I,
        env: &[(String, String)],
        notices: &mut Vec<Notice>,
    ) -> Result<Command, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Self::parse_with_host(args, env, notices, &|| detect_default_host())
    }

    /// [`Config::parse`] with an injectable default-host detector (etcd's
    /// `netutil.GetDefaultHost`, used to replace `0.0.0.0` in default
    /// advertise URLs).
    pub fn parse_with_host<I, S>(
        args: I,
        env: &[(String, String)],
        notices: &mut Vec<Notice>,
        default_host: &dyn Fn() -> Result<String, String>,
    ) -> Result<Command, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.into().to_string_lossy().into_owned())
            .collect();
        flags::parse_command_line(&args, env, notices, default_host)
    }

    /// [`Config::parse`] on the real process arguments and environment.
    pub fn from_process(notices: &mut Vec<Notice>) -> Result<Command, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        Self::parse(std::env::args_os().skip(1), &env, notices)
    }

    /// Load a YAML config file the way `etcd --config-file` does (without
    /// the data-dir / initial-cluster defaulting that [`Config::parse`] adds).
    pub fn from_file(path: &Path, notices: &mut Vec<Notice>) -> Result<Config, ConfigError> {
        file::load(path, notices)
    }

    /// etcd's flag/config verification plus chorus's own checks: rejects
    /// [`NOT_IMPLEMENTED`] features, https listeners without certificates,
    /// unparsable auto-compaction retention and unknown log levels.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with_notices(&mut Vec::new())
    }

    /// [`Config::validate`], also collecting the warnings etcd logs.
    pub fn validate_with_notices(&self, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
        self.validate_etcd(notices)?;
        self.check_not_implemented()?;
        if !matches!(
            self.experimental_backend_bbolt_freelist_type.as_str(),
            "" | "array"
        ) {
            notices.push(Notice::warn(format!(
                "--experimental-backend-bbolt-freelist-type={} has no effect: chorus's backend is redb, not bbolt",
                self.experimental_backend_bbolt_freelist_type
            )));
        }
        self.validate_startup(notices)
    }

    /// etcd's `mayBeProxy`: v2 proxy mode, or discovery with proxy fallback.
    pub fn may_be_proxy(&self) -> bool {
        let may_fallback =
            !self.discovery.is_empty() && self.discovery_fallback == DiscoveryFallback::Proxy;
        self.proxy != ProxyMode::Off || may_fallback
    }

    /// `embed.Config.Validate` (including `setupLogging`), in etcd's order.
    fn validate_etcd(&self, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
        let inv = |m: String| Err(ConfigError::Invalid(m));
        self.validate_logging(notices)?;
        check_bind_urls(&self.listen_peer_urls).map_err(ConfigError::Invalid)?;
        check_bind_urls(&self.listen_client_urls).map_err(ConfigError::Invalid)?;
        check_bind_urls(&self.listen_metrics_urls).map_err(ConfigError::Invalid)?;
        if let Err(e) = check_host_urls(&self.initial_advertise_peer_urls) {
            return inv(format!(
                "--initial-advertise-peer-urls {} must be \"host:port\" ({e})",
                go_quote(&join_urls(&self.initial_advertise_peer_urls))
            ));
        }
        if let Err(e) = check_host_urls(&self.advertise_client_urls) {
            return inv(format!(
                "--advertise-client-urls {} must be \"host:port\" ({e})",
                go_quote(&join_urls(&self.advertise_client_urls))
            ));
        }
        let n_set = [
            !self.discovery.is_empty(),
            !self.initial_cluster.is_empty(),
            !self.discovery_srv.is_empty(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n_set > 1 {
            return inv("multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"".to_string());
        }
        let tick = self.heartbeat_interval_ms;
        let election = self.election_timeout_ms;
        if tick == 0 {
            return inv(format!("--heartbeat-interval must be >0 (set to {tick}ms)"));
        }
        if election == 0 {
            return inv(format!(
                "--election-timeout must be >0 (set to {election}ms)"
            ));
        }
        // Go's uint arithmetic wraps; mirror it.
        if tick.wrapping_mul(5) > election {
            return inv(format!(
                "--election-timeout[{election}ms] should be at least as 5 times as --heartbeat-interval[{tick}ms]"
            ));
        }
        if election > MAX_ELECTION_MS {
            return inv(format!(
                "--election-timeout[{election}ms] is too long, and should be set less than {MAX_ELECTION_MS}ms"
            ));
        }
        if !self.listen_client_urls.is_empty() && self.advertise_client_urls.is_empty() {
            if self.may_be_proxy() {
                // etcdmain ignores this error for a (possible) proxy; etcd's
                // Validate has returned at this point, skipping later checks.
                return Ok(());
            }
            return inv(ERR_UNSET_ADVERTISE_CLIENT_URLS.to_string());
        }
        match self.auto_compaction_mode.as_str() {
            "" | "periodic" | "revision" => {}
            other => return inv(format!("unknown auto-compaction-mode {}", go_quote(other))),
        }
        if !self.experimental_enable_lease_checkpoint_persist
            && self.experimental_enable_lease_checkpoint
        {
            notices.push(Notice::warn(
                "Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist",
            ));
        }
        if self.experimental_enable_lease_checkpoint_persist
            && !self.experimental_enable_lease_checkpoint
        {
            return inv("setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint".to_string());
        }
        Ok(())
    }

    /// The logging half of etcd's `setupLogging` (the `--log-output` /
    /// `--log-outputs` reconciliation happens while parsing).
    fn validate_logging(&self, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
        let inv = |m: String| Err(ConfigError::Invalid(m));
        if self.debug {
            notices.push(Notice::warn(format!(
                "[WARNING] Deprecated '--debug' flag is set to {} (use '--log-level=debug' instead",
                self.debug
            )));
            if self.log_level != "debug" {
                notices.push(Notice::warn(format!(
                    "[WARNING] Deprecated '--debug' flag is set to {} with inconsistent '--log-level={}' flag",
                    self.debug, self.log_level
                )));
            }
        }
        if !self.log_package_levels.is_empty() {
            notices.push(Notice::warn(format!(
                "[WARNING] Deprecated '--log-package-levels={}' flag is set; use '--logger=zap' flag instead",
                self.log_package_levels
            )));
        }
        match self.logger.as_str() {
            "capnslog" => {
                if !self.debug {
                    check_log_level(&self.log_level)?;
                }
                if self.log_outputs.len() != 1 {
                    return inv(format!(
                        "--logger=capnslog supports only 1 value in '--log-outputs', got {}",
                        go_quote_list(&self.log_outputs)
                    ));
                }
                let out = &self.log_outputs[0];
                if !matches!(out.as_str(), "default" | "stderr" | "stdout") {
                    return inv(format!(
                        "unknown log-output {} (only supports \"default\", \"stderr\", \"stdout\")",
                        go_quote(out)
                    ));
                }
            }
            "zap" => {
                if self.log_outputs.len() > 1 && self.log_outputs.iter().any(|v| v == "default") {
                    return inv("multi logoutput for \"default\" is not supported yet".to_string());
                }
                let journal = self.log_outputs.iter().any(|v| v == "systemd/journal");
                if journal
                    && self.log_outputs.len() > 1
                    && self.log_outputs.iter().any(|v| v != "default")
                {
                    return inv(format!(
                        "running with systemd/journal but other '--log-outputs' values ({}) are configured with 'default'; override 'default' value with something else",
                        go_quote_list(&self.log_outputs)
                    ));
                }
                check_log_level(&self.log_level)?;
            }
            other => return inv(format!("unknown logger option {}", go_quote(other))),
        }
        Ok(())
    }

    fn check_not_implemented(&self) -> Result<(), ConfigError> {
        let defaults = Config::flag_defaults();
        for name in NOT_IMPLEMENTED {
            let Some(spec) = flags::lookup(name) else {
                continue;
            };
            if !flags::field_equal(spec, self, &defaults) {
                return Err(ConfigError::not_implemented(format!("--{name}")));
            }
        }
        Ok(())
    }

    /// Checks etcd makes while starting the server, before touching the data dir.
    fn validate_startup(&self, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
        // configurePeerListeners (peers are set up before clients).
        if !self.peer_tls.auto_tls && self.peer_tls.is_empty() {
            if let Some(u) = self.listen_peer_urls.iter().find(|u| u.is_tls()) {
                return Err(ConfigError::Startup(format!(
                    "cannot listen on TLS for {}: KeyFile and CertFile are not presented",
                    u.host
                )));
            }
        }
        // configureClientListeners.
        if !self.client_tls.auto_tls && self.client_tls.is_empty() {
            if let Some(u) = self.listen_client_urls.iter().find(|u| u.is_tls()) {
                return Err(ConfigError::Startup(format!(
                    "TLS key/cert (--cert-file, --key-file) must be provided for client url {u} with HTTPS scheme"
                )));
            }
        }
        self.auto_compaction()?;
        if self.max_request_bytes > RECOMMENDED_MAX_REQUEST_BYTES {
            notices.push(Notice::warn(format!(
                "MaxRequestBytes {} exceeds maximum recommended size {}",
                self.max_request_bytes, RECOMMENDED_MAX_REQUEST_BYTES
            )));
        }
        if self.quota_backend_bytes > MAX_QUOTA_BYTES {
            notices.push(Notice::warn(format!(
                "backend quota {} exceeds maximum recommended quota {}",
                self.quota_backend_bytes, MAX_QUOTA_BYTES
            )));
        }
        Ok(())
    }

    /// The auto-compaction policy (etcd's `parseCompactionRetention` +
    /// compactor selection). An integer retention means hours in periodic
    /// mode and revisions in revision mode; otherwise it must be a Go
    /// duration (`30m`, `1h30m`).
    pub fn auto_compaction(&self) -> Result<AutoCompaction, ConfigError> {
        let retention = if self.auto_compaction_retention.is_empty() {
            "0"
        } else {
            self.auto_compaction_retention.as_str()
        };
        let mode = self.auto_compaction_mode.as_str();
        // Go's strconv.Atoi: base 10, optional sign (same as i64::from_str).
        let as_int = retention.parse::<i64>().ok();
        let nanos: i64 = match as_int {
            Some(h) if h >= 0 => match mode {
                "revision" => h,
                "periodic" => h.saturating_mul(3_600_000_000_000),
                _ => 0,
            },
            _ => goparse::parse_go_duration(retention).map_err(|e| {
                ConfigError::Startup(format!("error parsing CompactionRetention: {e}"))
            })?,
        };
        if nanos == 0 {
            return Ok(AutoCompaction::Disabled);
        }
        match mode {
            "periodic" => Ok(AutoCompaction::Periodic(
                goparse::nanos_to_duration(nanos).unwrap_or(Duration::ZERO),
            )),
            // etcd hands the Duration's nanosecond count to the revision
            // compactor, so `--auto-compaction-retention=1h` in revision mode
            // means 3600000000000 revisions. Mirrored.
            "revision" => Ok(AutoCompaction::Revision(nanos)),
            other => Err(ConfigError::Startup(format!(
                "unsupported compaction mode {other}"
            ))),
        }
    }

    /// `ElectionMs / TickMs`.
    pub fn election_ticks(&self) -> u64 {
        self.election_timeout_ms / self.heartbeat_interval_ms.max(1)
    }

    /// `--snapshot-count`, with 0 replaced by [`DEFAULT_SNAPSHOT_COUNT`] as etcd does.
    pub fn effective_snapshot_count(&self) -> u64 {
        if self.snapshot_count == 0 {
            DEFAULT_SNAPSHOT_COUNT
        } else {
            self.snapshot_count
        }
    }

    /// Backend quota in bytes: `None` when disabled (negative), 2 GiB when 0.
    pub fn effective_quota_backend_bytes(&self) -> Option<u64> {
        match self.quota_backend_bytes {
            q if q < 0 => None,
            0 => Some(DEFAULT_QUOTA_BYTES),
            q => Some(q as u64),
        }
    }

    /// `--experimental-compaction-batch-limit`, 0 meaning 1000.
    pub fn effective_compaction_batch_limit(&self) -> i64 {
        if self.experimental_compaction_batch_limit <= 0 {
            1000
        } else {
            self.experimental_compaction_batch_limit
        }
    }

    /// `--experimental-watch-progress-notify-interval`, 0 meaning 10 minutes.
    pub fn effective_watch_progress_notify_interval(&self) -> Duration {
        if self.experimental_watch_progress_notify_interval.is_zero() {
            Duration::from_secs(600)
        } else {
            self.experimental_watch_progress_notify_interval
        }
    }

    /// `<data-dir>/member`.
    pub fn member_dir(&self) -> PathBuf {
        self.data_dir.join("member")
    }

    /// `--wal-dir`, or `<data-dir>/member/wal`.
    pub fn wal_dir(&self) -> PathBuf {
        self.wal_dir
            .clone()
            .unwrap_or_else(|| self.member_dir().join("wal"))
    }

    /// `<data-dir>/member/snap`.
    pub fn snap_dir(&self) -> PathBuf {
        self.member_dir().join("snap")
    }

    /// True for `--initial-cluster-state new`.
    pub fn is_new_cluster(&self) -> bool {
        self.initial_cluster_state == ClusterState::New
    }

    /// etcd's `UpdateDefaultClusterFromName`: when the advertise URLs are the
    /// defaults and the matching listen URL is `0.0.0.0`, advertise the
    /// machine's default host instead; when only `--name` was changed, derive
    /// `--initial-cluster` from it. Returns the default host if it was used.
    pub(crate) fn update_default_cluster_from_name(
        &mut self,
        default_initial_cluster: &str,
        default_host: Result<String, String>,
    ) -> (Option<String>, Option<String>) {
        let host = match default_host {
            Ok(h) if !h.is_empty() => h,
            other => {
                if self.name != DEFAULT_NAME && self.initial_cluster == default_initial_cluster {
                    self.initial_cluster = self.initial_cluster_from_name(&self.name.clone());
                }
                return (None, other.err());
            }
        };
        let mut used = false;
        let is_default = |urls: &[Url], d: &str| urls.len() == 1 && urls[0].to_string() == d;
        if let Some(lp) = self.listen_peer_urls.first() {
            let port = lp.port().to_string();
            if is_default(&self.initial_advertise_peer_urls, DEFAULT_PEER_URL)
                && lp.hostname() == "0.0.0.0"
            {
                let scheme = self.initial_advertise_peer_urls[0].scheme.clone();
                self.initial_advertise_peer_urls[0] = plain_url(&scheme, &host, &port);
                used = true;
            }
        }
        if self.name != DEFAULT_NAME && self.initial_cluster == default_initial_cluster {
            self.initial_cluster = self.initial_cluster_from_name(&self.name.clone());
        }
        if let Some(lc) = self.listen_client_urls.first() {
            let port = lc.port().to_string();
            if is_default(&self.advertise_client_urls, DEFAULT_CLIENT_URL)
                && lc.hostname() == "0.0.0.0"
            {
                let scheme = self.advertise_client_urls[0].scheme.clone();
                self.advertise_client_urls[0] = plain_url(&scheme, &host, &port);
                used = true;
            }
        }
        (used.then_some(host), None)
    }
}

fn plain_url(scheme: &str, host: &str, port: &str) -> Url {
    let hostport = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Url {
        scheme: scheme.to_string(),
        opaque: String::new(),
        user: None,
        host: hostport,
        path: String::new(),
        raw_query: String::new(),
        force_query: false,
        fragment: String::new(),
    }
}

fn check_log_level(level: &str) -> Result<(), ConfigError> {
    match level {
        "debug" | "info" | "warn" | "error" | "dpanic" | "panic" | "fatal" => Ok(()),
        // etcd 3.4 panics here (`panic: unknown level "x"`, exit 2).
        other => Err(ConfigError::Invalid(format!(
            "unknown level {} (--log-level only supports debug, info, warn, error, panic, or fatal)",
            go_quote(other)
        ))),
    }
}

/// etcd's `checkBindURLs`: listen URLs must use an IP address or `localhost`.
fn check_bind_urls(urls: &[Url]) -> Result<(), String> {
    for u in urls {
        if u.is_unix() {
            continue;
        }
        let (host, _) = url::split_host_port(&u.host)?;
        if host == "localhost" {
            continue;
        }
        if !url::is_ip(host) {
            return Err(format!("expected IP in URL for binding ({u})"));
        }
    }
    Ok(())
}

/// etcd's `checkHostURLs`: advertise URLs need a non-empty host.
fn check_host_urls(urls: &[Url]) -> Result<(), String> {
    for u in urls {
        let (host, _) = url::split_host_port(&u.host)?;
        if host.is_empty() {
            return Err(format!("unexpected empty host ({u})"));
        }
    }
    Ok(())
}

/// Auto-compaction policy derived from `--auto-compaction-mode/-retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Retention 0: no automatic compaction.
    Disabled,
    /// Keep this much history (periodic mode).
    Periodic(Duration),
    /// Keep this many revisions (revision mode).
    Revision(i64),
}

/// What the command line asks chorus to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start the server with this configuration.
    Run(Box<Config>),
    /// Print [`version_text`] to stdout and exit 0.
    PrintVersion,
    /// Print [`usage_text`] to stderr and [`flags_text`] to stdout, exit 0
    /// (that is how etcd splits its `--help` output).
    PrintHelp,
}

/// Severity of a [`Notice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    /// etcd logs at info/notice level.
    Info,
    /// etcd logs a warning.
    Warn,
}

/// Something etcd would log while parsing its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Severity.
    pub level: NoticeLevel,
    /// Message text (etcd's wording).
    pub message: String,
}

impl Notice {
    pub(crate) fn info(m: impl Into<String>) -> Self {
        Notice {
            level: NoticeLevel::Info,
            message: m.into(),
        }
    }

    pub(crate) fn warn(m: impl Into<String>) -> Self {
        Notice {
            level: NoticeLevel::Warn,
            message: m.into(),
        }
    }
}

impl Default for Config {
    /// etcd's defaults, with `data_dir` = `default.chorus` and `enable_v2` = true.
    fn default() -> Self {
        let mut c = Config::flag_defaults();
        c.data_dir = Config::default_data_dir(&c.name);
        c
    }
}
