//! Raw HTTP/1.0 exchanges with a member's client port, headers included: for the v2 API,
//! whose answers carry `X-Etcd-Index` and friends, and whose watches stream their body.
//!
//! HTTP/1.0 so that a body is never chunked: the server closes the connection at its end.
//! A long-poll or `stream=true` watch is a [`HttpStream`]: its head arrives once the server
//! has registered the watcher (etcd flushes it then), so "start the watch, then write" needs
//! no sleep — await [`HttpStream::open`], then write.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Bound on one whole exchange (and on waiting for a stream's head).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A request: method, target (path and query, as sent), headers and body.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpRequest {
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// A urlencoded form body (`Content-Type: application/x-www-form-urlencoded`).
    pub fn form(self, body: &str) -> Self {
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json(self, body: &str) -> Self {
        self.header("Content-Type", "application/json").body(body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    fn bytes(&self, addr: &str) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.0\r\n", self.method, self.target);
        // `Host: addr` unless the request names its own.
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            head += &format!("Host: {addr}\r\n");
        }
        for (name, value) in &self.headers {
            head += &format!("{name}: {value}\r\n");
        }
        if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT") {
            head += &format!("Content-Length: {}\r\n", self.body.len());
        }
        head += "\r\n";
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

/// A response: status, headers (names as sent, in order) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the response if it is not).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not a JSON body ({e}): {self:#?}"))
    }

    /// `X-Etcd-Index` as a number.
    #[track_caller]
    pub fn etcd_index(&self) -> u64 {
        self.header("x-etcd-index")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no X-Etcd-Index: {self:#?}"))
    }
}

/// Parses a response head (up to, without, the blank line).
fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

/// One exchange with `addr` (`127.0.0.1:PORT`); the server closes the connection after it.
pub async fn send(addr: &str, req: &HttpRequest) -> HttpResponse {
    // Boxed: a test awaits many of these from deep in its own (large) future.
    let exchange = Box::pin(async {
        let stream = TcpStream::connect(addr).await?;
        let (mut reader, mut writer) = stream.into_split();
        // Written while the answer is read: a server may answer (a body over its limit)
        // and close before it has read the whole request.
        let bytes = req.bytes(addr);
        let write = async move {
            let written = writer.write_all(&bytes).await;
            (written, writer)
        };
        let read = async {
            let mut response = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) => return Ok(response),
                    Ok(n) => response.extend_from_slice(&buf[..n]),
                    // A reset after a whole answer (the server did not read all we sent).
                    Err(e) if response.windows(4).any(|w| w == b"\r\n\r\n") => {
                        let _ = e;
                        return Ok(response);
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let ((written, _writer), response) = tokio::join!(write, read);
        let response = response?;
        if response.is_empty() {
            written?;
        }
        Ok::<_, std::io::Error>(response)
    });
    let response = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{} {} on {addr} timed out", req.method, req.target))
        .unwrap_or_else(|e| panic!("{} {} on {addr}: {e}", req.method, req.target));
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response head in {text:?}"));
    let (status, headers) = parse_head(head);
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A response whose body is still coming (a v2 watch). Dropping it closes the connection.
#[derive(Debug)]
pub struct HttpStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: watch::Receiver<(Vec<u8>, bool)>,
    reader: JoinHandle<()>,
}

impl HttpStream {
    /// Sends the request and returns once the response head is in; the body is collected
    /// in the background from then on.
    pub async fn open(addr: &str, req: &HttpRequest) -> HttpStream {
        let open = async {
            let mut stream = TcpStream::connect(addr).await?;
            stream.write_all(&req.bytes(addr)).await?;
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let rest = got.split_off(end + 4);
                    got.truncate(end);
                    return Ok((stream, String::from_utf8_lossy(&got).into_owned(), rest));
                }
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "closed before the head: {:?}",
                            String::from_utf8_lossy(&got)
                        ),
                    ));
                }
                got.extend_from_slice(&buf[..n]);
            }
        };
        let (mut stream, head, rest) = tokio::time::timeout(HTTP_TIMEOUT, open)
            .await
            .unwrap_or_else(|_| panic!("no response head for {} {}", req.method, req.target))
            .unwrap_or_else(|e| panic!("{} {} on {addr}: {e}", req.method, req.target));
        let (status, headers) = parse_head(&head);
        let (tx, body) = watch::channel((rest, false));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => tx.send_modify(|(all, _)| all.extend_from_slice(&buf[..n])),
                }
            }
            tx.send_modify(|(_, closed)| *closed = true);
        });
        HttpStream {
            status,
            headers,
            body,
            reader,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body so far.
    pub fn body(&self) -> String {
        String::from_utf8_lossy(&self.body.borrow().0).into_owned()
    }

    /// Waits until the body so far has `lines` complete lines (or the connection closed);
    /// returns the body, `Err` with the body so far past `timeout`.
    pub async fn lines(&mut self, lines: usize, timeout: Duration) -> Result<String, String> {
        let wait = self.body.wait_for(|(bytes, closed)| {
            *closed || bytes.iter().filter(|&&b| b == b'\n').count() >= lines
        });
        let reached = matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)));
        if reached {
            Ok(self.body())
        } else {
            Err(self.body())
        }
    }

    /// Waits until the server closes the connection; returns the whole body, `Err` with
    /// the body so far past `timeout`.
    pub async fn closed(&mut self, timeout: Duration) -> Result<String, String> {
        let wait = self.body.wait_for(|(_, closed)| *closed);
        let reached = matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)));
        if reached {
            Ok(self.body())
        } else {
            Err(self.body())
        }
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.body.borrow().1
    }
}

impl Drop for HttpStream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
