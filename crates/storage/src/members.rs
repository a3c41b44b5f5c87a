//! The cluster's members as the backend stores them: the `members` table (member ID →
//! `internalpb.Member`), the `members_removed` table (IDs that may never come back) and
//! the cluster ID, the cluster version and the downgrade job in `meta`.

use std::collections::BTreeMap;

use chorus_api::internalpb::{DowngradeInfoSet, Member};
use prost::Message;
use redb::ReadableTable;

use crate::backend::{self, Backend, BackendError, MEMBERS, META, REMOVED_MEMBERS};

/// The `meta` key holding the cluster ID.
pub const META_CLUSTER_ID: &str = "cluster_id";

/// The `meta` key holding the downgrade job (`internalpb.DowngradeInfoSet`).
pub const META_DOWNGRADE: &str = "downgrade";

/// The `meta` key holding the cluster version the leader decided (`3.5.0`), as etcd's
/// `cluster/clusterVersion`.
pub const META_CLUSTER_VERSION: &str = "cluster_version";

/// Every member in the `members` table, by ID.
pub fn load(backend: &Backend) -> Result<BTreeMap<u64, Member>, BackendError> {
    let tx = backend.begin_read()?;
    let table = tx.open_table(MEMBERS)?;
    let mut members = BTreeMap::new();
    for item in table.iter()? {
        let (k, v) = item?;
        let m = Member::decode(v.value()).map_err(|e| BackendError::Corrupt {
            what: format!("member {:x}: {e}", k.value()),
        })?;
        members.insert(k.value(), m);
    }
    Ok(members)
}

pub fn save(tx: &redb::WriteTransaction, m: &Member) -> Result<(), BackendError> {
    let mut table = tx.open_table(MEMBERS)?;
    table.insert(m.id, m.encode_to_vec().as_slice())?;
    Ok(())
}

/// Removes a member and remembers its ID as removed.
pub fn remove(tx: &redb::WriteTransaction, id: u64) -> Result<(), BackendError> {
    tx.open_table(MEMBERS)?.remove(id)?;
    tx.open_table(REMOVED_MEMBERS)?.insert(id, [].as_slice())?;
    Ok(())
}

/// Empties both member tables (a restored backend belongs to a new cluster).
pub fn clear(tx: &redb::WriteTransaction) -> Result<(), BackendError> {
    for table in [MEMBERS, REMOVED_MEMBERS] {
        tx.delete_table(table)?;
        tx.open_table(table)?;
    }
    Ok(())
}

pub fn is_removed(backend: &Backend, id: u64) -> Result<bool, BackendError> {
    is_removed_in(&backend.begin_read()?, id)
}

pub fn is_removed_in(tx: &redb::ReadTransaction, id: u64) -> Result<bool, BackendError> {
    Ok(tx.open_table(REMOVED_MEMBERS)?.get(id)?.is_some())
}

pub fn removed_ids(backend: &Backend) -> Result<Vec<u64>, BackendError> {
    let tx = backend.begin_read()?;
    let table = tx.open_table(REMOVED_MEMBERS)?;
    let mut out = Vec::new();
    for item in table.iter()? {
        out.push(item?.0.value());
    }
    Ok(out)
}

pub fn cluster_id(backend: &Backend) -> Result<Option<u64>, BackendError> {
    let tx = backend.begin_read()?;
    let meta = tx.open_table(META)?;
    backend::get_meta_u64(&meta, META_CLUSTER_ID)
}

pub fn set_cluster_id(tx: &redb::WriteTransaction, id: u64) -> Result<(), BackendError> {
    let mut meta = tx.open_table(META)?;
    backend::put_meta_u64(&mut meta, META_CLUSTER_ID, id)
}

/// The downgrade job last set (none: never set, as etcd's `downgradeInfoFromBackend`).
pub fn downgrade(backend: &Backend) -> Result<Option<DowngradeInfoSet>, BackendError> {
    let tx = backend.begin_read()?;
    let meta = tx.open_table(META)?;
    let Some(v) = meta.get(META_DOWNGRADE)? else {
        return Ok(None);
    };
    let d = DowngradeInfoSet::decode(v.value()).map_err(|e| BackendError::Corrupt {
        what: format!("downgrade info: {e}"),
    })?;
    Ok(Some(d))
}

pub fn set_downgrade(
    tx: &redb::WriteTransaction,
    d: &DowngradeInfoSet,
) -> Result<(), BackendError> {
    let mut meta = tx.open_table(META)?;
    meta.insert(META_DOWNGRADE, d.encode_to_vec().as_slice())?;
    Ok(())
}

/// The cluster version last set through raft (none: not decided yet).
pub fn cluster_version(backend: &Backend) -> Result<Option<String>, BackendError> {
    let tx = backend.begin_read()?;
    let meta = tx.open_table(META)?;
    let Some(v) = meta.get(META_CLUSTER_VERSION)? else {
        return Ok(None);
    };
    let v = std::str::from_utf8(v.value()).map_err(|e| BackendError::Corrupt {
        what: format!("cluster version: {e}"),
    })?;
    Ok(Some(v.to_owned()))
}

pub fn set_cluster_version(tx: &redb::WriteTransaction, version: &str) -> Result<(), BackendError> {
    let mut meta = tx.open_table(META)?;
    meta.insert(META_CLUSTER_VERSION, version.as_bytes())?;
    Ok(())
}
