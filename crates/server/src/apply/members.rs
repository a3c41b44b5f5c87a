//! Membership changes in log order: conf changes (add, remove, promote; the member rides
//! in the context), new peer URLs and published attributes (normal entries). Each writes
//! the backend's member tables and the batch's copy of the membership, which the apply
//! loop publishes once the batch is in the backend, and mirrors the change in the v2 store
//! as etcd does (`v2/members.rs`).

use chorus_api::internalpb::{DowngradeInfoSet, Member, MemberAttributes, MemberPeerUrls};
use chorus_storage::backend::BackendError;
use chorus_storage::members;
use parking_lot::RwLock;
use prost::Message;
use raft::eraftpb::{ConfChangeType, EntryType};

use super::chain::Batch;
use super::error::ApplyError;
use super::result::{Applied, ApplyResult};
use crate::error::EtcdError;
use crate::membership::SharedCluster;
use crate::raft::Committed;
use crate::v2::V2Store;

/// A conf change's outcome: the proposer's ID (0: none waits) and its result.
pub struct ConfChangeApplied {
    pub id: u64,
    pub result: ApplyResult,
}

type Change = (ConfChangeType, u64, Vec<u8>);

/// The single changes of a conf change entry (v1 or v2) with the member context.
fn changes(c: &Committed) -> Result<Vec<Change>, BackendError> {
    use protobuf::Message as _;
    let e = &c.entry;
    Ok(match e.get_entry_type() {
        EntryType::EntryConfChange => {
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
    })
}

pub fn apply_conf_change(
    b: &mut Batch<'_, '_, '_>,
    shared: &SharedCluster,
    v2: &RwLock<V2Store>,
    member_id: u64,
    c: &Committed,
) -> Result<ConfChangeApplied, ApplyError> {
    let id = <[u8; 8]>::try_from(c.entry.context.as_ref()).map_or(0, u64::from_be_bytes);
    if let Some(reason) = &c.conf_error {
        let result = Err(EtcdError::Internal(format!(
            "raft refused the configuration change: {reason}"
        )));
        return Ok(ConfChangeApplied { id, result });
    }
    let changes = changes(c)?;
    let cluster = b.effects.cluster(|| shared.get());
    let mut removed_self = false;
    for (kind, node, ctx) in changes {
        match kind {
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                let learner = kind == ConfChangeType::AddLearnerNode;
                let m = match cluster.members.get(&node) {
                    // Promotion (or a repeated add): only the learner flag changes.
                    Some(m) => {
                        let m = Member {
                            is_learner: learner,
                            ..m.clone()
                        };
                        crate::v2::members::update(&mut v2.write(), &m);
                        m
                    }
                    None => {
                        let m = Member {
                            id: node,
                            is_learner: learner,
                            ..Member::decode(ctx.as_slice()).map_err(corrupt)?
                        };
                        crate::v2::members::add(&mut v2.write(), &m);
                        m
                    }
                };
                members::save(b.tx, &m)?;
                cluster.members.insert(node, m);
            }
            ConfChangeType::RemoveNode => {
                members::remove(b.tx, node)?;
                cluster.members.remove(&node);
                crate::v2::members::remove(&mut v2.write(), node);
                removed_self |= node == member_id;
            }
        }
    }
    let members = cluster.members.values().cloned().collect();
    b.effects.removed_self |= removed_self;
    b.effects.v2_changed = true;
    Ok(ConfChangeApplied {
        id,
        result: Ok(Applied::Members(members)),
    })
}

/// A member's name and client URLs, published once it started (etcd's publish).
pub fn set_attributes(
    b: &mut Batch<'_, '_, '_>,
    shared: &SharedCluster,
    v2: &RwLock<V2Store>,
    a: MemberAttributes,
) -> Result<ApplyResult, ApplyError> {
    let cluster = b.effects.cluster(|| shared.get());
    if let Some(m) = cluster.members.get_mut(&a.member_id) {
        m.name = a.name;
        m.client_urls = a.client_urls;
        members::save(b.tx, m)?;
        crate::v2::members::publish(&mut v2.write(), m);
        b.effects.v2_changed = true;
    }
    Ok(Ok(Applied::Done))
}

pub fn update_peer_urls(
    b: &mut Batch<'_, '_, '_>,
    shared: &SharedCluster,
    v2: &RwLock<V2Store>,
    u: MemberPeerUrls,
) -> Result<ApplyResult, ApplyError> {
    let cluster = b.effects.cluster(|| shared.get());
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
    members::save(b.tx, m)?;
    crate::v2::members::update(&mut v2.write(), m);
    let members = cluster.members.values().cloned().collect();
    b.effects.v2_changed = true;
    Ok(Ok(Applied::Members(members)))
}

/// A downgrade job enabled or cancelled (etcd's `SetDowngradeInfo`).
pub fn set_downgrade(
    b: &mut Batch<'_, '_, '_>,
    shared: &SharedCluster,
    d: DowngradeInfoSet,
) -> Result<ApplyResult, ApplyError> {
    members::set_downgrade(b.tx, &d)?;
    match d.enabled {
        true => tracing::info!(target_version = %d.ver, "the server is ready to downgrade"),
        false => tracing::info!("the cluster is not downgrading"),
    }
    b.effects.cluster(|| shared.get()).downgrade = Some(d);
    Ok(Ok(Applied::Done))
}

fn corrupt(e: impl std::fmt::Display) -> BackendError {
    BackendError::Corrupt {
        what: format!("conf change entry: {e}"),
    }
}
