//! Start-up: recover (or create) the member's state from its data dir, build the stores,
//! the member, the raft and apply threads and the peer service, in that order; and the
//! orderly stop of all of them.
//!
//! ```text
//!   bind peer listeners ─▶ recover.rs: restart (WAL or an etcd data dir to take over)
//!                          | discovery.rs (SRV, v2, v3) ─▶ bootstrap | join ─▶ Recovered
//!     ─▶ stores (kv, lessor, cluster, alarms, v2, watch hub, waiters)
//!     ─▶ PeerTransport (outgoing) ─▶ Member ─▶ raft thread (Node) ─▶ apply thread (Applier)
//!     ─▶ peer service (PeerService: the member answers) ─▶ member loops
//! ```

mod discovery;
mod error;
mod force;
mod host;
mod recover;

pub use error::StartError;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chorus_config::Config;
use chorus_storage::backend::{consistent_index, BackendOptions};
use chorus_storage::mvcc::KvStore;
use chorus_storage::snap::Snapshotter;
use chorus_storage::wal::Wal;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::alarm::Alarms;
use crate::apply::{Applier, ApplyContext, ApplyLimits, ApplyProgress, PeerLinks};
use crate::kv::KvSlot;
use crate::lease::Lessor;
use crate::member::{Limits, Member, MemberParts};
use crate::membership::{Cluster, SharedCluster};
use crate::net::tls::MemberTls;
use crate::net::ListenerOptions;
use crate::peer::{PeerDialer, PeerService, PeerServiceConfig, PeerTransport};
use crate::raft::{Node, NodeConfig, RaftInput, RaftStatus};
use recover::Recovered;

/// Inputs queued for the raft loop before proposals, reads and peer messages wait.
const RAFT_QUEUE: usize = 16_384;

/// What `start` hands back: the member and what must be stopped with it.
pub struct Running {
    pub member: Arc<Member>,
    pub transport: Arc<PeerTransport>,
    raft_thread: Option<std::thread::JoinHandle<Result<(), crate::raft::NodeError>>>,
    apply_thread: Option<std::thread::JoinHandle<()>>,
    peer_shutdown: watch::Sender<bool>,
    peer_listeners: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops raft (persisting what it holds), then the apply thread, then the peer port.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        let member = self.member.clone();
        let (raft, apply) = (self.raft_thread.take(), self.apply_thread.take());
        let stopped = tokio::task::spawn_blocking(move || stop_threads(member, raft, apply))
            .await
            .unwrap_or(Err(StartError::RaftPanicked));
        let _ = self.peer_shutdown.send(true);
        for t in self.peer_listeners.drain(..) {
            let _ = t.await;
        }
        stopped
    }
}

fn stop_threads(
    member: Arc<Member>,
    raft: Option<std::thread::JoinHandle<Result<(), crate::raft::NodeError>>>,
    apply: Option<std::thread::JoinHandle<()>>,
) -> Result<(), StartError> {
    member.stop();
    member.stop_raft();
    let mut result = Ok(());
    if let Some(t) = raft {
        result = match t.join() {
            Ok(r) => r.map_err(StartError::from),
            Err(_) => Err(StartError::RaftPanicked),
        };
    }
    // The apply thread ends once raft's end of its queue is gone.
    if let Some(t) = apply {
        let _ = t.join();
    }
    result
}

impl PeerLinks for PeerTransport {
    fn add_peer(&self, id: u64, urls: &[String]) {
        PeerTransport::add_peer(self, id, urls)
    }
    fn remove_peer(&self, id: u64) {
        PeerTransport::remove_peer(self, id)
    }
    fn send_snapshot(&self, msg: raft::eraftpb::Message, tx: redb::ReadTransaction) {
        PeerTransport::send_snapshot(self, msg, tx)
    }
}

