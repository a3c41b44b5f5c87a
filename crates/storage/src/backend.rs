//! The state-machine database: one redb file (`member/snap/db`) holding every replicated
//! store (MVCC key space, meta, and later leases, members, auth and the v2 tree).
//!
//! Apply commits without fsync ([`Durability::None`]); the WAL is the source of truth and
//! entries after the stored consistent index are re-applied at start-up. A durable commit
//! happens every `batch_interval` or `batch_limit` entries, and always before a raft
//! snapshot lets the WAL release segments.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};

/// Revision `(main, sub)` -> encoded `mvccpb.KeyValue`. A tombstone has `mod_revision == 0`.
pub const KV: TableDefinition<(i64, i64), &[u8]> = TableDefinition::new("key");
/// Small named values: consistent index, term, compaction progress, cluster version.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Member ID -> encoded `internalpb.Member`.
pub const MEMBERS: TableDefinition<u64, &[u8]> = TableDefinition::new("members");
/// Member IDs removed from the cluster (they may never come back).
pub const REMOVED_MEMBERS: TableDefinition<u64, &[u8]> = TableDefinition::new("members_removed");
/// Lease ID -> encoded `internalpb.LeaseRecord`.
pub const LEASES: TableDefinition<i64, &[u8]> = TableDefinition::new("lease");
/// Active alarms: encoded `etcdserverpb.AlarmMember` -> nothing (etcd's alarm bucket).
pub const ALARMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("alarm");
/// etcd's `auth` bucket: `authEnabled` -> `[1]` or `[0]`, `authRevision` -> u64 big-endian.
pub const AUTH: TableDefinition<&[u8], &[u8]> = TableDefinition::new("auth");
/// etcd's `authUsers` bucket: user name -> encoded `authpb.User`.
pub const AUTH_USERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("authUsers");
/// etcd's `authRoles` bucket: role name -> encoded `authpb.Role`.
pub const AUTH_ROLES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("authRoles");

