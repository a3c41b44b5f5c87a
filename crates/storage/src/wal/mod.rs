//! Write-ahead log for the raft log: entries, hard state and snapshot markers.
//!
//! # On-disk layout
//!
//! ```text
//! <dir>/
//!   wal.lock                                flock(LOCK_EX) held by the open Wal
//!   0000000000000000-0000000000000000.wal   segment seq 0, first index 0
//!   0000000000000001-00000000000004d3.wal   segment seq 1: started when last index was 0x4d2
//!   ...                                     (name: {seq:016x}-{first_index:016x}.wal)
//!   <n>.tmp                                 next segment being preallocated (file pipeline)
//!
//! segment (preallocated to segment_size with fallocate; zeros are written about 1 MiB ahead
//! of the log end so appends land in written blocks, see `Wal::zero_ahead`):
//! +----------------+----------+----------+-----------+---------+-----+-----------+----------+
//! | SEGMENT header | METADATA | SNAPSHOT | HARDSTATE | ENTRY.. | ... | HARDSTATE | 0 0 0 .. |
//! | seq, first idx | opaque   | latest   | latest    |         |     |           | (unused) |
//! +----------------+----------+----------+-----------+---------+-----+-----------+----------+
//! |<---------- header block: written + fsynced before the  ---->|
//! |           segment is renamed into place, so every segment  |
//! |           can be replayed on its own                       |
//!
//! record (every record; starts at a multiple of 8):
//!  0       4      5         8       12               12+len     next multiple of 8
//!  +-------+------+---------+-------+-----------------+----------+
//!  |  len  | type | 0  0  0 |  crc  | payload (len)   | zero pad |
//!  +-------+------+---------+-------+-----------------+----------+
//!   u32 LE   u8    reserved  u32 LE = CRC32C(bytes 0..8 ++ payload)
//!
//!  type 1 SEGMENT   version u32 | 0 u32 | seq u64 | first_index u64
//!  type 2 METADATA  opaque bytes (identical in every segment)
//!  type 3 SNAPSHOT  index u64 | term u64
//!  type 4 HARDSTATE term u64 | vote u64 | commit u64
//!  type 5 ENTRY     index u64 | term u64 | entry_type u8 | sync_log u8 | 0 0 |
//!                   context_len u32 | context | data
//! ```
//!
//! All integers are little endian. The type is never 0, so an all-zero 8-byte word where a
//! record would start marks the end of the log (the preallocated, unwritten part).
//!
//! # Writing
//!
//! [`Wal::save`] encodes all records of one call into one reused buffer and issues one
//! positional write and at most one `fdatasync` (group commit). Entries are written before the
//! hard state, so a torn write can never leave a commit index that points past the log. When a
//! write does not fit in the current segment, the segment is *cut*: it is truncated to its used
//! length and fsynced; the next file (already created and preallocated by a background thread)
//! gets the header block (segment header, metadata, latest snapshot marker, latest hard
//! state), is fsynced, renamed to its final name, and the directory is fsynced. A segment's
//! `first_index` is the log's last index + 1 at the time of the cut, so the final version of
//! every entry at or above `first_index` lives in that segment or a later one.
//!
//! # Repair rule (on open)
//!
//! Reading stops at the first place that is not a valid record: a CRC mismatch, a bad header,
//! nonzero padding, a record running past the end of the file, or nonzero bytes after an
//! end-of-log word. That place is accepted as a **torn tail** — the remainder of an unsynced
//! write cut short by a crash — and zeroed (then fsynced) only if all of the following hold:
//!
//! * it is in the **last** segment (earlier segments were fsynced whole before the cut);
//! * the segment's header block is intact (it was fsynced before the rename);
//! * **no valid record** starts at any later 8-byte-aligned offset of the segment.
//!
//! Otherwise opening fails with [`WalError::Corrupt`] naming the file and offset: a damaged
//! record that is followed by valid data is corruption of data that may have been
//! acknowledged, and the WAL never drops such records silently. (A power loss that persists
//! the pages of one unsynced write out of order can also look like this; the WAL then refuses
//! to open rather than guess.) Zeroing the torn bytes (not just ignoring them) ensures that
//! stale bytes of the torn write can never reappear behind records appended later.
//!
//! # Replay
//!
//! [`Wal::open`] starts at the last segment whose `first_index <= snap.index + 1`, requires the
//! snapshot marker `snap` to be found from there on, and applies raft's truncation rule: an
//! entry at index `i` drops every previously read entry `>= i` (an entry at or below the
//! snapshot index drops all entries read so far). The last hard state record wins.

mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod pipeline;
mod record;
mod segment;

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raft::eraftpb::{Entry, HardState};

pub use error::WalError;
use pipeline::Pipeline;
use record::{append_frame, T_ENTRY, T_HARD_STATE, T_METADATA, T_SEGMENT, T_SNAPSHOT};
use segment::{seg_path, SegName, HEADER_RECORDS};

/// WAL tuning.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Size segments are preallocated to; a segment is cut when a write would pass it.
    /// Default 64 MiB.
    pub segment_size: u64,
    /// Skip every fsync/fdatasync (like etcd's `--unsafe-no-fsync`). Loses data on power
    /// failure; for tests and benchmarks only.
    pub unsafe_no_fsync: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 64 * 1024 * 1024,
            unsafe_no_fsync: false,
        }
    }
}

/// A snapshot marker: the position to replay from. Entries with index > `index` are returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WalSnapshot {
    pub index: u64,
    pub term: u64,
}

/// What [`Wal::open`] replayed.
#[derive(Clone, Debug, Default)]
pub struct ReplayState {
    /// The metadata given to [`Wal::create`].
    pub metadata: Vec<u8>,
    /// The last hard state saved (default if none was).
    pub hard_state: HardState,
    /// Entries after the snapshot index, contiguous, with truncations applied.
    pub entries: Vec<Entry>,
}

