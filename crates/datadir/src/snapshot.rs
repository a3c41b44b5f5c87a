//! Backup files in either of two formats, told apart by their content:
//!
//! * **etcd's** (what `snapshot save` gets from etcd, and from chorus since ADR 0007): a
//!   bbolt backend plus the SHA-256 of it ([`crate::etcd_snapshot`]);
//! * **chorus's dump** (what chorus's Maintenance.Snapshot sent before ADR 0007): the
//!   backend as a logical dump, zero-padded to a multiple of 512 bytes, then the SHA-256
//!   of all that.
//!
//! `restore` makes the data directory of a member of a *new* cluster from a backup, as
//! `etcdctl snapshot restore` does: the keys, revisions, leases, auth and alarms come
//! from the file; membership comes from `--initial-cluster`.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chorus_config::Config;
use chorus_storage::backend::{self, Backend, BackendOptions};
use chorus_storage::mvcc::KvStore;
use redb::ReadableTableMetadata;

use crate::etcd_snapshot::{self, HashMismatch};
use crate::{init_member, DataDirError};

const DIGEST_LEN: u64 = 32;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The file does not open (etcd: `open <path>: <reason>`).
    #[error("open {p}: {e}", p = .0.display(), e = .1)]
    Open(PathBuf, std::io::Error),
    /// Shorter than a digest: etcd's seek to the digest fails.
    #[error("seek {p}: invalid argument", p = .0.display())]
    Seek(PathBuf),
    #[error("snapshot missing hash but --skip-hash-check=false")]
    MissingHash,
    #[error("{0}")]
    HashMismatch(HashMismatch),
    #[error("snapshot file integrity check failed. {0}")]
    Integrity(String),
    #[error("data-dir {0:?} exists")]
    DataDirExists(PathBuf),
    #[error("wal-dir {0:?} exists")]
    WalDirExists(PathBuf),
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
    #[error(transparent)]
    Mvcc(#[from] chorus_storage::mvcc::MvccError),
}

/// The two backup formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotFormat {
    /// A bbolt backend (etcd's, or chorus's export of its own).
    Etcd,
    /// chorus's logical dump.
    Chorus,
}

/// Tells the formats apart by content: bbolt's magic number in a meta page (page 0, or
/// page 1 of a 4 KiB-page file) means etcd's; anything else is taken for a dump, whose
/// CRC then decides.
pub fn format_of(path: &Path) -> Result<SnapshotFormat, SnapshotError> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path).map_err(|e| SnapshotError::Open(path.to_owned(), e))?;
    let magic = chorus_etcd_format::bbolt::page::MAGIC.to_le_bytes();
    for offset in [16u64, 4096 + 16] {
        let mut b = [0u8; 4];
        if file.read_exact_at(&mut b, offset).is_ok() && b == magic {
            return Ok(SnapshotFormat::Etcd);
        }
    }
    Ok(SnapshotFormat::Chorus)
}

/// What `snapshot status` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// CRC-32C of the dump (chorus's Maintenance.Hash of the same state).
    pub hash: u32,
    /// The store's revision.
    pub revision: i64,
    /// Records in every table (etcd counts the keys of every bbolt bucket).
    pub total_keys: u64,
    /// The file size in bytes.
    pub total_size: u64,
}

/// Opens a backup and checks its digest (unless `skip_hash_check`, for a dump without
/// one); returns the file positioned at the start and the length of the dump in it.
fn open_checked(path: &Path, skip_hash_check: bool) -> Result<(File, u64), SnapshotError> {
    let io = |e| SnapshotError::Io(path.to_owned(), e);
    let mut file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let has_digest = size % 512 == DIGEST_LEN;
    if skip_hash_check {
        let len = if has_digest { size - DIGEST_LEN } else { size };
        return Ok((file, len));
    }
    if !has_digest {
        return Err(SnapshotError::MissingHash);
    }
    let len = size - DIGEST_LEN;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut reader = BufReader::with_capacity(1 << 20, (&mut file).take(len));
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
    }
    let mut want = [0u8; DIGEST_LEN as usize];
    file.read_exact(&mut want).map_err(io)?;
    if digest.finish().as_ref() != want {
        return Err(SnapshotError::Integrity("sha256 mismatch".into()));
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok((file, len))
}

