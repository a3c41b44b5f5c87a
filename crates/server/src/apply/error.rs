//! Failures apply cannot skip: the state machine may not leave an entry out, so the
//! member stops (as etcd panics) and a restart re-applies from the consistent index.

use std::path::PathBuf;

use chorus_storage::backend::BackendError;
use chorus_storage::mvcc::MvccError;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("backend: {0}")]
    Mvcc(#[from] MvccError),
    #[error("entry {index}: {source}")]
    Decode {
        index: u64,
        source: prost::DecodeError,
    },
    /// A backend failure inside a request (reported by the KV code as an internal error).
    #[error("{0}")]
    Request(String),
    #[error("switch backend to {path}: {source}")]
    SwitchBackend {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("backend commit: {0}")]
    Commit(String),
    #[error("defragment: {0}")]
    Defragment(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {
        $(impl From<$t> for ApplyError {
            fn from(e: $t) -> Self {
                ApplyError::Backend(BackendError::from(e))
            }
        })*
    };
}

from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

impl ApplyError {
    /// As a backend error, for callers that only report it (a failed defragment).
    pub fn into_backend(self) -> BackendError {
        match self {
            ApplyError::Backend(e) | ApplyError::Mvcc(MvccError::Backend(e)) => e,
            other => BackendError::Io(std::io::Error::other(other.to_string())),
        }
    }
}
