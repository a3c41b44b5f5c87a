//! The flag table and a Go-`flag`-compatible command-line parser.
//!
//! One [`FlagSpec`] per etcd 3.4 flag drives argv parsing, `ETCD_*`
//! environment lookup, the `--help` text and (via [`Yaml`]) the config-file
//! keys, so a flag is described exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::goparse::{self, go_quote, go_quote_list, parse_bool, NumError};
use super::url::{parse_url_csv, Url};
use super::{
    ClusterState, Command, Config, ConfigError, DiscoveryFallback, Notice, ProxyMode, DEFAULT_NAME,
    DEFAULT_PEER_URL,
};

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
    /// `flags.NewStringsValue` (`--cipher-suites`).
    Strings,
    /// `flags.NewSelectiveStringValue` with these choices.
    Select(&'static [&'static str]),
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
            _ => "string",
        }
    }
}

/// `--help` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Section {
    Member,
    Clustering,
    Security,
    Auth,
    Profiling,
    Logging,
    Proxy,
    Experimental,
    Unsafe,
    Deprecated,
}

impl Section {
    const ALL: [Section; 10] = [
        Section::Member,
        Section::Clustering,
        Section::Security,
        Section::Auth,
        Section::Profiling,
        Section::Logging,
        Section::Proxy,
        Section::Experimental,
        Section::Unsafe,
        Section::Deprecated,
    ];

    fn header(self) -> &'static str {
        match self {
            Section::Member => "Member:",
            Section::Clustering => "Clustering:",
            Section::Security => "Security:",
            Section::Auth => "Auth:",
            Section::Profiling => "Profiling and Monitoring:",
            Section::Logging => "Logging:",
            Section::Proxy => "v2 Proxy (to be deprecated in v4):",
            Section::Experimental => "Experimental feature:",
            Section::Unsafe => "Unsafe feature:",
            Section::Deprecated => "TO BE DEPRECATED:",
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
);

pub(crate) type Access = for<'a> fn(&'a mut Config) -> FieldMut<'a>;

/// One etcd flag.
pub(crate) struct FlagSpec {
    pub name: &'static str,
    pub kind: Kind,
    /// `None`: accepted but not listed in `--help` (as in etcd).
    pub section: Option<Section>,
    /// Default as printed by `--help` (etcd's quoting kept).
    pub help_default: &'static str,
    /// Help text; `\n` separates lines.
    pub help: &'static str,
    pub access: Option<Access>,
    pub yaml: Yaml,
}

macro_rules! flag {
    ($name:literal, $kind:expr, $sec:expr, $def:literal, $help:expr, $yaml:expr, |$c:ident| $field:expr) => {
        FlagSpec {
            name: $name,
            kind: $kind,
            section: $sec,
            help_default: $def,
            help: $help,
            access: Some(|$c: &mut Config| FieldMut::from(&mut $field)),
            yaml: $yaml,
        }
    };
    ($name:literal, $kind:expr, $sec:expr, $def:literal, $help:expr, $yaml:expr) => {
        FlagSpec {
            name: $name,
            kind: $kind,
            section: $sec,
            help_default: $def,
            help: $help,
            access: None,
            yaml: $yaml,
        }
    };
}

macro_rules! ignored {
    ($name:literal) => {
        flag!($name, Kind::Ignored, None, "", "", Yaml::No)
    };
}

use Kind as K;
use Section as S;

const CLUSTER_STATES: &[&str] = &["new", "existing"];
const FALLBACKS: &[&str] = &["exit", "proxy"];
const PROXIES: &[&str] = &["off", "on", "readonly"];

