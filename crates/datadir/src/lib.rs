//! Offline work on a member's data dir, without a running member: what etcd moved out of
//! etcdctl into `etcdutl`. `chorusctl snapshot status|restore` use it, and so does the
//! server when it bootstraps a new member or takes over an etcd member's data dir.
//!
//! ```text
//!   <data-dir>/member/
//!     wal/0000000000000000-0000000000000000.wal   metadata record: member, cluster, boot conf
//!     snap/<term>-<index>.snap                     raft snapshot metadata
//!     snap/db                                      the backend (redb)
//!     snap/<index>.snap.db                         a backend received from the leader
//!
//!   snapshot file (etcd's bbolt + SHA-256, or chorus's dump)
//!        ├──status──▶ hash, revision, total keys, total size (etcdutl's numbers)
//!        └──restore─▶ backend (import.rs) ──init_member──▶ members, cluster ID, WAL, .snap
//!
//!   chorus backend ──export.rs──▶ etcd's bbolt layout (Maintenance.Snapshot, ADR 0007)
//!
//!   etcd member dir (bbolt db + etcd WAL) ──takeover/──▶ chorus member dir, same member,
//!        cluster, membership, backend, and the WAL's entries past the consistent index
//!        translated to chorus's commands; etcd's files kept in member.etcd-backup-<time>
//! ```

pub mod etcd_snapshot;
pub mod export;
pub mod import;
pub mod layout;
pub mod member;
pub mod metadata;
pub mod snapshot;
pub mod takeover;

pub use member::{init_member, NewMember};

#[cfg(test)]
mod tests;
pub use metadata::WalMetadata;

/// Why a data dir could not be created or read.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot access data directory: {path}: {source}")]
    Access {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] chorus_config::ConfigError),
    #[error(transparent)]
    Backend(#[from] chorus_storage::backend::BackendError),
    #[error(transparent)]
    Wal(#[from] chorus_storage::wal::WalError),
    #[error(transparent)]
    Snap(#[from] chorus_storage::snap::SnapError),
}

/// Whether this chorus can run at cluster version `v` (`major.minor[.patch]`): not newer
/// than the etcd version it reports. A newer one found in etcd's files is not carried
/// over (the leader decides the version anew), where keeping it would stop every start
/// with etcd's "cluster cannot be downgraded".
pub fn cluster_version_supported(v: &str) -> bool {
    let major_minor = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (
        major_minor(v),
        major_minor(chorus_config::ETCD_COMPAT_VERSION),
    ) {
        (Some(found), Some(ours)) => found <= ours,
        _ => false,
    }
}
