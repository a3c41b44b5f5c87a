//! Client TLS: what etcdctl's `--cacert`, `--cert`, `--key` and `--insecure-skip-tls-verify`
//! set up, with rustls (ring provider, as the server uses).
//!
//! ```text
//!   TlsOptions ── client_config(alpn) ──> Arc<rustls::ClientConfig>
//!        roots: ca_pem, else the system bundle      client cert: cert_pem + key_pem
//!   TlsConnect (tower Service<Uri>, for tonic) ── TCP (no Nagle) ── TLS handshake ── h2
//!   connect(config, name, "host:port") ──────────── the same, for an HTTP/1 client
//! ```
//!
//! tonic's own TLS features stay off: a channel's URI is `http://host:port` (what the
//! connector dials) and its origin `https://host:port` (what requests carry in `:scheme`
//! and `:authority`), so the connector alone decides about encryption. `Client::connect`
//! does this for `https://` endpoints (and scheme-less ones when `ConnectOptions::tls` is
//! set); other programs (`chorus-bench`, `chorusctl`'s v2 HTTP client) use the pieces.

use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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

use crate::error::{Error, Result};

/// Where the system's CA bundle lives on common distributions (used without a CA, as Go's
/// `x509.SystemCertPool` does).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// [`Error::Tls`] of a client key that is not the client certificate's.
pub const KEY_MISMATCH: &str = "the client key does not match the client certificate";

/// ALPN for gRPC.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN for an HTTP/1.1 (or 1.0) exchange.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// TLS settings as etcdctl's `--cacert`, `--cert`, `--key` and
/// `--insecure-skip-tls-verify` give them (PEM contents, not paths).
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// CA certificates that may sign the server's certificate; `None`: the system's.
    /// PEM without any certificate trusts no server (as Go's empty pool).
    pub ca_pem: Option<Vec<u8>>,
    /// The client's certificate chain (with `key_pem`), for `--client-cert-auth` servers.
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    /// Name to verify in the server's certificate (default: the endpoint's host).
    pub server_name: Option<String>,
    /// Accept any server certificate (handshake signatures are still checked).
    pub insecure_skip_verify: bool,
}

impl TlsOptions {
    /// Reads the PEM files (any may be absent).
    pub fn from_files(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> std::io::Result<TlsOptions> {
        let read = |p: Option<&Path>| p.map(std::fs::read).transpose();
        Ok(TlsOptions {
            ca_pem: read(ca)?,
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            ..TlsOptions::default()
        })
    }

    /// The rustls client configuration these options describe, offering `alpn`
    /// ([`ALPN_H2`] for gRPC).
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("protocol versions", e))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let mut config = match (&self.cert_pem, &self.key_pem) {
            (Some(cert), Some(key)) => {
                let chain = certs("client certificate", cert)?;
                let key =
                    PrivateKeyDer::from_pem_slice(key).map_err(|e| tls_error("client key", e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| match e {
                        rustls::Error::InconsistentKeys(_) => Error::Tls(KEY_MISMATCH.into()),
                        e => tls_error("client certificate and key", e),
                    })?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => return Err(Error::Tls("a client certificate needs its key".into())),
            (None, Some(_)) => return Err(Error::Tls("a client key needs its certificate".into())),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.ca_pem {
            // No certificate in it: no server is trusted (Go's empty pool does the same).
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| tls_error("CA", e))?;
                    roots.add(cert).map_err(|e| tls_error("CA", e))?;
                }
            }
            None => {
                let bundle = SYSTEM_CA_BUNDLES
                    .iter()
                    .map(Path::new)
                    .find(|p| p.is_file())
                    .ok_or_else(|| {
                        Error::Tls("no CA given and no system CA bundle found".into())
                    })?;
                let pem = std::fs::read(bundle)
                    .map_err(|e| tls_error(&bundle.display().to_string(), e))?;
                let (added, _) = roots.add_parsable_certificates(certs("system CA bundle", &pem)?);
                if added == 0 {
                    return Err(Error::Tls(format!(
                        "no usable certificate in {}",
                        bundle.display()
                    )));
                }
            }
        }
        Ok(roots)
    }

    /// The name to verify for `authority` (`host:port`): `server_name` if set, else the host.
    pub fn server_name_for(&self, authority: &str) -> Result<ServerName<'static>> {
        match &self.server_name {
            Some(name) => server_name(name),
            None => server_name(authority),
        }
    }
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{what}: {e}"))
}

fn certs(what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(what, e))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("{what}: no PEM certificate found")));
    }
    Ok(certs)
}

/// The name to verify in the server's certificate: the host of `authority` (`host:port`,
/// `[v6]:port` or a bare host), an IP address or a DNS name, as Go's TLS client takes it.
pub fn server_name(authority: &str) -> Result<ServerName<'static>> {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned())
        .map_err(|e| Error::Tls(format!("invalid server name {host:?}: {e}")))
}

/// Dials `authority` (`host:port`) over TCP without Nagle, then does the TLS handshake,
/// verifying `name`.
pub async fn connect(
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    authority: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(authority).await?;
    tcp.set_nodelay(true)?;
    TlsConnector::from(config).connect(name, tcp).await
}

/// A tower service for tonic's `Endpoint::connect_with_connector`: [`connect`] to the
/// URI's `host:port`. A failed handshake is a connection error: the request never left.
#[derive(Clone)]
pub struct TlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect {
    pub fn new(config: Arc<rustls::ClientConfig>, name: ServerName<'static>) -> Self {
        TlsConnect { config, name }
    }
}

impl tower::Service<Uri> for TlsConnect {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (config, name) = (self.config.clone(), self.name.clone());
        Box::pin(async move {
            let authority = uri
                .authority()
                .ok_or_else(|| std::io::Error::other(format!("no host:port in {uri}")))?
                .to_string();
            Ok(TokioIo::new(connect(config, name, &authority).await?))
        })
    }
}

/// `insecure_skip_verify` (and a member's `--peer-auto-tls` without a CA): any server
/// certificate is accepted; handshake signatures are still checked, so the session key is
/// the certificate's.
#[derive(Debug)]
pub struct AcceptAnyServerCert(pub Arc<CryptoProvider>);

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
        let opts = TlsOptions {
            server_name: Some("etcd.example".into()),
            ..TlsOptions::default()
        };
        assert_eq!(
            opts.server_name_for("127.0.0.1:2379").unwrap(),
            ServerName::try_from("etcd.example").unwrap()
        );
    }

    #[test]
    fn cert_and_key_go_together_and_pem_is_checked() {
        let only_key = TlsOptions {
            key_pem: Some(b"x".to_vec()),
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        assert!(matches!(
            only_key.client_config(&[ALPN_H2]),
            Err(Error::Tls(_))
        ));
        let only_cert = TlsOptions {
            cert_pem: Some(b"x".to_vec()),
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        assert!(matches!(
            only_cert.client_config(&[ALPN_H2]),
            Err(Error::Tls(_))
        ));
        let bad_cert = TlsOptions {
            cert_pem: Some(b"not a certificate".to_vec()),
            key_pem: Some(b"not a key".to_vec()),
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        let err = bad_cert.client_config(&[ALPN_H2]).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        // A CA file without certificates trusts no server, as Go's empty pool.
        let empty_ca = TlsOptions {
            ca_pem: Some(b"not a certificate".to_vec()),
            ..TlsOptions::default()
        };
        assert!(empty_ca.client_config(&[ALPN_H2]).is_ok());
        let skip = TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        let cfg = skip.client_config(&[ALPN_H2, ALPN_HTTP1]).unwrap();
        assert_eq!(
            cfg.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
