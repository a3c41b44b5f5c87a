//! The member: start-up (bootstrap a new member or restart from disk), the threads it runs,
//! and the handle request handlers use to propose writes and serve reads.
//!
//! ```text
//!   gRPC / HTTP handlers ── Server::propose ──► raft thread ──► apply thread ──► Wait
//!          │                Server::linearizable_read (ReadIndex, batched)
//!          └──────────────── Server::kv() (MVCC reads at the applied revision)
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chorus_api::etcdserverpb::ResponseHeader;
use chorus_api::internalpb::{internal_request, InternalRequest, Member, RequestHeader};
use chorus_storage::backend::{self, Backend, BackendOptions};
use chorus_storage::mvcc::KvStore;
use chorus_storage::snap::Snapshotter;
use chorus_storage::wal::{Wal, WalOptions, WalSnapshot};
use parking_lot::{Mutex, RwLock};
use prost::Message as _;
use raft::eraftpb::{ConfState, SnapshotMetadata};
use tokio::sync::{watch, Notify};

use crate::apply::{Applied, Applier, ApplyLimits, ApplyResult};
use crate::config::Config;
use crate::error::EtcdError;
use crate::lease::Lessor;
use crate::membership::{self, Cluster};
use crate::raft::storage::RaftStorage;
use crate::raft::{DroppedProposals, Node, NodeConfig, RaftInput, RaftStatus};
use crate::transport::PeerTransport;
use crate::wait::{IdGenerator, Wait};

