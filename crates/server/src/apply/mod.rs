//! The apply thread: turns committed raft entries into state, in log order.
//!
//! ```text
//!   ApplyTask::Entries ─► one redb write txn for the whole batch
//!                          entry <= consistent index: already in the backend, skipped
//!                          InternalRequest ─► kv / compaction / members
//!                          consistent index + term recorded in the same txn
//!                         commit (fsync only every batch interval) ─► publish revision
//!                         ─► wake the proposers ─► applied index ─► maybe snapshot
//!   ApplyTask::SendSnapshot   leader: the backend as of the applied index goes to a peer
//!   ApplyTask::InstallSnapshot follower: switch to the backend received from the leader
//! ```

pub mod kv;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mailbox::Receiver;
use chorus_api::etcdserverpb::{
    alarm_request::AlarmAction, AlarmMember, AlarmRequest, AlarmResponse, AlarmType,
    CompactionResponse, DeleteRangeResponse, LeaseCheckpointResponse, LeaseGrantResponse,
    LeaseRevokeResponse, PutResponse, ResponseHeader, TxnResponse,
};
use chorus_api::internalpb::{internal_request::Request, InternalRequest};
use chorus_storage::backend::{self, meta_keys, Backend, BackendOptions};
use chorus_storage::mvcc::KvStore;
use chorus_storage::mvcc::RangeEnd;
use crossbeam_channel::Sender;
use prost::Message as _;
use raft::eraftpb::{ConfState, EntryType, SnapshotMetadata};

use crate::alarm::{Alarms, QuotaCost};
use crate::error::EtcdError;
use crate::lease::GrantError;
use crate::membership::{self, Cluster};
use crate::raft::{ApplyTask, Committed, RaftInput};
use crate::server::{snapshot_db_path, Server};
use crate::transport::PeerTransport;

/// The result of applying one request, handed to the member that proposed it.
#[derive(Debug)]
pub enum Applied {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    Alarm(AlarmResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    LeaseCheckpoint(LeaseCheckpointResponse),
    /// A v2 request's result (`None` for the expiry sync).
    V2(Result<Option<crate::v2::Event>, crate::v2::V2Error>),
    /// The members after a membership change.
    Members(Vec<chorus_api::internalpb::Member>),
    /// Requests with no response body (member attributes).
    Done,
}

pub type ApplyResult = Result<Applied, EtcdError>;

/// Apply-side tuning from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct ApplyLimits {
    /// Longest time between durable backend commits (`--backend-batch-interval`; 0: 100 ms).
    pub batch_interval: Duration,
    /// Most entries between durable commits (`--backend-batch-limit`; 0: 10,000).
    pub batch_limit: i64,
    /// Revisions deleted per compaction transaction (`--experimental-compaction-batch-limit`).
    pub compaction_batch_limit: usize,
    /// Requests applying slower than this are logged (`--experimental-warning-apply-duration`).
    pub warning_apply_duration: Duration,
}

pub struct Applier {
    server: Arc<Server>,
    rx: Receiver<ApplyTask>,
    backend: Arc<Backend>,
    kv: Arc<KvStore>,
    /// Highest entry index whose effects are in the backend.
    consistent_index: u64,
    applied_term: u64,
    conf_state: ConfState,
    /// Index of the last snapshot taken (or installed).
    snapshot_index: u64,
    snapshot_count: u64,
    snap_dir: PathBuf,
    backend_opts: BackendOptions,
    transport: Arc<PeerTransport>,
    limits: ApplyLimits,
    last_durable: Instant,
    /// Entries applied since the last durable commit.
    since_durable: u64,
    compactor: Sender<(Arc<KvStore>, i64)>,
    alarms: Alarms,
    /// The backend transaction batches are being applied into (committed every batch
    /// interval; see `commit`).
    tx: Option<redb::WriteTransaction>,
    /// The v2 store changed since it was last saved.
    v2_dirty: bool,
}

