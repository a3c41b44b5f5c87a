use std::io;
use std::path::PathBuf;

/// Errors returned by the WAL. Corruption errors name the segment file and the byte offset.
#[derive(thiserror::Error, Debug)]
pub enum WalError {
    /// An I/O operation failed.
    #[error("wal: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record is damaged and could not be treated as a torn tail.
    #[error("wal: {reason} in {file} at offset {offset}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    /// Another `Wal` (in this or another process) holds the directory lock.
    #[error("wal: directory {} is locked by another process (lock file {})", dir.display(), lock.display())]
    Locked { dir: PathBuf, lock: PathBuf },
    /// `create` was called on a directory that already holds a WAL.
    #[error("wal: {} already contains a WAL", .0.display())]
    AlreadyExists(PathBuf),
    /// `open` was called on a directory without WAL segments.
    #[error("wal: no WAL segments in {}", .0.display())]
    NotFound(PathBuf),
    /// The segment files on disk do not form a valid sequence.
    #[error("wal: bad segment set in {}: {reason}", dir.display())]
    BadSegments { dir: PathBuf, reason: String },
    /// No remaining segment can hold the entries after the requested snapshot
    /// (older segments were released).
    #[error("wal: no segment covers index {index} (oldest segment {oldest} starts at index {first_index})")]
    IndexReleased {
        index: u64,
        oldest: String,
        first_index: u64,
    },
    /// The snapshot marker to replay from is not recorded in the WAL.
    #[error("wal: snapshot marker index {index} term {term} not found")]
    SnapshotNotFound { index: u64, term: u64 },
    /// The WAL records a marker at the index but with another term.
    #[error("wal: snapshot marker at index {index} has term {found}, expected {expected}")]
    SnapshotMismatch {
        index: u64,
        expected: u64,
        found: u64,
    },
    /// Segments carry different metadata.
    #[error("wal: metadata in {file} at offset {offset} conflicts with earlier metadata")]
    MetadataConflict { file: String, offset: u64 },
    /// An entry leaves a gap after the replayed prefix.
    #[error("wal: entry {index} in {file} at offset {offset} leaves a gap (expected at most {expected})")]
    EntryGap {
        file: String,
        offset: u64,
        index: u64,
        expected: u64,
    },
    /// A single record's payload exceeds the 32-bit length field.
    #[error("wal: record of {0} bytes is too large")]
    RecordTooLarge(usize),
    /// An earlier write or sync failed; the on-disk state is unknown, so the WAL refuses further
    /// work. Drop it and reopen (which replays and repairs).
    #[error("wal: an earlier write or sync failed; reopen the WAL")]
    Poisoned,
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WalError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> Self {
        WalError::Corrupt {
            file: file.to_owned(),
            offset,
            reason: reason.into(),
        }
    }
}
