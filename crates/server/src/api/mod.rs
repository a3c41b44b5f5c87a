//! The API adapters: thin layers that validate a request, call the member API and shape
//! the response. gRPC (`grpc/`, one file per etcd service), the HTTP side of the client
//! port (`http/`: health, version, metrics, the `/v3` JSON gateway) and the v2 keys API
//! (`v2/`). Nothing below this layer knows about any of them.
//!
//! ```text
//!   connection (net) ─▶ ClientService ─┬ content-type application/grpc* ─▶ grpc routes
//!                                      │     (a learner serves Status and Range only)
//!                                      └ anything else ─▶ access control (Host whitelist,
//!                                           CORS; net::policy) ─▶ http router (+ v2, gateway)
//!   (a gRPC-only or HTTP-only listener of --listen-client-http-urls skips the choice)
//! ```

pub mod dns;
pub mod grpc;
pub mod http;
pub mod otel;
pub mod v2;

use std::sync::Arc;

use crate::member::Member;
use crate::net::policy::{set_cors, Admission, HttpPolicy, StreamLimit};
use crate::net::{
    ClientIdentity, ConnService, Listener, ListenerOptions, OverTls, RouterService, ServeSettings,
    Traffic,
};
use grpc::health::HealthNotifier;

type Reply = Result<axum::response::Response, std::convert::Infallible>;

/// Dispatches on the request: gRPC (`content-type: application/grpc*`) to the v3 services,
/// everything else to the HTTP handlers, behind etcd's access controller.
#[derive(Clone)]
struct ClientService {
    member: Arc<Member>,
    grpc: axum::Router,
    http: axum::Router,
    traffic: Traffic,
    policy: Arc<HttpPolicy>,
    /// `--max-concurrent-streams` over the listener's `/v3/` gateway requests.
    gateway_streams: Option<StreamLimit>,
    /// `--enable-distributed-tracing`: a span per gRPC request.
    tracing: Option<otel::Tracing>,
}

/// How one client listener serves (etcd's `serveCtx` and access controller).
#[derive(Clone, Debug)]
pub struct ClientPort {
    pub settings: ServeSettings,
    pub policy: HttpPolicy,
    /// Serve `/debug/pprof/` (`--enable-pprof`, or `--log-level=debug` as in etcd).
    pub pprof: bool,
    /// `--enable-distributed-tracing`.
    pub tracing: Option<otel::Tracing>,
}

impl Default for ClientPort {
    fn default() -> Self {
        ClientPort {
            settings: ServeSettings::default(),
            policy: HttpPolicy::allow_all(),
            pprof: false,
            tracing: None,
        }
    }
}

impl ClientService {
    fn new(member: &Arc<Member>, port: &ClientPort) -> ClientService {
        let health = HealthNotifier::new(member.limits.stop_grpc_service_on_defrag);
        let gateway = member.limits.grpc_gateway.then(|| health.clone());
        ClientService {
            member: member.clone(),
            grpc: grpc::routes(member, &health).prepare().into_axum_router(),
            http: http::router(member.clone(), gateway, port.pprof),
            traffic: port.settings.traffic,
            policy: Arc::new(port.policy.clone()),
            gateway_streams: StreamLimit::new(port.settings.max_concurrent_streams),
            tracing: port.tracing.clone(),
        }
    }

    fn grpc_call(
        self,
        req: axum::extract::Request,
    ) -> futures::future::Either<std::future::Ready<Reply>, impl std::future::Future<Output = Reply>>
    {
        use tower::Service as _;
        // etcd's learner serves only Status and serializable Range (checked in Range).
        if self.member.is_learner()
            && !matches!(
                req.uri().path(),
                "/etcdserverpb.Maintenance/Status" | "/etcdserverpb.KV/Range"
            )
        {
            let refused = tonic::Status::from(crate::error::EtcdError::NotSupportedForLearner)
                .into_http::<axum::body::Body>();
            return futures::future::Either::Left(std::future::ready(Ok(refused)));
        }
        let mut router = self.grpc;
        futures::future::Either::Right(async move { router.call(req).await })
    }

    /// etcd's `accessController`: the Host whitelist (plain connections), CORS, OPTIONS;
    /// the gateway's stream limit; then the HTTP handlers.
    fn http_call(self, req: axum::extract::Request) -> impl std::future::Future<Output = Reply> {
        use tower::Service as _;
        let over_tls = req.extensions().get::<OverTls>().is_some();
        let admitted = self.policy.admit(&req, over_tls);
        let gateway =
            req.uri().path().starts_with("/v3/") || req.uri().path().starts_with("/v3beta/");
        let limit = self.gateway_streams.filter(|_| gateway);
        let mut router = self.http;
        async move {
            let origin = match admitted {
                Admission::Serve { cors_origin } => cors_origin,
                Admission::Reply(reply) => return Ok(reply),
            };
            let call = async move { router.call(req).await.unwrap_or_else(|e| match e {}) };
            let mut resp = match limit {
                Some(limit) => limit.hold(call).await,
                None => call.await,
            };
            set_cors(resp.headers_mut(), origin.as_deref());
            Ok(resp)
        }
    }
}

impl ConnService for ClientService {
    fn call(
        self,
        identity: Option<ClientIdentity>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<Output = Reply> + Send + 'static {
        let is_grpc = match self.traffic {
            Traffic::GrpcOnly => true,
            Traffic::HttpOnly => false,
            Traffic::Both => req
                .headers()
                .get(::http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc")),
        };
        if is_grpc {
            let traced = self.tracing.as_ref().map(|t| {
                let peer = req.extensions().get::<crate::net::RemoteAddr>();
                t.start(&req, peer.map(|p| &*p.0))
            });
            let (mut req, call) = grpc::metrics::Call::start(req);
            if let Some(id) = identity {
                req.extensions_mut().insert(id);
            }
            let reply = self.grpc_call(req);
            futures::future::Either::Left(async move {
                let resp = reply.await.unwrap_or_else(|e| match e {});
                let resp = match call {
                    Some(call) => call.finish(resp),
                    None => resp,
                };
                Ok(match traced {
                    Some(traced) => traced.finish(resp),
                    None => resp,
                })
            })
        } else {
            let mut req = req.map(axum::body::Body::new);
            if let Some(id) = identity {
                req.extensions_mut().insert(id);
            }
            futures::future::Either::Right(self.http_call(req))
        }
    }
}

/// Serves the client API (gRPC and HTTP) on the listener until shutdown.
pub async fn serve_clients(member: Arc<Member>, listener: Listener, opts: ListenerOptions) {
    serve_client_port(member, listener, opts, ClientPort::default()).await
}

/// [`serve_clients`] with the listener's settings (TLS and plain on one address, gRPC or
/// HTTP only, stream limit, access control).
pub async fn serve_client_port(
    member: Arc<Member>,
    listener: Listener,
    opts: ListenerOptions,
    port: ClientPort,
) {
    let opts = ListenerOptions {
        keepalive: member.limits.grpc_keepalive,
        ..opts
    };
    let service = ClientService::new(&member, &port);
    crate::net::serve_with(listener, service, opts, port.settings).await
}

/// Serves `/metrics` and `/health` (`--listen-metrics-urls`) until shutdown.
pub async fn serve_metrics(member: Arc<Member>, listener: Listener, opts: ListenerOptions) {
    let service = RouterService(http::metrics_router(member));
    crate::net::serve_listener(listener, service, opts).await
}
