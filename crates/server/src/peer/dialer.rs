//! How this member dials its peers: plain TCP, or TLS with the peer certificate; over
//! TCP or, for `unix://` and `unixs://` peer URLs, a Unix socket.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// Why a peer did not say who the members are.
#[derive(Debug, thiserror::Error)]
pub enum AskMembersError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error("{}", .0.message())]
    Rpc(tonic::Status),
    #[error("timed out")]
    TimedOut,
}

/// A peer could not be dialed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("no peer URLs")]
    NoUrls,
    #[error("{url}: {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("{url}: {source}")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
}

/// How this member dials its peers: plain TCP, or TLS with the peer certificate.
#[derive(Clone)]
pub struct PeerDialer {
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The TLS server name to send instead of the URL's host (etcd's `PeerTLSInfo.ServerName`:
    /// the `--discovery-srv` domain when the SRV records gave https peers and there is no
    /// `--peer-trusted-ca-file`).
    server_name: Option<String>,
    /// How long a ping may go unanswered before the connection is dropped
    /// (`--raft-write-timeout`; etcd's rafthttp write deadline, 5 s).
    write_timeout: Duration,
    /// The address TCP connections are bound to before they dial (`SetMemberLocalAddr`);
    /// none: the system picks.
    local_addr: Option<std::net::IpAddr>,
}

/// The byte stream under a peer connection: TCP or a Unix socket, maybe TLS.
trait PeerIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> PeerIo for T {}

type BoxedIo = hyper_util::rt::TokioIo<Box<dyn PeerIo>>;

/// Whether a peer URL names a Unix socket (`unix://host:port`, `unixs://host:port`:
/// the socket file `host:port`, as etcd's transport dials it).
fn is_unix(url: &str) -> bool {
    url.starts_with("unix://") || url.starts_with("unixs://")
}

impl Default for PeerDialer {
    /// Plain TCP with etcd's default write timeout.
    fn default() -> Self {
        PeerDialer::new(None, super::PING_INTERVAL)
    }
}