/// Recovers the member's state from its data dir (or creates it, with the initial cluster
/// discovery finds), binding the peer listeners first so that a busy port fails before
/// anything is written. Also the peers' TLS server name, when discovery sets one.
async fn recover(
    cfg: &Config,
    tls: &MemberTls,
    backend_opts: &BackendOptions,
) -> Result<(Recovered, Option<String>), StartError> {
    for dir in [cfg.data_dir.clone(), cfg.member_dir(), cfg.snap_dir()] {
        chorus_datadir::layout::create_dir(&dir)?;
    }
    let snapshotter = || Snapshotter::new(cfg.snap_dir());
    let mut server_name = None;
    let rec = if Wal::exists(&cfg.wal_dir()) || recover::take_over_etcd(cfg, backend_opts)? {
        recover::restart(cfg, &snapshotter(), backend_opts)?
    } else {
        let found = discovery::discover(cfg).await?;
        server_name = found.peer_server_name;
        let cfg = &found.cfg;
        if cfg.is_new_cluster() {
            recover::bootstrap(cfg, backend_opts)?
        } else {
            let dialer = peer_dialer(cfg, tls).with_server_name(server_name.clone());
            recover::join(cfg, backend_opts, &dialer).await?
        }
    };
    if chorus_storage::members::is_removed(&rec.backend, rec.member_id)? {
        return Err(StartError::Removed);
    }
    Ok((rec, server_name))
}

/// How this member dials its peers: with the peer TLS client, from the local address
/// `SetMemberLocalAddr` infers (etcd's `InferLocalAddr`).
fn peer_dialer(cfg: &Config, tls: &MemberTls) -> PeerDialer {
    let local = cfg.member_local_addr();
    if cfg.feature_gates.set_member_local_addr {
        let urls: Vec<String> = cfg
            .initial_advertise_peer_urls
            .iter()
            .map(|u| u.to_string())
            .collect();
        match local {
            Some(ip) => tracing::info!(local_addr = %ip, "setting member local address"),
            None => {
                tracing::warn!(advertise_peer_urls = ?urls, "unable to set a member local address due to lack of suitable local addresses")
            }
        }
    }
    PeerDialer::new(tls.peer_client.clone(), cfg.raft_write_timeout).with_local_addr(local)
}

fn limits(cfg: &Config) -> Limits {
    Limits {
        max_request_bytes: cfg.max_request_bytes as usize,
        max_txn_ops: cfg.max_txn_ops as usize,
        request_timeout: Duration::from_secs(5)
            + 2 * Duration::from_millis(cfg.election_timeout_ms),
        election_timeout: Duration::from_millis(cfg.election_timeout_ms),
        grpc_gateway: cfg.enable_grpc_gateway,
        strict_reconfig_check: cfg.strict_reconfig_check,
        grpc_keepalive: (!cfg.grpc_keepalive_interval.is_zero())
            .then_some((cfg.grpc_keepalive_interval, cfg.grpc_keepalive_timeout)),
        enable_v2: cfg.effective_enable_v2(),
        v2v3_prefix: cfg.experimental_enable_v2v3.clone(),
        quota: cfg.effective_quota_backend_bytes(),
        client_cert_auth: cfg.client_tls.client_cert_auth,
        max_learners: cfg.max_learners.max(0) as usize,
        warning_unary_request_duration: cfg.warning_unary_request_duration,
        stop_grpc_service_on_defrag: cfg.feature_gates.stop_grpc_service_on_defrag,
        fast_lease_keep_alive: cfg.feature_gates.fast_lease_keep_alive,
        priority_request: cfg.feature_gates.priority_request,
    }
}

/// The stores a member and its apply thread share, loaded from the backend.
struct Stores {
    kv: Arc<KvSlot>,
    lessor: Arc<Mutex<Lessor>>,
    cluster: Arc<SharedCluster>,
    alarms: Arc<RwLock<Alarms>>,
    v2: Arc<RwLock<crate::v2::V2Store>>,
    watch_hub: Arc<crate::watch::WatchHub>,
    auth: Arc<chorus_auth::AuthStore>,
    pending_compaction: Option<i64>,
}

