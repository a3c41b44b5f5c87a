//! TLS for the client and peer ports (rustls, no OpenSSL).
//!
//! ```text
//!  handshake ─► ReloadingCert        cert/key files re-read when their size or mtime changes
//!            └► ReloadingVerifier    trusted CA + CRL re-read likewise; client certificate
//!                                    required with --client-cert-auth / --peer-client-cert-auth
//!                                    (trust.rs: a certificate in the pool itself is accepted,
//!                                    as Go does); then --client-cert-allowed-hostname /
//!                                    --peer-cert-allowed-cn / -hostname; then the CRL
//!                                    (crl.rs: PEM or DER, by serial, as etcd's checkCRL)
//!  accept.rs                         the handshake; a refusal is logged as etcd logs it
//! ```
//! Errors at start-up name the file and the flag, e.g. `--cert-file /x/c.pem: no such file`.
//! The common name of a verified client certificate is the request's user identity.

pub mod accept;
pub mod crl;
pub mod pki;
pub mod trust;

pub use trust::common_name;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use chorus_client::tls::AcceptAnyServerCert;
use parking_lot::Mutex;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
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

/// Why the TLS configuration of a member cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error(transparent)]
    File(#[from] TlsError),
    /// `--tls-min-version`, `--tls-max-version`, `--cipher-suites`.
    #[error("{0}")]
    Policy(String),
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    #[error("{flag} {path}: {source}")]
    PeerKey {
        flag: &'static str,
        path: String,
        source: rustls::Error,
    },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// etcd's `SelfCert` with `--self-signed-cert-validity=0`.
    #[error("selfSignedCertValidity is invalid,it should be greater than 0")]
    Validity,
    /// etcd's `baseConfig`: `--client-cert-file` / `--client-key-file` (or the peer
    /// ones) given alone.
    #[error("ClientKeyFile and ClientCertFile must both be present or both absent: key: {key}, cert: {cert}]")]
    ClientPair { key: String, cert: String },
    /// etcd's `baseConfig`: an allowed common name and host name at once.
    #[error("{0}")]
    Exclusive(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsConfigError + '_ {
    move |source| TlsConfigError::Io {
        path: path.display().to_string(),
        source,
    }
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
    /// Peer port: the client certificate's common name must be one of these.
    pub allowed_cns: Vec<String>,
    /// The client certificate must be valid for one of these host names
    /// (`--client-cert-allowed-hostname`, `--peer-cert-allowed-hostname`).
    pub allowed_hostnames: Vec<String>,
    /// `--client-cert-file` / `--peer-client-cert-file` and their keys: what this member
    /// presents when it dials as a client (else `cert` and `key`).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    fn allowed_names(&self) -> trust::AllowedNames {
        trust::AllowedNames {
            cns: self.allowed_cns.clone(),
            hostnames: self.allowed_hostnames.clone(),
        }
    }
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
    load_certified_key_as(&side.flag("cert-file"), &side.flag("key-file"), files)
}

