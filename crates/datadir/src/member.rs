//! A new member's files: the backend's membership and raft position, a fresh WAL and the
//! raft snapshot it starts from.

use chorus_api::internalpb::Member;
use chorus_config::{BootstrapCluster, Config};
use chorus_storage::backend::{self, Backend};
use chorus_storage::members;
use chorus_storage::snap::Snapshotter;
use chorus_storage::wal::{Wal, WalOptions, WalSnapshot};
use raft::eraftpb::{ConfState, HardState, SnapshotMetadata};

use crate::{DataDirError, WalMetadata};

/// What a freshly initialised member starts from.
pub struct NewMember {
    pub member_id: u64,
    pub cluster_id: u64,
    pub backend: Backend,
    pub wal: Wal,
    pub hard_state: HardState,
    pub snapshot: SnapshotMetadata,
}

/// The WAL options of a member's configuration.
pub fn wal_options(cfg: &Config) -> WalOptions {
    WalOptions {
        unsafe_no_fsync: cfg.unsafe_no_fsync,
        ..Default::default()
    }
}

/// Makes `backend` (empty, or restored from a snapshot) the state of a new member of a
/// new cluster: its members and cluster ID, and a fresh WAL.
///
/// Where etcd writes one conf-change entry per initial member at term 1 (indexes 1..=n),
/// chorus starts every member from a raft snapshot at index n, term 1, holding the
/// initial configuration: the same indexes and terms as etcd from then on, and a member
/// that joins later receives a snapshot (with the membership) rather than log entries
/// that could not tell it who the initial members were.
pub fn init_member(
    cfg: &Config,
    boot: &BootstrapCluster,
    backend: Backend,
    snapshotter: &Snapshotter,
) -> Result<NewMember, DataDirError> {
    let index = boot.members.len() as u64;
    write_membership(&backend, boot, index)?;
    // Every member starts from the same configuration: all initial members are voters.
    let conf = ConfState {
        voters: boot.members.iter().map(|m| m.id).collect(),
        ..Default::default()
    };
    let metadata = WalMetadata {
        member_id: boot.local_id,
        cluster_id: boot.cluster_id,
        conf_state: conf.clone(),
    };
    let mut wal = Wal::create(&cfg.wal_dir(), &metadata.encode(), wal_options(cfg))?;
    let mut meta = SnapshotMetadata {
        index,
        term: 1,
        ..Default::default()
    };
    meta.set_conf_state(conf);
    let mut snap = raft::eraftpb::Snapshot::default();
    snap.set_metadata(meta.clone());
    snapshotter.save(&snap)?;
    wal.save_snapshot(WalSnapshot { index, term: 1 })?;
    let hard_state = HardState {
        term: 1,
        commit: index,
        ..Default::default()
    };
    wal.save(Some(&hard_state), &[], true)?;
    tracing::info!(
        member = %format!("{:x}", boot.local_id),
        cluster = %format!("{:x}", boot.cluster_id),
        members = boot.members.len(),
        "bootstrapped a new member"
    );
    Ok(NewMember {
        member_id: boot.local_id,
        cluster_id: boot.cluster_id,
        backend,
        wal,
        hard_state,
        snapshot: meta,
    })
}

/// A restored backend keeps the KV data, leases and the v2 store; membership and raft
/// positions belong to the old cluster and are replaced by the new one's.
fn write_membership(
    backend: &Backend,
    boot: &BootstrapCluster,
    index: u64,
) -> Result<(), backend::BackendError> {
    let tx = backend.begin_durable_write()?;
    members::clear(&tx)?;
    for m in &boot.members {
        let member = Member {
            id: m.id,
            name: m.name.clone(),
            peer_urls: m.peer_urls.clone(),
            client_urls: Vec::new(),
            is_learner: false,
        };
        members::save(&tx, &member)?;
    }
    members::set_cluster_id(&tx, boot.cluster_id)?;
    {
        let mut meta = tx.open_table(backend::META)?;
        backend::put_meta_u64(&mut meta, backend::meta_keys::CONSISTENT_INDEX, index)?;
        backend::put_meta_u64(&mut meta, backend::meta_keys::TERM, 1)?;
    }
    tx.commit()?;
    Ok(())
}
