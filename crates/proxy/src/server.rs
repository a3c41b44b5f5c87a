//! Wiring of `chorus grpc-proxy start`: the services on one listener (gRPC and the HTTP
//! endpoints, TLS when configured, through the member's own `net` layer, which also
//! accepts etcdctl's URL-shaped `:authority`), the background tasks, and the optional
//! metrics listener and DNS server.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use chorus_api::etcdserverpb::{
    auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use chorus_api::v3electionpb::election_server::ElectionServer;
use chorus_api::v3lockpb::lock_server::LockServer;
use chorus_client::{Client, ConnectOptions, GetOptions};
use chorus_server::net::tls::{server_config, Side, TlsFiles, TlsPolicy};
use chorus_server::net::{serve_listener, Listener, ListenerOptions, RouterService};
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::broadcast::WatchHub;
use crate::cache::Cache;
use crate::cluster::{register, ClusterProxy};
use crate::concurrency::{ElectionProxy, LockProxy};
use crate::error::ProxyError;
use crate::flags::ProxyConfig;
use crate::forward::{AuthProxy, MaintenanceProxy};
use crate::kv::{run_invalidation, KvProxy};
use crate::lease::{KeepAliveHub, LeaseProxy};
use crate::metrics::Metrics;
use crate::namespace::Namespace;
use crate::upstream::Upstream;
use crate::watch::WatchProxy;
use crate::Shutdown;

/// How long open client connections get to finish once the proxy stops.
const DRAIN: Duration = Duration::from_secs(2);

/// Everything the services share.
struct Parts {
    up: Upstream,
    ns: Namespace,
    kv: KvProxy,
    hub: Arc<WatchHub>,
}

fn routes(cfg: &ProxyConfig, p: &Parts) -> Routes {
    let recv = cfg.max_recv_bytes;
    let kv = KvServer::new(p.kv.clone()).max_decoding_message_size(recv);
    let watch = WatchServer::new(WatchProxy::new(p.hub.clone(), p.up.clone(), p.ns.clone()))
        .max_decoding_message_size(recv);
    let lease = LeaseServer::new(LeaseProxy {
        up: p.up.clone(),
        ns: p.ns.clone(),
        hub: Arc::new(KeepAliveHub::default()),
    });
    let cluster = ClusterServer::new(ClusterProxy {
        up: p.up.clone(),
        advertise: cfg.advertise_client_url.clone(),
        prefix: cfg.resolver_prefix.clone(),
    });
    let maintenance = MaintenanceServer::new(MaintenanceProxy { up: p.up.clone() });
    let auth = AuthServer::new(AuthProxy { up: p.up.clone() });
    let lock = LockServer::new(LockProxy {
        up: p.up.clone(),
        ns: p.ns.clone(),
    });
    let election = ElectionServer::new(ElectionProxy {
        up: p.up.clone(),
        ns: p.ns.clone(),
    });
    Routes::new(kv)
        .add_service(watch)
        .add_service(lease)
        .add_service(cluster)
        .add_service(maintenance)
        .add_service(auth)
        .add_service(lock)
        .add_service(election)
}

/// `/metrics` and `/proxy/metrics`: the proxy's metrics; `/health` and `/proxy/health`:
/// whether the cluster answers a read through the proxy (etcd's `HandleHealth`).
fn http_router(up: Upstream, metrics: Arc<Metrics>) -> axum::Router {
    let render = move || {
        let metrics = metrics.clone();
        async move {
            (
                [("content-type", "text/plain; version=0.0.4")],
                metrics.render(),
            )
        }
    };
    let health = move || {
        let up = up.clone();
        async move { health(&up).await }
    };
    axum::Router::new()
        .route("/metrics", get(render.clone()))
        .route("/proxy/metrics", get(render))
        .route("/health", get(health.clone()))
        .route("/proxy/health", get(health))
}

async fn health(up: &Upstream) -> (http::StatusCode, String) {
    let read = up.client().get(
        "health",
        GetOptions {
            count_only: true,
            ..Default::default()
        },
    );
    let result = tokio::time::timeout(Duration::from_secs(5), read).await;
    let ok = match &result {
        Ok(Ok(_)) => Ok(()),
        // A refused read still proves that the cluster answers (etcd's rule).
        Ok(Err(e)) if e.code() == Some(tonic::Code::PermissionDenied) => Ok(()),
        Ok(Err(e)) => Err(e.message().unwrap_or("unavailable").to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    match ok {
        Ok(()) => (http::StatusCode::OK, r#"{"health":"true"}"#.to_string()),
        Err(reason) => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "health": "false", "reason": reason }).to_string(),
        ),
    }
}

