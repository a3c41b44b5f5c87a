//! Where a member keeps its files under `member/snap` (the WAL and snap directories
//! themselves come from the configuration: `Config::wal_dir`, `Config::snap_dir`).

use std::path::{Path, PathBuf};

/// The backend file.
pub fn backend_path(snap_dir: &Path) -> PathBuf {
    snap_dir.join("db")
}

/// The backend file a snapshot from the leader is received into.
pub fn received_snapshot_path(snap_dir: &Path, index: u64) -> PathBuf {
    snap_dir.join(format!("{index:016x}.snap.db"))
}

/// Where a defragment writes the compacted copy before it replaces the backend; a crash
/// can leave it behind, and the next start removes it.
pub fn defrag_copy_path(snap_dir: &Path) -> PathBuf {
    snap_dir.join("defrag.db.tmp")
}

/// Creates a data directory (mode 0700, like etcd) and checks that it is writable
/// (etcd's TouchDirAll).
pub fn create_dir(dir: &Path) -> Result<(), crate::DataDirError> {
    let access = |source| crate::DataDirError::Access {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(access)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let probe = dir.join(".touch");
    std::fs::write(&probe, b"").map_err(access)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}
