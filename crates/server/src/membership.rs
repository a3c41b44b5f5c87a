//! The cluster's members as replicated state: stored in the backend's `members` table,
//! cached here for request handlers and the transport.

use std::collections::BTreeMap;

use chorus_api::internalpb::{Member, MemberPeerUrls};
use chorus_storage::backend::{self, Backend, BackendError, MEMBERS, REMOVED_MEMBERS};
use prost::Message;
use raft::eraftpb::ConfChangeType;
use redb::ReadableTable;

use crate::apply::{Applied, ApplyResult};
use crate::error::EtcdError;
use crate::raft::Committed;

#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub cluster_id: u64,
    pub members: BTreeMap<u64, Member>,
}

impl Cluster {
    pub fn load(backend: &Backend, cluster_id: u64) -> Result<Cluster, BackendError> {
        let tx = backend.begin_read()?;
        let table = tx.open_table(MEMBERS)?;
        let mut members = BTreeMap::new();
        for item in table.iter()? {
            let (k, v) = item?;
            let m = Member::decode(v.value()).map_err(|e| BackendError::Corrupt {
                what: format!("member {:x}: {e}", k.value()),
            })?;
            members.insert(k.value(), m);
        }
        Ok(Cluster {
            cluster_id,
            members,
        })
    }

    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    /// Whether another member (not `except`) already has one of `urls` as a peer URL.
    pub fn url_in_use(&self, urls: &[String], except: Option<u64>) -> bool {
        self.members
            .values()
            .filter(|m| Some(m.id) != except)
            .any(|m| m.peer_urls.iter().any(|u| urls.contains(u)))
    }

    /// Voting members.
    pub fn voters(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| !m.is_learner)
    }

    /// Every client URL of every member, for `--cluster` style endpoint discovery.
    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .values()
            .flat_map(|m| m.client_urls.iter().cloned())
            .collect()
    }
}

/// Writes a member in an apply transaction.
pub fn save_member(tx: &redb::WriteTransaction, m: &Member) -> Result<(), BackendError> {
    let mut table = tx.open_table(MEMBERS)?;
    table.insert(m.id, m.encode_to_vec().as_slice())?;
    Ok(())
}

pub fn remove_member(tx: &redb::WriteTransaction, id: u64) -> Result<(), BackendError> {
    tx.open_table(MEMBERS)?.remove(id)?;
    tx.open_table(REMOVED_MEMBERS)?.insert(id, [].as_slice())?;
    Ok(())
}

pub fn is_removed(backend: &Backend, id: u64) -> Result<bool, BackendError> {
    is_removed_in(&backend.begin_read()?, id)
}

/// Whether `id` names a member removed from the cluster, in a read transaction.
pub fn is_removed_in(tx: &redb::ReadTransaction, id: u64) -> Result<bool, BackendError> {
    Ok(tx.open_table(REMOVED_MEMBERS)?.get(id)?.is_some())
}

pub const META_CLUSTER_ID: &str = "cluster_id";

pub fn cluster_id(backend: &Backend) -> Result<Option<u64>, BackendError> {
    let tx = backend.begin_read()?;
    let meta = tx.open_table(backend::META)?;
    backend::get_meta_u64(&meta, META_CLUSTER_ID)
}

/// The outcome of applying one conf-change entry.
pub struct ConfChangeApplied {
    /// The proposer's request ID (0: none waits).
    pub id: u64,
    pub result: ApplyResult,
    /// A member this entry removed.
    pub removed: Option<u64>,
}

/// Applies a committed conf change to the membership (raft has applied it to its
/// configuration already, or refused it: then nothing changes here either). The member
/// travels in the change's context; the proposer's request ID in the entry's context.
pub fn apply_conf_change(
    tx: &redb::WriteTransaction,
    cluster: &mut Cluster,
    c: &Committed,
) -> Result<ConfChangeApplied, BackendError> {
    use protobuf::Message as _;
    let e = &c.entry;
    let id = <[u8; 8]>::try_from(e.context.as_ref()).map_or(0, u64::from_be_bytes);
    let mut done = ConfChangeApplied {
        id,
        result: Ok(Applied::Done),
        removed: None,
    };
    if let Some(reason) = &c.conf_error {
        done.result = Err(EtcdError::Internal(format!(
            "raft refused the configuration change: {reason}"
        )));
        return Ok(done);
    }
    let changes: Vec<(ConfChangeType, u64, Vec<u8>)> = match e.get_entry_type() {
        raft::eraftpb::EntryType::EntryConfChange => {
            let mut cc = raft::eraftpb::ConfChange::default();
            cc.merge_from_bytes(&e.data).map_err(corrupt)?;
            vec![(cc.get_change_type(), cc.node_id, cc.context.to_vec())]
        }
        _ => {
            let mut cc = raft::eraftpb::ConfChangeV2::default();
            cc.merge_from_bytes(&e.data).map_err(corrupt)?;
            cc.changes
                .iter()
                .map(|s| (s.get_change_type(), s.node_id, cc.context.to_vec()))
                .collect()
        }
    };
    for (kind, node, ctx) in changes {
        match kind {
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                let learner = kind == ConfChangeType::AddLearnerNode;
                let m = match cluster.members.get(&node) {
                    // Promotion (or a repeated add): only the learner flag changes.
                    Some(m) => Member {
                        is_learner: learner,
                        ..m.clone()
                    },
                    None => {
                        let mut m = Member::decode(ctx.as_slice()).map_err(corrupt)?;
                        m.id = node;
                        m.is_learner = learner;
                        m
                    }
                };
                save_member(tx, &m)?;
                cluster.members.insert(node, m);
            }
            ConfChangeType::RemoveNode => {
                remove_member(tx, node)?;
                cluster.members.remove(&node);
                done.removed = Some(node);
            }
        }
    }
    done.result = Ok(Applied::Members(
        cluster.members.values().cloned().collect(),
    ));
    Ok(done)
}

/// Applies new peer URLs for a member (etcd's ConfChangeUpdateNode).
pub fn update_peer_urls(
    tx: &redb::WriteTransaction,
    cluster: &mut Cluster,
    u: MemberPeerUrls,
) -> Result<ApplyResult, BackendError> {
    if !cluster.members.contains_key(&u.member_id) {
        return Ok(Err(EtcdError::MemberNotFound));
    }
    if cluster.url_in_use(&u.peer_urls, Some(u.member_id)) {
        return Ok(Err(EtcdError::PeerUrlExist));
    }
    let m = cluster
        .members
        .get_mut(&u.member_id)
        .expect("checked above");
    m.peer_urls = u.peer_urls;
    save_member(tx, m)?;
    Ok(Ok(Applied::Members(
        cluster.members.values().cloned().collect(),
    )))
}

fn corrupt(e: impl std::fmt::Display) -> BackendError {
    BackendError::Corrupt {
        what: format!("conf change entry: {e}"),
    }
}

/// Every member's removed ID.
pub fn removed_ids(backend: &Backend) -> Result<Vec<u64>, BackendError> {
    let tx = backend.begin_read()?;
    let table = tx.open_table(REMOVED_MEMBERS)?;
    let mut out = Vec::new();
    for item in table.iter()? {
        out.push(item?.0.value());
    }
    Ok(out)
}
