//! A minimal HTTP/1.0 client (one request per connection, the body read to the end of the
//! connection) for the v2 API, `/health`, `/version` and `/metrics`, over plain TCP or,
//! for `https://` endpoints, TLS (chorus_client's connector, ALPN http/1.1).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A response: status code, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request failed, as Go's net/http would say it.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub text: String,
    /// A connection error as etcdctl v2's `isConnectionError` sees it (refused, dial or
    /// read timeout), not a TLS refusal or a broken answer.
    pub connection: bool,
}

impl HttpError {
    fn other(text: impl Into<String>) -> HttpError {
        HttpError {
            text: text.into(),
            connection: false,
        }
    }

    fn connection(text: impl Into<String>) -> HttpError {
        HttpError {
            text: text.into(),
            connection: true,
        }
    }
}

/// The TLS configuration of `https://` endpoints (`None`: Go's default, the system CAs).
pub type Tls = Option<Arc<rustls::ClientConfig>>;

/// Go's default transport's TLS: the system's CAs, no client certificate.
fn default_tls() -> Result<Arc<rustls::ClientConfig>, HttpError> {
    crate::tls::config(&chorus_client::TlsOptions::default(), true).map_err(HttpError::other)
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// `http://host:port` (or `host:port`) -> (`host:port`, whether it is TLS).
pub fn split_url(endpoint: &str) -> (String, bool) {
    if let Some(rest) = endpoint.strip_prefix("https://") {
        (rest.trim_end_matches('/').to_owned(), true)
    } else {
        (
            endpoint
                .strip_prefix("http://")
                .unwrap_or(endpoint)
                .trim_end_matches('/')
                .to_owned(),
            false,
        )
    }
}

/// One request to `endpoint` (`http://host:port` or `https://host:port`); `timeout`
/// bounds the connection and, when `Some`, the whole exchange. A body is a form.
pub async fn request(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    body: Option<&str>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    tls: &Tls,
) -> Result<Response, HttpError> {
    let call = Call {
        method,
        path_and_query,
        body,
        content_type: FORM,
        authorization: None,
    };
    request_as(endpoint, &call, connect_timeout, timeout, tls).await
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A request's method, target, body and headers.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body: Option<&'a str>,
    /// The body's type (`application/json` for `/v2/auth`).
    pub content_type: &'a str,
    /// An `Authorization` header (the v2 client's basic auth).
    pub authorization: Option<&'a str>,
}

/// Go's `SetBasicAuth`: the `Authorization` value for `user:password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// `request` with the headers of `call`.
pub async fn request_as(
    endpoint: &str,
    call: &Call<'_>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    tls: &Tls,
) -> Result<Response, HttpError> {
    let (addr, use_tls) = split_url(endpoint);
    let exchange = async {
        let mut stream = connect(&addr, use_tls, connect_timeout, tls).await?;
        stream
            .write_all(call.head_and_body(&addr).as_bytes())
            .await
            .map_err(|e| io_error(&e))?;
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw).await {
            Ok(_) => {}
            // A TLS peer that closes without close_notify, after its whole answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(io_error(&e)),
        }
        parse(&raw).ok_or_else(|| HttpError::other("malformed HTTP response"))
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, exchange)
            .await
            .map_err(|_| HttpError::connection("context deadline exceeded"))?,
        None => exchange.await,
    }
}

impl Call<'_> {
    /// The HTTP/1.0 request as sent to `addr`.
    fn head_and_body(&self, addr: &str) -> String {
        let (method, path) = (self.method, self.path_and_query);
        let body = self.body.unwrap_or("");
        let mut req =
            format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: chorusctl\r\n");
        if let Some(value) = self.authorization {
            req += &format!("Authorization: {value}\r\n");
        }
        if method != "GET" || !body.is_empty() {
            req += &format!("Content-Type: {}\r\n", self.content_type);
            req += &format!("Content-Length: {}\r\n", body.len());
        }
        req + "\r\n" + body
    }
}

/// A TCP connection to `addr`, in TLS when `use_tls`; failures in Go's words.
async fn connect(
    addr: &str,
    use_tls: bool,
    connect_timeout: Duration,
    tls: &Tls,
) -> Result<Box<dyn Stream>, HttpError> {
    let tcp =
        match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let reason = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    "connect: connection refused".to_owned()
                } else {
                    e.to_string()
                };
                return Err(HttpError::connection(format!("dial tcp {addr}: {reason}")));
            }
            Err(_) => {
                return Err(HttpError::connection(format!(
                    "dial tcp {addr}: i/o timeout"
                )))
            }
        };
    if !use_tls {
        return Ok(Box::new(tcp));
    }
    let config = match tls {
        Some(c) => c.clone(),
        None => default_tls()?,
    };
    let name =
        chorus_client::tls::server_name(addr).map_err(|e| HttpError::other(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| io_error(&e))?;
    Ok(Box::new(stream))
}

/// An I/O failure on an open connection; TLS ones in Go's words.
fn io_error(e: &std::io::Error) -> HttpError {
    match crate::tls::rustls_cause(e) {
        Some(tls) => HttpError::other(crate::tls::go_text(tls)),
        None => HttpError::other(e.to_string()),
    }
}

fn parse(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // Bounded by the input's length: every round consumes at least the size line.
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size_line = std::str::from_utf8(&b[..pos]).unwrap_or("0");
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        b = &b[pos + 2..];
        if size == 0 || size > b.len() {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size..];
        b = b.strip_prefix(b"\r\n").unwrap_or(b);
    }
    out
}

pub use chorus_config::url::query_escape;

/// Path escaping of a key as the v2 client does (`url.PathEscape` per segment, `/` kept).
pub fn path_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b':'
            | b'='
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_auth_is_gos() {
        // Go: req.SetBasicAuth("root", "p:w") -> "Basic cm9vdDpwOnc="
        assert_eq!(super::basic_auth("root", "p:w"), "Basic cm9vdDpwOnc=");
    }
}