/// Why a member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot access data directory: {0}")]
    DataDir(String),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
    #[error(transparent)]
    Mvcc(#[from] chorus_storage::mvcc::MvccError),
    #[error(transparent)]
    Wal(#[from] chorus_storage::wal::WalError),
    #[error(transparent)]
    Snap(#[from] chorus_storage::snap::SnapError),
    #[error(transparent)]
    Raft(#[from] crate::raft::NodeError),
    #[error("{0}")]
    Other(String),
}

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
}

/// The member as request handlers see it.
pub struct Server {
    pub id: u64,
    pub name: String,
    pub cluster_id: u64,
    pub limits: Limits,
    pub status: Arc<RaftStatus>,
    pub(crate) raft_tx: crate::mailbox::Sender<RaftInput>,
    kv: RwLock<Arc<KvStore>>,
    pub(crate) cluster: RwLock<Cluster>,
    pub(crate) waiters: Wait<ApplyResult>,
    pub(crate) ids: IdGenerator,
    pub(crate) applied: watch::Sender<u64>,
    pub(crate) leader: watch::Receiver<u64>,
    reads: Mutex<Option<watch::Sender<Option<Result<(), EtcdError>>>>>,
    read_kick: Notify,
    stopping: AtomicBool,
    pub(crate) compacted: watch::Sender<i64>,
    pub(crate) alarms: RwLock<crate::alarm::Alarms>,
    /// `--quota-backend-bytes` in force (None: no quota).
    pub quota: Option<u64>,
    watch_hub: Arc<crate::watch::WatchHub>,
    pub(crate) lessor: Mutex<Lessor>,
    lease_cfg: LeaseConfig,
    transport: Arc<PeerTransport>,
    /// The v2 keys store (in memory; saved in the backend with each commit that changed it).
    v2: Arc<RwLock<crate::v2::V2Store>>,
    pub started_at: std::time::SystemTime,
    /// When this member last saw the leader change (monotonic, wall clock).
    leader_changed: Mutex<(std::time::Instant, std::time::SystemTime)>,
    /// Set when this member applied its own removal from the cluster.
    pub(crate) removed: watch::Sender<bool>,
    /// This member is a learner (checked on every client request).
    learner: AtomicBool,
}

/// How leases behave (from the configuration).
#[derive(Clone, Copy, Debug)]
pub struct LeaseConfig {
    pub min_ttl: i64,
    pub checkpoint_interval: Option<Duration>,
    pub persist_checkpoints: bool,
}

impl DroppedProposals for Server {
    fn dropped(&self, id: u64) {
        self.waiters.trigger(id, Err(EtcdError::ProposalDropped));
    }
}

impl Server {
    /// The current MVCC store (replaced when a snapshot from the leader is installed).
    pub fn kv(&self) -> Arc<KvStore> {
        self.kv.read().clone()
    }

    pub(crate) fn set_kv(&self, kv: Arc<KvStore>) {
        *self.kv.write() = kv;
    }

    pub(crate) fn transport(&self) -> &Arc<PeerTransport> {
        &self.transport
    }

    /// Replaces the membership (the apply thread, after a change or a snapshot).
    pub(crate) fn set_cluster(&self, cluster: Cluster) {
        let learner = cluster.member(self.id).is_some_and(|m| m.is_learner);
        self.learner.store(learner, Ordering::Release);
        *self.cluster.write() = cluster;
    }

    /// Whether this member is a learner (etcd refuses most client requests on one).
    pub fn is_learner(&self) -> bool {
        self.learner.load(Ordering::Acquire)
    }

    pub fn cluster(&self) -> Cluster {
        self.cluster.read().clone()
    }

    /// A fresh cluster-unique ID (request IDs, server-chosen lease IDs).
    pub fn next_id(&self) -> u64 {
        self.ids.next()
    }

    pub fn is_leader(&self) -> bool {
        self.status.is_leader.load(Ordering::Acquire)
    }

    /// Rebuilds the lessor from a backend that replaced the old one (snapshot install).
    pub(crate) fn reload_lessor(
        &self,
        backend: &Backend,
        key_leases: &[(Vec<u8>, i64)],
    ) -> Result<(), backend::BackendError> {
        let c = self.lease_cfg;
        let mut fresh = Lessor::load(
            backend,
            key_leases,
            c.min_ttl,
            c.checkpoint_interval,
            c.persist_checkpoints,
        )?;
        let mut lessor = self.lessor.lock();
        if lessor.is_primary() {
            fresh.promote(self.limits.election_timeout);
        }
        *lessor = fresh;
        Ok(())
    }

    /// Waits until this member applied what is committed now (a leader must know about
    /// every grant before it answers about leases).
    pub(crate) async fn wait_applied_commit(&self) -> Result<(), EtcdError> {
        let commit = self.status.commit.load(Ordering::Acquire);
        let mut applied = self.applied.subscribe();
        let wait = async { applied.wait_for(|a| *a >= commit).await.map(|_| ()) };
        match tokio::time::timeout(Duration::from_secs(1), wait).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::TimeoutWaitAppliedIndex),
        }
    }

    /// Runs `local` on the leader, or `remote` against the leader from a follower,
    /// waiting for a leader and retrying until the request timeout (etcd's lease
    /// forwarding).
    async fn on_leader<T, L, R, F>(&self, mut local: L, remote: R) -> Result<T, EtcdError>
    where
        L: FnMut(&Self) -> Option<Result<T, EtcdError>>,
        R: Fn(u64) -> F,
        F: std::future::Future<Output = Result<T, EtcdError>>,
    {
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        loop {
            if self.is_leader() {
                self.wait_applied_commit().await?;
                // None: this member just stopped leading; ask the new leader.
                if let Some(r) = local(self) {
                    return r;
                }
            }
            let mut leader_rx = self.leader.clone();
            let leader = tokio::time::timeout_at(deadline, async {
                leader_rx
                    .wait_for(|l| *l != raft::INVALID_ID)
                    .await
                    .map(|l| *l)
            })
            .await;
            let leader = match leader {
                Ok(Ok(l)) => l,
                Ok(Err(_)) => return Err(EtcdError::Stopped),
                Err(_) => return Err(EtcdError::NoLeader),
            };
            if leader != self.id {
                match remote(leader).await {
                    Err(EtcdError::Unavailable(_)) => {}
                    other => return other,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(EtcdError::Timeout);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A lease keep-alive: renewed by the leader (forwarded there from a follower).
    pub async fn lease_renew(&self, id: i64) -> Result<i64, EtcdError> {
        self.on_leader(
            |s| match s.lessor.lock().renew(id) {
                Err(EtcdError::NotLeader) => None,
                other => Some(other),
            },
            |leader| self.transport.lease_renew(leader, id),
        )
        .await
    }

    /// A lease's time to live as the leader sees it.
    pub async fn lease_time_to_live(
        &self,
        req: chorus_api::etcdserverpb::LeaseTimeToLiveRequest,
    ) -> Result<chorus_api::etcdserverpb::LeaseTimeToLiveResponse, EtcdError> {
        self.on_leader(
            |s| {
                let lessor = s.lessor.lock();
                if !lessor.is_primary() {
                    return None;
                }
                Some(match lessor.time_to_live(req.id, req.keys) {
                    None => Err(EtcdError::LeaseNotFound),
                    Some(info) => Ok(chorus_api::etcdserverpb::LeaseTimeToLiveResponse {
                        header: None,
                        id: req.id,
                        ttl: info.remaining,
                        granted_ttl: info.granted,
                        keys: info.keys,
                    }),
                })
            },
            |leader| self.transport.lease_time_to_live(leader, req),
        )
        .await
    }

    /// The leader's lease duties, every 500 ms: start or stop the lease clocks when
    /// leadership changes, revoke expired leases, checkpoint remaining TTLs.
    async fn lease_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut leader = self.leader.clone();
        let mut leading = false;
        loop {
            // A leadership change is handled at once (leases get their clocks when this
            // member starts leading), everything else every tick.
            tokio::select! {
                _ = tick.tick() => {}
                changed = leader.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    *self.leader_changed.lock() =
                        (std::time::Instant::now(), std::time::SystemTime::now());
                }
            }
            if self.is_stopping() {
                return;
            }
            let is_leader = self.is_leader();
            if is_leader != leading {
                leading = is_leader;
                let mut lessor = self.lessor.lock();
                if is_leader {
                    lessor.promote(self.limits.election_timeout);
                } else {
                    lessor.demote();
                }
            }
            if !leading {
                continue;
            }
            let (expired, checkpoints) = {
                let mut lessor = self.lessor.lock();
                (
                    lessor.expired(500, Duration::from_secs(3)),
                    lessor.due_checkpoints(1000),
                )
            };
            for id in expired {
                let server = self.clone();
                tokio::spawn(async move {
                    let req = chorus_api::etcdserverpb::LeaseRevokeRequest { id };
                    match server
                        .propose(internal_request::Request::LeaseRevoke(req))
                        .await
                    {
                        Ok(_) | Err(EtcdError::LeaseNotFound) => {}
                        Err(e) => {
                            tracing::warn!(lease = %format!("{id:x}"), "failed to revoke expired lease: {e}")
                        }
                    }
                });
            }
            if self.v2.read().has_ttl_keys() {
                // The leader expires v2 TTL keys through raft, with its clock in the request.
                let server = self.clone();
                tokio::spawn(async move {
                    let req = crate::v2::sync_request(std::time::SystemTime::now());
                    let _ = server.propose(internal_request::Request::V2(req)).await;
                });
            }
            if !checkpoints.is_empty() {
                let req = chorus_api::etcdserverpb::LeaseCheckpointRequest {
                    checkpoints: checkpoints
                        .into_iter()
                        .map(
                            |(id, remaining_ttl)| chorus_api::etcdserverpb::LeaseCheckpoint {
                                id,
                                remaining_ttl,
                            },
                        )
                        .collect(),
                };
                let server = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = server
                        .propose(internal_request::Request::LeaseCheckpoint(req))
                        .await
                    {
                        tracing::debug!("lease checkpoint not committed: {e}");
                    }
                });
            }
        }
    }

    pub fn v2_store(&self) -> &Arc<RwLock<crate::v2::V2Store>> {
        &self.v2
    }

    /// Since when (monotonic and wall clock) the current leader has been known here.
    pub fn leader_since(&self) -> (std::time::Instant, std::time::SystemTime) {
        *self.leader_changed.lock()
    }

    pub fn watch_hub(&self) -> &Arc<crate::watch::WatchHub> {
        &self.watch_hub
    }

    pub fn alarms(&self) -> crate::alarm::Alarms {
        self.alarms.read().clone()
    }

    /// etcd's quota check before a write that adds data: when the backend would grow past
    /// the quota, raise the NOSPACE alarm (through raft, in the background) and refuse.
    pub fn check_quota(self: &Arc<Self>, cost: u64) -> Result<(), EtcdError> {
        let size = self.kv().backend().cached_size();
        if crate::alarm::fits(size, cost, self.quota) {
            return Ok(());
        }
        let server = self.clone();
        tokio::spawn(async move {
            let req = chorus_api::etcdserverpb::AlarmRequest {
                action: chorus_api::etcdserverpb::alarm_request::AlarmAction::Activate as i32,
                member_id: server.id,
                alarm: chorus_api::etcdserverpb::AlarmType::Nospace as i32,
            };
            if let Err(e) = server.propose(internal_request::Request::Alarm(req)).await {
                tracing::warn!("failed to raise the NOSPACE alarm: {e}");
            }
        });
        Err(EtcdError::NoSpace)
    }

    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
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

    /// Fills the identity fields of a header the apply path created with a revision.
    pub fn fill_header(&self, h: &mut Option<ResponseHeader>) {
        let rev = h.as_ref().map_or(0, |h| h.revision);
        *h = Some(self.header(rev));
    }

    /// Replicates a command through raft and waits for the result of applying it.
    /// While there is no leader the proposal waits for one, until the request timeout.
    pub async fn propose(&self, request: internal_request::Request) -> Result<Applied, EtcdError> {
        if self.is_stopping() {
            return Err(EtcdError::Stopped);
        }
        let id = self.ids.next();
        // etcd checks --max-request-bytes on v3 requests only; a v2 write is bounded by
        // the 10 MiB of its form alone.
        let limited = !matches!(request, internal_request::Request::V2(_));
        let data = InternalRequest {
            header: Some(RequestHeader {
                id,
                ..Default::default()
            }),
            request: Some(request),
        }
        .encode_to_vec();
        if limited && data.len() > self.limits.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        self.replicate(id, || RaftInput::Propose {
            id,
            data: data.clone(),
        })
        .await
    }

    /// Hands raft the input `make` builds (a proposal carrying request `id`) and waits for
    /// the apply thread to report on `id`; proposals raft drops for want of a leader are
    /// made again once there is one, until the request timeout.
    pub(crate) async fn replicate(
        &self,
        id: u64,
        make: impl Fn() -> RaftInput,
    ) -> Result<Applied, EtcdError> {
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        loop {
            let rx = self.waiters.register(id);
            if self.raft_tx.send(make()).is_err() {
                self.waiters.cancel(id);
                return Err(EtcdError::Stopped);
            }
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(Err(EtcdError::ProposalDropped))) => {
                    // No leader (or a leader transfer): wait for one and try again.
                    let mut leader = self.leader.clone();
                    let has_leader = tokio::time::timeout_at(deadline, async {
                        leader
                            .wait_for(|l| *l != raft::INVALID_ID)
                            .await
                            .map(|_| ())
                    })
                    .await;
                    match has_leader {
                        Ok(Ok(_)) => {
                            // Give the new leader's first entry a moment to land.
                            tokio::task::yield_now().await;
                            continue;
                        }
                        Ok(Err(_)) => return Err(EtcdError::Stopped),
                        Err(_) => return Err(EtcdError::Timeout),
                    }
                }
                Ok(Ok(result)) => return result,
                Ok(Err(_)) => return Err(EtcdError::Stopped),
                Err(_) => {
                    self.waiters.cancel(id);
                    return Err(if self.status.leader() == raft::INVALID_ID {
                        EtcdError::TimeoutDueToLeaderFail
                    } else {
                        EtcdError::Timeout
                    });
                }
            }
        }
    }

    /// Waits until this member has applied everything the leader had committed when the
    /// call began (raft ReadIndex). Concurrent callers share one ReadIndex round.
    pub async fn linearizable_read(&self) -> Result<(), EtcdError> {
        if self.is_stopping() {
            return Err(EtcdError::Stopped);
        }
        let mut rx = {
            let mut pending = self.reads.lock();
            pending
                .get_or_insert_with(|| watch::channel(None).0)
                .subscribe()
        };
        self.read_kick.notify_one();
        let result = rx.wait_for(|r| r.is_some()).await.map(|r| r.clone());
        match result {
            Ok(r) => r.expect("checked by wait_for"),
            Err(_) => Err(EtcdError::Stopped),
        }
    }

    /// The batching loop behind `linearizable_read` (etcd's linearizableReadLoop).
    async fn read_loop(self: Arc<Self>) {
        loop {
            self.read_kick.notified().await;
            if self.is_stopping() {
                if let Some(batch) = self.reads.lock().take() {
                    let _ = batch.send(Some(Err(EtcdError::Stopped)));
                }
                return;
            }
            let Some(batch) = self.reads.lock().take() else {
                continue;
            };
            let result = self.read_index_once().await;
            let _ = batch.send(Some(result));
        }
    }

    async fn read_index_once(&self) -> Result<(), EtcdError> {
        let ctx = self.ids.next();
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.status.reads.lock().insert(ctx, tx);
        let index = loop {
            if self.raft_tx.send(RaftInput::ReadIndex { ctx }).is_err() {
                return Err(EtcdError::Stopped);
            }
            // raft drops a ReadIndex while there is no leader; ask again, as etcd does.
            let retry = (tokio::time::Instant::now() + Duration::from_millis(500)).min(deadline);
            match tokio::time::timeout_at(retry, &mut rx).await {
                Ok(Ok(index)) => break index,
                Ok(Err(_)) => return Err(EtcdError::Stopped),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    self.status.reads.lock().remove(&ctx);
                    return Err(EtcdError::Timeout);
                }
                Err(_) => continue,
            }
        };
        let mut applied = self.applied.subscribe();
        let caught_up = async { applied.wait_for(|a| *a >= index).await.map(|_| ()) };
        match tokio::time::timeout_at(deadline, caught_up).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::TimeoutWaitAppliedIndex),
        }
    }

    /// Runs a task on the apply thread behind everything committed so far.
    async fn on_apply_thread<T>(
        &self,
        task: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, String>>) -> crate::raft::ApplyTask,
    ) -> Result<T, EtcdError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.raft_tx
            .send(RaftInput::Apply(task(tx)))
            .map_err(|_| EtcdError::Stopped)?;
        rx.await
            .map_err(|_| EtcdError::Stopped)?
            .map_err(EtcdError::Internal)
    }

    /// A read transaction over everything applied (the backend committed first).
    pub async fn backend_snapshot(&self) -> Result<redb::ReadTransaction, EtcdError> {
        self.on_apply_thread(crate::raft::ApplyTask::ReadBackend)
            .await
    }

    /// Rewrites this member's backend without free pages; applying waits meanwhile.
    pub async fn defragment(&self) -> Result<(), EtcdError> {
        self.on_apply_thread(crate::raft::ApplyTask::Defragment)
            .await
    }

    /// Maintenance.MoveLeader: only the leader may hand over, to a voting member; waits
    /// until the transferee leads.
    pub async fn move_leader(&self, target: u64) -> Result<(), EtcdError> {
        if !self.is_leader() {
            return Err(EtcdError::NotLeader);
        }
        let voter = self
            .cluster()
            .member(target)
            .map(|m| !m.is_learner)
            .unwrap_or(false);
        if !voter {
            return Err(EtcdError::BadLeaderTransferee);
        }
        if target == self.id {
            return Ok(());
        }
        self.raft_tx
            .send(RaftInput::TransferLeader(target))
            .map_err(|_| EtcdError::Stopped)?;
        let mut leader = self.leader.clone();
        // etcd allows a request timeout; a transfer needs about one election timeout.
        let limit = self.limits.election_timeout * 2 + Duration::from_secs(5);
        let moved = async { leader.wait_for(|l| *l == target).await.map(|_| ()) };
        match tokio::time::timeout(limit, moved).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::TimeoutLeaderTransfer),
        }
    }

    /// On shutdown: if leading, hand leadership to the most up-to-date follower and wait
    /// (up to an election timeout) until another member leads, so clients see no
    /// election gap (etcd's TryTransferLeadershipOnShutdown).
    pub async fn transfer_leadership_away(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .raft_tx
            .send(RaftInput::TransferLeadershipAway(tx))
            .is_err()
        {
            return;
        }
        if !rx.await.unwrap_or(false) {
            return;
        }
        let me = self.id;
        let mut leader = self.leader.clone();
        let moved = async {
            leader
                .wait_for(|l| *l != me && *l != raft::INVALID_ID)
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(self.limits.election_timeout, moved).await {
            Ok(Ok(())) => tracing::info!("transferred leadership before stopping"),
            _ => tracing::warn!("leadership transfer did not finish before stopping"),
        }
    }

    /// Asks raft to stop; the threads finish what they hold and exit.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.read_kick.notify_one();
    }
}