fn load_stores(cfg: &Config, rec: &Recovered) -> Result<Stores, StartError> {
    let (kv, restored) = KvStore::open(rec.backend.clone())?;
    let cluster = Cluster::load(&rec.backend, rec.cluster_id)?;
    check_cluster_version(cfg, &cluster)?;
    let alarms = Alarms::load(&rec.backend)?;
    if alarms.is_active(chorus_api::etcdserverpb::AlarmType::Nospace) {
        tracing::warn!("the NOSPACE alarm is active: writes are refused until it is disarmed");
    }
    let checkpoint_interval = cfg
        .experimental_enable_lease_checkpoint
        .then_some(cfg.experimental_lease_checkpoint_interval)
        .filter(|d| !d.is_zero());
    let lessor = Lessor::load(
        &rec.backend,
        &restored.key_leases,
        crate::lease::min_ttl(cfg.election_ticks(), cfg.heartbeat_interval_ms),
        checkpoint_interval,
        cfg.experimental_enable_lease_checkpoint_persist,
    )?;
    let mut v2 = crate::v2::V2Store::new();
    crate::v2::persist::load_into(&rec.backend, &mut v2)?;
    crate::v2::deprecation::check(&v2, cfg.v2_deprecation)?;
    let auth = chorus_auth::AuthStore::load(&rec.backend, auth_config(cfg)?)?;
    Ok(Stores {
        kv: Arc::new(KvSlot::new(Arc::new(kv))),
        lessor: Arc::new(Mutex::new(lessor)),
        cluster: Arc::new(SharedCluster::new(rec.member_id, cluster)),
        alarms: Arc::new(RwLock::new(alarms)),
        v2: Arc::new(RwLock::new(v2)),
        watch_hub: crate::watch::WatchHub::new(restored.current_rev),
        auth: Arc::new(auth),
        pending_compaction: restored.pending_compaction,
    })
}

/// A restarting member runs at the cluster version its backend recorded only if its
/// own version is not lower (etcd's `mustDetectDowngrade` at recovery), then logs it as
/// etcd does.
fn check_cluster_version(cfg: &Config, cluster: &Cluster) -> Result<(), StartError> {
    let Some(cv) = cluster.version else {
        return Ok(());
    };
    tracing::info!(cluster_version = %cv.major_minor(), "set cluster version from store");
    let server = crate::cluster_version::server_version();
    crate::cluster_version::rules::detect_downgrade(
        server,
        cv,
        cfg.next_cluster_version_compatible,
    )?;
    crate::apply::log_capabilities(cv);
    Ok(())
}

/// The channels between the member, raft and apply, made before any of them.
struct Channels {
    raft_tx: crate::mailbox::Sender<RaftInput>,
    raft_rx: crate::mailbox::Receiver<RaftInput>,
    apply_tx: crate::mailbox::Sender<crate::raft::ApplyTask>,
    apply_rx: crate::mailbox::Receiver<crate::raft::ApplyTask>,
    leader_tx: watch::Sender<u64>,
    leader_rx: watch::Receiver<u64>,
    status: Arc<RaftStatus>,
    progress: ApplyProgress,
    waiters: Arc<crate::wait::Wait<crate::apply::ApplyResult>>,
}

impl Channels {
    fn new(rec: &Recovered, stores: &Stores) -> Result<Channels, StartError> {
        let (raft_tx, raft_rx) = crate::mailbox::bounded(RAFT_QUEUE);
        let (apply_tx, apply_rx) = crate::mailbox::mailbox();
        let (leader_tx, leader_rx) = watch::channel(raft::INVALID_ID);
        let status = Arc::new(RaftStatus::default());
        status
            .term
            .store(rec.storage.hard_state().term, Ordering::Release);
        let progress = ApplyProgress {
            applied: watch::channel(consistent_index(&rec.backend)?).0,
            compacted: watch::channel(stores.kv.get().compact_rev()).0,
            removed: watch::channel(false).0,
        };
        Ok(Channels {
            raft_tx,
            raft_rx,
            apply_tx,
            apply_rx,
            leader_tx,
            leader_rx,
            status,
            progress,
            waiters: Arc::new(crate::wait::Wait::default()),
        })
    }
}

