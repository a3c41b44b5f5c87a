//! What a member starts from: a new member of a new cluster (`bootstrap`), a member that
//! restarts from its data dir (`restart`), or a new member of a running cluster (`join`).
//! A data dir a stopped etcd member left is converted first (`chorus_datadir::takeover`),
//! then restarted like any other.

use std::sync::Arc;
use std::time::Duration;

use chorus_api::peerpb::MembersResponse;
use chorus_config::Config;
use chorus_datadir::layout::{backend_path, defrag_copy_path, received_snapshot_path};
use chorus_datadir::member::wal_options;
use chorus_datadir::takeover::{take_over, TakeoverOptions};
use chorus_datadir::WalMetadata;
use chorus_storage::backend::{consistent_index, Backend, BackendOptions};
use chorus_storage::members;
use chorus_storage::snap::Snapshotter;
use chorus_storage::wal::{Wal, WalSnapshot};
use raft::eraftpb::{ConfState, HardState, SnapshotMetadata};

use super::error::StartError;
use crate::peer::PeerDialer;
use crate::raft::storage::RaftStorage;

/// State recovered from (or created on) disk before the threads start.
pub struct Recovered {
    pub member_id: u64,
    pub cluster_id: u64,
    pub storage: RaftStorage,
    pub wal: Wal,
    pub backend: Arc<Backend>,
    pub snapshot: SnapshotMetadata,
}

/// Converts an etcd member's data dir in place, or finishes a conversion an earlier
/// start did not finish; `true` when the data dir is now a chorus member's to restart.
pub fn take_over_etcd(cfg: &Config, backend_opts: &BackendOptions) -> Result<bool, StartError> {
    let opts = TakeoverOptions {
        wal: wal_options(cfg),
        backend: backend_opts.clone(),
        v2: Some(crate::v2::takeover::build),
    };
    Ok(take_over(cfg, &opts)?.is_some())
}

/// A new member of a new cluster (`--initial-cluster-state new`).
pub fn bootstrap(cfg: &Config, backend_opts: &BackendOptions) -> Result<Recovered, StartError> {
    let boot = cfg.bootstrap_cluster()?;
    let snap_dir = cfg.snap_dir();
    let _ = std::fs::remove_file(backend_path(&snap_dir));
    let backend = Backend::open(&backend_path(&snap_dir), backend_opts)?;
    let m = chorus_datadir::init_member(cfg, &boot, backend, &Snapshotter::new(snap_dir))?;
    crate::v2::persist::seed_members(&m.backend)?;
    Ok(Recovered {
        member_id: m.member_id,
        cluster_id: m.cluster_id,
        storage: RaftStorage::new(m.snapshot.clone(), m.hard_state, Vec::new()),
        wal: m.wal,
        backend: Arc::new(m.backend),
        snapshot: m.snapshot,
    })
}

/// `--initial-cluster-state existing`: asks the other members of `--initial-cluster` for
/// the cluster, finds this member in it (added beforehand with `member add`) by its peer
/// URLs, and starts with an empty log: the leader sends a snapshot with the data and the
/// membership.
pub async fn join(
    cfg: &Config,
    backend_opts: &BackendOptions,
    dialer: &PeerDialer,
) -> Result<Recovered, StartError> {
    let mut ours: Vec<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(|u| u.to_string())
        .collect();
    ours.sort();
    let remote = ask_members(cfg, dialer, &ours).await?;
    let Some(me) = member_with_urls(&remote, &ours) else {
        return Err(StartError::NotAMember {
            cluster_id: remote.cluster_id,
            peer_urls: ours.join(","),
        });
    };
    if remote.removed.contains(&me.id) {
        return Err(StartError::Removed);
    }
    check_joinable(cfg, &remote.cluster_version)?;
    let snap_dir = cfg.snap_dir();
    let _ = std::fs::remove_file(backend_path(&snap_dir));
    let backend = Backend::open(&backend_path(&snap_dir), backend_opts)?;
    {
        let tx = backend.begin_durable_write()?;
        for m in &remote.members {
            members::save(&tx, m)?;
        }
        members::set_cluster_id(&tx, remote.cluster_id)?;
        tx.commit()
            .map_err(chorus_storage::backend::BackendError::from)?;
    }
    let metadata = WalMetadata {
        member_id: me.id,
        cluster_id: remote.cluster_id,
        conf_state: ConfState::default(),
    };
    let wal = Wal::create(&cfg.wal_dir(), &metadata.encode(), wal_options(cfg))?;
    tracing::info!(
        member = %format!("{:x}", me.id),
        cluster = %format!("{:x}", remote.cluster_id),
        members = remote.members.len(),
        "joining an existing cluster"
    );
    let meta = SnapshotMetadata::default();
    Ok(Recovered {
        member_id: me.id,
        cluster_id: remote.cluster_id,
        storage: RaftStorage::new(meta.clone(), HardState::default(), Vec::new()),
        wal,
        backend: Arc::new(backend),
        snapshot: meta,
    })
}

/// The running cluster's version (empty: not decided, or a chorus that does not report
/// it) must be one this member can run at (etcd's `isCompatibleWithCluster`).
fn check_joinable(cfg: &Config, cluster_version: &str) -> Result<(), StartError> {
    let Some(cv) = crate::cluster_version::Version::parse_semver(cluster_version) else {
        return Ok(());
    };
    let server = crate::cluster_version::server_version();
    crate::cluster_version::rules::check_joinable(server, cv, cfg.next_cluster_version_compatible)?;
    Ok(())
}

