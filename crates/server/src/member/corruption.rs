//! Corruption checks (etcd 3.5's `corrupt.go`): members with the same history must have
//! the same keys, so their hashes must agree.
//!
//! ```text
//!   initial check   at start-up, before serving clients: my hash at my revision vs each
//!                   peer's at that revision (same compact revision): a mismatch stops me
//!   periodic check  the leader, every --corrupt-check-time: my hash vs the followers'
//!                   (same revision or compact revision): a mismatch raises CORRUPT
//!   compaction      the leader, every --compact-hash-check-time: the hash each recent
//!   hash check      compaction kept vs the followers' for the same compaction
//! ```
//! The CORRUPT alarm is replicated and persisted; while it is raised every member refuses
//! writes (`etcdserver: corrupt cluster`, `apply/corrupt.rs`) until an operator disarms it.

use std::sync::Arc;
use std::time::Duration;

use chorus_api::etcdserverpb::HashKvResponse;
use chorus_api::etcdserverpb::{alarm_request::AlarmAction, AlarmRequest, AlarmType};

use super::Member;
use crate::error::EtcdError;

/// A member's hash could not be fetched, or the hashes disagree.
#[derive(Debug, thiserror::Error)]
pub enum CorruptionError {
    #[error("{0:x} failed to fetch hash ({1})")]
    LocalHash(u64, EtcdError),
    #[error("{0:x} found data inconsistency with peers")]
    Inconsistent(u64),
}

/// One peer's answer.
struct PeerHash {
    id: u64,
    resp: Result<HashKvResponse, EtcdError>,
}

impl Member {
    /// This member's hash of its keys at `revision` (0: now), as HashKV answers it.
    pub fn local_hash_kv(&self, revision: i64) -> Result<HashKvResponse, EtcdError> {
        let kv = self.kv();
        let (hash, rev, compact) = kv.hash_kv(revision)?;
        Ok(HashKvResponse {
            header: Some(self.header(rev)),
            hash,
            compact_revision: compact,
            hash_revision: rev,
        })
    }

    /// The hash this member's compaction at `revision` recorded.
    pub fn compaction_hash(&self, revision: i64) -> Result<HashKvResponse, EtcdError> {
        let kv = self.kv();
        let h = kv
            .compaction_hashes()
            .into_iter()
            .find(|h| h.revision == revision)
            .ok_or(EtcdError::Compacted)?;
        Ok(HashKvResponse {
            header: Some(self.header(kv.current_rev())),
            hash: h.hash,
            compact_revision: h.revision,
            hash_revision: h.revision,
        })
    }

    async fn peer_hashes(&self, revision: i64, compaction: bool) -> Vec<PeerHash> {
        let peers: Vec<u64> = self
            .cluster()
            .members
            .keys()
            .copied()
            .filter(|id| *id != self.id)
            .collect();
        let mut out = Vec::with_capacity(peers.len());
        for id in peers {
            let ask = self.transport.hash_kv(id, revision, compaction);
            let resp = tokio::time::timeout(self.limits.request_timeout, ask)
                .await
                .unwrap_or(Err(EtcdError::Timeout));
            if let Err(e) = &resp {
                tracing::warn!(remote_peer_id = %format!("{id:x}"), requested_revision = revision, "failed hash kv request: {e}");
            }
            out.push(PeerHash { id, resp });
        }
        out
    }

    /// etcd's InitialCheck: compares this member's hash at its revision with every peer's
    /// at the same revision; a peer with the same compact revision and another hash means
    /// the data differ, and this member must not serve.
    pub async fn initial_corruption_check(&self) -> Result<(), CorruptionError> {
        tracing::info!(local_member_id = %format!("{:x}", self.id), "starting initial corruption check");
        let mine = self
            .local_hash_kv(0)
            .map_err(|e| CorruptionError::LocalHash(self.id, e))?;
        let rev = mine.hash_revision;
        let mut mismatch = 0;
        for p in self.peer_hashes(rev, false).await {
            let Ok(theirs) = p.resp else { continue };
            if theirs.hash == mine.hash {
                continue;
            }
            let peer = format!("{:x}", p.id);
            if theirs.compact_revision == mine.compact_revision {
                tracing::warn!(remote_peer_id = %peer, local_member_revision = rev, local_member_hash = mine.hash, remote_peer_hash = theirs.hash, "found different hash values from remote peer");
                mismatch += 1;
            } else {
                tracing::warn!(remote_peer_id = %peer, "found different compact revision values from remote peer");
            }
        }
        if mismatch > 0 {
            return Err(CorruptionError::Inconsistent(self.id));
        }
        tracing::info!(local_member_id = %format!("{:x}", self.id), "initial corruption checking passed; no corruption");
        Ok(())
    }

