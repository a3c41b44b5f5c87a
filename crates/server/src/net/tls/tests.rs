use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use rustls::pki_types::CertificateRevocationListDer;

use super::pki::{Ca, Issued};
use super::*;

struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: Ca::new("chorus test CA").unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn files(&mut self, client_cert_auth: bool) -> TlsFiles {
        let server = self
            .ca
            .issue("server", &["127.0.0.1", "localhost"], false)
            .unwrap();
        TlsFiles {
            cert: self.write("server.pem", &server.cert_pem),
            key: self.write("server-key.pem", &server.key_pem),
            trusted_ca: Some(self.write("ca.pem", &self.ca.cert_pem())),
            crl: None,
            client_cert_auth,
            allowed_cns: Vec::new(),
            allowed_hostnames: Vec::new(),
            client_cert: None,
            client_key: None,
        }
    }
}

/// Runs one TLS handshake in memory and a byte of application data; returns the server's
/// view of the client's common name, or the error.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    ca_pem: &str,
    client: Option<&Issued>,
) -> Result<Option<String>, String> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let ccfg = match client {
        Some(c) => {
            let chain: Vec<_> = CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                .map(|c| c.unwrap())
                .collect();
            let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let (a, b) = tokio::io::duplex(1 << 16);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(ccfg));
    let srv = tokio::spawn(async move {
        let mut s = acceptor.accept(a).await.map_err(|e| e.to_string())?;
        let cn = s
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(common_name);
        let mut buf = [0u8; 1];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        s.write_all(b"y").await.map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(cn)
    });
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let client_side = async {
        let mut c = connector
            .connect(name, b)
            .await
            .map_err(|e| e.to_string())?;
        c.write_all(b"x").await.map_err(|e| e.to_string())?;
        c.flush().await.map_err(|e| e.to_string())?;
        // In TLS 1.3 a refused client certificate shows only after the handshake.
        let mut buf = [0u8; 1];
        c.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let client_result = client_side.await;
    let server_result = srv.await.unwrap();
    match (client_result, server_result) {
        (Ok(()), Ok(cn)) => Ok(cn),
        (c, s) => Err(format!("client: {c:?}; server: {s:?}")),
    }
}

#[tokio::test]
async fn client_certificates_are_checked_and_named() {
    let mut pki = Pki::new();
    let files = pki.files(true);
    let cfg = server_config(Side::Client, &files, &TlsPolicy::default()).unwrap();
    let ca_pem = pki.ca.cert_pem();
    let alice = pki.ca.issue("alice", &[], false).unwrap();
    assert_eq!(
        handshake(cfg.clone(), &ca_pem, Some(&alice)).await,
        Ok(Some("alice".into()))
    );
    // No certificate, an untrusted CA, an expired certificate: refused at the handshake.
    assert!(handshake(cfg.clone(), &ca_pem, None).await.is_err());
    let mut other = Ca::new("someone else").unwrap();
    let mallory = other.issue("mallory", &[], false).unwrap();
    assert!(handshake(cfg.clone(), &ca_pem, Some(&mallory))
        .await
        .is_err());
    let old = pki.ca.issue("old", &[], true).unwrap();
    assert!(handshake(cfg.clone(), &ca_pem, Some(&old)).await.is_err());
    // Without --client-cert-auth a client needs no certificate.
    let open = server_config(Side::Client, &pki.files(false), &TlsPolicy::default()).unwrap();
    assert_eq!(handshake(open, &ca_pem, None).await, Ok(None));
}

#[tokio::test]
async fn revoked_certificates_are_refused_and_the_crl_is_reread() {
    let mut pki = Pki::new();
    let mut files = pki.files(true);
    let bob = pki.ca.issue("bob", &[], false).unwrap();
    let carol = pki.ca.issue("carol", &[], false).unwrap();
    files.crl = Some(pki.write("crl.pem", &pki.ca.crl(&[bob.serial]).unwrap()));
    let cfg = server_config(Side::Client, &files, &TlsPolicy::default()).unwrap();
    let ca_pem = pki.ca.cert_pem();
    assert!(handshake(cfg.clone(), &ca_pem, Some(&bob)).await.is_err());
    assert!(handshake(cfg.clone(), &ca_pem, Some(&carol)).await.is_ok());
    // Revoke carol too: the next handshake sees the new CRL without a restart.
    std::thread::sleep(std::time::Duration::from_millis(20));
    pki.write(
        "crl.pem",
        &pki.ca.crl(&[bob.serial, carol.serial, 99]).unwrap(),
    );
    assert!(handshake(cfg, &ca_pem, Some(&carol)).await.is_err());
}

#[tokio::test]
async fn rotated_server_certificate_is_picked_up() {
    let mut pki = Pki::new();
    let files = pki.files(false);
    let resolver = ReloadingCert::new(Side::Client, &files).unwrap();
    let before = resolver.current();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let next = pki.ca.issue("server-2", &["127.0.0.1"], false).unwrap();
    std::fs::write(&files.cert, &next.cert_pem).unwrap();
    std::fs::write(&files.key, &next.key_pem).unwrap();
    let after = resolver.current();
    assert_ne!(before.cert[0], after.cert[0]);
    assert_eq!(common_name(&after.cert[0]).as_deref(), Some("server-2"));
    // A half-written rotation (key not matching) keeps the working certificate.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&files.key, &pki.ca.issue("x", &[], false).unwrap().key_pem).unwrap();
    assert_eq!(resolver.current().cert[0], after.cert[0]);
}

#[test]
fn bad_files_name_the_flag_and_the_file() {
    let mut pki = Pki::new();
    let mut files = pki.files(true);
    files.cert = pki.dir.path().join("missing.pem");
    let e = server_config(Side::Client, &files, &TlsPolicy::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--cert-file ") && e.contains("missing.pem"),
        "{e}"
    );

    let mut files = pki.files(true);
    let other = pki.ca.issue("other", &[], false).unwrap();
    files.key = pki.write("other-key.pem", &other.key_pem);
    let e = server_config(Side::Peer, &files, &TlsPolicy::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--peer-key-file ") && e.contains("does not match"),
        "{e}"
    );

    let mut files = pki.files(true);
    files.trusted_ca = Some(pki.write("empty-ca.pem", "not a certificate\n"));
    let e = server_config(Side::Client, &files, &TlsPolicy::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--trusted-ca-file ") && e.contains("no certificate"),
        "{e}"
    );
}

#[test]
fn versions_and_cipher_suites() {
    assert_eq!(protocol_versions("", "").unwrap().len(), 2);
    assert_eq!(protocol_versions("TLS1.3", "").unwrap().len(), 1);
    assert!(protocol_versions("TLS1.3", "TLS1.2").is_err());
    assert!(protocol_versions("TLS1.0", "").is_err());
    assert!(cipher_suites(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]).is_ok());
    assert!(cipher_suites(&["TLS_RSA_WITH_RC4_128_SHA".into()]).is_err());
}

