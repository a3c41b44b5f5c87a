//! etcd 3.4/3.5's v2 proxy (`--proxy=on|readonly`): started instead of a member, it
//! reverse-proxies the client port's HTTP to the members' client URLs.
//!
//! ```text
//!  clients (curl, v2 etcdctl) ─ HTTP ─▶ proxy listeners (--listen-client-urls)
//!     /metrics                       answered here (etcd_proxy_* and process families)
//!     /v2/config/local/proxy         answered here: {"endpoints":[...]}
//!     everything else ─ [readonly: non-GET ─▶ 501] ─▶ forward.rs ─▶ first available
//!                                     member client URL (director.rs), fail-over
//!  refresh (every --proxy-refresh-interval): the peer URLs (--initial-cluster, then
//!  <data-dir>/proxy/cluster) ─ Members RPC ─▶ members' client URLs; peer URLs saved
//! ```
//! A data dir that holds `proxy/` starts the proxy again whatever `--proxy` says, one
//! that holds `member/` starts the member, as in etcd.

mod cluster_file;
pub mod director;
mod forward;
mod members;
mod metrics;
mod routes;
mod timeout_io;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chorus_config::{Config, ConfigError, ProxyMode};
use chorus_server::net::tls::{MemberTls, TlsConfigError};
use chorus_server::net::{BindError, Listener, ListenerOptions, RouterService};
use chorus_server::peer::PeerDialer;
use parking_lot::Mutex;

pub use cluster_file::ClusterFileError;
use director::Director;
use timeout_io::Timeouts;

/// What a data directory holds (etcd's `identifyDataDirOrDie`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirType {
    Empty,
    Member,
    Proxy,
}

/// Why the v2 proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum V2ProxyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    ClusterFile(#[from] ClusterFileError),
    #[error("{path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
}

pub fn data_dir_type(cfg: &Config) -> DataDirType {
    if cfg.member_dir().is_dir() {
        DataDirType::Member
    } else if proxy_dir(cfg).is_dir() {
        DataDirType::Proxy
    } else {
        DataDirType::Empty
    }
}

/// Whether this process is the v2 proxy rather than a member.
pub fn should_run(cfg: &Config) -> bool {
    match data_dir_type(cfg) {
        DataDirType::Member => false,
        DataDirType::Proxy => true,
        DataDirType::Empty => cfg.proxy != ProxyMode::Off,
    }
}

fn proxy_dir(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("proxy")
}

fn millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// The peer URLs to ask first: the cluster file's, else `--initial-cluster`'s.
fn initial_peer_urls(cfg: &Config, file: &std::path::Path) -> Result<Vec<String>, V2ProxyError> {
    if let Some(urls) = cluster_file::load(file)? {
        tracing::info!(peer_urls = ?chorus_log::Strings(&urls), cluster_file = %file.display(), "proxy using peer URLS from cluster file");
        return Ok(urls);
    }
    let mut urls: Vec<String> = cfg
        .initial_cluster_map()?
        .iter()
        .flat_map(|(_, u)| u.iter().map(|u| u.to_string()))
        .collect();
    urls.sort();
    tracing::info!(peer_urls = ?chorus_log::Strings(&urls), "proxy using peer URLS");
    Ok(urls)
}

/// Where the members' client URLs come from: the peers, asked at every refresh.
struct ClusterSource {
    dialer: PeerDialer,
    file: PathBuf,
    peer_urls: Mutex<Vec<String>>,
}

impl ClusterSource {
    /// etcd's `uf`: the members' client URLs (none if no peer answered), the peer URLs
    /// saved to the cluster file.
    async fn client_urls(&self) -> Vec<String> {
        let peers = self.peer_urls.lock().clone();
        let cluster = match members::from_peers(&self.dialer, &peers).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(peer_urls = ?chorus_log::Strings(&peers), error = %e, "failed to get cluster from remote peers");
                return Vec::new();
            }
        };
        if let Err(e) = cluster_file::save(&self.file, &cluster.peer_urls) {
            tracing::warn!(error = %e, "proxy failed to write cluster file");
            return cluster.client_urls;
        }
        if cluster.peer_urls != peers {
            tracing::info!(from = ?chorus_log::Strings(&peers), to = ?chorus_log::Strings(&cluster.peer_urls), "proxy updated peer URLs");
        }
        *self.peer_urls.lock() = cluster.peer_urls;
        cluster.client_urls
    }
}

/// Refreshes the director until shutdown (etcd's director goroutine).
async fn refresh_loop(
    director: Arc<Director>,
    source: ClusterSource,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut found = false;
    loop {
        let urls = director.urls();
        if !found && !urls.is_empty() {
            found = true;
            tracing::info!(endpoints = ?chorus_log::Strings(&urls), "endpoints found");
        }
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(director.next_refresh(interval)) => {}
        }
        director.refresh(source.client_urls().await);
    }
}

fn prepare_dir(cfg: &Config) -> Result<PathBuf, V2ProxyError> {
    let dir = proxy_dir(cfg);
    let mut b = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.recursive(true)
        .create(&dir)
        .map_err(|source| V2ProxyError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
    Ok(dir)
}

/// Runs the v2 proxy until SIGINT or SIGTERM.
pub async fn run(cfg: Config) -> Result<(), V2ProxyError> {
    tracing::info!("v2 API proxy starting");
    let tls = MemberTls::from_config(&cfg)?;
    let mut listeners = Vec::new();
    for url in &cfg.listen_client_urls {
        listeners.push((
            url.clone(),
            Listener::bind(url, cfg.socket_opts.into()).await?,
        ));
    }
    let file = cluster_file::path(&prepare_dir(&cfg)?);
    let source = ClusterSource {
        dialer: PeerDialer::new(tls.peer_client.clone(), Duration::from_secs(5)),
        peer_urls: Mutex::new(initial_peer_urls(&cfg, &file)?),
        file,
    };
    let director = Director::new(Duration::from_millis(cfg.proxy_failure_wait_ms));
    director.refresh(source.client_urls().await);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let interval = Duration::from_millis(cfg.proxy_refresh_interval_ms.max(1));
    let refresh = tokio::spawn(refresh_loop(
        director.clone(),
        source,
        interval,
        stop_rx.clone(),
    ));
    let timeouts = Timeouts {
        dial: millis(cfg.proxy_dial_timeout_ms),
        read: millis(cfg.proxy_read_timeout_ms),
        write: millis(cfg.proxy_write_timeout_ms),
    };
    let router = routes::router(&cfg, director, timeouts);
    let mut tasks = Vec::new();
    for (url, listener) in listeners {
        tracing::info!(host = %url, "v2 proxy started listening on client requests");
        let opts = ListenerOptions {
            tls: url.is_tls().then(|| tls.client.clone()).flatten(),
            keepalive: None,
            shutdown: stop_rx.clone(),
            drain: chorus_server::net::CLIENT_DRAIN_TIMEOUT,
        };
        let service = RouterService(router.clone());
        tasks.push(tokio::spawn(chorus_server::net::serve_listener(
            listener, service, opts,
        )));
    }
    crate::on_signal().wait().await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let _ = refresh.await;
    Ok(())
}
