//! etcd's backend (a member's `member/snap/db` or a `snapshot save` file) into a chorus
//! backend, record for record, streaming.
//!
//! ```text
//!  etcd bbolt bucket          chorus redb table   conversion
//!  key  <main>_<sub>[t]   ─▶  key  (main, sub)    puts: value bytes as they are;
//!                                                 tombstones: KeyValue{key} (mod_revision 0)
//!  lease  BE id           ─▶  lease  id           leasepb.Lease ─▶ LeaseRecord (same fields)
//!  alarm, auth, authUsers,─▶  same names          bytes as they are (checked to decode)
//!  authRoles
//!  meta                   ─▶  meta                consistent_index, term, compaction:
//!                                                 big-endian ─▶ chorus's little-endian
//!  members, cluster       ─▶  (the caller)        restore replaces them, takeover keeps them
//! ```
//!
//! Every record is checked before it is written; the first bad one stops the import with
//! an error naming the file, bucket and key. Records go into the backend in write
//! transactions of [`CHUNK`] records (without fsync), and a durable commit ends the import,
//! so memory does not grow with the data set. The current revision is not stored: chorus,
//! like etcd, takes it from the newest revision in `key` (or the compaction).

use std::path::PathBuf;

use chorus_api::authpb;
use chorus_api::etcdserverpb::AlarmMember;
use chorus_api::internalpb::LeaseRecord;
use chorus_api::mvccpb::KeyValue;
use chorus_etcd_format::backend::{buckets, keys, Backend as EtcdBackend, MetaInfo, Revision};
use chorus_etcd_format::bbolt::{BoltError, Cursor, Db, Entry};
use chorus_etcd_format::proto::leasepb::Lease;
use chorus_storage::backend::{self, meta_keys, Backend, BackendError};
use prost::Message;
use redb::WriteTransaction;

/// Records per write transaction.
pub const CHUNK: usize = 10_000;

/// Why an etcd backend could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bbolt file is damaged.
    #[error(transparent)]
    Bolt(#[from] BoltError),
    /// etcd's schema is violated.
    #[error(transparent)]
    Etcd(#[from] chorus_etcd_format::backend::BackendError),
    /// The chorus backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A record is not what etcd writes.
    #[error("{file}: bucket {bucket:?} key {key}: {what}")]
    BadRecord {
        file: PathBuf,
        bucket: &'static str,
        key: String,
        what: String,
    },
}

impl From<redb::TableError> for ImportError {
    fn from(e: redb::TableError) -> Self {
        ImportError::Backend(e.into())
    }
}

impl From<redb::StorageError> for ImportError {
    fn from(e: redb::StorageError) -> Self {
        ImportError::Backend(e.into())
    }
}

/// What an import brought in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Records of the `key` bucket (tombstones included).
    pub revisions: u64,
    /// Tombstones among them.
    pub tombstones: u64,
    /// The store revision the member will serve (newest revision, or the compaction).
    pub current_revision: i64,
    /// `scheduledCompactRev`.
    pub scheduled_compact: Option<i64>,
    /// `finishedCompactRev`.
    pub finished_compact: Option<i64>,
    /// Leases.
    pub leases: u64,
    /// Users and roles.
    pub users: u64,
    pub roles: u64,
    /// Whether auth is enabled.
    pub auth_enabled: bool,
    /// Active alarms.
    pub alarms: u64,
    /// etcd's consistent index (last raft index applied to the backend).
    pub consistent_index: u64,
    /// Its term (etcd 3.5+).
    pub term: Option<u64>,
    /// The cluster version imported (etcd 3.5+ keeps it in the backend).
    pub cluster_version: Option<String>,
    /// A cluster version newer than this chorus runs at, not imported.
    pub cluster_version_dropped: Option<String>,
    /// The target of an enabled downgrade job.
    pub downgrade_target: Option<String>,
}

/// Copies every record of `src` (except membership) into `dst`, a freshly created chorus
/// backend, and makes it durable.
pub fn import_backend(src: &EtcdBackend, dst: &Backend) -> Result<ImportSummary, ImportError> {
    let mut summary = ImportSummary::default();
    import_revisions(src.db(), dst, &mut summary)?;
    import_leases(src.db(), dst, &mut summary)?;
    let meta = src.meta()?;
    let tx = dst.begin_write()?;
    write_meta(&tx, &meta, &mut summary)?;
    import_auth(src.db(), &tx, &mut summary)?;
    import_alarms(src.db(), &tx, &mut summary)?;
    import_cluster(src, &tx, &mut summary)?;
    tx.commit().map_err(BackendError::from)?;
    dst.force_commit()?;
    summary.current_revision = summary
        .current_revision
        .max(summary.scheduled_compact.unwrap_or(0))
        .max(summary.finished_compact.unwrap_or(0))
        .max(1);
    Ok(summary)
}

/// Runs `step` in write transactions until it reports that it is done.
fn in_chunks(
    dst: &Backend,
    mut step: impl FnMut(&WriteTransaction) -> Result<bool, ImportError>,
) -> Result<(), ImportError> {
    loop {
        let tx = dst.begin_write()?;
        let done = step(&tx)?;
        tx.commit().map_err(BackendError::from)?;
        if done {
            return Ok(());
        }
    }
}