#[tokio::test]
async fn peer_port_checks_the_allowed_common_name() {
    let mut pki = Pki::new();
    let mut files = pki.files(true);
    files.allowed_cns = vec!["member".into()];
    let cfg = server_config(Side::Peer, &files, &TlsPolicy::default()).unwrap();
    let ca_pem = pki.ca.cert_pem();
    let member = pki.ca.issue("member", &[], false).unwrap();
    let stranger = pki.ca.issue("stranger", &[], false).unwrap();
    assert!(handshake(cfg.clone(), &ca_pem, Some(&member)).await.is_ok());
    assert!(handshake(cfg, &ca_pem, Some(&stranger)).await.is_err());
}

#[tokio::test]
async fn several_allowed_names_and_host_names() {
    let mut pki = Pki::new();
    let mut files = pki.files(true);
    files.allowed_cns = vec!["m1".into(), "m2".into()];
    let cfg = server_config(Side::Peer, &files, &TlsPolicy::default()).unwrap();
    let ca_pem = pki.ca.cert_pem();
    for (cn, ok) in [("m1", true), ("m2", true), ("m3", false)] {
        let c = pki.ca.issue(cn, &[], false).unwrap();
        assert_eq!(
            handshake(cfg.clone(), &ca_pem, Some(&c)).await.is_ok(),
            ok,
            "{cn}"
        );
    }
    let mut files = pki.files(true);
    files.allowed_hostnames = vec!["a.example.com".into(), "10.0.0.1".into()];
    let cfg = server_config(Side::Client, &files, &TlsPolicy::default()).unwrap();
    for (hosts, ok) in [
        (&["*.example.com"][..], true),
        (&["10.0.0.1"][..], true),
        (&["b.example.com", "10.0.0.2"][..], false),
    ] {
        let c = pki.ca.issue("x", hosts, false).unwrap();
        let got = handshake(cfg.clone(), &ca_pem, Some(&c)).await;
        assert_eq!(got.is_ok(), ok, "{hosts:?}: {got:?}");
    }
}

