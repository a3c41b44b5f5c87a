//! Errors of the backend schema layer.

use std::path::PathBuf;

use crate::bbolt::BoltError;

/// An etcd backend could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The bbolt layer failed.
    #[error(transparent)]
    Bolt(#[from] BoltError),
    /// A `key` bucket key is not a revision.
    #[error("{file}: bucket \"key\": key {key} is not a revision (8-byte main, '_', 8-byte sub, optional 't')")]
    BadRevisionKey {
        /// The file.
        file: PathBuf,
        /// The key, in hex.
        key: String,
    },
    /// A protobuf value does not decode.
    #[error("{file}: bucket {bucket:?} key {key}: not a valid {message}: {source}")]
    Protobuf {
        /// The file.
        file: PathBuf,
        /// The bucket.
        bucket: &'static str,
        /// The key, printable or hex.
        key: String,
        /// The expected message type.
        message: &'static str,
        /// Why.
        source: prost::DecodeError,
    },
    /// A JSON value does not parse.
    #[error("{file}: bucket {bucket:?} key {key}: not valid {what} JSON: {source}")]
    Json {
        /// The file.
        file: PathBuf,
        /// The bucket.
        bucket: &'static str,
        /// The key.
        key: String,
        /// What the JSON should be.
        what: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// A value has the wrong size or form.
    #[error("{file}: bucket {bucket:?} key {key}: {what}")]
    BadValue {
        /// The file.
        file: PathBuf,
        /// The bucket.
        bucket: &'static str,
        /// The key.
        key: String,
        /// What is wrong.
        what: String,
    },
    /// The writer was used out of order.
    #[error("{file}: {what}")]
    Misuse {
        /// The file.
        file: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// Appending the SHA-256 trailer failed.
    #[error("{file}: {op}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A key for messages: the text if it is printable ASCII, else hex.
pub(crate) fn show_key(key: &[u8]) -> String {
    if !key.is_empty() && key.iter().all(|c| c.is_ascii_graphic()) {
        format!("{:?}", String::from_utf8_lossy(key))
    } else {
        hex(key)
    }
}

/// Lowercase hex.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}
