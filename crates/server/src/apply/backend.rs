//! The apply thread's work on the backend file itself: durable commits, snapshots for
//! raft (taken, sent to a follower, installed from the leader) and defragmentation, and
//! the background compactor.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chorus_storage::backend::{self, Backend};
use chorus_storage::mvcc::KvStore;
use raft::eraftpb::SnapshotMetadata;

use super::applier::Applier;
use super::error::ApplyError;
use crate::membership::Cluster;
use crate::raft::{ApplyTask, BackendCopy, RaftInput, Switched};

impl Applier {
    pub(super) fn handle_other(&mut self, task: ApplyTask) -> Result<(), ApplyError> {
        // Snapshots read or replace the backend: it must hold everything applied.
        self.commit()?;
        match task {
            ApplyTask::Entries(entries) => self.apply_entries(entries),
            ApplyTask::SendSnapshot(msg) => self.send_snapshot(msg),
            ApplyTask::InstallSnapshot(meta) => self.install_snapshot(meta),
            ApplyTask::ReadBackend(reply) => {
                let _ = reply.send(self.backend.begin_read());
                Ok(())
            }
            ApplyTask::DefragmentCopy(reply) => {
                self.start_copy(reply);
                Ok(())
            }
            ApplyTask::DefragmentSwitch(copy, reply) => {
                // A failed defragment leaves the old file in place: the caller hears why.
                let path = copy.path.clone();
                let r = self.switch_to_copy(copy).map_err(ApplyError::into_backend);
                if r.is_err() {
                    let _ = std::fs::remove_file(path);
                }
                let _ = reply.send(r);
                Ok(())
            }
        }
    }

    /// Commits the open backend transaction durably, if there is one.
    pub(super) fn commit(&mut self) -> Result<(), ApplyError> {
        let Some(mut tx) = self.tx.take() else {
            return Ok(());
        };
        if std::mem::take(&mut self.v2_dirty) {
            // The v2 store lives in memory; it is saved with the consistent index it
            // reflects, so a restart resumes it exactly where the backend stands.
            let blob = self.ctx.v2.read().save();
            let mut meta = tx.open_table(backend::META)?;
            meta.insert(crate::v2::persist::META_V2_STORE, blob.as_slice())?;
        }
        tx.set_durability(redb::Durability::Immediate)
            .map_err(|e| ApplyError::Commit(e.to_string()))?;
        fail::fail_point!("backendBeforeCommit");
        // Robustness builds: a disk that fails the backend's commit (EIO).
        fail::fail_point!("backendCommitError", |_| Err(ApplyError::Commit(
            std::io::Error::from_raw_os_error(libc::EIO).to_string()
        )));
        let started = Instant::now();
        tx.commit()?;
        chorus_metrics::BACKEND_COMMIT_SECONDS.observe_duration(started.elapsed());
        fail::fail_point!("backendAfterCommit");
        self.kv.committed();
        self.backend.refresh_size();
        self.last_durable = Instant::now();
        self.since_durable = 0;
        Ok(())
    }

    /// When the open transaction must commit even if no batch arrives.
    pub(super) fn commit_deadline(&self) -> Option<Instant> {
        self.tx
            .as_ref()
            .map(|_| self.last_durable + self.limits.batch_interval)
    }

    /// Every `snapshot_count` entries: make the backend durable at the applied index and
    /// let raft snapshot its log there.
    pub(super) fn maybe_snapshot(&mut self) -> Result<(), ApplyError> {
        if self.at.consistent_index < self.at.snapshot_index + self.limits.snapshot_count {
            return Ok(());
        }
        // Every commit is durable, so after this the backend holds the snapshot's state.
        self.commit()?;
        self.at.snapshot_index = self.at.consistent_index;
        let meta = self.applied_snapshot_meta();
        let _ = self.ctx.raft.send(RaftInput::Snapshotted { meta });
        Ok(())
    }

    /// Snapshot metadata describing the backend as it is now (everything applied).
    fn applied_snapshot_meta(&self) -> SnapshotMetadata {
        SnapshotMetadata {
            index: self.at.consistent_index,
            term: self.at.term,
            conf_state: Some(self.at.conf_state.clone()).into(),
            ..Default::default()
        }
    }