pub mod meta_keys {
    pub const CONSISTENT_INDEX: &str = "consistent_index";
    pub const TERM: &str = "term";
    pub const SCHEDULED_COMPACT: &str = "scheduledCompactRev";
    pub const FINISHED_COMPACT: &str = "finishedCompactRev";
    /// The v2 store, saved with the consistent index it matches (the server's v2 module).
    pub const V2_STORE: &str = "v2_store";
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend: cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    #[error("backend: {path} is damaged ({detail}): a page does not match its checksum, the file was changed on disk outside chorus; restore this member from a snapshot, or remove it from the cluster and add it back")]
    Damaged { path: PathBuf, detail: String },
    #[error("backend: {0}")]
    Database(#[from] redb::DatabaseError),
    #[error("backend: {0}")]
    Transaction(#[from] redb::TransactionError),
    #[error("backend: {0}")]
    Table(#[from] redb::TableError),
    #[error("backend: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("backend: {0}")]
    Commit(#[from] redb::CommitError),
    #[error("backend: {0}")]
    Compaction(#[from] redb::CompactionError),
    #[error("backend: corrupt value for {what}")]
    Corrupt { what: String },
    #[error("backend: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = BackendError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub struct BackendOptions {
    /// redb page cache (its read cache and the write buffer of the open transaction).
    pub cache_size: usize,
}

impl Default for BackendOptions {
    /// 64 MiB: apply writes at the right edge of the revision-keyed table and reads the
    /// latest pages back; older pages come from the kernel's page cache (as bbolt's mmap
    /// reads do), which is shared and reclaimable instead of part of the member's RSS.
    /// 256 MiB cost about 190 MiB more RSS at 1,000,000 keys for no gain in the bench rows.
    fn default() -> Self {
        BackendOptions {
            cache_size: 64 << 20,
        }
    }
}

#[cfg(unix)]
fn allocated(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    (m.blocks() * 512).min(m.len())
}

#[cfg(not(unix))]
fn allocated(m: &std::fs::Metadata) -> u64 {
    m.len()
}

/// A member's empty backend takes 18 pages of 4 KiB once its first commits are on disk
/// (redb's headers, allocator state and table roots); etcd's empty bbolt file takes 5
/// (20,480 bytes in etcd 3.4 and 3.5). etcd's own tests run with a 13-page quota and
/// expect small writes to fit, so the quota does not count the difference.
pub const EMPTY_BEYOND_ETCD: u64 = (18 - 5) * 4096;

pub struct Backend {
    db: Database,
    path: PathBuf,
    /// File size as of the last [`Backend::refresh_size`] (cheap for per-request checks).
    size: std::sync::atomic::AtomicU64,
}

impl Backend {
    /// Opens (or creates) the database file and makes sure every table exists.
    pub fn open(path: &Path, opts: &BackendOptions) -> Result<Backend> {
        Backend::open_checked(path, opts, false)
    }

    /// Opens the database file after checking every page of its committed trees against
    /// its checksum (redb's integrity check, which reads the whole file): a file changed
    /// outside chorus, such as a bit flipped on disk, is refused with the file named
    /// instead of being served.
    pub fn open_verified(path: &Path, opts: &BackendOptions) -> Result<Backend> {
        Backend::open_checked(path, opts, true)
    }

    fn open_checked(path: &Path, opts: &BackendOptions, verify: bool) -> Result<Backend> {
        let db = Database::builder()
            .set_cache_size(opts.cache_size)
            .set_check_integrity_on_open(verify)
            .create(path)
            .map_err(|source| match source {
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
                    BackendError::Damaged {
                        path: path.to_owned(),
                        detail,
                    }
                }
                source => BackendError::Open {
                    path: path.to_owned(),
                    source,
                },
            })?;
        let backend = Backend {
            db,
            path: path.to_owned(),
            size: std::sync::atomic::AtomicU64::new(0),
        };
        let tx = backend.db.begin_write()?;
        tx.open_table(KV)?;
        tx.open_table(META)?;
        tx.open_table(MEMBERS)?;
        tx.open_table(REMOVED_MEMBERS)?;
        tx.open_table(ALARMS)?;
        tx.open_table(LEASES)?;
        tx.open_table(AUTH)?;
        tx.open_table(AUTH_USERS)?;
        tx.open_table(AUTH_ROLES)?;
        tx.commit()?;
        backend.refresh_size();
        Ok(backend)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn begin_read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    /// A write transaction that commits without fsync (see the module docs).
    pub fn begin_write(&self) -> Result<WriteTransaction> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::None)
            .expect("non-durable commits are allowed in exclusive mode");
        Ok(tx)
    }

    /// A write transaction that is on disk when `commit` returns.
    pub fn begin_durable_write(&self) -> Result<WriteTransaction> {
        Ok(self.db.begin_write()?)
    }

    /// Makes every earlier non-durable commit durable.
    pub fn force_commit(&self) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.commit()?;
        Ok(())
    }

    /// The disk space the database file takes (reads the file's metadata): its allocated
    /// blocks, at most its length. redb extends the file ahead of use (doubling it, up to
    /// 4 GiB at a time) without writing the new part, which stays a hole; bbolt's file,
    /// whose length etcd reports and holds against the quota, grows page by page. The
    /// allocated blocks are the counterpart of bbolt's length: pages written at least once.
    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| allocated(&m))
    }

    /// Re-reads the file size for [`Backend::cached_size`]; the apply thread calls it after
    /// durable commits.
    pub fn refresh_size(&self) -> u64 {
        let size = self.size();
        self.size.store(size, std::sync::atomic::Ordering::Relaxed);
        size
    }

