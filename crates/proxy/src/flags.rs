//! etcd's `grpc-proxy start` and `gateway start` flags (cobra/pflag in etcd: `--x=y` and
//! `--x y`, comma-separated lists, booleans as `--flag` or `--flag=false`). etcd reads no
//! environment variables for these two commands, so neither do we. clap stays here, at
//! the edge; the rest of the crate sees [`ProxyConfig`] and [`GatewayConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::ProxyError;

/// `chorus grpc-proxy ...`
#[derive(Debug, Parser)]
#[command(name = "chorus grpc-proxy", about = "grpc-proxy related command")]
pub struct GrpcProxyCli {
    #[command(subcommand)]
    pub command: GrpcProxyCommand,
}

#[derive(Debug, Subcommand)]
pub enum GrpcProxyCommand {
    /// start the grpc proxy
    Start(Box<GrpcProxyFlags>),
}

/// `chorus gateway ...`
#[derive(Debug, Parser)]
#[command(name = "chorus gateway", about = "gateway related command")]
pub struct GatewayCli {
    #[command(subcommand)]
    pub command: GatewayCommand,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// start the gateway
    Start(GatewayFlags),
}

#[derive(Debug, Args)]
pub struct GrpcProxyFlags {
    /// comma separated etcd cluster endpoints
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// listen address
    #[arg(long, default_value = "127.0.0.1:23790")]
    pub listen_addr: String,
    /// advertise address to register (must be reachable by client)
    #[arg(long, default_value = "127.0.0.1:23790")]
    pub advertise_client_url: String,
    /// prefix to use for registering proxy (must be shared with other grpc-proxy members)
    #[arg(long, default_value = "")]
    pub resolver_prefix: String,
    /// specify TTL, in seconds, when registering proxy endpoints
    #[arg(long, default_value_t = 0)]
    pub resolver_ttl: i64,
    /// string to prefix to all keys for namespacing requests
    #[arg(long, default_value = "")]
    pub namespace: String,
    /// listen for endpoint /metrics requests on an additional interface
    #[arg(long, default_value = "")]
    pub metrics_addr: String,
    /// Data directory for persistent data (unused: the proxy keeps no state)
    #[arg(long, default_value = "default.proxy")]
    pub data_dir: PathBuf,
    /// verify certificates of TLS-enabled secure etcd servers using this CA bundle
    #[arg(long, alias = "ca-file", default_value = "")]
    pub cacert: String,
    /// identify secure connections with etcd servers using this TLS certificate file
    #[arg(long, default_value = "")]
    pub cert: String,
    /// identify secure connections with etcd servers using this TLS key file
    #[arg(long, default_value = "")]
    pub key: String,
    /// skip authentication of etcd server TLS certificates
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub insecure_skip_tls_verify: bool,
    /// identify secure connections to the proxy using this TLS certificate file
    #[arg(long, default_value = "")]
    pub cert_file: String,
    /// identify secure connections to the proxy using this TLS key file
    #[arg(long, default_value = "")]
    pub key_file: String,
    /// verify certificates of TLS-enabled secure proxy using this CA bundle
    #[arg(long, default_value = "")]
    pub trusted_ca_file: String,
    /// Enable runtime profiling data via HTTP server (accepted; chorus serves no pprof)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub enable_pprof: bool,
    /// Enable debug-level logging for grpc-proxy.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub debug: bool,
    /// message send limits in bytes
    #[arg(long, default_value_t = 1_572_864)]
    pub max_send_bytes: usize,
    /// message receive limits in bytes
    #[arg(long, default_value_t = i32::MAX as usize)]
    pub max_recv_bytes: usize,
    /// DNS: serve the SkyDNS layout (/skydns/...) on this UDP and TCP address (chorus)
    #[arg(long, default_value = "")]
    pub dns_listen_addr: String,
    /// DNS: the zone answered from /skydns (chorus)
    #[arg(long, default_value = "skydns.local.")]
    pub dns_domain: String,
}

#[derive(Debug, Args)]
pub struct GatewayFlags {
    /// listen address
    #[arg(long, default_value = "127.0.0.1:23790")]
    pub listen_addr: String,
    /// comma separated etcd cluster endpoints
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// duration of delay before retrying failed endpoints
    #[arg(long, default_value = "1m0s", value_parser = parse_go_duration)]
    pub retry_delay: Duration,
    /// accept insecure SRV records
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub insecure_discovery: bool,
    /// path to the client server TLS CA file for verifying the discovered endpoints when discovery-srv is provided.
    #[arg(long, default_value = "")]
    pub trusted_ca_file: String,
    /// DNS domain used to bootstrap initial cluster (not supported by chorus yet)
    #[arg(long, default_value = "")]
    pub discovery_srv: String,
}

/// What the proxy runs with, after the flags.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    pub endpoints: Vec<String>,
    pub listen_addr: String,
    pub advertise_client_url: String,
    pub resolver_prefix: String,
    pub resolver_ttl: i64,
    pub namespace: String,
    pub metrics_addr: Option<String>,
    /// Towards the members.
    pub client_tls: Option<chorus_client::TlsOptions>,
    /// On the proxy's own listener: certificate, key, CA for client certificates.
    pub listen_tls: Option<(PathBuf, PathBuf, Option<PathBuf>)>,
    pub max_send_bytes: usize,
    pub max_recv_bytes: usize,
    pub dns: Option<(String, String)>,
    pub debug: bool,
}