impl Applier {
    pub fn new(
        server: Arc<Server>,
        rx: Receiver<ApplyTask>,
        backend: Arc<Backend>,
        kv: Arc<KvStore>,
        consistent_index: u64,
        snapshot: SnapshotMetadata,
        snapshot_count: u64,
        snap_dir: PathBuf,
        backend_opts: BackendOptions,
        transport: Arc<PeerTransport>,
        limits: ApplyLimits,
        alarms: Alarms,
    ) -> Result<Applier, backend::BackendError> {
        let mut limits = limits;
        if limits.batch_interval.is_zero() {
            limits.batch_interval = Duration::from_millis(100);
        }
        if limits.batch_limit <= 0 {
            limits.batch_limit = 10_000;
        }
        let chunk = limits.compaction_batch_limit.max(1);
        let applied_term = {
            let tx = backend.begin_read()?;
            let meta = tx.open_table(backend::META)?;
            backend::get_meta_u64(&meta, meta_keys::TERM)?.unwrap_or(snapshot.term)
        };
        let (compactor, jobs) = crossbeam_channel::unbounded::<(Arc<KvStore>, i64)>();
        let done = server.compacted.clone();
        std::thread::Builder::new()
            .name("compactor".into())
            .spawn(move || {
                for (kv, rev) in jobs {
                    match kv.compact(rev, chunk) {
                        Ok(n) => tracing::info!(revision = rev, deleted = n, "finished compaction"),
                        Err(e) => tracing::error!(revision = rev, "compaction failed: {e}"),
                    }
                    done.send_replace(rev);
                }
            })
            .expect("spawn compactor thread");
        Ok(Applier {
            server,
            rx,
            backend,
            kv,
            consistent_index,
            applied_term,
            conf_state: snapshot.get_conf_state().clone(),
            snapshot_index: snapshot.index,
            snapshot_count,
            snap_dir,
            backend_opts,
            transport,
            limits,
            last_durable: Instant::now(),
            since_durable: 0,
            compactor,
            alarms,
            tx: None,
            v2_dirty: false,
        })
    }

    /// Finishes a compaction that was interrupted by a stop.
    pub fn resume_compaction(&self, rev: i64) {
        let _ = self.compactor.send((self.kv.clone(), rev));
    }

