//! The configuration itself: [`Config`] (every flag as a typed field, with
//! etcd's defaults), the small enums its fields use, and the helpers that
//! derive what etcd derives from them (effective values, directories, the
//! default advertise URLs).

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::gates::FeatureGates;
use super::url::Url;

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
/// bcrypt's `MinCost`.
pub const BCRYPT_MIN_COST: u32 = 4;
/// bcrypt's `MaxCost`.
pub const BCRYPT_MAX_COST: u32 = 31;
/// bcrypt's `DefaultCost`, etcd's `--bcrypt-cost` default.
pub const BCRYPT_DEFAULT_COST: u32 = 10;
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

/// `--v2-deprecation` (etcd 3.5+): how far the v2 store is deprecated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum V2Deprecation {
    /// `not-yet`: etcd 3.5's default; v2 content is allowed.
    #[default]
    NotYet,
    /// `write-only`: etcd 3.6's default; custom v2 state is refused.
    WriteOnly,
    /// `write-only-skip-check`: `write-only` without the start-up content check.
    WriteOnlySkipCheck,
    /// `write-only-drop-data`: custom v2 state is deleted.
    WriteOnlyDropData,
    /// `gone`: the v2 store is no longer maintained.
    Gone,
}

impl V2Deprecation {
    /// Every stage, in order.
    pub const ALL: [V2Deprecation; 5] = [
        V2Deprecation::NotYet,
        V2Deprecation::WriteOnly,
        V2Deprecation::WriteOnlySkipCheck,
        V2Deprecation::WriteOnlyDropData,
        V2Deprecation::Gone,
    ];

    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            V2Deprecation::NotYet => "not-yet",
            V2Deprecation::WriteOnly => "write-only",
            V2Deprecation::WriteOnlySkipCheck => "write-only-skip-check",
            V2Deprecation::WriteOnlyDropData => "write-only-drop-data",
            V2Deprecation::Gone => "gone",
        }
    }

    /// Parses one stage name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// `write-only` or later: the v2 API is off and the v2 store may hold only the
    /// membership (etcd's `IsAtLeast(V2_DEPR_1_WRITE_ONLY)`).
    pub fn is_write_only(self) -> bool {
        self != V2Deprecation::NotYet
    }
}

impl fmt::Display for V2Deprecation {
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
    /// `--client-cert-file` / `--peer-client-cert-file` (etcd 3.5+): the
    /// certificate this member presents when it dials as a client (empty:
    /// `cert_file`).
    pub client_cert_file: String,
    /// `--client-key-file` / `--peer-client-key-file` (etcd 3.5+).
    pub client_key_file: String,
    /// `--client-cert-auth` / `--peer-client-cert-auth`.
    pub client_cert_auth: bool,
    /// `--trusted-ca-file` / `--peer-trusted-ca-file`.
    pub trusted_ca_file: String,
    /// `--client-crl-file` / `--peer-crl-file`.
    pub crl_file: String,
    /// `--peer-cert-allowed-cn` (peer only), as one string: the single name of
    /// [`TlsInfo::allowed_cns`] (several names are refused until implemented).
    pub allowed_cn: String,
    /// `--client-cert-allowed-hostname` / `--peer-cert-allowed-hostname`, as
    /// one string (see [`TlsInfo::allowed_hostnames`]).
    pub allowed_hostname: String,
    /// `--peer-cert-allowed-cn` as etcd 3.5+ parses it: a comma-separated
    /// list (config file: `allowed-cn` in either TLS section).
    pub allowed_cns: Vec<String>,
    /// `--client-cert-allowed-hostname` / `--peer-cert-allowed-hostname` as a
    /// list (config file: `allowed-hostname`).
    pub allowed_hostnames: Vec<String>,
    /// `--auto-tls` / `--peer-auto-tls`.
    pub auto_tls: bool,
    /// `--peer-skip-client-san-verification` (etcd 3.6+; 3.4/3.5:
    /// `--experimental-peer-skip-client-san-verification`; peer only).
    pub skip_client_san_verification: bool,
}

impl TlsInfo {
    /// etcd's `TLSInfo.Empty()`: no cert and no key file.
    pub fn is_empty(&self) -> bool {
        self.cert_file.is_empty() && self.key_file.is_empty()
    }
}

