//! The appliers, layered as etcd layers its `applierV3`: each rule that can refuse or
//! change a request wraps the one below it in a small file of its own.
//!
//! ```text
//!   entry ─▶ Corrupt (CORRUPT: refuse every write)
//!        ─▶ Capped (NOSPACE: refuse what adds data)
//!        ─▶ Guarded (auth: the proposer's user may do this; auth requests applied here)
//!        ─▶ Core (kv, lease, compaction, members, alarms, v2)
//! ```
//! A layer answers a request with `Ok(result)` (which goes to the proposer, errors
//! included) or fails with an [`ApplyError`] the member cannot survive.

use chorus_api::internalpb::internal_request::Request;
use chorus_api::internalpb::RequestHeader;
use chorus_storage::mvcc::WriteBatch;

use super::error::ApplyError;
use super::result::ApplyResult;
use crate::membership::Cluster;

/// What one batch of entries writes into, and the effects collected on the way that the
/// apply loop acts on once the batch is in the backend.
pub struct Batch<'a, 't, 'txn> {
    pub tx: &'txn redb::WriteTransaction,
    pub kv: &'a mut WriteBatch<'t, 'txn>,
    pub effects: &'a mut Effects,
}

#[derive(Default)]
pub struct Effects {
    /// Compactions to run once the batch committed.
    pub compactions: Vec<i64>,
    /// The membership as the batch changed it (cloned from the shared one on the first
    /// change).
    pub cluster: Option<Cluster>,
    /// This member applied its own removal.
    pub removed_self: bool,
    /// The v2 store changed (saved with the next commit).
    pub v2_changed: bool,
    /// Users, roles or the auth switch changed: the batch commits before it answers, so
    /// that a login right after `user add` finds the user (password checks read the
    /// committed backend, outside the apply thread).
    pub auth_changed: bool,
}

impl Effects {
    /// The membership this batch changes, starting from `current`.
    pub fn cluster(&mut self, current: impl FnOnce() -> Cluster) -> &mut Cluster {
        self.cluster.get_or_insert_with(current)
    }
}

/// Where a request sits in the log and who proposed it (user and auth revision).
pub struct Origin<'a> {
    pub index: u64,
    pub header: &'a RequestHeader,
}

/// One layer of the applier.
pub trait Apply: Send {
    fn apply(
        &mut self,
        batch: &mut Batch<'_, '_, '_>,
        origin: &Origin<'_>,
        req: Request,
    ) -> Result<ApplyResult, ApplyError>;
}

/// The request's name in logs (never its contents: auth requests carry secrets).
pub fn request_kind(r: &chorus_api::internalpb::internal_request::Request) -> &'static str {
    use chorus_api::internalpb::internal_request::Request;
    match r {
        Request::Put(_) => "put",
        Request::DeleteRange(_) => "delete_range",
        Request::Txn(_) => "txn",
        Request::Compaction(_) => "compaction",
        Request::LeaseGrant(_) => "lease_grant",
        Request::LeaseRevoke(_) => "lease_revoke",
        Request::LeaseCheckpoint(_) => "lease_checkpoint",
        Request::Alarm(_) => "alarm",
        Request::MemberAttributes(_) => "member_attributes",
        Request::MemberPeerUrls(_) => "member_peer_urls",
        Request::V2(_) => "v2",
        Request::DowngradeInfoSet(_) => "downgrade_info_set",
        Request::ClusterVersionSet(_) => "cluster_version_set",
        _ => "auth",
    }
}
