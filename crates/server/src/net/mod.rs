//! Listeners: one client port serves gRPC (HTTP/2, prior knowledge or ALPN `h2`) and
//! HTTP/1.1 (curl, `/health`, `/version`, `/v3/*`) side by side, as etcd does; the peer
//! port serves chorus's peer protocol. Both may be TLS. Nothing here knows the member:
//! what a request does is the [`ConnService`]'s business.
//!
//! ```text
//!  Listener (TCP | Unix, listen.rs)
//!     ─accept─▶ [sniff: TLS or plain] ─▶ [TLS handshake] ─▶ AuthorityFix ─▶ Coalesce
//!                                         └ client CN, OverTls ──────▶ request extensions
//!     ─▶ hyper (h1 | h2; one of them on a gRPC-only / HTTP-only listener) ─▶ ConnService
//!     └ connections: at most MAX_CONNECTIONS, each a tracked task; on shutdown the
//!       listener stops accepting, every connection finishes its in-flight requests
//!       (graceful shutdown) within the drain deadline, then the rest are aborted.
//! ```
//!
//! `AuthorityFix` (`authority.rs`) lets etcdctl's URL-shaped HTTP/2 `:authority`
//! through h2; for every other client it steps aside after the first request's headers.
//! `Coalesce` (`coalesce.rs`) puts each flush's first write off by one scheduling
//! turn so that responses finished together leave in one `writev`.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

mod authority;
mod coalesce;
mod hpack;
pub mod listen;
pub mod policy;
pub mod reply;
mod sniff;
pub mod tls;

use authority::AuthorityFix;
use coalesce::{Coalesce, InFlight};
pub use listen::{
    bind_listeners, bind_listeners_with, group_client_urls, BindError, ClientAddr, Listener,
    SocketOptions, Stream, Traffic,
};

/// Open connections per listener; accepting pauses at the limit (backpressure).
pub const MAX_CONNECTIONS: usize = 65_536;

/// How long open client connections get to finish their requests once shutdown begins
/// (etcd gives its gRPC server's GracefulStop a request timeout; long-lived streams such
/// as watches are cut at the deadline).
pub const CLIENT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The common name of the client certificate a TLS connection was verified with: the
/// request's user identity (used by auth).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity(pub Arc<str>);

/// A request extension on every request of a TLS connection (etcd's `req.TLS != nil`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverTls;

/// How long an HTTP/1 connection gets to send a whole request header, idle keep-alive
/// time included, before it is closed: etcd 3.6's `ReadHeaderTimeout` on its client
/// servers (3.4 and 3.5 wait forever, which lets a slowloris client keep connections).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);

fn http_builder(
    keepalive: Option<(Duration, Duration)>,
    max_concurrent_streams: u32,
    versions: Versions,
    header_read_timeout: Duration,
) -> Arc<Builder<TokioExecutor>> {
    let mut builder = Builder::new(TokioExecutor::new());
    // Go writes HTTP/1 header names in canonical form (`X-Etcd-Index`, `Content-Type`);
    // scripts that grep `curl -i` output match on it. hyper would write them lower-case.
    builder
        .http1()
        .title_case_headers(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let mut h2 = builder.http2();
    // --max-concurrent-streams: the SETTINGS_MAX_CONCURRENT_STREAMS a client is given.
    h2.timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(Some(max_concurrent_streams));
    if let Some((interval, timeout)) = keepalive {
        h2.keep_alive_interval(Some(interval))
            .keep_alive_timeout(timeout);
    }
    Arc::new(match versions {
        Versions::Any => builder,
        Versions::Http1 => builder.http1_only(),
        Versions::Http2 => builder.http2_only(),
    })
}

/// The HTTP versions a connection may speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Versions {
    Any,
    Http1,
    Http2,
}

/// A per-connection service: gets the connection's client identity, if any.
pub trait ConnService: Clone + Send + Sync + 'static {
    fn call(
        self,
        identity: Option<ClientIdentity>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<Output = Result<axum::response::Response, std::convert::Infallible>>
           + Send
           + 'static;
}

/// What a listener needs besides its socket and service.
#[derive(Clone)]
pub struct ListenerOptions {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// HTTP/2 keep-alive pings: interval and timeout.
    pub keepalive: Option<(Duration, Duration)>,
    /// Turns true when the member stops.
    pub shutdown: watch::Receiver<bool>,
    /// How long open connections get to finish once shutdown begins.
    pub drain: Duration,
}

