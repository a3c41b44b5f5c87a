//! Listeners: one client port serves gRPC (HTTP/2, prior knowledge or ALPN `h2`) and
//! HTTP/1.1 (curl, `/health`, `/version`, `/v3/*`) side by side, as etcd does; the peer
//! port serves chorus's peer protocol. Both may be TLS.
//!
//! ```text
//!  TcpListener ─accept─▶ [TLS handshake] ─▶ AuthorityFix ─▶ Coalesce ─▶ hyper auto (h1 | h2) ─▶ service
//!                         └ client CN ────────────────────────────────▶ request extension
//! ```
//!
//! `AuthorityFix` (`serve/authority.rs`) lets etcdctl's URL-shaped HTTP/2 `:authority`
//! through h2; for every other client it steps aside after the first request's headers.
//! `Coalesce` (`serve/coalesce.rs`) puts each flush's first write off by one scheduling
//! turn so that responses finished together leave in one `writev`.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service as _;

use crate::config::Url;
use crate::server::Server;

mod authority;
mod coalesce;
mod hpack;

use authority::AuthorityFix;
use coalesce::{Coalesce, InFlight};

/// The common name of the client certificate a TLS connection was verified with: the
/// request's user identity (used by auth).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity(pub Arc<str>);

/// Binds every listen URL of one kind (`what` names the flag for errors). Fails like etcd
/// when one cannot be bound; https URLs need `tls`.
pub async fn bind_listeners(
    what: &str,
    urls: &[Url],
    tls: bool,
) -> Result<Vec<(Url, TcpListener)>, String> {
    let mut out = Vec::new();
    for url in urls {
        if url.is_tls() && !tls {
            return Err(format!(
                "{what} {url}: https needs a certificate (--cert-file/--key-file or auto TLS)"
            ));
        }
        if url.is_unix() {
            return Err(format!(
                "{what} {url}: unix sockets are not implemented yet in chorus"
            ));
        }
        let listener = TcpListener::bind(&url.host)
            .await
            .map_err(|e| format!("listen tcp {}: bind: {e}", url.host))?;
        out.push((url.clone(), listener));
    }
    Ok(out)
}

fn http_builder(keepalive: Option<(Duration, Duration)>) -> Arc<Builder<TokioExecutor>> {
    let mut builder = Builder::new(TokioExecutor::new());
    // Go writes HTTP/1 header names in canonical form (`X-Etcd-Index`, `Content-Type`);
    // scripts that grep `curl -i` output match on it. hyper would write them lower-case.
    builder.http1().title_case_headers(true);
    let mut h2 = builder.http2();
    h2.timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(Some(u32::MAX));
    if let Some((interval, timeout)) = keepalive {
        h2.keep_alive_interval(Some(interval))
            .keep_alive_timeout(timeout);
    }
    Arc::new(builder)
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

/// Accepts connections (TLS when `tls` is set) and serves them with `service` until
/// `shutdown` turns true; open connections then finish gracefully.
pub async fn serve_listener(
    listener: TcpListener,
    service: impl ConnService,
    tls: Option<Arc<rustls::ServerConfig>>,
    keepalive: Option<(Duration, Duration)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = http_builder(keepalive);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        let service = service.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, None, service, builder, shutdown).await,
                Some(acceptor) => {
                    // A client that never finishes its handshake does not hold a task forever.
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    let tls = match handshake.await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, "TLS handshake refused: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(crate::tls::common_name)
                        .map(|cn| ClientIdentity(cn.into()));
                    serve_connection(tls, identity, service, builder, shutdown).await
                }
            }
        });
    }
}

async fn serve_connection<I>(
    io: I,
    identity: Option<ClientIdentity>,
    service: impl ConnService,
    builder: Arc<Builder<TokioExecutor>>,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let in_flight = InFlight::default();
    let counted = in_flight.clone();
    let svc = hyper::service::service_fn(move |req| {
        let guard = counted.enter();
        let call = service.clone().call(identity.clone(), req);
        async move {
            let _counted = guard;
            call.await
        }
    });
    // etcdctl's `endpoint status|hashkv` send `:authority: http://host:port`, which h2
    // refuses; the wrapper rewrites it (and is out of the way for every other client).
    let io = TokioIo::new(Coalesce::new(AuthorityFix::new(io), in_flight));
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Serves the client API on the listener until `shutdown` turns true.
pub async fn serve_clients(
    server: Arc<Server>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: watch::Receiver<bool>,
) {
    let keepalive = server.limits.grpc_keepalive;
    serve_listener(listener, client_service(&server), tls, keepalive, shutdown).await
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// Dispatches on the request: gRPC (`content-type: application/grpc*`) to the v3 services,
/// everything else to the HTTP handlers.
#[derive(Clone)]
struct ClientService {
    server: Arc<Server>,
    grpc: axum::Router,
    http: axum::Router,
}

fn client_service(server: &Arc<Server>) -> ClientService {
    ClientService {
        server: server.clone(),
        grpc: crate::grpc::routes(server).prepare().into_axum_router(),
        http: crate::http::router(server.clone(), server.limits.grpc_gateway),
    }
}

impl ConnService for ClientService {
    fn call(
        self,
        identity: Option<ClientIdentity>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<Output = Result<axum::response::Response, std::convert::Infallible>>
           + Send
           + 'static {
        let is_grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let mut req = req.map(axum::body::Body::new);
        if let Some(id) = identity {
            req.extensions_mut().insert(id);
        }
        // etcd's learner serves only Status and serializable Range (checked in Range).
        if is_grpc
            && self.server.is_learner()
            && !matches!(
                req.uri().path(),
                "/etcdserverpb.Maintenance/Status" | "/etcdserverpb.KV/Range"
            )
        {
            let refused = tonic::Status::from(crate::error::EtcdError::NotSupportedForLearner)
                .into_http::<axum::body::Body>();
            return futures::future::Either::Left(std::future::ready(Ok(refused)));
        }
        let mut router = if is_grpc { self.grpc } else { self.http };
        futures::future::Either::Right(async move { router.call(req).await })
    }
}

/// A plain axum router as a connection service (the peer port).
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
        let mut req = req.map(axum::body::Body::new);
        if let Some(id) = identity {
            req.extensions_mut().insert(id);
        }
        let mut router = self.0;
        async move { router.call(req).await }
    }
}