/// A cursor over a top-level bucket; `None` when the bucket is absent.
fn cursor<'db>(db: &'db Db, name: &[u8]) -> Result<Option<Cursor<'db>>, ImportError> {
    Ok(db.bucket(name)?.map(|b| b.iter()))
}

fn import_revisions(db: &Db, dst: &Backend, s: &mut ImportSummary) -> Result<(), ImportError> {
    let Some(mut cursor) = cursor(db, buckets::KEY)? else {
        return Ok(());
    };
    let mut last: Option<Revision> = None;
    in_chunks(dst, |tx| {
        let mut table = tx.open_table(backend::KV)?;
        for _ in 0..CHUNK {
            let Some(entry) = cursor.next() else {
                return Ok(true);
            };
            let entry = entry?;
            let (rev, value, tombstone) = revision_record(db, &entry, last)?;
            table.insert((rev.main, rev.sub), value.as_slice())?;
            last = Some(rev);
            s.revisions += 1;
            s.tombstones += u64::from(tombstone);
            s.current_revision = rev.main;
        }
        Ok(false)
    })
}

/// One record of `key`: its revision and the value chorus stores for it.
fn revision_record(
    db: &Db,
    e: &Entry,
    last: Option<Revision>,
) -> Result<(Revision, Vec<u8>, bool), ImportError> {
    let bad = |what: String| bad_record(db, "key", &e.key, what);
    if e.is_bucket {
        return Err(bad("a nested bucket where a revision belongs".into()));
    }
    let (rev, tombstone) = Revision::from_key(&e.key)
        .ok_or_else(|| bad("not a revision (8-byte main, '_', 8-byte sub, optional 't')".into()))?;
    if rev.main < 1 || rev.sub < 0 {
        return Err(bad(format!(
            "revision {}.{} is negative",
            rev.main, rev.sub
        )));
    }
    if last == Some(rev) {
        return Err(bad(format!(
            "revision {}.{} appears twice (as a change and as a tombstone)",
            rev.main, rev.sub
        )));
    }
    let kv = KeyValue::decode(e.value.as_slice())
        .map_err(|err| bad(format!("not a valid mvccpb.KeyValue: {err}")))?;
    if kv.key.is_empty() {
        return Err(bad("the key-value has an empty key".into()));
    }
    if tombstone {
        let value = KeyValue {
            key: kv.key,
            ..Default::default()
        };
        return Ok((rev, value.encode_to_vec(), true));
    }
    if kv.mod_revision != rev.main {
        return Err(bad(format!(
            "mod_revision {} differs from the record's revision {}",
            kv.mod_revision, rev.main
        )));
    }
    Ok((rev, e.value.clone(), false))
}

fn import_leases(db: &Db, dst: &Backend, s: &mut ImportSummary) -> Result<(), ImportError> {
    let Some(mut cursor) = cursor(db, buckets::LEASE)? else {
        return Ok(());
    };
    in_chunks(dst, |tx| {
        let mut table = tx.open_table(backend::LEASES)?;
        for _ in 0..CHUNK {
            let Some(entry) = cursor.next() else {
                return Ok(true);
            };
            let record = lease_record(db, &entry?)?;
            table.insert(record.id, record.encode_to_vec().as_slice())?;
            s.leases += 1;
        }
        Ok(false)
    })
}

fn lease_record(db: &Db, e: &Entry) -> Result<LeaseRecord, ImportError> {
    let bad = |what: String| bad_record(db, "lease", &e.key, what);
    let id: [u8; 8] = e.key.as_slice().try_into().map_err(|_| {
        bad(format!(
            "key of {} bytes, expected an 8-byte lease ID",
            e.key.len()
        ))
    })?;
    let lease = Lease::decode(e.value.as_slice())
        .map_err(|err| bad(format!("not a valid leasepb.Lease: {err}")))?;
    if lease.id != i64::from_be_bytes(id) || lease.id == 0 {
        return Err(bad(format!("the lease says its ID is {:x}", lease.id)));
    }
    Ok(LeaseRecord {
        id: lease.id,
        ttl: lease.ttl,
        remaining_ttl: lease.remaining_ttl,
    })
}

/// etcd's big-endian meta values as chorus's little-endian ones.
fn write_meta(
    tx: &WriteTransaction,
    meta: &MetaInfo,
    s: &mut ImportSummary,
) -> Result<(), ImportError> {
    let mut table = tx.open_table(backend::META)?;
    s.consistent_index = meta.consistent_index.unwrap_or(0);
    s.term = meta.term;
    s.scheduled_compact = meta.scheduled_compact_rev;
    s.finished_compact = meta.finished_compact_rev;
    let revs = [
        (meta_keys::SCHEDULED_COMPACT, meta.scheduled_compact_rev),
        (meta_keys::FINISHED_COMPACT, meta.finished_compact_rev),
    ];
    for (key, rev) in revs {
        if let Some(rev) = rev {
            backend::put_meta_u64(&mut table, key, rev.max(0) as u64)?;
        }
    }
    backend::put_meta_u64(&mut table, meta_keys::CONSISTENT_INDEX, s.consistent_index)?;
    if let Some(term) = meta.term {
        backend::put_meta_u64(&mut table, meta_keys::TERM, term)?;
    }
    Ok(())
}

