//! The server side of a TLS handshake, and etcd's log line when one is refused:
//!
//! ```text
//! rejected connection from "127.0.0.1:5555" (error "tls: client didn't provide a certificate", ServerName "")
//! ```
//! (etcd's `logTLSHandshakeFailure`; the error is the text Go's `crypto/tls` gives for
//! the same refusal, and a revoked certificate adds its `IPAddresses` and `DNSNames`).

use std::sync::Arc;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use super::crl::Revoked;

/// A client that never finishes its handshake does not hold a connection slot forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the handshake; a refused or failed one is logged as etcd logs it and gives None.
pub async fn accept<I>(io: I, peer: &str, config: Arc<rustls::ServerConfig>) -> Option<TlsStream<I>>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = async {
        let acceptor = rustls::server::Acceptor::default();
        let start = tokio_rustls::LazyConfigAcceptor::new(acceptor, io)
            .await
            .map_err(|e| (String::new(), e))?;
        let server_name = start.client_hello().server_name().unwrap_or("").to_string();
        start
            .into_stream(config)
            .await
            .map_err(|e| (server_name, e))
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err((server_name, e))) => {
            log_rejected(peer, &server_name, &e);
            None
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// etcd's line (3.4's text with `--logger=capnslog`, 3.5's fields with zap), then
/// chorus's own with rustls's reason (which Go's text may not carry).
fn log_rejected(peer: &str, server_name: &str, e: &std::io::Error) {
    let revoked = rustls_error(e).and_then(|r| match r {
        rustls::Error::InvalidCertificate(CertificateError::Other(o)) => {
            o.0.downcast_ref::<Revoked>().cloned()
        }
        _ => None,
    });
    let error = go_text(e);
    if chorus_log::active_format() == chorus_log::Format::Capnslog {
        log_rejected_34(peer, server_name, &error, revoked.as_ref());
    } else {
        log_rejected_35(peer, server_name, &error, revoked.as_ref());
    }
    tracing::info!(%peer, "TLS handshake refused: {e}");
}

/// etcd 3.4's capnslog line: `rejected connection from "a:p" (error "...", ServerName "")`.
fn log_rejected_34(peer: &str, server_name: &str, error: &str, revoked: Option<&Revoked>) {
    let q = |s: &str| format!("{s:?}");
    match revoked {
        Some(r) => tracing::warn!(
            "rejected connection from {} (error {}, ServerName {}, IPAddresses {}, DNSNames {})",
            q(peer),
            q(error),
            q(server_name),
            go_list(&r.ip_addresses),
            go_list(&r.dns_names),
        ),
        None => tracing::warn!(
            "rejected connection from {} (error {}, ServerName {})",
            q(peer),
            q(error),
            q(server_name)
        ),
    }
}

/// etcd 3.5's zap line: `rejected connection` with `remote-addr`, `server-name`, the
/// certificate's `ip-addresses` and `dns-names` when there was one, and `error`.
fn log_rejected_35(peer: &str, server_name: &str, error: &str, revoked: Option<&Revoked>) {
    match revoked {
        Some(r) => tracing::warn!(
            remote_addr = peer,
            server_name,
            ip_addresses = ?chorus_log::Strings(&r.ip_addresses),
            dns_names = ?chorus_log::Strings(&r.dns_names),
            error,
            "rejected connection"
        ),
        None => tracing::warn!(
            remote_addr = peer,
            server_name,
            error,
            "rejected connection"
        ),
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The error text Go's TLS server (go1.19, etcd 3.4.23) gives for the same refusal.
pub fn go_text(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return "EOF".to_string();
    }
    let Some(err) = rustls_error(e) else {
        return e.to_string();
    };
    let verify = |why: &str| format!("tls: failed to verify client certificate: x509: {why}");
    match err {
        rustls::Error::NoCertificatesPresented => {
            "tls: client didn't provide a certificate".to_string()
        }
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                verify("certificate signed by unknown authority")
            }
            CertificateError::Expired | CertificateError::NotValidYet => {
                verify("certificate has expired or is not yet valid")
            }
            CertificateError::ExpiredContext { time, not_after } => verify(&format!(
                "certificate has expired or is not yet valid: current time {} is after {}",
                rfc3339(time.as_secs()),
                rfc3339(not_after.as_secs())
            )),
            CertificateError::NotValidYetContext { time, not_before } => verify(&format!(
                "certificate has expired or is not yet valid: current time {} is before {}",
                rfc3339(time.as_secs()),
                rfc3339(not_before.as_secs())
            )),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                verify("certificate specifies an incompatible key usage")
            }
            CertificateError::Other(o) => o.0.to_string(),
            other => format!("tls: {other:?}"),
        },
        rustls::Error::General(text) => text.clone(),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateHandshakeMessage { .. } => {
            "tls: first record does not look like a TLS handshake".to_string()
        }
        rustls::Error::AlertReceived(alert) => format!("remote error: tls: {}", go_alert(*alert)),
        rustls::Error::NoApplicationProtocol => {
            "tls: client requested unsupported application protocols".to_string()
        }
        other => format!("tls: {other}"),
    }
}

/// Go's names of TLS alerts (`crypto/tls/alert.go`).
fn go_alert(a: AlertDescription) -> String {
    match a {
        AlertDescription::BadCertificate => "bad certificate",
        AlertDescription::UnknownCA => "unknown certificate authority",
        AlertDescription::CertificateExpired => "expired certificate",
        AlertDescription::CertificateRevoked => "revoked certificate",
        AlertDescription::CertificateUnknown => "unknown certificate",
        AlertDescription::HandshakeFailure => "handshake failure",
        AlertDescription::ProtocolVersion => "protocol version not supported",
        AlertDescription::DecryptError => "error decrypting message",
        AlertDescription::InternalError => "internal error",
        other => return format!("{other:?}"),
    }
    .to_string()
}

/// Seconds since 1970 as Go's `time.Time.Format(time.RFC3339)` in UTC.
pub fn rfc3339(secs: u64) -> String {
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(e: rustls::Error) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn go_texts_of_common_refusals() {
        assert_eq!(
            go_text(&io(rustls::Error::NoCertificatesPresented)),
            "tls: client didn't provide a certificate"
        );
        assert_eq!(
            go_text(&io(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))),
            "tls: failed to verify client certificate: x509: certificate signed by unknown authority"
        );
        assert_eq!(
            go_text(&io(rustls::Error::General(
                "client certificate authentication failed".into()
            ))),
            "client certificate authentication failed"
        );
        assert_eq!(go_text(&std::io::ErrorKind::UnexpectedEof.into()), "EOF");
    }

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(978_307_200), "2001-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn go_quoted_lists() {
        assert_eq!(go_list(&[]), "[]");
        assert_eq!(
            go_list(&["127.0.0.1".into(), "::1".into()]),
            r#"["127.0.0.1" "::1"]"#
        );
    }
}
