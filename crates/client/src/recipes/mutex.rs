//! [`Mutex`]: etcd's distributed lock (`concurrency.Mutex`), the one `etcdctl lock` and the
//! Lock service use.

use chorus_api::etcdserverpb::Compare;

use super::{
    by_create, created_at, dir, lease_key, range_of, revision_of, wait_deletes, RecipeError,
    Result, Session,
};
use crate::{Client, Cmp, CompareResult, DeleteOptions, GetOptions, Op, PutOptions};

/// A distributed mutex named `name`, owned by a [`Session`].
///
/// Algorithm (etcd's): the contender puts `name/<lease hex>` with the session's lease, in
/// a transaction that also reads the key under `name/` with the lowest create revision.
/// If that is its own key, it holds the lock. Otherwise it waits until every key under
/// `name/` created before its own is deleted, watching only the newest of them each time,
/// then checks that its own key still exists (its lease may have run out meanwhile).
/// Unlock deletes the key. Waiters are served in the order their keys were created.
///
/// Guarantees: while the holder's lease is alive, no other contender on the same name
/// (this type, `etcdctl lock name`, the `Lock` service, etcd's Go `Mutex`) holds it, and
/// the fencing token — the create revision of the holder's key — strictly grows from one
/// holder to the next.
///
/// Not guaranteed: that the holder still holds the lock when it acts. If its session
/// expires (a pause or partition longer than the TTL), the key is deleted and the next
/// waiter proceeds. Protect writes with the token: see [`Mutex::fencing_token`] and
/// [`Mutex::is_owner`].
///
/// One `Mutex` per session and name: the key is derived from the lease, so two handles on
/// the same session and name share one key and would both "hold" the lock.
#[derive(Debug, Clone)]
pub struct Mutex {
    client: Client,
    lease: i64,
    prefix: Vec<u8>,
    key: Vec<u8>,
    revision: i64,
}

impl Mutex {
    /// A mutex on `name` for `session` (keys `name/<lease hex>`). Nothing is sent yet.
    pub fn new(session: &Session, name: impl AsRef<[u8]>) -> Mutex {
        let prefix = dir(name);
        Mutex {
            client: session.client().clone(),
            lease: session.lease(),
            key: lease_key(&prefix, session.lease()),
            prefix,
            revision: -1,
        }
    }

    /// Puts this contender's key (if not there yet); returns its create revision and
    /// whether it is the oldest key under the prefix.
    async fn enter(&mut self) -> Result<bool> {
        let put = PutOptions {
            lease: self.lease,
            ..Default::default()
        };
        let owner = Op::get(self.prefix.clone(), &by_create(false, 0));
        let resp = self
            .client
            .txn(
                created_at(&self.key, 0)
                    .and_then([Op::put(self.key.clone(), "", &put), owner.clone()])
                    .or_else([Op::get(self.key.clone(), &GetOptions::default()), owner]),
            )
            .await?;
        self.revision = if resp.succeeded {
            revision_of(resp.header.as_ref())
        } else {
            match range_of(&resp.responses, 0).first() {
                Some(kv) => kv.create_revision,
                // Deleted between the compare and the read cannot happen in one txn.
                None => return Err(RecipeError::SessionExpired),
            }
        };
        let owner = range_of(&resp.responses, 1).first();
        Ok(owner.is_none_or(|kv| kv.create_revision == self.revision))
    }

    /// Acquires the lock, waiting for earlier contenders; returns the fencing token.
    ///
    /// If this future is dropped while waiting, the contender's key stays (as a waiter)
    /// until [`Mutex::unlock`] or the end of the session; call `unlock` to withdraw.
    pub async fn lock(&mut self) -> Result<i64> {
        if self.enter().await? {
            return Ok(self.revision);
        }
        if let Err(e) = wait_deletes(&self.client, &self.prefix, self.revision - 1).await {
            let _ = self.unlock().await;
            return Err(e);
        }
        // Our key may have gone with our lease while we waited.
        let mine = self
            .client
            .get(self.key.clone(), GetOptions::default())
            .await?;
        match mine.kvs.first() {
            Some(kv) if kv.create_revision == self.revision => Ok(self.revision),
            _ => {
                self.revision = -1;
                Err(RecipeError::SessionExpired)
            }
        }
    }

    /// Acquires the lock only if nobody holds it or waits for it; otherwise removes this
    /// contender's key again and returns [`RecipeError::Locked`].
    pub async fn try_lock(&mut self) -> Result<i64> {
        if self.enter().await? {
            return Ok(self.revision);
        }
        self.unlock().await?;
        Err(RecipeError::Locked)
    }

    /// Releases the lock (or withdraws from waiting): deletes the contender's key.
    pub async fn unlock(&mut self) -> Result<()> {
        self.client
            .delete(self.key.clone(), DeleteOptions::default())
            .await?;
        self.revision = -1;
        Ok(())
    }

    /// The fencing token of the current hold: the create revision of this contender's key
    /// (etcd's `Mutex.Header().Revision` after `Lock`). Holders' tokens strictly increase,
    /// so a resource that remembers the largest token it has seen and rejects smaller ones
    /// cannot be written by a holder whose lease has expired after a newer one wrote.
    pub fn fencing_token(&self) -> i64 {
        self.revision
    }

    /// This contender's key, `name/<lease hex>`.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// A transaction guard that holds only while this handle holds the lock (its key
    /// exists with the same create revision): `Txn::new().when([m.is_owner()])...` makes a
    /// write into the store conditional on still holding the lock.
    pub fn is_owner(&self) -> Compare {
        Cmp::create_revision(self.key.clone(), CompareResult::Equal, self.revision)
    }
}
