//! Maintenance on the member itself: a consistent read of the backend (snapshots),
//! defragmentation, leader transfer, waiting for compactions; and the auto-compactor's
//! view of the member.

use std::time::Duration;

use chorus_api::etcdserverpb::CompactionRequest;
use chorus_storage::backend::BackendError;

use super::Member;
use crate::error::EtcdError;
use crate::raft::{ApplyTask, RaftInput, Switched};

/// Copies a defragment makes before giving up on a backend that snapshots from the
/// leader keep replacing.
const DEFRAGMENT_ATTEMPTS: usize = 3;

impl Member {
    /// Runs a task on the apply thread behind everything committed so far.
    async fn on_apply_thread<T>(
        &self,
        task: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, BackendError>>) -> ApplyTask,
    ) -> Result<T, EtcdError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.raft_tx
            .send(RaftInput::Apply(task(tx)))
            .map_err(|_| EtcdError::Stopped)?;
        rx.await
            .map_err(|_| EtcdError::Stopped)?
            .map_err(|e| EtcdError::Internal(e.to_string()))
    }

    /// A read transaction over everything applied (the backend committed first).
    pub async fn backend_snapshot(&self) -> Result<redb::ReadTransaction, EtcdError> {
        self.on_apply_thread(ApplyTask::ReadBackend).await
    }

    /// Rewrites this member's backend without free pages. The copy is written while
    /// applying goes on; applying waits only while the copy takes in what was applied
    /// meanwhile and replaces the backend. No compaction runs in between (it would
    /// delete records the copy holds).
    pub async fn defragment(&self) -> Result<(), EtcdError> {
        let _rewrites = self.kv.rewrites().lock().await;
        chorus_metrics::DEFRAG_INFLIGHT.set(1);
        let started = std::time::Instant::now();
        let r = async {
            // A snapshot from the leader may replace the backend during a copy (a member
            // catching up): the copy is then of the old one, and is made again.
            for _ in 0..DEFRAGMENT_ATTEMPTS {
                let copy = self.on_apply_thread(ApplyTask::DefragmentCopy).await?;
                let switched = self
                    .on_apply_thread(|reply| ApplyTask::DefragmentSwitch(copy, reply))
                    .await?;
                if switched == Switched::Done {
                    return Ok(());
                }
            }
            Err(EtcdError::Internal(format!(
                "defragment: snapshots from the leader replaced the backend during {DEFRAGMENT_ATTEMPTS} copies in a row; try again"
            )))
        }
        .await;
        chorus_metrics::BACKEND_DEFRAG_SECONDS.observe_duration(started.elapsed());
        chorus_metrics::DEFRAG_INFLIGHT.set(0);
        r
    }

    /// Waits (up to the request timeout) until the backend finished compacting at `rev`.
    pub(super) async fn wait_compacted(&self, rev: i64) -> Result<(), EtcdError> {
        let mut done = self.compacted.clone();
        let wait = async move { done.wait_for(|c| *c >= rev).await.map(|_| ()) };
        match tokio::time::timeout(self.limits.request_timeout, wait).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::Timeout),
        }
    }

    /// Maintenance.MoveLeader: only the leader may hand over, to a voting member; waits
    /// until the transferee leads.
    pub async fn move_leader(&self, target: u64) -> Result<(), EtcdError> {
        if !self.is_leader() {
            return Err(EtcdError::NotLeader);
        }
        let voter = self
            .cluster()
            .member(target)
            .map(|m| !m.is_learner)
            .unwrap_or(false);
        if !voter {
            return Err(EtcdError::BadLeaderTransferee);
        }
        if target == self.id {
            return Ok(());
        }
        self.raft_tx
            .send(RaftInput::TransferLeader(target))
            .map_err(|_| EtcdError::Stopped)?;
        let mut leader = self.leader.clone();
        // etcd allows a request timeout; a transfer needs about one election timeout.
        let limit = self.limits.election_timeout * 2 + Duration::from_secs(5);
        let moved = async { leader.wait_for(|l| *l == target).await.map(|_| ()) };
        match tokio::time::timeout(limit, moved).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::TimeoutLeaderTransfer),
        }
    }

    /// On shutdown: if leading, hand leadership to the most up-to-date follower and wait
    /// (up to an election timeout) until another member leads, so clients see no
    /// election gap (etcd's TryTransferLeadershipOnShutdown).
    pub async fn transfer_leadership_away(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .raft_tx
            .send(RaftInput::TransferLeadershipAway(tx))
            .is_err()
        {
            return;
        }
        if !rx.await.unwrap_or(false) {
            return;
        }
        let me = self.id;
        let mut leader = self.leader.clone();
        let moved = async {
            leader
                .wait_for(|l| *l != me && *l != raft::INVALID_ID)
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(self.limits.election_timeout, moved).await {
            Ok(Ok(())) => tracing::info!("transferred leadership before stopping"),
            _ => tracing::warn!("leadership transfer did not finish before stopping"),
        }
    }
}

impl crate::compactor::Compactable for std::sync::Arc<Member> {
    fn current_rev(&self) -> i64 {
        self.kv().current_rev()
    }

    fn is_leader(&self) -> bool {
        Member::is_leader(self)
    }

    async fn compact(&self, rev: i64) -> Result<(), EtcdError> {
        let req = CompactionRequest {
            revision: rev,
            physical: false,
        };
        let root = self.root_identity();
        Member::compact(self, root.as_ref(), req).await.map(drop)
    }
}
