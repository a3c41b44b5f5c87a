//! The raft node loop: one thread owns the `RawNode` (`&mut`, no locks) and drives it.
//!
//! ```text
//!  inputs (crossbeam channel)          the loop, per iteration
//!  ─────────────────────────           ──────────────────────────────────────────────
//!  Propose / ReadIndex (clients)  ──►  drain every pending input (group commit)
//!  Step (peer transport)               tick when the heartbeat interval passed
//!  Report* (transport)                 Ready:
//!  Snapshotted (apply)                   1. messages out at once (leader: before its fsync)
//!                                        2. snapshot: .snap file, WAL marker, raft storage
//!                                        3. committed entries -> apply thread (in order)
//!                                        4. entries + hard state -> WAL, one fdatasync
//!                                        5. persisted messages out, read states answered
//!                                        6. advance; LightReady messages/entries likewise
//! ```
//! Conf changes are applied to the `RawNode` here, in log order, before the entry goes to
//! the apply thread with the resulting `ConfState`.

mod heartbeat;
pub mod logger;
pub mod storage;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mailbox::{Receiver, RecvError, Sender};
use chorus_storage::backend::BackendError;
use chorus_storage::snap::Snapshotter;
use chorus_storage::wal::{Wal, WalSnapshot};
use parking_lot::Mutex;
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType, Snapshot,
    SnapshotMetadata,
};
use raft::{RawNode, SnapshotStatus, StateRole};
use tokio::sync::{oneshot, watch};

use self::storage::RaftStorage;

/// In-memory log entries are dropped (see `Node::trim_log`) this many at a time at least.
const TRIM_BATCH: u64 = 1024;

/// What the loop is asked to do.
pub enum RaftInput {
    /// A client proposal; `id` is reported back if raft drops it.
    Propose {
        id: u64,
        data: Vec<u8>,
    },
    ProposeConfChange {
        id: u64,
        cc: ConfChangeV2,
    },
    /// A message from a peer.
    Step(Message),
    /// A linearizable read barrier; the read state comes back with `ctx`.
    ReadIndex {
        ctx: u64,
    },
    ReportUnreachable(u64),
    ReportSnapshot {
        to: u64,
        ok: bool,
    },
    /// The apply thread made the backend durable at `meta.index`: snapshot the log there.
    Snapshotted {
        meta: SnapshotMetadata,
    },
    TransferLeader(u64),
    /// If leading, hand leadership to the most up-to-date voter (graceful shutdown);
    /// answers whether a transfer started.
    TransferLeadershipAway(oneshot::Sender<bool>),
    Campaign,
    /// Queued to the apply thread behind the entries handed to it so far.
    Apply(ApplyTask),
    /// The leader's view of how far each member's log matches its own (empty when not
    /// leading).
    Progress(oneshot::Sender<HashMap<u64, u64>>),
    /// Stop after persisting what is in hand; the sender is told when the loop is done.
    Stop(oneshot::Sender<()>),
}

/// A committed entry on its way to the apply thread; conf changes carry their result.
pub struct Committed {
    pub entry: Entry,
    /// For a conf change raft accepted: the configuration after it.
    pub conf_state: Option<ConfState>,
    /// For a conf change raft refused (e.g. removing the last voter): why.
    pub conf_error: Option<String>,
}

/// What the apply thread receives from the loop, in log order.
pub enum ApplyTask {
    Entries(Vec<Committed>),
    /// A snapshot from the leader is on disk (`.snap` and its backend file): switch to it.
    InstallSnapshot(SnapshotMetadata),
    /// Raft wants to send a snapshot: the apply thread attaches its backend state.
    SendSnapshot(Message),
    /// A read transaction over everything applied so far (Maintenance.Snapshot).
    ReadBackend(oneshot::Sender<Result<redb::ReadTransaction, BackendError>>),
    /// A defragment's first half (Maintenance.Defragment): copy the backend as it is
    /// now into a new file without free pages, on a thread of its own while applying
    /// goes on; the reply comes when the copy is written.
    DefragmentCopy(oneshot::Sender<Result<BackendCopy, BackendError>>),
    /// Its second half: bring the copy up to date and switch to it (applying waits).
    DefragmentSwitch(BackendCopy, oneshot::Sender<Result<Switched, BackendError>>),
}