    /// The leader sends the backend as of the applied index (etcd's merged snapshot).
    fn send_snapshot(&mut self, mut msg: raft::eraftpb::Message) -> Result<(), ApplyError> {
        msg.mut_snapshot()
            .set_metadata(self.applied_snapshot_meta());
        let tx = self.backend.begin_read()?;
        self.ctx.peers.send_snapshot(msg, tx);
        Ok(())
    }

    /// A follower switches to the backend file received with the leader's snapshot.
    fn install_snapshot(&mut self, meta: SnapshotMetadata) -> Result<(), ApplyError> {
        if meta.index <= self.at.consistent_index {
            return Ok(());
        }
        chorus_metrics::SNAPSHOT_APPLY_IN_PROGRESS.set(1);
        let r = self.install_snapshot_file(meta);
        chorus_metrics::SNAPSHOT_APPLY_IN_PROGRESS.set(0);
        r
    }

    fn install_snapshot_file(&mut self, meta: SnapshotMetadata) -> Result<(), ApplyError> {
        let received =
            chorus_datadir::layout::received_snapshot_path(&self.limits.snap_dir, meta.index);
        fail::fail_point!("applyBeforeInstallSnapshot");
        self.switch_backend(&received, false)?;
        self.at.consistent_index = meta.index;
        self.at.term = meta.term;
        self.at.conf_state = meta.get_conf_state().clone();
        self.at.snapshot_index = meta.index;
        self.last_durable = Instant::now();
        // Logged before readers waiting for the index are woken (tests key on the line).
        tracing::info!(index = meta.index, "installed snapshot from the leader");
        self.ctx.progress.applied.send_replace(meta.index);
        Ok(())
    }

