//! `--client-crl-file` / `--peer-crl-file` as etcd reads them (`checkCRL`): a CRL in
//! PEM or DER form (Go's `x509.ParseCRL`), and a certificate chain is refused when any
//! certificate the client sent has a serial number the CRL lists. As in etcd, the
//! serial decides, whoever issued the CRL.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};

/// Why a CRL file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("{0}")]
    Read(std::io::Error),
    #[error("not a PEM or DER certificate revocation list: {0}")]
    Parse(String),
    #[error("no CRL in the file")]
    Empty,
}

/// The serial numbers a CRL file revokes (big-endian, without leading zero bytes, as
/// Go's `big.Int.Bytes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationList {
    serials: Vec<Vec<u8>>,
}

/// A refused certificate: the error text is etcd's, the names go to the log line.
#[derive(Clone, Debug, thiserror::Error)]
#[error("transport: certificate serial {serial_hex} revoked")]
pub struct Revoked {
    pub serial_hex: String,
    pub ip_addresses: Vec<String>,
    pub dns_names: Vec<String>,
}

fn trim_serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw[start..].to_vec()
}

impl RevocationList {
    /// Reads a PEM (`-----BEGIN X509 CRL-----`) or DER CRL file.
    pub fn read(path: &Path) -> Result<RevocationList, CrlError> {
        let bytes = std::fs::read(path).map_err(CrlError::Read)?;
        Self::parse(&bytes)
    }

    pub fn parse(bytes: &[u8]) -> Result<RevocationList, CrlError> {
        let pem: Vec<CertificateRevocationListDer<'static>> =
            CertificateRevocationListDer::pem_slice_iter(bytes)
                .filter_map(Result::ok)
                .collect();
        let ders: Vec<&[u8]> = if pem.is_empty() {
            if bytes.starts_with(b"-----BEGIN") {
                return Err(CrlError::Empty);
            }
            vec![bytes]
        } else {
            pem.iter().map(|c| c.as_ref()).collect()
        };
        let mut serials = Vec::new();
        for der in ders {
            let (_, crl) =
                x509_parser::parse_x509_crl(der).map_err(|e| CrlError::Parse(e.to_string()))?;
            serials.extend(
                crl.iter_revoked_certificates()
                    .map(|r| trim_serial(r.raw_serial())),
            );
        }
        Ok(RevocationList { serials })
    }

    /// etcd's `checkCRL` over the certificates a client sent (leaf first).
    pub fn check(&self, chain: &[&CertificateDer<'_>]) -> Result<(), Revoked> {
        for cert in chain {
            let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
                continue;
            };
            let serial = trim_serial(parsed.raw_serial());
            if self.serials.contains(&serial) {
                let (ip_addresses, dns_names) = leaf_names(chain[0]);
                return Err(Revoked {
                    serial_hex: serial.iter().map(|b| format!("{b:02x}")).collect(),
                    ip_addresses,
                    dns_names,
                });
            }
        }
        Ok(())
    }
}

/// The IP and DNS subject alternative names of a certificate (etcd logs them).
fn leaf_names(cert: &CertificateDer<'_>) -> (Vec<String>, Vec<String>) {
    use x509_parser::extensions::GeneralName;
    let (mut ips, mut dns) = (Vec::new(), Vec::new());
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return (ips, dns);
    };
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        ips.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    (ips, dns)
}

pub(super) fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::pki::Ca;
    use super::*;

    fn der_of(pem: &str) -> Vec<u8> {
        CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn pem_and_der_list_the_same_serials() {
        let mut ca = Ca::new("crl test CA").unwrap();
        let good = ca.issue("good", &["127.0.0.1"], false).unwrap();
        let bad = ca.issue("bad", &["127.0.0.1", "localhost"], false).unwrap();
        let pem = ca.crl(&[bad.serial]).unwrap();
        let from_pem = RevocationList::parse(pem.as_bytes()).unwrap();
        let from_der = RevocationList::parse(&der_of(&pem)).unwrap();
        assert_eq!(from_pem, from_der);
        let cert = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert!(from_der.check(&[&cert(&good.cert_pem)]).is_ok());
        let refused = from_der.check(&[&cert(&bad.cert_pem)]).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!("transport: certificate serial {:02x} revoked", bad.serial)
        );
        assert_eq!(refused.ip_addresses, ["127.0.0.1"]);
        assert_eq!(refused.dns_names, ["localhost"]);
    }

    #[test]
    fn garbage_and_empty_pem_are_refused() {
        assert!(matches!(
            RevocationList::parse(b"not a crl"),
            Err(CrlError::Parse(_))
        ));
        assert!(matches!(
            RevocationList::parse(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
            Err(CrlError::Empty)
        ));
    }
}
