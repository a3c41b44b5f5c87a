//! DNS service discovery from the cluster, in the SkyDNS layout of CoreDNS's etcd plugin:
//! `/skydns/local/chorus/web/x1` = `{"host":"10.0.0.1","port":8080,...}` answers
//! `web.chorus.local` (A, AAAA, SRV, TXT) and, under `/skydns/arpa/in-addr/...`, PTR.
//!
//! ```text
//!   cluster ──snapshot at R, watch from R+1──▶ Index (BTreeMap key → Service)
//!                                                 ▲ read lock
//!   UDP :53-ish ─┐                                │
//!   TCP (2-byte ─┴─▶ parse (hickory-proto) ──▶ answer(question) ──▶ encode ──▶ reply
//!   length frames)     │ too short: dropped       NXDOMAIN/NODATA + SOA
//!                      │ unparsable: FORMERR       over UDP: TC when too large
//! ```
//!
//! The server is a *client* of the cluster (`chorus_client::Client`), so it runs the same
//! way inside `chorus grpc-proxy start --dns-listen-addr` and beside a member (through
//! [`serve`], given the member's client URL). Choice of crate: docs/adr/0008-dns.md.

pub mod answer;
pub mod index;
pub mod record;
pub mod server;

use std::net::SocketAddr;

pub use server::DnsServer;

/// The SkyDNS root in the keyspace (CoreDNS's default `path`).
pub const DEFAULT_PREFIX: &str = "/skydns";

/// What can stop the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("invalid DNS listen address {addr:?}: {reason}")]
    Address { addr: String, reason: String },
    #[error("invalid DNS domain {domain:?}: {reason}")]
    Domain { domain: String, reason: String },
    #[error("DNS listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("DNS: {0}")]
    Client(#[from] chorus_client::Error),
    #[error("DNS: client TLS files: {0}")]
    Tls(String),
}

/// Where and what to serve.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// UDP and TCP address.
    pub listen: SocketAddr,
    /// The zone, e.g. `skydns.local.`.
    pub zone: hickory_proto::rr::Name,
    /// Keys under this path (default [`DEFAULT_PREFIX`]).
    pub prefix: String,
}

impl DnsConfig {
    /// From the flags' text: `127.0.0.1:5353` (or `udp://...`) and a domain.
    pub fn new(listen: &str, domain: &str) -> Result<DnsConfig, DnsError> {
        let addr = listen
            .trim_start_matches("udp://")
            .trim_start_matches("dns://");
        let listen = addr
            .parse()
            .map_err(|e: std::net::AddrParseError| DnsError::Address {
                addr: listen.to_string(),
                reason: e.to_string(),
            })?;
        let mut zone =
            hickory_proto::rr::Name::from_ascii(domain).map_err(|e| DnsError::Domain {
                domain: domain.to_string(),
                reason: e.to_string(),
            })?;
        zone.set_fqdn(true);
        Ok(DnsConfig {
            listen,
            zone: zone.to_lowercase(),
            prefix: DEFAULT_PREFIX.to_string(),
        })
    }
}

/// For a member (or any process with the cluster's client URLs): serves DNS on
/// `listen` for `domain` until `shutdown` turns true. `client_urls` are the member's
/// own client URLs; `tls` the client TLS settings when they are https.
pub async fn serve(
    client_urls: &[String],
    tls: Option<chorus_client::TlsOptions>,
    listen: &str,
    domain: &str,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), DnsError> {
    let config = DnsConfig::new(listen, domain)?;
    let options = chorus_client::ConnectOptions {
        tls,
        ..Default::default()
    };
    let client = chorus_client::Client::connect(client_urls, options).await?;
    let server = DnsServer::bind(config).await?;
    server.run(client, shutdown).await
}

/// Resolves once `rx` turns true (or its sender is gone); holds no borrow across awaits.
pub(crate) async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}
