//! The member API every adapter (gRPC, HTTP gateway, v2, the peer service) calls:
//! typed proposals, linearizable reads, leases, membership changes, maintenance.
//!
//! ```text
//!   api/* ── Member::put / txn / lease_grant ... (propose.rs) ──► raft thread ──► apply ──► Wait
//!      │      Member::linearizable_read (read.rs: ReadIndex, batched)
//!      │      Member::lease_renew / lease_time_to_live (lease.rs: on the leader)
//!      │      Member::member_add / remove / update / promote (reconfig.rs)
//!      └───── Member::kv() (MVCC reads at the applied revision)
//! ```
//! The member holds the same stores the apply thread writes (shared, each behind its own
//! lock) and reads them; it never writes them itself: every change goes through raft.

mod auth;
mod backpressure;
pub mod corruption;
mod credentials;
mod downgrade;
mod lease;
mod maintenance;
mod peer;
mod propose;
mod read;
mod reconfig;
mod versions;

pub use credentials::{Credentials, HasHeader};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chorus_api::etcdserverpb::ResponseHeader;
use chorus_storage::mvcc::KvStore;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{watch, Notify};

use crate::alarm::Alarms;
use crate::apply::ApplyResult;
use crate::error::EtcdError;
use crate::kv::KvSlot;
use crate::lease::Lessor;
use crate::mailbox::Sender;
use crate::membership::{Cluster, SharedCluster};
use crate::peer::PeerTransport;
use crate::raft::{DroppedProposals, RaftInput, RaftStatus};
use crate::v2::V2Store;
use crate::wait::{IdGenerator, Wait};
use crate::watch::WatchHub;

/// One ReadIndex round: every reader waiting for it hears the same outcome.
type Round = watch::Sender<Option<Result<(), EtcdError>>>;

/// The readers waiting for the next ReadIndex round.
#[derive(Default)]
pub struct ReadIndexBatcher {
    pending: Mutex<Option<Round>>,
    kick: Notify,
}

impl ReadIndexBatcher {
    /// Wakes the loop (a reader arrived, or the member is stopping).
    pub fn kick(&self) {
        self.kick.notify_one();
    }
}

/// Who a request is from, as auth knows it (`None`: no credentials, or auth is off).
pub type Who<'a> = Option<&'a chorus_auth::AuthInfo>;

/// Limits and timings request handlers need.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    /// etcd's ReqTimeout: 5 s + 2 election timeouts.
    pub request_timeout: Duration,
    pub election_timeout: Duration,
    /// `--enable-grpc-gateway`: serve the `/v3/*` JSON gateway.
    pub grpc_gateway: bool,
    /// `--strict-reconfig-check`: refuse membership changes that would lose quorum.
    pub strict_reconfig_check: bool,
    /// `--grpc-keepalive-interval` / `--grpc-keepalive-timeout` (None: disabled).
    pub grpc_keepalive: Option<(Duration, Duration)>,
    /// `--enable-v2`: serve the v2 keys API.
    pub enable_v2: bool,
    /// `--experimental-enable-v2v3` (empty: off): the v2 keys live under this v3 prefix.
    pub v2v3_prefix: String,
    /// `--quota-backend-bytes` in force (None: no quota).
    pub quota: Option<u64>,
    /// `--client-cert-auth`: a verified client certificate's CN names the user.
    pub client_cert_auth: bool,
    /// `--max-learners` (etcd 3.6; 1): learners the membership may hold.
    pub max_learners: usize,
    /// `--warning-unary-request-duration` (300 ms): reads slower than this are logged.
    pub warning_unary_request_duration: Duration,
    /// `--experimental-stop-grpc-service-on-defrag` (3.6: the `StopGRPCServiceOnDefrag`
    /// gate): the gRPC health service reports NOT_SERVING while defragmenting.
    pub stop_grpc_service_on_defrag: bool,
    /// The `FastLeaseKeepAlive` gate (on): the leader renews a lease it knows without
    /// first waiting for apply to reach the commit index.
    pub fast_lease_keep_alive: bool,
    /// The `PriorityRequest` gate: lease revokes may be proposed at twice the apply gap
    /// other requests are refused at.
    pub priority_request: bool,
}