/// How a client listener serves beyond [`ListenerOptions`] (etcd's `serveCtx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeSettings {
    /// With a TLS configuration: plain connections too (`http://` and `https://` URLs of
    /// one address), told apart by their first byte as etcd's `cmux` does.
    pub plain_too: bool,
    /// gRPC and HTTP, or one of them (`--listen-client-http-urls`): a gRPC-only
    /// listener speaks HTTP/2 only; a plain HTTP-only one HTTP/1 only (as etcd's
    /// `cmux` matchers leave them).
    pub traffic: Traffic,
    /// `--max-concurrent-streams` (HTTP/2 SETTINGS).
    pub max_concurrent_streams: u32,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            plain_too: false,
            traffic: Traffic::Both,
            max_concurrent_streams: u32::MAX,
        }
    }
}

/// How connections of a listener start: plain, TLS, or either (sniffed).
#[derive(Clone)]
enum Security {
    Plain,
    Tls(Arc<rustls::ServerConfig>),
    Sniff(Arc<rustls::ServerConfig>),
}

impl Security {
    fn new(tls: Option<Arc<rustls::ServerConfig>>, settings: &ServeSettings) -> Security {
        let Some(mut cfg) = tls else {
            return Security::Plain;
        };
        if settings.traffic == Traffic::GrpcOnly {
            let mut only_h2 = (*cfg).clone();
            only_h2.alpn_protocols = vec![b"h2".to_vec()];
            cfg = Arc::new(only_h2);
        }
        if settings.plain_too {
            Security::Sniff(cfg)
        } else {
            Security::Tls(cfg)
        }
    }
}

/// Accepts connections (TLS when configured) and serves them with `service` until
/// shutdown; then stops accepting and waits for the open connections to finish their
/// in-flight requests, at most `opts.drain`, before aborting the rest.
pub async fn serve_listener(listener: Listener, service: impl ConnService, opts: ListenerOptions) {
    serve_with(listener, service, opts, ServeSettings::default()).await
}

/// [`serve_listener`] with a client listener's settings.
pub async fn serve_with(
    listener: Listener,
    service: impl ConnService,
    opts: ListenerOptions,
    settings: ServeSettings,
) {
    let conn = Connection {
        builders: Builders::new(opts.keepalive, &settings),
        shutdown: opts.shutdown.clone(),
    };
    let security = Security::new(opts.tls.clone(), &settings);
    let mut shutdown = opts.shutdown.clone();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let shared = Arc::new((conn, service, security));
    loop {
        // A connection slot first: at the limit, accepting waits (the kernel's backlog
        // holds further clients) until a connection closes.
        let slot = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            slot = slots.clone().acquire_owned() => slot.expect("semaphore never closed"),
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        connections.spawn(async move {
            let _slot = slot;
            // A silent connection holds only this small task (the listener's settings
            // behind one pointer): the connection's state (hyper's, TLS's, their
            // buffers) is allocated once it has bytes to read.
            let (conn, service, security) = &*shared;
            if conn.first_bytes(&stream, security).await {
                let (conn, service, security) = (conn.clone(), service.clone(), security.clone());
                Box::pin(conn.serve(stream, peer, security, service)).await
            }
        });
    }
    drop(listener);
    drain(&mut connections, opts.drain).await;
}

/// Waits for the connections (told to shut down gracefully) until the drain deadline.
async fn drain(connections: &mut JoinSet<()>, deadline: Duration) {
    let all = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, all).await.is_err() {
        tracing::warn!(
            left = connections.len(),
            "connections did not finish within the drain deadline; closing them"
        );
        connections.shutdown().await;
    }
}

/// The HTTP servers of a listener's plain and TLS connections, and the versions each
/// speaks.
#[derive(Clone)]
struct Builders {
    plain: (Arc<Builder<TokioExecutor>>, Versions),
    tls: (Arc<Builder<TokioExecutor>>, Versions),
}

impl Builders {
    fn new(keepalive: Option<(Duration, Duration)>, settings: &ServeSettings) -> Builders {
        let (plain, tls) = match settings.traffic {
            Traffic::Both => (Versions::Any, Versions::Any),
            Traffic::GrpcOnly => (Versions::Http2, Versions::Http2),
            Traffic::HttpOnly => (Versions::Http1, Versions::Any),
        };
        let streams = settings.max_concurrent_streams;
        Builders {
            plain: (
                http_builder(keepalive, streams, plain, HEADER_READ_TIMEOUT),
                plain,
            ),
            tls: (
                http_builder(keepalive, streams, tls, HEADER_READ_TIMEOUT),
                tls,
            ),
        }
    }
}

/// One listener's way of serving a connection.
#[derive(Clone)]
struct Connection {
    builders: Builders,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    /// Waits until the client sent something (or closed): false at shutdown, on an error,
    /// or when a TLS client says nothing within the handshake's time.
    async fn first_bytes(&self, stream: &Stream, security: &Security) -> bool {
        let mut shutdown = self.shutdown.clone();
        let readable = async {
            match security {
                Security::Plain => stream.readable().await.is_ok(),
                Security::Tls(_) | Security::Sniff(_) => {
                    let wait =
                        tokio::time::timeout(tls::accept::HANDSHAKE_TIMEOUT, stream.readable());
                    matches!(wait.await, Ok(Ok(())))
                }
            }
        };
        tokio::select! {
            ready = readable => ready,
            _ = stopped(&mut shutdown) => false,
        }
    }