/// `--socket-reuse-port` / `--socket-reuse-address` (etcd 3.5+; config file:
/// `socket-options: {reuse-port, reuse-address}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketOpts {
    /// `SO_REUSEPORT` on every listener.
    pub reuse_port: bool,
    /// `SO_REUSEADDR` on every listener.
    pub reuse_address: bool,
}

/// etcd 3.6's v3 discovery (`--discovery-endpoints`, `--discovery-token`,
/// ...; config file: `discovery-config`). etcd's `v3discovery.DiscoveryConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// `--discovery-endpoints` (sorted, de-duplicated).
    pub endpoints: Vec<String>,
    /// `--discovery-token`.
    pub token: String,
    /// `--discovery-dial-timeout` (2s).
    pub dial_timeout: Duration,
    /// `--discovery-request-timeout` (5s).
    pub request_timeout: Duration,
    /// `--discovery-keepalive-time` (2s).
    pub keepalive_time: Duration,
    /// `--discovery-keepalive-timeout` (6s).
    pub keepalive_timeout: Duration,
    /// `--discovery-insecure-transport` (true).
    pub insecure_transport: bool,
    /// `--discovery-insecure-skip-tls-verify`.
    pub insecure_skip_tls_verify: bool,
    /// `--discovery-cert`.
    pub cert: String,
    /// `--discovery-key`.
    pub key: String,
    /// `--discovery-cacert`.
    pub cacert: String,
    /// `--discovery-user` (`user[:password]`).
    pub user: String,
    /// `--discovery-password`.
    pub password: String,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            endpoints: Vec::new(),
            token: String::new(),
            dial_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            keepalive_time: Duration::from_secs(2),
            keepalive_timeout: Duration::from_secs(6),
            insecure_transport: true,
            insecure_skip_tls_verify: false,
            cert: String::new(),
            key: String::new(),
            cacert: String::new(),
            user: String::new(),
            password: String::new(),
        }
    }
}

impl DiscoveryConfig {
    /// Whether any v3 discovery setting other than the timeouts is set
    /// (etcd's `v3discoveryFlagsExist`).
    pub fn is_set(&self) -> bool {
        !self.endpoints.is_empty()
            || !self.token.is_empty()
            || !self.cert.is_empty()
            || !self.key.is_empty()
            || !self.cacert.is_empty()
            || !self.user.is_empty()
            || !self.password.is_empty()
    }
}

