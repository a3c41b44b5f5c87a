//! chorus storage: everything that touches the disk, with no networking.
//!
//! ```text
//!   raft loop ──► wal/  segments, CRC per record, group commit ──► fdatasync
//!        └──────► snap  raft snapshot metadata files (<term>-<index>.snap)
//!   apply ──────► mvcc/ key index in memory, revisions ──► backend (redb: member/snap/db)
//! ```

pub mod backend;
pub mod members;
pub mod mvcc;
pub mod snap;
pub mod wal;