fn import_auth(db: &Db, tx: &WriteTransaction, s: &mut ImportSummary) -> Result<(), ImportError> {
    if let Some(cursor) = cursor(db, buckets::AUTH)? {
        let mut table = tx.open_table(backend::AUTH)?;
        for e in cursor {
            let e = e?;
            let size_ok = match e.key.as_slice() {
                keys::AUTH_ENABLED => e.value.len() == 1,
                keys::AUTH_REVISION => e.value.len() == 8,
                _ => continue,
            };
            if !size_ok {
                let what = format!("value of {} bytes", e.value.len());
                return Err(bad_record(db, "auth", &e.key, what));
            }
            s.auth_enabled |= e.key == keys::AUTH_ENABLED && e.value == [1];
            table.insert(e.key.as_slice(), e.value.as_slice())?;
        }
    }
    s.users = copy_named::<authpb::User>(db, tx, buckets::AUTH_USERS, backend::AUTH_USERS)?;
    s.roles = copy_named::<authpb::Role>(db, tx, buckets::AUTH_ROLES, backend::AUTH_ROLES)?;
    Ok(())
}

/// A message with a name that must equal its key (users, roles).
trait Named: Message + Default {
    const BUCKET: &'static str;
    fn name(&self) -> &[u8];
}

impl Named for authpb::User {
    const BUCKET: &'static str = "authUsers";
    fn name(&self) -> &[u8] {
        &self.name
    }
}

impl Named for authpb::Role {
    const BUCKET: &'static str = "authRoles";
    fn name(&self) -> &[u8] {
        &self.name
    }
}

/// Copies a bucket of named records, each checked to decode and to carry its key's name.
fn copy_named<M: Named>(
    db: &Db,
    tx: &WriteTransaction,
    bucket: &[u8],
    def: redb::TableDefinition<&[u8], &[u8]>,
) -> Result<u64, ImportError> {
    let Some(cursor) = cursor(db, bucket)? else {
        return Ok(0);
    };
    let mut table = tx.open_table(def)?;
    let mut n = 0;
    for e in cursor {
        let e = e?;
        let bad = |what: String| bad_record(db, M::BUCKET, &e.key, what);
        let m = M::decode(e.value.as_slice()).map_err(|err| bad(format!("{err}")))?;
        if m.name() != e.key.as_slice() {
            return Err(bad("the record's name differs from its key".into()));
        }
        table.insert(e.key.as_slice(), e.value.as_slice())?;
        n += 1;
    }
    Ok(n)
}

fn import_alarms(db: &Db, tx: &WriteTransaction, s: &mut ImportSummary) -> Result<(), ImportError> {
    let Some(cursor) = cursor(db, buckets::ALARM)? else {
        return Ok(());
    };
    let mut table = tx.open_table(backend::ALARMS)?;
    for e in cursor {
        let e = e?;
        AlarmMember::decode(e.key.as_slice())
            .map_err(|err| bad_record(db, "alarm", &e.key, format!("not an AlarmMember: {err}")))?;
        table.insert(e.key.as_slice(), [].as_slice())?;
        s.alarms += 1;
    }
    Ok(())
}

/// The cluster version (when this chorus can run at it; else the leader decides it anew)
/// and the downgrade job of etcd 3.5+'s `cluster` bucket.
fn import_cluster(
    src: &EtcdBackend,
    tx: &WriteTransaction,
    s: &mut ImportSummary,
) -> Result<(), ImportError> {
    let cluster = src.cluster()?;
    if let Some(v) = cluster.cluster_version {
        if crate::cluster_version_supported(&v) {
            chorus_storage::members::set_cluster_version(tx, &v)?;
            s.cluster_version = Some(v);
        } else {
            s.cluster_version_dropped = Some(v);
        }
    }
    if let Some(d) = cluster.downgrade {
        let job = chorus_api::internalpb::DowngradeInfoSet {
            enabled: d.enabled,
            ver: d.target_version,
        };
        chorus_storage::members::set_downgrade(tx, &job)?;
        s.downgrade_target = job.enabled.then_some(job.ver);
    }
    Ok(())
}

fn bad_record(db: &Db, bucket: &'static str, key: &[u8], what: String) -> ImportError {
    ImportError::BadRecord {
        file: db.path().to_path_buf(),
        bucket,
        key: show_key(key),
        what,
    }
}

/// A key for messages: printable ASCII as text, anything else as hex.
pub(crate) fn show_key(key: &[u8]) -> String {
    if !key.is_empty() && key.iter().all(|c| c.is_ascii_graphic()) {
        format!("{:?}", String::from_utf8_lossy(key))
    } else {
        key.iter().map(|c| format!("{c:02x}")).collect()
    }
}