    pub fn run(mut self) {
        let mut tasks = Vec::new();
        loop {
            match self.rx.recv_all(&mut tasks, self.commit_deadline()) {
                Ok(()) => {}
                Err(crate::mailbox::RecvError::Timeout) => {
                    if let Err(e) = self.commit() {
                        self.fail(e);
                    }
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
                        if let Err(e) = self.apply_entries(std::mem::take(&mut entries)) {
                            self.fail(e);
                        }
                        self.handle_other(other);
                    }
                }
            }
            if let Err(e) = self.apply_entries(entries) {
                self.fail(e);
            }
        }
        // Stopping: leave the backend with everything applied.
        if let Err(e) = self.commit() {
            self.fail(e);
        }
    }

    fn fail(&self, e: String) -> ! {
        // The state machine cannot skip an entry: stop the process like etcd does.
        tracing::error!("apply failed: {e}");
        eprintln!("chorus: apply failed: {e}");
        std::process::exit(1);
    }

    fn handle_other(&mut self, task: ApplyTask) {
        // Snapshots read or replace the backend: it must hold everything applied.
        if let Err(e) = self.commit() {
            self.fail(e);
        }
        let result = match task {
            ApplyTask::Entries(entries) => self.apply_entries(entries),
            ApplyTask::SendSnapshot(msg) => self.send_snapshot(msg),
            ApplyTask::InstallSnapshot(meta) => self.install_snapshot(meta),
            ApplyTask::ReadBackend(reply) => {
                let _ = reply.send(self.backend.begin_read().map_err(|e| e.to_string()));
                Ok(())
            }
            ApplyTask::Defragment(reply) => {
                // A failed defragment leaves the old file in place: the caller hears why.
                let _ = reply.send(self.defragment());
                Ok(())
            }
        };
        if let Err(e) = result {
            self.fail(e);
        }
    }

    fn apply_entries(&mut self, entries: Vec<Committed>) -> Result<(), String> {
        if entries.is_empty() {
            return Ok(());
        }
        let last = entries.last().map(|c| (c.entry.index, c.entry.term));
        // Batches keep writing into one backend transaction until it is due to commit.
        let tx = match self.tx.take() {
            Some(tx) => tx,
            None => self.backend.begin_write().map_err(|e| e.to_string())?,
        };
        let mut results: Vec<(u64, ApplyResult)> = Vec::new();
        let mut compactions = Vec::new();
        // The membership as this batch changes it (cloned on the first change).
        let mut cluster: Option<Cluster> = None;
        let mut removed_self = false;
        let mut alarms_changed = false;
        let mut v2_changed = false;
        let (rev, events, chunk) = {
            let mut batch = self.kv.write(&tx).map_err(|e| e.to_string())?;
            for c in &entries {
                let e = &c.entry;
                if e.index <= self.consistent_index {
                    continue;
                }
                if let Some(cs) = &c.conf_state {
                    self.conf_state = cs.clone();
                }
                match e.get_entry_type() {
                    EntryType::EntryNormal if e.data.is_empty() => {}
                    EntryType::EntryNormal => {
                        let req = InternalRequest::decode(&e.data[..])
                            .map_err(|err| format!("entry {}: {err}", e.index))?;
                        let id = req.header.as_ref().map_or(0, |h| h.id);
                        let Some(request) = req.request else {
                            continue;
                        };
                        let started = Instant::now();
                        let kind = request_kind(&request);
                        // While NOSPACE is active, writes that add data are refused.
                        let capped = self.alarms.is_active(AlarmType::Nospace);
                        let mut lessor = self.server.lessor.lock();
                        let mut moved: kv::LeaseChanges = Vec::new();
                        let result = match request {
                            Request::Put(_) if capped => Err(EtcdError::NoSpace),
                            Request::Txn(r) if capped && r.cost() > 0 => Err(EtcdError::NoSpace),
                            Request::LeaseGrant(_) if capped => Err(EtcdError::NoSpace),
                            Request::Put(p) => {
                                let mut t = batch.txn();
                                kv::put(&mut t, &p, &*lessor, &mut moved).map(Applied::Put)
                            }
                            Request::DeleteRange(d) => {
                                let mut t = batch.txn();
                                kv::delete_range(&mut t, &d, &mut moved).map(Applied::DeleteRange)
                            }
                            Request::Txn(r) => {
                                let mut t = batch.txn();
                                kv::txn(&mut t, &r, &*lessor, &mut moved).map(Applied::Txn)
                            }
                            Request::LeaseGrant(g) => match lessor.grant(&tx, g.id, g.ttl) {
                                Ok(ttl) => Ok(Applied::LeaseGrant(LeaseGrantResponse {
                                    header: Some(ResponseHeader {
                                        revision: batch.rev(),
                                        ..Default::default()
                                    }),
                                    id: g.id,
                                    ttl,
                                    error: String::new(),
                                })),
                                Err(GrantError::Etcd(e)) => Err(e),
                                Err(GrantError::Backend(e)) => return Err(e.to_string()),
                            },
                            Request::LeaseRevoke(r) => match lessor.keys(r.id) {
                                None => Err(EtcdError::LeaseNotFound),
                                Some(keys) => {
                                    // Every attached key goes in one revision.
                                    let mut t = batch.txn();
                                    for k in &keys {
                                        t.delete_range(k, RangeEnd::Single)
                                            .map_err(|e| e.to_string())?;
                                    }
                                    let rev = t.rev();
                                    lessor.remove(&tx, r.id).map_err(|e| e.to_string())?;
                                    Ok(Applied::LeaseRevoke(LeaseRevokeResponse {
                                        header: Some(ResponseHeader {
                                            revision: rev,
                                            ..Default::default()
                                        }),
                                    }))
                                }
                            },
                            Request::LeaseCheckpoint(c) => {
                                for cp in &c.checkpoints {
                                    lessor
                                        .checkpoint(&tx, cp.id, cp.remaining_ttl)
                                        .map_err(|e| e.to_string())?;
                                }
                                Ok(Applied::LeaseCheckpoint(LeaseCheckpointResponse {
                                    header: Some(ResponseHeader {
                                        revision: batch.rev(),
                                        ..Default::default()
                                    }),
                                }))
                            }
                            Request::Compaction(c) => {
                                let cur = batch.rev();
                                match self.kv.schedule_compaction(&tx, c.revision, cur) {
                                    Ok(()) => {
                                        compactions.push(c.revision);
                                        Ok(Applied::Compaction(CompactionResponse {
                                            header: Some(ResponseHeader {
                                                revision: cur,
                                                ..Default::default()
                                            }),
                                        }))
                                    }
                                    Err(err) => Err(err.into()),
                                }
                            }
                            Request::MemberAttributes(a) => {
                                let members = cluster
                                    .get_or_insert_with(|| self.server.cluster.read().clone());
                                if let Some(m) = members.members.get_mut(&a.member_id) {
                                    m.name = a.name;
                                    m.client_urls = a.client_urls;
                                    membership::save_member(&tx, m).map_err(|e| e.to_string())?;
                                }
                                Ok(Applied::Done)
                            }
                            Request::MemberPeerUrls(u) => {
                                let members = cluster
                                    .get_or_insert_with(|| self.server.cluster.read().clone());
                                membership::update_peer_urls(&tx, members, u)
                                    .map_err(|e| e.to_string())?
                            }
                            Request::V2(r) => {
                                v2_changed = true;
                                Ok(Applied::V2(crate::v2::apply(
                                    &mut self.server.v2_store().write(),
                                    &r,
                                )))
                            }
                            Request::Alarm(ar) => {
                                let (resp, changed) =
                                    apply_alarm(&mut self.alarms, &tx, ar, batch.rev())
                                        .map_err(|e| e.to_string())?;
                                alarms_changed |= changed;
                                Ok(Applied::Alarm(resp))
                            }
                        };
                        for (key, lease) in moved {
                            lessor.attach(&key, lease);
                        }
                        drop(lessor);
                        let took = started.elapsed();
                        if took > self.limits.warning_apply_duration {
                            tracing::warn!(
                                request = kind,
                                took = ?took,
                                expected = ?self.limits.warning_apply_duration,
                                "apply request took too long"
                            );
                        }
                        if let Err(EtcdError::Internal(msg)) = &result {
                            // A backend failure inside apply cannot be skipped.
                            return Err(msg.clone());
                        }
                        if id != 0 {
                            results.push((id, result));
                        }
                    }
                    EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                        let members =
                            cluster.get_or_insert_with(|| self.server.cluster.read().clone());
                        let done = membership::apply_conf_change(&tx, members, c)
                            .map_err(|e| e.to_string())?;
                        removed_self |= done.removed == Some(self.server.id);
                        if done.id != 0 {
                            results.push((done.id, done.result));
                        }
                    }
                }
            }
            batch.finish()
        };
        let (index, term) = last.expect("non-empty batch");
        if index > self.consistent_index {
            self.consistent_index = index;
            self.applied_term = term;
        }
        {
            let mut meta = tx.open_table(backend::META).map_err(|e| e.to_string())?;
            backend::put_meta_u64(
                &mut meta,
                meta_keys::CONSISTENT_INDEX,
                self.consistent_index,
            )
            .map_err(|e| e.to_string())?;
            backend::put_meta_u64(&mut meta, meta_keys::TERM, self.applied_term)
                .map_err(|e| e.to_string())?;
        }
        self.since_durable += entries.len() as u64;
        self.v2_dirty |= v2_changed;
        self.tx = Some(tx);
        // Readers see the batch at once (pending records); the backend commits (with
        // fsync) every batch interval or batch limit, or when something reads it back.
        self.kv.publish(rev, chunk);
        let due = self.last_durable.elapsed() >= self.limits.batch_interval
            || self.since_durable >= self.limits.batch_limit as u64;
        if due || cluster.is_some() || !compactions.is_empty() {
            self.commit()?;
        }
        self.server.watch_hub().notify(rev, &events);
        if let Some(cluster) = cluster {
            let old = self.server.cluster.read().clone();
            for m in cluster.members.values() {
                if m.id != self.server.id {
                    self.transport.add_peer(m.id, &m.peer_urls);
                }
            }
            for id in old.members.keys() {
                if !cluster.members.contains_key(id) {
                    self.transport.remove_peer(*id);
                }
            }
            self.server.set_cluster(cluster);
        }
        if removed_self {
            // etcd stops a member once it applies its own removal.
            self.server.removed();
        }
        if alarms_changed {
            *self.server.alarms.write() = self.alarms.clone();
        }
        for rev in compactions {
            let _ = self.compactor.send((self.kv.clone(), rev));
        }
        for (id, result) in results {
            self.server.waiters.trigger(id, result);
        }
        self.server.applied.send_replace(self.consistent_index);
        self.maybe_snapshot()
    }

    /// Commits the open backend transaction durably, if there is one.
    fn commit(&mut self) -> Result<(), String> {
        let Some(mut tx) = self.tx.take() else {
            return Ok(());
        };
        if std::mem::take(&mut self.v2_dirty) {
            // The v2 store lives in memory; it is saved with the consistent index it
            // reflects, so a restart resumes it exactly where the backend stands.
            let blob = self.server.v2_store().read().save();
            let mut meta = tx.open_table(backend::META).map_err(|e| e.to_string())?;
            meta.insert(crate::v2::persist::META_V2_STORE, blob.as_slice())
                .map_err(|e| e.to_string())?;
        }
        tx.set_durability(redb::Durability::Immediate)
            .map_err(|e| e.to_string())?;
        fail::fail_point!("backendBeforeCommit");
        tx.commit().map_err(|e| e.to_string())?;
        fail::fail_point!("backendAfterCommit");
        self.kv.committed();
        self.backend.refresh_size();
        self.last_durable = Instant::now();
        self.since_durable = 0;
        Ok(())
    }

    /// When the open transaction must commit even if no batch arrives.
    fn commit_deadline(&self) -> Option<std::time::Instant> {
        self.tx
            .as_ref()
            .map(|_| self.last_durable + self.limits.batch_interval)
    }

    /// Every `snapshot_count` entries: make the backend durable at the applied index and
    /// let raft snapshot its log there.
    fn maybe_snapshot(&mut self) -> Result<(), String> {
        if self.consistent_index < self.snapshot_index + self.snapshot_count {
            return Ok(());
        }
        // Every commit is durable, so after this the backend holds the snapshot's state.
        self.commit()?;
        self.snapshot_index = self.consistent_index;
        let meta = self.applied_snapshot_meta();
        let _ = self.server.raft_tx.send(RaftInput::Snapshotted { meta });
        Ok(())
    }

    /// Snapshot metadata describing the backend as it is now (everything applied).
    fn applied_snapshot_meta(&self) -> SnapshotMetadata {
        SnapshotMetadata {
            index: self.consistent_index,
            term: self.applied_term,
            conf_state: Some(self.conf_state.clone()).into(),
            ..Default::default()
        }
    }

    /// The leader sends the backend as of the applied index (etcd's merged snapshot).
    fn send_snapshot(&mut self, mut msg: raft::eraftpb::Message) -> Result<(), String> {
        msg.mut_snapshot()
            .set_metadata(self.applied_snapshot_meta());
        let tx = self.backend.begin_read().map_err(|e| e.to_string())?;
        self.transport.send_snapshot(msg, tx);
        Ok(())
    }

    /// A follower switches to the backend file received with the leader's snapshot.
    fn install_snapshot(&mut self, meta: SnapshotMetadata) -> Result<(), String> {
        if meta.index <= self.consistent_index {
            return Ok(());
        }
        let received = snapshot_db_path(&self.snap_dir, meta.index);
        fail::fail_point!("applyBeforeInstallSnapshot");
        self.switch_backend(&received, false)?;
        self.consistent_index = meta.index;
        self.applied_term = meta.term;
        self.conf_state = meta.get_conf_state().clone();
        self.snapshot_index = meta.index;
        self.last_durable = Instant::now();
        self.server.applied.send_replace(meta.index);
        tracing::info!(index = meta.index, "installed snapshot from the leader");
        Ok(())
    }

    /// Copies the backend into a new file (which holds no free pages) and switches to it.
    /// Everything applied is committed first; applying waits meanwhile, as in etcd.
    fn defragment(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let before = self.backend.refresh_size();
        let tmp = self.snap_dir.join("defrag.db.tmp");
        let source = self.backend.clone();
        let (chunks, rx) = std::sync::mpsc::sync_channel(8);
        let dumper = std::thread::spawn(move || -> Result<(), String> {
            let tx = source.begin_read().map_err(|e| e.to_string())?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, ChunkSender(chunks));
            Backend::dump(&tx, &mut out).map_err(|e| e.to_string())?;
            std::io::Write::flush(&mut out).map_err(|e| e.to_string())
        });
        let mut reader = ChunkReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        };
        let restored = Backend::restore(&mut reader, &tmp, &self.backend_opts);
        drop(reader);
        let dumped = dumper
            .join()
            .map_err(|_| "defragment: the copying thread panicked".to_string())?;
        let copy = restored.map_err(|e| format!("defragment: {e}"))?;
        dumped.map_err(|e| format!("defragment: {e}"))?;
        drop(copy);
        self.switch_backend(&tmp, true)?;
        let after = self.backend.refresh_size();
        tracing::info!(
            before,
            after,
            took = ?started.elapsed(),
            "defragmented the backend"
        );
        Ok(())
    }

    /// Replaces the backend file with `file` (same filesystem) and reopens the key index
    /// on it. Unless `same_content` (a defragmented copy), every piece of state derived
    /// from the backend is reloaded too: leases, members, alarms, the v2 store, watchers.
    fn switch_backend(&mut self, file: &Path, same_content: bool) -> Result<(), String> {
        let db = self.backend.path().to_owned();
        std::fs::rename(file, &db)
            .map_err(|e| format!("switch backend to {}: {e}", file.display()))?;
        if !same_content {
            // A snapshot install: the leader's database is in place, nothing opened yet.
            fail::fail_point!("applyAfterInstallSnapshot");
        }
        for dir in [Some(self.snap_dir.as_path()), db.parent()]
            .into_iter()
            .flatten()
        {
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        let backend = Arc::new(Backend::open(&db, &self.backend_opts).map_err(|e| e.to_string())?);
        let (kv, restored) = KvStore::open(backend.clone()).map_err(|e| e.to_string())?;
        let kv = Arc::new(kv);
        self.backend = backend;
        self.kv = kv.clone();
        let rev = kv.current_rev();
        self.server.set_kv(kv);
        if same_content {
            return Ok(());
        }
        self.server
            .reload_lessor(&self.backend, &restored.key_leases)
            .map_err(|e| e.to_string())?;
        self.server.watch_hub().restore(rev);
        let cluster =
            Cluster::load(&self.backend, self.server.cluster_id).map_err(|e| e.to_string())?;
        self.alarms = Alarms::load(&self.backend).map_err(|e| e.to_string())?;
        *self.server.alarms.write() = self.alarms.clone();
        crate::v2::persist::load_into(&self.backend, &mut self.server.v2_store().write())
            .map_err(|e| e.to_string())?;
        for m in cluster.members.values() {
            if m.id != self.server.id {
                self.transport.add_peer(m.id, &m.peer_urls);
            }
        }
        self.server.set_cluster(cluster);
        Ok(())
    }
}