/// How often the member's loops run (zero: never).
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopIntervals {
    /// `--watch-progress-notify-interval`.
    pub progress_notify: Duration,
    /// `--corrupt-check-time` (etcd: off by default).
    pub corrupt_check: Duration,
    /// `--compact-hash-check-time`, when the compaction hash check is on.
    pub compact_hash_check: Duration,
    /// The leader's cluster version monitor (etcd: 4 s).
    pub version_monitor: Duration,
    /// `--downgrade-check-time`: the leader's check that a downgrade job is done.
    pub downgrade_check: Duration,
}

/// The stores a member shares with its apply thread, and the channels apply reports on.
pub struct MemberParts {
    pub id: u64,
    pub name: String,
    pub cluster_id: u64,
    pub limits: Limits,
    pub status: Arc<RaftStatus>,
    pub raft_tx: Sender<RaftInput>,
    pub kv: Arc<KvSlot>,
    pub cluster: Arc<SharedCluster>,
    pub waiters: Arc<Wait<ApplyResult>>,
    pub alarms: Arc<RwLock<Alarms>>,
    pub lessor: Arc<Mutex<Lessor>>,
    pub v2: Arc<RwLock<V2Store>>,
    pub watch_hub: Arc<WatchHub>,
    pub auth: Arc<chorus_auth::AuthStore>,
    pub transport: Arc<PeerTransport>,
    /// The leader as raft reports it.
    pub leader: watch::Receiver<u64>,
    /// Apply's progress: applied index, finished compactions, own removal.
    pub applied: watch::Receiver<u64>,
    pub compacted: watch::Receiver<i64>,
    pub removed: watch::Receiver<bool>,
}

/// The member as request handlers see it.
pub struct Member {
    pub id: u64,
    pub name: String,
    pub cluster_id: u64,
    pub limits: Limits,
    pub status: Arc<RaftStatus>,
    pub started_at: SystemTime,
    raft_tx: Sender<RaftInput>,
    kv: Arc<KvSlot>,
    cluster: Arc<SharedCluster>,
    waiters: Arc<Wait<ApplyResult>>,
    ids: IdGenerator,
    alarms: Arc<RwLock<Alarms>>,
    lessor: Arc<Mutex<Lessor>>,
    v2: Arc<RwLock<V2Store>>,
    watch_hub: Arc<WatchHub>,
    auth: Arc<chorus_auth::AuthStore>,
    transport: Arc<PeerTransport>,
    leader: watch::Receiver<u64>,
    applied: watch::Receiver<u64>,
    compacted: watch::Receiver<i64>,
    removed: watch::Receiver<bool>,
    reads: ReadIndexBatcher,
    stopping: AtomicBool,
    /// When this member last saw the leader change (monotonic, wall clock).
    leader_changed: Mutex<(Instant, SystemTime)>,
}

impl DroppedProposals for Member {
    fn dropped(&self, id: u64) {
        self.waiters.trigger(id, Err(EtcdError::ProposalDropped));
    }
}

/// Why a member stopped serving without being asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// It applied its own removal from the cluster.
    Removed,
    /// Its raft loop or apply stopped on an error.
    Failed,
}

impl Member {
    pub fn new(p: MemberParts) -> Member {
        let now = SystemTime::now();
        let now_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Member {
            ids: IdGenerator::new(p.id, now_ms),
            id: p.id,
            name: p.name,
            cluster_id: p.cluster_id,
            limits: p.limits,
            status: p.status,
            started_at: now,
            raft_tx: p.raft_tx,
            kv: p.kv,
            cluster: p.cluster,
            waiters: p.waiters,
            alarms: p.alarms,
            lessor: p.lessor,
            v2: p.v2,
            watch_hub: p.watch_hub,
            auth: p.auth,
            transport: p.transport,
            leader: p.leader,
            applied: p.applied,
            compacted: p.compacted,
            removed: p.removed,
            reads: ReadIndexBatcher::default(),
            stopping: AtomicBool::new(false),
            leader_changed: Mutex::new((Instant::now(), now)),
        }
    }

