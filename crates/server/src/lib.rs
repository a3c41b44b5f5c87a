//! chorus server: an etcd-compatible member, in layers; each imports only the ones
//! below it (`scripts/module-cycles.py crates/server/src` checks there is no circle).
//!
//! ```text
//!   lib.rs (run)      wiring, signals, the order of shutdown
//!   bootstrap/        recover or create the data dir, build everything below, stop it
//!   api/              grpc/*, http/* (health, metrics, gateway), v2/*: validate, call the member
//!   member/           the member API: typed proposals, linearizable reads, leases, reconfig
//!   apply/            the apply thread: layered appliers (Capped ─▶ Core) over an ApplyContext
//!   peer/             peer transport: message pump, snapshots, the peer service (PeerHandler)
//!   raft/             the raft loop: RawNode, WAL, Ready handling
//!   stores            kv (etcd's KV semantics over mvcc), range_stream (RangeStream's chunks),
//!                     lease, alarm, membership, cluster_version, v2, watch, wait, compactor,
//!                     mailbox
//!   net/              listeners, TLS, :authority fix, write coalescing, connection draining
//!   error.rs          EtcdError: etcd's codes and messages, converted to Status in one place
//!
//!            client port (gRPC + HTTP/1.1)                 peer port (peerpb.Raft)
//!        api::grpc / api::http / api::v2                     peer::PeerService
//!              │  validate, call                               │  Step / Report*
//!              ▼                                               ▼
//!          member::Member ── propose ──► raft thread (raft/) ◄──┘
//!              ▲   ReadIndex (batched)      │ WAL append + fdatasync, messages out
//!              │                            ▼ committed entries, in order
//!              └──── Wait ◄──────────── apply thread (apply/) ──► kv / mvcc / backend
//! ```
//! Start with [`run`], which takes a validated [`chorus_config::Config`].

pub mod alarm;
pub mod api;
pub mod apply;
pub mod bootstrap;
pub mod cluster_version;
pub mod compactor;
pub mod error;
pub mod kv;
pub mod lease;
pub mod mailbox;
pub mod member;
pub mod membership;
pub mod net;
pub mod notify;
pub mod peer;
pub mod raft;
pub mod range_body;
pub mod range_stream;
pub mod v2;
pub mod wait;
pub mod watch;

/// How long a member whose raft loop or apply failed lets its connections deliver the
/// errors already answered before it closes them.
const FAILED_DRAIN: std::time::Duration = std::time::Duration::from_millis(300);

use std::sync::Arc;

