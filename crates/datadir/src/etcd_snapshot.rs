//! etcd's snapshot files (a bbolt backend plus, from `snapshot save`, a SHA-256 trailer):
//! `status` with the numbers `etcdutl snapshot status` prints, and `restore` into a new
//! chorus member, checked as `etcdutl snapshot restore` checks them and with its error
//! texts.
//!
//! ```text
//!  file ─▶ check_hash (size % 512 == 32: trailer) ─▶ bbolt::Db ─▶ import ─▶ init_member
//!            nothing is written until the file passed the check; a file damaged inside
//!            fails the import, and the new data dir is removed again
//! ```

use std::fs::File;
use std::io::Read;
use std::path::Path;

use chorus_etcd_format::backend::{buckets, Backend as EtcdBackend};
use chorus_etcd_format::bbolt::{BoltError, Db, SHA256_TRAILER_LEN};
use chorus_storage::backend::{Backend, BackendOptions};

use crate::import::{import_backend, ImportError, ImportSummary};
use crate::snapshot::{SnapshotError, SnapshotStatus};

/// The SHA-256 of a snapshot file does not match the digest appended to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashMismatch {
    pub expected: [u8; 32],
    pub got: [u8; 32],
}

/// Go's `%v` of a byte slice: `[1 2 3]`.
fn go_bytes(b: &[u8]) -> String {
    let items: Vec<String> = b.iter().map(u8::to_string).collect();
    format!("[{}]", items.join(" "))
}

impl std::fmt::Display for HashMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "expected sha256 {}, got {}",
            go_bytes(&self.expected),
            go_bytes(&self.got)
        )
    }
}

/// etcd's `hasChecksum`: a bbolt file is whole pages, so a size 32 past a multiple of 512
/// means a digest was appended.
pub fn has_trailer(size: u64) -> bool {
    size % 512 == SHA256_TRAILER_LEN
}

/// `etcdutl snapshot restore`'s checks, in its order, before anything is written: the
/// file opens, holds at least a digest's worth of bytes, has the digest unless
/// `skip_hash_check`, and the digest matches.
pub fn check_hash(path: &Path, skip_hash_check: bool) -> Result<(), SnapshotError> {
    let mut file = File::open(path).map_err(|e| SnapshotError::Open(path.to_owned(), e))?;
    let size = file
        .metadata()
        .map_err(|e| SnapshotError::Io(path.to_owned(), e))?
        .len();
    if size < SHA256_TRAILER_LEN {
        return Err(SnapshotError::Seek(path.to_owned()));
    }
    let trailer = has_trailer(size);
    if !trailer && !skip_hash_check {
        return Err(SnapshotError::MissingHash);
    }
    if !trailer || skip_hash_check {
        return Ok(());
    }
    let got = sha256_prefix(&mut file, size - SHA256_TRAILER_LEN)
        .map_err(|e| SnapshotError::Io(path.to_owned(), e))?;
    let mut expected = [0u8; 32];
    file.read_exact(&mut expected)
        .map_err(|e| SnapshotError::Io(path.to_owned(), e))?;
    if got != expected {
        return Err(SnapshotError::HashMismatch(HashMismatch { expected, got }));
    }
    Ok(())
}

/// SHA-256 of the first `len` bytes read from `file`.
fn sha256_prefix(file: &mut File, len: u64) -> std::io::Result<[u8; 32]> {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut reader = file.take(len);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.finish().as_ref());
    Ok(out)
}

fn integrity(e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Integrity(e.to_string())
}

/// `snapshot status` of an etcd file: etcdutl's hash (CRC-32C over every bucket name,
/// key and value, in order), revision (of the last `key` record), total keys and total
/// size (bbolt's high-water mark in bytes). A trailer that does not match the data is an
/// error (etcdutl does not look at it).
pub fn status(path: &Path) -> Result<SnapshotStatus, SnapshotError> {
    let db = Db::open(path).map_err(|e| match e {
        BoltError::Io { source, .. } => SnapshotError::Io(path.to_owned(), source),
        other => integrity(other),
    })?;
    if db.verify_sha256_trailer().map_err(integrity)? == Some(false) {
        return Err(SnapshotError::Integrity("sha256 mismatch".into()));
    }
    let mut crc = 0u32;
    let (mut revision, mut total_keys) = (0i64, 0u64);
    let root = db.root();
    for top in root.iter() {
        let top = top.map_err(integrity)?;
        if !top.is_bucket {
            return Err(integrity(format!(
                "cannot get hash of bucket {}",
                String::from_utf8_lossy(&top.key)
            )));
        }
        crc = crc32c::crc32c_append(crc, &top.key);
        let bucket = root.open_nested(&top.key, &top.value).map_err(integrity)?;
        let is_key = top.key == buckets::KEY;
        for e in bucket.iter() {
            let e = e.map_err(integrity)?;
            crc = crc32c::crc32c_append(crc, &e.key);
            if !e.is_bucket {
                crc = crc32c::crc32c_append(crc, &e.value);
            }
            if is_key {
                revision = revision_main(&e.key).ok_or_else(|| {
                    integrity(format!("bucket \"key\": key of {} bytes", e.key.len()))
                })?;
            }
            total_keys += 1;
        }
    }
    Ok(SnapshotStatus {
        hash: crc,
        revision,
        total_keys,
        total_size: db.meta().pgid * u64::from(db.page_size()),
    })
}

/// etcd's `bytesToRev(k).main`.
fn revision_main(key: &[u8]) -> Option<i64> {
    (key.len() >= 17).then(|| i64::from_be_bytes(key[..8].try_into().expect("8 bytes")))
}

/// Imports an etcd snapshot (already checked with [`check_hash`]) into a new backend at
/// `db`, durably.
pub fn load(path: &Path, db: &Path) -> Result<(Backend, ImportSummary), SnapshotError> {
    let src = EtcdBackend::open(path).map_err(integrity)?;
    let _ = std::fs::remove_file(db);
    let backend = Backend::open(db, &BackendOptions::default())?;
    let summary = import_backend(&src, &backend).map_err(|e| match e {
        ImportError::Backend(b) => SnapshotError::Backend(b),
        other => integrity(other),
    })?;
    Ok((backend, summary))
}