/// An open write-ahead log. Holds the directory lock until dropped.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    /// All segments on disk, oldest first; the last one is the tail.
    segments: Vec<SegName>,
    tail: File,
    /// Write position in the tail.
    offset: u64,
    /// The tail holds written zeros (not just fallocate's unwritten extents) up to here; see
    /// [`Wal::zero_ahead`].
    zeroed_to: u64,
    /// Whether the tail holds records after its header block.
    tail_has_payload: bool,
    /// Bytes written but not yet fdatasync'ed.
    unsynced: bool,
    poisoned: bool,
    metadata: Vec<u8>,
    hard_state: HardState,
    /// Latest (highest) snapshot marker, repeated in each new segment's header block.
    snapshot: WalSnapshot,
    /// Index of the last entry written (or the highest snapshot marker if larger).
    last_index: u64,
    /// Reused encode buffer.
    buf: Vec<u8>,
    pipeline: Pipeline,
    // Declared last so that it is released after everything else is closed.
    _lock: File,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("tail", &self.segments.last().map(|s| s.file_name()))
            .field("offset", &self.offset)
            .field("last_index", &self.last_index)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Whether `dir` holds at least one WAL segment.
    pub fn exists(dir: &Path) -> bool {
        fs::read_dir(dir).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| SegName::parse(n).is_some())
            })
        })
    }

    /// Creates a new WAL in an empty or non-existent `dir` and durably writes `metadata`.
    pub fn create(dir: &Path, metadata: &[u8], opts: WalOptions) -> Result<Wal, WalError> {
        if Wal::exists(dir) {
            return Err(WalError::AlreadyExists(dir.to_owned()));
        }
        fs::create_dir_all(dir).map_err(|e| WalError::io("create dir", dir, e))?;
        if !opts.unsafe_no_fsync {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                segment::sync_dir(parent).map_err(|e| WalError::io("fsync dir", parent, e))?;
            }
        }
        let lock = segment::lock_dir(dir)?;
        segment::remove_tmp_files(dir)?;

        let seg = SegName {
            seq: 0,
            first_index: 0,
        };
        let hard_state = HardState::default();
        let snapshot = WalSnapshot::default();
        let mut buf = Vec::with_capacity(4096);
        header_block(&mut buf, seg, metadata, snapshot, &hard_state)?;
        let tmp = dir.join("create.tmp");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| WalError::io("create", &tmp, e))?;
        segment::preallocate(&f, opts.segment_size)
            .map_err(|e| WalError::io("preallocate", &tmp, e))?;
        f.write_all_at(&buf, 0)
            .map_err(|e| WalError::io("write", &tmp, e))?;
        if !opts.unsafe_no_fsync {
            f.sync_all().map_err(|e| WalError::io("fsync", &tmp, e))?;
        }
        let path = seg_path(dir, seg);
        fs::rename(&tmp, &path).map_err(|e| WalError::io("rename", &tmp, e))?;
        if !opts.unsafe_no_fsync {
            segment::sync_dir(dir).map_err(|e| WalError::io("fsync dir", dir, e))?;
        }
        let offset = buf.len() as u64;
        buf.clear();
        Ok(Wal {
            dir: dir.to_owned(),
            pipeline: Pipeline::new(dir, opts.segment_size),
            opts,
            segments: vec![seg],
            tail: f,
            offset,
            zeroed_to: offset,
            tail_has_payload: false,
            unsynced: false,
            poisoned: false,
            metadata: metadata.to_vec(),
            hard_state,
            snapshot,
            last_index: 0,
            buf,
            _lock: lock,
        })
    }

    /// Opens the WAL for appending after replaying it from the snapshot marker `snap` (which
    /// must be recorded in the WAL; `WalSnapshot::default()` for a WAL that still has its first
    /// segment). Repairs a torn tail in the last segment (see the module docs).
    pub fn open(
        dir: &Path,
        snap: WalSnapshot,
        opts: WalOptions,
    ) -> Result<(Wal, ReplayState), WalError> {
        if !dir.is_dir() {
            return Err(WalError::NotFound(dir.to_owned()));
        }
        let lock = segment::lock_dir(dir)?;
        segment::remove_tmp_files(dir)?;
        let segments = segment::list_segments(dir)?;
        if segments.is_empty() {
            return Err(WalError::NotFound(dir.to_owned()));
        }
        let start = segments
            .iter()
            .rposition(|s| s.first_index <= snap.index.saturating_add(1))
            .ok_or_else(|| WalError::IndexReleased {
                index: snap.index,
                oldest: segments[0].file_name(),
                first_index: segments[0].first_index,
            })?;

        let mut r = Replay::new(snap);
        let mut buf = Vec::new();
        let mut tail_end = None;
        for (i, &seg) in segments.iter().enumerate().skip(start) {
            let path = seg_path(dir, seg);
            segment::read_segment(&path, &mut buf)?;
            let last = i + 1 == segments.len();
            let end = r.segment(&buf, seg, last)?;
            if last {
                tail_end = Some(end);
            }
        }
        let end = tail_end.expect("last segment scanned");
        let state = r.finish()?;

        let tail_seg = *segments.last().unwrap();
        let tail_path = seg_path(dir, tail_seg);
        let tail = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tail_path)
            .map_err(|e| WalError::io("open", &tail_path, e))?;
        if let Some((from, to)) = end.torn {
            tracing::warn!(
                file = %tail_seg.file_name(),
                offset = from,
                bytes = to - from,
                reason = end.torn_reason,
                "wal: zeroing torn tail"
            );
            let zeros = vec![0u8; to - from];
            tail.write_all_at(&zeros, from as u64)
                .map_err(|e| WalError::io("zero torn tail", &tail_path, e))?;
            if !opts.unsafe_no_fsync {
                tail.sync_data()
                    .map_err(|e| WalError::io("fsync", &tail_path, e))?;
            }
        }
        if (buf.len() as u64) < opts.segment_size {
            // The tail was truncated by a cut that did not complete: preallocate it again.
            segment::preallocate(&tail, opts.segment_size)
                .map_err(|e| WalError::io("preallocate", &tail_path, e))?;
            if !opts.unsafe_no_fsync {
                tail.sync_all()
                    .map_err(|e| WalError::io("fsync", &tail_path, e))?;
            }
        }
        buf.clear();
        buf.shrink_to(64 * 1024);

        let wal = Wal {
            dir: dir.to_owned(),
            pipeline: Pipeline::new(dir, opts.segment_size),
            opts,
            segments,
            tail,
            offset: end.end as u64,
            zeroed_to: end.end as u64,
            tail_has_payload: end.records > HEADER_RECORDS,
            unsynced: false,
            poisoned: false,
            metadata: state.metadata.clone(),
            hard_state: state.hard_state.clone(),
            snapshot: r.latest_marker,
            last_index: r.last_index,
            buf,
            _lock: lock,
        };
        Ok((wal, state))
    }

    /// Lists the snapshot markers recorded in the WAL at `dir` whose index is at or below the
    /// last saved commit index (etcd's `ValidSnapshotEntries`), ascending and without
    /// duplicates, leaving out markers whose segments were released. Includes the initial
    /// `(0, 0)` marker while the first segment exists.
    /// Reads without locking and without repairing; a torn tail is tolerated.
    pub fn valid_snapshot_markers(dir: &Path) -> Result<Vec<WalSnapshot>, WalError> {
        let segments = segment::list_segments(dir)?;
        if segments.is_empty() {
            return Err(WalError::NotFound(dir.to_owned()));
        }
        let mut markers = Vec::new();
        let mut hs = HardState::default();
        let mut buf = Vec::new();
        for (i, &seg) in segments.iter().enumerate() {
            let path = seg_path(dir, seg);
            segment::read_segment(&path, &mut buf)?;
            let file = seg.file_name();
            segment::scan(&buf, seg, i + 1 == segments.len(), |ty, p, off| {
                match ty {
                    T_SNAPSHOT => markers.push(
                        record::get_snapshot(p)
                            .ok_or_else(|| malformed(&file, off, "snapshot marker"))?,
                    ),
                    T_HARD_STATE => {
                        hs = record::get_hard_state(p)
                            .ok_or_else(|| malformed(&file, off, "hard state"))?
                    }
                    _ => {}
                }
                Ok(())
            })?;
        }
        // Usable markers: committed, and still replayable (a segment that can hold the entries
        // after it remains; `Wal::open` uses the same rule).
        markers.retain(|m| {
            m.index <= hs.commit
                && segments
                    .iter()
                    .any(|s| s.first_index <= m.index.saturating_add(1))
        });
        markers.sort_unstable();
        markers.dedup();
        Ok(markers)
    }

    /// Appends `entries` and then `hard_state` (if given) as records with one write, followed
    /// by one `fdatasync` if `sync`. Does nothing if there is nothing to write (except syncing
    /// earlier unsynced writes when `sync` is set).
    pub fn save(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
        sync: bool,
    ) -> Result<(), WalError> {
        self.check()?;
        if hard_state.is_none() && entries.is_empty() {
            return if sync { self.sync() } else { Ok(()) };
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut res = Ok(());
        for e in entries {
            res = append_frame(&mut buf, T_ENTRY, |b| record::put_entry(b, e));
            if res.is_err() {
                break;
            }
        }
        if let (Some(hs), Ok(())) = (hard_state, res) {
            res = append_frame(&mut buf, T_HARD_STATE, |b| record::put_hard_state(b, hs));
        }
        let res = match res {
            Ok(()) => self.append(&buf, sync),
            Err(n) => Err(WalError::RecordTooLarge(n)),
        };
        if buf.capacity() > 8 << 20 {
            // Do not pin the memory of one huge batch forever.
            buf.clear();
            buf.shrink_to(1 << 20);
        }
        self.buf = buf;
        res?;
        if let Some(e) = entries.last() {
            self.last_index = e.index;
        }
        if let Some(hs) = hard_state {
            self.hard_state.clone_from(hs);
        }
        Ok(())
    }

    /// Records a snapshot marker and fsyncs it. After this, the WAL can be opened from `snap`.
    pub fn save_snapshot(&mut self, snap: WalSnapshot) -> Result<(), WalError> {
        self.check()?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        append_frame(&mut buf, T_SNAPSHOT, |b| record::put_snapshot(b, snap))
            .expect("small record");
        let res = self.append(&buf, true);
        self.buf = buf;
        res?;
        if snap.index >= self.snapshot.index {
            self.snapshot = snap;
        }
        self.last_index = self.last_index.max(snap.index);
        Ok(())
    }

    /// Deletes whole segments that only hold entries below `index`: every segment before the
    /// last one whose `first_index <= index`. That segment (which may contain `index`), the
    /// ones after it and the tail are kept, so the WAL can still be replayed from any snapshot
    /// marker at or above `index`. Call it with an index at or below a snapshot that is durable
    /// both as a snapshot file and as a WAL marker.
    pub fn release_to(&mut self, index: u64) -> Result<(), WalError> {
        self.check()?;
        let keep_from = self
            .segments
            .iter()
            .rposition(|s| s.first_index <= index)
            .unwrap_or(0);
        let mut removed = 0;
        let mut res = Ok(());
        for seg in &self.segments[..keep_from] {
            let path = seg_path(&self.dir, *seg);
            if let Err(e) = fs::remove_file(&path) {
                res = Err(WalError::io("remove", path, e));
                break;
            }
            removed += 1;
        }
        self.segments.drain(..removed);
        if removed > 0 && !self.opts.unsafe_no_fsync {
            segment::sync_dir(&self.dir).map_err(|e| WalError::io("fsync dir", &self.dir, e))?;
        }
        res
    }

    /// fdatasyncs writes made with `sync = false`. No-op if there are none.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check()?;
        if !self.unsynced {
            return Ok(());
        }
        let r = self.sync_tail();
        self.poison_on_err(r)
    }

    /// Index of the last entry written (or of the latest snapshot marker, if higher).
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check(&self) -> Result<(), WalError> {
        if self.poisoned {
            Err(WalError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison_on_err<T>(&mut self, r: Result<T, WalError>) -> Result<T, WalError> {
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    /// Writes `buf` (whole records) at the tail, cutting first if it does not fit.
    fn append(&mut self, buf: &[u8], sync: bool) -> Result<(), WalError> {
        let r = self.append_inner(buf, sync);
        self.poison_on_err(r)
    }

    fn append_inner(&mut self, buf: &[u8], sync: bool) -> Result<(), WalError> {
        self.pipeline.ensure_started();
        if self.tail_has_payload && self.offset + buf.len() as u64 > self.opts.segment_size {
            self.cut()?;
        }
        // Robustness builds: a disk that is full (ENOSPC) when the log is written.
        fail::fail_point!("walWriteError", |_| Err(WalError::io(
            "write",
            self.tail_path(),
            std::io::Error::from_raw_os_error(libc::ENOSPC)
        )));
        self.tail
            .write_all_at(buf, self.offset)
            .map_err(|e| WalError::io("write", self.tail_path(), e))?;
        self.offset += buf.len() as u64;
        chorus_metrics::WAL_WRITE_BYTES.add(buf.len() as u64);
        self.tail_has_payload = true;
        self.unsynced = true;
        if sync {
            self.sync_tail()?;
        }
        self.zero_ahead();
        Ok(())
    }

    /// Keeps written zeros ahead of the log end. A segment is preallocated with `fallocate`,
    /// which on ext4 and XFS leaves *unwritten* extents: the first write into each block then
    /// converts an extent, and the fdatasync after it has to write that metadata (through
    /// the journal, where there is one) as well as the data (on this project's test VM: p50 0.15 ms
    /// instead of 0.10 ms, p99 2.5 ms instead of 0.2 ms). So once the log end comes within
    /// half of [`ZERO_AHEAD`] of the zeroed part, the next `ZERO_AHEAD` bytes get zeros
    /// written and their write-back started without waiting: one conversion per MiB of log,
    /// off the path of the appends' own syncs. The bytes past the log end are zero already
    /// (the repair rule guarantees it), so this never changes what a replay reads; a crash
    /// during it leaves zeros or unwritten extents, which read as zeros too. Failure only
    /// costs speed: it is logged and zeroing stops for this segment.
    fn zero_ahead(&mut self) {
        let size = self.opts.segment_size;
        if self.opts.unsafe_no_fsync
            || self.zeroed_to >= size
            || self.offset + ZERO_AHEAD / 2 <= self.zeroed_to
        {
            return;
        }
        // The block holding the log end is already written; start at the next one.
        let from = self.zeroed_to.max(self.offset.next_multiple_of(4096));
        let to = (from + ZERO_AHEAD).min(size);
        if from >= to {
            self.zeroed_to = size;
            return;
        }
        let zeros = ZEROS.get_or_init(|| vec![0u8; ZERO_AHEAD as usize]);
        let r = self
            .tail
            .write_all_at(&zeros[..(to - from) as usize], from)
            .and_then(|()| start_writeback(&self.tail, from, to - from));
        match r {
            Ok(()) => self.zeroed_to = to,
            Err(e) => {
                tracing::warn!(file = %self.tail_path().display(), error = %e, "wal: cannot write zeros ahead of the log end");
                self.zeroed_to = size;
            }
        }
    }

    fn sync_tail(&mut self) -> Result<(), WalError> {
        fail::fail_point!("walBeforeFdatasync");
        // Robustness builds: a disk that fails the sync (EIO). The WAL is poisoned after
        // it (never retried as if it had worked) and the member stops.
        fail::fail_point!("walFdatasyncError", |_| Err(WalError::io(
            "fdatasync",
            self.tail_path(),
            std::io::Error::from_raw_os_error(libc::EIO)
        )));
        if !self.opts.unsafe_no_fsync {
            let started = std::time::Instant::now();
            self.tail
                .sync_data()
                .map_err(|e| WalError::io("fdatasync", self.tail_path(), e))?;
            let took = started.elapsed();
            warn_if_slow_sync(took);
            chorus_metrics::WAL_FSYNC_SECONDS.observe_duration(took);
        }
        fail::fail_point!("walAfterFdatasync");
        self.unsynced = false;
        Ok(())
    }

    fn tail_path(&self) -> PathBuf {
        seg_path(&self.dir, *self.segments.last().unwrap())
    }

    /// Finishes the tail and switches to a new, self-contained segment.
    fn cut(&mut self) -> Result<(), WalError> {
        let old = self.tail_path();
        self.tail
            .set_len(self.offset)
            .map_err(|e| WalError::io("truncate", &old, e))?;
        if !self.opts.unsafe_no_fsync {
            self.tail
                .sync_all()
                .map_err(|e| WalError::io("fsync", &old, e))?;
        }
        self.unsynced = false;

        let seg = SegName {
            seq: self.segments.last().unwrap().seq + 1,
            first_index: self.last_index + 1,
        };
        let (tmp, f) = self
            .pipeline
            .take()
            .map_err(|e| WalError::io("prepare segment in", &self.dir, e))?;
        let mut header = Vec::with_capacity(256 + self.metadata.len());
        header_block(
            &mut header,
            seg,
            &self.metadata,
            self.snapshot,
            &self.hard_state,
        )?;
        f.write_all_at(&header, 0)
            .map_err(|e| WalError::io("write", &tmp, e))?;
        if !self.opts.unsafe_no_fsync {
            f.sync_data().map_err(|e| WalError::io("fsync", &tmp, e))?;
        }
        let path = seg_path(&self.dir, seg);
        fs::rename(&tmp, &path).map_err(|e| WalError::io("rename", &tmp, e))?;
        if !self.opts.unsafe_no_fsync {
            segment::sync_dir(&self.dir).map_err(|e| WalError::io("fsync dir", &self.dir, e))?;
        }
        self.segments.push(seg);
        self.tail = f;
        self.offset = header.len() as u64;
        self.zeroed_to = self.offset;
        self.tail_has_payload = false;
        tracing::debug!(segment = %seg.file_name(), "wal: cut new segment");
        Ok(())
    }
}

/// How far ahead of the log end [`Wal::zero_ahead`] writes zeros.
const ZERO_AHEAD: u64 = 1 << 20;

static ZEROS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Starts write-back of `len` bytes at `offset` without waiting for it.
fn start_writeback(f: &File, offset: u64, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: sync_file_range on a valid, owned descriptor with in-range arguments.
        let r = unsafe {
            libc::sync_file_range(
                f.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, offset, len);
    Ok(())
}

/// Encodes the records every segment starts with.
fn header_block(
    buf: &mut Vec<u8>,
    seg: SegName,
    metadata: &[u8],
    snap: WalSnapshot,
    hs: &HardState,
) -> Result<(), WalError> {
    append_frame(buf, T_SEGMENT, |b| {
        record::put_segment(b, seg.seq, seg.first_index)
    })
    .expect("small record");
    append_frame(buf, T_METADATA, |b| b.extend_from_slice(metadata))
        .map_err(WalError::RecordTooLarge)?;
    append_frame(buf, T_SNAPSHOT, |b| record::put_snapshot(b, snap)).expect("small record");
    append_frame(buf, T_HARD_STATE, |b| record::put_hard_state(b, hs)).expect("small record");
    Ok(())
}

fn malformed(file: &str, offset: u64, what: &str) -> WalError {
    WalError::corrupt(file, offset, format!("malformed {what} record"))
}

/// Replay state machine over the segments' records.
struct Replay {
    snap: WalSnapshot,
    found_snap: bool,
    latest_marker: WalSnapshot,
    metadata: Option<Vec<u8>>,
    hard_state: HardState,
    entries: Vec<Entry>,
    last_index: u64,
}

impl Replay {
    fn new(snap: WalSnapshot) -> Replay {
        Replay {
            snap,
            found_snap: false,
            latest_marker: WalSnapshot::default(),
            metadata: None,
            hard_state: HardState::default(),
            entries: Vec::new(),
            last_index: 0,
        }
    }

    fn segment(
        &mut self,
        buf: &[u8],
        seg: SegName,
        last: bool,
    ) -> Result<segment::ScanEnd, WalError> {
        let file = seg.file_name();
        self.last_index = seg.first_index.saturating_sub(1);
        segment::scan(buf, seg, last, |ty, p, off| self.record(ty, p, &file, off))
    }

    fn record(&mut self, ty: u8, p: &[u8], file: &str, off: u64) -> Result<(), WalError> {
        match ty {
            T_ENTRY => {
                let index = record::entry_index(p).ok_or_else(|| malformed(file, off, "entry"))?;
                self.last_index = index;
                if index <= self.snap.index {
                    // Rewrites the log at or below the snapshot: everything read so far after
                    // the snapshot was superseded.
                    self.entries.clear();
                    return Ok(());
                }
                let pos = index - self.snap.index - 1;
                if pos > self.entries.len() as u64 {
                    return Err(WalError::EntryGap {
                        file: file.to_owned(),
                        offset: off,
                        index,
                        expected: self.snap.index + 1 + self.entries.len() as u64,
                    });
                }
                let e = record::get_entry(p).ok_or_else(|| malformed(file, off, "entry"))?;
                self.entries.truncate(pos as usize);
                self.entries.push(e);
            }
            T_HARD_STATE => {
                self.hard_state =
                    record::get_hard_state(p).ok_or_else(|| malformed(file, off, "hard state"))?;
            }
            T_SNAPSHOT => {
                let s = record::get_snapshot(p).ok_or_else(|| malformed(file, off, "snapshot"))?;
                if s.index == self.snap.index {
                    if s.term != self.snap.term {
                        return Err(WalError::SnapshotMismatch {
                            index: s.index,
                            expected: self.snap.term,
                            found: s.term,
                        });
                    }
                    self.found_snap = true;
                }
                if s.index >= self.latest_marker.index {
                    self.latest_marker = s;
                }
                self.last_index = self.last_index.max(s.index);
            }
            T_METADATA => match &self.metadata {
                None => self.metadata = Some(p.to_vec()),
                Some(m) if m.as_slice() == p => {}
                Some(_) => {
                    return Err(WalError::MetadataConflict {
                        file: file.to_owned(),
                        offset: off,
                    })
                }
            },
            _ => unreachable!("scan only yields known record types"),
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ReplayState, WalError> {
        if !self.found_snap {
            return Err(WalError::SnapshotNotFound {
                index: self.snap.index,
                term: self.snap.term,
            });
        }
        Ok(ReplayState {
            metadata: self.metadata.take().unwrap_or_default(),
            hard_state: std::mem::take(&mut self.hard_state),
            entries: std::mem::take(&mut self.entries),
        })
    }
}

/// etcd's `warnSyncDuration`: an fdatasync slower than this is logged.
const WARN_SYNC_DURATION: std::time::Duration = std::time::Duration::from_secs(1);

/// etcd's "slow fdatasync" warning (same message, fields and threshold): the disk is too
/// slow for the heartbeat and election timeouts the cluster runs with.
fn warn_if_slow_sync(took: std::time::Duration) {
    if took > WARN_SYNC_DURATION {
        tracing::warn!(
            took = %chorus_log::GoDuration(took),
            expected_duration = %chorus_log::GoDuration(WARN_SYNC_DURATION),
            "slow fdatasync"
        );
    }
}
