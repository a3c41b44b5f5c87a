//! What the chorus member starts from, worked out from etcd's files before anything is
//! written: the raft position of the backend (its consistent index and that entry's term),
//! the configuration and membership at that position, the hard state, and the entries
//! past it, translated.
//!
//! ```text
//!   etcd WAL:   ... snapshot ─── entries ─── consistent index ─── entries ─── last
//!                                  (in the backend already)     │ (carried over, translated)
//!   chorus:                           raft snapshot at (ci, term) ┘  WAL entries ci+1..last
//! ```

use std::collections::BTreeSet;

use chorus_api::internalpb::Member;
use chorus_etcd_format::entry::{decode_entry, EntryPayload};
use chorus_etcd_format::proto::raftpb::{self, ConfChangeType as EtcdChange};
use chorus_etcd_format::snap::parse_v2_store;
use raft::eraftpb::{ConfState, Entry, HardState};

use super::etcd_member::EtcdMember;
use super::translate::{translate, TranslateStats};
use super::TakeoverError;

/// The chorus member's starting point.
pub struct Plan {
    pub member_id: u64,
    pub cluster_id: u64,
    /// The raft snapshot chorus starts from: the backend's consistent index and term.
    pub index: u64,
    pub term: u64,
    pub conf: ConfState,
    pub members: Vec<Member>,
    pub removed: Vec<u64>,
    pub hard_state: HardState,
    /// Entries after `index`, translated.
    pub entries: Vec<Entry>,
    pub stats: TranslateStats,
}

/// Works out the plan; refuses what chorus cannot carry over faithfully.
pub fn plan(m: &EtcdMember) -> Result<Plan, TakeoverError> {
    let index = m.meta.consistent_index.unwrap_or(0);
    let term = term_of(m, index)?;
    let (voters, learners) = conf_at(m, index)?;
    let (members, removed) = membership(m, index, &voters, &learners)?;
    let mut stats = TranslateStats::default();
    let mut entries = Vec::new();
    let mut next = index + 1;
    for e in m.entries.iter().filter(|e| e.index > index) {
        if e.index != next {
            return Err(TakeoverError::LogGap {
                index,
                first: e.index,
            });
        }
        entries.push(translate(e, &mut stats)?);
        next += 1;
    }
    let last = next - 1;
    let hs = &m.hard_state;
    let hard_state = HardState {
        term: hs.term.max(term),
        vote: hs.vote,
        commit: hs.commit.clamp(index, last),
        ..Default::default()
    };
    Ok(Plan {
        member_id: m.metadata.node_id,
        cluster_id: m.metadata.cluster_id,
        index,
        term,
        conf: ConfState {
            voters: voters.into_iter().collect(),
            learners: learners.into_iter().collect(),
            ..Default::default()
        },
        members,
        removed,
        hard_state,
        entries,
        stats,
    })
}

/// The term of the entry at the consistent index: the WAL's (or the snapshot's) entry,
/// else the backend's `term` (etcd 3.5+).
fn term_of(m: &EtcdMember, index: u64) -> Result<u64, TakeoverError> {
    if let Some(t) = m.term_at(index) {
        if m.meta.term.is_some_and(|mt| mt != t) {
            tracing::warn!(index, wal = t, backend = ?m.meta.term, "etcd takeover: the backend's term differs from the WAL's; using the WAL's");
        }
        return Ok(t);
    }
    match m.meta.term {
        Some(t) => Ok(t),
        None if index == 0 => Ok(0),
        None => Err(TakeoverError::TermUnknown { index }),
    }
}

type Ids = BTreeSet<u64>;

