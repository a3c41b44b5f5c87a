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

/// What an issued certificate may authenticate (its extended key usage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    Both,
    Server,
    Client,
}

/// A PEM certificate and its PEM private key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: u64,
}

impl Ca {
    pub fn new(name: &str) -> Result<Ca, rcgen::Error> {
        Self::with_hosts(name, &[])
    }

    /// A CA whose own (self-signed, `CA:TRUE`) certificate is also valid for `hosts`: one
    /// certificate as trusted CA, server and client certificate, which Go accepts.
    pub fn with_hosts(name: &str, hosts: &[&str]) -> Result<Ca, rcgen::Error> {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(hosts)?;
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

    /// The CA's private key (a self-signed `CA:TRUE` certificate used as a client or
    /// server certificate, as Go accepts when it is in the trusted pool).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A certificate for `common_name` valid for `hosts` (DNS names or IP addresses),
    /// usable by servers and clients; `expired` makes one that ended in 2001.
    pub fn issue(
        &mut self,
        common_name: &str,
        hosts: &[&str],
        expired: bool,
    ) -> Result<Issued, rcgen::Error> {
        self.issue_for(common_name, hosts, expired, Usage::Both)
    }

    /// [`Ca::issue`] for one use only (its extended key usage says so).
    pub fn issue_for(
        &mut self,
        common_name: &str,
        hosts: &[&str],
        expired: bool,
        usage: Usage,
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
        use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        params.extended_key_usages = match usage {
            Usage::Both => vec![ServerAuth, ClientAuth],
            Usage::Server => vec![ServerAuth],
            Usage::Client => vec![ClientAuth],
        };
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
