//! Everything the apply thread changes, named one by one: it holds no handle to the
//! member, only to the stores and the channels through which the rest hears about it.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::result::ApplyResult;
use crate::alarm::Alarms;
use crate::kv::KvSlot;
use crate::lease::Lessor;
use crate::mailbox::Sender;
use crate::membership::SharedCluster;
use crate::raft::RaftInput;
use crate::v2::V2Store;
use crate::wait::Wait;
use crate::watch::WatchHub;

/// What apply tells the peer transport: members to connect to or forget, and snapshots
/// to send (implemented by `peer::PeerTransport`).
pub trait PeerLinks: Send + Sync {
    fn add_peer(&self, id: u64, urls: &[String]);
    fn remove_peer(&self, id: u64);
    /// Streams a snapshot message with the backend as of `tx` to its recipient.
    fn send_snapshot(&self, msg: raft::eraftpb::Message, tx: redb::ReadTransaction);
}

/// Progress apply publishes for waiters elsewhere.
pub struct ApplyProgress {
    /// The index of the last applied entry.
    pub applied: watch::Sender<u64>,
    /// The last compaction that finished in the backend.
    pub compacted: watch::Sender<i64>,
    /// Set once this member applied its own removal from the cluster.
    pub removed: watch::Sender<bool>,
}

/// The apply thread's view of the member: exactly what it mutates.
pub struct ApplyContext {
    pub member_id: u64,
    pub cluster_id: u64,
    pub kv: Arc<KvSlot>,
    pub lessor: Arc<Mutex<Lessor>>,
    pub cluster: Arc<SharedCluster>,
    pub alarms: Arc<RwLock<Alarms>>,
    pub v2: Arc<RwLock<V2Store>>,
    pub watch_hub: Arc<WatchHub>,
    pub auth: Arc<chorus_auth::AuthStore>,
    /// Proposers waiting for their request's result.
    pub waiters: Arc<Wait<ApplyResult>>,
    pub progress: ApplyProgress,
    /// Back to raft: "snapshot the log here".
    pub raft: Sender<RaftInput>,
    pub peers: Arc<dyn PeerLinks>,
    /// A reloaded primary lessor extends every lease by this (one election timeout).
    pub election_timeout: Duration,
}
