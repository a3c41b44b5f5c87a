//! Leases: the leader's lessor is the only one that keeps time. Keep-alives and
//! time-to-live questions are answered there (forwarded from a follower, as etcd does),
//! and the leader expires leases and checkpoints remaining TTLs through raft.

use std::sync::Arc;
use std::time::Duration;

use chorus_api::etcdserverpb::{
    LeaseCheckpoint, LeaseCheckpointRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
};
use chorus_api::internalpb::internal_request::Request;

use super::{Member, Who};

/// What a caller does with a lease's keys.
enum LeaseAccess {
    Renew,
    TimeToLive,
}
use crate::error::EtcdError;

impl Member {
    /// Waits until this member applied what is committed now (a leader must know about
    /// every grant before it answers about leases).
    pub(super) async fn wait_applied_commit(&self) -> Result<(), EtcdError> {
        let commit = self
            .status
            .commit
            .load(std::sync::atomic::Ordering::Acquire);
        let mut applied = self.applied.clone();
        let wait = async { applied.wait_for(|a| *a >= commit).await.map(|_| ()) };
        match tokio::time::timeout(Duration::from_secs(1), wait).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::TimeoutWaitAppliedIndex),
        }
    }

    /// Whether the leader must apply everything committed before it renews lease `id`:
    /// always with `FastLeaseKeepAlive` off (etcd's `waitAppliedIndex`), and with it on
    /// only for a lease it does not know yet (its grant may still be on the way).
    pub(super) fn renew_waits_for_apply(&self, id: i64) -> bool {
        !self.limits.fast_lease_keep_alive || !self.lessor.lock().exists(id)
    }

    /// Runs `local` on the leader, or `remote` against the leader from a follower,
    /// waiting for a leader and retrying until the request timeout (etcd's lease
    /// forwarding). The leader first applies what is committed when `wait_first` says so.
    /// `local` answers `None` when this member just stopped leading.
    async fn on_leader<T, L, R, F>(
        &self,
        wait_first: impl Fn(&Self) -> bool,
        mut local: L,
        remote: R,
    ) -> Result<T, EtcdError>
    where
        L: FnMut(&Self) -> Option<Result<T, EtcdError>>,
        R: Fn(u64) -> F,
        F: std::future::Future<Output = Result<T, EtcdError>>,
    {
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        loop {
            if self.is_leader() {
                if wait_first(self) {
                    self.wait_applied_commit().await?;
                }
                if let Some(r) = local(self) {
                    return r;
                }
            }
            let leader = self.known_leader(deadline).await?;
            if leader != self.id {
                match remote(leader).await {
                    Err(EtcdError::Unavailable(_)) => {}
                    other => return other,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(EtcdError::Timeout);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The leader, once there is one (before the deadline).
    async fn known_leader(&self, deadline: tokio::time::Instant) -> Result<u64, EtcdError> {
        let mut leader_rx = self.leader.clone();
        let leader = tokio::time::timeout_at(deadline, async {
            leader_rx
                .wait_for(|l| *l != raft::INVALID_ID)
                .await
                .map(|l| *l)
        })
        .await;
        match leader {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::NoLeader),
        }
    }

    /// A lease keep-alive: renewed by the leader (forwarded there from a follower). With
    /// auth on, the caller must be allowed to write every key on the lease.
    pub async fn lease_renew(&self, who: Who<'_>, id: i64) -> Result<i64, EtcdError> {
        self.check_lease_keys(who, id, LeaseAccess::Renew)?;
        self.on_leader(
            |m| m.renew_waits_for_apply(id),
            |m| match m.lessor.lock().renew(id) {
                Err(EtcdError::NotLeader) => None,
                other => Some(other),
            },
            |leader| self.transport.lease_renew(leader, id),
        )
        .await
    }

    /// A lease's time to live as the leader's lessor knows it, if this member has it.
    pub(super) fn local_time_to_live(
        &self,
        req: &LeaseTimeToLiveRequest,
    ) -> Option<Result<LeaseTimeToLiveResponse, EtcdError>> {
        let lessor = self.lessor.lock();
        if !lessor.is_primary() {
            return None;
        }
        Some(match lessor.time_to_live(req.id, req.keys) {
            None => Err(EtcdError::LeaseNotFound),
            Some(info) => Ok(LeaseTimeToLiveResponse {
                header: None,
                id: req.id,
                ttl: info.remaining,
                granted_ttl: info.granted,
                keys: info.keys,
            }),
        })
    }

    /// A lease's time to live as the leader sees it. Only an authenticated caller, and
    /// one allowed to read every attached key if it asks for them (CVE-2023-32082).
    pub async fn lease_time_to_live(
        &self,
        who: Who<'_>,
        req: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, EtcdError> {
        self.require_auth(who)?;
        if req.keys {
            self.check_lease_keys(who, req.id, LeaseAccess::TimeToLive)?;
        }
        self.on_leader(
            |_| true,
            |m| m.local_time_to_live(&req),
            |leader| self.transport.lease_time_to_live(leader, req),
        )
        .await
    }

    /// The IDs of every lease this member knows; with auth on, the caller must be allowed
    /// to read every key attached to any of them.
    pub fn lease_ids(&self, who: Who<'_>) -> Result<Vec<i64>, EtcdError> {
        let ids = self.lessor.lock().leases();
        if self.auth.is_enabled() {
            let lessor = self.lessor.lock();
            let keys: Vec<Vec<u8>> = ids
                .iter()
                .flat_map(|id| lessor.keys(*id))
                .flatten()
                .collect();
            drop(lessor);
            self.auth
                .check_lease_leases(who, keys.iter().map(Vec::as_slice))?;
        }
        Ok(ids)
    }

    /// etcd's checkLeaseRenew / checkLeaseTimeToLive over the keys this member's lessor
    /// has attached to the lease.
    fn check_lease_keys(
        &self,
        who: Who<'_>,
        id: i64,
        access: LeaseAccess,
    ) -> Result<(), EtcdError> {
        if !self.auth.is_enabled() {
            return Ok(());
        }
        let keys = self.lessor.lock().keys(id).unwrap_or_default();
        let keys = keys.iter().map(Vec::as_slice);
        Ok(match access {
            LeaseAccess::Renew => self.auth.check_lease_renew(who, keys),
            LeaseAccess::TimeToLive => self.auth.check_lease_time_to_live(who, keys),
        }?)
    }

    /// The leader's lease duties, every 500 ms: start or stop the lease clocks when
    /// leadership changes, revoke expired leases, checkpoint remaining TTLs, expire v2
    /// TTL keys.
    pub(super) async fn lease_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut leader = self.leader.clone();
        let mut leading = false;
        loop {
            // A leadership change is handled at once (leases get their clocks when this
            // member starts leading), everything else every tick.
            tokio::select! {
                _ = tick.tick() => {}
                changed = leader.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    *self.leader_changed.lock() =
                        (std::time::Instant::now(), std::time::SystemTime::now());
                }
            }
            if self.is_stopping() {
                return;
            }
            leading = self.follow_leadership(leading);
            if leading {
                self.lease_duties();
            }
        }
    }

    /// Promotes or demotes the lessor when leadership changed; returns whether leading.
    fn follow_leadership(&self, was_leading: bool) -> bool {
        let leading = self.is_leader();
        if leading != was_leading {
            let mut lessor = self.lessor.lock();
            if leading {
                lessor.promote(self.limits.election_timeout);
            } else {
                lessor.demote();
            }
        }
        leading
    }

    /// One round of the leader's duties; each proposal runs on its own task.
    fn lease_duties(self: &Arc<Self>) {
        let (expired, checkpoints) = {
            let mut lessor = self.lessor.lock();
            (
                lessor.expired(500, Duration::from_secs(3)),
                lessor.due_checkpoints(1000),
            )
        };
        for id in expired {
            let member = self.clone();
            tokio::spawn(async move {
                // Expiry is the server's own act: it revokes as root (etcd's WithRoot).
                let root = member.root_identity();
                match member
                    .lease_revoke(root.as_ref(), LeaseRevokeRequest { id })
                    .await
                {
                    Ok(_) | Err(EtcdError::LeaseNotFound) => {}
                    Err(e) => {
                        tracing::warn!(lease = %format!("{id:x}"), "failed to revoke expired lease: {e}")
                    }
                }
            });
        }
        if self.v2.read().has_ttl_keys() {
            // The leader expires v2 TTL keys through raft, with its clock in the request.
            let member = self.clone();
            tokio::spawn(async move {
                let req = crate::v2::sync_request(std::time::SystemTime::now());
                let _ = member.v2(req).await;
            });
        }
        if !checkpoints.is_empty() {
            let req = LeaseCheckpointRequest {
                checkpoints: checkpoints
                    .into_iter()
                    .map(|(id, remaining_ttl)| LeaseCheckpoint { id, remaining_ttl })
                    .collect(),
            };
            let member = self.clone();
            tokio::spawn(async move {
                let r = member.propose(None, Request::LeaseCheckpoint(req)).await;
                if let Err(e) = r {
                    tracing::debug!("lease checkpoint not committed: {e}");
                }
            });
        }
    }
}