    /// etcd's PeriodicCheck, on the leader: its hash before and after a ReadIndex, and
    /// the followers' hashes, which must agree where revisions allow comparing.
    pub async fn periodic_corruption_check(&self) -> Result<(), EtcdError> {
        let h1 = self.local_hash_kv(0)?;
        let peers = self.peer_hashes(h1.hash_revision, false).await;
        self.linearizable_read().await?;
        let h2 = self.local_hash_kv(0)?;
        let mut corrupt = h2.hash != h1.hash
            && h2.hash_revision == h1.hash_revision
            && h2.compact_revision == h1.compact_revision;
        let mut checked = 0;
        for p in peers {
            let Ok(f) = p.resp else { continue };
            checked += 1;
            let f_rev = f.header.as_ref().map_or(0, |h| h.revision);
            let peer = format!("{:x}", p.id);
            if f_rev > h2.hash_revision {
                tracing::warn!(follower_peer_id = %peer, "revision from follower must be less than or equal to leader's");
                corrupt = true;
            }
            if f.compact_revision > h2.compact_revision {
                tracing::warn!(follower_peer_id = %peer, "compact revision from follower must be less than or equal to leader's");
                corrupt = true;
            }
            if f.compact_revision == h1.compact_revision && f.hash != h1.hash {
                tracing::warn!(follower_peer_id = %peer, leader_hash = h1.hash, follower_hash = f.hash, "same compact revision then hashes must match");
                corrupt = true;
            }
        }
        if corrupt {
            self.raise_corrupt().await;
        }
        tracing::info!(
            number_of_peers_checked = checked,
            "finished peer corruption check"
        );
        Ok(())
    }

    /// etcd's CompactHashCheck, on the leader: the newest compaction every follower also
    /// recorded must have the same hash everywhere.
    pub async fn compaction_hash_check(&self) {
        let mut hashes = self.kv().compaction_hashes();
        hashes.reverse();
        for h in hashes {
            let peers = self.peer_hashes(h.revision, true).await;
            let total = peers.len();
            let mut checked = 0;
            for p in peers {
                let Ok(f) = p.resp else { continue };
                if f.hash != h.hash {
                    tracing::error!(revision = h.revision, leader_hash = h.hash, follower_hash = f.hash, follower_peer_id = %format!("{:x}", p.id), "failed compaction hash check");
                    self.raise_corrupt().await;
                    return;
                }
                checked += 1;
            }
            if checked == total {
                tracing::info!(
                    number_of_peers_checked = checked,
                    revision = h.revision,
                    "successfully checked hash on whole cluster"
                );
                return;
            }
        }
    }

    /// Raises CORRUPT for the cluster (member 0: which member is wrong is not known).
    async fn raise_corrupt(&self) {
        let req = AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: 0,
            alarm: AlarmType::Corrupt as i32,
        };
        let root = self.root_identity();
        if let Err(e) = self.alarm(root.as_ref(), req).await {
            tracing::warn!("failed to raise the CORRUPT alarm: {e}");
        }
    }

    /// The leader's periodic check, every `every`.
    pub(super) async fn periodic_check_loop(self: Arc<Self>, every: Duration) {
        self.on_leader_every(every, |m| async move {
            if let Err(e) = m.periodic_corruption_check().await {
                tracing::warn!("failed to check hash KV: {e}");
            }
        })
        .await
    }

    /// The leader's compaction hash check, every `every`.
    pub(super) async fn compaction_check_loop(self: Arc<Self>, every: Duration) {
        self.on_leader_every(every, |m| async move { m.compaction_hash_check().await })
            .await
    }
}