    /// The member's background duties: the ReadIndex batching loop, the leader's lease
    /// duties, corruption checks and version monitors, watch catch-up and progress
    /// notifications.
    pub fn spawn_loops(self: &Arc<Self>, every: &LoopIntervals) {
        if !every.corrupt_check.is_zero() {
            tokio::spawn(self.clone().periodic_check_loop(every.corrupt_check));
        }
        if !every.compact_hash_check.is_zero() {
            tokio::spawn(self.clone().compaction_check_loop(every.compact_hash_check));
        }
        if !every.version_monitor.is_zero() {
            tokio::spawn(self.clone().version_loop(every.version_monitor));
        }
        if !every.downgrade_check.is_zero() {
            tokio::spawn(self.clone().downgrade_loop(every.downgrade_check));
        }
        let progress_notify_interval = every.progress_notify;
        tokio::spawn(self.clone().read_loop());
        tokio::spawn(self.clone().lease_loop());
        tokio::spawn(self.clone().token_loop());
        // Both loops end once the member and its apply thread are gone.
        let kv = Arc::downgrade(&self.kv);
        tokio::spawn(
            self.watch_hub
                .clone()
                .run_catch_up(move || kv.upgrade().map(|kv| kv.get())),
        );
        let hub = Arc::downgrade(&self.watch_hub);
        let interval = progress_notify_interval;
        tokio::spawn(async move {
            let start = tokio::time::Instant::now() + interval;
            let mut tick = tokio::time::interval_at(start, interval);
            loop {
                tick.tick().await;
                let Some(hub) = hub.upgrade() else { return };
                hub.progress_tick();
            }
        });
    }

    /// Runs `duty` every `every` while this member leads, until it stops (the leader's
    /// periodic checks).
    async fn on_leader_every<F, Fut>(self: Arc<Self>, every: Duration, duty: F)
    where
        F: Fn(Arc<Self>) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut interval = tokio::time::interval(every);
        interval.tick().await;
        while !self.is_stopping() {
            interval.tick().await;
            if self.is_leader() {
                duty(self.clone()).await;
            }
        }
    }

    /// The current MVCC store (replaced when a snapshot from the leader is installed).
    pub fn kv(&self) -> Arc<KvStore> {
        self.kv.get()
    }

    pub fn transport(&self) -> &Arc<PeerTransport> {
        &self.transport
    }

    /// Whether this member is a learner (etcd refuses most client requests on one).
    pub fn is_learner(&self) -> bool {
        self.cluster.is_learner()
    }

    pub fn cluster(&self) -> Cluster {
        self.cluster.get()
    }

    /// A fresh cluster-unique ID (request IDs, server-chosen lease IDs).
    pub fn next_id(&self) -> u64 {
        self.ids.next()
    }

    pub fn is_leader(&self) -> bool {
        self.status.is_leader.load(Ordering::Acquire)
    }

    /// The leader as raft reports it (`raft::INVALID_ID` during an election).
    pub fn leader(&self) -> u64 {
        self.status.leader()
    }

    pub fn v2_store(&self) -> &Arc<RwLock<V2Store>> {
        &self.v2
    }

    /// Since when (monotonic and wall clock) the current leader has been known here.
    pub fn leader_since(&self) -> (Instant, SystemTime) {
        *self.leader_changed.lock()
    }

    pub fn watch_hub(&self) -> &Arc<WatchHub> {
        &self.watch_hub
    }

    pub fn alarms(&self) -> Alarms {
        self.alarms.read().clone()
    }

    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }

    /// A receiver of the applied index (the raft loop trims its log behind it).
    pub fn applied_watch(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// A response header with this member's identity and the current raft term.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.id,
            revision,
            raft_term: self.status.term(),
        }
    }

    /// A header at the current revision.
    pub fn current_header(&self) -> ResponseHeader {
        self.header(self.kv().current_rev())
    }

    /// Fills the identity fields of a header the apply path created with a revision.
    pub fn fill_header(&self, h: &mut Option<ResponseHeader>) {
        let rev = h.as_ref().map_or(0, |h| h.revision);
        *h = Some(self.header(rev));
    }

    /// Resolves when this member stops serving by itself: it applied its own removal
    /// from the cluster, or its raft loop or apply stopped on an error (a failed WAL
    /// write or sync, a failed backend commit), which they log.
    pub async fn wait_halted(&self) -> Halt {
        let mut rx = self.removed.clone();
        let removed = rx.wait_for(|r| *r).await.is_ok();
        if removed {
            Halt::Removed
        } else {
            // The apply thread dropped its sender: it stopped, after raft did.
            Halt::Failed
        }
    }

    /// Asks raft to stop; the threads finish what they hold and exit.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.reads.kick();
    }

    /// Stops the raft loop after it persisted what it holds; the apply thread then
    /// drains and exits.
    pub fn stop_raft(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.raft_tx.send(RaftInput::Stop(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
    }
}
