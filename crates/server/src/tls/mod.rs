//! TLS for the client and peer ports (rustls, no OpenSSL).
//!
//! ```text
//!  handshake ─► ReloadingCert        cert/key files re-read when their size or mtime changes
//!            └► ReloadingVerifier    trusted CA + CRL re-read likewise; client certificate
//!                                    required with --client-cert-auth / --peer-client-cert-auth
//!  peer port: the client certificate must also carry --peer-cert-allowed-cn / -hostname
//! ```
//! Errors at start-up name the file and the flag, e.g. `--cert-file /x/c.pem: no such file`.
//! The common name of a verified client certificate is the request's user identity.

pub mod pki;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

/// A TLS configuration problem, naming the flag and the file.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {path}: {reason}")]
pub struct TlsError {
    pub flag: String,
    pub path: String,
    pub reason: String,
}

fn err(flag: &str, path: &Path, reason: impl fmt::Display) -> TlsError {
    TlsError {
        flag: flag.to_string(),
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Which port a configuration is for: flags are named `--x` or `--peer-x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Peer,
}

impl Side {
    fn flag(self, name: &str) -> String {
        match self {
            Side::Client => format!("--{name}"),
            Side::Peer => format!("--peer-{name}"),
        }
    }
}

/// What one port's TLS needs from the configuration.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub trusted_ca: Option<PathBuf>,
    pub crl: Option<PathBuf>,
    pub client_cert_auth: bool,
    /// Peer port: the client certificate's common name must be this.
    pub allowed_cn: Option<String>,
    /// Peer port: the client certificate must be valid for this host name.
    pub allowed_hostname: Option<String>,
}

/// `(len, mtime)` of a file, to notice that it changed.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

fn read_certs(flag: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| err(flag, path, e))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| err(flag, path, format!("not a PEM certificate file: {e:?}")))?;
    if certs.is_empty() {
        return Err(err(flag, path, "no certificate in the file"));
    }
    Ok(certs)
}

fn read_key(flag: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| err(flag, path, e))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| err(flag, path, format!("no private key in the file: {e:?}")))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certified_key(side: Side, files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_flag = side.flag("cert-file");
    let key_flag = side.flag("key-file");
    let chain = read_certs(&cert_flag, &files.cert)?;
    let key = read_key(&key_flag, &files.key)?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| err(&key_flag, &files.key, format!("unusable private key: {e}")))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| {
        err(
            &key_flag,
            &files.key,
            format!(
                "does not match the certificate in {}: {e}",
                files.cert.display()
            ),
        )
    })?;
    Ok(Arc::new(ck))
}

/// The server certificate, re-read at a handshake when its files changed (rotation
/// without restart). A rotation that leaves the files unreadable keeps the old one.
pub struct ReloadingCert {
    side: Side,
    files: TlsFiles,
    current: Mutex<(Stamp, Stamp, Arc<CertifiedKey>)>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.files.cert)
            .finish()
    }
}

impl ReloadingCert {
    pub fn new(side: Side, files: &TlsFiles) -> Result<ReloadingCert, TlsError> {
        let ck = load_certified_key(side, files)?;
        Ok(ReloadingCert {
            side,
            files: files.clone(),
            current: Mutex::new((stamp(&files.cert), stamp(&files.key), ck)),
        })
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        let (c, k) = (stamp(&self.files.cert), stamp(&self.files.key));
        let mut cur = self.current.lock();
        if (c, k) != (cur.0, cur.1) {
            match load_certified_key(self.side, &self.files) {
                Ok(ck) => {
                    tracing::info!(cert = %self.files.cert.display(), "reloaded the TLS certificate");
                    *cur = (c, k, ck);
                }
                Err(e) => tracing::warn!("keeping the previous TLS certificate: {e}"),
            }
        }
        cur.2.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn build_verifier(side: Side, files: &TlsFiles) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let ca_flag = side.flag("trusted-ca-file");
    let ca = files.trusted_ca.as_ref().ok_or_else(|| {
        err(
            &ca_flag,
            Path::new(""),
            "client certificate authentication needs a trusted CA file",
        )
    })?;
    let mut roots = RootCertStore::empty();
    for c in read_certs(&ca_flag, ca)? {
        roots
            .add(c)
            .map_err(|e| err(&ca_flag, ca, format!("not a usable CA certificate: {e}")))?;
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    if let Some(crl) = &files.crl {
        let flag = match side {
            Side::Client => "--client-crl-file".to_string(),
            Side::Peer => "--peer-crl-file".to_string(),
        };
        let bytes = std::fs::read(crl).map_err(|e| err(&flag, crl, e))?;
        let crls: Vec<CertificateRevocationListDer<'static>> =
            CertificateRevocationListDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| err(&flag, crl, format!("not a PEM CRL file: {e:?}")))?;
        if crls.is_empty() {
            return Err(err(&flag, crl, "no CRL in the file"));
        }
        builder = builder.with_crls(crls);
    }
    builder
        .build()
        .map_err(|e| err(&ca_flag, ca, format!("cannot verify clients with it: {e}")))
}

/// Verifies client certificates against the trusted CA (and CRL), both re-read when their
/// files change; on the peer port also checks the allowed common name / host name.
pub struct ReloadingVerifier {
    side: Side,
    files: TlsFiles,
    current: Mutex<(Stamp, Stamp, Arc<dyn ClientCertVerifier>)>,
}

impl fmt::Debug for ReloadingVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingVerifier")
            .field("ca", &self.files.trusted_ca)
            .finish()
    }
}

impl ReloadingVerifier {
    pub fn new(side: Side, files: &TlsFiles) -> Result<ReloadingVerifier, TlsError> {
        let v = build_verifier(side, files)?;
        Ok(ReloadingVerifier {
            side,
            current: Mutex::new((Self::ca_stamp(files), Self::crl_stamp(files), v)),
            files: files.clone(),
        })
    }

    fn ca_stamp(files: &TlsFiles) -> Stamp {
        files.trusted_ca.as_deref().and_then(stamp)
    }

    fn crl_stamp(files: &TlsFiles) -> Stamp {
        files.crl.as_deref().and_then(stamp)
    }

    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        let (ca, crl) = (Self::ca_stamp(&self.files), Self::crl_stamp(&self.files));
        let mut cur = self.current.lock();
        if (ca, crl) != (cur.0, cur.1) {
            match build_verifier(self.side, &self.files) {
                Ok(v) => *cur = (ca, crl, v),
                Err(e) => tracing::warn!("keeping the previous client verifier: {e}"),
            }
        }
        cur.2.clone()
    }
}

impl ClientCertVerifier for ReloadingVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner()
            .verify_client_cert(end_entity, intermediates, now)?;
        if let Some(cn) = &self.files.allowed_cn {
            if common_name(end_entity).as_deref() != Some(cn.as_str()) {
                return Err(rustls::Error::General(format!(
                    "client certificate's common name is not the allowed {cn:?}"
                )));
            }
        }
        if let Some(host) = &self.files.allowed_hostname {
            if !cert_has_host(end_entity, host) {
                return Err(rustls::Error::General(format!(
                    "client certificate is not valid for the allowed host name {host:?}"
                )));
            }
        }
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

/// The subject common name of a DER certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// Whether a certificate names `host` among its DNS or IP subject alternative names.
fn cert_has_host(cert: &CertificateDer<'_>, host: &str) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return false;
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return false;
    };
    san.value.general_names.iter().any(|n| match n {
        x509_parser::extensions::GeneralName::DNSName(d) => d.eq_ignore_ascii_case(host),
        x509_parser::extensions::GeneralName::IPAddress(ip) => {
            host.parse::<std::net::IpAddr>().is_ok_and(|h| match h {
                std::net::IpAddr::V4(v4) => ip == &v4.octets(),
                std::net::IpAddr::V6(v6) => ip == &v6.octets(),
            })
        }
        _ => false,
    })
}

/// `--tls-min-version` / `--tls-max-version` values.
pub fn protocol_versions(
    min: &str,
    max: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: &str, flag: &str| match v {
        "" => Ok(None),
        "TLS1.2" => Ok(Some(12)),
        "TLS1.3" => Ok(Some(13)),
        "TLS1.0" | "TLS1.1" => Err(format!(
            "--{flag}={v} is not supported by chorus (TLS 1.2 and 1.3 only)"
        )),
        other => Err(format!(
            "unexpected TLS version {other:?} for --{flag} (TLS1.2, TLS1.3)"
        )),
    };
    let lo = rank(min, "tls-min-version")?.unwrap_or(12);
    let hi = rank(max, "tls-max-version")?.unwrap_or(13);
    if lo > hi {
        return Err(format!(
            "--tls-min-version {min} is above --tls-max-version {max}"
        ));
    }
    let mut out = Vec::new();
    if lo <= 12 && hi >= 12 {
        out.push(&rustls::version::TLS12);
    }
    if hi >= 13 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

/// The rustls cipher suites for Go's `--cipher-suites` names (TLS 1.2 suites; TLS 1.3
/// suites are not configurable, as in Go).
pub fn cipher_suites(names: &[String]) -> Result<Vec<rustls::SupportedCipherSuite>, String> {
    use rustls::crypto::ring::cipher_suite as cs;
    let known = |n: &str| -> Option<rustls::SupportedCipherSuite> {
        Some(match n {
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            }
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
                cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            }
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
            | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
                cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            }
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"
            | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
                cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            }
            _ => return None,
        })
    };
    names
        .iter()
        .map(|n| {
            known(n).ok_or_else(|| {
                format!("unsupported or insecure cipher suite {n:?} in --cipher-suites")
            })
        })
        .collect()
}

/// Protocol choices shared by both ports.
#[derive(Clone, Debug, Default)]
pub struct TlsPolicy {
    pub min_version: String,
    pub max_version: String,
    pub cipher_suites: Vec<String>,
}

fn provider_for(policy: &TlsPolicy) -> Result<Arc<CryptoProvider>, String> {
    let mut p = rustls::crypto::ring::default_provider();
    if !policy.cipher_suites.is_empty() {
        let mut suites = cipher_suites(&policy.cipher_suites)?;
        // TLS 1.3 suites are always on (Go does not make them configurable either).
        suites.extend(
            p.cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13)
                .copied(),
        );
        p.cipher_suites = suites;
    }
    Ok(Arc::new(p))
}

/// The server side of a port: certificate (reloaded on change), client verification,
/// ALPN for gRPC (h2) and HTTP/1.1.
pub fn server_config(
    side: Side,
    files: &TlsFiles,
    policy: &TlsPolicy,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let resolver = Arc::new(ReloadingCert::new(side, files).map_err(|e| e.to_string())?);
    let versions = protocol_versions(&policy.min_version, &policy.max_version)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider_for(policy)?)
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let builder = if files.client_cert_auth {
        let v = ReloadingVerifier::new(side, files).map_err(|e| e.to_string())?;
        builder.with_client_cert_verifier(Arc::new(v))
    } else {
        builder.with_no_client_auth()
    };
    let mut cfg = builder.with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The client side of peer connections: the peer CA to trust (or none: any certificate,
/// for `--peer-auto-tls`) and our certificate to present.
pub fn client_config(
    files: &TlsFiles,
    policy: &TlsPolicy,
    verify_server: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let versions = protocol_versions(&policy.min_version, &policy.max_version)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider_for(policy)?)
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let builder = match (&files.trusted_ca, verify_server) {
        (Some(ca), true) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs("--peer-trusted-ca-file", ca).map_err(|e| e.to_string())? {
                roots.add(c).map_err(|e| e.to_string())?;
            }
            builder.with_root_certificates(roots)
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider()))),
    };
    let chain = read_certs("--peer-cert-file", &files.cert).map_err(|e| e.to_string())?;
    let key = read_key("--peer-key-file", &files.key).map_err(|e| e.to_string())?;
    let mut cfg = builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("--peer-key-file {}: {e}", files.key.display()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// `--peer-auto-tls` without a peer CA: peers present self-signed certificates, which are
/// accepted as etcd does (encryption without authentication).
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
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

/// `--auto-tls` / `--peer-auto-tls`: a self-signed certificate for the listen hosts, kept
/// in `<data-dir>/fixtures/{client,peer}` like etcd (made once, reused on restart).
pub fn self_signed(dir: &Path, hosts: &[String]) -> Result<TlsFiles, String> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if !(cert.exists() && key.exists()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut names: Vec<String> = hosts.to_vec();
        if names.is_empty() {
            names.push("localhost".into());
        }
        let generated = rcgen::generate_simple_self_signed(names)
            .map_err(|e| format!("cannot generate a self-signed certificate: {e}"))?;
        std::fs::write(&cert, generated.cert.pem())
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        std::fs::write(&key, generated.key_pair.serialize_pem())
            .map_err(|e| format!("{}: {e}", key.display()))?;
    }
    Ok(TlsFiles {
        cert,
        key,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;

/// The TLS a member runs with, from its configuration.
#[derive(Default)]
pub struct MemberTls {
    /// Client port server side.
    pub client: Option<Arc<rustls::ServerConfig>>,
    /// Peer port server side.
    pub peer_server: Option<Arc<rustls::ServerConfig>>,
    /// How this member dials its peers.
    pub peer_client: Option<Arc<rustls::ClientConfig>>,
}

fn hosts_of(urls: &[crate::config::Url]) -> Vec<String> {
    let mut hosts: Vec<String> = urls
        .iter()
        .map(|u| u.hostname().to_string())
        .filter(|h| !h.is_empty() && h != "0.0.0.0" && h != "::")
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn files_of(info: &crate::config::TlsInfo) -> Option<TlsFiles> {
    if info.cert_file.is_empty() && info.key_file.is_empty() {
        return None;
    }
    let opt = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
    Some(TlsFiles {
        cert: PathBuf::from(&info.cert_file),
        key: PathBuf::from(&info.key_file),
        trusted_ca: opt(&info.trusted_ca_file),
        crl: opt(&info.crl_file),
        client_cert_auth: info.client_cert_auth,
        allowed_cn: (!info.allowed_cn.is_empty()).then(|| info.allowed_cn.clone()),
        allowed_hostname: (!info.allowed_hostname.is_empty())
            .then(|| info.allowed_hostname.clone()),
    })
}

impl MemberTls {
    /// Loads and checks every certificate the configuration names (errors name the file
    /// and the flag); `--auto-tls` / `--peer-auto-tls` make self-signed ones in the data dir.
    pub fn from_config(cfg: &crate::config::Config) -> Result<MemberTls, String> {
        let policy = TlsPolicy {
            min_version: cfg.tls_min_version.clone(),
            max_version: cfg.tls_max_version.clone(),
            cipher_suites: cfg.cipher_suites.clone(),
        };
        let mut out = MemberTls::default();
        let client = match files_of(&cfg.client_tls) {
            Some(f) => Some(f),
            None if cfg.client_tls.auto_tls => Some(self_signed(
                &cfg.data_dir.join("fixtures").join("client"),
                &hosts_of(&cfg.listen_client_urls),
            )?),
            None => None,
        };
        if let Some(files) = client {
            out.client = Some(server_config(Side::Client, &files, &policy)?);
        }
        let peer = match files_of(&cfg.peer_tls) {
            Some(f) => Some(f),
            None if cfg.peer_tls.auto_tls => Some(self_signed(
                &cfg.data_dir.join("fixtures").join("peer"),
                &hosts_of(&cfg.listen_peer_urls),
            )?),
            None => None,
        };
        if let Some(mut files) = peer {
            // Peers always present their certificate: with a peer CA configured, a member
            // whose certificate the CA did not sign can neither join nor send raft messages
            // (etcd requires --peer-client-cert-auth for that).
            files.client_cert_auth |= files.trusted_ca.is_some();
            out.peer_server = Some(server_config(Side::Peer, &files, &policy)?);
            let verify = files.trusted_ca.is_some();
            out.peer_client = Some(client_config(&files, &policy, verify)?);
        }
        Ok(out)
    }
}
