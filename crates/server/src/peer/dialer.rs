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
    /// How long a ping may go unanswered before the connection is dropped
    /// (`--raft-write-timeout`; etcd's rafthttp write deadline, 5 s).
    write_timeout: Duration,
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
        PeerDialer { tls, write_timeout }
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
        tower::service_fn(move |uri: http::Uri| {
            let cfg = cfg.clone();
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
                    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
                    tcp.set_nodelay(true)?;
                    Box::new(tcp)
                };
                let Some(cfg) = cfg else {
                    return Ok(hyper_util::rt::TokioIo::new(io));
                };
                let name = rustls::pki_types::ServerName::try_from(host)
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

    /// Whether the endpoint needs our connector (TLS or a Unix socket).
    fn custom(&self, url: &str) -> bool {
        self.tls.is_some() || is_unix(url)
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