fn load_certified_key_as(
    cert_flag: &str,
    key_flag: &str,
    files: &TlsFiles,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_certs(cert_flag, &files.cert)?;
    let key = read_key(key_flag, &files.key)?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| err(key_flag, &files.key, format!("unusable private key: {e}")))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| {
        err(
            key_flag,
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

/// The trusted CA certificates of `--trusted-ca-file` / `--peer-trusted-ca-file`.
fn read_roots(flag: &str, ca: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = read_certs(flag, ca)?;
    let mut store = RootCertStore::empty();
    for c in &certs {
        store
            .add(c.clone())
            .map_err(|e| err(flag, ca, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(certs)
}

/// One reading of the CA and CRL files: webpki's chain check, the pool (for Go's
/// acceptance of a pooled certificate) and the revoked serials.
struct Verifier {
    webpki: Arc<dyn ClientCertVerifier>,
    roots: Vec<CertificateDer<'static>>,
    crl: Option<crl::RevocationList>,
}

fn build_verifier(side: Side, files: &TlsFiles) -> Result<Verifier, TlsError> {
    let ca_flag = side.flag("trusted-ca-file");
    let ca = files.trusted_ca.as_ref().ok_or_else(|| {
        err(
            &ca_flag,
            Path::new(""),
            "client certificate authentication needs a trusted CA file",
        )
    })?;
    let roots = read_roots(&ca_flag, ca)?;
    let mut store = RootCertStore::empty();
    for c in &roots {
        let _ = store.add(c.clone());
    }
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider())
        .build()
        .map_err(|e| err(&ca_flag, ca, format!("cannot verify clients with it: {e}")))?;
    let crl = match &files.crl {
        Some(path) => {
            let flag = match side {
                Side::Client => "--client-crl-file",
                Side::Peer => "--peer-crl-file",
            };
            Some(crl::RevocationList::read(path).map_err(|e| err(flag, path, e))?)
        }
        None => None,
    };
    Ok(Verifier { webpki, roots, crl })
}

impl Verifier {
    /// webpki's chain check, or Go's acceptance of a certificate that is in the pool.
    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let webpki = match self
            .webpki
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        match trust::accept_pooled(end_entity, &self.roots, now, trust::Purpose::ClientAuth) {
            Ok(()) => Ok(()),
            Err(None) => Err(webpki),
            Err(Some(e)) => Err(e),
        }
    }

    /// etcd's `checkCRL` over every certificate the client sent.
    fn check_revoked(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        let Some(crl) = &self.crl else {
            return Ok(());
        };
        let chain: Vec<&CertificateDer<'_>> =
            std::iter::once(end_entity).chain(intermediates).collect();
        crl.check(&chain).map_err(|revoked| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                Arc::new(revoked),
            )))
        })
    }
}

/// Verifies client certificates against the trusted CA (and CRL), both re-read when their
/// files change; then the allowed common names / host names.
pub struct ReloadingVerifier {
    side: Side,
    files: TlsFiles,
    current: Mutex<(Stamp, Stamp, Arc<Verifier>)>,
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
            current: Mutex::new((Self::ca_stamp(files), Self::crl_stamp(files), Arc::new(v))),
            files: files.clone(),
        })
    }

    fn ca_stamp(files: &TlsFiles) -> Stamp {
        files.trusted_ca.as_deref().and_then(stamp)
    }

    fn crl_stamp(files: &TlsFiles) -> Stamp {
        files.crl.as_deref().and_then(stamp)
    }

    fn inner(&self) -> Arc<Verifier> {
        let (ca, crl) = (Self::ca_stamp(&self.files), Self::crl_stamp(&self.files));
        let mut cur = self.current.lock();
        if (ca, crl) != (cur.0, cur.1) {
            match build_verifier(self.side, &self.files) {
                Ok(v) => *cur = (ca, crl, Arc::new(v)),
                Err(e) => tracing::warn!("keeping the previous client verifier: {e}"),
            }
        }
        cur.2.clone()
    }

    /// etcd's `VerifyPeerCertificate`: the common name is one of the allowed ones, or
    /// the certificate is valid for one of the allowed host names.
    fn check_allowed(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if self.files.allowed_names().allow(end_entity) {
            Ok(())
        } else {
            Err(rustls::Error::General(
                "client certificate authentication failed".into(),
            ))
        }
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
        let v = self.inner();
        v.verify_chain(end_entity, intermediates, now)?;
        self.check_allowed(end_entity)?;
        v.check_revoked(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner()
            .webpki
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner()
            .webpki
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().webpki.supported_verify_schemes()
    }
}