/// How a defragment's switch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switched {
    Done,
    /// A snapshot from the leader replaced the backend while it was copied: nothing
    /// changed, the copy is gone; copy again.
    Replaced,
}

/// A copy of the backend without free pages, made from a read transaction.
pub struct BackendCopy {
    pub path: std::path::PathBuf,
    /// The backend copied: the switch is refused if another (a snapshot from the
    /// leader) replaced it meanwhile.
    pub source: Arc<chorus_storage::backend::Backend>,
    /// The last key revision the copy holds.
    pub since: i64,
}

/// Outgoing messages.
pub trait Transport: Send + Sync {
    fn send(&self, msgs: Vec<Message>);
}

/// Raft state published for request handlers (lock-free reads).
#[derive(Default)]
pub struct RaftStatus {
    pub term: AtomicU64,
    pub leader: AtomicU64,
    pub commit: AtomicU64,
    pub last_index: AtomicU64,
    pub is_leader: AtomicBool,
    /// Times a new leader became known (etcd's `etcd_server_leader_changes_seen_total`).
    pub leader_changes: AtomicU64,
    /// ReadIndex contexts waiting for their read state.
    pub reads: Mutex<HashMap<u64, oneshot::Sender<u64>>>,
}

impl RaftStatus {
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }
    pub fn leader(&self) -> u64 {
        self.leader.load(Ordering::Acquire)
    }
}

/// Proposals raft refused (no leader, leader transfer in progress).
pub trait DroppedProposals: Send + Sync {
    fn dropped(&self, id: u64);
}

pub struct NodeConfig {
    pub id: u64,
    pub tick: Duration,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Entries kept in memory after a snapshot for slow followers (etcd: 5000).
    pub snapshot_catchup_entries: u64,
    pub max_snapshots: usize,
    /// Applied index at start-up (the snapshot's index).
    pub applied: u64,
    pub pre_vote: bool,
    /// Campaign at once when this member is the only voter (etcd's
    /// --initial-election-tick-advance for a one-member cluster).
    pub fast_first_election: bool,
}