/// Server configuration: every flag of etcd 3.4, 3.5, 3.6 and 3.7 as a typed
/// field, with etcd's defaults (chorus deliberately differs in `data_dir` —
/// `${name}.chorus` —, `enable_v2` and the lease checkpoint settings, which
/// default to `true`).
///
/// Fields hold the values etcd's `embed.Config` would hold; where etcd treats
/// 0 / empty as "use the built-in default", so does this struct (see the
/// `effective_*` helpers).
///
/// Renamed flags: etcd 3.6 renamed most `--experimental-*` flags and keeps a
/// field for each name; so does this struct. After [`Config::parse`] both
/// fields of a pair hold the same value (the old name's value when only the
/// old name was given), so either can be read; read the new one
/// (`watch_progress_notify_interval`, not
/// `experimental_watch_progress_notify_interval`). Likewise the boolean
/// experimental flags that became feature gates mirror [`FeatureGates`]:
/// read `feature_gates`.
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
    /// `--listen-client-http-urls` (etcd 3.4.25+, 3.5.8+; sorted): listeners that serve
    /// only HTTP (no gRPC); when set, `listen_client_urls` serve only gRPC.
    pub listen_client_http_urls: Vec<Url>,
    /// `--max-snapshots` (0: unlimited).
    pub max_snapshots: u64,
    /// `--max-wals` (0: unlimited).
    pub max_wals: u64,
    /// `--quota-backend-bytes` (0: 2 GiB default; negative: no quota).
    pub quota_backend_bytes: i64,
    /// `--backend-bbolt-freelist-type` (etcd 3.5+; empty means `map`). No
    /// meaning for chorus's redb backend (a notice says so).
    pub backend_bbolt_freelist_type: String,
    /// `--backend-batch-interval` (0: backend default).
    pub backend_batch_interval: Duration,
    /// `--backend-batch-limit` (0: backend default).
    pub backend_batch_limit: i64,
    /// `--max-txn-ops`.
    pub max_txn_ops: u64,
    /// `--max-request-bytes`.
    pub max_request_bytes: u64,
    /// `--max-concurrent-streams` (etcd 3.4, 3.5.5+).
    pub max_concurrent_streams: u32,
    /// `--grpc-keepalive-min-time`.
    pub grpc_keepalive_min_time: Duration,
    /// `--grpc-keepalive-interval` (0 disables).
    pub grpc_keepalive_interval: Duration,
    /// `--grpc-keepalive-timeout` (0 disables).
    pub grpc_keepalive_timeout: Duration,
    /// `--socket-reuse-port`, `--socket-reuse-address` (etcd 3.5+).
    pub socket_opts: SocketOpts,
    /// `--raft-read-timeout` (etcd 3.5+; 5s, raised to 5s when lower): read
    /// timeout on each peer connection.
    pub raft_read_timeout: Duration,
    /// `--raft-write-timeout` (etcd 3.5+; 5s, raised to 5s when lower).
    pub raft_write_timeout: Duration,
    /// `--max-learners` (etcd 3.6+; 1): learners the membership may hold.
    pub max_learners: i64,
    /// `--snapshot-catchup-entries` (etcd 3.6+; 3.5.14+:
    /// `--experimental-snapshot-catchup-entries`): raft entries kept in memory
    /// after a snapshot so that slow followers catch up without one.
    pub snapshot_catchup_entries: u64,

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
    /// `--discovery` (v2 discovery; removed in etcd 3.7).
    pub discovery: String,
    /// `--discovery-fallback` (etcd 3.4/3.5 semantics: default `proxy`).
    pub discovery_fallback: DiscoveryFallback,
    /// `--discovery-proxy` (removed in etcd 3.7).
    pub discovery_proxy: String,
    /// `--discovery-srv`.
    pub discovery_srv: String,
    /// `--discovery-srv-name`.
    pub discovery_srv_name: String,
    /// etcd 3.6's v3 discovery (`--discovery-endpoints`, ...).
    pub discovery_cfg: DiscoveryConfig,
    /// `--strict-reconfig-check`.
    pub strict_reconfig_check: bool,
    /// `--pre-vote`.
    pub pre_vote: bool,
    /// `--auto-compaction-retention`, raw; see [`Config::auto_compaction`].
    pub auto_compaction_retention: String,
    /// `--auto-compaction-mode`, raw (`periodic`, `revision`, or empty when a
    /// config file omits it).
    pub auto_compaction_mode: String,
    /// `--enable-v2` (chorus default: `true`; etcd 3.4/3.5: `false`; removed in 3.6).
    pub enable_v2: bool,
    /// `--v2-deprecation` (etcd 3.5+; etcd 3.5's default `not-yet`).
    pub v2_deprecation: V2Deprecation,

    // --- Security ---
    /// Client-facing TLS (`--cert-file`, `--key-file`, ...).
    pub client_tls: TlsInfo,
    /// Peer TLS (`--peer-cert-file`, ...).
    pub peer_tls: TlsInfo,
    /// `--experimental-peer-skip-client-san-verification` as given (etcd 3.4,
    /// 3.5, 3.6); the effective value is `peer_tls.skip_client_san_verification`.
    pub experimental_peer_skip_client_san_verification: bool,
    /// `--self-signed-cert-validity` (etcd 3.5+; 1): years the `--auto-tls` /
    /// `--peer-auto-tls` certificates are valid.
    pub self_signed_cert_validity: u64,
    /// `--cipher-suites`.
    pub cipher_suites: Vec<String>,
    /// `--tls-min-version` (etcd 3.4.25+, 3.5.8+; `TLS1.2`): `TLS1.2` or `TLS1.3`.
    pub tls_min_version: String,
    /// `--tls-max-version` (etcd 3.4.25+, 3.5.8+; empty: the highest available).
    pub tls_max_version: String,
    /// `--cors` (set of origins; `*` allows all).
    pub cors: BTreeSet<String>,
    /// `--host-whitelist` (`*` allows all).
    pub host_whitelist: BTreeSet<String>,

    // --- Auth ---
    /// `--auth-token`, raw (`simple`, `jwt,pub-key=...,...`, or empty); chorus-auth
    /// parses the options.
    pub auth_token: String,
    /// `--bcrypt-cost` (10; outside 4..=31 etcd uses 10, see
    /// [`Config::effective_bcrypt_cost`]).
    pub bcrypt_cost: u64,
    /// `--auth-token-ttl`, seconds (300).
    pub auth_token_ttl: u64,

    // --- Profiling and monitoring ---
    /// `--enable-pprof`.
    pub enable_pprof: bool,
    /// `--metrics` (`basic` or `extensive`).
    pub metrics: String,
    /// `--listen-metrics-urls`.
    pub listen_metrics_urls: Vec<Url>,
    /// `--enable-distributed-tracing` (etcd 3.6+; 3.5:
    /// `--experimental-enable-distributed-tracing`): OpenTelemetry tracing.
    pub enable_distributed_tracing: bool,
    /// `--distributed-tracing-address` (`localhost:4317`).
    pub distributed_tracing_address: String,
    /// `--distributed-tracing-service-name` (`etcd`).
    pub distributed_tracing_service_name: String,
    /// `--distributed-tracing-instance-id`.
    pub distributed_tracing_instance_id: String,
    /// `--distributed-tracing-sampling-rate`, samples per million spans.
    pub distributed_tracing_sampling_rate: i64,
    /// `--experimental-enable-distributed-tracing` (etcd 3.5, 3.6).
    pub experimental_enable_distributed_tracing: bool,
    /// `--experimental-distributed-tracing-address` (etcd 3.5, 3.6).
    pub experimental_distributed_tracing_address: String,
    /// `--experimental-distributed-tracing-service-name` (etcd 3.5, 3.6).
    pub experimental_distributed_tracing_service_name: String,
    /// `--experimental-distributed-tracing-instance-id` (etcd 3.5, 3.6).
    pub experimental_distributed_tracing_instance_id: String,
    /// `--experimental-distributed-tracing-sampling-rate` (etcd 3.5.11+, 3.6).
    pub experimental_distributed_tracing_sampling_rate: i64,

    // --- Logging ---
    /// `--logger` (`zap`, the default as in etcd 3.5+, or 3.4's `capnslog`).
    pub logger: String,
    /// `--log-outputs` (sorted, de-duplicated when given as a flag).
    pub log_outputs: Vec<String>,
    /// `--log-level`.
    pub log_level: String,
    /// `--log-format` (etcd 3.6+; `json` or `console`).
    pub log_format: String,
    /// `--enable-log-rotation` (etcd 3.5+).
    pub enable_log_rotation: bool,
    /// `--log-rotation-config-json` (etcd 3.5+), raw JSON.
    pub log_rotation_config_json: String,
    /// `--debug` (etcd 3.4, deprecated).
    pub debug: bool,
    /// `--log-package-levels` (etcd 3.4, deprecated).
    pub log_package_levels: String,

    // --- v2 proxy (etcd 3.4, 3.5) ---
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

    // --- Feature gates (etcd 3.6+) ---
    /// `--feature-gates`, effective values (the experimental boolean flags of
    /// etcd 3.4/3.5 set them too, as in etcd 3.6).
    pub feature_gates: FeatureGates,

    // --- Corruption checks, compaction, watch, apply ---
    /// `--experimental-initial-corrupt-check` as given; mirrors
    /// `feature_gates.initial_corrupt_check`.
    pub experimental_initial_corrupt_check: bool,
    /// `--corrupt-check-time` (etcd 3.6+; 0: disabled).
    pub corrupt_check_time: Duration,
    /// `--experimental-corrupt-check-time` (etcd 3.4-3.6).
    pub experimental_corrupt_check_time: Duration,
    /// `--experimental-compact-hash-check-enabled` (etcd 3.5.5+, 3.6); mirrors
    /// `feature_gates.compact_hash_check`.
    pub experimental_compact_hash_check_enabled: bool,
    /// `--compact-hash-check-time` (etcd 3.6+; 1m, must be > 0).
    pub compact_hash_check_time: Duration,
    /// `--experimental-compact-hash-check-time` (etcd 3.5.5+, 3.6; 1m).
    pub experimental_compact_hash_check_time: Duration,
    /// `--compaction-batch-limit` (etcd 3.6+; 0: 1000).
    pub compaction_batch_limit: i64,
    /// `--experimental-compaction-batch-limit` (etcd 3.4-3.6).
    pub experimental_compaction_batch_limit: i64,
    /// `--compaction-sleep-interval` (etcd 3.6+; 0: 10ms).
    pub compaction_sleep_interval: Duration,
    /// `--experimental-compaction-sleep-interval` (etcd 3.5.16+, 3.6).
    pub experimental_compaction_sleep_interval: Duration,
    /// `--watch-progress-notify-interval` (etcd 3.6+; 0: 10m).
    pub watch_progress_notify_interval: Duration,
    /// `--experimental-watch-progress-notify-interval` (etcd 3.4-3.6).
    pub experimental_watch_progress_notify_interval: Duration,
    /// `--warning-apply-duration` (etcd 3.6+; 100ms).
    pub warning_apply_duration: Duration,
    /// `--experimental-warning-apply-duration` (etcd 3.4-3.6).
    pub experimental_warning_apply_duration: Duration,
    /// `--warning-unary-request-duration` (etcd 3.6+; 300ms): warn about unary
    /// requests slower than this.
    pub warning_unary_request_duration: Duration,
    /// `--experimental-warning-unary-request-duration` (etcd 3.6 only; 0: unset).
    pub experimental_warning_unary_request_duration: Duration,
    /// `--experimental-snapshot-catchup-entries` (etcd 3.5.14+, 3.6).
    pub experimental_snapshot_catchup_entries: u64,
    /// `--bootstrap-defrag-threshold-megabytes` (etcd 3.6+; 0: off): defragment
    /// at start when that would free at least this much.
    pub bootstrap_defrag_threshold_megabytes: u64,
    /// `--experimental-bootstrap-defrag-threshold-megabytes` (etcd 3.5, 3.6).
    pub experimental_bootstrap_defrag_threshold_megabytes: u64,
    /// `--memory-mlock` (etcd 3.6+): lock the process's pages in RAM.
    pub memory_mlock: bool,
    /// `--experimental-memory-mlock` (etcd 3.5, 3.6).
    pub experimental_memory_mlock: bool,
    /// `--downgrade-check-time` (etcd 3.6+; 5s).
    pub downgrade_check_time: Duration,
    /// `--experimental-downgrade-check-time` (etcd 3.5, 3.6; 5s).
    pub experimental_downgrade_check_time: Duration,
    /// `--experimental-txn-mode-write-with-shared-buffer` (etcd 3.5, 3.6; true);
    /// mirrors `feature_gates.txn_mode_write_with_shared_buffer`.
    pub experimental_txn_mode_write_with_shared_buffer: bool,
    /// `--experimental-stop-grpc-service-on-defrag` (etcd 3.5.14+, 3.6); mirrors
    /// `feature_gates.stop_grpc_service_on_defrag`.
    pub experimental_stop_grpc_service_on_defrag: bool,
    /// `--experimental-enable-v2v3` (prefix; empty: disabled; etcd 3.4, 3.5).
    pub experimental_enable_v2v3: String,
    /// `--experimental-backend-bbolt-freelist-type` (etcd 3.4; no effect on chorus storage).
    pub experimental_backend_bbolt_freelist_type: String,
    /// `--experimental-enable-lease-checkpoint` as given; mirrors
    /// `feature_gates.lease_checkpoint` (chorus default: true).
    pub experimental_enable_lease_checkpoint: bool,
    /// `--experimental-enable-lease-checkpoint-persist` as given; mirrors
    /// `feature_gates.lease_checkpoint_persist` (chorus default: true).
    pub experimental_enable_lease_checkpoint_persist: bool,
    /// `--experimental-lease-checkpoint-interval` (a chorus flag, not etcd's;
    /// 5s): how often the leader checkpoints remaining lease TTLs.
    pub experimental_lease_checkpoint_interval: Duration,
    /// `--dns-listen-addr` (chorus's own; empty: off): serve DNS (UDP and TCP) from the
    /// SkyDNS layout under `/skydns`, as CoreDNS's etcd plugin reads it.
    pub dns_listen_addr: String,
    /// `--dns-domain` (chorus's own; `skydns.local.`): the zone the DNS server answers.
    pub dns_domain: String,

    // --- Unsafe / hidden ---
    /// `--force-new-cluster`.
    pub force_new_cluster: bool,
    /// `--unsafe-no-fsync`.
    pub unsafe_no_fsync: bool,
    /// `--next-cluster-version-compatible` (etcd 3.4.31+ only): let a 3.4
    /// member join a 3.5 cluster and start on the 3.5 schema.
    pub next_cluster_version_compatible: bool,
    /// `--enable-grpc-gateway` (`true`; etcd 3.4 only left it off when a
    /// config file did not set it).
    pub enable_grpc_gateway: bool,

    /// The config file this configuration was loaded from, if any.
    pub config_file: Option<PathBuf>,
    /// etcd 3.6's `FlagsExplicitlySet`: the flags given on the command line or
    /// through `ETCD_*` variables, or the keys of the config file.
    pub flags_explicitly_set: BTreeSet<String>,
}