    async fn serve(
        self,
        stream: Stream,
        peer: String,
        security: Security,
        service: impl ConnService,
    ) {
        let service = WithRemoteAddr {
            inner: service,
            addr: RemoteAddr(peer.as_str().into()),
        };
        match security {
            Security::Plain => self.run(stream, None, false, service).await,
            Security::Tls(cfg) => self.serve_tls(stream, &peer, cfg, service).await,
            Security::Sniff(cfg) => {
                let sniffed =
                    tokio::time::timeout(tls::accept::HANDSHAKE_TIMEOUT, sniff::sniff_tls(stream));
                match sniffed.await {
                    Ok(Ok(Some((true, io)))) => self.serve_tls(io, &peer, cfg, service).await,
                    Ok(Ok(Some((false, io)))) => self.run(io, None, false, service).await,
                    _ => {}
                }
            }
        }
    }

    async fn serve_tls<I>(
        self,
        io: I,
        peer: &str,
        cfg: Arc<rustls::ServerConfig>,
        service: impl ConnService,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(tls) = tls::accept::accept(io, peer, cfg).await else {
            return;
        };
        let identity = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(tls::common_name)
            .map(|cn| ClientIdentity(cn.into()));
        self.run(tls, identity, true, service).await
    }

    async fn run<I>(
        mut self,
        io: I,
        identity: Option<ClientIdentity>,
        over_tls: bool,
        service: impl ConnService,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let in_flight = InFlight::default();
        let counted = in_flight.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            let guard = counted.enter();
            if over_tls {
                req.extensions_mut().insert(OverTls);
            }
            let call = service.clone().call(identity.clone(), req);
            // Boxed: hyper spawns one task per HTTP/2 stream holding this future, and tokio
            // copies a task's future when it creates and finishes it; inline, the whole
            // gRPC/HTTP routing state (kilobytes) was copied several times per request.
            Box::pin(async move {
                let _counted = guard;
                call.await
            })
        });
        // etcdctl's `endpoint status|hashkv` send `:authority: http://host:port`, which h2
        // refuses; the wrapper rewrites it (and is out of the way for every other client).
        let io = TokioIo::new(Coalesce::new(AuthorityFix::new(io), in_flight));
        let (builder, versions) = if over_tls {
            self.builders.tls.clone()
        } else {
            self.builders.plain.clone()
        };
        // Finish the requests in flight at shutdown, accept no new ones.
        macro_rules! drive {
            ($conn:expr) => {{
                let conn = $conn;
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stopped(&mut self.shutdown) => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            }};
        }
        // hyper-util keeps to one HTTP version only without upgrades.
        if versions == Versions::Any {
            drive!(builder.serve_connection_with_upgrades(io, svc))
        } else {
            drive!(builder.serve_connection(io, svc))
        }
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// The client's address (`ip:port`), in every request's extensions (the v2 proxy's
/// `X-Forwarded-For`).
#[derive(Clone, Debug)]
pub struct RemoteAddr(pub Arc<str>);

/// A connection service that tags each request with the connection's [`RemoteAddr`].
#[derive(Clone)]
struct WithRemoteAddr<S> {
    inner: S,
    addr: RemoteAddr,
}

impl<S: ConnService> ConnService for WithRemoteAddr<S> {
    fn call(
        self,
        identity: Option<ClientIdentity>,
        mut req: hyper::Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<Output = Result<axum::response::Response, std::convert::Infallible>>
           + Send
           + 'static {
        req.extensions_mut().insert(self.addr);
        self.inner.call(identity, req)
    }
}

/// A plain axum router as a connection service (the peer and metrics ports).
#[derive(Clone)]
pub struct RouterService(pub axum::Router);

impl ConnService for RouterService {
    fn call(
        self,
        identity: Option<ClientIdentity>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<Output = Result<axum::response::Response, std::convert::Infallible>>
           + Send
           + 'static {
        use tower::Service as _;
        let mut req = req.map(axum::body::Body::new);
        if let Some(id) = identity {
            req.extensions_mut().insert(id);
        }
        let mut router = self.0;
        async move { router.call(req).await }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A client that sends part of a request header and then nothing (slowloris) is
    /// disconnected once the header read timeout has passed.
    #[tokio::test]
    async fn a_header_sent_too_slowly_closes_the_connection() {
        let builder = http_builder(None, u32::MAX, Versions::Http1, Duration::from_millis(200));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(hyper::Response::new(String::new()))
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        // Bounded: a server that never closes fails the test instead of hanging it.
        let read = tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut rest));
        // Closed (cleanly or by a reset): the read ends.
        read.await.expect("the connection stays open").ok();
    }
}