    /// The file size as of the last refresh: for hot paths (quota checks on every write).
    pub fn cached_size(&self) -> u64 {
        self.size.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What `--quota-backend-bytes` is held against: [`Backend::cached_size`] less what an
    /// empty chorus backend takes beyond an empty etcd backend ([`EMPTY_BEYOND_ETCD`]), so
    /// that a quota leaves room for about the same data on both.
    pub fn quota_size(&self) -> u64 {
        self.cached_size().saturating_sub(EMPTY_BEYOND_ETCD)
    }

    /// Writes every table as of `tx` to `out` in the dump format (see [`restore`]).
    pub fn dump(tx: &ReadTransaction, out: &mut impl Write) -> Result<()> {
        let mut w = DumpWriter { out, crc: 0 };
        dump_table(tx, KV, TABLE_KV, &mut w)?;
        dump_table(tx, META, TABLE_META, &mut w)?;
        dump_table(tx, MEMBERS, TABLE_MEMBERS, &mut w)?;
        dump_table(tx, REMOVED_MEMBERS, TABLE_REMOVED_MEMBERS, &mut w)?;
        dump_table(tx, ALARMS, TABLE_ALARMS, &mut w)?;
        dump_table(tx, LEASES, TABLE_LEASES, &mut w)?;
        dump_table(tx, AUTH, TABLE_AUTH, &mut w)?;
        dump_table(tx, AUTH_USERS, TABLE_AUTH_USERS, &mut w)?;
        dump_table(tx, AUTH_ROLES, TABLE_AUTH_ROLES, &mut w)?;
        w.write(&[TABLE_END])?;
        let crc = w.crc;
        w.out.write_all(&crc.to_le_bytes())?;
        Ok(())
    }

    /// Builds a new database file at `path` from a dump, durably. Fails on a truncated or
    /// corrupt dump (CRC), leaving no file behind. A dump written before a table existed
    /// (e.g. the auth tables) simply has no records for it: the table stays empty. The
    /// records go in durable transactions of [`RESTORE_COMMIT_BYTES`] each, so the file
    /// reaches the disk as it is written: one sync of the whole file at the end would
    /// hold up every other sync of the file system meanwhile (ext4 orders a journal
    /// commit after the data written before it), the WAL's included.
    pub fn restore(input: &mut impl Read, path: &Path, opts: &BackendOptions) -> Result<Backend> {
        let _ = std::fs::remove_file(path);
        let result = (|| {
            let backend = Backend::open(path, opts)?;
            let mut r = DumpReader {
                input,
                crc: 0,
                read: 0,
            };
            while restore_some(&backend, &mut r)? {}
            Ok(backend)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    /// The bytes of the pages the tables take (bbolt's `SizeInUse`): what a defragment
    /// would keep. Walks every table in a write transaction that is then dropped, so it
    /// is for start-up and tools, not for hot paths.
    pub fn size_in_use(&self) -> Result<u64> {
        let tx = self.db.begin_write()?;
        let stats = tx.stats()?;
        let in_use = stats.allocated_pages() * stats.page_size() as u64;
        tx.abort()?;
        Ok(in_use)
    }

    /// Rewrites the file to release free pages (etcd's defragment).
    pub fn defragment(&mut self) -> Result<bool> {
        self.force_commit()?;
        Ok(self.db.compact()?)
    }
}

/// Brings `copy`, a copy of this backend made from a read transaction whose last key
/// revision was `since`, up to `live` (a later read transaction of the same backend):
/// the key records after `since` are added and every other table is replaced whole;
/// one durable commit. Sound only if no compaction deleted key records in between
/// (the key table otherwise only grows): the caller keeps compactions out meanwhile.
pub fn catch_up(copy: &Backend, live: &ReadTransaction, since: i64) -> Result<CaughtUp> {
    let tx = copy.begin_durable_write()?;
    let mut records = 0;
    {
        let from = live.open_table(KV)?;
        let mut to = tx.open_table(KV)?;
        for item in from.range((since + 1, 0)..)? {
            let (k, v) = item?;
            to.insert(k.value(), v.value())?;
            records += 1;
        }
    }
    replace_table(live, &tx, META)?;
    replace_table(live, &tx, MEMBERS)?;
    replace_table(live, &tx, REMOVED_MEMBERS)?;
    replace_table(live, &tx, ALARMS)?;
    replace_table(live, &tx, LEASES)?;
    replace_table(live, &tx, AUTH)?;
    replace_table(live, &tx, AUTH_USERS)?;
    replace_table(live, &tx, AUTH_ROLES)?;
    tx.commit()?;
    Ok(CaughtUp { records })
}

/// What [`catch_up`] added to the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaughtUp {
    /// Key records written after the copy's read transaction.
    pub records: u64,
}

/// The main revision of the last key record as of `tx` (0: none).
pub fn last_revision(tx: &ReadTransaction) -> Result<i64> {
    let kv = tx.open_table(KV)?;
    let last = kv.last()?;
    Ok(last.map_or(0, |(k, _)| k.value().0))
}

fn replace_table<K: redb::Key + 'static>(
    from: &ReadTransaction,
    tx: &WriteTransaction,
    def: TableDefinition<K, &'static [u8]>,
) -> Result<()> {
    tx.delete_table(def)?;
    let mut to = tx.open_table(def)?;
    let from = from.open_table(def)?;
    for item in from.iter()? {
        let (k, v) = item?;
        to.insert(k.value(), v.value())?;
    }
    Ok(())
}

/// The index of the last raft entry whose effects are in the backend (0: none).
pub fn consistent_index(backend: &Backend) -> Result<u64> {
    let tx = backend.begin_read()?;
    let meta = tx.open_table(META)?;
    Ok(get_meta_u64(&meta, meta_keys::CONSISTENT_INDEX)?.unwrap_or(0))
}

/// Reads a little-endian u64 meta value.
pub fn get_meta_u64(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>> {
    match table.get(key)? {
        None => Ok(None),
        Some(v) => {
            let bytes: [u8; 8] = v.value().try_into().map_err(|_| BackendError::Corrupt {
                what: format!("meta key {key}"),
            })?;
            Ok(Some(u64::from_le_bytes(bytes)))
        }
    }
}

pub fn put_meta_u64(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
    key: &str,
    v: u64,
) -> Result<()> {
    table.insert(key, v.to_le_bytes().as_slice())?;
    Ok(())
}

const TABLE_KV: u8 = 1;
const TABLE_META: u8 = 2;
const TABLE_MEMBERS: u8 = 3;
const TABLE_REMOVED_MEMBERS: u8 = 4;
const TABLE_ALARMS: u8 = 5;
const TABLE_LEASES: u8 = 6;
const TABLE_AUTH: u8 = 7;
const TABLE_AUTH_USERS: u8 = 8;
const TABLE_AUTH_ROLES: u8 = 9;
const TABLE_END: u8 = 0xff;

struct DumpWriter<'a, W: Write> {
    out: &'a mut W,
    crc: u32,
}

impl<W: Write> DumpWriter<'_, W> {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.out.write_all(b)?;
        Ok(())
    }

