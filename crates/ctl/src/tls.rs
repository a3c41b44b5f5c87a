//! TLS settings from etcdctl's flags (v3 `--cacert/--cert/--key`, v2
//! `--ca-file/--cert-file/--key-file`) with etcd's `transport.TLSInfo` checks and error
//! texts, and TLS failures rendered as Go's `crypto/tls` and `crypto/x509` word them.

use std::sync::Arc;

use chorus_client::tls::{ALPN_H2, ALPN_HTTP1};
use chorus_client::TlsOptions;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError};

/// PEM file paths as given (empty: not given).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

impl TlsFiles {
    /// Whether any file was given (etcdctl then builds a TLS configuration).
    pub fn any(&self) -> bool {
        !(self.ca.is_empty() && self.cert.is_empty() && self.key.is_empty())
    }

    /// `TLSInfo.ClientConfig`: both or neither of cert and key, files readable, PEM
    /// parseable. `Err` is etcd's message. A CA file without certificates is no error
    /// (Go's pool is just empty, and every server is then refused).
    pub fn options(&self) -> Result<TlsOptions, String> {
        if self.cert.is_empty() != self.key.is_empty() {
            return Err(format!(
                "KeyFile and CertFile must both be present[key: {}, cert: {}]",
                self.key, self.cert
            ));
        }
        let read = |path: &str| -> Result<Option<Vec<u8>>, String> {
            if path.is_empty() {
                return Ok(None);
            }
            std::fs::read(path)
                .map(Some)
                .map_err(|e| format!("open {path}: {}", crate::ctl::io_text(&e)))
        };
        let opts = TlsOptions {
            cert_pem: read(&self.cert)?,
            key_pem: read(&self.key)?,
            ca_pem: read(&self.ca)?,
            ..TlsOptions::default()
        };
        if let Some(cert) = &opts.cert_pem {
            if CertificateDer::pem_slice_iter(cert).next().is_none() {
                return Err("tls: failed to find any PEM data in certificate input".into());
            }
        }
        if let Some(key) = &opts.key_pem {
            if PrivateKeyDer::from_pem_slice(key).is_err() {
                return Err("tls: failed to find any PEM data in key input".into());
            }
        }
        Ok(opts)
    }
}

/// The rustls configuration for gRPC (`h2`) or HTTP/1 from `opts`; `Err` is the text.
pub fn config(opts: &TlsOptions, http1: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    let alpn: &[&[u8]] = if http1 { &[ALPN_HTTP1] } else { &[ALPN_H2] };
    opts.client_config(alpn).map_err(|e| match e {
        chorus_client::Error::Tls(text) if text == chorus_client::tls::KEY_MISMATCH => {
            "tls: private key does not match public key".to_owned()
        }
        chorus_client::Error::Tls(text) => text,
        other => other.to_string(),
    })
}

/// `err` and its causes, an `io::Error`'s inner error included (tokio-rustls puts the
/// rustls error there).
pub fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(err);
    // The chain is short (status -> transport -> hyper -> io -> rustls); 16 bounds it.
    while let Some(e) = cur.filter(|_| out.len() < 16) {
        out.push(e);
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    out
}

/// The rustls error among `err`'s causes.
pub fn rustls_cause<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    causes(err)
        .into_iter()
        .find_map(|e| e.downcast_ref::<rustls::Error>())
}

/// Whether the connection was refused (nothing listens).
pub fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    causes(err).into_iter().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

/// A TLS failure as Go's TLS client reports it.
pub fn go_text(err: &rustls::Error) -> String {
    match err {
        rustls::Error::AlertReceived(alert) => format!("remote error: tls: {}", alert_text(*alert)),
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                "x509: certificate signed by unknown authority".into()
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                "x509: certificate has expired or is not yet valid".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "x509: certificate is not valid for the server's name".into()
            }
            other => format!("x509: {other:?}"),
        },
        other => other.to_string(),
    }
}

/// Go's `alert.String()` texts.
fn alert_text(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::CloseNotify => "close notify",
        AlertDescription::UnexpectedMessage => "unexpected message",
        AlertDescription::BadRecordMac => "bad record MAC",
        AlertDescription::HandshakeFailure => "handshake failure",
        AlertDescription::BadCertificate => "bad certificate",
        AlertDescription::UnsupportedCertificate => "unsupported certificate",
        AlertDescription::CertificateRevoked => "revoked certificate",
        AlertDescription::CertificateExpired => "expired certificate",
        AlertDescription::CertificateUnknown => "unknown certificate",
        AlertDescription::IllegalParameter => "illegal parameter",
        AlertDescription::UnknownCA => "unknown certificate authority",
        AlertDescription::AccessDenied => "access denied",
        AlertDescription::DecodeError => "error decoding message",
        AlertDescription::DecryptError => "error decrypting message",
        AlertDescription::ProtocolVersion => "protocol version not supported",
        AlertDescription::InsufficientSecurity => "insufficient security level",
        AlertDescription::InternalError => "internal error",
        AlertDescription::UserCanceled => "user canceled",
        AlertDescription::NoRenegotiation => "no renegotiation",
        AlertDescription::CertificateRequired => "certificate required",
        AlertDescription::NoApplicationProtocol => "no application protocol",
        other => return format!("alert({})", u8::from(other)),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_and_key_go_together_as_etcd_says() {
        let files = TlsFiles {
            cert: "/c.pem".into(),
            ..TlsFiles::default()
        };
        assert_eq!(
            files.options().unwrap_err(),
            "KeyFile and CertFile must both be present[key: , cert: /c.pem]"
        );
        let files = TlsFiles {
            ca: "/nonexistent/ca.pem".into(),
            ..TlsFiles::default()
        };
        assert_eq!(
            files.options().unwrap_err(),
            "open /nonexistent/ca.pem: no such file or directory"
        );
    }

    #[test]
    fn go_texts_of_tls_failures() {
        assert_eq!(
            go_text(&rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            )),
            "remote error: tls: certificate required"
        );
        assert_eq!(
            go_text(&rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            "x509: certificate signed by unknown authority"
        );
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::BadCertificate),
        );
        assert!(matches!(
            rustls_cause(&io),
            Some(rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
            ))
        ));
    }
}
