//! Validation: etcd's `embed.Config.Validate` (and `setupLogging`), the
//! checks etcd makes while starting before it touches the data dir, and
//! chorus's refusal of what it does not implement yet.

use std::time::Duration;

use super::config::{
    AutoCompaction, Config, Notice, MAX_ELECTION_MS, MAX_QUOTA_BYTES, RECOMMENDED_MAX_REQUEST_BYTES,
};
use super::error::{ConfigError, ERR_UNSET_ADVERTISE_CLIENT_URLS};
use super::goparse::{self, go_duration_string, go_quote};
use super::migrate;
use super::url::{self, join_urls, Url};

impl Config {
    /// etcd's flag/config verification plus chorus's own checks: rejects
    /// [`NOT_IMPLEMENTED`](crate::NOT_IMPLEMENTED) features, https listeners
    /// without certificates, unparsable auto-compaction retention and unknown
    /// log levels.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with_notices(&mut Vec::new())
    }

    /// [`Config::validate`], also collecting the warnings etcd logs.
    pub fn validate_with_notices(&self, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
        self.validate_etcd(notices)?;
        self.check_not_implemented()?;
        self.no_effect_notices(notices);
        self.validate_startup(notices)
    }

    /// `embed.Config.Validate` (including `setupLogging`), in etcd 3.6's order.
    fn validate_etcd(&self, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
        let inv = |m: String| Err(ConfigError::Invalid(m));
        migrate::check_renamed_conflicts(self)?;
        self.validate_logging(notices)?;
        for urls in [
            &self.listen_peer_urls,
            &self.listen_client_urls,
            &self.listen_client_http_urls,
            &self.listen_metrics_urls,
        ] {
            check_bind_urls(urls).map_err(ConfigError::Invalid)?;
        }
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
        self.validate_bootstrap_flags()?;
        self.validate_ticks()?;
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
        self.validate_tracing()?;
        self.validate_lease_checkpoint(notices)?;
        self.validate_compact_hash_check_time()?;
        self.validate_tls_versions()
    }

    /// One way to bootstrap; v2 and v3 discovery not mixed (etcd 3.6).
    fn validate_bootstrap_flags(&self) -> Result<(), ConfigError> {
        let inv = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        let v3 = &self.discovery_cfg;
        let n_set = [
            !self.discovery.is_empty(),
            !self.initial_cluster.is_empty(),
            !self.discovery_srv.is_empty(),
            !v3.endpoints.is_empty(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n_set > 1 && v3.endpoints.is_empty() {
            // etcd 3.4/3.5's wording, which 3.6 extended with "discovery-endpoints".
            return inv("multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"");
        }
        if n_set > 1 {
            return inv("multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\", \"discovery-endpoints\" or \"discovery-srv\"");
        }
        if !self.discovery_proxy.is_empty() && v3.is_set() {
            return inv("both v2 discovery settings (discovery, discovery-proxy) and v3 discovery settings (discovery-token, discovery-endpoints, discovery-cert, discovery-key, discovery-cacert, discovery-user, discovery-password) are set");
        }
        if v3.token.is_empty() != v3.endpoints.is_empty() {
            return inv("both --discovery-token and --discovery-endpoints must be set");
        }
        if v3.endpoints.iter().any(|ep| ep.trim().is_empty()) {
            return inv("--discovery-endpoints must not contain empty endpoints");
        }
        Ok(())
    }

    fn validate_ticks(&self) -> Result<(), ConfigError> {
        let inv = |m: String| Err(ConfigError::Invalid(m));
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
        Ok(())
    }

    /// etcd's `validateTracingConfig`, when tracing is on.
    fn validate_tracing(&self) -> Result<(), ConfigError> {
        if !self.enable_distributed_tracing {
            return Ok(());
        }
        let rate = self.distributed_tracing_sampling_rate;
        let err = if rate < 0 {
            "tracing sampling rate must be positive".to_string()
        } else if rate > 1_000_000 {
            "tracing sampling rate must be less than 1000000".to_string()
        } else {
            return Ok(());
        };
        Err(ConfigError::Invalid(format!(
            "distributed tracing configurition is not valid: ({err})"
        )))
    }

    /// Lease checkpoint persistence needs checkpoints, in the words of the
    /// release whose spelling was used (etcd 3.5's flags or 3.6's gates).
    fn validate_lease_checkpoint(&self, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
        let gates = &self.feature_gates;
        let by_gate = ![
            "experimental-enable-lease-checkpoint",
            "experimental-enable-lease-checkpoint-persist",
        ]
        .iter()
        .any(|f| self.flags_explicitly_set.contains(*f))
            && self.flags_explicitly_set.contains("feature-gates");
        if !gates.lease_checkpoint_persist && gates.lease_checkpoint {
            notices.push(Notice::warn(if by_gate {
                "Detected that checkpointing is enabled without persistence. Consider enabling feature gate LeaseCheckpointPersist"
            } else {
                "Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist"
            }));
        }
        if gates.lease_checkpoint_persist && !gates.lease_checkpoint {
            return Err(ConfigError::Invalid(if by_gate {
                "enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint".to_string()
            } else {
                "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint".to_string()
            }));
        }
        Ok(())
    }

    /// `--compact-hash-check-time` (or its experimental name, when that was
    /// the one given) must be positive.
    fn validate_compact_hash_check_time(&self) -> Result<(), ConfigError> {
        let t = self.compact_hash_check_time;
        if !t.is_zero() {
            return Ok(());
        }
        let old = "experimental-compact-hash-check-time";
        let name = if self.flags_explicitly_set.contains(old) {
            old
        } else {
            "compact-hash-check-time"
        };
        Err(ConfigError::Invalid(format!(
            "--{name} must be >0 (set to {})",
            go_duration_string(t)
        )))
    }

    /// `tlsutil.GetTLSVersion` on both bounds, then their order, then etcd's
    /// refusal of cipher suites with TLS 1.3 only.
    fn validate_tls_versions(&self) -> Result<(), ConfigError> {
        let version = |v: &str| match v {
            "" => Ok(0),
            "TLS1.2" => Ok(12),
            "TLS1.3" => Ok(13),
            other => Err(ConfigError::Invalid(format!(
                "unexpected TLS version {} (must be one of: TLS1.2, TLS1.3)",
                go_quote(other)
            ))),
        };
        let min = version(&self.tls_min_version)?;
        let max = version(&self.tls_max_version)?;
        if max != 0 && min > max {
            return Err(ConfigError::Invalid(format!(
                "min version ({}) is greater than max version ({})",
                self.tls_min_version, self.tls_max_version
            )));
        }
        if min == 13 && !self.cipher_suites.is_empty() {
            return Err(ConfigError::Invalid(
                "cipher suites cannot be configured when only TLS1.3 is enabled".to_string(),
            ));
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
            let client_urls = self.listen_client_urls.iter();
            if let Some(u) = client_urls
                .chain(&self.listen_client_http_urls)
                .find(|u| u.is_tls())
            {
                return Err(ConfigError::Startup(format!(
                    "TLS key/cert (--cert-file, --key-file) must be provided for client url {u} with HTTPS scheme"
                )));
            }
        }
        self.auto_compaction()?;
        // etcd's embed refuses --enable-v2 from write-only on; chorus only when it is
        // given, as chorus serves v2 by default.
        if self.v2_deprecation.is_write_only()
            && self.enable_v2
            && self.flags_explicitly_set.contains("enable-v2")
        {
            return Err(ConfigError::Startup(format!(
                "--enable-v2 and --v2-deprecation={} are mutually exclusive",
                self.v2_deprecation
            )));
        }
        self.check_dns_listen_addr()?;
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

    /// `--dns-listen-addr`: empty, or `ip:port` (optionally `udp://` or `dns://` first).
    fn check_dns_listen_addr(&self) -> Result<(), ConfigError> {
        let given = self.dns_listen_addr.as_str();
        let addr = given
            .trim_start_matches("udp://")
            .trim_start_matches("dns://");
        if given.is_empty() || addr.parse::<std::net::SocketAddr>().is_ok() {
            return Ok(());
        }
        Err(ConfigError::Invalid(format!(
            "--dns-listen-addr {} must be \"ip:port\"",
            go_quote(given)
        )))
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