    fn chunk(&mut self, b: &[u8]) -> Result<()> {
        self.write(&(b.len() as u32).to_le_bytes())?;
        self.write(b)
    }
}

/// Dump bytes restored per durable transaction ([`Backend::restore`]).
pub const RESTORE_COMMIT_BYTES: u64 = 8 << 20;

/// Restores dump records in one durable transaction until the dump ends (`false`, its
/// CRC checked) or [`RESTORE_COMMIT_BYTES`] more were read (`true`: call again).
fn restore_some<R: Read>(backend: &Backend, r: &mut DumpReader<'_, R>) -> Result<bool> {
    let until = r.read + RESTORE_COMMIT_BYTES;
    let tx = backend.begin_durable_write()?;
    let more = {
        let mut kv = tx.open_table(KV)?;
        let mut meta = tx.open_table(META)?;
        let mut members = tx.open_table(MEMBERS)?;
        let mut removed = tx.open_table(REMOVED_MEMBERS)?;
        let mut alarms = tx.open_table(ALARMS)?;
        let mut leases = tx.open_table(LEASES)?;
        let mut auth = tx.open_table(AUTH)?;
        let mut auth_users = tx.open_table(AUTH_USERS)?;
        let mut auth_roles = tx.open_table(AUTH_ROLES)?;
        loop {
            if r.read >= until {
                break true;
            }
            let mut id = [0u8];
            r.read(&mut id)?;
            if id[0] == TABLE_END {
                r.check_crc()?;
                break false;
            }
            let k = r.read_chunk()?;
            let v = r.read_chunk()?;
            match id[0] {
                TABLE_KV => insert_raw(&mut kv, &k, &v)?,
                TABLE_META => insert_raw(&mut meta, utf8_key(&k)?, &v)?,
                TABLE_MEMBERS => insert_raw(&mut members, &k, &v)?,
                TABLE_REMOVED_MEMBERS => insert_raw(&mut removed, &k, &v)?,
                TABLE_ALARMS => insert_raw(&mut alarms, &k, &v)?,
                TABLE_LEASES => insert_raw(&mut leases, &k, &v)?,
                TABLE_AUTH => insert_raw(&mut auth, &k, &v)?,
                TABLE_AUTH_USERS => insert_raw(&mut auth_users, &k, &v)?,
                TABLE_AUTH_ROLES => insert_raw(&mut auth_roles, &k, &v)?,
                other => {
                    return Err(BackendError::Corrupt {
                        what: format!("snapshot dump: unknown table {other}"),
                    })
                }
            }
        }
    };
    tx.commit()?;
    Ok(more)
}

