//! `--dns-listen-addr` on a member: DNS service discovery (chorus_dns, the SkyDNS layout
//! under `/skydns`) served beside the member, as `chorus grpc-proxy --dns-listen-addr`
//! serves it beside a proxy. The DNS server is a client of the member's own client URL
//! (so it reads and watches as any client does), over TLS when the member serves TLS,
//! presenting the member's certificate as etcd's gateway does.
//!
//! The sockets are bound before the member starts (a busy port fails start-up before
//! anything is written); queries are answered once the member serves its clients.

use chorus_config::Config;
use chorus_dns::{DnsConfig, DnsError, DnsServer};
use tokio::sync::watch;

/// Binds `--dns-listen-addr` for `--dns-domain`, or nothing when it is not set.
pub async fn bind(cfg: &Config) -> Result<Option<DnsServer>, DnsError> {
    if cfg.dns_listen_addr.is_empty() {
        return Ok(None);
    }
    let config = DnsConfig::new(&cfg.dns_listen_addr, &cfg.dns_domain)?;
    let server = DnsServer::bind(config).await?;
    tracing::info!(
        address = %server.local_addr(),
        zone = %cfg.dns_domain,
        "DNS service discovery listening"
    );
    Ok(Some(server))
}

/// Serves `server` from the member's advertised client URLs until `shutdown`.
pub fn spawn(
    server: DnsServer,
    cfg: &Config,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let urls: Vec<String> = cfg
        .advertise_client_urls
        .iter()
        .map(|u| u.to_string())
        .collect();
    let tls = client_tls(cfg);
    tokio::spawn(async move {
        let result = match tls {
            Ok(tls) => connect_and_run(server, &urls, tls, shutdown).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!("DNS server stopped: {e}");
        }
    })
}

async fn connect_and_run(
    server: DnsServer,
    urls: &[String],
    tls: Option<chorus_client::TlsOptions>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), DnsError> {
    let options = chorus_client::ConnectOptions {
        tls,
        ..Default::default()
    };
    let client = chorus_client::Client::connect(urls, options).await?;
    server.run(client, shutdown).await
}

/// The member's client TLS files as a client's: its CA, its certificate (the client
/// certificate when one is set) and key; any server certificate with `--auto-tls`.
fn client_tls(cfg: &Config) -> Result<Option<chorus_client::TlsOptions>, DnsError> {
    let t = &cfg.client_tls;
    if !cfg.advertise_client_urls.iter().any(|u| u.is_tls()) {
        return Ok(None);
    }
    let file = |s: &str| (!s.is_empty()).then(|| std::path::PathBuf::from(s));
    let (cert, key) = if t.client_cert_file.is_empty() {
        (file(&t.cert_file), file(&t.key_file))
    } else {
        (file(&t.client_cert_file), file(&t.client_key_file))
    };
    let ca = file(&t.trusted_ca_file);
    let mut options =
        chorus_client::TlsOptions::from_files(ca.as_deref(), cert.as_deref(), key.as_deref())
            .map_err(|e| DnsError::Tls(e.to_string()))?;
    options.insecure_skip_verify = t.auto_tls;
    Ok(Some(options))
}