/// Voters and learners at `index`: etcd 3.5+ keeps them in the backend; before, they are
/// the snapshot's plus the conf changes of the log up to `index`.
fn conf_at(m: &EtcdMember, index: u64) -> Result<(Ids, Ids), TakeoverError> {
    if let Some(cs) = &m.meta.conf_state {
        if !cs.voters_outgoing.is_empty() || !cs.learners_next.is_empty() {
            return Err(TakeoverError::JointConfig);
        }
        return Ok((
            cs.voters.iter().copied().collect(),
            cs.learners.iter().copied().collect(),
        ));
    }
    let base = m.snapshot.as_ref().and_then(|(_, s)| s.metadata.clone());
    let cs = base.and_then(|b| b.conf_state).unwrap_or_default();
    let (mut voters, mut learners): (Ids, Ids) = (
        cs.voters.iter().copied().collect(),
        cs.learners.iter().copied().collect(),
    );
    for e in m.entries.iter().filter(|e| e.index <= index) {
        for (kind, node, _) in conf_changes(e)? {
            match kind {
                EtcdChange::ConfChangeAddNode => {
                    learners.remove(&node);
                    voters.insert(node);
                }
                EtcdChange::ConfChangeAddLearnerNode if !voters.contains(&node) => {
                    learners.insert(node);
                }
                EtcdChange::ConfChangeRemoveNode => {
                    voters.remove(&node);
                    learners.remove(&node);
                }
                _ => {}
            }
        }
    }
    Ok((voters, learners))
}

/// The single changes of a conf change entry, with the member of its context.
fn conf_changes(
    e: &raftpb::Entry,
) -> Result<Vec<(EtcdChange, u64, Option<chorus_etcd_format::backend::Member>)>, TakeoverError> {
    let bad = |what: String| TakeoverError::BadEntry {
        index: e.index,
        what,
    };
    if e.r#type == raftpb::EntryType::EntryNormal as i32 {
        return Ok(Vec::new());
    }
    match decode_entry(e).map_err(|err| bad(err.to_string()))? {
        EntryPayload::ConfChange { change, context } => {
            let kind = EtcdChange::try_from(change.r#type)
                .map_err(|_| bad(format!("unknown conf change type {}", change.r#type)))?;
            Ok(vec![(kind, change.node_id, context.map(|c| c.member))])
        }
        EntryPayload::ConfChangeV2(cc) => cc
            .changes
            .iter()
            .map(|c| {
                let kind = EtcdChange::try_from(c.r#type)
                    .map_err(|_| bad(format!("unknown conf change type {}", c.r#type)))?;
                Ok((kind, c.node_id, None))
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

/// The members at `index`: the backend's `members` bucket (etcd 3.4+), else the snapshot's
/// v2 store and the log's conf changes. Every voter and learner must have a record.
fn membership(
    m: &EtcdMember,
    index: u64,
    voters: &Ids,
    learners: &Ids,
) -> Result<(Vec<Member>, Vec<u64>), TakeoverError> {
    let mut ms = m.backend.members()?;
    if ms.members.is_empty() {
        ms = membership_from_log(m, index)?;
    }
    let mut members = Vec::new();
    for id in voters.iter().chain(learners) {
        let Some(e) = ms.members.iter().find(|x| x.id == *id) else {
            return Err(TakeoverError::MembershipMismatch { id: *id });
        };
        members.push(Member {
            id: *id,
            name: e.name.clone(),
            peer_urls: e.peer_urls.clone(),
            client_urls: e.client_urls.clone(),
            is_learner: learners.contains(id),
        });
    }
    Ok((members, ms.removed))
}

/// etcd 3.3 kept membership in the v2 store only: the snapshot's, then the conf changes.
fn membership_from_log(
    m: &EtcdMember,
    index: u64,
) -> Result<chorus_etcd_format::backend::Membership, TakeoverError> {
    let mut ms = match &m.snapshot {
        Some((_, s)) => parse_v2_store(&s.data)?.membership()?,
        None => Default::default(),
    };
    for e in m.entries.iter().filter(|e| e.index <= index) {
        for (kind, node, member) in conf_changes(e)? {
            match (kind, member) {
                (EtcdChange::ConfChangeRemoveNode, _) => {
                    ms.members.retain(|x| x.id != node);
                    ms.removed.push(node);
                }
                (_, Some(mut member)) => {
                    ms.members.retain(|x| x.id != node);
                    member.id = node;
                    ms.members.push(member);
                }
                _ => {}
            }
        }
    }
    Ok(ms)
}