impl Config {
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
}

impl Config {
    /// etcd's `mayBeProxy`: v2 proxy mode, or discovery with proxy fallback.
    pub fn may_be_proxy(&self) -> bool {
        let may_fallback =
            !self.discovery.is_empty() && self.discovery_fallback == DiscoveryFallback::Proxy;
        self.proxy != ProxyMode::Off || may_fallback
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

    /// `--compaction-batch-limit`, 0 (or less) meaning 1000, as etcd's mvcc.
    pub fn effective_compaction_batch_limit(&self) -> i64 {
        if self.compaction_batch_limit <= 0 {
            1000
        } else {
            self.compaction_batch_limit
        }
    }

    /// Whether the v2 API is served: `--enable-v2` (chorus's default true) unless
    /// `--v2-deprecation` is `write-only` or later, which turns the default off.
    pub fn effective_enable_v2(&self) -> bool {
        self.enable_v2 && !self.v2_deprecation.is_write_only()
    }

    /// `--compaction-sleep-interval`, 0 meaning 10ms, as etcd's mvcc.
    pub fn effective_compaction_sleep_interval(&self) -> Duration {
        if self.compaction_sleep_interval.is_zero() {
            Duration::from_millis(10)
        } else {
            self.compaction_sleep_interval
        }
    }

    /// `--watch-progress-notify-interval`, 0 meaning 10 minutes.
    pub fn effective_watch_progress_notify_interval(&self) -> Duration {
        if self.watch_progress_notify_interval.is_zero() {
            Duration::from_secs(600)
        } else {
            self.watch_progress_notify_interval
        }
    }

    /// `--bcrypt-cost`, or etcd's default 10 when outside bcrypt's 4..=31 (etcd
    /// logs `use default bcrypt cost instead of the invalid given cost`).
    pub fn effective_bcrypt_cost(&self) -> u32 {
        match u32::try_from(self.bcrypt_cost) {
            Ok(c @ BCRYPT_MIN_COST..=BCRYPT_MAX_COST) => c,
            _ => BCRYPT_DEFAULT_COST,
        }
    }

    /// `--auth-token-ttl` as a duration.
    pub fn auth_token_ttl(&self) -> Duration {
        Duration::from_secs(self.auth_token_ttl)
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
    /// Print [`version_text`](crate::version_text) to stdout and exit 0.
    PrintVersion,
    /// Print [`usage_text`](crate::usage_text) to stderr and [`flags_text`](crate::flags_text) to stdout, exit 0
    /// (that is how etcd splits its `--help` output).
    PrintHelp,
}

/// The subcommands that run etcd's proxies (the `chorus-proxy` crate), not a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxySubcommand {
    /// `chorus grpc-proxy ...`
    GrpcProxy,
    /// `chorus gateway ...`
    Gateway,
}

/// Routes `chorus grpc-proxy ARGS` and `chorus gateway ARGS` (the process arguments
/// after the program name) before [`Config::parse`], which takes server flags only:
/// the subcommand and the arguments after it, which `chorus-proxy` parses itself.
pub fn proxy_subcommand(args: &[String]) -> Option<(ProxySubcommand, &[String])> {
    match args.first().map(String::as_str) {
        Some("grpc-proxy") => Some((ProxySubcommand::GrpcProxy, &args[1..])),
        Some("gateway") => Some((ProxySubcommand::Gateway, &args[1..])),
        _ => None,
    }
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
