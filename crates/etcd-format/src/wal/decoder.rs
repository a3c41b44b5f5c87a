//! Decoding WAL segments into records, and etcd's `ReadAll` on top.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use prost::Message;

use super::error::WalError;
use super::{CRC_TYPE, ENTRY_TYPE, METADATA_TYPE, SNAPSHOT_TYPE, STATE_TYPE};
use crate::proto::etcdserverpb_raft::Metadata;
use crate::proto::raftpb::{Entry, HardState};
use crate::proto::walpb;

/// etcd's sector size for torn-write detection.
const SECTOR_SIZE: u64 = 512;
/// Size of the length word before each record.
const FRAME_SIZE: u64 = 8;

/// One WAL segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its path.
    pub path: PathBuf,
    /// Sequence number (first half of the name).
    pub seq: u64,
    /// Raft index of the first entry it may hold (second half of the name).
    pub index: u64,
}

/// Where a torn write at the end of the last segment cut the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub file: PathBuf,
    /// Offset just past the last valid record (where etcd would truncate).
    pub offset: u64,
    /// What was found there.
    pub reason: String,
}

/// A decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum WalRecord {
    /// etcd's metadata: node and cluster IDs.
    Metadata(Metadata),
    /// A raft entry.
    Entry(Entry),
    /// Raft hard state.
    State(HardState),
    /// The CRC carried over from the previous segment.
    Crc(u32),
    /// A snapshot marker.
    Snapshot(walpb::Snapshot),
}

/// Lists the `.wal` segments of `dir` in order, checking that sequence numbers are
/// consecutive. Other files are ignored, as etcd ignores them.
pub fn list_segments(dir: impl AsRef<Path>) -> Result<Vec<Segment>, WalError> {
    let dir = dir.as_ref();
    let io = |op, source| WalError::Io {
        file: dir.to_path_buf(),
        op,
        source,
    };
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io("read dir", e))? {
        let entry = entry.map_err(|e| io("read dir", e))?;
        let name = entry.file_name();
        if let Some((seq, index)) = parse_segment_name(&name.to_string_lossy()) {
            segments.push(Segment {
                path: entry.path(),
                seq,
                index,
            });
        }
    }
    segments.sort_by_key(|s| s.seq);
    if segments.is_empty() {
        return Err(WalError::NoSegments {
            dir: dir.to_path_buf(),
        });
    }
    for pair in segments.windows(2) {
        if pair[1].seq != pair[0].seq + 1 {
            return Err(WalError::SequenceGap {
                file: pair[1].path.clone(),
                found: pair[1].seq,
                previous: pair[0].seq,
            });
        }
    }
    Ok(segments)
}

/// Parses `%016x-%016x.wal`.
fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (seq, index) = stem.split_once('-')?;
    if seq.len() != 16 || index.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(seq, 16).ok()?,
        u64::from_str_radix(index, 16).ok()?,
    ))
}

/// Reads records from segments in order, checking framing and the rolling CRC. Yields
/// `(segment path, offset, record)`. After an error, or a torn tail (see
/// [`WalDecoder::torn_tail`]), it ends.
pub struct WalDecoder {
    segments: Vec<Segment>,
    current: usize,
    /// The open segment and its length.
    file: Option<(File, u64)>,
    offset: u64,
    crc: u32,
    torn: Option<TornTail>,
    done: bool,
}

impl WalDecoder {
    /// A decoder over `segments` (from [`list_segments`], possibly a suffix of them).
    pub fn new(segments: Vec<Segment>) -> WalDecoder {
        WalDecoder {
            segments,
            current: 0,
            file: None,
            offset: 0,
            crc: 0,
            torn: None,
            done: false,
        }
    }

    /// Where the log was cut by a torn write, once the decoder has ended there.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }

    /// The rolling CRC after the last record read.
    pub fn last_crc(&self) -> u32 {
        self.crc
    }

    fn path(&self) -> PathBuf {
        self.segments[self.current].path.clone()
    }

    fn is_last(&self) -> bool {
        self.current + 1 == self.segments.len()
    }

    /// Next record, `Ok(None)` at the end of the log.
    fn step(&mut self) -> Result<Option<(PathBuf, u64, WalRecord)>, WalError> {
        loop {
            if self.current >= self.segments.len() {
                return Ok(None);
            }
            if self.file.is_none() {
                self.open_segment()?;
            }
            match self.frame()? {
                Some((start, rec)) => return Ok(Some((self.path(), start, rec))),
                None if self.torn.is_some() => return Ok(None),
                None => {
                    self.current += 1;
                    self.file = None;
                }
            }
        }
    }

    fn open_segment(&mut self) -> Result<(), WalError> {
        let path = self.path();
        let io = |op, source| WalError::Io {
            file: path.clone(),
            op,
            source,
        };
        let file = File::open(&path).map_err(|e| io("open", e))?;
        let len = file.metadata().map_err(|e| io("stat", e))?.len();
        self.file = Some((file, len));
        self.offset = 0;
        Ok(())
    }

