//! The apply loop: batches of committed entries into one backend transaction each,
//! through the appliers, then the effects published in order.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_api::internalpb::InternalRequest;
use chorus_storage::backend::{meta_keys, Backend, BackendOptions};
use chorus_storage::mvcc::KvStore;
use crossbeam_channel::Sender;
use prost::Message as _;
use raft::eraftpb::{ConfState, EntryType, SnapshotMetadata};

use super::chain::{Apply, Batch, Effects, Origin};
use super::context::ApplyContext;
use super::error::ApplyError;
use super::result::ApplyResult;
use super::{auth, compaction, core, corrupt, members, quota, timing};
use crate::error::EtcdError;
use crate::mailbox::Receiver;
use crate::raft::{ApplyTask, Committed};

/// An entry whose apply takes this long counts in `etcd_server_slow_apply_total` (etcd's
/// `warnApplyDuration`).
const SLOW_APPLY: Duration = Duration::from_millis(100);

/// Apply-side tuning from the configuration.
#[derive(Clone, Debug)]
pub struct ApplyLimits {
    /// Longest time between durable backend commits (`--backend-batch-interval`; 0: 100 ms).
    pub batch_interval: Duration,
    /// Most entries between durable commits (`--backend-batch-limit`; 0: 10,000).
    pub batch_limit: i64,
    /// Revisions deleted per compaction transaction (`--experimental-compaction-batch-limit`).
    pub compaction_batch_limit: usize,
    /// Pause between compaction transactions (`--compaction-sleep-interval`; 10 ms).
    pub compaction_sleep_interval: Duration,
    /// Requests applying slower than this are logged (`--experimental-warning-apply-duration`).
    pub warning_apply_duration: Duration,
    /// Entries between raft snapshots (`--snapshot-count`).
    pub snapshot_count: u64,
    pub snap_dir: PathBuf,
    pub backend_opts: BackendOptions,
}

/// Where the backend stands, and where the last snapshot was taken.
pub struct Position {
    /// Highest entry index whose effects are in the backend.
    pub consistent_index: u64,
    pub term: u64,
    pub conf_state: ConfState,
    /// Index of the last snapshot taken (or installed).
    pub snapshot_index: u64,
}

pub struct Applier {
    pub(super) ctx: ApplyContext,
    pub(super) chain: Box<dyn Apply>,
    pub(super) rx: Receiver<ApplyTask>,
    pub(super) backend: Arc<Backend>,
    pub(super) kv: Arc<KvStore>,
    pub(super) at: Position,
    pub(super) limits: ApplyLimits,
    pub(super) last_durable: Instant,
    /// Entries applied since the last durable commit.
    pub(super) since_durable: u64,
    pub(super) compactor: Sender<i64>,
    /// The backend transaction batches are being applied into (committed every batch
    /// interval; see `commit`).
    pub(super) tx: Option<redb::WriteTransaction>,
    /// The v2 store changed since it was last saved.
    pub(super) v2_dirty: bool,
}

impl Applier {
    pub fn new(
        ctx: ApplyContext,
        rx: Receiver<ApplyTask>,
        backend: Arc<Backend>,
        snapshot: SnapshotMetadata,
        mut limits: ApplyLimits,
    ) -> Result<Applier, ApplyError> {
        if limits.batch_interval.is_zero() {
            limits.batch_interval = Duration::from_millis(100);
        }
        if limits.batch_limit <= 0 {
            limits.batch_limit = 10_000;
        }
        let at = Position {
            consistent_index: chorus_storage::backend::consistent_index(&backend)?,
            term: applied_term(&backend)?.unwrap_or(snapshot.term),
            conf_state: snapshot.get_conf_state().clone(),
            snapshot_index: snapshot.index,
        };
        let compactor = compaction::spawn_compactor(
            ctx.kv.clone(),
            limits.compaction_batch_limit.max(1),
            limits.compaction_sleep_interval,
            ctx.progress.compacted.clone(),
        );
        // The layers, outermost first (chain.rs).
        let core = core::Core {
            lessor: ctx.lessor.clone(),
            cluster: ctx.cluster.clone(),
            alarms: ctx.alarms.clone(),
            v2: ctx.v2.clone(),
        };
        let guarded = auth::Guarded::new(ctx.auth.clone(), ctx.lessor.clone(), core);
        let capped = quota::Capped::new(ctx.alarms.clone(), guarded);
        let chain = Box::new(corrupt::Corrupt::new(ctx.alarms.clone(), capped));
        Ok(Applier {
            kv: ctx.kv.get(),
            ctx,
            chain,
            rx,
            backend,
            at,
            limits,
            last_durable: Instant::now(),
            since_durable: 0,
            compactor,
            tx: None,
            v2_dirty: false,
        })
    }

