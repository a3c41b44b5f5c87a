//! Writes: every change goes through raft as an `InternalRequest` and the proposer waits
//! for its result from the apply thread. Each kind of request has a typed call here, so
//! handlers get their response type back and never see the apply result enum.

use std::sync::Arc;

use chorus_api::etcdserverpb::{
    alarm_request::AlarmAction, AlarmRequest, AlarmResponse, AlarmType, CompactionRequest,
    CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest,
    LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse, PutRequest, PutResponse,
    TxnRequest, TxnResponse,
};
use chorus_api::internalpb::{internal_request::Request, InternalRequest, RequestHeader};
use prost::Message as _;

use super::{backpressure, Member, Who};
use crate::apply::{reply, Applied, Reply};
use crate::error::EtcdError;
use crate::raft::RaftInput;

impl Member {
    /// Put through raft; the header names this member. (Like etcd's quotaKVServer, the
    /// adapter checks the quota first: [`Member::check_quota`].)
    pub async fn put(&self, who: Who<'_>, r: PutRequest) -> Result<PutResponse, EtcdError> {
        let mut resp: PutResponse = self.propose_as(who, Request::Put(r)).await?;
        self.fill_header(&mut resp.header);
        Ok(resp)
    }

    pub async fn delete_range(
        &self,
        who: Who<'_>,
        r: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, EtcdError> {
        let mut resp: DeleteRangeResponse = self.propose_as(who, Request::DeleteRange(r)).await?;
        self.fill_header(&mut resp.header);
        Ok(resp)
    }

    /// A txn that may write (read-only ones are served locally by the KV adapter).
    pub async fn txn(&self, who: Who<'_>, r: TxnRequest) -> Result<TxnResponse, EtcdError> {
        let mut resp: TxnResponse = self.propose_as(who, Request::Txn(r)).await?;
        self.fill_header(&mut resp.header);
        Ok(resp)
    }

    /// Schedules a compaction; with `physical`, waits until the backend finished it.
    pub async fn compact(
        &self,
        who: Who<'_>,
        r: CompactionRequest,
    ) -> Result<CompactionResponse, EtcdError> {
        // etcd lets anyone compact; chorus asks for an authenticated user (see
        // docs/security.md).
        self.require_auth(who)?;
        let (rev, physical) = (r.revision, r.physical);
        let mut resp: CompactionResponse = self.propose_as(who, Request::Compaction(r)).await?;
        if physical {
            self.wait_compacted(rev).await?;
        }
        self.fill_header(&mut resp.header);
        Ok(resp)
    }

    /// Grants a lease; a zero ID gets a cluster-unique positive one, as etcd picks it.
    /// (The adapter checks the quota first.)
    pub async fn lease_grant(
        &self,
        who: Who<'_>,
        mut r: LeaseGrantRequest,
    ) -> Result<LeaseGrantResponse, EtcdError> {
        self.require_auth(who)?;
        if r.id == 0 {
            r.id = (self.next_id() & (i64::MAX as u64)) as i64;
        }
        let mut resp: LeaseGrantResponse = self.propose_as(who, Request::LeaseGrant(r)).await?;
        self.fill_header(&mut resp.header);
        Ok(resp)
    }

    pub async fn lease_revoke(
        &self,
        who: Who<'_>,
        r: LeaseRevokeRequest,
    ) -> Result<LeaseRevokeResponse, EtcdError> {
        self.require_auth(who)?;
        let mut resp: LeaseRevokeResponse = self.propose_as(who, Request::LeaseRevoke(r)).await?;
        self.fill_header(&mut resp.header);
        Ok(resp)
    }

    /// Raises, disarms or lists alarms (the response as apply made it).
    pub async fn alarm(&self, who: Who<'_>, r: AlarmRequest) -> Result<AlarmResponse, EtcdError> {
        // Anyone authenticated may list alarms; only an admin raises or disarms one
        // (GHSA-q8m4-xhhv-38mg).
        if r.action == AlarmAction::Get as i32 {
            self.require_auth(who)?;
        } else {
            self.check_admin(who)?;
        }
        self.propose_as(who, Request::Alarm(r)).await
    }

    /// A v2 keys API write (or quorum read); `None` for the leader's expiry sync.
    pub async fn v2(
        &self,
        r: chorus_api::internalpb::V2Request,
    ) -> Result<Result<Option<crate::v2::Event>, crate::v2::V2Error>, EtcdError> {
        self.propose_as(None, Request::V2(r)).await
    }

    /// Publishes this member's name and client URLs through raft (etcd's publish) at every
    /// start, changed or not, as etcd does (each takes a v2 index), retrying until it is
    /// committed or the member stops.
    pub async fn publish(&self, client_urls: Vec<String>) {
        let attrs = chorus_api::internalpb::MemberAttributes {
            member_id: self.id,
            name: self.name.clone(),
            client_urls,
        };
        for attempt in 0..u32::MAX {
            if self.is_stopping() {
                return;
            }
            match self
                .propose_as::<()>(None, Request::MemberAttributes(attrs.clone()))
                .await
            {
                Ok(()) => return self.log_published(&attrs),
                Err(e) => {
                    if attempt % 10 == 0 {
                        tracing::warn!("failed to publish member attributes: {e}");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// etcd's line once the member's attributes are in the cluster (server.go's publish),
    /// also when a restarted member finds them there already.
    fn log_published(&self, attrs: &chorus_api::internalpb::MemberAttributes) {
        tracing::info!(
            local_member_id = %format!("{:x}", self.id),
            local_member_attributes = %format!(
                "{{Name:{} ClientURLs:[{}]}}",
                attrs.name,
                attrs.client_urls.join(" ")
            ),
            request_path = %format!("/0/members/{:x}/attributes", self.id),
            cluster_id = %format!("{:x}", self.cluster_id),
            publish_timeout = %chorus_log::GoDuration(self.limits.request_timeout),
            "published local member to cluster through raft"
        );
    }

    /// etcd's quota check before a write that adds data: when the backend would grow past
    /// the quota, raise the NOSPACE alarm (through raft, in the background) and refuse.
    pub fn check_quota(self: &Arc<Self>, cost: u64) -> Result<(), EtcdError> {
        let size = self.kv().backend().quota_size();
        if crate::alarm::fits(size, cost, self.limits.quota) {
            return Ok(());
        }
        let member = self.clone();
        tokio::spawn(async move {
            let req = AlarmRequest {
                action: AlarmAction::Activate as i32,
                member_id: member.id,
                alarm: AlarmType::Nospace as i32,
            };
            // The member raises it itself, as root once auth is on.
            let root = member.root_identity();
            if let Err(e) = member.alarm(root.as_ref(), req).await {
                tracing::warn!("failed to raise the NOSPACE alarm: {e}");
            }
        });
        Err(EtcdError::NoSpace)
    }

    /// Replicates a request and converts what apply answered into the type `R`.
    pub(super) async fn propose_as<R: Reply>(
        &self,
        who: Who<'_>,
        request: Request,
    ) -> Result<R, EtcdError> {
        reply(self.propose(who, request).await?)
    }

    /// Encodes a proposal with a fresh request ID; refuses it if it is over
    /// `--max-request-bytes`.
    fn encode(&self, who: Who<'_>, request: Request) -> Result<(u64, Vec<u8>), EtcdError> {
        let id = self.ids.next();
        // etcd checks --max-request-bytes on v3 requests only; a v2 write is bounded by
        // the 10 MiB of its form alone.
        let limited = !matches!(request, Request::V2(_));
        let data = InternalRequest {
            header: Some(RequestHeader {
                id,
                username: who.map(|w| w.username.clone()).unwrap_or_default(),
                auth_revision: who.map_or(0, |w| w.revision),
            }),
            request: Some(request),
        }
        .encode_to_vec();
        if limited && data.len() > self.limits.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        Ok((id, data))
    }

    /// Replicates a command through raft and waits for the result of applying it.
    /// While there is no leader the proposal waits for one, until the request timeout.
    pub(super) async fn propose(
        &self,
        who: Who<'_>,
        request: Request,
    ) -> Result<Applied, EtcdError> {
        if self.is_stopping() {
            return Err(EtcdError::Stopped);
        }
        // etcd's backpressure: refuse new work while apply is far behind the log.
        let commit = self
            .status
            .commit
            .load(std::sync::atomic::Ordering::Acquire);
        let priority = self.limits.priority_request && backpressure::is_priority(&request);
        if backpressure::exceeds_request_limit(self.applied_index(), commit, priority) {
            return Err(EtcdError::TooManyRequests);
        }
        let (id, data) = self.encode(who, request)?;
        self.replicate(id, || RaftInput::Propose {
            id,
            data: data.clone(),
        })
        .await
    }

    /// Hands raft the input `make` builds (a proposal carrying request `id`) and waits for
    /// the apply thread to report on `id`; proposals raft drops for want of a leader are
    /// made again once there is one, until the request timeout.
    pub(super) async fn replicate(
        &self,
        id: u64,
        make: impl Fn() -> RaftInput,
    ) -> Result<Applied, EtcdError> {
        let _pending = PendingProposal::new();
        let outcome = self.replicate_until_applied(id, make).await;
        if outcome.is_err() {
            chorus_metrics::PROPOSALS_FAILED.inc();
        }
        // An applied request that failed (a key not found...) is not a failed proposal.
        outcome.and_then(|result| result)
    }

    /// [`Self::replicate`]'s loop: `Err` when the proposal itself failed, else the result of
    /// applying it.
    async fn replicate_until_applied(
        &self,
        id: u64,
        make: impl Fn() -> RaftInput,
    ) -> Result<Result<Applied, EtcdError>, EtcdError> {
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        loop {
            let rx = self.waiters.register(id);
            if self.raft_tx.send_when_room(make()).await.is_err() {
                self.waiters.cancel(id);
                return Err(EtcdError::Stopped);
            }
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(Err(EtcdError::ProposalDropped))) => self.wait_leader(deadline).await?,
                Ok(Ok(result)) => return Ok(result),
                Ok(Err(_)) => return Err(EtcdError::Stopped),
                Err(_) => {
                    self.waiters.cancel(id);
                    return Err(if self.status.leader() == raft::INVALID_ID {
                        EtcdError::TimeoutDueToLeaderFail
                    } else {
                        EtcdError::Timeout
                    });
                }
            }
        }
    }

    /// No leader (or a leader transfer) dropped a proposal: wait for a leader before it
    /// is made again.
    async fn wait_leader(&self, deadline: tokio::time::Instant) -> Result<(), EtcdError> {
        let mut leader = self.leader.clone();
        let has_leader = tokio::time::timeout_at(deadline, async {
            leader
                .wait_for(|l| *l != raft::INVALID_ID)
                .await
                .map(|_| ())
        })
        .await;
        match has_leader {
            Ok(Ok(_)) => {
                // Give the new leader's first entry a moment to land.
                tokio::task::yield_now().await;
                Ok(())
            }
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::Timeout),
        }
    }
}

/// Counts a proposal in `etcd_server_proposals_pending` while it lives (a request
/// cancelled by its client included).
struct PendingProposal;

impl PendingProposal {
    fn new() -> PendingProposal {
        chorus_metrics::PROPOSALS_PENDING.inc();
        PendingProposal
    }
}

impl Drop for PendingProposal {
    fn drop(&mut self) {
        chorus_metrics::PROPOSALS_PENDING.dec();
    }
}