/// Starts the member: recovers or bootstraps its state and runs the raft and apply
/// threads and the peer service. Client listeners are started by the caller.
pub async fn start(cfg: &Config, tls: &MemberTls) -> Result<Running, StartError> {
    host::lock_memory(cfg)?;
    let peer_listeners = crate::net::bind_listeners_with(
        "--listen-peer-urls",
        &cfg.listen_peer_urls,
        tls.peer_server.is_some(),
        cfg.socket_opts.into(),
    )
    .await?;
    let backend_opts = BackendOptions::default();
    let (rec, server_name) = recover(cfg, tls, &backend_opts).await?;
    let stores = load_stores(cfg, &rec)?;
    let ch = Channels::new(&rec, &stores)?;
    let dialer = peer_dialer(cfg, tls).with_server_name(server_name);
    let transport = PeerTransport::new(rec.member_id, rec.cluster_id, dialer, ch.raft_tx.clone());
    for m in stores.cluster.get().members.values() {
        if m.id != rec.member_id {
            transport.add_peer(m.id, &m.peer_urls);
        }
    }
    let member = Arc::new(Member::new(member_parts(
        cfg, &rec, &stores, &ch, &transport,
    )));
    let (member_id, cluster_id) = (rec.member_id, rec.cluster_id);
    let (backend, snapshot) = (rec.backend.clone(), rec.snapshot.clone());
    let raft_tx = ch.raft_tx.clone();
    let node = Node::new(
        node_config(cfg, &rec),
        rec.storage,
        rec.wal,
        Snapshotter::new(cfg.snap_dir()),
        ch.raft_rx,
        ch.apply_tx,
        transport.clone(),
        ch.status,
        member.clone(),
        ch.leader_tx,
        member.applied_watch(),
    )?;
    let raft_thread = spawn_thread("raft", move || {
        let r = node.run();
        if let Err(e) = &r {
            tracing::error!("raft loop stopped: {e}");
        }
        r
    })?;
    let ctx = ApplyContext {
        member_id,
        cluster_id,
        kv: stores.kv,
        lessor: stores.lessor,
        cluster: stores.cluster,
        alarms: stores.alarms,
        v2: stores.v2,
        watch_hub: stores.watch_hub,
        auth: stores.auth,
        waiters: ch.waiters,
        progress: ch.progress,
        raft: raft_tx.clone(),
        peers: transport.clone(),
        election_timeout: member.limits.election_timeout,
    };
    let limits = apply_limits(cfg, backend_opts.clone());
    let applier = Applier::new(ctx, ch.apply_rx, backend, snapshot, limits)?;
    if let Some(rev) = stores.pending_compaction {
        applier.resume_compaction(rev);
    }
    let apply_thread = spawn_thread("apply", move || applier.run())?;
    let peer_cfg = PeerServiceConfig {
        member_id,
        cluster_id,
        raft_tx,
        snap_dir: cfg.snap_dir(),
        backend_opts,
        traffic: transport.traffic().clone(),
    };
    let (peer_shutdown, peer_listeners) = serve_peers(
        peer_listeners,
        PeerService::new(peer_cfg, member.clone()),
        tls,
        cfg.raft_read_timeout,
    );
    member.spawn_loops(&loop_intervals(cfg));
    Ok(Running {
        member,
        transport,
        raft_thread: Some(raft_thread),
        apply_thread: Some(apply_thread),
        peer_shutdown,
        peer_listeners,
    })
}

fn member_parts(
    cfg: &Config,
    rec: &Recovered,
    stores: &Stores,
    ch: &Channels,
    transport: &Arc<PeerTransport>,
) -> MemberParts {
    MemberParts {
        id: rec.member_id,
        name: cfg.name.clone(),
        cluster_id: rec.cluster_id,
        limits: limits(cfg),
        status: ch.status.clone(),
        raft_tx: ch.raft_tx.clone(),
        kv: stores.kv.clone(),
        cluster: stores.cluster.clone(),
        waiters: ch.waiters.clone(),
        alarms: stores.alarms.clone(),
        lessor: stores.lessor.clone(),
        v2: stores.v2.clone(),
        watch_hub: stores.watch_hub.clone(),
        auth: stores.auth.clone(),
        transport: transport.clone(),
        leader: ch.leader_rx.clone(),
        applied: ch.progress.applied.subscribe(),
        compacted: ch.progress.compacted.subscribe(),
        removed: ch.progress.removed.subscribe(),
    }
}