/// `--tls-min-version` / `--tls-max-version` values.
pub fn protocol_versions(
    min: &str,
    max: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsConfigError> {
    let rank = |v: &str, flag: &str| match v {
        "" => Ok(None),
        "TLS1.2" => Ok(Some(12)),
        "TLS1.3" => Ok(Some(13)),
        "TLS1.0" | "TLS1.1" => Err(TlsConfigError::Policy(format!(
            "--{flag}={v} is not supported by chorus (TLS 1.2 and 1.3 only)"
        ))),
        other => Err(TlsConfigError::Policy(format!(
            "unexpected TLS version {other:?} for --{flag} (TLS1.2, TLS1.3)"
        ))),
    };
    let lo = rank(min, "tls-min-version")?.unwrap_or(12);
    let hi = rank(max, "tls-max-version")?.unwrap_or(13);
    if lo > hi {
        return Err(TlsConfigError::Policy(format!(
            "--tls-min-version {min} is above --tls-max-version {max}"
        )));
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
pub fn cipher_suites(
    names: &[String],
) -> Result<Vec<rustls::SupportedCipherSuite>, TlsConfigError> {
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
                TlsConfigError::Policy(format!(
                    "unsupported or insecure cipher suite {n:?} in --cipher-suites"
                ))
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

fn provider_for(policy: &TlsPolicy) -> Result<Arc<CryptoProvider>, TlsConfigError> {
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
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let resolver = Arc::new(ReloadingCert::new(side, files)?);
    let versions = protocol_versions(&policy.min_version, &policy.max_version)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider_for(policy)?)
        .with_protocol_versions(&versions)?;
    let builder = if files.client_cert_auth {
        let v = ReloadingVerifier::new(side, files)?;
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
) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let versions = protocol_versions(&policy.min_version, &policy.max_version)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider_for(policy)?)
        .with_protocol_versions(&versions)?;
    let builder = match (&files.trusted_ca, verify_server) {
        (Some(ca), true) => {
            let roots = read_roots("--peer-trusted-ca-file", ca)?;
            let verifier =
                trust::PooledServerVerifier::new(roots, files.allowed_names(), provider())?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider()))),
    };
    // etcd 3.5's --peer-client-cert-file: the certificate presented when dialing.
    let (cert_flag, key_flag, cert, key) = match (&files.client_cert, &files.client_key) {
        (Some(c), Some(k)) => ("--peer-client-cert-file", "--peer-client-key-file", c, k),
        _ => (
            "--peer-cert-file",
            "--peer-key-file",
            &files.cert,
            &files.key,
        ),
    };
    let chain = read_certs(cert_flag, cert)?;
    let key_der = read_key(key_flag, key)?;
    let mut cfg = builder
        .with_client_auth_cert(chain, key_der)
        .map_err(|source| TlsConfigError::PeerKey {
            flag: key_flag,
            path: key.display().to_string(),
            source,
        })?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// `--auto-tls` / `--peer-auto-tls`: a self-signed certificate for the listen hosts, kept
/// in `<data-dir>/fixtures/{client,peer}` like etcd (made once, reused on restart).
pub fn self_signed(
    dir: &Path,
    hosts: &[String],
    validity_years: u64,
) -> Result<TlsFiles, TlsConfigError> {
    if validity_years == 0 {
        return Err(TlsConfigError::Validity);
    }
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if !(cert.exists() && key.exists()) {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let (params, key_pair) = self_signed_params(hosts, validity_years)?;
        let generated = params.self_signed(&key_pair)?;
        std::fs::write(&cert, generated.pem()).map_err(io_error(&cert))?;
        std::fs::write(&key, key_pair.serialize_pem()).map_err(io_error(&key))?;
    }
    Ok(TlsFiles {
        cert,
        key,
        ..Default::default()
    })
}

/// etcd's `SelfCert` template: organization `etcd`, valid from now for `years` × 365
/// days (to the day), server authentication, the hosts as IP or DNS names.
fn self_signed_params(
    hosts: &[String],
    years: u64,
) -> Result<(rcgen::CertificateParams, rcgen::KeyPair), rcgen::Error> {
    let mut names: Vec<String> = hosts.to_vec();
    if names.is_empty() {
        names.push("localhost".into());
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "etcd");
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let today = (now / 86_400) as i64;
    let day = |days: i64| {
        let (y, m, d) = accept::civil_from_days(days);
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    params.not_before = day(today);
    params.not_after = day(today.saturating_add(years.min(10_000) as i64 * 365));
    Ok((params, rcgen::KeyPair::generate()?))
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

fn hosts_of(urls: &[chorus_config::Url]) -> Vec<String> {
    let mut hosts: Vec<String> = urls
        .iter()
        .map(|u| u.hostname().to_string())
        .filter(|h| !h.is_empty() && h != "0.0.0.0" && h != "::")
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn files_of(info: &chorus_config::TlsInfo) -> Option<TlsFiles> {
    if info.cert_file.is_empty() && info.key_file.is_empty() {
        return None;
    }
    let opt = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
    let names = |v: &[String]| v.iter().filter(|s| !s.is_empty()).cloned().collect();
    Some(TlsFiles {
        cert: PathBuf::from(&info.cert_file),
        key: PathBuf::from(&info.key_file),
        trusted_ca: opt(&info.trusted_ca_file),
        crl: opt(&info.crl_file),
        client_cert_auth: info.client_cert_auth,
        allowed_cns: names(&info.allowed_cns),
        allowed_hostnames: names(&info.allowed_hostnames),
        client_cert: opt(&info.client_cert_file),
        client_key: opt(&info.client_key_file),
    })
}

/// etcd's `baseConfig` checks: the client certificate pair complete and loadable, and
/// allowed common names and host names not both given.
fn check_base(side: Side, files: &TlsFiles) -> Result<(), TlsConfigError> {
    let shown = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    match (shown(&files.client_cert), shown(&files.client_key)) {
        (Some(_), Some(_)) => {
            let (c, k) = (side.flag("client-cert-file"), side.flag("client-key-file"));
            let files = TlsFiles {
                cert: files.client_cert.clone().unwrap_or_default(),
                key: files.client_key.clone().unwrap_or_default(),
                ..TlsFiles::default()
            };
            load_certified_key_as(&c, &k, &files)?;
        }
        (None, None) => {}
        (cert, key) => {
            return Err(TlsConfigError::ClientPair {
                key: key.unwrap_or_default(),
                cert: cert.unwrap_or_default(),
            })
        }
    }
    let (cns, hosts) = (&files.allowed_cns, &files.allowed_hostnames);
    if cns.is_empty() || hosts.is_empty() {
        return Ok(());
    }
    let go_list = |v: &[String]| {
        let q: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", q.join(" "))
    };
    Err(TlsConfigError::Exclusive(
        if cns.len() == 1 && hosts.len() == 1 {
            format!(
                "AllowedCN and AllowedHostname are mutually exclusive (cn={:?}, hostname={:?})",
                cns[0], hosts[0]
            )
        } else {
            format!(
                "AllowedCNs and AllowedHostnames are mutually exclusive (cns={}, hostnames={})",
                go_list(cns),
                go_list(hosts)
            )
        },
    ))
}

impl MemberTls {
    /// Loads and checks every certificate the configuration names (errors name the file
    /// and the flag); `--auto-tls` / `--peer-auto-tls` make self-signed ones in the data dir.
    pub fn from_config(cfg: &chorus_config::Config) -> Result<MemberTls, TlsConfigError> {
        let policy = TlsPolicy {
            min_version: cfg.tls_min_version.clone(),
            max_version: cfg.tls_max_version.clone(),
            cipher_suites: cfg.cipher_suites.clone(),
        };
        let mut out = MemberTls::default();
        let fixtures = cfg.data_dir.join("fixtures");
        let validity = cfg.self_signed_cert_validity;
        // Peers first, as etcd configures its peer listeners before the client ones.
        let peer = match files_of(&cfg.peer_tls) {
            Some(f) => Some(f),
            None if cfg.peer_tls.auto_tls => Some(self_signed(
                &fixtures.join("peer"),
                &hosts_of(&cfg.listen_peer_urls),
                validity,
            )?),
            None => None,
        };
        if let Some(mut files) = peer {
            check_base(Side::Peer, &files)?;
            // Peers always present their certificate: with a peer CA configured, a member
            // whose certificate the CA did not sign can neither join nor send raft messages
            // (etcd requires --peer-client-cert-auth for that).
            files.client_cert_auth |= files.trusted_ca.is_some();
            out.peer_server = Some(server_config(Side::Peer, &files, &policy)?);
            let verify = files.trusted_ca.is_some();
            out.peer_client = Some(client_config(&files, &policy, verify)?);
        }
        let client = match files_of(&cfg.client_tls) {
            Some(f) => Some(f),
            None if cfg.client_tls.auto_tls => Some(self_signed(
                &fixtures.join("client"),
                &hosts_of(&cfg.listen_client_urls),
                validity,
            )?),
            None => None,
        };
        if let Some(files) = client {
            check_base(Side::Client, &files)?;
            out.client = Some(server_config(Side::Client, &files, &policy)?);
        }
        Ok(out)
    }
}
