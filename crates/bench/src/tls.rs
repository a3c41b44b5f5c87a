//! Client TLS (etcd's benchmark `--cacert`, `--cert`, `--key`, plus
//! `--insecure-skip-tls-verify`): the flags become chorus-client's [`TlsOptions`], whose
//! rustls configuration (ring provider, ALPN `h2`) and [`TlsConnect`] connector the
//! connections use.
//!
//! tonic's own TLS features stay off: the channel's URI is `http://host:port` (what the
//! connector dials) and its origin `https://host:port` (what requests carry in `:scheme`
//! and `:authority`), so the connector alone decides about encryption.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use chorus_client::tls::{TlsOptions, ALPN_H2};

pub use chorus_client::tls::{server_name, TlsConnect};

/// The TLS flags as given.
#[derive(Debug, Clone, Default)]
pub struct TlsFlags {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

impl TlsFlags {
    /// Whether any TLS flag was given (then scheme-less endpoints use TLS).
    pub fn any(&self) -> bool {
        self.cacert.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.insecure_skip_verify
    }

    /// The rustls client configuration the flags describe.
    pub fn client_config(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        match (&self.cert, &self.key) {
            (Some(_), None) => bail!("--cert needs --key"),
            (None, Some(_)) => bail!("--key needs --cert"),
            _ => {}
        }
        let read = |flag: &str, path: &Option<PathBuf>| {
            path.as_ref()
                .map(|p| std::fs::read(p).with_context(|| format!("{flag} {}", p.display())))
                .transpose()
        };
        let options = TlsOptions {
            ca_pem: read("--cacert", &self.cacert)?,
            cert_pem: read("--cert", &self.cert)?,
            key_pem: read("--key", &self.key)?,
            insecure_skip_verify: self.insecure_skip_verify,
            ..TlsOptions::default()
        };
        Ok(options.client_config(&[ALPN_H2])?)
    }
}
