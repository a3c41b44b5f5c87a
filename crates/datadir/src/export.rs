//! A chorus backend out as etcd's backend: a bbolt file in etcd's layout, which etcd 3.4
//! and 3.5 take as `member/snap/db` and, with the SHA-256 trailer `Maintenance.Snapshot`
//! sends last, as a `snapshot save` file for `snapshot status`/`restore`.
//!
//! ```text
//!  chorus redb table (one read txn)       etcd bbolt bucket (written in bucket order)
//!  alarm, auth, authRoles, authUsers  ─▶  same names, bytes as they are
//!  meta downgrade                     ─▶  cluster downgrade (etcd's JSON); no
//!                                         clusterVersion: etcd decides its own
//!  key  (main, sub)                   ─▶  key  <main>_<sub>, + 't' for a tombstone
//!  lease  id                          ─▶  lease  BE id (LeaseRecord = leasepb.Lease)
//!  members, members_removed           ─▶  hex ID: membership.Member JSON, "removed"
//!  meta                               ─▶  consistent_index, term (big-endian),
//!                                         compaction as revisions, confState JSON
//! ```
//!
//! Streaming: records go from the read transaction straight into the bbolt writer, which
//! holds one page per tree level, so memory does not grow with the data set. The bbolt
//! writer writes its meta pages last (at the start of the file): the output is a file,
//! not a pipe.

use std::collections::BTreeMap;
use std::path::Path;

use chorus_api::internalpb::{DowngradeInfoSet, Member as ChorusMember};
use chorus_api::mvccpb::KeyValue;
use chorus_etcd_format::backend::{buckets, keys, ConfState, DowngradeInfo, Member, Revision};
use chorus_etcd_format::bbolt::{BoltError, BoltWriter, WriteSummary};
use chorus_storage::backend::{self, meta_keys, BackendError};
use prost::Message;
use redb::{ReadTransaction, ReadableTable, TableDefinition};

/// Why a backend could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Bolt(#[from] BoltError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("backend: corrupt {what}")]
    Corrupt { what: String },
}

impl From<redb::TableError> for ExportError {
    fn from(e: redb::TableError) -> Self {
        ExportError::Backend(e.into())
    }
}

