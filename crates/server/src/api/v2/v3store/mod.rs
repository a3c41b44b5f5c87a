//! etcd's v2v3 store (`--experimental-enable-v2v3=<prefix>`, etcd 3.4 and 3.5): the v2
//! keys API served from the v3 keyspace, every node a v3 key under the prefix in etcd's
//! layout (`layout.rs`), reads as a txn and one prefix range per directory level (`read.rs`),
//! every write one v3 txn through the member (`write.rs`, requests built in `ops.rs`),
//! watches a v3 watch on the prefix (`watch.rs`); `store.rs` holds the member and layout.
//!
//! ```text
//!  /v2/keys handler ─ V2Request ─▶ V3Store::write ─ txn (compares + puts/deletes) ─▶ Member::txn
//!                   ─ GET ───────▶ V3Store::get ─── read txn / prefix ranges ───────▶ Member::read_txn
//!                   ─ wait=true ─▶ V3Store::watch ─ LocalWatch on <prefix> ─────────▶ WatchHub
//! ```
//!
//! As in etcd: indexes are v3 revisions minus one, TTLs are refused ("TTLs are
//! unsupported"), and the quirks of etcd's store are kept (a POSTed key is named after
//! Go's `time.Now().String()`, an update of a missing key is "Not a file").

mod layout;
mod ops;
mod read;
mod store;
mod watch;
mod write;

pub use layout::Layout;
pub use store::V3Store;
pub use watch::V3Watcher;
