//! etcd's defaults: what the flag set starts from, and what a config file
//! starts from.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::config::{
    ClusterState, Config, DiscoveryConfig, DiscoveryFallback, ProxyMode, SocketOpts, TlsInfo,
    V2Deprecation, DEFAULT_CLIENT_URL, DEFAULT_INITIAL_CLUSTER_TOKEN, DEFAULT_NAME,
    DEFAULT_PEER_URL, DEFAULT_SNAPSHOT_COUNT,
};
use super::gates::FeatureGates;
use super::url::Url;

/// etcd's `DefaultLogRotationConfig`.
pub const DEFAULT_LOG_ROTATION_CONFIG: &str =
    r#"{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}"#;
/// etcd's `DefaultWarningUnaryRequestDuration`.
pub const DEFAULT_WARNING_UNARY_REQUEST_DURATION: Duration = Duration::from_millis(300);

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
        let gates = FeatureGates::default();
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
            listen_client_http_urls: Vec::new(),
            max_snapshots: 5,
            max_wals: 5,
            quota_backend_bytes: 0,
            backend_bbolt_freelist_type: String::new(),
            backend_batch_interval: Duration::ZERO,
            backend_batch_limit: 0,
            max_txn_ops: 128,
            max_request_bytes: 1024 * 1024 * 3 / 2,
            max_concurrent_streams: u32::MAX,
            grpc_keepalive_min_time: Duration::from_secs(5),
            grpc_keepalive_interval: Duration::from_secs(2 * 3600),
            grpc_keepalive_timeout: Duration::from_secs(20),
            socket_opts: SocketOpts::default(),
            raft_read_timeout: Duration::from_secs(5),
            raft_write_timeout: Duration::from_secs(5),
            max_learners: 1,
            snapshot_catchup_entries: 5000,
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
            discovery_cfg: DiscoveryConfig::default(),
            strict_reconfig_check: true,
            // etcd 3.4: off; 3.5+: on.
            pre_vote: true,
            auto_compaction_retention: "0".to_string(),
            auto_compaction_mode: "periodic".to_string(),
            enable_v2: true,
            v2_deprecation: V2Deprecation::NotYet,
            client_tls: TlsInfo::default(),
            peer_tls: TlsInfo::default(),
            experimental_peer_skip_client_san_verification: false,
            self_signed_cert_validity: 1,
            cipher_suites: Vec::new(),
            tls_min_version: "TLS1.2".to_string(),
            tls_max_version: String::new(),
            cors: star(),
            host_whitelist: star(),
            auth_token: "simple".to_string(),
            bcrypt_cost: 10,
            auth_token_ttl: 300,
            enable_pprof: false,
            metrics: "basic".to_string(),
            listen_metrics_urls: Vec::new(),
            enable_distributed_tracing: false,
            distributed_tracing_address: "localhost:4317".to_string(),
            distributed_tracing_service_name: "etcd".to_string(),
            distributed_tracing_instance_id: String::new(),
            distributed_tracing_sampling_rate: 0,
            experimental_enable_distributed_tracing: false,
            experimental_distributed_tracing_address: "localhost:4317".to_string(),
            experimental_distributed_tracing_service_name: "etcd".to_string(),
            experimental_distributed_tracing_instance_id: String::new(),
            experimental_distributed_tracing_sampling_rate: 0,
            logger: "zap".to_string(),
            log_outputs: vec!["default".to_string()],
            log_level: "info".to_string(),
            log_format: "json".to_string(),
            enable_log_rotation: false,
            log_rotation_config_json: DEFAULT_LOG_ROTATION_CONFIG.to_string(),
            debug: false,
            log_package_levels: String::new(),
            proxy: ProxyMode::Off,
            proxy_failure_wait_ms: 5000,
            proxy_refresh_interval_ms: 30000,
            proxy_dial_timeout_ms: 1000,
            proxy_write_timeout_ms: 5000,
            proxy_read_timeout_ms: 0,
            feature_gates: gates,
            experimental_initial_corrupt_check: gates.initial_corrupt_check,
            corrupt_check_time: Duration::ZERO,
            experimental_corrupt_check_time: Duration::ZERO,
            experimental_compact_hash_check_enabled: gates.compact_hash_check,
            compact_hash_check_time: Duration::from_secs(60),
            experimental_compact_hash_check_time: Duration::from_secs(60),
            compaction_batch_limit: 0,
            experimental_compaction_batch_limit: 0,
            compaction_sleep_interval: Duration::ZERO,
            experimental_compaction_sleep_interval: Duration::ZERO,
            watch_progress_notify_interval: Duration::ZERO,
            experimental_watch_progress_notify_interval: Duration::ZERO,
            warning_apply_duration: Duration::from_millis(100),
            experimental_warning_apply_duration: Duration::from_millis(100),
            warning_unary_request_duration: DEFAULT_WARNING_UNARY_REQUEST_DURATION,
            experimental_warning_unary_request_duration: Duration::ZERO,
            experimental_snapshot_catchup_entries: 5000,
            bootstrap_defrag_threshold_megabytes: 0,
            experimental_bootstrap_defrag_threshold_megabytes: 0,
            memory_mlock: false,
            experimental_memory_mlock: false,
            downgrade_check_time: Duration::from_secs(5),
            experimental_downgrade_check_time: Duration::from_secs(5),
            experimental_txn_mode_write_with_shared_buffer: gates.txn_mode_write_with_shared_buffer,
            experimental_stop_grpc_service_on_defrag: gates.stop_grpc_service_on_defrag,
            experimental_enable_v2v3: String::new(),
            experimental_backend_bbolt_freelist_type: String::new(),
            // chorus checkpoints remaining lease TTLs by default (etcd: off).
            experimental_enable_lease_checkpoint: gates.lease_checkpoint,
            experimental_enable_lease_checkpoint_persist: gates.lease_checkpoint_persist,
            experimental_lease_checkpoint_interval: Duration::from_secs(5),
            dns_listen_addr: String::new(),
            dns_domain: "skydns.local.".to_string(),
            force_new_cluster: false,
            unsafe_no_fsync: false,
            next_cluster_version_compatible: false,
            enable_grpc_gateway: true,
            config_file: None,
            flags_explicitly_set: BTreeSet::new(),
        }
    }

    /// What etcd's `embed.NewConfig()` holds before a config file is applied:
    /// the flag defaults except for the flags whose default lives only in the
    /// flag definition (as in etcd 3.5: the auto-compaction pair).
    pub(crate) fn file_defaults() -> Config {
        Config {
            auto_compaction_retention: String::new(),
            auto_compaction_mode: String::new(),
            ..Config::flag_defaults()
        }
    }
}