impl PeerDialer {
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>, write_timeout: Duration) -> Self {
        PeerDialer {
            tls,
            server_name: None,
            write_timeout,
            local_addr: None,
        }
    }

    /// Dials TCP peers from `addr` (`SetMemberLocalAddr`).
    pub fn with_local_addr(self, addr: Option<std::net::IpAddr>) -> Self {
        PeerDialer {
            local_addr: addr,
            ..self
        }
    }

    /// The same dialer, sending `name` as every peer's TLS server name.
    pub fn with_server_name(mut self, name: Option<String>) -> Self {
        self.server_name = name;
        self
    }

    fn endpoint(&self, url: &str) -> Result<tonic::transport::Endpoint, DialError> {
        // TLS and Unix sockets are done by our connector, so the endpoint is plain http.
        let plain = match url.split_once("://") {
            Some((_, rest)) => format!("http://{rest}"),
            None => url.to_string(),
        };
        Ok(tonic::transport::Endpoint::from_shared(plain)
            .map_err(|source| DialError::Url {
                url: url.to_string(),
                source,
            })?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(super::PING_INTERVAL)
            .keep_alive_timeout(self.write_timeout))
    }

    /// Dials the endpoint's `host:port` (a TCP address, or for a Unix URL the socket
    /// file of that name), then TLS when configured, the server name being the host.
    fn connector(
        &self,
        unix: bool,
    ) -> impl tower::Service<http::Uri, Response = BoxedIo, Error = std::io::Error, Future = impl Send>
           + Clone
           + Send {
        let cfg = self.tls.clone();
        let local = self.local_addr;
        let server_name = self.server_name.clone();
        tower::service_fn(move |uri: http::Uri| {
            let cfg = cfg.clone();
            let server_name = server_name.clone();
            async move {
                let host = uri
                    .host()
                    .unwrap_or("localhost")
                    .trim_matches(['[', ']'])
                    .to_string();
                let port = uri.port_u16().unwrap_or(2380);
                let io: Box<dyn PeerIo> = if unix {
                    let path = uri.authority().map(|a| a.as_str()).unwrap_or_default();
                    Box::new(tokio::net::UnixStream::connect(path).await?)
                } else {
                    Box::new(dial_tcp(&host, port, local).await?)
                };
                let Some(cfg) = cfg else {
                    return Ok(hyper_util::rt::TokioIo::new(io));
                };
                let name = rustls::pki_types::ServerName::try_from(server_name.unwrap_or(host))
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let tls = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, io)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    Box::new(tls) as Box<dyn PeerIo>
                ))
            }
        })
    }

    /// Whether the endpoint needs our connector (TLS, a Unix socket, a local address).
    fn custom(&self, url: &str) -> bool {
        self.tls.is_some() || is_unix(url) || self.local_addr.is_some()
    }

    /// A connected channel to one of `urls`.
    pub async fn connect(&self, urls: &[String]) -> Result<tonic::transport::Channel, DialError> {
        let mut last = DialError::NoUrls;
        for url in urls {
            let endpoint = match self.endpoint(url) {
                Ok(e) => e,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let result = if self.custom(url) {
                endpoint
                    .connect_with_connector(self.connector(is_unix(url)))
                    .await
            } else {
                endpoint.connect().await
            };
            match result {
                Ok(ch) => return Ok(ch),
                Err(source) => {
                    last = DialError::Connect {
                        url: url.clone(),
                        source,
                    }
                }
            }
        }
        Err(last)
    }

    /// A channel that connects on first use.
    /// The cluster as the peer at `url` sees it (the peer service's `Members`), within
    /// `timeout`.
    pub async fn ask_members(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<chorus_api::peerpb::MembersResponse, AskMembersError> {
        let asked = async {
            let channel = self.lazy(url)?;
            chorus_api::peerpb::raft_client::RaftClient::new(channel)
                .members(chorus_api::peerpb::MembersRequest {})
                .await
                .map(|r| r.into_inner())
                .map_err(AskMembersError::Rpc)
        };
        tokio::time::timeout(timeout, asked)
            .await
            .unwrap_or(Err(AskMembersError::TimedOut))
    }

    pub fn lazy(&self, url: &str) -> Result<tonic::transport::Channel, DialError> {
        let endpoint = self.endpoint(url)?;
        Ok(if self.custom(url) {
            endpoint.connect_with_connector_lazy(self.connector(is_unix(url)))
        } else {
            endpoint.connect_lazy()
        })
    }
}

/// A TCP connection to `host:port`, from `local` (any port) when given.
async fn dial_tcp(
    host: &str,
    port: u16,
    local: Option<std::net::IpAddr>,
) -> std::io::Result<tokio::net::TcpStream> {
    let tcp = match local {
        None => tokio::net::TcpStream::connect((host, port)).await?,
        Some(ip) => {
            let remote = tokio::net::lookup_host((host, port))
                .await?
                .find(|a| a.is_ipv4() == ip.is_ipv4())
                .ok_or_else(|| {
                    let msg = format!("{host}: no address of the local address's family ({ip})");
                    std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, msg)
                })?;
            let socket = match ip {
                std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.bind(std::net::SocketAddr::new(ip, 0))?;
            socket.connect(remote).await?
        }
    };
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Raft messages and snapshots can be large (etcd allows 256 MiB on the peer port).
pub(super) const MAX_MESSAGE: usize = 256 << 20;

impl PeerDialer {
    /// A connected peer-protocol client to one of `urls`.
    pub async fn raft_client(
        &self,
        urls: &[String],
    ) -> Result<chorus_api::peerpb::raft_client::RaftClient<tonic::transport::Channel>, DialError>
    {
        let ch = self.connect(urls).await?;
        Ok(chorus_api::peerpb::raft_client::RaftClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection comes from the local address the dialer was given.
    #[tokio::test]
    async fn tcp_dials_from_the_local_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for local in ["127.0.0.1", "127.0.0.2"] {
            let ip: std::net::IpAddr = local.parse().unwrap();
            let dialed = dial_tcp("127.0.0.1", port, Some(ip)).await.unwrap();
            let (_conn, from) = listener.accept().await.unwrap();
            assert_eq!(from.ip(), ip);
            assert_eq!(dialed.local_addr().unwrap().ip(), ip);
        }
        let v6: std::net::IpAddr = "::1".parse().unwrap();
        let e = dial_tcp("127.0.0.1", port, Some(v6)).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrNotAvailable);
    }
}
