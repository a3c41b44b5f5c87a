//! Runtime membership changes (etcd's `member add/remove/update/promote`).
//!
//! Adding, removing and promoting go through raft as conf changes carrying the member in
//! their context; new peer URLs go as a normal entry (raft-rs has no "update node", and
//! peer URLs do not concern raft). The checks etcd makes before proposing are made here:
//! URLs valid and unused, the member known, `--strict-reconfig-check`'s quorum rules, at
//! at most `--max-learners` learners, a learner promoted only once it has caught up with the leader.

use std::time::{SystemTime, UNIX_EPOCH};

use chorus_api::internalpb::{internal_request, Member as MemberRecord, MemberPeerUrls};
use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};

use super::{Member, Who};
use crate::apply::reply;
use crate::error::EtcdError;
use crate::raft::RaftInput;

/// A learner may be promoted once its log matches at least this share of the leader's.
const LEARNER_READY: f64 = 0.9;

/// Peer URLs as etcd's `types.NewURLs` accepts them, normalized and sorted.
fn peer_urls(urls: &[String]) -> Result<Vec<String>, EtcdError> {
    if urls.is_empty() {
        return Err(EtcdError::MemberBadUrls);
    }
    let mut parsed = chorus_config::parse_url_list(urls).map_err(|_| EtcdError::MemberBadUrls)?;
    chorus_config::sort_urls(&mut parsed);
    Ok(parsed.iter().map(|u| u.to_string()).collect())
}

/// A new member's ID: a hash of its peer URLs, the cluster and the time, as etcd's
/// `NewMember` (which hashes the time for members added at runtime).
fn new_member_id(cluster_id: u64, urls: &[String], taken: impl Fn(u64) -> bool) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut salt = 0u64;
    loop {
        let mut h = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        for u in urls {
            h.update(u.as_bytes());
        }
        h.update(&cluster_id.to_be_bytes());
        h.update(&now.to_be_bytes());
        h.update(&salt.to_be_bytes());
        let d = h.finish();
        let id = u64::from_be_bytes(d.as_ref()[..8].try_into().expect("8 bytes"));
        if id != 0 && !taken(id) {
            return id;
        }
        salt += 1;
    }
}

impl Member {
    /// Proposes a single-step conf change and waits for it to apply.
    async fn propose_conf_change(
        &self,
        kind: ConfChangeType,
        node: u64,
        member: Option<&MemberRecord>,
    ) -> Result<Vec<MemberRecord>, EtcdError> {
        use prost::Message as _;
        let mut change = ConfChangeSingle::default();
        change.set_change_type(kind);
        change.node_id = node;
        let cc = ConfChangeV2 {
            changes: vec![change].into(),
            context: member.map(|m| m.encode_to_vec()).unwrap_or_default().into(),
            ..Default::default()
        };
        let id = self.ids.next();
        let applied = self
            .replicate(id, || RaftInput::ProposeConfChange { id, cc: cc.clone() })
            .await?;
        reply(applied)
    }

    /// `MemberAdd`: returns the new member and the members after the change.
    pub async fn member_add(
        &self,
        who: Who<'_>,
        urls: &[String],
        is_learner: bool,
    ) -> Result<(MemberRecord, Vec<MemberRecord>), EtcdError> {
        self.check_admin(who)?;
        let urls = peer_urls(urls)?;
        let cluster = self.cluster();
        if cluster.url_in_use(&urls, None) {
            return Err(EtcdError::PeerUrlExist);
        }
        if is_learner {
            if cluster.members.values().filter(|m| m.is_learner).count() >= self.limits.max_learners
            {
                return Err(EtcdError::TooManyLearners);
            }
        } else if self.limits.strict_reconfig_check {
            // etcd's IsReadyToAddVotingMember: the started voters must make a quorum of
            // the configuration with the new member (a one-member cluster may grow).
            let voters = cluster.voters().count();
            let started = cluster.voters().filter(|m| !m.name.is_empty()).count();
            let total = voters + 1;
            if !(started == 1 && total == 2) && started < total / 2 + 1 {
                return Err(EtcdError::NotEnoughStartedMembers);
            }
        }
        let id = new_member_id(self.cluster_id, &urls, |id| {
            cluster.members.contains_key(&id)
        });
        let member = MemberRecord {
            id,
            name: String::new(),
            peer_urls: urls,
            client_urls: Vec::new(),
            is_learner,
        };
        let kind = if is_learner {
            ConfChangeType::AddLearnerNode
        } else {
            ConfChangeType::AddNode
        };
        let members = self.propose_conf_change(kind, id, Some(&member)).await?;
        Ok((member, members))
    }

