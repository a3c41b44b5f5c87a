//! Where the in-memory v2 store is kept on disk: one blob in the backend's `meta` table,
//! written in the same transaction as the consistent index (so it always matches it).

use chorus_storage::backend::{Backend, BackendError, META};

use super::V2Store;

pub use chorus_storage::backend::meta_keys::V2_STORE as META_V2_STORE;

/// A new cluster's v2 store: its first members' raft attributes under `/0`, as etcd's
/// bootstrap conf changes write them (in member-ID order), saved in the backend.
pub fn seed_members(backend: &Backend) -> Result<(), BackendError> {
    let mut store = V2Store::new();
    for m in chorus_storage::members::load(backend)?.values() {
        super::members::add(&mut store, m);
    }
    let tx = backend.begin_durable_write()?;
    tx.open_table(META)?
        .insert(META_V2_STORE, store.save().as_slice())?;
    tx.commit()?;
    Ok(())
}

/// Replaces `store`'s contents with the saved ones (registered watchers stay, as etcd
/// keeps them across a snapshot recovery). A backend without a saved store leaves it empty.
pub fn load_into(backend: &Backend, store: &mut V2Store) -> Result<(), BackendError> {
    let tx = backend.begin_read()?;
    let meta = tx.open_table(META)?;
    match meta.get(META_V2_STORE)? {
        Some(blob) => store
            .recover(blob.value())
            .map_err(|e| BackendError::Corrupt {
                what: format!("v2 store: {e}"),
            }),
        None => {
            *store = V2Store::new();
            Ok(())
        }
    }
}