impl crate::compactor::Compactable for Arc<Server> {
    fn current_rev(&self) -> i64 {
        self.kv().current_rev()
    }

    fn is_leader(&self) -> bool {
        self.status.is_leader.load(Ordering::Acquire)
    }

    async fn compact(&self, rev: i64) -> Result<(), EtcdError> {
        let req = chorus_api::etcdserverpb::CompactionRequest {
            revision: rev,
            physical: false,
        };
        self.propose(internal_request::Request::Compaction(req))
            .await
            .map(drop)
    }
}

/// What `start` hands back: the shared handle and the threads to join.
pub struct Running {
    pub server: Arc<Server>,
    pub transport: Arc<PeerTransport>,
    raft_thread: Option<std::thread::JoinHandle<Result<(), crate::raft::NodeError>>>,
    apply_thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Stops raft (persisting what it holds) and the apply thread.
    pub fn shutdown(mut self) -> Result<(), String> {
        self.server.stop();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self.server.raft_tx.send(RaftInput::Stop(tx));
        let _ = rx.blocking_recv();
        let mut result = Ok(());
        if let Some(t) = self.raft_thread.take() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e.to_string()),
                Err(_) => result = Err("raft thread panicked".into()),
            }
        }
        drop(self.server);
        if let Some(t) = self.apply_thread.take() {
            let _ = t.join();
        }
        result
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// WAL metadata: which member and cluster this log belongs to, and the configuration the
/// cluster was bootstrapped with (the raft log starts at index 1 with it in force).
fn encode_wal_metadata(member_id: u64, cluster_id: u64, conf: &ConfState) -> Vec<u8> {
    use protobuf::Message as _;
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&member_id.to_be_bytes());
    v.extend_from_slice(&cluster_id.to_be_bytes());
    v.extend_from_slice(&conf.write_to_bytes().expect("encode conf state"));
    v
}

