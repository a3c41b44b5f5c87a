//! etcd's backend schema on top of bbolt (etcd's `server/storage/schema`, `mvcc` and `lease`):
//! the buckets of `member/snap/db` and of snapshot files, read as typed values
//! ([`Backend`]) and written from typed values ([`BackendWriter`]).
//!
//! | bucket | key | value |
//! |---|---|---|
//! | `key` | revision: 8-byte BE main, `_`, 8-byte BE sub, + `t` if a tombstone | `mvccpb.KeyValue` |
//! | `meta` | `consistent_index`, `term` (3.5+) | 8-byte BE u64 |
//! | `meta` | `scheduledCompactRev`, `finishedCompactRev` | a 17-byte revision |
//! | `meta` | `confState` (3.5+) | raftpb.ConfState as JSON |
//! | `meta` | `storageVersion` (3.6+) | `"3.6.0"` |
//! | `lease` | 8-byte BE lease ID | `leasepb.Lease` |
//! | `members` | member ID in hex | membership.Member as JSON |
//! | `members_removed` | member ID in hex | `removed` |
//! | `cluster` | `clusterVersion`, `downgrade` (3.5+) | `"3.5.0"`, JSON |
//! | `auth` | `authEnabled`, `authRevision` | `[1]`/`[0]`, 8-byte BE u64 |
//! | `authUsers`, `authRoles` | name | `authpb.User`, `authpb.Role` |
//! | `alarm` | marshalled `etcdserverpb.AlarmMember` | empty |

mod error;
mod reader;
mod types;
mod writer;

pub use error::BackendError;
pub use reader::{Backend, Revisions};
pub use types::{
    AuthInfo, ClusterInfo, ConfState, DowngradeInfo, Member, Membership, MetaInfo, Revision,
    RevisionEntry,
};
pub use writer::{append_sha256_trailer, rewrite, BackendWriter};

/// Bucket names, in the byte order bbolt keeps them.
pub mod buckets {
    /// Active alarms.
    pub const ALARM: &[u8] = b"alarm";
    /// Auth flags.
    pub const AUTH: &[u8] = b"auth";
    /// Roles.
    pub const AUTH_ROLES: &[u8] = b"authRoles";
    /// Users.
    pub const AUTH_USERS: &[u8] = b"authUsers";
    /// Cluster version and downgrade state.
    pub const CLUSTER: &[u8] = b"cluster";
    /// The MVCC key space, by revision.
    pub const KEY: &[u8] = b"key";
    /// Leases.
    pub const LEASE: &[u8] = b"lease";
    /// Members.
    pub const MEMBERS: &[u8] = b"members";
    /// Removed member IDs.
    pub const MEMBERS_REMOVED: &[u8] = b"members_removed";
    /// Consistent index, compaction, configuration, storage version.
    pub const META: &[u8] = b"meta";
}

/// Keys of the `meta`, `cluster` and `auth` buckets.
pub mod keys {
    /// `meta`: last applied raft index, 8-byte BE.
    pub const CONSISTENT_INDEX: &[u8] = b"consistent_index";
    /// `meta`: term of that index (3.5+), 8-byte BE.
    pub const TERM: &[u8] = b"term";
    /// `meta`: compaction revision scheduled, as a revision key.
    pub const SCHEDULED_COMPACT_REV: &[u8] = b"scheduledCompactRev";
    /// `meta`: compaction revision finished, as a revision key.
    pub const FINISHED_COMPACT_REV: &[u8] = b"finishedCompactRev";
    /// `meta`: raft configuration (3.5+), JSON.
    pub const CONF_STATE: &[u8] = b"confState";
    /// `meta`: storage version (3.6+).
    pub const STORAGE_VERSION: &[u8] = b"storageVersion";
    /// `cluster`: cluster version.
    pub const CLUSTER_VERSION: &[u8] = b"clusterVersion";
    /// `cluster`: downgrade info (3.5+), JSON.
    pub const DOWNGRADE: &[u8] = b"downgrade";
    /// `auth`: `[1]` when auth is enabled, `[0]` otherwise.
    pub const AUTH_ENABLED: &[u8] = b"authEnabled";
    /// `auth`: auth store revision, 8-byte BE.
    pub const AUTH_REVISION: &[u8] = b"authRevision";
}

#[cfg(test)]
mod tests;
