//! Client TLS (etcd's benchmark `--cacert`, `--cert`, `--key`, plus
//! `--insecure-skip-tls-verify`): a rustls client configuration (ring provider, as the
//! server uses) and a connector that dials TCP, then TLS with ALPN `h2`, for tonic.
//!
//! tonic's own TLS features stay off: the channel's URI is `http://host:port` (what the
//! connector dials) and its origin `https://host:port` (what requests carry in `:scheme`
//! and `:authority`), so the connector alone decides about encryption.

use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{bail, Context as _};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::transport::Uri;

/// Where the system's CA bundle lives on common distributions (used without `--cacert`,
/// as Go's `x509.SystemCertPool` does).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The TLS flags as given.
#[derive(Debug, Clone, Default)]
pub struct TlsFlags {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

impl TlsFlags {
    /// Whether any TLS flag was given (then scheme-less endpoints use TLS).
    pub fn any(&self) -> bool {
        self.cacert.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.insecure_skip_verify
    }

    /// The rustls client configuration the flags describe.
    pub fn client_config(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let mut config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs("--cert", cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| anyhow::anyhow!("--key {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .with_context(|| format!("--cert {} with --key", cert.display()))?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => bail!("--cert needs --key"),
            (None, Some(_)) => bail!("--key needs --cert"),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    fn roots(&self) -> anyhow::Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.cacert {
            Some(path) => {
                for cert in read_certs("--cacert", path)? {
                    roots
                        .add(cert)
                        .with_context(|| format!("--cacert {}", path.display()))?;
                }
            }
            None => {
                let Some(bundle) = SYSTEM_CA_BUNDLES
                    .iter()
                    .map(Path::new)
                    .find(|p| p.is_file())
                else {
                    bail!("no --cacert given and no system CA bundle found");
                };
                let certs = read_certs("system CA bundle", bundle)?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    bail!("no usable certificate in {}", bundle.display());
                }
            }
        }
        Ok(roots)
    }
}

fn read_certs(flag: &str, path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("{flag} {}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}

/// The name to verify in the server's certificate: the endpoint's host (an IP address or
/// a DNS name), as Go's TLS client takes it.
pub fn server_name(authority: &str) -> anyhow::Result<ServerName<'static>> {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned())
        .map_err(|e| anyhow::anyhow!("endpoint {authority}: invalid server name: {e}"))
}

/// A tower service for tonic: dials the URI's `host:port` over TCP (no Nagle), then does
/// the TLS handshake, verifying `server_name`.
#[derive(Clone)]
pub struct TlsConnect {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl TlsConnect {
    pub fn new(config: Arc<rustls::ClientConfig>, server_name: ServerName<'static>) -> Self {
        TlsConnect {
            connector: TlsConnector::from(config),
            server_name,
        }
    }
}

impl tower::Service<Uri> for TlsConnect {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.connector.clone();
        let server_name = self.server_name.clone();
        Box::pin(async move {
            let authority = uri
                .authority()
                .ok_or_else(|| std::io::Error::other(format!("no host:port in {uri}")))?
                .to_string();
            let tcp = TcpStream::connect(authority.as_str()).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(server_name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

/// `--insecure-skip-tls-verify`: any server certificate is accepted; handshake
/// signatures are still checked, so the session key is the certificate's.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_endpoints() {
        assert!(matches!(
            server_name("127.0.0.1:2379").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:2379").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert_eq!(
            server_name("etcd-0.example:2379").unwrap(),
            ServerName::try_from("etcd-0.example").unwrap()
        );
    }

    #[test]
    fn cert_and_key_go_together() {
        let flags = TlsFlags {
            cert: Some("/nonexistent.pem".into()),
            insecure_skip_verify: true,
            ..TlsFlags::default()
        };
        assert!(flags.client_config().is_err());
        let flags = TlsFlags {
            key: Some("/nonexistent.pem".into()),
            insecure_skip_verify: true,
            ..TlsFlags::default()
        };
        let err = flags.client_config().unwrap_err().to_string();
        assert!(err.contains("--key needs --cert"), "{err}");
    }
}
