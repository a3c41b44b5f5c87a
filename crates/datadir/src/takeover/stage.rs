//! chorus's files for the taken-over member, written beside etcd's (in
//! `member.chorus-takeover/`, and `<wal-dir>.chorus-takeover/` for a separate WAL dir),
//! complete and durable before anything of etcd's moves. The `TAKEOVER-READY` marker,
//! written last, records where etcd's files will go.

use std::path::Path;

use chorus_storage::backend::{self, meta_keys, Backend, BackendError};
use chorus_storage::members;
use chorus_storage::snap::Snapshotter;
use chorus_storage::wal::{Wal, WalSnapshot};
use raft::eraftpb::{Snapshot, SnapshotMetadata};

use super::etcd_member::EtcdMember;
use super::plan::Plan;
use super::{Paths, TakeoverError, TakeoverOptions};
use crate::import::{import_backend, ImportSummary};
use crate::WalMetadata;

/// The marker file of a complete staging dir.
pub const READY: &str = "TAKEOVER-READY";

/// Entries per WAL write.
const WAL_BATCH: usize = 1024;

fn chorus(e: impl std::fmt::Display) -> TakeoverError {
    TakeoverError::Chorus(e.to_string())
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> TakeoverError + 'a {
    move |source| TakeoverError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

/// Removes what a failed or abandoned staging left.
pub fn remove(paths: &Paths) {
    let _ = std::fs::remove_dir_all(&paths.staging);
    if paths.separate_wal {
        let _ = std::fs::remove_dir_all(&paths.staging_wal);
    }
}

/// Writes the chorus member's backend, raft snapshot and WAL, then the marker.
pub fn write(
    paths: &Paths,
    m: &EtcdMember,
    plan: &Plan,
    opts: &TakeoverOptions,
) -> Result<ImportSummary, TakeoverError> {
    remove(paths);
    let snap_dir = paths.staging.join("snap");
    std::fs::create_dir_all(&snap_dir).map_err(io(&snap_dir, "create"))?;
    let backend = Backend::open(&snap_dir.join("db"), &opts.backend).map_err(chorus)?;
    let import = import_backend(&m.backend, &backend)?;
    write_membership(&backend, plan).map_err(chorus)?;
    if let Some(build) = opts.v2 {
        write_v2(&backend, m, plan, build)?;
    }
    drop(backend);
    let mut meta = SnapshotMetadata {
        index: plan.index,
        term: plan.term,
        ..Default::default()
    };
    meta.set_conf_state(plan.conf.clone());
    let mut snapshot = Snapshot::default();
    snapshot.set_metadata(meta);
    Snapshotter::new(&snap_dir)
        .save(&snapshot)
        .map_err(chorus)?;
    write_wal(paths, plan, opts)?;
    write_marker(paths)?;
    Ok(import)
}

/// etcd's members, removed members and cluster ID, and the raft position.
fn write_membership(backend: &Backend, plan: &Plan) -> Result<(), BackendError> {
    let tx = backend.begin_durable_write()?;
    members::clear(&tx)?;
    for m in &plan.members {
        members::save(&tx, m)?;
    }
    for id in &plan.removed {
        members::remove(&tx, *id)?;
    }
    members::set_cluster_id(&tx, plan.cluster_id)?;
    {
        let mut meta = tx.open_table(backend::META)?;
        backend::put_meta_u64(&mut meta, meta_keys::CONSISTENT_INDEX, plan.index)?;
        backend::put_meta_u64(&mut meta, meta_keys::TERM, plan.term)?;
    }
    tx.commit()?;
    Ok(())
}

/// etcd's v2 store as of the consistent index, in chorus's form.
fn write_v2(
    backend: &Backend,
    m: &EtcdMember,
    plan: &Plan,
    build: super::V2Builder,
) -> Result<(), TakeoverError> {
    let seed = super::v2::seed(m, plan.index, &plan.members)?;
    let blob = build(&seed).map_err(TakeoverError::V2Store)?;
    save_v2(backend, &blob).map_err(chorus)?;
    tracing::info!(
        from_snapshot = seed.tree.is_some(),
        v2_index_at_snapshot = seed.tree.as_ref().map_or(0, |t| t.current_index),
        keys = seed.keys(),
        replayed_writes = seed.requests.len(),
        "etcd takeover: v2 store carried over (the snapshot's tree and the v2 writes up to the consistent index)"
    );
    Ok(())
}

fn save_v2(backend: &Backend, blob: &[u8]) -> Result<(), BackendError> {
    let tx = backend.begin_durable_write()?;
    tx.open_table(backend::META)?
        .insert(meta_keys::V2_STORE, blob)?;
    tx.commit()?;
    Ok(())
}

/// A chorus WAL: the member's metadata, a snapshot marker at the consistent index, the
/// translated entries, etcd's hard state last.
fn write_wal(paths: &Paths, plan: &Plan, opts: &TakeoverOptions) -> Result<(), TakeoverError> {
    let metadata = WalMetadata {
        member_id: plan.member_id,
        cluster_id: plan.cluster_id,
        conf_state: plan.conf.clone(),
    };
    let mut wal =
        Wal::create(&paths.staging_wal, &metadata.encode(), opts.wal.clone()).map_err(chorus)?;
    wal.save_snapshot(WalSnapshot {
        index: plan.index,
        term: plan.term,
    })
    .map_err(chorus)?;
    for batch in plan.entries.chunks(WAL_BATCH) {
        wal.save(None, batch, false).map_err(chorus)?;
    }
    wal.save(Some(&plan.hard_state), &[], true)
        .map_err(chorus)?;
    Ok(())
}

fn write_marker(paths: &Paths) -> Result<(), TakeoverError> {
    let backups = super::swap::Backups::new(paths);
    let path = paths.staging.join(READY);
    let text = serde_json::to_vec_pretty(&backups).expect("JSON of a struct");
    std::fs::write(&path, text).map_err(io(&path, "write"))?;
    let file = std::fs::File::open(&path).map_err(io(&path, "open"))?;
    file.sync_all().map_err(io(&path, "fsync"))?;
    super::swap::sync_dir(&paths.staging)?;
    super::swap::sync_dir(&paths.data_dir)
}
