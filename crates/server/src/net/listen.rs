//! Binding listen URLs as etcd does (`client/pkg/transport`'s `NewListenerWithOpts`):
//! `http`/`https` URLs bind TCP (SO_REUSEADDR always, as Go sets it on every listener;
//! SO_REUSEPORT with `--socket-reuse-port`), `unix`/`unixs` URLs bind a Unix socket
//! named by the URL's `host:port` (`unix://localhost:2379` is the file `localhost:2379`
//! in the working directory), removed before binding and again when the listener closes.
//!
//! ```text
//!  --listen-client-urls        ─┐ group by address: http:// and https:// of one
//!  --listen-client-http-urls   ─┘ host:port share a listener (plain and TLS told apart
//!                                 by the first byte), gRPC-only / HTTP-only when split
//! ```

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use chorus_config::Url;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream};

/// Listen queue length (Go uses the kernel's somaxconn, commonly 4096).
const BACKLOG: u32 = 4096;

/// A listen URL that could not be served; the texts are Go's and etcd's.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{what} {url}: https needs a certificate (--cert-file/--key-file or auto TLS)")]
    NeedsTls { what: String, url: String },
    /// Go's `net.OpError` of `net.Listen`, e.g.
    /// `listen tcp 127.0.0.1:2379: bind: address already in use`.
    #[error("listen {network} {addr}: {op}: {}", go_errno(.source))]
    Listen {
        network: &'static str,
        addr: String,
        op: &'static str,
        source: io::Error,
    },
    /// `os.Remove` of a stale Unix socket file failed.
    #[error("remove {path}: {}", go_errno(.source))]
    Remove { path: String, source: io::Error },
    /// etcd 3.5's refusal of one address in both client URL lists (its flag names).
    #[error(
        "cannot bind both --client-listen-urls and --client-listen-http-urls on the same url {0}"
    )]
    BothLists(String),
}

/// An `io::Error` as Go's `syscall.Errno` prints it (`address already in use`).
pub fn go_errno(e: &io::Error) -> String {
    let Some(code) = e.raw_os_error() else {
        return e.to_string();
    };
    let text = io::Error::from_raw_os_error(code).to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

/// `--socket-reuse-port` / `--socket-reuse-address`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketOptions {
    pub reuse_port: bool,
    pub reuse_address: bool,
}

impl From<chorus_config::SocketOpts> for SocketOptions {
    fn from(o: chorus_config::SocketOpts) -> Self {
        SocketOptions {
            reuse_port: o.reuse_port,
            reuse_address: o.reuse_address,
        }
    }
}

/// Removes a Unix socket's file when its listener goes (etcd's `unixListener.Close`).
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A bound listener: TCP or a Unix socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, SocketFile),
}

/// An accepted connection.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Waits until the peer sent bytes or closed (nothing is read).
    pub async fn readable(&self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            Stream::Unix(s) => s.readable().await,
        }
    }
}

impl Listener {
    /// Binds `url` (`http`/`https`: TCP with `opts`; `unix`/`unixs`: a socket file).
    pub async fn bind(url: &Url, opts: SocketOptions) -> Result<Listener, BindError> {
        if url.is_unix() {
            return bind_unix(&unix_path(url));
        }
        bind_tcp(&url.host, opts).await.map(Listener::Tcp)
    }

    /// The next connection and its peer's address as Go prints it (`127.0.0.1:5555`;
    /// empty for an unnamed Unix socket).
    pub async fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), peer.to_string()))
            }
            Listener::Unix(l, _) => {
                let (s, peer) = l.accept().await?;
                let name = peer
                    .as_pathname()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                Ok((Stream::Unix(s), name))
            }
        }
    }

    /// The bound TCP address (None for a Unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }
}

/// The socket file of a `unix`/`unixs` URL: `host` + `path`, as etcd's `resolveUrl`.
pub fn unix_path(url: &Url) -> String {
    format!("{}{}", url.host, url.path)
}

fn bind_unix(path: &str) -> Result<Listener, BindError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BindError::Remove {
                path: path.to_string(),
                source,
            })
        }
    }
    let listener = UnixListener::bind(Path::new(path)).map_err(|source| BindError::Listen {
        network: "unix",
        addr: path.to_string(),
        op: "bind",
        source,
    })?;
    Ok(Listener::Unix(listener, SocketFile(PathBuf::from(path))))
}

