//! etcd's on-disk protobuf messages that chorus-api lacks, compiled from `proto/` at build time.
//! Field names and numbers are etcd's. Each package is a module here because generated code
//! refers to other packages as `super::<package>::...`.

#![allow(
    missing_docs,
    clippy::doc_lazy_continuation,
    clippy::large_enum_variant
)]

/// `raftpb`: raft log entries, hard state, configuration and snapshots as etcd encodes them.
pub mod raftpb {
    include!(concat!(env!("OUT_DIR"), "/raftpb.rs"));
}

/// `walpb`: the WAL record envelope and the WAL snapshot marker.
pub mod walpb {
    include!(concat!(env!("OUT_DIR"), "/walpb.rs"));
}

/// `snappb`: the `.snap` file envelope.
pub mod snappb {
    include!(concat!(env!("OUT_DIR"), "/snappb.rs"));
}

/// `leasepb`: a lease in the backend's `lease` bucket.
pub mod leasepb {
    include!(concat!(env!("OUT_DIR"), "/leasepb.rs"));
}

/// `membershippb`: etcd 3.5+ membership requests.
pub mod membershippb {
    include!(concat!(env!("OUT_DIR"), "/membershippb.rs"));
}

/// etcd's `InternalRaftRequest`, v2 `Request` and WAL `Metadata` (package `etcdserverpb` in
/// etcd; renamed here so the client-facing messages come from chorus-api).
pub mod etcdserverpb_raft {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb_raft.rs"));
}