    /// `MemberRemove`.
    pub async fn member_remove(
        &self,
        who: Who<'_>,
        id: u64,
    ) -> Result<Vec<MemberRecord>, EtcdError> {
        self.check_admin(who)?;
        let cluster = self.cluster();
        let Some(target) = cluster.member(id) else {
            return Err(EtcdError::MemberNotFound);
        };
        if !target.is_learner && self.limits.strict_reconfig_check {
            // etcd's IsReadyToRemoveVotingMember: the started voters left make a quorum.
            let rest: Vec<&MemberRecord> = cluster.voters().filter(|m| m.id != id).collect();
            let started = rest.iter().filter(|m| !m.name.is_empty()).count();
            if rest.is_empty() || started < rest.len() / 2 + 1 {
                return Err(EtcdError::NotEnoughStartedMembers);
            }
        }
        self.propose_conf_change(ConfChangeType::RemoveNode, id, None)
            .await
    }

    /// `MemberUpdate`: new peer URLs for a member.
    pub async fn member_update(
        &self,
        who: Who<'_>,
        id: u64,
        urls: &[String],
    ) -> Result<Vec<MemberRecord>, EtcdError> {
        self.check_admin(who)?;
        let urls = peer_urls(urls)?;
        let cluster = self.cluster();
        if cluster.member(id).is_none() {
            return Err(EtcdError::MemberNotFound);
        }
        if cluster.url_in_use(&urls, Some(id)) {
            return Err(EtcdError::PeerUrlExist);
        }
        let req = internal_request::Request::MemberPeerUrls(MemberPeerUrls {
            member_id: id,
            peer_urls: urls,
        });
        self.propose_as(None, req).await
    }

    /// `MemberPromote`: only the leader knows how far a learner has caught up, so a
    /// follower forwards the request to it.
    pub async fn member_promote(
        &self,
        who: Who<'_>,
        id: u64,
    ) -> Result<Vec<MemberRecord>, EtcdError> {
        self.check_admin(who)?;
        self.promote(id).await
    }

    /// Promotes a learner (on the leader; forwarded there from a follower), after the
    /// caller's permission was checked where the request arrived.
    pub(super) async fn promote(&self, id: u64) -> Result<Vec<MemberRecord>, EtcdError> {
        let cluster = self.cluster();
        match cluster.member(id) {
            None => return Err(EtcdError::MemberNotFound),
            Some(m) if !m.is_learner => return Err(EtcdError::MemberNotLearner),
            Some(_) => {}
        }
        if !self.is_leader() {
            let leader = self.status.leader();
            if leader == raft::INVALID_ID {
                return Err(EtcdError::NoLeader);
            }
            return self.transport().promote(leader, id).await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.raft_tx
            .send(RaftInput::Progress(tx))
            .map_err(|_| EtcdError::Stopped)?;
        let matched = rx.await.map_err(|_| EtcdError::Stopped)?;
        let leader_match = matched.get(&self.id).copied().unwrap_or(0);
        let learner_match = matched.get(&id).copied().unwrap_or(0);
        if (learner_match as f64) < (leader_match as f64) * LEARNER_READY {
            let refused = EtcdError::LearnerNotReady;
            chorus_metrics::LEARNER_PROMOTE_FAILURES.add([&refused.to_string()], 1);
            return Err(refused);
        }
        let promoted = self
            .propose_conf_change(ConfChangeType::AddNode, id, None)
            .await?;
        chorus_metrics::LEARNER_PROMOTE_SUCCESSES.inc();
        Ok(promoted)
    }
}
