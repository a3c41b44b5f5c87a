//! Client-certificate identity (etcd's `AuthInfoFromTLS`): with `--client-cert-auth`, a
//! request that carries no token is the user named by the verified client certificate's
//! Common Name.

use crate::store::{AuthInfo, AuthStore};

/// The Common Name of a DER certificate: the last CN attribute of the subject, as Go's
/// `pkix.Name` keeps it, empty when there is none (etcd then looks up the user `""`,
/// which never exists). `None` when the certificate does not parse.
pub fn common_name(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let cn = match cert.subject().iter_common_name().last() {
        None => String::new(),
        Some(cn) => cn.as_str().ok()?.to_owned(),
    };
    Some(cn)
}

impl AuthStore {
    /// The requester named by a client certificate that the TLS layer has already verified
    /// (leaf first, as rustls' `peer_certificates` gives it), at the current auth revision.
    /// `None` without a certificate, and for requests that came through the JSON gateway
    /// (`grpcgateway-accept` metadata): the gateway dials with its own client certificate,
    /// whose CN must never stand for the caller.
    pub fn auth_info_from_tls(
        &self,
        verified_chain: &[impl AsRef<[u8]>],
        via_gateway: bool,
    ) -> Option<AuthInfo> {
        let leaf = verified_chain.first()?;
        if via_gateway {
            tracing::warn!("ignoring common name in gRPC-gateway proxy request");
            return None;
        }
        Some(AuthInfo {
            username: common_name(leaf.as_ref())?,
            revision: self.revision(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chorus_storage::backend::{Backend, BackendOptions};

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::AuthConfig;
    use crate::token::{SimpleTokens, TokenProvider};

    fn cert(cn: Option<&str>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn common_name_of_a_client_certificate() {
        assert_eq!(common_name(&cert(Some("alice"))).as_deref(), Some("alice"));
        assert_eq!(common_name(&cert(None)).as_deref(), Some(""));
        assert_eq!(common_name(b"not a certificate"), None);
    }

    #[test]
    fn auth_info_from_a_verified_chain() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(&dir.path().join("db"), &BackendOptions::default()).unwrap();
        let clock = Arc::new(ManualClock::new(0));
        let tokens = TokenProvider::Simple(SimpleTokens::new(Duration::ZERO, clock));
        let store = AuthStore::load(
            &backend,
            AuthConfig {
                bcrypt_cost: 4,
                tokens,
            },
        )
        .unwrap();
        let chain = [cert(Some("alice")), cert(Some("ca"))];
        assert_eq!(
            store.auth_info_from_tls(&chain, false),
            Some(AuthInfo {
                username: "alice".into(),
                revision: store.revision(),
            })
        );
        assert_eq!(
            store.auth_info_from_tls(&chain, true),
            None,
            "via the gateway"
        );
        assert_eq!(store.auth_info_from_tls(&[] as &[Vec<u8>], false), None);
    }
}