/// The cluster as the other members of `--initial-cluster` see it. The first answer that
/// lists a member with the (sorted) peer URLs `ours` wins, else the first answer: a
/// follower a moment behind the leader that acknowledged our `member add` answers
/// without us, so the other members are asked before its answer is taken.
async fn ask_members(
    cfg: &Config,
    dialer: &PeerDialer,
    ours: &[String],
) -> Result<MembersResponse, StartError> {
    let boot = cfg.bootstrap_cluster()?;
    let mut failures = Vec::new();
    let mut without_us = None;
    for m in boot.members.iter().filter(|m| m.name != cfg.name) {
        for url in &m.peer_urls {
            match dialer.ask_members(url, Duration::from_secs(5)).await {
                Ok(r) if member_with_urls(&r, ours).is_some() => return Ok(r),
                Ok(r) => {
                    without_us.get_or_insert(r);
                }
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
    }
    without_us.ok_or_else(|| StartError::NoClusterInfo(failures.join("; ")))
}

/// The member of `remote` whose peer URLs are the (sorted) `ours`.
fn member_with_urls<'r>(
    remote: &'r MembersResponse,
    ours: &[String],
) -> Option<&'r chorus_api::internalpb::Member> {
    remote.members.iter().find(|m| {
        let mut urls = m.peer_urls.clone();
        urls.sort();
        urls == ours
    })
}

/// A member that restarts from its data dir: the newest snapshot the WAL knows, the
/// backend (finishing the move of one received from the leader), the WAL after it.
pub fn restart(
    cfg: &Config,
    snapshotter: &Snapshotter,
    backend_opts: &BackendOptions,
) -> Result<Recovered, StartError> {
    take_over_etcd(cfg, backend_opts)?;
    let wal_dir = cfg.wal_dir();
    let markers = Wal::valid_snapshot_markers(&wal_dir)?;
    let snap = snapshotter.load_newest_available(&markers)?;
    let snapshot_meta = snap.map(|s| s.get_metadata().clone());
    let mut meta = snapshot_meta.clone().unwrap_or_default();
    let mut backend = open_backend(cfg, backend_opts, meta.index)?;
    super::host::defrag_if_fragmented(cfg, &mut backend)?;
    let (mut wal, mut replay) = Wal::open(
        &wal_dir,
        WalSnapshot {
            index: meta.index,
            term: meta.term,
        },
        wal_options(cfg),
    )?;
    let wal_meta = WalMetadata::decode(&replay.metadata).ok_or(StartError::NotChorusWal)?;
    if snapshot_meta.is_none() {
        meta.set_conf_state(wal_meta.conf_state);
    }
    if cfg.force_new_cluster {
        let me = this_member(cfg, &backend, wal_meta.member_id)?;
        let ci = consistent_index(&backend)?;
        super::force::force_new_cluster(&mut wal, &mut replay, meta.get_conf_state(), me, ci)?;
    }
    tracing::info!(
        member = %format!("{:x}", wal_meta.member_id),
        cluster = %format!("{:x}", wal_meta.cluster_id),
        snapshot_index = meta.index,
        entries = replay.entries.len(),
        commit = replay.hard_state.commit,
        "restarting member"
    );
    Ok(Recovered {
        member_id: wal_meta.member_id,
        cluster_id: wal_meta.cluster_id,
        storage: RaftStorage::new(meta.clone(), replay.hard_state, replay.entries),
        wal,
        backend: Arc::new(backend),
        snapshot: meta,
    })
}

/// This member as the backend records it (as `--initial-advertise-peer-urls` says if it
/// does not).
fn this_member(
    cfg: &Config,
    backend: &Backend,
    id: u64,
) -> Result<chorus_api::internalpb::Member, StartError> {
    Ok(match members::load(backend)?.remove(&id) {
        Some(m) => m,
        None => chorus_api::internalpb::Member {
            id,
            name: cfg.name.clone(),
            peer_urls: cfg
                .initial_advertise_peer_urls
                .iter()
                .map(|u| u.to_string())
                .collect(),
            ..Default::default()
        },
    })
}

/// The backend at or past the snapshot at `index`. A snapshot from the leader may have
/// been recorded before its backend file was moved into place: finish the move.
fn open_backend(
    cfg: &Config,
    backend_opts: &BackendOptions,
    index: u64,
) -> Result<Backend, StartError> {
    let snap_dir = cfg.snap_dir();
    let db = backend_path(&snap_dir);
    let copy = defrag_copy_path(&snap_dir);
    if std::fs::remove_file(&copy).is_ok() {
        tracing::warn!(file = %copy.display(), "removed the copy an interrupted defragment left");
    }
    let received = received_snapshot_path(&snap_dir, index);
    if index > 0 && received.exists() {
        let backend = Backend::open(&db, backend_opts)?;
        let ci = consistent_index(&backend)?;
        drop(backend);
        if ci < index {
            std::fs::rename(&received, &db).map_err(|source| StartError::Io {
                path: received.clone(),
                source,
            })?;
        } else {
            let _ = std::fs::remove_file(&received);
        }
    }
    // Every page is checked against its checksum before anything is served: a bit
    // flipped on disk refuses the start (docs/robustness.md, "Disk faults").
    let backend = Backend::open_verified(&db, backend_opts)?;
    let ci = consistent_index(&backend)?;
    if ci < index {
        return Err(StartError::BackendBehind { ci, index });
    }
    Ok(backend)
}
