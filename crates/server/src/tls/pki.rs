//! A small certificate authority for `--auto-tls` and for tests: a CA, certificates it
//! issues (server, client, expired), and CRLs.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};

pub struct Ca {
    params: CertificateParams,
    cert: rcgen::Certificate,
    key: KeyPair,
    next_serial: u64,
}

/// A PEM certificate and its PEM private key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: u64,
}

impl Ca {
    pub fn new(name: &str) -> Result<Ca, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.clone().self_signed(&key)?;
        Ok(Ca {
            params,
            cert,
            key,
            next_serial: 1,
        })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `common_name` valid for `hosts` (DNS names or IP addresses),
    /// usable by servers and clients; `expired` makes one that ended in 2001.
    pub fn issue(
        &mut self,
        common_name: &str,
        hosts: &[&str],
        expired: bool,
    ) -> Result<Issued, rcgen::Error> {
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let serial = self.next_serial;
        self.next_serial += 1;
        params.serial_number = Some(SerialNumber::from(serial));
        params.use_authority_key_identifier_extension = true;
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate()?;
        let issuer = self.params.clone().self_signed(&self.key)?;
        let cert = params.signed_by(&key, &issuer, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        })
    }

    /// A CRL revoking the given serial numbers.
    pub fn crl(&self, revoked: &[u64]) -> Result<String, rcgen::Error> {
        let params = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: rcgen::date_time_ymd(2100, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(2020, 1, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = self.params.clone().self_signed(&self.key)?;
        params.signed_by(&issuer, &self.key)?.pem()
    }
}
