//! The apply thread: turns committed raft entries into state, in log order.
//!
//! ```text
//!   ApplyTask::Entries ─► one redb write txn for the whole batch
//!                          entry <= consistent index: already in the backend, skipped
//!                          InternalRequest ─► appliers: Capped ─► Core   (chain.rs)
//!                          conf change ─► members.rs
//!                          consistent index + term recorded in the same txn
//!                         commit (fsync only every batch interval) ─► publish revision
//!                         ─► watchers ─► membership ─► wake the proposers ─► applied index
//!                         ─► maybe snapshot
//!   ApplyTask::SendSnapshot    leader: the backend as of the applied index goes to a peer
//!   ApplyTask::InstallSnapshot follower: switch to the backend received from the leader
//!   ApplyTask::DefragmentCopy  copy the backend without free pages on a thread of its
//!                              own while applying goes on                (backend.rs)
//!   ApplyTask::DefragmentSwitch catch the copy up and switch to it (apply waits)
//! ```
//! The thread sees the member only through its [`ApplyContext`]: the stores it writes
//! and the channels through which waiters hear about it.

mod alarm;
mod applier;
mod auth;
mod backend;
mod chain;
mod compaction;
mod context;
mod core;
mod corrupt;
mod error;
mod members;
mod quota;
mod result;
mod timing;
mod version;

pub use applier::{Applier, ApplyLimits};
pub use context::{ApplyContext, ApplyProgress, PeerLinks};
pub use error::ApplyError;
pub use result::{reply, Applied, ApplyResult, Reply};
pub use version::log_capabilities;