    /// Reads `len` bytes at `offset` of the open segment (the caller checked the bounds).
    fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, WalError> {
        let (file, _) = self.file.as_ref().expect("an open segment");
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, offset)
            .map_err(|source| WalError::Io {
                file: self.path(),
                op: "read",
                source,
            })?;
        Ok(buf)
    }

    /// Decodes the record at `self.offset` of the open segment; `None` at its end (or at a
    /// torn tail, which is then recorded). Reads one record at a time: memory is bounded by
    /// the largest record, which is bounded by the file size.
    fn frame(&mut self) -> Result<Option<(u64, WalRecord)>, WalError> {
        let start = self.offset;
        let len = self.file.as_ref().expect("an open segment").1;
        if start == len {
            return Ok(None);
        }
        if len - start < FRAME_SIZE {
            return self
                .damaged(
                    start,
                    &[],
                    format!("{} bytes left, less than a length word", len - start),
                )
                .map(|_| None);
        }
        let word = self.read_at(start, FRAME_SIZE)?;
        let word = i64::from_le_bytes(word.try_into().expect("8 bytes"));
        if word == 0 {
            return Ok(None);
        }
        let (rec_bytes, pad) = decode_frame_size(word);
        let body = start + FRAME_SIZE;
        if rec_bytes.checked_add(pad).is_none_or(|n| n > len - body) {
            let what = format!(
                "record of {rec_bytes}+{pad} bytes runs past the end of the file ({len} bytes)"
            );
            return self.damaged(start, &[], what).map(|_| None);
        }
        let end = body + rec_bytes + pad;
        let framed = self.read_at(body, rec_bytes + pad)?;
        let record = match walpb::Record::decode(&framed[..rec_bytes as usize]) {
            Ok(r) => r,
            Err(e) => {
                return self
                    .damaged(start, &framed, format!("not a walpb.Record: {e}"))
                    .map(|_| None)
            }
        };
        if !self.check_crc(start, &framed, &record)? {
            return Ok(None);
        }
        self.offset = end;
        let decoded = self.decode_record(start, record)?;
        Ok(Some((start, decoded)))
    }

    /// Applies the rolling CRC; `false` when the record is a torn tail.
    fn check_crc(
        &mut self,
        start: u64,
        framed: &[u8],
        record: &walpb::Record,
    ) -> Result<bool, WalError> {
        if record.r#type == CRC_TYPE {
            if self.crc != 0 && record.crc != self.crc {
                return Err(WalError::CrcMismatch {
                    file: self.path(),
                    offset: start,
                    stored: record.crc,
                    computed: self.crc,
                });
            }
            self.crc = record.crc;
            return Ok(true);
        }
        let computed = crc32c::crc32c_append(self.crc, &record.data);
        if computed != record.crc {
            if self.is_last() && is_torn(start + FRAME_SIZE, framed) {
                self.record_torn(
                    start,
                    "record with zeroed sectors and a bad CRC (torn write)".into(),
                );
                return Ok(false);
            }
            return Err(WalError::CrcMismatch {
                file: self.path(),
                offset: start,
                stored: record.crc,
                computed,
            });
        }
        self.crc = computed;
        Ok(true)
    }

    /// A damaged frame: a torn tail if in the last segment and etcd would see it as one,
    /// else an error.
    fn damaged(&mut self, start: u64, framed: &[u8], what: String) -> Result<(), WalError> {
        // etcd: short reads are io.ErrUnexpectedEOF (torn); a record that does not decode is
        // torn only if one of its sectors is all zeros.
        let torn = framed.is_empty() || is_torn(start + FRAME_SIZE, framed);
        if self.is_last() && torn {
            self.record_torn(start, what);
            return Ok(());
        }
        Err(WalError::Corrupt {
            file: self.path(),
            offset: start,
            what,
        })
    }

    fn record_torn(&mut self, offset: u64, reason: String) {
        self.torn = Some(TornTail {
            file: self.path(),
            offset,
            reason,
        });
    }

    fn decode_record(&self, start: u64, record: walpb::Record) -> Result<WalRecord, WalError> {
        let corrupt = |what: String| WalError::Corrupt {
            file: self.path(),
            offset: start,
            what,
        };
        let data = record.data.as_slice();
        let bad = |name: &str, e: prost::DecodeError| {
            corrupt(format!("{name} record does not decode: {e}"))
        };
        Ok(match record.r#type {
            METADATA_TYPE => {
                WalRecord::Metadata(Metadata::decode(data).map_err(|e| bad("metadata", e))?)
            }
            ENTRY_TYPE => WalRecord::Entry(Entry::decode(data).map_err(|e| bad("entry", e))?),
            STATE_TYPE => WalRecord::State(HardState::decode(data).map_err(|e| bad("state", e))?),
            CRC_TYPE => WalRecord::Crc(record.crc),
            SNAPSHOT_TYPE => {
                WalRecord::Snapshot(walpb::Snapshot::decode(data).map_err(|e| bad("snapshot", e))?)
            }
            t => return Err(corrupt(format!("unexpected record type {t}"))),
        })
    }
}