/// Why the member stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tls(#[from] net::tls::TlsConfigError),
    #[error(transparent)]
    Bind(#[from] net::BindError),
    #[error(transparent)]
    Start(#[from] bootstrap::StartError),
    #[error("{0}")]
    Config(#[from] chorus_config::ConfigError),
    #[error(transparent)]
    Corruption(#[from] member::corruption::CorruptionError),
    #[error(transparent)]
    Dns(#[from] chorus_dns::DnsError),
    #[error(transparent)]
    Tracing(#[from] api::otel::TracingSetupError),
}

/// The client-side listeners, bound before anything is written.
struct ClientListeners {
    clients: Vec<(net::ClientAddr, net::Listener)>,
    metrics: Vec<(chorus_config::Url, net::Listener)>,
}

/// Binds `--listen-client-urls` and `--listen-client-http-urls` (one listener per
/// address, as etcd) and `--listen-metrics-urls`.
async fn bind_clients(
    cfg: &chorus_config::Config,
    tls: &net::tls::MemberTls,
) -> Result<ClientListeners, RunError> {
    let client_tls = tls.client.is_some();
    let addrs = net::group_client_urls(&cfg.listen_client_urls, &cfg.listen_client_http_urls)?;
    let mut clients = Vec::new();
    for addr in addrs {
        if addr.secure && !client_tls {
            return Err(net::BindError::NeedsTls {
                what: "--listen-client-urls".into(),
                url: addr.url.to_string(),
            }
            .into());
        }
        let listener = net::Listener::bind(&addr.url, cfg.socket_opts.into()).await?;
        clients.push((addr, listener));
    }
    let metrics = net::bind_listeners(
        "--listen-metrics-urls",
        &cfg.listen_metrics_urls,
        client_tls,
    )
    .await?;
    Ok(ClientListeners { clients, metrics })
}

/// etcd registers its pprof handlers on the client URLs under `--enable-pprof` and
/// under `--log-level=debug` (not on `--listen-metrics-urls`).
pub fn serves_pprof(cfg: &chorus_config::Config) -> bool {
    cfg.enable_pprof || cfg.debug || cfg.log_level == "debug"
}

/// etcd's line when `--enable-pprof` is set (3.5's zap fields, 3.4's capnslog text).
fn log_pprof(cfg: &chorus_config::Config) {
    if !cfg.enable_pprof {
        return;
    }
    let path = api::http::pprof::PREFIX;
    if chorus_log::active_format() == chorus_log::Format::Capnslog {
        tracing::info!("pprof is enabled under {path}");
    } else {
        tracing::info!(path, "pprof is enabled");
    }
}

/// Starts serving every client and metrics listener; returns the tasks.
fn serve_clients(
    cfg: &chorus_config::Config,
    tls: &net::tls::MemberTls,
    listeners: ClientListeners,
    member: &Arc<member::Member>,
    tracing: Option<&api::otel::Tracing>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let opts = |tls: Option<Arc<rustls::ServerConfig>>| net::ListenerOptions {
        tls,
        keepalive: None,
        shutdown: shutdown.clone(),
        drain: net::CLIENT_DRAIN_TIMEOUT,
    };
    let policy = net::policy::HttpPolicy {
        cors: cfg.cors.clone(),
        host_whitelist: cfg.host_whitelist.clone(),
    };
    let mut tasks = Vec::new();
    for (addr, listener) in listeners.clients {
        tracing::info!("serving client requests on {}", addr.url);
        let port = api::ClientPort {
            settings: net::ServeSettings {
                plain_too: addr.secure && addr.insecure,
                traffic: addr.traffic,
                max_concurrent_streams: cfg.max_concurrent_streams,
            },
            policy: policy.clone(),
            pprof: serves_pprof(cfg),
            tracing: tracing.cloned(),
        };
        let tls = addr.secure.then(|| tls.client.clone()).flatten();
        let serve = api::serve_client_port(member.clone(), listener, opts(tls), port);
        tasks.push(tokio::spawn(serve));
    }
    for (url, listener) in listeners.metrics {
        tracing::info!("serving metrics on {url}");
        let tls = url.is_tls().then(|| tls.client.clone()).flatten();
        let serve = api::serve_metrics(member.clone(), listener, opts(tls));
        tasks.push(tokio::spawn(serve));
    }
    tasks
}

/// Runs a member until SIGINT or SIGTERM: recovers or bootstraps it, serves clients on
/// every `--listen-client-urls` address and stops cleanly.
pub async fn run(cfg: chorus_config::Config) -> Result<(), RunError> {
    // Check certificates and bind first, so that a bad file or a busy port fails start-up
    // before anything is written.
    let tls = net::tls::MemberTls::from_config(&cfg)?;
    let listeners = bind_clients(&cfg, &tls).await?;
    log_pprof(&cfg);
    let dns = api::dns::bind(&cfg).await?;
    let policy = cfg.auto_compaction()?;
    log_starting(&cfg, &policy);
    if cfg.metrics == "extensive" {
        chorus_metrics::grpc::enable_handling_time();
    }
    let running = bootstrap::start(&cfg, &tls).await?;
    let member = running.member.clone();
    if cfg.feature_gates.initial_corrupt_check || cfg.experimental_initial_corrupt_check {
        // Before any client is served (etcd's embed does the same).
        if let Err(e) = member.initial_corruption_check().await {
            drop(member);
            let _ = running.shutdown().await;
            return Err(e.into());
        }
    }
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let serving: Vec<(String, bool, bool, net::Traffic)> = listeners
        .clients
        .iter()
        .map(|(a, _)| (a.addr.clone(), a.secure, a.insecure, a.traffic))
        .collect();
    let tracing = api::otel::Tracing::from_config(&cfg)?;
    let mut tasks = serve_clients(
        &cfg,
        &tls,
        listeners,
        &member,
        tracing.as_ref(),
        shutdown_rx.clone(),
    );
    tasks.extend(dns.map(|server| api::dns::spawn(server, &cfg, shutdown_rx)));
    let client_urls = cfg
        .advertise_client_urls
        .iter()
        .map(|u| u.to_string())
        .collect();
    let published = member.clone();
    tokio::spawn(async move {
        bootstrap::publish_attributes(published, client_urls).await;
        log_serving(&serving);
    });
    let auto_compaction = tokio::spawn(compactor::run(policy, member.clone()));
    let failed = tokio::select! {
        _ = wait_for_signal() => {
            tracing::info!("received signal, shutting down");
            false
        }
        halt = member.wait_halted() => match halt {
            member::Halt::Removed => {
                tracing::warn!("the member has been permanently removed from the cluster; shutting down");
                false
            }
            member::Halt::Failed => {
                tracing::error!("the raft loop or apply stopped on an error (logged above); shutting down");
                true
            }
        },
    };
    let _ = notify::notify("STOPPING=1");
    // Stop accepting, let in-flight requests finish (bounded), then hand leadership over
    // and stop raft, apply and the peer port. After a failure nothing can be made durable
    // or handed over any more: the requests in flight already have their error (apply
    // failed them as it stopped), which gets FAILED_DRAIN to reach the clients; then the
    // connections close and the member exits, as etcd's fatal exit does, so clients move
    // to another member without waiting for the whole drain (watches never end by
    // themselves).
    let _ = shutdown_tx.send(true);
    auto_compaction.abort();
    let failed_by = tokio::time::Instant::now() + FAILED_DRAIN;
    for mut t in tasks {
        if !failed {
            let _ = t.await;
        } else if tokio::time::timeout_at(failed_by, &mut t).await.is_err() {
            t.abort();
            let _ = t.await;
        }
    }
    if let Some(t) = tracing {
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    if !failed {
        member.transfer_leadership_away().await;
    }
    drop(member);
    Ok(running.shutdown().await?)
}

/// etcd's first line about the member (embed/etcd.go), with its field names; the values
/// are chorus's (`etcd-version` is the release chorus reports itself as).
fn log_starting(cfg: &chorus_config::Config, policy: &chorus_config::AutoCompaction) {
    use chorus_config::AutoCompaction;
    use chorus_log::{GoDuration as D, Strings as S};
    let urls = |v: &[chorus_config::Url]| v.iter().map(|u| u.to_string()).collect::<Vec<_>>();
    let sorted = |set: &std::collections::BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
    let wal_dir = cfg
        .wal_dir
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let retention = match *policy {
        AutoCompaction::Disabled => std::time::Duration::ZERO,
        AutoCompaction::Periodic(d) => d,
        AutoCompaction::Revision(n) => std::time::Duration::from_nanos(n.max(0) as u64),
    };
    let (os, arch) = (std::env::consts::OS, chorus_config::os_arch());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ms = |v: u64| D(std::time::Duration::from_millis(v));
    tracing::info!(
        etcd_version = chorus_config::ETCD_COMPAT_VERSION,
        git_sha = chorus_config::git_sha(),
        go_version = chorus_config::rust_version(),
        go_os = os,
        go_arch = arch.rsplit('/').next().unwrap_or_default(),
        max_cpu_set = cpus,
        max_cpu_available = cpus,
        member_initialized = cfg.wal_dir().is_dir(),
        name = %cfg.name,
        data_dir = %cfg.data_dir.display(),
        wal_dir = %wal_dir,
        wal_dir_dedicated = %wal_dir,
        member_dir = %cfg.member_dir().display(),
        force_new_cluster = cfg.force_new_cluster,
        heartbeat_interval = %ms(cfg.heartbeat_interval_ms),
        election_timeout = %ms(cfg.election_timeout_ms),
        initial_election_tick_advance = cfg.initial_election_tick_advance,
        snapshot_count = cfg.effective_snapshot_count(),
        snapshot_catchup_entries = cfg.snapshot_catchup_entries,
        initial_advertise_peer_urls = ?S(&urls(&cfg.initial_advertise_peer_urls)),
        listen_peer_urls = ?S(&urls(&cfg.listen_peer_urls)),
        advertise_client_urls = ?S(&urls(&cfg.advertise_client_urls)),
        listen_client_urls = ?S(&urls(&cfg.listen_client_urls)),
        listen_metrics_urls = ?S(&urls(&cfg.listen_metrics_urls)),
        cors = ?S(&sorted(&cfg.cors)),
        host_whitelist = ?S(&sorted(&cfg.host_whitelist)),
        initial_cluster = %cfg.initial_cluster,
        initial_cluster_state = %cfg.initial_cluster_state,
        initial_cluster_token = %cfg.initial_cluster_token,
        quota_size_bytes = cfg.effective_quota_backend_bytes().unwrap_or(0),
        pre_vote = cfg.pre_vote,
        initial_corrupt_check = cfg.feature_gates.initial_corrupt_check,
        corrupt_check_time_interval = %D(cfg.corrupt_check_time),
        auto_compaction_mode = %cfg.auto_compaction_mode,
        auto_compaction_retention = %D(retention),
        auto_compaction_interval = %D(retention),
        discovery_url = %cfg.discovery,
        discovery_proxy = %cfg.discovery_proxy,
        downgrade_check_interval = %D(cfg.downgrade_check_time),
        "starting an etcd server"
    );
}

/// The lines etcd writes once it serves clients, which scripts and test harnesses wait
/// for (etcd's embed/serve.go, one group per listener; both lines for an address serving
/// http and https). The cluster version's capabilities are logged when it is set or
/// recovered (`apply::log_capabilities`), as etcd's api/capability.go does.
/// The `traffic` field is only on the lines of split listeners (`--listen-client-http-urls`,
/// etcd 3.5.8+), so the default lines carry etcd 3.5.1's fields.
fn log_serving(listeners: &[(String, bool, bool, net::Traffic)]) {
    for (address, secure, insecure, traffic) in listeners {
        tracing::info!("ready to serve client requests");
        let traffic = (*traffic != net::Traffic::Both).then(|| traffic.as_str());
        if *insecure {
            tracing::info!(
                address = %address,
                traffic,
                "serving client traffic insecurely; this is strongly discouraged!"
            );
        }
        if *secure {
            tracing::info!(address = %address, traffic, "serving client traffic securely");
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The process-wide logger, as etcd's: `--logger` (`zap`, chorus's default as etcd
/// 3.5's, or 3.4's `capnslog` text), `--log-format` (`json` or `console`), `--log-level`
/// (`--debug` means debug), `--log-outputs` (`default`/`stderr`, `stdout`,
/// `systemd/journal` or files) and `--enable-log-rotation` with
/// `--log-rotation-config-json`; raft's lines carry zap's `"logger":"raft"`. `RUST_LOG`
/// overrides the level for debugging. See the `chorus-log` crate.
pub fn init_logging(cfg: &chorus_config::Config) -> Result<(), LogError> {
    let flags = chorus_log::LogFlags {
        logger: &cfg.logger,
        format: &cfg.log_format,
        level: if cfg.debug { "debug" } else { &cfg.log_level },
        outputs: &cfg.log_outputs,
        enable_rotation: cfg.enable_log_rotation,
        rotation_json: &cfg.log_rotation_config_json,
    };
    chorus_log::init(&chorus_log::LogConfig {
        named_targets: vec!["raft".to_string()],
        ..chorus_log::LogConfig::from_flags(&flags)?
    })
}

/// Why logging could not be set up (etcd's messages).
pub use chorus_log::LogError;