impl GrpcProxyFlags {
    /// The configuration, with etcd's checks of combinations.
    pub fn into_config(self) -> Result<ProxyConfig, ProxyError> {
        let read = |p: &str| -> Result<Option<Vec<u8>>, ProxyError> {
            if p.is_empty() {
                return Ok(None);
            }
            std::fs::read(p)
                .map(Some)
                .map_err(|source| ProxyError::Read {
                    path: p.to_string(),
                    source,
                })
        };
        let any_client_tls = !self.cacert.is_empty()
            || !self.cert.is_empty()
            || !self.key.is_empty()
            || self.insecure_skip_tls_verify;
        let client_tls = if any_client_tls {
            Some(chorus_client::TlsOptions {
                ca_pem: read(&self.cacert)?,
                cert_pem: read(&self.cert)?,
                key_pem: read(&self.key)?,
                server_name: None,
                insecure_skip_verify: self.insecure_skip_tls_verify,
            })
        } else {
            None
        };
        let listen_tls = match (self.cert_file.is_empty(), self.key_file.is_empty()) {
            (true, true) => None,
            (false, false) => Some((
                PathBuf::from(&self.cert_file),
                PathBuf::from(&self.key_file),
                (!self.trusted_ca_file.is_empty()).then(|| PathBuf::from(&self.trusted_ca_file)),
            )),
            _ => {
                return Err(ProxyError::Invalid(
                    "--cert-file and --key-file must be given together".into(),
                ))
            }
        };
        if self.resolver_ttl < 0 || (!self.resolver_prefix.is_empty() && self.resolver_ttl < 1) {
            return Err(ProxyError::Invalid(
                "invalid resolver-ttl: it must be at least 1 second with --resolver-prefix".into(),
            ));
        }
        let endpoints: Vec<String> = self
            .endpoints
            .into_iter()
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(ProxyError::Invalid("no endpoints given".into()));
        }
        Ok(ProxyConfig {
            endpoints,
            listen_addr: strip_scheme(&self.listen_addr).to_string(),
            advertise_client_url: self.advertise_client_url,
            resolver_prefix: self.resolver_prefix,
            resolver_ttl: self.resolver_ttl,
            namespace: self.namespace,
            metrics_addr: (!self.metrics_addr.is_empty())
                .then(|| strip_scheme(&self.metrics_addr).to_string()),
            client_tls,
            listen_tls,
            max_send_bytes: self.max_send_bytes,
            max_recv_bytes: self.max_recv_bytes,
            dns: (!self.dns_listen_addr.is_empty())
                .then(|| (self.dns_listen_addr.clone(), self.dns_domain.clone())),
            debug: self.debug,
        })
    }
}

/// `http://host:port` or `https://host:port` -> `host:port` (etcd takes both forms).
pub(crate) fn strip_scheme(addr: &str) -> &str {
    let rest = addr
        .strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr);
    rest.trim_end_matches('/')
}

/// Go's `time.ParseDuration` for the common forms: `1m0s`, `500ms`, `1.5s`, `2h`, `0`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    // At most one number+unit pair per unit kind: 8 pairs bound the loop.
    for _ in 0..8 {
        if rest.is_empty() {
            return Ok(Duration::from_secs_f64(total));
        }
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m0s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn flags_in_both_go_forms() {
        let cli = GrpcProxyCli::try_parse_from([
            "chorus grpc-proxy",
            "start",
            "--endpoints=a:1,b:2",
            "--listen-addr",
            "127.0.0.1:5000",
            "--namespace=ns/",
            "--enable-pprof",
            "--insecure-skip-tls-verify=false",
        ])
        .unwrap();
        let GrpcProxyCommand::Start(f) = cli.command;
        assert_eq!(f.endpoints, ["a:1", "b:2"]);
        assert_eq!(f.listen_addr, "127.0.0.1:5000");
        assert_eq!(f.namespace, "ns/");
        assert!(f.enable_pprof);
        assert!(!f.insecure_skip_tls_verify);
        let cfg = f.into_config().unwrap();
        assert!(cfg.client_tls.is_none());
    }

    #[test]
    fn resolver_needs_a_ttl() {
        let cli =
            GrpcProxyCli::try_parse_from(["x", "start", "--resolver-prefix=/proxies"]).unwrap();
        let GrpcProxyCommand::Start(f) = cli.command;
        assert!(f.into_config().is_err());
    }

    #[test]
    fn gateway_flags() {
        let cli =
            GatewayCli::try_parse_from(["x", "start", "--endpoints=a:1,b:2", "--retry-delay=2s"])
                .unwrap();
        let GatewayCommand::Start(f) = cli.command;
        assert_eq!(f.retry_delay, Duration::from_secs(2));
        assert_eq!(f.endpoints.len(), 2);
    }
}
