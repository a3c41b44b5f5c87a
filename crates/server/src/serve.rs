//! Client listeners: one port serves gRPC (HTTP/2, prior knowledge) and HTTP/1.1 (curl,
//! `/health`, `/version`) side by side, as etcd does.

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service as _;

use crate::config::Url;
use crate::server::Server;

/// Binds every `--listen-client-urls` address. Fails like etcd when one cannot be bound.
pub async fn bind_client_listeners(urls: &[Url]) -> Result<Vec<(Url, TcpListener)>, String> {
    let mut out = Vec::new();
    for url in urls {
        if url.is_tls() {
            return Err(format!(
                "listen-client-urls {url}: https client URLs are not implemented yet"
            ));
        }
        if url.is_unix() {
            return Err(format!(
                "listen-client-urls {url}: unix sockets are not implemented yet"
            ));
        }
        let listener = TcpListener::bind(&url.host)
            .await
            .map_err(|e| format!("listen tcp {}: bind: {e}", url.host))?;
        out.push((url.clone(), listener));
    }
    Ok(out)
}

/// Serves the client API on the listener until `shutdown` turns true.
pub async fn serve_clients(
    server: Arc<Server>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = client_service(&server);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(Some(u32::MAX))
        .keep_alive_interval(Some(std::time::Duration::from_secs(2 * 60 * 60)));
    let builder = Arc::new(builder);
    loop {
        let (stream, _) = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let svc = hyper::service::service_fn({
            let app = app.clone();
            move |req: hyper::Request<hyper::body::Incoming>| app.clone().call(req)
        });
        let builder = builder.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped(&mut shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// Dispatches on the request: gRPC (`content-type: application/grpc*`) to the v3 services,
/// everything else to the HTTP handlers.
#[derive(Clone)]
struct ClientService {
    grpc: axum::Router,
    http: axum::Router,
}

fn client_service(server: &Arc<Server>) -> ClientService {
    ClientService {
        grpc: crate::grpc::routes(server).prepare().into_axum_router(),
        http: crate::http::router(server.clone(), server.limits.grpc_gateway),
    }
}

impl ClientService {
    async fn call(
        mut self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<axum::response::Response, std::convert::Infallible> {
        let is_grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let req = req.map(axum::body::Body::new);
        if is_grpc {
            self.grpc.call(req).await
        } else {
            self.http.call(req).await
        }
    }
}