struct DumpReader<'a, R: Read> {
    input: &'a mut R,
    crc: u32,
    /// Bytes read so far.
    read: u64,
}

impl<R: Read> DumpReader<'_, R> {
    fn read(&mut self, b: &mut [u8]) -> Result<()> {
        self.input.read_exact(b)?;
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.read += b.len() as u64;
        Ok(())
    }

    /// After the end marker: the dump's CRC must match everything read.
    fn check_crc(&mut self) -> Result<()> {
        let want = self.crc;
        let mut got = [0u8; 4];
        self.input.read_exact(&mut got)?;
        if u32::from_le_bytes(got) != want {
            return Err(BackendError::Corrupt {
                what: "snapshot dump: CRC mismatch".into(),
            });
        }
        Ok(())
    }

    fn read_chunk(&mut self) -> Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.read(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > 256 << 20 {
            return Err(BackendError::Corrupt {
                what: format!("snapshot dump: record of {len} bytes"),
            });
        }
        // Grows with the bytes actually read, not with the length the dump claims.
        let mut b = Vec::new();
        (&mut *self.input).take(len as u64).read_to_end(&mut b)?;
        if b.len() != len {
            return Err(BackendError::Corrupt {
                what: format!("snapshot dump: record of {len} bytes cut at {}", b.len()),
            });
        }
        self.crc = crc32c::crc32c_append(self.crc, &b);
        self.read += len as u64;
        Ok(b)
    }
}

fn dump_table<K: redb::Key + 'static, W: Write>(
    tx: &ReadTransaction,
    def: TableDefinition<K, &'static [u8]>,
    id: u8,
    w: &mut DumpWriter<'_, W>,
) -> Result<()> {
    let table = tx.open_table(def)?;
    for item in table.iter()? {
        let (k, v) = item?;
        w.write(&[id])?;
        w.chunk(K::as_bytes(&k.value()).as_ref())?;
        w.chunk(v.value())?;
    }
    Ok(())
}

/// Inserts a dumped key as the table's key type; a key of the wrong width is a corrupt dump
/// (redb's `from_bytes` would panic on it).
fn insert_raw<K: redb::Key + 'static>(
    table: &mut redb::Table<'_, K, &'static [u8]>,
    k: &[u8],
    v: &[u8],
) -> Result<()> {
    if let Some(width) = K::fixed_width().filter(|&w| w != k.len()) {
        return Err(BackendError::Corrupt {
            what: format!("snapshot dump: key of {} bytes, want {width}", k.len()),
        });
    }
    table.insert(K::from_bytes(k), v)?;
    Ok(())
}

