//! One HTTP/1.1 exchange per request, for the v2 discovery protocol: plain or TLS (the
//! system's CAs, as Go's default transport), optionally through an HTTP proxy
//! (`--discovery-proxy`: the request goes to the proxy in absolute form).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Go's `transport.NewTransport(..., 30*time.Second)` dial timeout.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read (a discovery directory is a handful of small keys).
const MAX_BODY: usize = 4 << 20;

/// Where requests go: the discovery service's origin, maybe through a proxy.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// `host:port` of the discovery service (port defaulted by scheme).
    pub authority: String,
    /// `host:port` of the HTTP proxy, if any.
    pub proxy: Option<String>,
}

/// A response: status, `X-Etcd-Index` and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub etcd_index: u64,
    pub body: Bytes,
}

impl Endpoint {
    /// `method path` with an optional form body; `timeout` bounds the whole exchange.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        form: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<Response, String> {
        let exchange = self.exchange(method, path_and_query, form);
        match timeout {
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .map_err(|_| "context deadline exceeded".to_string())?,
            None => exchange.await,
        }
    }

    async fn exchange(
        &self,
        method: &str,
        path_and_query: &str,
        form: Option<String>,
    ) -> Result<Response, String> {
        let uri = match &self.proxy {
            Some(_) => format!("{}://{}{path_and_query}", self.scheme, self.authority),
            None => path_and_query.to_string(),
        };
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, &self.authority);
        if form.is_some() {
            req = req.header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        }
        let req = req
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let result = read_response(sender.send_request(req).await).await;
        driver.abort();
        result
    }

    async fn connect(&self) -> Result<TokioIo<Box<dyn Io>>, String> {
        let target = self.proxy.as_deref().unwrap_or(&self.authority);
        let dial = TcpStream::connect(target);
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, dial)
            .await
            .map_err(|_| format!("dial tcp {target}: i/o timeout"))?
            .map_err(|e| format!("dial tcp {target}: connect: {}", short(&e)))?;
        let _ = tcp.set_nodelay(true);
        if self.scheme != "https" {
            return Ok(TokioIo::new(Box::new(tcp)));
        }
        if self.proxy.is_some() {
            return Err("https discovery through --discovery-proxy is not supported".into());
        }
        let config = tls_config()?;
        let host = self
            .authority
            .rsplit_once(':')
            .map_or(&*self.authority, |(h, _)| h);
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| e.to_string())?;
        let tls = tokio_rustls_connect(config, name, tcp).await?;
        Ok(TokioIo::new(Box::new(tls)))
    }
}

/// A byte stream under one exchange.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    chorus_client::TlsOptions::default()
        .client_config(&[chorus_client::tls::ALPN_HTTP1])
        .map_err(|e| e.to_string())
}

async fn tokio_rustls_connect(
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
    tcp: TcpStream,
) -> Result<impl Io, String> {
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

async fn read_response(
    sent: Result<http::Response<hyper::body::Incoming>, hyper::Error>,
) -> Result<Response, String> {
    let resp = sent.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let etcd_index = resp
        .headers()
        .get("X-Etcd-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limited = http_body_util::Limited::new(resp.into_body(), MAX_BODY);
    let body = limited
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Response {
        status,
        etcd_index,
        body,
    })
}

/// An I/O error without Rust's `(os error N)` suffix, lower-cased as Go words it.
fn short(e: &std::io::Error) -> String {
    let text = e.to_string();
    text.split(" (os error")
        .next()
        .unwrap_or(&text)
        .to_lowercase()
}
