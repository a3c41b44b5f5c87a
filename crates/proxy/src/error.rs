//! The proxy's and the gateway's start-up errors. Request errors stay `tonic::Status`
//! values from the member (code and `etcdserver: ...` message unchanged), because clients
//! match on them.

/// What can stop `chorus grpc-proxy start` or `chorus gateway start` before serving.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A flag value that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// The client side (endpoints, TLS towards the members).
    #[error("{0}")]
    Client(#[from] chorus_client::Error),
    /// The listener's TLS (`--cert-file`, `--key-file`, `--trusted-ca-file`).
    #[error("{0}")]
    Tls(#[from] chorus_server::net::tls::TlsConfigError),
    /// A file named by a flag could not be read.
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A listen address could not be bound.
    #[error("listen {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    /// The DNS server could not start.
    #[error("{0}")]
    Dns(#[from] chorus_dns::DnsError),
}
