//! Certificates Go's `crypto/x509` accepts and webpki does not: a certificate that is
//! itself in the trusted pool (typically a self-signed one with `CA:TRUE`, used as the
//! trusted CA, the server and the client certificate at once). Go's `Verify` checks the
//! leaf's validity period, then accepts it as a chain of one when the pool contains
//! it; the extended key usage must still allow the purpose. Also Go's host name
//! matching (`VerifyHostname`: IP SANs, DNS SANs with `*.` wildcards).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use x509_parser::extensions::GeneralName;

use super::crl::ip_from_bytes;

/// What a certificate is checked for (Go's `ExtKeyUsage` in `VerifyOptions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    ClientAuth,
    ServerAuth,
}

/// Go's acceptance of `cert` as a trusted root itself: it must be one of `roots`, valid
/// at `now`, and its extended key usage (if any) must allow `purpose`. Err when it is
/// not in the pool (the caller keeps webpki's error) or fails a check.
pub fn accept_pooled(
    cert: &CertificateDer<'_>,
    roots: &[CertificateDer<'static>],
    now: UnixTime,
    purpose: Purpose,
) -> Result<(), Option<rustls::Error>> {
    if !roots.iter().any(|r| r.as_ref() == cert.as_ref()) {
        return Err(None);
    }
    let bad = |e: CertificateError| Err(Some(rustls::Error::InvalidCertificate(e)));
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return bad(CertificateError::BadEncoding);
    };
    let t = now.as_secs() as i64;
    let validity = parsed.validity();
    if t > validity.not_after.timestamp() {
        return bad(CertificateError::ExpiredContext {
            time: now,
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                validity.not_after.timestamp().max(0) as u64,
            )),
        });
    }
    if t < validity.not_before.timestamp() {
        return bad(CertificateError::NotValidYet);
    }
    if let Ok(Some(eku)) = parsed.extended_key_usage() {
        let eku = eku.value;
        let allowed = eku.any
            || match purpose {
                Purpose::ClientAuth => eku.client_auth,
                Purpose::ServerAuth => eku.server_auth,
            };
        if !allowed {
            return bad(CertificateError::InvalidPurpose);
        }
    }
    Ok(())
}

/// The subject common name of a DER certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// Go's `Certificate.VerifyHostname`: an IP must be an IP SAN; a name must match a DNS
/// SAN, case-insensitively, a leading `*.` standing for one label.
pub fn cert_has_host(cert: &CertificateDer<'_>, host: &str) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return false;
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    san.value.general_names.iter().any(|n| match (n, ip) {
        (GeneralName::IPAddress(b), Some(ip)) => ip_from_bytes(b) == Some(ip),
        (GeneralName::DNSName(d), None) => dns_matches(d, host),
        _ => false,
    })
}

fn dns_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
            None => false,
        };
    }
    pattern.eq_ignore_ascii_case(host)
}

/// etcd's `--peer-cert-allowed-cn` / `--peer-cert-allowed-hostname` (and the client
/// port's `--client-cert-allowed-hostname`): Go's `VerifyPeerCertificate` of `baseConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedNames {
    pub cns: Vec<String>,
    pub hostnames: Vec<String>,
}

impl AllowedNames {
    /// The common name is one of the allowed ones, or the certificate is valid for one
    /// of the allowed host names (no names: any certificate).
    pub fn allow(&self, cert: &CertificateDer<'_>) -> bool {
        if !self.cns.is_empty() {
            return common_name(cert).is_some_and(|cn| self.cns.contains(&cn));
        }
        self.hostnames.is_empty() || self.hostnames.iter().any(|h| cert_has_host(cert, h))
    }
}

/// The peer dialer's check of a peer's server certificate: webpki against the peer CA,
/// or Go's acceptance of a certificate that is in the pool itself (host name checked);
/// then the allowed names, which etcd applies to the peer it dials as well (its
/// `baseConfig` serves both directions).
#[derive(Debug)]
pub struct PooledServerVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    roots: Vec<CertificateDer<'static>>,
    allowed: AllowedNames,
}

impl PooledServerVerifier {
    pub fn new(
        roots: Vec<CertificateDer<'static>>,
        allowed: AllowedNames,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<PooledServerVerifier, rustls::Error> {
        let mut store = RootCertStore::empty();
        for c in &roots {
            store.add(c.clone())?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(PooledServerVerifier {
            webpki,
            roots,
            allowed,
        })
    }

    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let err =
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, server_name, &[], now)
            {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
        match accept_pooled(end_entity, &self.roots, now, Purpose::ServerAuth) {
            Err(None) => Err(err),
            Err(Some(e)) => Err(e),
            Ok(()) if cert_has_host(end_entity, &server_name.to_str()) => Ok(()),
            Ok(()) => Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            )),
        }
    }
}

impl ServerCertVerifier for PooledServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, server_name, now)?;
        if !self.allowed.allow(end_entity) {
            // Go sends bad_certificate for a VerifyPeerCertificate error.
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_host_name_matching() {
        assert!(dns_matches("localhost", "LOCALHOST"));
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("example.com", "a.example.com"));
    }
}