    /// Finishes a compaction that was interrupted by a stop.
    pub fn resume_compaction(&self, rev: i64) {
        let _ = self.compactor.send(rev);
    }

    pub fn run(mut self) {
        let mut tasks = Vec::new();
        loop {
            match self.rx.recv_all(&mut tasks, self.commit_deadline()) {
                Ok(()) => {}
                Err(crate::mailbox::RecvError::Timeout) => {
                    self.must(|a| a.commit());
                    continue;
                }
                Err(crate::mailbox::RecvError::Disconnected) => break,
            }
            // Everything already queued is applied together: one backend commit for all
            // consecutive entries, other tasks in their place in the order.
            let mut entries = Vec::new();
            for task in tasks.drain(..) {
                match task {
                    ApplyTask::Entries(more) => entries.extend(more),
                    other => {
                        let batch = std::mem::take(&mut entries);
                        self.must(|a| a.apply_entries(batch));
                        self.must(|a| a.handle_other(other));
                    }
                }
            }
            self.must(|a| a.apply_entries(entries));
        }
        // Stopping: leave the backend with everything applied.
        self.must(|a| a.commit());
        // Nothing will answer the proposals still waiting (raft stopped, on a signal or
        // a failed WAL write): they fail now with etcd's "server stopped" instead of at
        // their request timeout or when the connection is closed.
        self.ctx.waiters.cancel_all();
    }

    /// The state machine cannot skip an entry: on failure stop the process like etcd.
    fn must(&mut self, step: impl FnOnce(&mut Self) -> Result<(), ApplyError>) {
        if let Err(e) = step(self) {
            // Apply writes nowhere else: name the file, as the WAL's errors do.
            let file = self.backend.path().display();
            tracing::error!("apply failed on {file}: {e}");
            eprintln!("chorus: apply failed on {file}: {e}");
            std::process::exit(1);
        }
    }

    pub(super) fn apply_entries(&mut self, entries: Vec<Committed>) -> Result<(), ApplyError> {
        let Some(last) = entries.last().map(|c| (c.entry.index, c.entry.term)) else {
            return Ok(());
        };
        // Batches keep writing into one backend transaction until it is due to commit.
        let tx = match self.tx.take() {
            Some(tx) => tx,
            None => self.backend.begin_write()?,
        };
        let mut effects = Effects::default();
        let mut results: Vec<(u64, ApplyResult)> = Vec::new();
        let (rev, events, chunk) = {
            let kv = self.kv.clone();
            let mut writes = kv.write(&tx)?;
            let mut batch = Batch {
                tx: &tx,
                kv: &mut writes,
                effects: &mut effects,
            };
            for c in &entries {
                if c.entry.index > self.at.consistent_index {
                    let started = Instant::now();
                    self.apply_entry(&mut batch, c, &mut results)?;
                    if started.elapsed() >= SLOW_APPLY {
                        chorus_metrics::SLOW_APPLY.inc();
                    }
                }
            }
            writes.finish()
        };
        self.record_position(&tx, last)?;
        self.since_durable += entries.len() as u64;
        self.v2_dirty |= effects.v2_changed;
        self.tx = Some(tx);
        // Readers see the batch at once (pending records); the backend commits (with
        // fsync) every batch interval or batch limit, or when something reads it back.
        self.kv.publish(rev, chunk);
        let due = self.last_durable.elapsed() >= self.limits.batch_interval
            || self.since_durable >= self.limits.batch_limit as u64;
        if due
            || effects.cluster.is_some()
            || effects.auth_changed
            || !effects.compactions.is_empty()
        {
            self.commit()?;
        }
        self.ctx.watch_hub.notify(rev, &events);
        self.publish_effects(effects);
        for (id, result) in results {
            self.ctx.waiters.trigger(id, result);
        }
        self.ctx
            .progress
            .applied
            .send_replace(self.at.consistent_index);
        self.maybe_snapshot()
    }