/// Builds a backend at `db` from the backup at `path`.
fn load(path: &Path, skip_hash_check: bool, db: &Path) -> Result<Backend, SnapshotError> {
    let (file, len) = open_checked(path, skip_hash_check)?;
    let mut input = BufReader::with_capacity(1 << 20, file.take(len));
    Backend::restore(&mut input, db, &BackendOptions::default()).map_err(|e| match e {
        backend::BackendError::Corrupt { what } => SnapshotError::Integrity(what),
        backend::BackendError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            SnapshotError::Integrity("the dump ends early (truncated)".into())
        }
        other => other.into(),
    })
}

/// `snapshot status`: checks the file and summarizes what it holds, in either format.
pub fn status(path: &Path) -> Result<SnapshotStatus, SnapshotError> {
    match format_of(path)? {
        SnapshotFormat::Etcd => etcd_snapshot::status(path),
        SnapshotFormat::Chorus => chorus_status(path),
    }
}

fn chorus_status(path: &Path) -> Result<SnapshotStatus, SnapshotError> {
    let scratch = scratch_dir()?;
    let result = (|| {
        let backend = std::sync::Arc::new(load(path, false, &scratch.0.join("db"))?);
        let total_size = std::fs::metadata(path)
            .map_err(|e| SnapshotError::Io(path.to_owned(), e))?
            .len();
        let tx = backend.begin_read()?;
        let total_keys = count(&tx, backend::META)?
            + count(&tx, backend::MEMBERS)?
            + count(&tx, backend::REMOVED_MEMBERS)?
            + count(&tx, backend::ALARMS)?
            + count(&tx, backend::LEASES)?
            + count(&tx, backend::KV)?;
        let mut crc = CrcWriter(0);
        Backend::dump(&tx, &mut crc)?;
        drop(tx);
        let (kv, _) = KvStore::open(backend)?;
        Ok(SnapshotStatus {
            hash: crc.0,
            revision: kv.current_rev(),
            total_keys,
            total_size,
        })
    })();
    drop(scratch);
    result
}

/// `snapshot restore`: a new member's data directory (`cfg.data_dir`, `cfg.wal_dir`) from
/// a backup in either format, for the cluster `cfg` describes (`--name`,
/// `--initial-cluster`, `--initial-cluster-token`, `--initial-advertise-peer-urls`). Start
/// every member of the new cluster from the same backup with its own name. Nothing is
/// left behind when it fails.
pub fn restore(
    path: &Path,
    cfg: &Config,
    skip_hash_check: bool,
) -> Result<SnapshotFormat, SnapshotError> {
    if cfg.data_dir.exists() {
        return Err(SnapshotError::DataDirExists(cfg.data_dir.clone()));
    }
    if let Some(wal) = cfg.wal_dir.as_ref().filter(|w| w.exists()) {
        return Err(SnapshotError::WalDirExists(wal.clone()));
    }
    let boot = cfg.bootstrap_cluster().map_err(DataDirError::from)?;
    // Both formats end in the digest the same way: etcd's checks and texts for both,
    // before anything is written.
    etcd_snapshot::check_hash(path, skip_hash_check)?;
    let format = format_of(path)?;
    let result = (|| {
        for dir in [cfg.snap_dir(), cfg.wal_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| SnapshotError::Io(dir.clone(), e))?;
        }
        let db = cfg.snap_dir().join("db");
        let backend = match format {
            SnapshotFormat::Etcd => etcd_snapshot::load(path, &db)?.0,
            SnapshotFormat::Chorus => load(path, true, &db)?,
        };
        let snapshotter = chorus_storage::snap::Snapshotter::new(cfg.snap_dir());
        drop(init_member(cfg, &boot, backend, &snapshotter)?);
        Ok(format)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&cfg.data_dir);
        if let Some(wal) = &cfg.wal_dir {
            let _ = std::fs::remove_dir_all(wal);
        }
    }
    result
}

/// Records in a table.
fn count<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &redb::ReadTransaction,
    table: redb::TableDefinition<K, V>,
) -> Result<u64, backend::BackendError> {
    let t = tx.open_table(table).map_err(backend::BackendError::from)?;
    t.len().map_err(backend::BackendError::from)
}

/// A CRC-32C of everything written to it.
/// A CRC-32C of everything written (the backend hash of `Maintenance.Hash` and
/// `snapshot status`).
pub struct CrcWriter(pub u32);

impl std::io::Write for CrcWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 = crc32c::crc32c_append(self.0, b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir() -> Result<Scratch, SnapshotError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("chorus-snapshot-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| SnapshotError::Io(dir.clone(), e))?;
    Ok(Scratch(dir))
}