pub struct Node {
    raw: RawNode<RaftStorage>,
    wal: Wal,
    snapshotter: Snapshotter,
    cfg: NodeConfig,
    rx: Receiver<RaftInput>,
    apply_tx: Sender<ApplyTask>,
    transport: Arc<dyn Transport>,
    status: Arc<RaftStatus>,
    dropped: Arc<dyn DroppedProposals>,
    leader_tx: watch::Sender<u64>,
    /// The apply thread's applied index (the backend's state).
    backend_applied: watch::Receiver<u64>,
    /// Late heartbeats of this member as leader (etcd's contention detector).
    heartbeats: heartbeat::HeartbeatDetector,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error(transparent)]
    Wal(#[from] chorus_storage::wal::WalError),
    #[error(transparent)]
    Snap(#[from] chorus_storage::snap::SnapError),
    #[error("raft: apply thread is gone")]
    ApplyGone,
}

impl Node {
    pub fn new(
        cfg: NodeConfig,
        storage: RaftStorage,
        wal: Wal,
        snapshotter: Snapshotter,
        rx: Receiver<RaftInput>,
        apply_tx: Sender<ApplyTask>,
        transport: Arc<dyn Transport>,
        status: Arc<RaftStatus>,
        dropped: Arc<dyn DroppedProposals>,
        leader_tx: watch::Sender<u64>,
        backend_applied: watch::Receiver<u64>,
    ) -> Result<Node, NodeError> {
        let rcfg = raft::Config {
            id: cfg.id,
            election_tick: cfg.election_tick,
            heartbeat_tick: cfg.heartbeat_tick,
            applied: cfg.applied,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 512,
            check_quorum: true,
            pre_vote: cfg.pre_vote,
            read_only_option: raft::ReadOnlyOption::Safe,
            ..Default::default()
        };
        rcfg.validate()?;
        let mut raw = RawNode::new(&rcfg, storage, &logger::logger(cfg.id))?;
        let voters = raw.store().conf_state().voters.clone();
        if cfg.fast_first_election && voters == [cfg.id] {
            raw.campaign()?;
        }
        status
            .last_index
            .store(raw.store().hard_state().commit, Ordering::Release);
        let heartbeats = heartbeat::HeartbeatDetector::new(cfg.tick * cfg.heartbeat_tick as u32);
        Ok(Node {
            raw,
            wal,
            snapshotter,
            heartbeats,
            cfg,
            rx,
            apply_tx,
            transport,
            status,
            dropped,
            leader_tx,
            backend_applied,
        })
    }

    /// Runs until `Stop` or until every sender is gone.
    pub fn run(mut self) -> Result<(), NodeError> {
        let mut next_tick = Instant::now() + self.cfg.tick;
        let mut inputs = Vec::new();
        loop {
            // Everything that queued up while we were busy goes into this Ready.
            match self.rx.recv_all(&mut inputs, Some(next_tick)) {
                Ok(()) | Err(RecvError::Timeout) => {}
                Err(RecvError::Disconnected) => return Ok(()),
            }
            let mut stop = None;
            for input in inputs.drain(..) {
                if stop.is_some() {
                    break;
                }
                stop = self.handle(input)?;
            }
            if Instant::now() >= next_tick {
                self.raw.tick();
                next_tick += self.cfg.tick;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + self.cfg.tick;
                }
            }
            self.on_ready()?;
            if let Some(done) = stop {
                self.wal.sync()?;
                let _ = done.send(());
                return Ok(());
            }
        }
    }

    fn handle(&mut self, input: RaftInput) -> Result<Option<oneshot::Sender<()>>, NodeError> {
        match input {
            RaftInput::Propose { id, data } => {
                if self.raw.propose(Vec::new(), data).is_err() {
                    self.dropped.dropped(id);
                }
            }
            RaftInput::ProposeConfChange { id, cc } => {
                if self
                    .raw
                    .propose_conf_change(id.to_be_bytes().to_vec(), cc)
                    .is_err()
                {
                    self.dropped.dropped(id);
                }
            }
            RaftInput::Step(m) => {
                // Messages from unknown or removed peers and stale responses are dropped.
                if let Err(e) = self.raw.step(m) {
                    tracing::debug!("raft: step: {e}");
                }
            }
            RaftInput::ReadIndex { ctx } => self.raw.read_index(ctx.to_be_bytes().to_vec()),
            RaftInput::ReportUnreachable(id) => self.raw.report_unreachable(id),
            RaftInput::ReportSnapshot { to, ok } => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(to, status);
            }
            RaftInput::Snapshotted { meta } => self.snapshot_at(meta)?,
            RaftInput::TransferLeader(to) => self.raw.transfer_leader(to),
            RaftInput::TransferLeadershipAway(reply) => {
                let me = self.cfg.id;
                let target = if self.raw.raft.state == StateRole::Leader {
                    let voters = self.raw.store().conf_state().voters.clone();
                    self.raw
                        .raft
                        .prs()
                        .iter()
                        .filter(|(id, _)| **id != me && voters.contains(id))
                        .max_by_key(|(_, pr)| pr.matched)
                        .map(|(id, _)| *id)
                } else {
                    None
                };
                if let Some(to) = target {
                    self.raw.transfer_leader(to);
                }
                let _ = reply.send(target.is_some());
            }
            RaftInput::Campaign => {
                let _ = self.raw.campaign();
            }
            RaftInput::Progress(reply) => {
                let matched = if self.raw.raft.state == StateRole::Leader {
                    self.raw
                        .raft
                        .prs()
                        .iter()
                        .map(|(id, pr)| (*id, pr.matched))
                        .collect()
                } else {
                    HashMap::new()
                };
                let _ = reply.send(matched);
            }
            RaftInput::Apply(task) => {
                self.apply_tx.send(task).map_err(|_| NodeError::ApplyGone)?;
            }
            RaftInput::Stop(done) => return Ok(Some(done)),
        }
        Ok(None)
    }

    /// Saves a snapshot at an applied index whose backend state is durable, then lets the
    /// log go: the in-memory log keeps `snapshot_catchup_entries` for slow followers, the
    /// WAL drops whole segments before the snapshot.
    fn snapshot_at(&mut self, meta: SnapshotMetadata) -> Result<(), NodeError> {
        let index = meta.index;
        if index <= self.raw.store().snapshot_metadata().index {
            return Ok(());
        }
        let mut snap = Snapshot::default();
        snap.set_metadata(meta.clone());
        fail::fail_point!("raftBeforeSaveSnap");
        self.snapshotter.save(&snap)?;
        self.wal.save_snapshot(WalSnapshot {
            index,
            term: meta.term,
        })?;
        fail::fail_point!("raftAfterSaveSnap");
        let compact_to = index.saturating_sub(self.cfg.snapshot_catchup_entries);
        self.raw.mut_store().create_snapshot(meta, compact_to);
        self.wal.release_to(index)?;
        self.snapshotter.purge(self.cfg.max_snapshots)?;
        tracing::info!(index, "saved snapshot");
        Ok(())
    }

    /// Drops in-memory log entries nobody can need any more, instead of holding every entry
    /// since the last snapshot (up to `--snapshot-count`, 100,000 entries, tens of MiB) the
    /// way etcd's `MemoryStorage` does. Kept: everything not yet applied (by the backend) or persisted here,
    /// `snapshot_catchup_entries` below the applied index (what a snapshot leaves, for
    /// followers slightly behind and for this member's own term as leader later), and, on a
    /// leader, everything a follower or learner has not matched yet, so no follower is sent
    /// a snapshot because of this (a follower that is down keeps the log growing until the
    /// next snapshot, as before). Entries are dropped in runs of [`TRIM_BATCH`].
    fn trim_log(&mut self) {
        let log = &self.raw.raft.raft_log;
        // A snapshot sent to a follower is the backend as of the apply thread's index, and
        // the follower then needs the entries after it.
        let backend = *self.backend_applied.borrow();
        let first = log.first_index();
        let mut keep_from = log
            .applied
            .min(log.persisted)
            .min(backend)
            .saturating_sub(self.cfg.snapshot_catchup_entries)
            + 1;
        if self.raw.raft.state == StateRole::Leader {
            let me = self.cfg.id;
            for (id, pr) in self.raw.raft.prs().iter() {
                if *id != me {
                    keep_from = keep_from.min(pr.matched + 1);
                }
            }
        }
        if keep_from >= first + TRIM_BATCH {
            self.raw.mut_store().compact(keep_from - 1);
        }
    }

    fn send(&mut self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        self.heartbeats.check(&msgs);
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            if m.get_msg_type() == MessageType::MsgSnapshot {
                // The apply thread attaches the backend as of its applied index.
                let _ = self.apply_tx.send(ApplyTask::SendSnapshot(m));
            } else {
                out.push(m);
            }
        }
        if !out.is_empty() {
            self.transport.send(out);
        }
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(entries.len());
        for entry in entries {
            let applied = match entry.get_entry_type() {
                EntryType::EntryNormal => None,
                EntryType::EntryConfChange => {
                    let mut cc = ConfChange::default();
                    cc.merge_from_bytes(&entry.data)
                        .map_err(raft::Error::CodecError)?;
                    Some(self.raw.apply_conf_change(&cc))
                }
                EntryType::EntryConfChangeV2 => {
                    let mut cc = ConfChangeV2::default();
                    cc.merge_from_bytes(&entry.data)
                        .map_err(raft::Error::CodecError)?;
                    Some(self.raw.apply_conf_change(&cc))
                }
            };
            // Every member refuses the same change the same way (the configuration is
            // replicated state), so a refused change is a no-op everywhere.
            let (conf_state, conf_error) = match applied {
                None => (None, None),
                Some(Ok(cs)) => {
                    self.raw.mut_store().set_conf_state(cs.clone());
                    (Some(cs), None)
                }
                Some(Err(e)) => {
                    tracing::warn!(
                        index = entry.index,
                        "raft refused a configuration change: {e}"
                    );
                    (None, Some(e.to_string()))
                }
            };
            batch.push(Committed {
                entry,
                conf_state,
                conf_error,
            });
        }
        self.apply_tx
            .send(ApplyTask::Entries(batch))
            .map_err(|_| NodeError::ApplyGone)
    }

    fn on_ready(&mut self) -> Result<(), NodeError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut rd = self.raw.ready();
        if let Some(ss) = rd.ss() {
            let leader = ss.leader_id;
            let previous = self.status.leader.swap(leader, Ordering::AcqRel);
            if leader != raft::INVALID_ID && leader != previous {
                self.status.leader_changes.fetch_add(1, Ordering::AcqRel);
                self.heartbeats.reset();
            }
            if leader != previous {
                log_leader_change(self.cfg.id, previous, leader, self.raw.raft.term);
            }
            self.status
                .is_leader
                .store(ss.raft_state == StateRole::Leader, Ordering::Release);
            self.leader_tx.send_if_modified(|l| {
                let changed = *l != leader;
                *l = leader;
                changed
            });
        }
        // Before any message can tell a follower of a new commit index: a follower may apply
        // an entry and forward a lease request about it before this Ready is done, and the
        // leader answers only after it applied everything in `status.commit`.
        let committed = self.raw.raft.raft_log.committed;
        self.status.commit.store(committed, Ordering::Release);
        self.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            let meta = snap.get_metadata();
            self.snapshotter.save(&snap)?;
            self.wal.save_snapshot(WalSnapshot {
                index: meta.index,
                term: meta.term,
            })?;
            self.raw.mut_store().apply_snapshot(&snap);
            self.apply_tx
                .send(ApplyTask::InstallSnapshot(meta.clone()))
                .map_err(|_| NodeError::ApplyGone)?;
        }
        self.apply(rd.take_committed_entries())?;
        let hs = rd.hs().cloned();
        if !rd.entries().is_empty() || hs.is_some() {
            fail::fail_point!("raftBeforeSave");
            self.wal.save(hs.as_ref(), rd.entries(), rd.must_sync())?;
            fail::fail_point!("raftAfterSave");
        }
        if let Some(hs) = hs {
            self.status.term.store(hs.term, Ordering::Release);
            self.raw.mut_store().set_hard_state(hs);
        }
        self.raw.mut_store().append(rd.entries());
        if !rd.read_states().is_empty() {
            let mut reads = self.status.reads.lock();
            for rs in rd.take_read_states() {
                let Ok(ctx) = <[u8; 8]>::try_from(rs.request_ctx.as_slice()) else {
                    continue;
                };
                if let Some(tx) = reads.remove(&u64::from_be_bytes(ctx)) {
                    let _ = tx.send(rs.index);
                }
            }
        }
        self.send(rd.take_persisted_messages());
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit);
            // raft-rs reports a commit index that moved in `advance` here only, never in a
            // later Ready's hard state. It must reach the WAL before a snapshot marker at
            // that index (a marker above the WAL's commit is unusable at restart). A
            // one-member cluster commits only this way. No fsync: the next write syncs it.
            let hs = self.raw.store().hard_state().clone();
            self.wal.save(Some(&hs), &[], false)?;
            self.status.commit.store(commit, Ordering::Release);
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.trim_log();
        let last = self.raw.raft.raft_log.last_index();
        self.status.last_index.store(last, Ordering::Release);
        let commit = self.raw.raft.raft_log.committed;
        self.status.commit.store(commit, Ordering::Release);
        Ok(())
    }
}

/// etcd's raft.node lines on a change of leader (operators and tools grep them).
fn log_leader_change(id: u64, previous: u64, leader: u64, term: u64) {
    match (previous, leader) {
        (raft::INVALID_ID, new) => {
            tracing::info!(target: "raft", "raft.node: {id:x} elected leader {new:x} at term {term}")
        }
        (old, raft::INVALID_ID) => {
            tracing::info!(target: "raft", "raft.node: {id:x} lost leader {old:x} at term {term}")
        }
        (old, new) => tracing::info!(
            target: "raft",
            "raft.node: {id:x} changed leader from {old:x} to {new:x} at term {term}"
        ),
    }
}
