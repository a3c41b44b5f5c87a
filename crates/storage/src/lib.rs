//! chorus storage: the raft write-ahead log ([`wal`]) and snapshot files ([`snap`]).

pub mod snap;
pub mod wal;
