//! What this member answers on the peer port (see `peer::PeerHandler`): only what it can
//! answer itself, never forwarded again.

use chorus_api::etcdserverpb::{LeaseTimeToLiveRequest, LeaseTimeToLiveResponse};
use chorus_api::internalpb::Member as MemberRecord;

use super::Member;
use crate::error::EtcdError;
use crate::peer::PeerHandler;

impl PeerHandler for Member {
    async fn renew_here(&self, id: i64) -> Result<i64, EtcdError> {
        if !self.lessor.lock().is_primary() {
            return Err(EtcdError::NotLeader);
        }
        // The follower that forwards this may have applied the grant before the leader
        // did: a lease the leader does not know yet (or any, with FastLeaseKeepAlive
        // off) is renewed once everything committed is applied here (as the local path).
        if self.renew_waits_for_apply(id) {
            self.wait_applied_commit().await?;
        }
        self.lessor.lock().renew(id)
    }

    async fn time_to_live_here(
        &self,
        req: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, EtcdError> {
        if !self.lessor.lock().is_primary() {
            return Err(EtcdError::NotLeader);
        }
        self.wait_applied_commit().await?;
        self.local_time_to_live(&req)
            .unwrap_or(Err(EtcdError::NotLeader))
    }

    fn members(&self) -> Result<(Vec<MemberRecord>, Vec<u64>), EtcdError> {
        let members = self.cluster().members.values().cloned().collect();
        let removed = chorus_storage::members::removed_ids(self.kv().backend())
            .map_err(|e| EtcdError::Internal(e.to_string()))?;
        Ok((members, removed))
    }

    fn hash_kv_here(
        &self,
        revision: i64,
        compaction: bool,
    ) -> Result<chorus_api::etcdserverpb::HashKvResponse, EtcdError> {
        if compaction {
            self.compaction_hash(revision)
        } else {
            self.local_hash_kv(revision)
        }
    }

    fn cluster_version(&self) -> Option<String> {
        Member::cluster_version(self).map(|v| v.to_semver())
    }

    async fn promote_here(&self, id: u64) -> Result<Vec<MemberRecord>, EtcdError> {
        if !self.is_leader() {
            // Never forward twice: the caller retries against the new leader.
            return Err(EtcdError::NotLeader);
        }
        self.promote(id).await
    }
}
