//! The state-machine database: one redb file (`member/snap/db`) holding every replicated
//! store (MVCC key space, meta, and later leases, members, auth and the v2 tree).
//!
//! Apply commits without fsync ([`Durability::None`]); the WAL is the source of truth and
//! entries after the stored consistent index are re-applied at start-up. A durable commit
//! happens every `batch_interval` or `batch_limit` entries, and always before a raft
//! snapshot lets the WAL release segments.

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};

/// Revision `(main, sub)` -> encoded `mvccpb.KeyValue`. A tombstone has `mod_revision == 0`.
pub const KV: TableDefinition<(i64, i64), &[u8]> = TableDefinition::new("key");
/// Small named values: consistent index, term, compaction progress, cluster version.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub mod meta_keys {
    pub const CONSISTENT_INDEX: &str = "consistent_index";
    pub const TERM: &str = "term";
    pub const SCHEDULED_COMPACT: &str = "scheduledCompactRev";
    pub const FINISHED_COMPACT: &str = "finishedCompactRev";
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend: cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
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
    /// redb page cache.
    pub cache_size: usize,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            cache_size: 256 << 20,
        }
    }
}

pub struct Backend {
    db: Database,
    path: PathBuf,
}

impl Backend {
    /// Opens (or creates) the database file and makes sure every table exists.
    pub fn open(path: &Path, opts: &BackendOptions) -> Result<Backend> {
        let db = Database::builder()
            .set_cache_size(opts.cache_size)
            .create(path)
            .map_err(|source| BackendError::Open {
                path: path.to_owned(),
                source,
            })?;
        let backend = Backend {
            db,
            path: path.to_owned(),
        };
        let tx = backend.db.begin_write()?;
        tx.open_table(KV)?;
        tx.open_table(META)?;
        tx.commit()?;
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

    /// Size of the database file on disk.
    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Rewrites the file to release free pages (etcd's defragment).
    pub fn defragment(&mut self) -> Result<bool> {
        self.force_commit()?;
        Ok(self.db.compact()?)
    }
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