/// The writing half of an in-process pipe (defragment copies between two threads).
struct ChunkSender(std::sync::mpsc::SyncSender<Vec<u8>>);

impl std::io::Write for ChunkSender {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(b.to_vec())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The reading half: end of file when the writer is gone.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => (self.chunk, self.at) = (chunk, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn apply_alarm(
    alarms_store: &mut Alarms,
    tx: &redb::WriteTransaction,
    ar: AlarmRequest,
    rev: i64,
) -> Result<(AlarmResponse, bool), backend::BackendError> {
    let m = AlarmMember {
        member_id: ar.member_id,
        alarm: ar.alarm,
    };
    let (alarms, changed) = match AlarmAction::try_from(ar.action) {
        Ok(AlarmAction::Get) => (alarms_store.get(ar.alarm), false),
        Ok(AlarmAction::Activate) if ar.alarm != AlarmType::None as i32 => {
            let m = alarms_store.activate(tx, m)?;
            tracing::warn!(member = %format!("{:x}", m.member_id), alarm = m.alarm, "alarm raised");
            (vec![m], true)
        }
        Ok(AlarmAction::Deactivate) => match alarms_store.deactivate(tx, m)? {
            Some(m) => {
                tracing::warn!(member = %format!("{:x}", m.member_id), alarm = m.alarm, "alarm disarmed");
                (vec![m], true)
            }
            None => (Vec::new(), false),
        },
        _ => (Vec::new(), false),
    };
    let resp = AlarmResponse {
        header: Some(ResponseHeader {
            revision: rev,
            ..Default::default()
        }),
        alarms,
    };
    Ok((resp, changed))
}

fn request_kind(r: &Request) -> &'static str {
    match r {
        Request::Put(_) => "put",
        Request::DeleteRange(_) => "delete_range",
        Request::Txn(_) => "txn",
        Request::Compaction(_) => "compaction",
        Request::LeaseGrant(_) => "lease_grant",
        Request::LeaseRevoke(_) => "lease_revoke",
        Request::LeaseCheckpoint(_) => "lease_checkpoint",
        Request::Alarm(_) => "alarm",
        Request::MemberAttributes(_) => "member_attributes",
        Request::MemberPeerUrls(_) => "member_peer_urls",
        Request::V2(_) => "v2",
    }
}