    /// Applies one committed entry into the batch; its result goes to `results` if a
    /// proposer waits for it.
    fn apply_entry(
        &mut self,
        batch: &mut Batch<'_, '_, '_>,
        c: &Committed,
        results: &mut Vec<(u64, ApplyResult)>,
    ) -> Result<(), ApplyError> {
        let e = &c.entry;
        if let Some(cs) = &c.conf_state {
            self.at.conf_state = cs.clone();
        }
        match e.get_entry_type() {
            EntryType::EntryNormal if e.data.is_empty() => {}
            EntryType::EntryNormal => {
                let req =
                    InternalRequest::decode(&e.data[..]).map_err(|source| ApplyError::Decode {
                        index: e.index,
                        source,
                    })?;
                let header = req.header.unwrap_or_default();
                let Some(request) = req.request else {
                    return Ok(());
                };
                let origin = Origin {
                    index: e.index,
                    header: &header,
                };
                let id = header.id;
                let result = self.apply_request(batch, &origin, request)?;
                if id != 0 {
                    results.push((id, result));
                }
            }
            EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                let cluster = &self.ctx.cluster;
                let done = members::apply_conf_change(
                    batch,
                    cluster,
                    &self.ctx.v2,
                    self.ctx.member_id,
                    c,
                )?;
                if done.id != 0 {
                    results.push((done.id, done.result));
                }
            }
        }
        Ok(())
    }

    /// One request through the appliers, timed into `etcd_server_apply_duration_seconds`
    /// and against `--experimental-warning-apply-duration`.
    fn apply_request(
        &mut self,
        batch: &mut Batch<'_, '_, '_>,
        origin: &Origin<'_>,
        request: chorus_api::internalpb::internal_request::Request,
    ) -> Result<ApplyResult, ApplyError> {
        let started = Instant::now();
        let kind = super::chain::request_kind(&request);
        let op = timing::op(&request);
        let result = self.chain.apply(batch, origin, request)?;
        let took = started.elapsed();
        timing::record(op, &result, took);
        if took > self.limits.warning_apply_duration {
            tracing::warn!(
                took = %chorus_log::GoDuration(took),
                expected_duration = %chorus_log::GoDuration(self.limits.warning_apply_duration),
                prefix = "",
                request = kind,
                response = "",
                error = result.as_ref().err().map(tracing::field::display),
                "apply request took too long"
            );
        }
        match &result {
            // A backend failure inside apply cannot be skipped.
            Err(EtcdError::Internal(msg)) => return Err(ApplyError::Request(msg.clone())),
            Err(EtcdError::Auth(e @ chorus_auth::AuthError::Backend(_))) => {
                return Err(ApplyError::Request(e.to_string()))
            }
            _ => {}
        }
        Ok(result)
    }

    /// Records the consistent index and term of the batch's last entry in its
    /// transaction.
    fn record_position(
        &mut self,
        tx: &redb::WriteTransaction,
        (index, term): (u64, u64),
    ) -> Result<(), ApplyError> {
        if index > self.at.consistent_index {
            self.at.consistent_index = index;
            self.at.term = term;
        }
        let mut meta = tx.open_table(chorus_storage::backend::META)?;
        chorus_storage::backend::put_meta_u64(
            &mut meta,
            meta_keys::CONSISTENT_INDEX,
            self.at.consistent_index,
        )?;
        chorus_storage::backend::put_meta_u64(&mut meta, meta_keys::TERM, self.at.term)?;
        Ok(())
    }

    /// Acts on what a committed batch changed: membership (peers, the shared cluster),
    /// this member's removal, compactions to run.
    fn publish_effects(&mut self, effects: Effects) {
        if let Some(cluster) = effects.cluster {
            let old = self.ctx.cluster.get();
            for m in cluster.members.values() {
                if m.id != self.ctx.member_id {
                    self.ctx.peers.add_peer(m.id, &m.peer_urls);
                }
            }
            for id in old.members.keys() {
                if !cluster.members.contains_key(id) {
                    self.ctx.peers.remove_peer(*id);
                }
            }
            self.ctx.cluster.set(cluster);
        }
        if effects.removed_self {
            // etcd stops a member once it applies its own removal.
            self.ctx.progress.removed.send_replace(true);
        }
        for rev in effects.compactions {
            let _ = self.compactor.send(rev);
        }
    }
}

fn applied_term(backend: &Backend) -> Result<Option<u64>, ApplyError> {
    let tx = backend.begin_read()?;
    let meta = tx.open_table(chorus_storage::backend::META)?;
    Ok(chorus_storage::backend::get_meta_u64(
        &meta,
        meta_keys::TERM,
    )?)
}
