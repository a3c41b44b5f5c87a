//! What a stopped etcd member left on disk, read as etcd's own restart reads it: the
//! newest `.snap` file the WAL has a snapshot record for, the WAL from there on (a torn
//! tail ends it, damage anywhere else is an error), and the backend, switching to a
//! received `<index>.snap.db` when the `db` is behind the snapshot as etcd does.

use std::path::{Path, PathBuf};

use chorus_etcd_format::backend::{Backend as EtcdBackend, MetaInfo};
use chorus_etcd_format::proto::etcdserverpb_raft::Metadata;
use chorus_etcd_format::proto::raftpb::{self, Entry, HardState};
use chorus_etcd_format::snap::{list_snap_files, read_snap_file, SnapFile};
use chorus_etcd_format::wal::{self, TornTail, WalContents, WalError};

use super::TakeoverError;

/// An etcd member's raft log and backend.
pub struct EtcdMember {
    /// The WAL's metadata: member and cluster IDs.
    pub metadata: Metadata,
    /// The last hard state in the WAL.
    pub hard_state: HardState,
    /// The `.snap` file the log starts from, if any.
    pub snapshot: Option<(SnapFile, raftpb::Snapshot)>,
    /// Entries after the snapshot (or all of them), torn tail excluded.
    pub entries: Vec<Entry>,
    /// Where a torn write ended the WAL.
    pub torn_tail: Option<TornTail>,
    /// The backend file in use and its `meta` bucket.
    pub db_path: PathBuf,
    pub backend: EtcdBackend,
    pub meta: MetaInfo,
}

impl EtcdMember {
    /// Reads the member whose files are in `snap_dir` and `wal_dir`.
    pub fn read(snap_dir: &Path, wal_dir: &Path) -> Result<EtcdMember, TakeoverError> {
        let (snapshot, contents) = read_log(snap_dir, wal_dir)?;
        let metadata = contents
            .metadata
            .ok_or_else(|| TakeoverError::NoWalMetadata(wal_dir.to_owned()))?;
        let snap_index = snapshot.as_ref().map_or(0, |(f, _)| f.index);
        let (db_path, backend, meta) = open_backend(snap_dir, snap_index)?;
        Ok(EtcdMember {
            metadata,
            hard_state: contents.hard_state.unwrap_or_default(),
            snapshot,
            entries: contents.entries,
            torn_tail: contents.torn_tail,
            db_path,
            backend,
            meta,
        })
    }

    /// The term of the entry at `index`: from the WAL, else the snapshot's if it is there.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if let Some((f, _)) = self.snapshot.as_ref().filter(|(f, _)| f.index == index) {
            return Some(f.term);
        }
        let first = self.entries.first()?.index;
        let pos = index.checked_sub(first)?;
        self.entries.get(pos as usize).map(|e| e.term)
    }
}

/// The newest snapshot the WAL can be read from, and the WAL read from it.
fn read_log(
    snap_dir: &Path,
    wal_dir: &Path,
) -> Result<(Option<(SnapFile, raftpb::Snapshot)>, WalContents), TakeoverError> {
    let snap_files = match list_snap_files(snap_dir) {
        Ok(files) => files,
        Err(e) => return Err(TakeoverError::Snap(e)),
    };
    for file in snap_files.into_iter().rev() {
        let snap = match read_snap_file(&file.path) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(file = %file.path.display(), "etcd takeover: skipping an unreadable snap file: {e}");
                continue;
            }
        };
        match wal::read_all(wal_dir, Some((file.index, file.term))) {
            Ok(contents) => return Ok((Some((file, snap)), contents)),
            Err(WalError::SnapshotNotFound { .. }) => continue,
            Err(e) => return Err(TakeoverError::Wal(e)),
        }
    }
    let contents = wal::read_all(wal_dir, None).map_err(TakeoverError::Wal)?;
    Ok((None, contents))
}

/// `member/snap/db`, or the snapshot backend etcd received but had not moved into place
/// (`<index>.snap.db`) when the db's consistent index is behind the snapshot.
fn open_backend(
    snap_dir: &Path,
    snap_index: u64,
) -> Result<(PathBuf, EtcdBackend, MetaInfo), TakeoverError> {
    let db = snap_dir.join("db");
    if !db.exists() {
        return Err(TakeoverError::NoBackend(db));
    }
    let backend = EtcdBackend::open(&db)?;
    let meta = backend.meta()?;
    if meta.consistent_index.unwrap_or(0) >= snap_index {
        return Ok((db, backend, meta));
    }
    let received = snap_dir.join(format!("{snap_index:016x}.snap.db"));
    if received.exists() {
        let backend = EtcdBackend::open(&received)?;
        let meta = backend.meta()?;
        if meta.consistent_index.unwrap_or(0) >= snap_index {
            return Ok((received, backend, meta));
        }
    }
    Err(TakeoverError::BackendBehind {
        ci: meta.consistent_index.unwrap_or(0),
        snapshot: snap_index,
    })
}