async fn bind(addr: &str) -> Result<Listener, ProxyError> {
    TcpListener::bind(addr)
        .await
        .map(Listener::Tcp)
        .map_err(|source| ProxyError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// The listener's TLS (`--cert-file`, `--key-file`, `--trusted-ca-file`).
fn listen_tls(cfg: &ProxyConfig) -> Result<Option<Arc<rustls::ServerConfig>>, ProxyError> {
    let Some((cert, key, ca)) = &cfg.listen_tls else {
        return Ok(None);
    };
    let files = TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        trusted_ca: ca.clone(),
        client_cert_auth: ca.is_some(),
        ..Default::default()
    };
    Ok(Some(server_config(
        Side::Client,
        &files,
        &TlsPolicy::default(),
    )?))
}

/// The services' shared parts, built from the configuration and the upstream client.
fn parts(cfg: &ProxyConfig, client: Client, shutdown: &Shutdown) -> (Parts, Arc<Metrics>) {
    let up = Upstream::new(client);
    let metrics = Arc::new(Metrics::default());
    let ns = Namespace::new(cfg.namespace.as_bytes());
    let kv = KvProxy {
        up: up.clone(),
        ns: ns.clone(),
        cache: Arc::new(Cache::default()),
        metrics: metrics.clone(),
    };
    let hub = Arc::new(WatchHub::new(
        up.clone(),
        ns.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    (Parts { up, ns, kv, hub }, metrics)
}

/// The tasks beside the gRPC listener: cache invalidation, registration, the metrics
/// listener and the DNS server, as configured.
async fn background(
    cfg: &ProxyConfig,
    parts: &Parts,
    metrics: &Arc<Metrics>,
    shutdown: &Shutdown,
) -> Result<tokio::task::JoinSet<()>, ProxyError> {
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(run_invalidation(parts.kv.clone(), shutdown.clone()));
    if !cfg.resolver_prefix.is_empty() {
        tasks.spawn(register(
            parts.up.clone(),
            cfg.resolver_prefix.clone(),
            cfg.advertise_client_url.clone(),
            cfg.resolver_ttl,
            shutdown.clone(),
        ));
    }
    if let Some(addr) = &cfg.metrics_addr {
        let listener = bind(addr).await?;
        let router = http_router(parts.up.clone(), metrics.clone());
        let opts = listener_options(None, shutdown);
        tasks.spawn(serve_listener(listener, RouterService(router), opts));
        tracing::info!(address = %addr, "gRPC proxy listening for metrics");
    }
    if let Some((dns_addr, domain)) = &cfg.dns {
        let server =
            chorus_dns::DnsServer::bind(chorus_dns::DnsConfig::new(dns_addr, domain)?).await?;
        tracing::info!(address = %dns_addr, zone = %domain, "DNS service discovery listening");
        let (client, rx) = (parts.up.client().clone(), shutdown.0.clone());
        tasks.spawn(async move {
            if let Err(e) = server.run(client, rx).await {
                tracing::error!("DNS server stopped: {e}");
            }
        });
    }
    Ok(tasks)
}

/// Runs the proxy until `shutdown` turns true.
pub async fn run(cfg: ProxyConfig, shutdown: Shutdown) -> Result<(), ProxyError> {
    let options = ConnectOptions {
        tls: cfg.client_tls.clone(),
        ..Default::default()
    };
    let client = Client::connect(&cfg.endpoints, options).await?;
    let (parts, metrics) = parts(&cfg, client, &shutdown);
    let tls = listen_tls(&cfg)?;
    let listener = bind(&cfg.listen_addr).await?;
    let router = routes(&cfg, &parts)
        .prepare()
        .into_axum_router()
        .merge(http_router(parts.up.clone(), metrics.clone()));
    let mut tasks = background(&cfg, &parts, &metrics, &shutdown).await?;
    tracing::info!(
        address = %cfg.listen_addr,
        endpoints = ?cfg.endpoints,
        namespace = %cfg.namespace,
        "gRPC proxy server listening"
    );
    let opts = listener_options(tls, &shutdown);
    serve_listener(listener, RouterService(router), opts).await;
    // The background tasks saw the same signal: the registration revokes its lease, the
    // DNS server closes its sockets. Give them the drain time, then stop the rest.
    let finished = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN, finished).await.is_err() {
        tasks.shutdown().await;
    }
    Ok(())
}

fn listener_options(
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: &Shutdown,
) -> ListenerOptions {
    ListenerOptions {
        tls,
        keepalive: Some((Duration::from_secs(7200), Duration::from_secs(20))),
        shutdown: shutdown.0.clone(),
        drain: DRAIN,
    }
}