#[tokio::test]
async fn a_self_signed_ca_certificate_in_the_pool_is_a_client_certificate() {
    // Go accepts a certificate that is itself in the trusted pool (webpki refuses a CA
    // certificate as an end entity).
    let pki = Pki::new();
    let mut srv = Pki::new();
    let mut files = srv.files(true);
    files.trusted_ca = Some(pki.write("self.pem", &pki.ca.cert_pem()));
    let cfg = server_config(Side::Client, &files, &TlsPolicy::default()).unwrap();
    let own = Issued {
        cert_pem: pki.ca.cert_pem(),
        key_pem: pki.ca.key_pem(),
        serial: 0,
    };
    let server_ca = srv.ca.cert_pem();
    assert_eq!(
        handshake(cfg.clone(), &server_ca, Some(&own)).await,
        Ok(Some("chorus test CA".into()))
    );
    // Another self-signed CA certificate is not in the pool.
    let stranger = Ca::new("stranger").unwrap();
    let other = Issued {
        cert_pem: stranger.cert_pem(),
        key_pem: stranger.key_pem(),
        serial: 0,
    };
    assert!(handshake(cfg, &server_ca, Some(&other)).await.is_err());
}

#[tokio::test]
async fn a_der_crl_revokes_by_serial() {
    let mut pki = Pki::new();
    let mut files = pki.files(true);
    let bob = pki.ca.issue("bob", &[], false).unwrap();
    let carol = pki.ca.issue("carol", &[], false).unwrap();
    let pem = pki.ca.crl(&[bob.serial]).unwrap();
    let der = CertificateRevocationListDer::from_pem_slice(pem.as_bytes()).unwrap();
    let path = pki.dir.path().join("crl.der");
    std::fs::write(&path, der.as_ref()).unwrap();
    files.crl = Some(path);
    let cfg = server_config(Side::Client, &files, &TlsPolicy::default()).unwrap();
    let ca_pem = pki.ca.cert_pem();
    let refused = handshake(cfg.clone(), &ca_pem, Some(&bob))
        .await
        .unwrap_err();
    assert!(refused.contains("Revoked"), "{refused}");
    assert!(handshake(cfg, &ca_pem, Some(&carol)).await.is_ok());
}

#[test]
fn client_certificate_pairs_and_exclusive_names_are_checked_as_etcd() {
    let mut pki = Pki::new();
    let mut files = pki.files(true);
    files.client_cert = Some(PathBuf::from("c.pem"));
    assert_eq!(
        check_base(Side::Peer, &files).unwrap_err().to_string(),
        "ClientKeyFile and ClientCertFile must both be present or both absent: key: , cert: c.pem]"
    );
    let mut files = pki.files(true);
    files.allowed_cns = vec!["a".into()];
    files.allowed_hostnames = vec!["b".into()];
    assert_eq!(
        check_base(Side::Peer, &files).unwrap_err().to_string(),
        r#"AllowedCN and AllowedHostname are mutually exclusive (cn="a", hostname="b")"#
    );
    files.allowed_cns = vec!["a".into(), "c".into()];
    assert_eq!(
        check_base(Side::Peer, &files).unwrap_err().to_string(),
        r#"AllowedCNs and AllowedHostnames are mutually exclusive (cns=["a" "c"], hostnames=["b"])"#
    );
    assert_eq!(
        self_signed(pki.dir.path(), &[], 0).unwrap_err().to_string(),
        "selfSignedCertValidity is invalid,it should be greater than 0"
    );
}

#[test]
fn self_signed_certificates_last_the_given_years() {
    let dir = tempfile::tempdir().unwrap();
    let files = self_signed(dir.path(), &["127.0.0.1".into()], 3).unwrap();
    let pem = std::fs::read(&files.cert).unwrap();
    let der = CertificateDer::from_pem_slice(&pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let v = cert.validity();
    let days = (v.not_after.timestamp() - v.not_before.timestamp()) / 86_400;
    assert_eq!(days, 3 * 365);
    assert!(!cert.is_ca());
    assert!(trust::cert_has_host(&der, "127.0.0.1"));
}
