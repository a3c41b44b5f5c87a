//! etcd's write-ahead log (`member/wal/%016x-%016x.wal`, sequence-index): framing, records,
//! the rolling CRC, torn tails.
//!
//! ```text
//! segment: record* then zeros (preallocated)
//! record:  length u64 LE | walpb.Record {type, crc, data} | 0-7 padding bytes
//!          (length's top bit set: its low 56 bits are the size, bits 56-58 the padding)
//! crc:     CRC-32C of data, chained from record to record and segment to segment; each
//!          segment starts with a crc record carrying the previous segment's last CRC
//! types:   1 metadata (etcdserverpb.Metadata), 2 entry (raftpb.Entry), 3 state
//!          (raftpb.HardState), 4 crc, 5 snapshot (walpb.Snapshot)
//! ```
//!
//! As in etcd, a partially written record at the end of the last segment (a torn write) ends
//! the log: reading stops at the last valid record and reports where ([`TornTail`]). The same
//! damage anywhere else is an error naming the file and offset.

mod decoder;
mod error;

pub use decoder::{list_segments, read_all, Segment, TornTail, WalContents, WalDecoder, WalRecord};
pub use error::WalError;

/// Record type: etcd's metadata (node and cluster IDs).
pub const METADATA_TYPE: i64 = 1;
/// Record type: a raft entry.
pub const ENTRY_TYPE: i64 = 2;
/// Record type: raft hard state.
pub const STATE_TYPE: i64 = 3;
/// Record type: the CRC so far, at the start of each segment.
pub const CRC_TYPE: i64 = 4;
/// Record type: a snapshot marker.
pub const SNAPSHOT_TYPE: i64 = 5;

#[cfg(test)]
mod tests;
