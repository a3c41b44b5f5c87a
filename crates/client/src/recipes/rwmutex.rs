//! [`RwMutex`]: a readers-writer lock (etcd's `contrib/recipes` RWMutex).

use super::{create_unique, dir, wait_deletes, RecipeError, Result, Session};
use crate::{Client, DeleteOptions, GetOptions};

/// A distributed readers-writer lock named `name`, owned by a [`Session`].
///
/// Algorithm: a reader creates `name/read/<unique>`, a writer `name/write/<unique>`, both
/// with the session's lease; the create revision orders them. A reader proceeds when no
/// writer key created before its own remains (`name/write/` only); a writer proceeds when
/// no key at all created before its own remains (`name/`). Hence readers run together,
/// a writer runs alone, and a waiting writer holds back readers that came after it (no
/// writer starvation).
///
/// Guarantees and limits are those of [`super::Mutex`]: exclusion holds while the holders'
/// leases are alive; the create revision returned by the lock calls is a fencing token.
#[derive(Debug)]
pub struct RwMutex {
    client: Client,
    lease: i64,
    prefix: Vec<u8>,
    key: Option<(Vec<u8>, i64)>,
}

impl RwMutex {
    /// A readers-writer lock on `name` for `session`. Nothing is sent yet.
    pub fn new(session: &Session, name: impl AsRef<[u8]>) -> RwMutex {
        RwMutex {
            client: session.client().clone(),
            lease: session.lease(),
            prefix: dir(name),
            key: None,
        }
    }

    fn sub(&self, kind: &str) -> Vec<u8> {
        let mut prefix = self.prefix.clone();
        prefix.extend_from_slice(kind.as_bytes());
        prefix.push(b'/');
        prefix
    }

    /// Creates this handle's key under `kind` and waits for the keys in `wait_under`
    /// created before it; returns the key's create revision.
    async fn acquire(&mut self, kind: &str, wait_under: Vec<u8>) -> Result<i64> {
        let (key, revision) = create_unique(&self.client, &self.sub(kind), b"", self.lease).await?;
        self.key = Some((key.clone(), revision));
        if let Err(e) = wait_deletes(&self.client, &wait_under, revision - 1).await {
            let _ = self.unlock().await;
            return Err(e);
        }
        let mine = self.client.get(key, GetOptions::default()).await?;
        if mine.kvs.first().map(|kv| kv.create_revision) != Some(revision) {
            self.key = None;
            return Err(RecipeError::SessionExpired);
        }
        Ok(revision)
    }

    /// Takes the lock shared: waits for writers that came first. Returns the create
    /// revision of the reader's key.
    pub async fn read_lock(&mut self) -> Result<i64> {
        let writers = self.sub("write");
        self.acquire("read", writers).await
    }

    /// Takes the lock exclusively: waits for every reader and writer that came first.
    /// Returns the create revision of the writer's key (a fencing token).
    pub async fn write_lock(&mut self) -> Result<i64> {
        let everyone = self.prefix.clone();
        self.acquire("write", everyone).await
    }

    /// Releases whichever lock this handle holds (deletes its key).
    pub async fn unlock(&mut self) -> Result<()> {
        let (key, _) = self.key.take().ok_or(RecipeError::NotLocked)?;
        self.client.delete(key, DeleteOptions::default()).await?;
        Ok(())
    }
}
