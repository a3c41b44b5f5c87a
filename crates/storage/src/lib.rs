//! chorus storage: everything that touches the disk, with no networking.
//!
//! ```text
//!   raft loop ──► wal/ (segments, CRC per record, group commit) ──► fdatasync
//!        │                                        
//!        └─► snap/ (raft snapshot metadata files)
//!   apply ────► mvcc/ (key index in memory, revisions) ──► backend (redb file member/snap/db)
//! ```

pub mod backend;
pub mod mvcc;
