//! Test certificates on disk: a CA (`chorus_server::net::tls::pki`), certificates it issues
//! (`<name>.pem` + `<name>-key.pem`), and the files a TLS cluster is started with.

use std::path::{Path, PathBuf};

use chorus_server::net::tls::pki::{Ca, Issued, Usage};

/// A CA whose certificate is `<dir>/ca.pem`, issuing into the same directory.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: Ca,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        Self::named(dir, "chorus test CA")
    }

    /// A CA with its own subject name (verifiers look a certificate's issuer up by name:
    /// a foreign CA of the same name fails as a bad signature, not an unknown issuer).
    pub fn named(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let ca = Ca::new(name).expect("CA");
        std::fs::write(dir.join("ca.pem"), ca.cert_pem()).expect("ca.pem");
        Pki {
            dir: dir.to_owned(),
            ca,
        }
    }

    /// Writes `<name>.pem` and `<name>-key.pem` (valid for `hosts`, DNS names or IPs;
    /// `expired` ended in 2001); returns the issued certificate.
    pub fn issue(&mut self, name: &str, hosts: &[&str], expired: bool) -> Issued {
        let c = self.ca.issue(name, hosts, expired).expect("issue");
        std::fs::write(self.path(&format!("{name}.pem")), &c.cert_pem).expect("cert");
        std::fs::write(self.path(&format!("{name}-key.pem")), &c.key_pem).expect("key");
        c
    }

    /// Writes `<name>.pem` and `<name>-key.pem`: a self-signed certificate with `CA:TRUE`
    /// valid for `hosts` (Go accepts it as server and client certificate when it is also
    /// the trusted CA).
    pub fn self_signed(&self, name: &str, hosts: &[&str]) {
        let ca = Ca::with_hosts(name, hosts).expect("self-signed CA");
        std::fs::write(self.path(&format!("{name}.pem")), ca.cert_pem()).expect("cert");
        std::fs::write(self.path(&format!("{name}-key.pem")), ca.key_pem()).expect("key");
    }

    /// Writes `<file>`: a CRL revoking `serials`, in DER form (etcd reads PEM or DER).
    pub fn crl_der(&self, file: &str, serials: &[u64]) -> String {
        use rustls::pki_types::pem::PemObject;
        let pem = self.ca.crl(serials).expect("crl");
        let der = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .expect("PEM CRL");
        std::fs::write(self.path(file), der.as_ref()).expect("crl file");
        self.path(file)
    }

    /// [`Pki::issue`] for servers or clients only (extended key usage).
    pub fn issue_for(&mut self, name: &str, hosts: &[&str], usage: Usage) -> Issued {
        let c = self.ca.issue_for(name, hosts, false, usage).expect("issue");
        std::fs::write(self.path(&format!("{name}.pem")), &c.cert_pem).expect("cert");
        std::fs::write(self.path(&format!("{name}-key.pem")), &c.key_pem).expect("key");
        c
    }

    /// A file of this PKI's directory, as a string for command lines.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// (`<name>.pem`, `<name>-key.pem`).
    pub fn pair(&self, name: &str) -> (String, String) {
        (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}-key.pem")),
        )
    }

    /// A CA with a server certificate `server` for 127.0.0.1 and localhost and a client
    /// certificate `client`: the files of a TLS cluster ([`ClusterTls`]).
    pub fn for_cluster(dir: &Path) -> (Pki, ClusterTls) {
        Self::for_cluster_with_hosts(dir, &["127.0.0.1", "localhost"])
    }

    /// [`Pki::for_cluster`] with a server certificate valid for `hosts`.
    pub fn for_cluster_with_hosts(dir: &Path, hosts: &[&str]) -> (Pki, ClusterTls) {
        let mut pki = Pki::new(dir);
        pki.issue("server", hosts, false);
        pki.issue("client", &[], false);
        let (cert, key) = pki.pair("server");
        let (client_cert, client_key) = pki.pair("client");
        let tls = ClusterTls {
            ca: pki.path("ca.pem"),
            cert,
            key,
            client_cert,
            client_key,
        };
        (pki, tls)
    }
}

/// Files of a cluster with https client and peer URLs, client-certificate auth on both
/// (one server certificate for both, as the seed deployment does).
#[derive(Debug, Clone)]
pub struct ClusterTls {
    pub ca: String,
    pub cert: String,
    pub key: String,
    /// What the test's own clients present.
    pub client_cert: String,
    pub client_key: String,
}

impl ClusterTls {
    /// etcd's server flags for these files.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            format!("--cert-file={}", self.cert),
            format!("--key-file={}", self.key),
            format!("--trusted-ca-file={}", self.ca),
            "--client-cert-auth".to_owned(),
            format!("--peer-cert-file={}", self.cert),
            format!("--peer-key-file={}", self.key),
            format!("--peer-trusted-ca-file={}", self.ca),
            "--peer-client-cert-auth".to_owned(),
        ]
    }

    /// The client's TLS settings (CA and client certificate).
    pub fn client_options(&self) -> chorus_client::TlsOptions {
        chorus_client::TlsOptions::from_files(
            Some(Path::new(&self.ca)),
            Some(Path::new(&self.client_cert)),
            Some(Path::new(&self.client_key)),
        )
        .expect("read client TLS files")
    }

    /// etcdctl v3's flags for the client certificate.
    pub fn v3_flags(&self) -> Vec<String> {
        vec![
            format!("--cacert={}", self.ca),
            format!("--cert={}", self.client_cert),
            format!("--key={}", self.client_key),
        ]
    }

    /// etcdctl v2's flags for the client certificate.
    pub fn v2_flags(&self) -> Vec<String> {
        vec![
            format!("--ca-file={}", self.ca),
            format!("--cert-file={}", self.client_cert),
            format!("--key-file={}", self.client_key),
        ]
    }
}
