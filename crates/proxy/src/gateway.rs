//! `chorus gateway start`: etcd's L4 TCP gateway (`proxy/tcpproxy`). Each accepted
//! connection is spliced to one endpoint, chosen round-robin among those not marked
//! down; an endpoint whose dial fails is marked down for `--retry-delay` and the next
//! one is tried. Bytes are copied both ways unchanged (TLS passes through end to end).
//! At most [`MAX_CONNECTIONS`] connections at once; accepting waits at the limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::error::ProxyError;
use crate::flags::{strip_scheme, GatewayFlags};
use crate::Shutdown;

/// Connections the gateway serves at once.
pub const MAX_CONNECTIONS: usize = 65_536;
/// Bound on one dial to an endpoint.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The gateway's configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen_addr: String,
    pub endpoints: Vec<String>,
    pub retry_delay: Duration,
}

impl GatewayFlags {
    pub fn into_config(self) -> Result<GatewayConfig, ProxyError> {
        if !self.discovery_srv.is_empty() {
            return Err(ProxyError::Invalid(
                "--discovery-srv is not implemented yet in chorus (see docs/proxy.md)".into(),
            ));
        }
        let endpoints: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| strip_scheme(e).to_string())
            .collect();
        if endpoints.is_empty() {
            return Err(ProxyError::Invalid("no endpoints given".into()));
        }
        Ok(GatewayConfig {
            listen_addr: strip_scheme(&self.listen_addr).to_string(),
            endpoints,
            retry_delay: self.retry_delay,
        })
    }
}

struct Remote {
    addr: String,
    /// Down until then.
    down_until: Mutex<Option<Instant>>,
}

impl Remote {
    fn is_up(&self) -> bool {
        self.down_until.lock().is_none_or(|t| Instant::now() >= t)
    }
}

struct Remotes {
    list: Vec<Remote>,
    next: AtomicUsize,
    retry_delay: Duration,
}

impl Remotes {
    /// Dials endpoints round-robin, skipping those marked down; when all are down,
    /// tries each anyway once (a member may be back before its delay ends).
    async fn dial(&self) -> Option<(TcpStream, &str)> {
        let n = self.list.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for pass in 0..2 {
            for i in 0..n {
                let remote = &self.list[(start + i) % n];
                if pass == 0 && !remote.is_up() {
                    continue;
                }
                let dialed = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(&remote.addr));
                match dialed.await {
                    Ok(Ok(stream)) => {
                        *remote.down_until.lock() = None;
                        return Some((stream, &remote.addr));
                    }
                    _ => {
                        tracing::warn!(remote = %remote.addr, "failed to connect; marking it down");
                        *remote.down_until.lock() = Some(Instant::now() + self.retry_delay);
                    }
                }
            }
        }
        None
    }
}

/// Runs the gateway until `shutdown` turns true.
pub async fn run(cfg: GatewayConfig, mut shutdown: Shutdown) -> Result<(), ProxyError> {
    let listener = TcpListener::bind(&cfg.listen_addr)
        .await
        .map_err(|source| ProxyError::Bind {
            addr: cfg.listen_addr.clone(),
            source,
        })?;
    let remotes = Arc::new(Remotes {
        list: cfg
            .endpoints
            .iter()
            .map(|a| Remote {
                addr: a.clone(),
                down_until: Mutex::new(None),
            })
            .collect(),
        next: AtomicUsize::new(0),
        retry_delay: cfg.retry_delay,
    });
    tracing::info!(address = %cfg.listen_addr, endpoints = ?cfg.endpoints, "ready to proxy client requests");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            _ = shutdown.wait() => break,
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
        };
        let (client, peer) = tokio::select! {
            _ = shutdown.wait() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let remotes = remotes.clone();
        connections.spawn(async move {
            let _slot = slot;
            splice(remotes, client, peer).await
        });
    }
    connections.shutdown().await;
    Ok(())
}

async fn splice(remotes: Arc<Remotes>, mut client: TcpStream, peer: std::net::SocketAddr) {
    let _ = client.set_nodelay(true);
    let Some((mut remote, addr)) = remotes.dial().await else {
        tracing::warn!(%peer, "no endpoint available; closing the connection");
        return;
    };
    let _ = remote.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut remote).await {
        tracing::debug!(%peer, remote = %addr, "connection ended: {e}");
    }
}