/// Every flag etcd 3.4.23 defines, in `--help` order, hidden ones last.
pub(crate) static FLAGS: &[FlagSpec] = &[
    // Member
    flag!("name", K::Str, Some(S::Member), "'default'", "Human-readable name for this member.", Yaml::Key, |c| c.name),
    flag!("data-dir", K::Str, Some(S::Member), "'${name}.chorus'", "Path to the data directory.", Yaml::Key, |c| c.data_dir),
    flag!("wal-dir", K::Str, Some(S::Member), "''", "Path to the dedicated wal directory.", Yaml::Key, |c| c.wal_dir),
    flag!("snapshot-count", K::Uint64, Some(S::Member), "'100000'", "Number of committed transactions to trigger a snapshot to disk.", Yaml::Key, |c| c.snapshot_count),
    flag!("heartbeat-interval", K::Uint, Some(S::Member), "'100'", "Time (in milliseconds) of a heartbeat interval.", Yaml::Key, |c| c.heartbeat_interval_ms),
    flag!("election-timeout", K::Uint, Some(S::Member), "'1000'", "Time (in milliseconds) for an election to timeout. See tuning documentation for details.", Yaml::Key, |c| c.election_timeout_ms),
    flag!("initial-election-tick-advance", K::Bool, Some(S::Member), "'true'", "Whether to fast-forward initial election ticks on boot for faster election.", Yaml::Key, |c| c.initial_election_tick_advance),
    flag!("listen-peer-urls", K::Urls, Some(S::Member), "'http://localhost:2380'", "List of URLs to listen on for peer traffic.", Yaml::Key, |c| c.listen_peer_urls),
    flag!("listen-client-urls", K::Urls, Some(S::Member), "'http://localhost:2379'", "List of URLs to listen on for client traffic.", Yaml::Key, |c| c.listen_client_urls),
    flag!("max-snapshots", K::Uint, Some(S::Member), "'5'", "Maximum number of snapshot files to retain (0 is unlimited).", Yaml::Key, |c| c.max_snapshots),
    flag!("max-wals", K::Uint, Some(S::Member), "'5'", "Maximum number of wal files to retain (0 is unlimited).", Yaml::Key, |c| c.max_wals),
    flag!("quota-backend-bytes", K::Int64, Some(S::Member), "'0'", "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).", Yaml::Key, |c| c.quota_backend_bytes),
    flag!("backend-batch-interval", K::Duration, Some(S::Member), "''", "BackendBatchInterval is the maximum time before commit the backend transaction.", Yaml::Key, |c| c.backend_batch_interval),
    flag!("backend-batch-limit", K::Int, Some(S::Member), "'0'", "BackendBatchLimit is the maximum operations before commit the backend transaction.", Yaml::Key, |c| c.backend_batch_limit),
    flag!("max-txn-ops", K::Uint, Some(S::Member), "'128'", "Maximum number of operations permitted in a transaction.", Yaml::Key, |c| c.max_txn_ops),
    flag!("max-request-bytes", K::Uint, Some(S::Member), "'1572864'", "Maximum client request size in bytes the server will accept.", Yaml::Key, |c| c.max_request_bytes),
    flag!("max-concurrent-streams", K::Uint32, Some(S::Member), "'math.MaxUint32'", "Maximum concurrent streams that each client can open at a time.", Yaml::Key, |c| c.max_concurrent_streams),
    flag!("grpc-keepalive-min-time", K::Duration, Some(S::Member), "'5s'", "Minimum duration interval that a client should wait before pinging server.", Yaml::Key, |c| c.grpc_keepalive_min_time),
    flag!("grpc-keepalive-interval", K::Duration, Some(S::Member), "'2h'", "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).", Yaml::Key, |c| c.grpc_keepalive_interval),
    flag!("grpc-keepalive-timeout", K::Duration, Some(S::Member), "'20s'", "Additional duration of wait before closing a non-responsive connection (0 to disable).", Yaml::Key, |c| c.grpc_keepalive_timeout),
    // Clustering
    flag!("initial-advertise-peer-urls", K::Urls, Some(S::Clustering), "'http://localhost:2380'", "List of this member's peer URLs to advertise to the rest of the cluster.", Yaml::Key, |c| c.initial_advertise_peer_urls),
    flag!("initial-cluster", K::Str, Some(S::Clustering), "'default=http://localhost:2380'", "Initial cluster configuration for bootstrapping.", Yaml::Key, |c| c.initial_cluster),
    flag!("initial-cluster-state", K::Select(CLUSTER_STATES), Some(S::Clustering), "'new'", "Initial cluster state ('new' or 'existing').", Yaml::Key, |c| c.initial_cluster_state),
    flag!("initial-cluster-token", K::Str, Some(S::Clustering), "'etcd-cluster'", "Initial cluster token for the etcd cluster during bootstrap.\nSpecifying this can protect you from unintended cross-cluster interaction when running multiple clusters.", Yaml::Key, |c| c.initial_cluster_token),
    flag!("advertise-client-urls", K::Urls, Some(S::Clustering), "'http://localhost:2379'", "List of this member's client URLs to advertise to the public.\nThe client URLs advertised should be accessible to machines that talk to etcd cluster. etcd client libraries parse these URLs to connect to the cluster.", Yaml::Key, |c| c.advertise_client_urls),
    flag!("discovery", K::Str, Some(S::Clustering), "''", "Discovery URL used to bootstrap the cluster.", Yaml::Key, |c| c.discovery),
    flag!("discovery-fallback", K::Select(FALLBACKS), Some(S::Clustering), "'proxy'", "Expected behavior ('exit' or 'proxy') when discovery services fails.\n\"proxy\" supports v2 API only.", Yaml::Key, |c| c.discovery_fallback),
    flag!("discovery-proxy", K::Str, Some(S::Clustering), "''", "HTTP proxy to use for traffic to discovery service.", Yaml::Key, |c| c.discovery_proxy),
    flag!("discovery-srv", K::Str, Some(S::Clustering), "''", "DNS srv domain used to bootstrap the cluster.", Yaml::Key, |c| c.discovery_srv),
    flag!("discovery-srv-name", K::Str, Some(S::Clustering), "''", "Suffix to the dns srv name queried when bootstrapping.", Yaml::Key, |c| c.discovery_srv_name),
    flag!("strict-reconfig-check", K::Bool, Some(S::Clustering), "'true'", "Reject reconfiguration requests that would cause quorum loss.", Yaml::Key, |c| c.strict_reconfig_check),
    flag!("pre-vote", K::Bool, Some(S::Clustering), "'true'", "Enable to run an additional Raft election phase.", Yaml::Key, |c| c.pre_vote),
    flag!("auto-compaction-retention", K::Str, Some(S::Clustering), "'0'", "Auto compaction retention length. 0 means disable auto compaction.", Yaml::Key, |c| c.auto_compaction_retention),
    flag!("auto-compaction-mode", K::Str, Some(S::Clustering), "'periodic'", "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention.", Yaml::Key, |c| c.auto_compaction_mode),
    flag!("enable-v2", K::Bool, Some(S::Clustering), "'true'", "Accept etcd V2 client requests.", Yaml::Key, |c| c.enable_v2),
    // Security
    flag!("cert-file", K::Str, Some(S::Security), "''", "Path to the client server TLS cert file.", Yaml::Tls, |c| c.client_tls.cert_file),
    flag!("key-file", K::Str, Some(S::Security), "''", "Path to the client server TLS key file.", Yaml::Tls, |c| c.client_tls.key_file),
    flag!("client-cert-auth", K::Bool, Some(S::Security), "'false'", "Enable client cert authentication.", Yaml::Tls, |c| c.client_tls.client_cert_auth),
    flag!("client-crl-file", K::Str, Some(S::Security), "''", "Path to the client certificate revocation list file.", Yaml::No, |c| c.client_tls.crl_file),
    flag!("client-cert-allowed-hostname", K::Str, Some(S::Security), "''", "Allowed TLS hostname for client cert authentication.", Yaml::No, |c| c.client_tls.allowed_hostname),
    flag!("trusted-ca-file", K::Str, Some(S::Security), "''", "Path to the client server TLS trusted CA cert file.", Yaml::Tls, |c| c.client_tls.trusted_ca_file),
    flag!("auto-tls", K::Bool, Some(S::Security), "'false'", "Client TLS using generated certificates.", Yaml::Tls, |c| c.client_tls.auto_tls),
    flag!("peer-cert-file", K::Str, Some(S::Security), "''", "Path to the peer server TLS cert file.", Yaml::Tls, |c| c.peer_tls.cert_file),
    flag!("peer-key-file", K::Str, Some(S::Security), "''", "Path to the peer server TLS key file.", Yaml::Tls, |c| c.peer_tls.key_file),
    flag!("peer-client-cert-auth", K::Bool, Some(S::Security), "'false'", "Enable peer client cert authentication.", Yaml::Tls, |c| c.peer_tls.client_cert_auth),
    flag!("peer-trusted-ca-file", K::Str, Some(S::Security), "''", "Path to the peer server TLS trusted CA file.", Yaml::Tls, |c| c.peer_tls.trusted_ca_file),
    flag!("peer-cert-allowed-cn", K::Str, Some(S::Security), "''", "Required CN for client certs connecting to the peer endpoint.", Yaml::No, |c| c.peer_tls.allowed_cn),
    flag!("peer-cert-allowed-hostname", K::Str, Some(S::Security), "''", "Allowed TLS hostname for inter peer authentication.", Yaml::No, |c| c.peer_tls.allowed_hostname),
    flag!("peer-auto-tls", K::Bool, Some(S::Security), "'false'", "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.", Yaml::Tls, |c| c.peer_tls.auto_tls),
    flag!("peer-crl-file", K::Str, Some(S::Security), "''", "Path to the peer certificate revocation list file.", Yaml::No, |c| c.peer_tls.crl_file),
    flag!("cipher-suites", K::Strings, Some(S::Security), "''", "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).", Yaml::List, |c| c.cipher_suites),
    flag!("cors", K::Cors, Some(S::Security), "'*'", "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).", Yaml::Key, |c| c.cors),
    flag!("host-whitelist", K::UniqueStrings, Some(S::Security), "'*'", "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).", Yaml::Key, |c| c.host_whitelist),
    // Auth
    flag!("auth-token", K::Str, Some(S::Auth), "'simple'", "Specify a v3 authentication token type and its options ('simple' or 'jwt').", Yaml::Key, |c| c.auth_token),
    flag!("bcrypt-cost", K::Uint, Some(S::Auth), "10", "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.", Yaml::Key, |c| c.bcrypt_cost),
    flag!("auth-token-ttl", K::Uint, Some(S::Auth), "300", "Time (in seconds) of the auth-token-ttl.", Yaml::Key, |c| c.auth_token_ttl),
    // Profiling and Monitoring
    flag!("enable-pprof", K::Bool, Some(S::Profiling), "'false'", "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"", Yaml::Key, |c| c.enable_pprof),
    flag!("metrics", K::Str, Some(S::Profiling), "'basic'", "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics.", Yaml::Key, |c| c.metrics),
    flag!("listen-metrics-urls", K::Urls, Some(S::Profiling), "''", "List of URLs to listen on for the metrics and health endpoints.", Yaml::Key, |c| c.listen_metrics_urls),
    // Logging
    flag!("logger", K::Str, Some(S::Logging), "'capnslog'", "Specify 'zap' for structured logging or 'capnslog'. [WARN] 'capnslog' will be deprecated in v3.5.", Yaml::Key, |c| c.logger),
    flag!("log-outputs", K::UniqueStrings, Some(S::Logging), "'default'", "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets.", Yaml::List, |c| c.log_outputs),
    flag!("log-level", K::Str, Some(S::Logging), "'info'", "Configures log level. Only supports debug, info, warn, error, panic, or fatal.", Yaml::Key, |c| c.log_level),
    // v2 Proxy
    flag!("proxy", K::Select(PROXIES), Some(S::Proxy), "'off'", "Proxy mode setting ('off', 'readonly' or 'on').", Yaml::Key, |c| c.proxy),
    flag!("proxy-failure-wait", K::Uint, Some(S::Proxy), "5000", "Time (in milliseconds) an endpoint will be held in a failed state.", Yaml::Key, |c| c.proxy_failure_wait_ms),
    flag!("proxy-refresh-interval", K::Uint, Some(S::Proxy), "30000", "Time (in milliseconds) of the endpoints refresh interval.", Yaml::Key, |c| c.proxy_refresh_interval_ms),
    flag!("proxy-dial-timeout", K::Uint, Some(S::Proxy), "1000", "Time (in milliseconds) for a dial to timeout.", Yaml::Key, |c| c.proxy_dial_timeout_ms),
    flag!("proxy-write-timeout", K::Uint, Some(S::Proxy), "5000", "Time (in milliseconds) for a write to timeout.", Yaml::Key, |c| c.proxy_write_timeout_ms),
    flag!("proxy-read-timeout", K::Uint, Some(S::Proxy), "0", "Time (in milliseconds) for a read to timeout.", Yaml::Key, |c| c.proxy_read_timeout_ms),
    // Experimental
    flag!("experimental-initial-corrupt-check", K::Bool, Some(S::Experimental), "'false'", "Enable to check data corruption before serving any client/peer traffic.", Yaml::Key, |c| c.experimental_initial_corrupt_check),
    flag!("experimental-corrupt-check-time", K::Duration, Some(S::Experimental), "'0s'", "Duration of time between cluster corruption check passes.", Yaml::Key, |c| c.experimental_corrupt_check_time),
    flag!("experimental-enable-v2v3", K::Str, Some(S::Experimental), "''", "Serve v2 requests through the v3 backend under a given prefix.", Yaml::Key, |c| c.experimental_enable_v2v3),
    flag!("experimental-backend-bbolt-freelist-type", K::Str, Some(S::Experimental), "'array'", "ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types).", Yaml::Key, |c| c.experimental_backend_bbolt_freelist_type),
    flag!("experimental-enable-lease-checkpoint", K::Bool, Some(S::Experimental), "'true'", "ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL to prevent indefinite auto-renewal of long lived leases.", Yaml::Key, |c| c.experimental_enable_lease_checkpoint),
    flag!("experimental-compaction-batch-limit", K::Int, Some(S::Experimental), "1000", "ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each compaction batch.", Yaml::Key, |c| c.experimental_compaction_batch_limit),
    flag!("experimental-peer-skip-client-san-verification", K::Bool, Some(S::Experimental), "'false'", "Skip verification of SAN field in client certificate for peer connections.", Yaml::No, |c| c.peer_tls.skip_client_san_verification),
    flag!("experimental-watch-progress-notify-interval", K::Duration, Some(S::Experimental), "'10m'", "Duration of periodical watch progress notification.", Yaml::Key, |c| c.experimental_watch_progress_notify_interval),
    flag!("experimental-warning-apply-duration", K::Duration, Some(S::Experimental), "'100ms'", "Warning is generated if requests take more than this duration.", Yaml::Key, |c| c.experimental_warning_apply_duration),
    // Unsafe
    flag!("force-new-cluster", K::Bool, Some(S::Unsafe), "'false'", "Force to create a new one-member cluster.", Yaml::Key, |c| c.force_new_cluster),
    // TO BE DEPRECATED
    flag!("debug", K::Bool, Some(S::Deprecated), "'false'", "Enable debug-level logging for etcd. [WARN] Will be deprecated in v3.5. Use '--log-level=debug' instead.", Yaml::Key, |c| c.debug),
    flag!("log-package-levels", K::Str, Some(S::Deprecated), "''", "Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG').", Yaml::Key, |c| c.log_package_levels),
    // Defined by etcd 3.4 but not listed in its --help.
    flag!("config-file", K::ConfigFile, None, "''", "", Yaml::No),
    flag!("version", K::Version, None, "'false'", "", Yaml::No),
    flag!("log-output", K::LogOutput, None, "'default'", "", Yaml::List),
    flag!("enable-grpc-gateway", K::Bool, None, "'true'", "", Yaml::Key, |c| c.enable_grpc_gateway),
    flag!("experimental-enable-lease-checkpoint-persist", K::Bool, None, "'true'", "", Yaml::Key, |c| c.experimental_enable_lease_checkpoint_persist),
    flag!("unsafe-no-fsync", K::Bool, None, "'false'", "", Yaml::Key, |c| c.unsafe_no_fsync),
    // From etcd 3.5: TLS protocol bounds for the client and peer ports.
    flag!("tls-min-version", K::Str, None, "''", "", Yaml::Key, |c| c.tls_min_version),
    flag!("tls-max-version", K::Str, None, "''", "", Yaml::Key, |c| c.tls_max_version),
    // From etcd 3.5: how often the leader checkpoints remaining lease TTLs through raft.
    flag!("experimental-lease-checkpoint-interval", K::Duration, None, "'5s'", "", Yaml::Key, |c| c.experimental_lease_checkpoint_interval),
    // From etcd 3.5: entries kept in memory after a snapshot for slow followers.
    flag!("experimental-snapshot-catchup-entries", K::Uint, None, "5000", "", Yaml::Key, |c| c.experimental_snapshot_catchup_entries),
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
        _ => false,
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
}

impl FlagState {
    fn new() -> Self {
        FlagState {
            cfg: Config::flag_defaults(),
            actual: BTreeSet::new(),
            config_file: String::new(),
            print_version: false,
            log_output: vec!["default".to_string()],
        }
    }

    fn is_set(&self, name: &str) -> bool {
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
        (Kind::Cors, F::Set(f)) => {
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
        }
        (Kind::UniqueStrings, F::Set(f)) => *f = unique_strings(value),
        (Kind::UniqueStrings, F::List(f)) => *f = unique_strings(value).into_iter().collect(),
        (Kind::Strings, F::List(f)) => *f = value.split(',').map(str::to_string).collect(),
        (Kind::Select(_), F::State(f)) => {
            *f = match value {
                "new" => ClusterState::New,
                "existing" => ClusterState::Existing,
                _ => return Err("invalid value".to_string()),
            }
        }
        (Kind::Select(_), F::Proxy(f)) => {
            *f = match value {
                "off" => ProxyMode::Off,
                "readonly" => ProxyMode::Readonly,
                "on" => ProxyMode::On,
                _ => return Err("invalid value".to_string()),
            }
        }
        (Kind::Select(_), F::Fallback(f)) => {
            *f = match value {
                "proxy" => DiscoveryFallback::Proxy,
                "exit" => DiscoveryFallback::Exit,
                _ => return Err("invalid value".to_string()),
            }
        }
        (kind, _) => unreachable!("flag table: kind {kind:?} does not match its field"),
    }
    Ok(())
}

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
            // etcd 3.4 stops here; etcd 3.3 warned and used the flag. chorus warns, so that
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

/// The part of etcd's `setupLogging` that reconciles `--log-output` with `--log-outputs`.
pub(crate) fn reconcile_log_outputs(
    cfg: &mut Config,
    deprecated: Vec<String>,
    notices: &mut Vec<Notice>,
) -> Result<(), ConfigError> {
    let (len1, len2) = (deprecated.len(), cfg.log_outputs.len());
    if len1 != len2 {
        if len1 > len2 {
            notices.push(Notice::warn(
                "'--log-output' flag has been deprecated! Please use '--log-outputs'!",
            ));
            cfg.log_outputs = deprecated;
        }
        return Ok(());
    }
    if len1 > 1 {
        return Err(ConfigError::Invalid(
            "both '--log-output' and '--log-outputs' are set; only set '--log-outputs'".to_string(),
        ));
    }
    if len1 < 1 {
        return Err(ConfigError::Invalid(
            "either '--log-output' or '--log-outputs' flag must be set".to_string(),
        ));
    }
    if deprecated == cfg.log_outputs && deprecated[0] != "default" {
        return Err(ConfigError::Invalid(format!(
            "'--log-output={}' and '--log-outputs={}' are incompatible; only set --log-outputs",
            go_quote_list(&deprecated),
            go_quote_list(&cfg.log_outputs)
        )));
    }
    if deprecated != ["default"] {
        notices.push(Notice::warn(format!(
            "[WARNING] Deprecated '--log-output' flag is set to {}\nPlease use '--log-outputs' flag",
            go_quote_list(&deprecated)
        )));
    }
    Ok(())
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
        let loaded = super::file::load_unvalidated(&path, notices);
        notices.push(Notice::info(format!(
            "Loading server configuration from {}. Other configuration command line flags and environment variables will be ignored if provided.",
            go_quote(&st.config_file)
        )));
        loaded?
    } else {
        set_flags_from_env(&mut st, env, notices)?;
        // Disable the default advertise-client-urls if listen-client-urls is set.
        let missing_ac = st.is_set("listen-client-urls") && !st.is_set("advertise-client-urls");
        if !st.cfg.may_be_proxy() && missing_ac {
            st.cfg.advertise_client_urls.clear();
        }
        // Disable the default initial-cluster if discovery is set.
        if (!st.cfg.discovery.is_empty()
            || !st.cfg.discovery_srv.is_empty()
            || !st.cfg.discovery_srv_name.is_empty())
            && !st.is_set("initial-cluster")
        {
            st.cfg.initial_cluster.clear();
        }
        let log_output = std::mem::take(&mut st.log_output);
        reconcile_log_outputs(&mut st.cfg, log_output, notices)?;
        st.cfg
    };
    cfg.validate_with_notices(notices)?;
    finish(&mut cfg, notices, default_host);
    Ok(Command::Run(Box::new(cfg)))
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

/// etcd's `usageline` (what `fs.Usage` prints to stderr), for chorus.
pub fn usage_text() -> String {
    "Usage:

  chorus [flags]
    Start a chorus server.

  chorus --version
    Show the version of chorus.

  chorus -h | --help
    Show the help information about chorus.

  chorus --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.

  chorus gateway
    Run the stateless pass-through etcd TCP connection forwarding proxy. (Not implemented yet in chorus.)

  chorus grpc-proxy
    Run the stateless etcd v3 gRPC L7 reverse proxy. (Not implemented yet in chorus.)

"
    .to_string()
}

/// etcd's `flagsline` (what `--help` prints to stdout), generated from the flag table.
pub fn flags_text() -> String {
    let mut by_section: BTreeMap<Section, Vec<&FlagSpec>> = BTreeMap::new();
    for f in FLAGS {
        if let Some(s) = f.section {
            by_section.entry(s).or_default().push(f);
        }
    }
    let mut out = String::from("\n");
    for (i, section) in Section::ALL.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(section.header());
        out.push('\n');
        if *section == Section::Deprecated {
            out.push('\n');
        }
        for f in by_section.get(section).map(Vec::as_slice).unwrap_or(&[]) {
            out.push_str(&format!("  --{} {}\n", f.name, f.help_default));
            for line in f.help.split('\n') {
                out.push_str(&format!("    {line}\n"));
            }
        }
        if *section == Section::Unsafe {
            out.push_str(
                "\nCAUTIOUS with unsafe flag! It may break the guarantees given by the consensus protocol!\n",
            );
        }
    }
    // fmt.Println's newline.
    out.push('\n');
    out
}

/// Usage followed by the flag list (both parts of `--help`, in print order).
pub fn help_text() -> String {
    format!("{}{}", usage_text(), flags_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_accepts_a_sample_value() {
        for spec in FLAGS {
            let mut st = FlagState::new();
            let sample = match spec.kind {
                Kind::Str | Kind::ConfigFile => "x",
                Kind::Bool | Kind::Ignored | Kind::Version => "true",
                Kind::Uint | Kind::Uint64 | Kind::Int | Kind::Int64 | Kind::Uint32 => "7",
                Kind::Duration => "3s",
                Kind::Urls | Kind::Cors => "http://127.0.0.1:1",
                Kind::UniqueStrings | Kind::Strings | Kind::LogOutput => "a,b",
                Kind::Select(v) => v[0],
            };
            set_value(spec, &mut st, sample, &mut Vec::new())
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
}
