//! Why discovery failed, in etcd's words (`v2discovery` and `v3discovery` errors).

use crate::srv::SrvError;

/// Retries after a failed request before discovery gives up. etcd retries forever
/// (backing off 2, 4, ... 256 s); chorus gives up after these, with etcd's own
/// `discovery: too many retries`, so that a member whose discovery service is down exits
/// instead of hanging (docs/compatibility.md).
pub const MAX_RETRIES: u32 = 3;

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("discovery: invalid URL")]
    InvalidUrl,
    #[error("discovery: invalid peer URL")]
    InvalidPeerUrl,
    #[error("discovery: size key is bad")]
    BadSizeKey,
    #[error("discovery: size key not found")]
    SizeNotFound,
    #[error("discovery: found duplicate id")]
    DuplicateId,
    #[error("discovery: found duplicate name")]
    DuplicateName,
    #[error("discovery: cluster is full")]
    FullCluster,
    #[error("discovery: too many retries")]
    TooManyRetries,
    #[error("discovery: bad discovery endpoint")]
    BadDiscoveryEndpoint,
    /// A `--discovery` URL that cannot be used (Go's `url.Parse` or HTTP client wording).
    #[error("{0}")]
    Url(String),
    /// `--discovery-proxy` that cannot be parsed.
    #[error("invalid proxy address {0:?}: {1}")]
    Proxy(String, String),
    /// An error the v2 keys API answered (`100: Key not found (/_etcd) [3]`).
    #[error("{code}: {message} ({cause}) [{index}]")]
    Keys {
        code: u64,
        message: String,
        cause: String,
        index: u64,
    },
    /// The v3 client could not be built (bad TLS files, endpoints).
    #[error("{0}")]
    Client(#[from] chorus_client::Error),
    /// DNS SRV discovery found nothing.
    #[error(transparent)]
    Srv(Box<SrvError>),
}

impl From<SrvError> for DiscoveryError {
    fn from(e: SrvError) -> Self {
        DiscoveryError::Srv(Box::new(e))
    }
}

impl DiscoveryError {
    /// The v2 keys API's "Node exists" (etcd's `ErrorCodeNodeExist`).
    pub fn is_node_exist(&self) -> bool {
        matches!(self, DiscoveryError::Keys { code: 105, .. })
    }
}

/// A failed request that is worth retrying (the service unreachable or unhealthy): etcd's
/// `client.ClusterError` (v2) or a failed v3 call.
#[derive(Debug)]
pub(crate) struct Transient(pub String);

/// etcd's retry schedule: after the n-th failure, wait 2^n s (at most 2^8 s); give up
/// after [`MAX_RETRIES`].
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    retries: u32,
}

impl Backoff {
    /// Logs, waits and counts one retry; `Err(TooManyRetries)` once they are used up.
    pub(crate) async fn wait(&mut self, step: &str, cause: &str) -> Result<(), DiscoveryError> {
        if self.retries >= MAX_RETRIES {
            tracing::warn!(
                reason = step,
                error = cause,
                "giving up on the discovery service"
            );
            return Err(DiscoveryError::TooManyRetries);
        }
        self.retries += 1;
        let secs = 1u64 << self.retries.min(8);
        tracing::warn!(
            reason = step,
            error = cause,
            backoff = %format!("{secs}s"),
            "retry connecting to discovery service"
        );
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
        Ok(())
    }

    /// A successful exchange (v3 discovery starts counting again).
    pub(crate) fn reset(&mut self) {
        self.retries = 0;
    }
}
