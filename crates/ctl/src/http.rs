//! A minimal HTTP/1.0 client (one request per connection, the body read to the end of the
//! connection) for the v2 API, `/health`, `/version` and `/metrics`. Plain HTTP only.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
pub struct HttpError(pub String);

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

/// One request to `endpoint` (`http://host:port`); `timeout` bounds the connection and,
/// when `Some`, the whole exchange.
pub async fn request(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    body: Option<&str>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
) -> Result<Response, HttpError> {
    let (addr, tls) = split_url(endpoint);
    let url = format!("{}{}", endpoint.trim_end_matches('/'), path_and_query);
    if tls {
        return Err(HttpError(format!(
            "{method} {url}: https endpoints are not supported by chorusctl's v2 client"
        )));
    }
    let exchange =
        async {
            let mut stream =
                match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&addr))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        let reason = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                            "connect: connection refused".to_owned()
                        } else {
                            e.to_string()
                        };
                        return Err(HttpError(format!("dial tcp {addr}: {reason}")));
                    }
                    Err(_) => return Err(HttpError(format!("dial tcp {addr}: i/o timeout"))),
                };
            let body = body.unwrap_or("");
            let mut req = format!(
                "{method} {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: chorusctl\r\n"
            );
            if method != "GET" || !body.is_empty() {
                req += "Content-Type: application/x-www-form-urlencoded\r\n";
                req += &format!("Content-Length: {}\r\n", body.len());
            }
            req += "\r\n";
            req += body;
            stream
                .write_all(req.as_bytes())
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            let mut raw = Vec::new();
            stream
                .read_to_end(&mut raw)
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            parse(&raw).ok_or_else(|| HttpError("malformed HTTP response".to_owned()))
        };
    match timeout {
        Some(t) => tokio::time::timeout(t, exchange)
            .await
            .map_err(|_| HttpError("context deadline exceeded".to_owned()))?,
        None => exchange.await,
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

/// Query-string escaping as Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

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