/// Go's `net.Listen("tcp", host)`: the first IPv4 address the name resolves to (else
/// the first address), SO_REUSEADDR on, SO_REUSEPORT on request.
async fn bind_tcp(host: &str, opts: SocketOptions) -> Result<TcpListener, BindError> {
    let failed = |addr: String, op: &'static str| {
        move |source| BindError::Listen {
            network: "tcp",
            addr: addr.clone(),
            op,
            source,
        }
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(host)
        .await
        .map_err(failed(host.to_string(), "lookup"))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| failed(host.to_string(), "lookup")(io::ErrorKind::NotFound.into()))?;
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(failed(addr.to_string(), "socket"))?;
    let setsockopt = failed(addr.to_string(), "setsockopt");
    socket.set_reuseaddr(true).map_err(&setsockopt)?;
    if opts.reuse_port {
        socket.set_reuseport(true).map_err(&setsockopt)?;
    }
    socket
        .bind(addr)
        .map_err(failed(addr.to_string(), "bind"))?;
    socket
        .listen(BACKLOG)
        .map_err(failed(addr.to_string(), "listen"))
}

/// Binds every listen URL of one kind, each its own listener (the peer and metrics
/// URLs). `what` names the flag for errors; https URLs need `tls`.
pub async fn bind_listeners(
    what: &str,
    urls: &[Url],
    tls: bool,
) -> Result<Vec<(Url, Listener)>, BindError> {
    bind_listeners_with(what, urls, tls, SocketOptions::default()).await
}

/// [`bind_listeners`] with socket options.
pub async fn bind_listeners_with(
    what: &str,
    urls: &[Url],
    tls: bool,
    opts: SocketOptions,
) -> Result<Vec<(Url, Listener)>, BindError> {
    let mut out = Vec::new();
    for url in urls {
        if url.is_tls() && !tls {
            return Err(BindError::NeedsTls {
                what: what.to_string(),
                url: url.to_string(),
            });
        }
        out.push((url.clone(), Listener::bind(url, opts).await?));
    }
    Ok(out)
}

/// Which requests a client listener serves (etcd 3.5's split of gRPC and HTTP once
/// `--listen-client-http-urls` is given).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Traffic {
    /// gRPC and HTTP (no `--listen-client-http-urls`).
    #[default]
    Both,
    /// A `--listen-client-urls` address while `--listen-client-http-urls` is set.
    GrpcOnly,
    /// A `--listen-client-http-urls` address.
    HttpOnly,
}

impl Traffic {
    /// etcd's name for it in the "serving client traffic" lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Traffic::Both => "grpc+http",
            Traffic::GrpcOnly => "grpc",
            Traffic::HttpOnly => "http",
        }
    }
}

/// One client address and what it serves: etcd's `serveCtx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    /// `host:port`, or the socket file of a Unix URL.
    pub addr: String,
    /// The first URL naming the address (its scheme says TCP or Unix).
    pub url: Url,
    /// Some URL of the address is `https`/`unixs`.
    pub secure: bool,
    /// Some URL of the address is `http`/`unix`.
    pub insecure: bool,
    pub traffic: Traffic,
}

/// etcd's `configureClientListeners`: one listener per address; an address in both
/// lists is refused.
pub fn group_client_urls(
    client_urls: &[Url],
    http_urls: &[Url],
) -> Result<Vec<ClientAddr>, BindError> {
    let split = !http_urls.is_empty();
    let mut out: Vec<ClientAddr> = Vec::new();
    let lists = [(client_urls, false), (http_urls, true)];
    for (urls, http_only) in lists {
        for url in urls {
            let addr = if url.is_unix() {
                unix_path(url)
            } else {
                url.host.clone()
            };
            let traffic = match (split, http_only) {
                (false, _) => Traffic::Both,
                (true, false) => Traffic::GrpcOnly,
                (true, true) => Traffic::HttpOnly,
            };
            let entry = match out.iter_mut().find(|c| c.addr == addr) {
                Some(c) if c.traffic != traffic => {
                    return Err(BindError::BothLists(url.to_string()))
                }
                Some(c) => c,
                None => {
                    out.push(ClientAddr {
                        addr,
                        url: url.clone(),
                        secure: false,
                        insecure: false,
                        traffic,
                    });
                    out.last_mut().expect("just pushed")
                }
            };
            entry.secure |= url.is_tls();
            entry.insecure |= !url.is_tls();
        }
    }
    Ok(out)
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests;