fn decode_wal_metadata(b: &[u8]) -> Option<(u64, u64, ConfState)> {
    use protobuf::Message as _;
    let member = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
    let cluster = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
    let conf = ConfState::parse_from_bytes(b.get(16..)?).ok()?;
    Some((member, cluster, conf))
}

fn create_dir(dir: &Path) -> Result<(), StartError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StartError::DataDir(format!("{}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    // etcd's TouchDirAll: the directory must be writable.
    let probe = dir.join(".touch");
    std::fs::write(&probe, b"")
        .map_err(|e| StartError::DataDir(format!("{}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// The backend file a snapshot from the leader is received into.
pub fn snapshot_db_path(snap_dir: &Path, index: u64) -> PathBuf {
    snap_dir.join(format!("{index:016x}.snap.db"))
}

fn backend_path(snap_dir: &Path) -> PathBuf {
    snap_dir.join("db")
}

/// State recovered from (or created on) disk before the threads start.
pub(crate) struct Recovered {
    member_id: u64,
    cluster_id: u64,
    storage: RaftStorage,
    wal: Wal,
    backend: Arc<Backend>,
    snapshot: SnapshotMetadata,
}

fn bootstrap(cfg: &Config, backend_opts: &BackendOptions) -> Result<Recovered, StartError> {
    let boot = cfg.bootstrap_cluster()?;
    let snap_dir = cfg.snap_dir();
    let _ = std::fs::remove_file(backend_path(&snap_dir));
    let backend = Backend::open(&backend_path(&snap_dir), backend_opts)?;
    init_member(cfg, &boot, backend, &Snapshotter::new(snap_dir))
}

/// Makes `backend` (empty, or restored from a snapshot) the state of a new member of a
/// new cluster: its members and cluster ID, and a fresh WAL.
///
/// Where etcd writes one conf-change entry per initial member at term 1 (indexes 1..=n),
/// chorus starts every member from a raft snapshot at index n, term 1, holding the
/// initial configuration: the same indexes and terms as etcd from then on, and a member
/// that joins later receives a snapshot (with the membership) rather than log entries
/// that could not tell it who the initial members were.
pub(crate) fn init_member(
    cfg: &Config,
    boot: &crate::config::BootstrapCluster,
    backend: Backend,
    snapshotter: &Snapshotter,
) -> Result<Recovered, StartError> {
    let index = boot.members.len() as u64;
    {
        let tx = backend.begin_durable_write()?;
        // A restored backend keeps the KV data, leases and the v2 store; membership and
        // raft positions belong to the old cluster.
        for table in [backend::MEMBERS, backend::REMOVED_MEMBERS] {
            tx.delete_table(table)
                .map_err(backend::BackendError::from)?;
            tx.open_table(table).map_err(backend::BackendError::from)?;
        }
        for m in &boot.members {
            membership::save_member(
                &tx,
                &Member {
                    id: m.id,
                    name: m.name.clone(),
                    peer_urls: m.peer_urls.clone(),
                    client_urls: Vec::new(),
                    is_learner: false,
                },
            )?;
        }
        let mut meta = tx
            .open_table(backend::META)
            .map_err(backend::BackendError::from)?;
        backend::put_meta_u64(&mut meta, membership::META_CLUSTER_ID, boot.cluster_id)?;
        backend::put_meta_u64(&mut meta, backend::meta_keys::CONSISTENT_INDEX, index)?;
        backend::put_meta_u64(&mut meta, backend::meta_keys::TERM, 1)?;
        drop(meta);
        tx.commit().map_err(backend::BackendError::from)?;
    }
    // Every member starts from the same configuration: all initial members are voters.
    let conf = ConfState {
        voters: boot.members.iter().map(|m| m.id).collect(),
        ..Default::default()
    };
    let mut wal = Wal::create(
        &cfg.wal_dir(),
        &encode_wal_metadata(boot.local_id, boot.cluster_id, &conf),
        wal_options(cfg),
    )?;
    let mut meta = SnapshotMetadata {
        index,
        term: 1,
        ..Default::default()
    };
    meta.set_conf_state(conf);
    let mut snap = raft::eraftpb::Snapshot::default();
    snap.set_metadata(meta.clone());
    snapshotter.save(&snap)?;
    wal.save_snapshot(WalSnapshot { index, term: 1 })?;
    let hard_state = raft::eraftpb::HardState {
        term: 1,
        commit: index,
        ..Default::default()
    };
    wal.save(Some(&hard_state), &[], true)?;
    tracing::info!(
        member = %format!("{:x}", boot.local_id),
        cluster = %format!("{:x}", boot.cluster_id),
        members = boot.members.len(),
        "bootstrapped a new member"
    );
    Ok(Recovered {
        member_id: boot.local_id,
        cluster_id: boot.cluster_id,
        storage: RaftStorage::new(meta.clone(), hard_state, Vec::new()),
        wal,
        backend: Arc::new(backend),
        snapshot: meta,
    })
}

/// `--initial-cluster-state existing`: asks the other members of `--initial-cluster` for
/// the cluster, finds this member in it (added beforehand with `member add`) by its peer
/// URLs, and starts with an empty log: the leader sends a snapshot with the data and the
/// membership.
async fn join(
    cfg: &Config,
    backend_opts: &BackendOptions,
    dialer: &crate::transport::PeerDialer,
) -> Result<Recovered, StartError> {
    use chorus_api::peerpb::{raft_client::RaftClient, MembersRequest};
    let boot = cfg.bootstrap_cluster()?;
    let mut ours: Vec<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(|u| u.to_string())
        .collect();
    ours.sort();
    let mut remote = None;
    let mut failures = Vec::new();
    'ask: for m in boot.members.iter().filter(|m| m.name != cfg.name) {
        for url in &m.peer_urls {
            let asked = async {
                let channel = dialer.lazy(url)?;
                RaftClient::new(channel)
                    .members(MembersRequest {})
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|s| s.message().to_string())
            };
            match tokio::time::timeout(Duration::from_secs(5), asked).await {
                Ok(Ok(r)) => {
                    remote = Some(r);
                    break 'ask;
                }
                Ok(Err(e)) => failures.push(format!("{url}: {e}")),
                Err(_) => failures.push(format!("{url}: timed out")),
            }
        }
    }
    let Some(remote) = remote else {
        return Err(StartError::Other(format!(
            "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs ({})",
            failures.join("; ")
        )));
    };
    let me = remote.members.iter().find(|m| {
        let mut urls = m.peer_urls.clone();
        urls.sort();
        urls == ours
    });
    let Some(me) = me else {
        return Err(StartError::Other(format!(
            "error validating peerURLs: no member of cluster {:x} has the peer URLs {} (add this member with `member add` before starting it with --initial-cluster-state=existing)",
            remote.cluster_id,
            ours.join(",")
        )));
    };
    if remote.removed.contains(&me.id) {
        return Err(StartError::Other(
            "the member has been permanently removed from the cluster".into(),
        ));
    }
    let snap_dir = cfg.snap_dir();
    let _ = std::fs::remove_file(backend_path(&snap_dir));
    let backend = Backend::open(&backend_path(&snap_dir), backend_opts)?;
    {
        let tx = backend.begin_durable_write()?;
        for m in &remote.members {
            membership::save_member(&tx, m)?;
        }
        let mut meta = tx
            .open_table(backend::META)
            .map_err(backend::BackendError::from)?;
        backend::put_meta_u64(&mut meta, membership::META_CLUSTER_ID, remote.cluster_id)?;
        drop(meta);
        tx.commit().map_err(backend::BackendError::from)?;
    }
    let wal = Wal::create(
        &cfg.wal_dir(),
        &encode_wal_metadata(me.id, remote.cluster_id, &ConfState::default()),
        wal_options(cfg),
    )?;
    tracing::info!(
        member = %format!("{:x}", me.id),
        cluster = %format!("{:x}", remote.cluster_id),
        members = remote.members.len(),
        "joining an existing cluster"
    );
    let meta = SnapshotMetadata::default();
    Ok(Recovered {
        member_id: me.id,
        cluster_id: remote.cluster_id,
        storage: RaftStorage::new(
            meta.clone(),
            raft::eraftpb::HardState::default(),
            Vec::new(),
        ),
        wal,
        backend: Arc::new(backend),
        snapshot: meta,
    })
}

fn wal_options(cfg: &Config) -> WalOptions {
    WalOptions {
        unsafe_no_fsync: cfg.unsafe_no_fsync,
        ..Default::default()
    }
}

fn restart(
    cfg: &Config,
    snapshotter: &Snapshotter,
    backend_opts: &BackendOptions,
) -> Result<Recovered, StartError> {
    let wal_dir = cfg.wal_dir();
    let markers = Wal::valid_snapshot_markers(&wal_dir)?;
    let snap = snapshotter.load_newest_available(&markers)?;
    let snapshot_meta = snap.map(|s| s.get_metadata().clone());
    let meta = snapshot_meta.clone().unwrap_or_default();
    let snap_dir = cfg.snap_dir();
    let db = backend_path(&snap_dir);
    // A snapshot from the leader may have been recorded before its backend file was moved
    // into place: finish the move.
    let received = snapshot_db_path(&snap_dir, meta.index);
    if meta.index > 0 && received.exists() {
        let backend = Backend::open(&db, backend_opts)?;
        let ci = consistent_index(&backend)?;
        drop(backend);
        if ci < meta.index {
            std::fs::rename(&received, &db).map_err(|e| StartError::Other(e.to_string()))?;
        } else {
            let _ = std::fs::remove_file(&received);
        }
    }
    let backend = Backend::open(&db, backend_opts)?;
    let ci = consistent_index(&backend)?;
    if ci < meta.index {
        return Err(StartError::Other(format!(
            "backend consistent index {ci} is behind the snapshot at {}: the db file does not match the WAL",
            meta.index
        )));
    }
    let (wal, replay) = Wal::open(
        &wal_dir,
        WalSnapshot {
            index: meta.index,
            term: meta.term,
        },
        wal_options(cfg),
    )?;
    let (member_id, cluster_id, boot_conf) = decode_wal_metadata(&replay.metadata)
        .ok_or_else(|| StartError::Other("wal: metadata is not a chorus member record".into()))?;
    let mut meta = meta;
    if snapshot_meta.is_none() {
        meta.set_conf_state(boot_conf);
    }
    tracing::info!(
        member = %format!("{member_id:x}"),
        cluster = %format!("{cluster_id:x}"),
        snapshot_index = meta.index,
        entries = replay.entries.len(),
        commit = replay.hard_state.commit,
        "restarting member"
    );
    Ok(Recovered {
        member_id,
        cluster_id,
        storage: RaftStorage::new(meta.clone(), replay.hard_state, replay.entries),
        wal,
        backend: Arc::new(backend),
        snapshot: meta,
    })
}

pub fn consistent_index(backend: &Backend) -> Result<u64, backend::BackendError> {
    let tx = backend.begin_read()?;
    let meta = tx.open_table(backend::META)?;
    Ok(backend::get_meta_u64(&meta, backend::meta_keys::CONSISTENT_INDEX)?.unwrap_or(0))
}

/// Starts the member: recovers or bootstraps its state and runs the raft and apply
/// threads and the peer transport. Client listeners are started by the caller.
pub async fn start(cfg: &Config, tls: &crate::tls::MemberTls) -> Result<Running, StartError> {
    create_dir(&cfg.data_dir)?;
    create_dir(&cfg.member_dir())?;
    create_dir(&cfg.snap_dir())?;
    let snapshotter = Snapshotter::new(cfg.snap_dir());
    let backend_opts = BackendOptions::default();
    let rec = if Wal::exists(&cfg.wal_dir()) {
        restart(cfg, &snapshotter, &backend_opts)?
    } else if cfg.is_new_cluster() {
        bootstrap(cfg, &backend_opts)?
    } else {
        let dialer = crate::transport::PeerDialer::new(tls.peer_client.clone());
        join(cfg, &backend_opts, &dialer).await?
    };
    if membership::is_removed(&rec.backend, rec.member_id)? {
        return Err(StartError::Other(
            "the member has been permanently removed from the cluster".into(),
        ));
    }
    let (kv, restored) = KvStore::open(rec.backend.clone())?;
    let kv = Arc::new(kv);
    let cluster = Cluster::load(&rec.backend, rec.cluster_id)?;
    let ci = consistent_index(&rec.backend)?;

    let election_ticks = cfg.election_ticks() as usize;
    let limits = Limits {
        max_request_bytes: cfg.max_request_bytes as usize,
        max_txn_ops: cfg.max_txn_ops as usize,
        request_timeout: Duration::from_secs(5)
            + 2 * Duration::from_millis(cfg.election_timeout_ms),
        election_timeout: Duration::from_millis(cfg.election_timeout_ms),
        grpc_gateway: cfg.enable_grpc_gateway,
        strict_reconfig_check: cfg.strict_reconfig_check,
        grpc_keepalive: (!cfg.grpc_keepalive_interval.is_zero())
            .then_some((cfg.grpc_keepalive_interval, cfg.grpc_keepalive_timeout)),
        enable_v2: cfg.enable_v2,
    };
    let (raft_tx, raft_rx) = crate::mailbox::mailbox();
    let (apply_tx, apply_rx) = crate::mailbox::mailbox();
    let (leader_tx, leader_rx) = watch::channel(raft::INVALID_ID);
    let status = Arc::new(RaftStatus::default());
    status
        .term
        .store(rec.storage.hard_state().term, Ordering::Release);
    let (applied_tx, _) = watch::channel(ci);
    let (compacted_tx, _) = watch::channel(restored.compact_rev);
    let alarms = crate::alarm::Alarms::load(&rec.backend)?;
    if alarms.is_active(chorus_api::etcdserverpb::AlarmType::Nospace) {
        tracing::warn!("the NOSPACE alarm is active: writes are refused until it is disarmed");
    }
    let transport = PeerTransport::start(
        rec.member_id,
        rec.cluster_id,
        &cfg.listen_peer_urls,
        cfg.snap_dir(),
        backend_opts.clone(),
        raft_tx.clone(),
        crate::transport::PeerDialer::new(tls.peer_client.clone()),
        tls.peer_server.clone(),
    )
    .await
    .map_err(StartError::Other)?;
    let checkpoint_interval = cfg
        .experimental_enable_lease_checkpoint
        .then_some(cfg.experimental_lease_checkpoint_interval)
        .filter(|d| !d.is_zero());
    let lease_cfg = LeaseConfig {
        min_ttl: crate::lease::min_ttl(cfg.election_ticks(), cfg.heartbeat_interval_ms),
        checkpoint_interval,
        persist_checkpoints: cfg.experimental_enable_lease_checkpoint_persist,
    };
    let mut v2_store = crate::v2::V2Store::new();
    crate::v2::persist::load_into(&rec.backend, &mut v2_store)?;
    let lessor = Lessor::load(
        &rec.backend,
        &restored.key_leases,
        lease_cfg.min_ttl,
        lease_cfg.checkpoint_interval,
        lease_cfg.persist_checkpoints,
    )?;
    let server = Arc::new(Server {
        id: rec.member_id,
        name: cfg.name.clone(),
        cluster_id: rec.cluster_id,
        limits,
        status: status.clone(),
        raft_tx: raft_tx.clone(),
        kv: RwLock::new(kv.clone()),
        cluster: RwLock::new(cluster.clone()),
        waiters: Wait::default(),
        ids: IdGenerator::new(rec.member_id, now_ms()),
        applied: applied_tx,
        leader: leader_rx,
        reads: Mutex::new(None),
        read_kick: Notify::new(),
        stopping: AtomicBool::new(false),
        compacted: compacted_tx,
        alarms: RwLock::new(alarms.clone()),
        quota: cfg.effective_quota_backend_bytes(),
        watch_hub: crate::watch::WatchHub::new(restored.current_rev),
        lessor: Mutex::new(lessor),
        lease_cfg,
        transport: transport.clone(),
        v2: Arc::new(RwLock::new(v2_store)),
        started_at: std::time::SystemTime::now(),
        leader_changed: Mutex::new((std::time::Instant::now(), std::time::SystemTime::now())),
        removed: watch::channel(false).0,
        learner: AtomicBool::new(cluster.member(rec.member_id).is_some_and(|m| m.is_learner)),
    });

    transport.set_server(Arc::downgrade(&server));
    for m in cluster.members.values() {
        if m.id != rec.member_id {
            transport.add_peer(m.id, &m.peer_urls);
        }
    }

    let node = Node::new(
        NodeConfig {
            id: rec.member_id,
            tick: Duration::from_millis(cfg.heartbeat_interval_ms),
            election_tick: election_ticks,
            heartbeat_tick: 1,
            snapshot_catchup_entries: cfg.experimental_snapshot_catchup_entries,
            max_snapshots: cfg.max_snapshots.max(1) as usize,
            applied: rec.snapshot.index,
            pre_vote: cfg.pre_vote,
            fast_first_election: cfg.initial_election_tick_advance,
        },
        rec.storage,
        rec.wal,
        snapshotter,
        raft_rx,
        apply_tx,
        transport.clone(),
        status,
        server.clone(),
        leader_tx,
        server.applied.subscribe(),
    )?;
    let raft_thread = std::thread::Builder::new()
        .name("raft".into())
        .spawn(move || {
            let r = node.run();
            if let Err(e) = &r {
                tracing::error!("raft loop stopped: {e}");
            }
            r
        })
        .map_err(|e| StartError::Other(e.to_string()))?;

    let applier = Applier::new(
        server.clone(),
        apply_rx,
        rec.backend,
        kv,
        ci,
        rec.snapshot,
        cfg.effective_snapshot_count(),
        cfg.snap_dir(),
        backend_opts,
        transport.clone(),
        ApplyLimits {
            batch_interval: cfg.backend_batch_interval,
            batch_limit: cfg.backend_batch_limit,
            compaction_batch_limit: cfg.effective_compaction_batch_limit() as usize,
            warning_apply_duration: cfg.experimental_warning_apply_duration,
        },
        alarms,
    )?;
    if let Some(rev) = restored.pending_compaction {
        applier.resume_compaction(rev);
    }
    let apply_thread = std::thread::Builder::new()
        .name("apply".into())
        .spawn(move || applier.run())
        .map_err(|e| StartError::Other(e.to_string()))?;

    tokio::spawn(server.clone().read_loop());
    tokio::spawn(server.clone().lease_loop());
    let hub = server.watch_hub.clone();
    let weak = Arc::downgrade(&server);
    tokio::spawn(
        hub.clone()
            .run_catch_up(move || weak.upgrade().map(|s| s.kv())),
    );
    let interval = cfg.effective_watch_progress_notify_interval();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            tick.tick().await;
            hub.progress_tick();
        }
    });
    Ok(Running {
        server,
        transport,
        raft_thread: Some(raft_thread),
        apply_thread: Some(apply_thread),
    })
}

