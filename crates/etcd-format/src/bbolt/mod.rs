//! bbolt, the B+tree file format of etcd's backend (`member/snap/db`): a reader for existing
//! files (including `etcdctl snapshot save` files with their SHA-256 trailer) and a streaming
//! writer of fresh, compact files.
//!
//! ```text
//! page 0, 1: meta (the valid one with the higher txid is in force)
//!        └─ root bucket ─▶ branch/leaf pages ─▶ leaf elements
//!                                                 ├─ key = value
//!                                                 └─ key = bucket header ─▶ its own tree
//!                                                                 (or an inline leaf page)
//! ```

mod error;
pub mod page;
mod reader;
mod writer;

pub use error::BoltError;
pub use reader::{Bucket, Cursor, Db, Entry, WalkStats, MAX_TREE_DEPTH, SHA256_TRAILER_LEN};
pub use writer::{BoltWriter, WriteSummary, MAX_KEY_SIZE, MAX_VALUE_SIZE, PAGE_SIZE};

#[cfg(test)]
mod tests;
