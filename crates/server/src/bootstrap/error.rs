//! Why a member could not start.

/// Why a member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    DataDir(#[from] chorus_datadir::DataDirError),
    #[error(transparent)]
    Takeover(#[from] chorus_datadir::takeover::TakeoverError),
    #[error("{0}")]
    Config(#[from] chorus_config::ConfigError),
    #[error(transparent)]
    Bind(#[from] crate::net::BindError),
    #[error(transparent)]
    Backend(#[from] chorus_storage::backend::BackendError),
    #[error(transparent)]
    Mvcc(#[from] chorus_storage::mvcc::MvccError),
    #[error(transparent)]
    Wal(#[from] chorus_storage::wal::WalError),
    #[error(transparent)]
    Snap(#[from] chorus_storage::snap::SnapError),
    #[error(transparent)]
    Raft(#[from] crate::raft::NodeError),
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    #[error(transparent)]
    AuthOptions(#[from] chorus_auth::AuthOptionsError),
    #[error(transparent)]
    Auth(#[from] chorus_auth::AuthError),
    #[error("--memory-mlock: cannot lock the process's memory: {0}")]
    Mlock(std::io::Error),
    #[error("the member has been permanently removed from the cluster")]
    Removed,
    #[error("wal: metadata is not a chorus member record")]
    NotChorusWal,
    #[error(
        "backend consistent index {ci} is behind the snapshot at {index}: the db file does not match the WAL"
    )]
    BackendBehind { ci: u64, index: u64 },
    #[error("cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs ({0})")]
    NoClusterInfo(String),
    #[error("error validating peerURLs: no member of cluster {cluster_id:x} has the peer URLs {peer_urls} (add this member with `member add` before starting it with --initial-cluster-state=existing)")]
    NotAMember { cluster_id: u64, peer_urls: String },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
    #[error("--force-new-cluster: a conf change entry in the WAL does not decode: {0}")]
    ForceNewCluster(String),
    #[error(transparent)]
    V2Content(#[from] crate::v2::deprecation::DisallowedContent),
    /// `--discovery-srv` found no usable cluster (etcd's `PeerURLsMapAndToken` error).
    #[error("error setting up initial cluster: {0}")]
    InitialCluster(chorus_discovery::DiscoveryError),
    /// v2 or v3 discovery failed (etcd's `DiscoveryError{Op: "join"}`).
    #[error("failed to join discovery cluster ({0})")]
    Discovery(chorus_discovery::DiscoveryError),
    /// The discovered initial cluster does not parse.
    #[error("{0}")]
    DiscoveredCluster(String),
    #[error("discovery cluster {0} has duplicate url")]
    DiscoveredDuplicateUrl(String),
    #[error("raft thread panicked")]
    RaftPanicked,
    /// The cluster runs at a version this member cannot (`--next-cluster-version-compatible`
    /// tolerates one minor above its own).
    #[error(transparent)]
    Version(#[from] crate::cluster_version::rules::VersionError),
}
