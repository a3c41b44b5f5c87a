//! `--force-new-cluster` (etcd's `restartAsStandaloneNode`): a member restarting from its
//! data dir makes itself the only member of its cluster, to restore quorum from one
//! surviving member. It keeps its data and IDs:
//!
//! ```text
//!   WAL: snapshot ... e(c-1) e(c) | e(c+1) ... (uncommitted: dropped)
//!                                 | add self (if missing), remove each other member
//!                                   (appended, committed, applied as any conf change)
//! ```
//! `c` is the larger of the WAL's commit index and the backend's consistent index, as
//! etcd 3.6 does: an entry already applied is committed even if the hard state on disk
//! does not say so yet, and must not be dropped.

use chorus_api::internalpb::Member;
use chorus_storage::wal::{ReplayState, Wal};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType};

use super::error::StartError;

/// Rewrites `replay` (and the WAL) so that this member restarts alone.
pub fn force_new_cluster(
    wal: &mut Wal,
    replay: &mut ReplayState,
    conf: &ConfState,
    me: Member,
    consistent_index: u64,
) -> Result<(), StartError> {
    let last = replay.entries.last().map_or(0, |e| e.index);
    let commit = replay.hard_state.commit.max(consistent_index.min(last));
    discard_uncommitted(&mut replay.entries, commit);
    let ids = member_ids(conf, &replay.entries)?;
    let term = replay.hard_state.term;
    let appended = conf_change_entries(&ids, me, term, commit + 1);
    let mut hs = replay.hard_state.clone();
    if let Some(e) = appended.last() {
        hs.commit = e.index;
    }
    wal.save(Some(&hs), &appended, true)?;
    replay.entries.extend(appended);
    tracing::info!(
        wal_commit_index = replay.hard_state.commit,
        commit_index = hs.commit,
        "forcing restart member"
    );
    replay.hard_state = hs;
    Ok(())
}

fn discard_uncommitted(entries: &mut Vec<Entry>, commit: u64) {
    if let Some(i) = entries.iter().position(|e| e.index > commit) {
        tracing::info!(
            entry_index = entries[i].index,
            commit_index_from_wal = commit,
            number_of_discarded_entries = entries.len() - i,
            "discarding uncommitted WAL entries"
        );
        entries.truncate(i);
    }
}

/// Voters and learners as of the snapshot's configuration and the conf changes after it.
fn member_ids(conf: &ConfState, entries: &[Entry]) -> Result<Vec<u64>, StartError> {
    let mut ids: std::collections::BTreeSet<u64> =
        conf.voters.iter().chain(&conf.learners).copied().collect();
    for e in entries {
        for (kind, node) in conf_changes(e)? {
            match kind {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => ids.insert(node),
                ConfChangeType::RemoveNode => ids.remove(&node),
            };
        }
    }
    Ok(ids.into_iter().collect())
}

fn conf_changes(e: &Entry) -> Result<Vec<(ConfChangeType, u64)>, StartError> {
    let bad = |err: protobuf::ProtobufError| StartError::ForceNewCluster(err.to_string());
    Ok(match e.get_entry_type() {
        EntryType::EntryNormal => Vec::new(),
        EntryType::EntryConfChange => {
            let mut cc = ConfChange::default();
            cc.merge_from_bytes(&e.data).map_err(bad)?;
            vec![(cc.get_change_type(), cc.node_id)]
        }
        EntryType::EntryConfChangeV2 => {
            let mut cc = ConfChangeV2::default();
            cc.merge_from_bytes(&e.data).map_err(bad)?;
            cc.changes
                .iter()
                .map(|c| (c.get_change_type(), c.node_id))
                .collect()
        }
    })
}

/// Self first if missing (raft refuses a configuration without voters), then the removal
/// of every other member, at `index` on.
fn conf_change_entries(ids: &[u64], me: Member, term: u64, index: u64) -> Vec<Entry> {
    let mut changes = Vec::new();
    if !ids.contains(&me.id) {
        let mut cc = ConfChange::default();
        cc.set_change_type(ConfChangeType::AddNode);
        cc.node_id = me.id;
        cc.context = me.encode_to_vec().into();
        changes.push(cc);
    }
    for &id in ids.iter().filter(|id| **id != me.id) {
        let mut cc = ConfChange::default();
        cc.set_change_type(ConfChangeType::RemoveNode);
        cc.node_id = id;
        changes.push(cc);
    }
    changes
        .into_iter()
        .zip(index..)
        .map(|(cc, index)| {
            let mut e = Entry::default();
            e.set_entry_type(EntryType::EntryConfChange);
            e.data = cc.write_to_bytes().expect("conf change encodes").into();
            e.term = term;
            e.index = index;
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf_entry(index: u64, kind: ConfChangeType, node: u64) -> Entry {
        let mut cc = ConfChange::default();
        cc.set_change_type(kind);
        cc.node_id = node;
        let mut e = Entry::default();
        e.set_entry_type(EntryType::EntryConfChange);
        e.data = cc.write_to_bytes().unwrap().into();
        e.index = index;
        e
    }

    #[test]
    fn members_follow_the_snapshot_and_later_conf_changes() {
        let conf = ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        };
        let entries = [
            conf_entry(5, ConfChangeType::AddLearnerNode, 4),
            conf_entry(6, ConfChangeType::RemoveNode, 2),
        ];
        assert_eq!(member_ids(&conf, &entries).unwrap(), [1, 3, 4]);
    }

    #[test]
    fn self_is_added_first_then_the_others_removed() {
        let me = Member {
            id: 9,
            ..Member::default()
        };
        let ents = conf_change_entries(&[1, 3], me.clone(), 7, 20);
        let kinds: Vec<_> = ents.iter().map(|e| conf_changes(e).unwrap()[0]).collect();
        assert_eq!(
            kinds,
            [
                (ConfChangeType::AddNode, 9),
                (ConfChangeType::RemoveNode, 1),
                (ConfChangeType::RemoveNode, 3)
            ]
        );
        assert_eq!(
            ents.iter().map(|e| e.index).collect::<Vec<_>>(),
            [20, 21, 22]
        );
        assert!(ents.iter().all(|e| e.term == 7));
        assert_eq!(conf_change_entries(&[9], me, 7, 20).len(), 0);
    }

    #[test]
    fn uncommitted_entries_are_dropped() {
        let mut entries: Vec<Entry> = (1..=5)
            .map(|i| conf_entry(i, ConfChangeType::AddNode, i))
            .collect();
        discard_uncommitted(&mut entries, 3);
        assert_eq!(entries.len(), 3);
    }
}
