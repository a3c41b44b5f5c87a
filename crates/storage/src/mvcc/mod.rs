//! etcd's multi-version key space on top of the redb backend.
//!
//! ```text
//!   writes (apply thread)                      reads (any thread)
//!   WriteBatch ── one redb write txn           KvStore::range
//!     └ TxnWrite (one etcd txn = one main        lock index (read) -> current_rev
//!        revision, sub-revisions per change)     -> redb read txn -> revisions
//!        put/delete: KV table + TreeIndex        unlock -> values from the read txn
//!   commit -> publish current_rev
//! ```
//! Every change gets a revision `(main, sub)`; the KV table maps revisions to encoded
//! `mvccpb.KeyValue`s and the in-memory [`TreeIndex`] maps keys to revisions. The index may
//! hold revisions of the batch being applied; readers only look at revisions up to the
//! published `current_rev`, all of which are committed. Compaction updates the index first
//! and deletes from the backend afterwards, so a reader never finds a revision missing.

pub mod index;
mod rebuild;
mod records;

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_api::mvccpb::{event::EventType, Event, KeyValue};
use parking_lot::RwLock;
use prost::Message;
use redb::{ReadableTable, Table};

use crate::backend::{self, meta_keys, Backend, BackendError, KV, META};
pub use index::{KeyAt, RangeEnd, TreeIndex};
pub use records::Records;

/// A point in the key space's history: `main` counts etcd transactions, `sub` the changes
/// within one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MvccError {
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    #[error("mvcc: required revision is a future revision")]
    FutureRev,
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl From<redb::StorageError> for MvccError {
    fn from(e: redb::StorageError) -> Self {
        MvccError::Backend(e.into())
    }
}

impl From<redb::TableError> for MvccError {
    fn from(e: redb::TableError) -> Self {
        MvccError::Backend(e.into())
    }
}

impl From<redb::TransactionError> for MvccError {
    fn from(e: redb::TransactionError) -> Self {
        MvccError::Backend(e.into())
    }
}

pub type Result<T, E = MvccError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, Default)]
pub struct RangeOptions {
    /// Maximum number of key-values returned; 0 means no limit.
    pub limit: usize,
    /// Revision to read at; <= 0 means the current revision.
    pub rev: i64,
    /// Only count the keys.
    pub count_only: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// The store's current revision when the range was served.
    pub rev: i64,
    /// Number of keys in the range at the requested revision, regardless of `limit`.
    pub count: usize,
}

/// The MVCC key space. Shared by the apply thread (writes) and request handlers (reads).
pub struct KvStore {
    backend: Arc<Backend>,
    /// Shared with the store a defragmented copy of the same content replaces
    /// ([`KvStore::rebased`]); readers of the old one stay below its `current_rev`.
    index: Arc<RwLock<TreeIndex>>,
    /// Highest committed revision; readers never look past it.
    current_rev: AtomicI64,
    /// Reads below this revision fail with `Compacted`; -1 until the first compaction.
    compact_rev: AtomicI64,
    /// Revisions applied since the last backend commit, one chunk per apply batch: readers
    /// find them here until the backend transaction holding them commits.
    pending: RwLock<Vec<Arc<Chunk>>>,
    /// The hash of what each recent compaction kept (etcd's compaction hashes, for the
    /// compaction hash check), newest last.
    compaction_hashes: parking_lot::Mutex<std::collections::VecDeque<CompactionHash>>,
}

/// What a compaction at `revision` kept, hashed: equal on every member with the same
/// history (the compaction hash check compares them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionHash {
    pub revision: i64,
    pub hash: u32,
}

/// Compaction hashes kept (etcd keeps 10).
const COMPACTION_HASHES: usize = 10;
/// Keys compacted in the index per hold of its write lock (about a millisecond's work).
const INDEX_COMPACTION_KEYS: usize = 10_000;

/// The records one apply batch wrote, in revision order.
pub type Chunk = Vec<((i64, i64), Arc<[u8]>)>;

/// What a reader sees: a backend snapshot plus the revisions applied after it.
struct View {
    tx: redb::ReadTransaction,
    pending: Vec<Arc<Chunk>>,
}