impl From<redb::StorageError> for ExportError {
    fn from(e: redb::StorageError) -> Self {
        ExportError::Backend(e.into())
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    /// Records of `key` (tombstones included).
    pub revisions: u64,
    /// The newest revision among them (0: none).
    pub revision: i64,
    /// Leases.
    pub leases: u64,
    /// The bbolt file.
    pub file: WriteSummary,
}

/// Writes the backend as of `tx` to `path` as etcd's bbolt backend (no trailer).
pub fn export_backend(tx: &ReadTransaction, path: &Path) -> Result<ExportSummary, ExportError> {
    let mut w = BoltWriter::create(path)?;
    copy_raw(tx, &mut w, buckets::ALARM, backend::ALARMS)?;
    copy_raw(tx, &mut w, buckets::AUTH, backend::AUTH)?;
    copy_raw(tx, &mut w, buckets::AUTH_ROLES, backend::AUTH_ROLES)?;
    copy_raw(tx, &mut w, buckets::AUTH_USERS, backend::AUTH_USERS)?;
    export_cluster(tx, &mut w)?;
    let (revisions, revision) = export_revisions(tx, &mut w)?;
    let leases = export_leases(tx, &mut w)?;
    let members = load_members(tx)?;
    export_members(tx, &mut w, &members)?;
    export_meta(tx, &mut w, &members)?;
    let file = w.finish()?;
    Ok(ExportSummary {
        revisions,
        revision,
        leases,
        file,
    })
}

/// `cluster`: the downgrade job, if one was ever set. The cluster version is left out:
/// the etcd that restores the file decides its own, as it would after a restore of an
/// etcd 3.4 snapshot.
fn export_cluster(tx: &ReadTransaction, w: &mut BoltWriter) -> Result<(), ExportError> {
    w.begin_bucket(buckets::CLUSTER)?;
    let meta = tx.open_table(backend::META)?;
    if let Some(v) = meta.get(chorus_storage::members::META_DOWNGRADE)? {
        let d = DowngradeInfoSet::decode(v.value()).map_err(|e| ExportError::Corrupt {
            what: format!("downgrade info: {e}"),
        })?;
        let etcd = DowngradeInfo {
            target_version: d.ver,
            enabled: d.enabled,
        };
        let json = serde_json::to_vec(&etcd).expect("JSON of a struct");
        w.put(keys::DOWNGRADE, &json)?;
    }
    Ok(w.end_bucket()?)
}

/// A table keyed by bytes, copied as it is.
fn copy_raw(
    tx: &ReadTransaction,
    w: &mut BoltWriter,
    name: &[u8],
    def: TableDefinition<&[u8], &[u8]>,
) -> Result<(), ExportError> {
    w.begin_bucket(name)?;
    for item in tx.open_table(def)?.iter()? {
        let (k, v) = item?;
        w.put(k.value(), v.value())?;
    }
    Ok(w.end_bucket()?)
}

fn export_revisions(tx: &ReadTransaction, w: &mut BoltWriter) -> Result<(u64, i64), ExportError> {
    w.begin_bucket(buckets::KEY)?;
    let (mut n, mut last) = (0, 0);
    for item in tx.open_table(backend::KV)?.iter()? {
        let (k, v) = item?;
        let (main, sub) = k.value();
        let kv = KeyValue::decode(v.value()).map_err(|e| ExportError::Corrupt {
            what: format!("revision {main}.{sub}: {e}"),
        })?;
        let tombstone = kv.mod_revision == 0;
        w.put(&Revision { main, sub }.to_key(tombstone), v.value())?;
        n += 1;
        last = main;
    }
    w.end_bucket()?;
    Ok((n, last))
}

/// Leases keyed by their big-endian ID: non-negative IDs first (numeric order is byte
/// order), then negative ones.
fn export_leases(tx: &ReadTransaction, w: &mut BoltWriter) -> Result<u64, ExportError> {
    w.begin_bucket(buckets::LEASE)?;
    let table = tx.open_table(backend::LEASES)?;
    let mut n = 0;
    for range in [table.range(0i64..)?, table.range(..0i64)?] {
        for item in range {
            let (k, v) = item?;
            w.put(&k.value().to_be_bytes(), v.value())?;
            n += 1;
        }
    }
    w.end_bucket()?;
    Ok(n)
}

fn load_members(tx: &ReadTransaction) -> Result<Vec<ChorusMember>, ExportError> {
    let mut out = Vec::new();
    for item in tx.open_table(backend::MEMBERS)?.iter()? {
        let (k, v) = item?;
        let m = ChorusMember::decode(v.value()).map_err(|e| ExportError::Corrupt {
            what: format!("member {:x}: {e}", k.value()),
        })?;
        out.push(m);
    }
    Ok(out)
}

/// `members` (etcd's JSON, keyed by the hex ID) and `members_removed`.
fn export_members(
    tx: &ReadTransaction,
    w: &mut BoltWriter,
    members: &[ChorusMember],
) -> Result<(), ExportError> {
    let mut items = BTreeMap::new();
    for m in members {
        let etcd = Member {
            id: m.id,
            peer_urls: m.peer_urls.clone(),
            is_learner: m.is_learner,
            name: m.name.clone(),
            client_urls: m.client_urls.clone(),
        };
        let json = serde_json::to_vec(&etcd).expect("JSON of a struct");
        items.insert(format!("{:x}", m.id).into_bytes(), json);
    }
    write_bucket(w, buckets::MEMBERS, &items)?;
    let mut removed = BTreeMap::new();
    for item in tx.open_table(backend::REMOVED_MEMBERS)?.iter()? {
        let id = item?.0.value();
        removed.insert(format!("{id:x}").into_bytes(), b"removed".to_vec());
    }
    write_bucket(w, buckets::MEMBERS_REMOVED, &removed)
}

/// `meta` as etcd 3.5 writes it: the raft position, the compaction and the configuration.
fn export_meta(
    tx: &ReadTransaction,
    w: &mut BoltWriter,
    members: &[ChorusMember],
) -> Result<(), ExportError> {
    let meta = tx.open_table(backend::META)?;
    let mut items = BTreeMap::new();
    let ci = backend::get_meta_u64(&meta, meta_keys::CONSISTENT_INDEX)?.unwrap_or(0);
    items.insert(keys::CONSISTENT_INDEX.to_vec(), ci.to_be_bytes().to_vec());
    if let Some(term) = backend::get_meta_u64(&meta, meta_keys::TERM)? {
        items.insert(keys::TERM.to_vec(), term.to_be_bytes().to_vec());
    }
    let compactions = [
        (keys::SCHEDULED_COMPACT_REV, meta_keys::SCHEDULED_COMPACT),
        (keys::FINISHED_COMPACT_REV, meta_keys::FINISHED_COMPACT),
    ];
    for (etcd_key, key) in compactions {
        if let Some(rev) = backend::get_meta_u64(&meta, key)? {
            let rev = Revision {
                main: rev as i64,
                sub: 0,
            };
            items.insert(etcd_key.to_vec(), rev.to_key(false));
        }
    }
    let conf = ConfState {
        voters: members
            .iter()
            .filter(|m| !m.is_learner)
            .map(|m| m.id)
            .collect(),
        learners: members
            .iter()
            .filter(|m| m.is_learner)
            .map(|m| m.id)
            .collect(),
        ..Default::default()
    };
    let conf = serde_json::to_vec(&conf).expect("JSON of a struct");
    items.insert(keys::CONF_STATE.to_vec(), conf);
    write_bucket(w, buckets::META, &items)
}

fn write_bucket(
    w: &mut BoltWriter,
    name: &[u8],
    items: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), ExportError> {
    w.begin_bucket(name)?;
    for (k, v) in items {
        w.put(k, v)?;
    }
    Ok(w.end_bucket()?)
}