/// Publishes this member's name and client URLs through raft once there is a leader, so
/// every member lists them (etcd's publish); then tells systemd the member is ready.
pub async fn publish_attributes(server: Arc<Server>, client_urls: Vec<String>) {
    publish(&server, client_urls).await;
    if !server.is_stopping() {
        match crate::notify::notify("READY=1") {
            Ok(true) => tracing::info!("notified systemd: ready"),
            Ok(false) => {}
            Err(e) => tracing::warn!("failed to notify systemd: {e}"),
        }
    }
}

async fn publish(server: &Arc<Server>, client_urls: Vec<String>) {
    let attrs = chorus_api::internalpb::MemberAttributes {
        member_id: server.id,
        name: server.name.clone(),
        client_urls,
    };
    for attempt in 0..u32::MAX {
        if server.is_stopping() {
            return;
        }
        let current = server.cluster().member(server.id).cloned();
        if current.is_some_and(|m| m.name == attrs.name && m.client_urls == attrs.client_urls) {
            return;
        }
        match server
            .propose(internal_request::Request::MemberAttributes(attrs.clone()))
            .await
        {
            Ok(_) => {
                tracing::info!("published member attributes to the cluster");
                return;
            }
            Err(e) => {
                if attempt % 10 == 0 {
                    tracing::warn!("failed to publish member attributes: {e}");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
