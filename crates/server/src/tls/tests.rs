use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
            allowed_cn: None,
            allowed_hostname: None,
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
    let e = server_config(Side::Client, &files, &TlsPolicy::default()).unwrap_err();
    assert!(
        e.starts_with("--cert-file ") && e.contains("missing.pem"),
        "{e}"
    );

    let mut files = pki.files(true);
    let other = pki.ca.issue("other", &[], false).unwrap();
    files.key = pki.write("other-key.pem", &other.key_pem);
    let e = server_config(Side::Peer, &files, &TlsPolicy::default()).unwrap_err();
    assert!(
        e.starts_with("--peer-key-file ") && e.contains("does not match"),
        "{e}"
    );

    let mut files = pki.files(true);
    files.trusted_ca = Some(pki.write("empty-ca.pem", "not a certificate\n"));
    let e = server_config(Side::Client, &files, &TlsPolicy::default()).unwrap_err();
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
    files.allowed_cn = Some("member".into());
    let cfg = server_config(Side::Peer, &files, &TlsPolicy::default()).unwrap();
    let ca_pem = pki.ca.cert_pem();
    let member = pki.ca.issue("member", &[], false).unwrap();
    let stranger = pki.ca.issue("stranger", &[], false).unwrap();
    assert!(handshake(cfg.clone(), &ca_pem, Some(&member)).await.is_ok());
    assert!(handshake(cfg, &ca_pem, Some(&stranger)).await.is_err());
}