/// An open read transaction counts in `etcd_mvcc_db_open_read_transactions`.
impl Drop for View {
    fn drop(&mut self) {
        chorus_metrics::DB_OPEN_READ_TXN.dec();
    }
}

impl View {
    fn pending_get(&self, rev: (i64, i64)) -> Option<&Arc<[u8]>> {
        self.pending.iter().rev().find_map(|c| {
            c.binary_search_by(|(r, _)| r.cmp(&rev))
                .ok()
                .map(|i| &c[i].1)
        })
    }

    /// Visits every record with a revision in `[from, to]`, in revision order, until
    /// `visit` breaks. Records are read one at a time: a scan over the whole history
    /// (HashKV, a watcher far behind) holds one record in memory, not the history.
    fn scan(
        &self,
        from: (i64, i64),
        to: (i64, i64),
        mut visit: impl FnMut((i64, i64), &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let table = self.tx.open_table(KV)?;
        let mut last = None;
        for item in table.range(from..=to)? {
            let (k, v) = item?;
            last = Some(k.value());
            if visit(k.value(), v.value())?.is_break() {
                return Ok(());
            }
        }
        // Pending records follow every committed one; a chunk committed just now may
        // repeat records the snapshot already has.
        for c in &self.pending {
            for (r, v) in c.iter() {
                let wanted = *r >= from && *r <= to && last.is_none_or(|l| *r > l);
                if wanted && visit(*r, v)?.is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

fn decode_kv(bytes: &[u8]) -> Result<KeyValue> {
    KeyValue::decode(bytes).map_err(|e| {
        MvccError::Backend(BackendError::Corrupt {
            what: format!("key-value record: {e}"),
        })
    })
}

/// A stored revision, or -1 when none is stored (etcd's "never compacted").
fn read_rev(table: &impl ReadableTable<&'static str, &'static [u8]>, key: &str) -> Result<i64> {
    Ok(backend::get_meta_u64(table, key)?.map_or(-1, |v| v as i64))
}

/// What a start-up found in the backend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub current_rev: i64,
    pub compact_rev: i64,
    /// A compaction that was scheduled but not finished before the stop; the caller runs
    /// [`KvStore::compact`] for it.
    pub pending_compaction: Option<i64>,
    /// Live keys attached to a lease, for the lessor to rebuild its key sets.
    pub key_leases: Vec<(Vec<u8>, i64)>,
}

impl KvStore {
    /// Opens the key space, rebuilding the index from every stored revision.
    pub fn open(backend: Arc<Backend>) -> Result<(KvStore, Restored)> {
        let tx = backend.begin_read()?;
        let meta = tx.open_table(META)?;
        let scheduled = read_rev(&meta, meta_keys::SCHEDULED_COMPACT)?;
        let finished = read_rev(&meta, meta_keys::FINISHED_COMPACT)?;
        let kv = tx.open_table(KV)?;
        let rebuild::Rebuilt {
            index,
            key_leases,
            current,
        } = rebuild::rebuild(&kv)?;
        let compact_rev = scheduled.max(finished);
        let current = current.max(compact_rev);
        let restored = Restored {
            current_rev: current,
            compact_rev,
            pending_compaction: (scheduled > finished).then_some(scheduled),
            key_leases: key_leases.into_iter().collect(),
        };
        drop((kv, meta, tx));
        let store = KvStore {
            backend,
            index: Arc::new(RwLock::new(index)),
            current_rev: AtomicI64::new(current),
            compact_rev: AtomicI64::new(compact_rev),
            pending: RwLock::new(Vec::new()),
            compaction_hashes: Default::default(),
        };
        if let Some(rev) = restored.pending_compaction {
            // The index must not show revisions the compaction already deleted.
            store.index.write().compact(rev);
        }
        Ok((store, restored))
    }

    /// The same key space on `backend`, a copy of this store's backend with the same
    /// content (a defragment): the index is shared instead of rebuilt from the file.
    /// Everything applied must be committed (no pending records) and this store must
    /// take no more writes.
    pub fn rebased(&self, backend: Arc<Backend>) -> KvStore {
        debug_assert!(
            self.pending.read().is_empty(),
            "rebased with uncommitted records"
        );
        KvStore {
            backend,
            index: self.index.clone(),
            current_rev: AtomicI64::new(self.current_rev()),
            compact_rev: AtomicI64::new(self.compact_rev()),
            pending: RwLock::new(Vec::new()),
            compaction_hashes: parking_lot::Mutex::new(self.compaction_hashes.lock().clone()),
        }
    }

    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    pub fn current_rev(&self) -> i64 {
        self.current_rev.load(Ordering::Acquire)
    }

    pub fn compact_rev(&self) -> i64 {
        self.compact_rev.load(Ordering::Acquire)
    }

    /// Number of keys tracked by the index (live or with history).
    pub fn index_len(&self) -> usize {
        self.index.read().len()
    }

    /// A linearizable-in-the-store read at the current committed revision (or `opts.rev`).
    pub fn range(&self, key: &[u8], end: RangeEnd<'_>, opts: RangeOptions) -> Result<RangeResult> {
        if opts.count_only {
            let index = self.index.read();
            let cur = self.current_rev();
            let rev = check_rev(opts.rev, cur, self.compact_rev())?;
            return Ok(RangeResult {
                kvs: Vec::new(),
                rev: cur,
                count: index.count(key, end, rev),
            });
        }
        let records = self.range_records(key, end, opts)?;
        Ok(RangeResult {
            kvs: records.decode()?,
            rev: records.rev,
            count: records.count,
        })
    }

    /// A backend snapshot and the pending revisions; call with the index lock held so
    /// that a commit cannot fall between the two.
    fn view(&self) -> Result<View> {
        let tx = self.backend.begin_read()?;
        chorus_metrics::DB_OPEN_READ_TXN.inc();
        Ok(View {
            tx,
            pending: self.pending.read().clone(),
        })
    }

    /// Events of keys in the range with revisions in `[from, to]`, in revision order, read
    /// from the backend (watch catch-up). Fails with `Compacted` if `from` was compacted.
    pub fn events_between(
        &self,
        key: &[u8],
        end: RangeEnd<'_>,
        from: i64,
        to: i64,
    ) -> Result<Vec<Event>> {
        Ok(self.events_within(key, end, from, to, usize::MAX)?.0)
    }

    /// [`Self::events_between`] that stops at the first revision boundary after
    /// `max_bytes` of keys and values: the events and the last revision they cover
    /// whole (`to` when all were read). A revision's events are never split.
    pub fn events_within(
        &self,
        key: &[u8],
        end: RangeEnd<'_>,
        from: i64,
        to: i64,
        max_bytes: usize,
    ) -> Result<(Vec<Event>, i64)> {
        let view = {
            let _index = self.index.read();
            if from < self.compact_rev() {
                return Err(MvccError::Compacted);
            }
            self.view()?
        };
        let mut events = Vec::new();
        let mut bytes = 0usize;
        let mut last = from - 1;
        let mut through = to;
        view.scan((from, 0), (to, i64::MAX), |(main, _), v| {
            if bytes >= max_bytes && main != last && last >= from {
                through = last;
                return Ok(ControlFlow::Break(()));
            }
            last = main;
            let kv = decode_kv(v)?;
            if in_range(&kv.key, key, end) {
                bytes += kv.key.len() + kv.value.len();
                events.push(to_event(kv, main));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok((events, through))
    }

    /// Starts a batch of writes in the given backend transaction.
    pub fn write<'t, 'txn>(
        &'t self,
        tx: &'txn redb::WriteTransaction,
    ) -> Result<WriteBatch<'t, 'txn>> {
        Ok(WriteBatch {
            store: self,
            table: tx.open_table(KV)?,
            rev: self.current_rev(),
            events: Vec::new(),
            chunk: Vec::new(),
        })
    }

    /// Makes a finished batch visible to readers: its records join the pending ones (the
    /// backend transaction holding them may commit later), then the revision is published.
    pub fn publish(&self, rev: i64, chunk: Chunk) {
        if !chunk.is_empty() {
            self.pending.write().push(Arc::new(chunk));
        }
        self.current_rev.store(rev, Ordering::Release);
    }

    /// Called after the backend transaction holding every published batch committed:
    /// readers now find those records in the backend.
    pub fn committed(&self) {
        let _index = self.index.write();
        self.pending.write().clear();
    }

    /// Records a compaction at `rev` in the batch's transaction (etcd's updateCompactRev).
    /// The caller runs [`KvStore::compact`] once the transaction has committed.
    pub fn schedule_compaction(
        &self,
        tx: &redb::WriteTransaction,
        rev: i64,
        current: i64,
    ) -> Result<()> {
        if rev <= self.compact_rev() {
            return Err(MvccError::Compacted);
        }
        if rev > current {
            return Err(MvccError::FutureRev);
        }
        let mut meta = tx.open_table(META)?;
        backend::put_meta_u64(&mut meta, meta_keys::SCHEDULED_COMPACT, rev as u64)?;
        self.compact_rev.store(rev, Ordering::Release);
        Ok(())
    }

    /// Compacts history at `rev`: first the index, then the backend in chunks of
    /// `chunk` deletions per write transaction, so apply is never blocked for long.
    pub fn compact(&self, rev: i64, chunk: usize) -> Result<usize> {
        self.compact_paced(rev, chunk, Duration::ZERO)
    }

    /// [`KvStore::compact`], sleeping `pause` between chunks (etcd's
    /// `--compaction-sleep-interval`), so a long compaction leaves the backend's write
    /// lock to apply between its transactions. Blocks the calling thread.
    pub fn compact_paced(&self, rev: i64, chunk: usize, pause: Duration) -> Result<usize> {
        let started = Instant::now();
        let mut keep = HashSet::new();
        let mut after = None;
        // Part by part, the lock let go in between: puts and reads wait for one part.
        while let Some(last) =
            self.index
                .write()
                .compact_some(rev, after.as_deref(), INDEX_COMPACTION_KEYS, &mut keep)
        {
            after = Some(last);
        }
        chorus_metrics::INDEX_COMPACTION_PAUSE_MS.observe_millis(started.elapsed());
        let mut deleted = 0;
        let mut next = (0i64, 0i64);
        // The kept records, hashed on the way (the compaction hash check compares them).
        let mut crc = crc32c::crc32c(b"compaction");
        loop {
            let batch = Instant::now();
            let tx = self.backend.begin_write()?;
            let done = {
                let mut table = tx.open_table(KV)?;
                let mut doomed = Vec::with_capacity(chunk);
                let mut scanned = 0;
                for item in table.range(next..(rev + 1, 0))? {
                    let (k, v) = item?;
                    let (main, sub) = k.value();
                    scanned += 1;
                    next = (main, sub + 1);
                    if !keep.contains(&Revision::new(main, sub)) {
                        doomed.push((main, sub));
                    } else {
                        crc = crc32c::crc32c_append(crc, &main.to_be_bytes());
                        crc = crc32c::crc32c_append(crc, &sub.to_be_bytes());
                        crc = crc32c::crc32c_append(crc, v.value());
                    }
                    if scanned >= chunk {
                        break;
                    }
                }
                for k in &doomed {
                    table.remove(k)?;
                }
                deleted += doomed.len();
                let done = scanned < chunk;
                if done {
                    let mut meta = tx.open_table(META)?;
                    backend::put_meta_u64(&mut meta, meta_keys::FINISHED_COMPACT, rev as u64)?;
                }
                done
            };
            fail::fail_point!("compactBeforeCommitBatch");
            tx.commit().map_err(BackendError::from)?;
            chorus_metrics::DB_COMPACTION_PAUSE_MS.observe_millis(batch.elapsed());
            fail::fail_point!("compactAfterCommitBatch");
            if done {
                self.record_compaction_hash(CompactionHash {
                    revision: rev,
                    hash: crc,
                });
                return Ok(deleted);
            }
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
    }

    fn record_compaction_hash(&self, h: CompactionHash) {
        let mut hashes = self.compaction_hashes.lock();
        hashes.retain(|old| old.revision != h.revision);
        hashes.push_back(h);
        while hashes.len() > COMPACTION_HASHES {
            hashes.pop_front();
        }
    }

    /// The recent compactions' hashes, oldest first.
    pub fn compaction_hashes(&self) -> Vec<CompactionHash> {
        self.compaction_hashes.lock().iter().copied().collect()
    }

    /// CRC32C over every revision <= `rev` that survives compaction at the current compact
    /// revision, as etcd's HashKV. Members with the same history have the same hash.
    pub fn hash_kv(&self, rev: i64) -> Result<(u32, i64, i64)> {
        let started = std::time::Instant::now();
        let r = self.hash_kv_at(rev);
        chorus_metrics::HASH_REV_SECONDS.observe_duration(started.elapsed());
        r
    }

    fn hash_kv_at(&self, rev: i64) -> Result<(u32, i64, i64)> {
        let (tx, keep, cur, compact) = {
            let index = self.index.read();
            let cur = self.current_rev();
            let compact = self.compact_rev();
            // etcd: a hash at or below the compact revision is refused.
            if rev > 0 && rev <= compact {
                return Err(MvccError::Compacted);
            }
            let rev = if rev <= 0 { cur } else { rev };
            if rev > cur {
                return Err(MvccError::FutureRev);
            }
            (self.view()?, index.keep(compact), rev, compact)
        };
        let mut crc = crc32c::crc32c(b"key");
        tx.scan((0, 0), (cur, i64::MAX), |(main, sub), v| {
            let compacted = main <= compact && !keep.is_empty();
            if !compacted || keep.contains(&Revision::new(main, sub)) {
                crc = crc32c::crc32c_append(crc, &main.to_be_bytes());
                crc = crc32c::crc32c_append(crc, &sub.to_be_bytes());
                crc = crc32c::crc32c_append(crc, v);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok((crc, cur, compact))
    }
}

fn check_rev(requested: i64, cur: i64, compact: i64) -> Result<i64> {
    if requested > cur {
        return Err(MvccError::FutureRev);
    }
    let rev = if requested <= 0 { cur } else { requested };
    if rev < compact {
        return Err(MvccError::Compacted);
    }
    Ok(rev)
}

fn in_range(k: &[u8], key: &[u8], end: RangeEnd<'_>) -> bool {
    match end {
        RangeEnd::Single => k == key,
        RangeEnd::Unbounded => k >= key,
        RangeEnd::Before(end) => k >= key && k < end,
    }
}

fn collect_revisions(
    index: &TreeIndex,
    key: &[u8],
    end: RangeEnd<'_>,
    at: i64,
    limit: usize,
) -> (Vec<Revision>, usize) {
    let mut revs = Vec::new();
    let mut count = 0;
    index.visit(key, end, |_, ki| {
        if let Some(v) = ki.get(at) {
            count += 1;
            if limit == 0 || revs.len() < limit {
                revs.push(v.modified);
            }
        }
        true
    });
    (revs, count)
}

fn fetch(
    table: &impl ReadableTable<(i64, i64), &'static [u8]>,
    revs: &[Revision],
) -> Result<Vec<KeyValue>> {
    revs.iter()
        .map(|r| {
            let v = table
                .get((r.main, r.sub))?
                .ok_or_else(|| records::missing(*r))?;
            decode_kv(v.value())
        })
        .collect()
}

fn to_event(mut kv: KeyValue, main: i64) -> Event {
    if kv.mod_revision == 0 {
        kv.mod_revision = main;
        Event {
            r#type: EventType::Delete as i32,
            kv: Some(kv),
            prev_kv: None,
        }
    } else {
        Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: None,
        }
    }
}

/// The writes of one apply batch, inside one backend write transaction.
pub struct WriteBatch<'t, 'txn> {
    store: &'t KvStore,
    table: Table<'txn, (i64, i64), &'static [u8]>,
    rev: i64,
    events: Vec<Event>,
    chunk: Chunk,
}

impl<'t, 'txn> WriteBatch<'t, 'txn> {
    /// Current revision including the batch's earlier transactions.
    pub fn rev(&self) -> i64 {
        self.rev
    }

    /// Begins one etcd transaction: every change in it shares the next main revision.
    pub fn txn(&mut self) -> TxnWrite<'_, 't, 'txn> {
        let begin = self.rev;
        TxnWrite {
            batch: self,
            begin_rev: begin,
            changes: 0,
        }
    }

    pub fn store(&self) -> &'t KvStore {
        self.store
    }

    /// Ends the batch: the revision and records to publish, and the events to deliver.
    pub fn finish(self) -> (i64, Vec<Event>, Chunk) {
        (self.rev, self.events, self.chunk)
    }
}

/// One etcd transaction inside a batch (etcd's `TxnWrite`).
pub struct TxnWrite<'b, 't, 'txn> {
    batch: &'b mut WriteBatch<'t, 'txn>,
    begin_rev: i64,
    changes: i64,
}

impl TxnWrite<'_, '_, '_> {
    /// Revision before this transaction.
    pub fn begin_rev(&self) -> i64 {
        self.begin_rev
    }

    /// Revision the transaction's reads see: its own changes are visible.
    pub fn read_rev(&self) -> i64 {
        self.begin_rev + i64::from(self.changes > 0)
    }

    /// Revision of the transaction's result: begin + 1 if it changed anything.
    pub fn rev(&self) -> i64 {
        self.read_rev()
    }

    pub fn has_changes(&self) -> bool {
        self.changes > 0
    }

    pub fn compact_rev(&self) -> i64 {
        self.batch.store.compact_rev()
    }

    pub fn range(&self, key: &[u8], end: RangeEnd<'_>, opts: RangeOptions) -> Result<RangeResult> {
        let cur = self.read_rev();
        let store = self.batch.store;
        let rev = check_rev(opts.rev, cur, store.compact_rev())?;
        let index = store.index.read();
        if opts.count_only {
            let count = index.count(key, end, rev);
            return Ok(RangeResult {
                kvs: Vec::new(),
                rev: cur,
                count,
            });
        }
        let (revs, count) = collect_revisions(&index, key, end, rev, opts.limit);
        drop(index);
        let kvs = fetch(&self.batch.table, &revs)?;
        Ok(RangeResult {
            kvs,
            rev: cur,
            count,
        })
    }

    /// The live value of one key as this transaction sees it.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        let at = self.batch.store.index.read().get(key, self.read_rev());
        match at {
            None => Ok(None),
            Some(at) => Ok(fetch(&self.batch.table, &[at.modified])?.pop()),
        }
    }

    /// Writes `key` at the transaction's revision; returns the revision.
    pub fn put(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<i64> {
        let rev = self.begin_rev + 1;
        let store = self.batch.store;
        let prev = store.index.read().get(key, rev);
        let (created, version) = match prev {
            Some(p) => (p.created.main, p.version + 1),
            None => (rev, 1),
        };
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision: created,
            mod_revision: rev,
            version,
            value: value.to_vec(),
            lease,
        };
        let idx_rev = Revision::new(rev, self.changes);
        let bytes: Arc<[u8]> = kv.encode_to_vec().into();
        self.batch
            .table
            .insert((idx_rev.main, idx_rev.sub), &*bytes)?;
        self.batch.chunk.push(((idx_rev.main, idx_rev.sub), bytes));
        store.index.write().put(key, idx_rev);
        self.changes += 1;
        self.batch.rev = rev;
        self.batch.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: None,
        });
        Ok(rev)
    }

    /// Deletes every live key in the range; returns the deleted keys (for the lessor to
    /// detach) and the transaction's revision.
    pub fn delete_range(&mut self, key: &[u8], end: RangeEnd<'_>) -> Result<(Vec<Vec<u8>>, i64)> {
        let store = self.batch.store;
        let at = self.read_rev();
        let live: Vec<Vec<u8>> = store
            .index
            .read()
            .range(key, end, at)
            .into_iter()
            .map(|(k, _)| k.to_vec())
            .collect();
        if live.is_empty() {
            return Ok((live, self.rev()));
        }
        let rev = self.begin_rev + 1;
        for k in &live {
            let tomb = KeyValue {
                key: k.clone(),
                ..Default::default()
            };
            let idx_rev = Revision::new(rev, self.changes);
            let bytes: Arc<[u8]> = tomb.encode_to_vec().into();
            self.batch
                .table
                .insert((idx_rev.main, idx_rev.sub), &*bytes)?;
            self.batch.chunk.push(((idx_rev.main, idx_rev.sub), bytes));
            let was_live = store.index.write().tombstone(k, idx_rev);
            debug_assert!(was_live);
            self.changes += 1;
            self.batch.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(KeyValue {
                    mod_revision: rev,
                    ..tomb
                }),
                prev_kv: None,
            });
        }
        self.batch.rev = rev;
        Ok((live, rev))
    }
}

#[cfg(test)]
mod tests;