impl Iterator for WalDecoder {
    type Item = Result<(PathBuf, u64, WalRecord), WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Splits etcd's length word: low 56 bits the record size; if the top bit is set, bits 56-58
/// the padding.
fn decode_frame_size(word: i64) -> (u64, u64) {
    let rec_bytes = (word as u64) & !(0xffu64 << 56);
    let pad = if word < 0 {
        ((word as u64) >> 56) & 0x7
    } else {
        0
    };
    (rec_bytes, pad)
}

/// etcd's `isTornEntry`: some 512-byte sector of the record (split at file-offset sector
/// boundaries from `file_off`) is all zeros.
fn is_torn(mut file_off: u64, data: &[u8]) -> bool {
    let mut cur = 0usize;
    while cur < data.len() {
        let chunk = ((SECTOR_SIZE - file_off % SECTOR_SIZE) as usize).min(data.len() - cur);
        if data[cur..cur + chunk].iter().all(|&b| b == 0) {
            return true;
        }
        file_off += chunk as u64;
        cur += chunk;
    }
    false
}

/// What [`read_all`] found: etcd's `WAL.ReadAll`.
#[derive(Debug, Clone, Default)]
pub struct WalContents {
    /// The metadata record (the same in every segment).
    pub metadata: Option<Metadata>,
    /// The last hard state.
    pub hard_state: Option<HardState>,
    /// Entries after the start snapshot, later writes of an index replacing earlier ones.
    pub entries: Vec<Entry>,
    /// Snapshot markers seen.
    pub snapshots: Vec<walpb::Snapshot>,
    /// Where a torn write ended the log, if one did.
    pub torn_tail: Option<TornTail>,
    /// The segments read.
    pub segments: Vec<Segment>,
}

/// Reads the WAL in `dir` as etcd's `ReadAll` does. With `start` (a snapshot's index and
/// term), reading begins at the last segment whose first index is `<= start.0`, entries up to
/// the snapshot are skipped and a snapshot record matching it must exist; without, every
/// segment is read and entries start at the first one.
pub fn read_all(dir: impl AsRef<Path>, start: Option<(u64, u64)>) -> Result<WalContents, WalError> {
    let dir = dir.as_ref();
    let mut segments = list_segments(dir)?;
    if let Some((index, term)) = start {
        let from = segments.iter().rposition(|s| s.index <= index);
        let from = from.ok_or(WalError::SnapshotNotFound {
            dir: dir.to_path_buf(),
            index,
            term,
        })?;
        segments.drain(..from);
    }
    let mut out = WalContents {
        segments: segments.clone(),
        ..Default::default()
    };
    let mut decoder = WalDecoder::new(segments);
    let mut base = start.map(|(index, _)| index);
    let mut matched = start.is_none();
    for item in decoder.by_ref() {
        let (file, offset, record) = item?;
        match record {
            WalRecord::Entry(e) => push_entry(&mut out.entries, &mut base, e, &file, offset)?,
            WalRecord::State(s) => out.hard_state = Some(s),
            WalRecord::Metadata(m) => {
                if out.metadata.as_ref().is_some_and(|old| *old != m) {
                    return Err(WalError::MetadataConflict { file, offset });
                }
                out.metadata = Some(m);
            }
            WalRecord::Snapshot(s) => {
                matched |= start.is_some_and(|(index, term)| s.index == index && s.term == term);
                out.snapshots.push(s);
            }
            WalRecord::Crc(_) => {}
        }
    }
    out.torn_tail = decoder.torn_tail().cloned();
    if let (false, Some((index, term))) = (matched, start) {
        return Err(WalError::SnapshotNotFound {
            dir: dir.to_path_buf(),
            index,
            term,
        });
    }
    Ok(out)
}

/// etcd's rule: an entry at index i replaces everything from i on.
fn push_entry(
    entries: &mut Vec<Entry>,
    base: &mut Option<u64>,
    e: Entry,
    file: &Path,
    offset: u64,
) -> Result<(), WalError> {
    let b = *base.get_or_insert(e.index.saturating_sub(1));
    if e.index <= b {
        return Ok(());
    }
    let pos = e.index - b - 1;
    if pos > entries.len() as u64 {
        let last = b + entries.len() as u64;
        return Err(WalError::EntryGap {
            file: file.to_path_buf(),
            offset,
            index: e.index,
            last,
        });
    }
    entries.truncate(pos as usize);
    entries.push(e);
    Ok(())
}
