//! Is etcd still running on the directory? etcd holds two kinds of lock while it runs:
//! bbolt takes `flock(LOCK_EX)` on `member/snap/db`, and etcd's `fileutil` locks every WAL
//! segment it has open for writing. On Linux `fileutil` uses open-file-description record
//! locks (`fcntl(F_OFD_SETLK)`) when the kernel has them, `flock` otherwise; the two kinds
//! do not see each other, so each file is tried with both. The locks are held for the
//! whole conversion, so an etcd started meanwhile cannot open the files either.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::TakeoverError;

/// Locks held on etcd's files until dropped.
#[derive(Debug)]
pub struct EtcdLocks {
    _files: Vec<File>,
}

/// Takes every lock etcd would hold on `db` and `segments`; refuses if one is taken.
pub fn lock_etcd_files(db: &Path, segments: &[PathBuf]) -> Result<EtcdLocks, TakeoverError> {
    let mut files = Vec::with_capacity(segments.len() + 1);
    for path in std::iter::once(db).chain(segments.iter().map(PathBuf::as_path)) {
        if !path.exists() {
            continue;
        }
        let io = |source| TakeoverError::Io {
            path: path.to_owned(),
            op: "open for locking",
            source,
        };
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        for (kind, taken) in [("flock", try_flock(&file)), ("fcntl", try_ofd_lock(&file))] {
            if !taken.map_err(io)? {
                return Err(TakeoverError::EtcdRunning {
                    file: path.to_owned(),
                    lock: kind,
                });
            }
        }
        files.push(file);
    }
    Ok(EtcdLocks { _files: files })
}

/// `flock(LOCK_EX | LOCK_NB)`: `Ok(false)` when another open file holds it.
fn try_flock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock(2) on a descriptor this function's caller owns; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(err),
    }
}

/// An open-file-description write lock on the whole file (etcd's `ofdTryLockFile`):
/// `Ok(false)` when another open file holds a conflicting one. Kernels without OFD locks
/// (EINVAL) cannot have had etcd take one, so they count as free.
fn try_ofd_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: a zeroed `flock` is a valid value of the plain C struct.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl(2) with F_OFD_SETLK reads the struct we pass for the call's duration.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        Some(libc::EINVAL) => Ok(true),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_of_either_kind_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let (db, wal) = (dir.path().join("db"), dir.path().join("0.wal"));
        std::fs::write(&db, b"x").unwrap();
        std::fs::write(&wal, b"x").unwrap();
        let segs = [wal.clone()];
        // Free: taken, then released on drop.
        drop(lock_etcd_files(&db, &segs).unwrap());
        // bbolt's flock on the db, from another open file.
        let holder = File::open(&db).unwrap();
        assert!(try_flock(&holder).unwrap());
        let err = lock_etcd_files(&db, &segs).unwrap_err();
        assert!(
            matches!(err, TakeoverError::EtcdRunning { lock: "flock", .. }),
            "{err}"
        );
        drop(holder);
        // etcd's OFD lock on a WAL segment.
        let holder = File::options().read(true).write(true).open(&wal).unwrap();
        assert!(try_ofd_lock(&holder).unwrap());
        let err = lock_etcd_files(&db, &segs).unwrap_err();
        assert!(
            matches!(err, TakeoverError::EtcdRunning { lock: "fcntl", .. }),
            "{err}"
        );
        drop(holder);
        drop(lock_etcd_files(&db, &segs).unwrap());
    }
}
