//! Errors of the WAL reader.

use std::path::PathBuf;

/// A WAL could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O call failed.
    #[error("{file}: {op}: {source}")]
    Io {
        /// The file or directory.
        file: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The directory has no `.wal` segment.
    #[error("{dir}: no WAL segment (%016x-%016x.wal)")]
    NoSegments {
        /// The directory.
        dir: PathBuf,
    },
    /// Segment sequence numbers are not consecutive.
    #[error("{file}: sequence {found} follows {previous}: a WAL segment is missing")]
    SequenceGap {
        /// The segment out of sequence.
        file: PathBuf,
        /// Its sequence number.
        found: u64,
        /// The previous segment's.
        previous: u64,
    },
    /// A record is damaged (somewhere other than a torn tail of the last segment).
    #[error("{file} at offset {offset}: {what}")]
    Corrupt {
        /// The segment.
        file: PathBuf,
        /// Byte offset of the record's length word.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A record's CRC does not match the rolling CRC.
    #[error("{file} at offset {offset}: CRC mismatch: record says {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The segment.
        file: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The CRC in the record.
        stored: u32,
        /// The rolling CRC computed.
        computed: u32,
    },
    /// Two metadata records differ.
    #[error("{file} at offset {offset}: metadata differs from the WAL's first metadata record")]
    MetadataConflict {
        /// The segment.
        file: PathBuf,
        /// Byte offset of the record.
        offset: u64,
    },
    /// An entry's index leaves a gap after the entries read so far.
    #[error("{file} at offset {offset}: entry {index} follows entry {last}: entries are missing")]
    EntryGap {
        /// The segment.
        file: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The entry's index.
        index: u64,
        /// The last index read.
        last: u64,
    },
    /// No segment can hold the start snapshot, or no snapshot record matches it.
    #[error("{dir}: the WAL has no snapshot record at index {index} term {term}")]
    SnapshotNotFound {
        /// The WAL directory.
        dir: PathBuf,
        /// The snapshot index asked for.
        index: u64,
        /// Its term.
        term: u64,
    },
}