    /// A defragment's copy: the backend as committed now (everything applied), written
    /// into a new file without free pages by a thread of its own while applying goes on
    /// (etcd copies while applying waits).
    fn start_copy(
        &mut self,
        reply: tokio::sync::oneshot::Sender<Result<BackendCopy, backend::BackendError>>,
    ) {
        let source = self.backend.clone();
        let path = chorus_datadir::layout::defrag_copy_path(&self.limits.snap_dir);
        let opts = self.limits.backend_opts.clone();
        let begun = source.begin_read().and_then(|tx| {
            let since = backend::last_revision(&tx)?;
            Ok((tx, since))
        });
        let (tx, since) = match begun {
            Ok(b) => b,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("defragment".into())
            .spawn(move || {
                let copied = copy_backend(tx, &path, &opts).map_err(ApplyError::into_backend);
                if copied.is_err() {
                    let _ = std::fs::remove_file(&path);
                } else {
                    tracing::info!(revision = since, "defragment: copy written");
                    // Tests: a slow copy, to write meanwhile.
                    fail::fail_point!("defragAfterCopy");
                }
                let _ = reply.send(copied.map(|()| BackendCopy {
                    path,
                    source,
                    since,
                }));
            });
        if let Err(e) = spawned {
            tracing::error!("defragment: cannot start the copying thread: {e}");
        }
    }

    /// A defragment's switch: the copy gets what was applied while it was written, then
    /// replaces the backend; applying waits only for this part.
    fn switch_to_copy(&mut self, copy: BackendCopy) -> Result<Switched, ApplyError> {
        if !Arc::ptr_eq(&self.backend, &copy.source) {
            let _ = std::fs::remove_file(&copy.path);
            return Ok(Switched::Replaced);
        }
        let started = Instant::now();
        let before = self.backend.refresh_size();
        let caught_up = {
            let target = Backend::open(&copy.path, &self.limits.backend_opts)?;
            let live = self.backend.begin_read()?;
            backend::catch_up(&target, &live, copy.since)?
        };
        fail::fail_point!("defragBeforeRename");
        self.switch_backend(&copy.path, true)?;
        let after = self.backend.refresh_size();
        tracing::info!(
            before,
            after,
            records_after_copy = caught_up.records,
            switch_took = ?started.elapsed(),
            "defragmented the backend"
        );
        Ok(Switched::Done)
    }

    /// Replaces the backend file with `file` (same filesystem) and reopens the key index
    /// on it. Unless `same_content` (a defragmented copy), every piece of state derived
    /// from the backend is reloaded too: leases, members, alarms, the v2 store, watchers.
    fn switch_backend(&mut self, file: &Path, same_content: bool) -> Result<(), ApplyError> {
        let db = self.backend.path().to_owned();
        std::fs::rename(file, &db).map_err(|source| ApplyError::SwitchBackend {
            path: file.to_owned(),
            source,
        })?;
        if same_content {
            // A defragment: the copy is in place, the directory not yet synced.
            fail::fail_point!("defragAfterRename");
        } else {
            // A snapshot install: the leader's database is in place, nothing opened yet.
            fail::fail_point!("applyAfterInstallSnapshot");
        }
        for dir in [Some(self.limits.snap_dir.as_path()), db.parent()]
            .into_iter()
            .flatten()
        {
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        let backend = Arc::new(Backend::open(&db, &self.limits.backend_opts)?);
        close_when_released(self.backend.clone());
        if same_content {
            // The key index stays: the copy holds what it indexes.
            let kv = Arc::new(self.kv.rebased(backend.clone()));
            self.backend = backend;
            self.kv = kv.clone();
            self.ctx.kv.set(kv);
            return Ok(());
        }
        let (kv, restored) = KvStore::open(backend.clone())?;
        let kv = Arc::new(kv);
        self.backend = backend;
        self.kv = kv.clone();
        let rev = kv.current_rev();
        self.ctx.kv.set(kv);
        self.reload_stores(&restored.key_leases, rev)
    }

    /// After a snapshot install: every store derived from the backend starts over.
    fn reload_stores(&mut self, key_leases: &[(Vec<u8>, i64)], rev: i64) -> Result<(), ApplyError> {
        let extend = self.ctx.election_timeout;
        self.ctx
            .lessor
            .lock()
            .reload(&self.backend, key_leases, extend)?;
        self.ctx.watch_hub.restore(rev);
        let cluster = Cluster::load(&self.backend, self.ctx.cluster_id)?;
        *self.ctx.alarms.write() = crate::alarm::Alarms::load(&self.backend)?;
        crate::v2::persist::load_into(&self.backend, &mut self.ctx.v2.write())?;
        self.ctx
            .auth
            .recover(&self.backend)
            .map_err(|e| ApplyError::Request(e.to_string()))?;
        for m in cluster.members.values() {
            if m.id != self.ctx.member_id {
                self.ctx.peers.add_peer(m.id, &m.peer_urls);
            }
        }
        self.ctx.cluster.set(cluster);
        Ok(())
    }
}

/// Closes a replaced backend on a thread of its own once nothing else holds it: redb's
/// close writes the file's allocator state and syncs it, hundreds of milliseconds for a
/// large file, which neither apply nor a reader's thread should wait for. Readers of the
/// old store let go within a request; after ten minutes the last of them closes it.
fn close_when_released(old: Arc<Backend>) {
    let spawned = std::thread::Builder::new()
        .name("backend-close".into())
        .spawn(move || {
            let deadline = Instant::now() + std::time::Duration::from_secs(600);
            while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            drop(old);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the thread that closes the replaced backend: {e}");
    }
}

/// Copies what `tx` sees into a new file at `to` through the dump format, on two threads.
fn copy_backend(
    tx: redb::ReadTransaction,
    to: &Path,
    opts: &backend::BackendOptions,
) -> Result<(), ApplyError> {
    let (chunks, rx) = std::sync::mpsc::sync_channel(8);
    let dumper = std::thread::spawn(move || -> Result<(), backend::BackendError> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, ChunkSender(chunks));
        Backend::dump(&tx, &mut out)?;
        std::io::Write::flush(&mut out)?;
        Ok(())
    });
    let mut reader = ChunkReader {
        rx,
        chunk: Vec::new(),
        at: 0,
    };
    let restored = Backend::restore(&mut reader, to, opts);
    drop(reader);
    let dumped = dumper
        .join()
        .map_err(|_| ApplyError::Defragment("the copying thread panicked".into()))?;
    let copy = restored.map_err(|e| ApplyError::Defragment(e.to_string()))?;
    dumped.map_err(|e| ApplyError::Defragment(e.to_string()))?;
    drop(copy);
    Ok(())
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
