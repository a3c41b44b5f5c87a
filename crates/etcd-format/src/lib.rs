//! etcd's on-disk formats, read and written without etcd: the foundation for importing etcd
//! data directories and snapshots into chorus and for writing etcd-format snapshots.
//!
//! Layouts are those of etcd 3.3 to 3.7 (bbolt 1.3/1.4, WAL and snap formats unchanged since
//! etcd 3.0). Every input is treated as untrusted: damage gives a typed error naming the file
//! and the page or offset, never a panic, and no allocation exceeds what the file's size
//! justifies.
//!
//! ```text
//!  member/snap/db, snapshot.db                      member/wal/*.wal          member/snap/*.snap
//!  ───────────────────────────                      ────────────────          ──────────────────
//!  bbolt pages        (bbolt::Db, BoltWriter)       frames + rolling CRC      snappb.Snapshot + CRC
//!   meta 0/1 ─▶ root bucket ─▶ branch/leaf pages     (wal::WalDecoder)         (snap::read_snap_file)
//!        │         (+ overflow, inline buckets)             │                         │
//!        ▼                                                  ▼                         ▼
//!  buckets            (bbolt::Bucket, Cursor)        walpb.Record              raftpb.Snapshot
//!   key, meta, lease, members, cluster,               metadata │ entry │ state   data = v2 store
//!   auth*, alarm                                       crc │ snapshot            JSON (snap::V2Store)
//!        │                                                  │
//!        ▼                                                  ▼
//!  etcd schema        (backend::Backend,             raftpb.Entry (wal::read_all: etcd's ReadAll)
//!   RevisionEntry {rev, tombstone, KeyValue},               │
//!   MetaInfo, leasepb.Lease, Member, AuthInfo,              ▼
//!   AlarmMember; BackendWriter + SHA-256 trailer     InternalRaftRequest │ v2 Request │ ConfChange
//!                                                     (entry::decode_entry)
//! ```
//!
//! Modules: [`bbolt`] (pages and buckets), [`backend`] (etcd's buckets as typed values),
//! [`wal`], [`snap`], [`entry`] (raft entry payloads), [`proto`] (etcd's on-disk protobuf
//! messages that `chorus_api` lacks).

pub mod backend;
pub mod bbolt;
pub mod entry;
pub mod gotime;
pub mod proto;
pub mod snap;
pub mod wal;
