//! The cluster's members as replicated state: stored in the backend's `members` table,
//! cached here for request handlers and the transport.

use std::collections::BTreeMap;

use chorus_api::internalpb::Member;
use chorus_storage::backend::{self, Backend, BackendError, MEMBERS, REMOVED_MEMBERS};
use prost::Message;
use redb::ReadableTable;

#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub cluster_id: u64,
    pub members: BTreeMap<u64, Member>,
}

impl Cluster {
    pub fn load(backend: &Backend, cluster_id: u64) -> Result<Cluster, BackendError> {
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
        Ok(Cluster {
            cluster_id,
            members,
        })
    }

    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    /// Every client URL of every member, for `--cluster` style endpoint discovery.
    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .values()
            .flat_map(|m| m.client_urls.iter().cloned())
            .collect()
    }
}

/// Writes a member in an apply transaction.
pub fn save_member(tx: &redb::WriteTransaction, m: &Member) -> Result<(), BackendError> {
    let mut table = tx.open_table(MEMBERS)?;
    table.insert(m.id, m.encode_to_vec().as_slice())?;
    Ok(())
}

pub fn remove_member(tx: &redb::WriteTransaction, id: u64) -> Result<(), BackendError> {
    tx.open_table(MEMBERS)?.remove(id)?;
    tx.open_table(REMOVED_MEMBERS)?.insert(id, [].as_slice())?;
    Ok(())
}

pub fn is_removed(backend: &Backend, id: u64) -> Result<bool, BackendError> {
    let tx = backend.begin_read()?;
    Ok(tx.open_table(REMOVED_MEMBERS)?.get(id)?.is_some())
}

pub const META_CLUSTER_ID: &str = "cluster_id";

pub fn cluster_id(backend: &Backend) -> Result<Option<u64>, BackendError> {
    let tx = backend.begin_read()?;
    let meta = tx.open_table(backend::META)?;
    backend::get_meta_u64(&meta, META_CLUSTER_ID)
}