/// A `meta` key must be UTF-8 (redb's `&str` keys panic on anything else).
fn utf8_key(k: &[u8]) -> Result<&[u8]> {
    match std::str::from_utf8(k) {
        Ok(_) => Ok(k),
        Err(_) => Err(BackendError::Corrupt {
            what: "snapshot dump: meta key is not UTF-8".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use redb::ReadableTableMetadata;

    use super::*;

    /// etcd's own alarm test runs with a 13-page quota and expects small writes to fit.
    #[test]
    fn an_empty_file_takes_less_than_etcds() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(&dir.path().join("db"), &BackendOptions::default()).unwrap();
        let len = std::fs::metadata(backend.path()).unwrap().len();
        assert!(backend.size() <= len, "{} of {len}", backend.size());
        assert!(backend.quota_size() < 5 * 4096);
    }

    /// A bit flipped in a stored value: a plain open serves the changed value (as bbolt
    /// would), a verified open refuses the file and names it.
    #[test]
    fn a_verified_open_refuses_a_flipped_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let backend = Backend::open(&path, &BackendOptions::default()).unwrap();
        for i in 0..100u32 {
            let v = format!("value-{i:04}");
            put(&backend, AUTH, format!("k{i}").as_bytes(), v.as_bytes());
        }
        drop(backend);
        let verified = Backend::open_verified(&path, &BackendOptions::default()).unwrap();
        assert_eq!(get(&verified, AUTH, b"k50").unwrap(), b"value-0050");
        drop(verified);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(10).position(|w| w == b"value-0050").unwrap();
        bytes[at + 9] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let e = Backend::open_verified(&path, &BackendOptions::default())
            .err()
            .expect("a flipped bit is refused");
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("is damaged"), "{text}");
        let plain = Backend::open(&path, &BackendOptions::default()).unwrap();
        assert_eq!(get(&plain, AUTH, b"k50").unwrap(), b"value-0051");
    }

    fn put(backend: &Backend, def: TableDefinition<&[u8], &[u8]>, k: &[u8], v: &[u8]) {
        let tx = backend.begin_durable_write().unwrap();
        tx.open_table(def).unwrap().insert(k, v).unwrap();
        tx.commit().unwrap();
    }

    fn get(backend: &Backend, def: TableDefinition<&[u8], &[u8]>, k: &[u8]) -> Option<Vec<u8>> {
        let tx = backend.begin_read().unwrap();
        let table = tx.open_table(def).unwrap();
        let v = table.get(k).unwrap().map(|v| v.value().to_vec());
        v
    }

    #[test]
    fn dump_restore_keeps_the_auth_tables() {
        let dir = tempfile::tempdir().unwrap();
        let opts = BackendOptions::default();
        let src = Backend::open(&dir.path().join("src"), &opts).unwrap();
        put(&src, AUTH, b"authEnabled", &[1]);
        put(&src, AUTH, b"authRevision", &7u64.to_be_bytes());
        put(&src, AUTH_USERS, b"root", b"user-record");
        put(&src, AUTH_ROLES, b"root", b"role-record");
        let mut dump = Vec::new();
        Backend::dump(&src.begin_read().unwrap(), &mut dump).unwrap();

        let dst = Backend::restore(&mut dump.as_slice(), &dir.path().join("dst"), &opts).unwrap();
        assert_eq!(get(&dst, AUTH, b"authEnabled"), Some(vec![1]));
        assert_eq!(
            get(&dst, AUTH, b"authRevision"),
            Some(7u64.to_be_bytes().to_vec())
        );
        assert_eq!(
            get(&dst, AUTH_USERS, b"root"),
            Some(b"user-record".to_vec())
        );
        assert_eq!(
            get(&dst, AUTH_ROLES, b"root"),
            Some(b"role-record".to_vec())
        );
    }

    fn put_kv(backend: &Backend, main: i64, v: &[u8]) {
        let tx = backend.begin_durable_write().unwrap();
        tx.open_table(KV).unwrap().insert((main, 0), v).unwrap();
        tx.commit().unwrap();
    }

    fn dump_of(backend: &Backend) -> Vec<u8> {
        let mut dump = Vec::new();
        Backend::dump(&backend.begin_read().unwrap(), &mut dump).unwrap();
        dump
    }

    /// A defragment's copy, made from a read transaction, then caught up with what was
    /// written after it, equals the backend record for record.
    #[test]
    fn a_copy_caught_up_equals_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let opts = BackendOptions::default();
        let live = Backend::open(&dir.path().join("live"), &opts).unwrap();
        for main in 1..=50 {
            put_kv(&live, main, format!("value-{main}").as_bytes());
        }
        put(&live, AUTH_USERS, b"gone-later", b"user");
        put(&live, ALARMS, b"alarm", b"");
        let copied_at = live.begin_read().unwrap();
        let since = last_revision(&copied_at).unwrap();
        assert_eq!(since, 50);
        let mut dump = Vec::new();
        Backend::dump(&copied_at, &mut dump).unwrap();
        let copy = Backend::restore(&mut dump.as_slice(), &dir.path().join("copy"), &opts).unwrap();
        // Written while the copy was made: new revisions, a changed and a removed record.
        for main in 51..=60 {
            put_kv(&live, main, format!("value-{main}").as_bytes());
        }
        put(&live, AUTH, b"authRevision", &9u64.to_be_bytes());
        let tx = live.begin_durable_write().unwrap();
        tx.open_table(AUTH_USERS)
            .unwrap()
            .remove(&b"gone-later"[..])
            .unwrap();
        tx.commit().unwrap();
        assert_ne!(dump_of(&copy), dump_of(&live));

        let caught_up = catch_up(&copy, &live.begin_read().unwrap(), since).unwrap();
        assert_eq!(caught_up.records, 10);
        assert_eq!(dump_of(&copy), dump_of(&live));
        assert_eq!(get(&copy, AUTH_USERS, b"gone-later"), None);
    }

    /// A dump of one record in `table` with key `k` and an empty value, ended and CRC'd.
    fn one_record_dump(table: u8, k: &[u8]) -> Vec<u8> {
        let mut dump = Vec::new();
        let mut w = DumpWriter {
            out: &mut dump,
            crc: 0,
        };
        w.write(&[table]).unwrap();
        w.chunk(k).unwrap();
        w.chunk(b"").unwrap();
        w.write(&[TABLE_END]).unwrap();
        let crc = w.crc;
        dump.extend_from_slice(&crc.to_le_bytes());
        dump
    }

    fn restore_error(dump: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let opts = BackendOptions::default();
        let Err(err) = Backend::restore(&mut &dump[..], &path, &opts) else {
            panic!("the dump restored");
        };
        assert!(!path.exists(), "a failed restore leaves no file");
        err.to_string()
    }

    /// Fuzzing (fuzz/fuzz_targets/backend_restore.rs): redb's `from_bytes` panicked on a
    /// `meta` key that is not UTF-8 and on a member or revision key of the wrong width.
    #[test]
    fn restore_refuses_keys_the_table_cannot_hold() {
        let err = restore_error(&one_record_dump(TABLE_META, &[0xff]));
        assert!(err.contains("meta key is not UTF-8"), "{err}");
        let err = restore_error(&one_record_dump(TABLE_MEMBERS, &[1, 2, 3]));
        assert!(err.contains("key of 3 bytes, want 8"), "{err}");
        let err = restore_error(&one_record_dump(TABLE_KV, &[0; 15]));
        assert!(err.contains("key of 15 bytes, want 16"), "{err}");
    }

    /// Fuzzing: a 9-byte dump claiming a 256 MiB record allocated the 256 MiB up front.
    #[test]
    fn restore_allocates_by_the_bytes_present_not_the_claimed_length() {
        let mut dump = vec![TABLE_AUTH];
        dump.extend_from_slice(&(256u32 << 20).to_le_bytes());
        dump.extend_from_slice(b"abcd");
        let err = restore_error(&dump);
        assert!(err.contains("record of 268435456 bytes cut at 4"), "{err}");
    }

    /// A dump written before the auth tables existed (tables 1-6 only) still restores, with
    /// the auth tables present and empty.
    #[test]
    fn dump_without_auth_tables_restores_with_empty_auth_tables() {
        let mut dump = Vec::new();
        let mut w = DumpWriter {
            out: &mut dump,
            crc: 0,
        };
        w.write(&[TABLE_META]).unwrap();
        w.chunk(meta_keys::TERM.as_bytes()).unwrap();
        w.chunk(&3u64.to_le_bytes()).unwrap();
        w.write(&[TABLE_END]).unwrap();
        let crc = w.crc;
        dump.extend_from_slice(&crc.to_le_bytes());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let backend =
            Backend::restore(&mut dump.as_slice(), &path, &BackendOptions::default()).unwrap();
        let tx = backend.begin_read().unwrap();
        assert_eq!(
            get_meta_u64(&tx.open_table(META).unwrap(), meta_keys::TERM).unwrap(),
            Some(3)
        );
        for def in [AUTH, AUTH_USERS, AUTH_ROLES] {
            assert_eq!(tx.open_table(def).unwrap().len().unwrap(), 0);
        }
    }
}