/// Serves the peer protocol with the member answering; returns the stop switch and the
/// listener tasks. A peer connection that stays silent (no frame, no ping answer) for
/// `read_timeout` (`--raft-read-timeout`) is closed.
fn serve_peers(
    listeners: Vec<(chorus_config::Url, crate::net::Listener)>,
    service: PeerService<Member>,
    tls: &MemberTls,
    read_timeout: Duration,
) -> (watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>) {
    let (stop, stopped) = watch::channel(false);
    let opts = ListenerOptions {
        tls: tls.peer_server.clone(),
        keepalive: Some((crate::peer::PING_INTERVAL, read_timeout)),
        shutdown: stopped,
        // Peer streams never end on their own; raft is stopped by now.
        drain: Duration::ZERO,
    };
    (stop, crate::peer::serve(listeners, service, opts))
}

/// The auth store's settings: `--auth-token`, `--auth-token-ttl`, `--bcrypt-cost`.
fn auth_config(cfg: &Config) -> Result<chorus_auth::AuthConfig, StartError> {
    let opts = chorus_auth::AuthOptions {
        auth_token: cfg.auth_token.clone(),
        auth_token_ttl: cfg.auth_token_ttl(),
        bcrypt_cost: cfg.effective_bcrypt_cost(),
    };
    Ok(opts.build(Arc::new(chorus_auth::SystemClock::default()))?)
}

fn loop_intervals(cfg: &Config) -> crate::member::LoopIntervals {
    let compact_hash =
        cfg.feature_gates.compact_hash_check || cfg.experimental_compact_hash_check_enabled;
    crate::member::LoopIntervals {
        progress_notify: cfg.effective_watch_progress_notify_interval(),
        corrupt_check: cfg
            .corrupt_check_time
            .max(cfg.experimental_corrupt_check_time),
        compact_hash_check: if compact_hash {
            cfg.compact_hash_check_time
        } else {
            std::time::Duration::ZERO
        },
        version_monitor: crate::cluster_version::MONITOR_VERSION_INTERVAL,
        downgrade_check: cfg.downgrade_check_time,
    }
}

fn node_config(cfg: &Config, rec: &Recovered) -> NodeConfig {
    NodeConfig {
        id: rec.member_id,
        tick: Duration::from_millis(cfg.heartbeat_interval_ms),
        election_tick: cfg.election_ticks() as usize,
        heartbeat_tick: 1,
        snapshot_catchup_entries: cfg.experimental_snapshot_catchup_entries,
        max_snapshots: cfg.max_snapshots.max(1) as usize,
        applied: rec.snapshot.index,
        pre_vote: cfg.pre_vote,
        fast_first_election: cfg.initial_election_tick_advance,
    }
}

fn apply_limits(cfg: &Config, backend_opts: BackendOptions) -> ApplyLimits {
    ApplyLimits {
        batch_interval: cfg.backend_batch_interval,
        batch_limit: cfg.backend_batch_limit,
        compaction_batch_limit: cfg.effective_compaction_batch_limit() as usize,
        compaction_sleep_interval: cfg.effective_compaction_sleep_interval(),
        warning_apply_duration: cfg.experimental_warning_apply_duration,
        snapshot_count: cfg.effective_snapshot_count(),
        snap_dir: cfg.snap_dir(),
        backend_opts,
    }
}

fn spawn_thread<T: Send + 'static>(
    name: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>, StartError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| StartError::Thread(name, e))
}

/// Publishes this member's name and client URLs through raft once there is a leader, so
/// every member lists them (etcd's publish); then tells systemd the member is ready.
pub async fn publish_attributes(member: Arc<Member>, client_urls: Vec<String>) {
    member.publish(client_urls).await;
    if !member.is_stopping() {
        match crate::notify::notify("READY=1") {
            Ok(true) => tracing::info!("notified systemd: ready"),
            Ok(false) => {}
            Err(e) => tracing::warn!("failed to notify systemd: {e}"),
        }
    }
}
