//! [`Barrier`] and [`DoubleBarrier`] (etcd's `contrib/recipes` barriers).

use super::{create_unique, dir, revision_of, wait_delete, wait_key, Result, Session};
use crate::{Client, DeleteOptions, GetOptions, PutOptions};

/// A barrier on one key: while the key exists, [`Barrier::wait`] blocks; deleting it
/// releases every waiter at once.
///
/// Algorithm: `hold` puts the key, `release` deletes it; `wait` reads the key and, if it
/// exists, watches it from the read's revision for the delete, so a release between the
/// read and the watch is not missed.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    key: Vec<u8>,
}

impl Barrier {
    pub fn new(client: &Client, key: impl AsRef<[u8]>) -> Barrier {
        Barrier {
            client: client.clone(),
            key: key.as_ref().to_vec(),
        }
    }

    /// Raises the barrier (puts the key, without a lease: it stays until released).
    pub async fn hold(&self) -> Result<()> {
        self.client
            .put(self.key.clone(), "", PutOptions::default())
            .await?;
        Ok(())
    }

    /// Lowers the barrier: every waiter proceeds.
    pub async fn release(&self) -> Result<()> {
        self.client
            .delete(self.key.clone(), DeleteOptions::default())
            .await?;
        Ok(())
    }

    /// Waits until the barrier is down (returns at once if it is not raised).
    pub async fn wait(&self) -> Result<()> {
        let now = self
            .client
            .get(self.key.clone(), GetOptions::default())
            .await?;
        if now.kvs.is_empty() {
            return Ok(());
        }
        wait_delete(&self.client, &self.key, revision_of(now.header.as_ref())).await
    }
}

/// A double barrier for `count` participants: [`DoubleBarrier::enter`] returns once
/// `count` participants have entered, [`DoubleBarrier::leave`] once all of them have left.
///
/// Algorithm: entering creates `name/waiters/<unique>` with the session's lease and counts
/// the waiters; the one that makes `count` puts `name/ready`, which everyone else waits
/// for with a watch. Leaving deletes one's own waiter key and waits (watch) until no
/// waiter key is left; the last to leave deletes `name/ready`. A participant whose
/// session dies leaves implicitly (its key goes with its lease), which can release the
/// others early: the barrier is as reliable as the participants' leases.
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    lease: i64,
    prefix: Vec<u8>,
    count: usize,
    mine: Option<Vec<u8>>,
}

impl DoubleBarrier {
    pub fn new(session: &Session, name: impl AsRef<[u8]>, count: usize) -> DoubleBarrier {
        DoubleBarrier {
            client: session.client().clone(),
            lease: session.lease(),
            prefix: dir(name),
            count,
            mine: None,
        }
    }

    fn key(&self, tail: &str) -> Vec<u8> {
        let mut key = self.prefix.clone();
        key.extend_from_slice(tail.as_bytes());
        key
    }

    /// Enters and waits until `count` participants have entered.
    pub async fn enter(&mut self) -> Result<()> {
        let waiters = self.key("waiters/");
        let ready = self.key("ready");
        let (key, revision) = create_unique(&self.client, &waiters, b"", self.lease).await?;
        self.mine = Some(key);
        let count_opts = GetOptions {
            prefix: true,
            count_only: true,
            ..Default::default()
        };
        let entered = self.client.get(waiters, count_opts).await?;
        if entered.count as usize >= self.count {
            self.client.put(ready, "", PutOptions::default()).await?;
            return Ok(());
        }
        // Whoever completes the count enters after us, so its put of `ready` comes after
        // our key's revision: a watch from there cannot miss it.
        wait_key(&self.client, &ready, revision, |kv| kv.is_some()).await
    }

    /// Leaves and waits until every participant has left.
    pub async fn leave(&mut self) -> Result<()> {
        let waiters = self.key("waiters/");
        if let Some(key) = self.mine.take() {
            self.client.delete(key, DeleteOptions::default()).await?;
        }
        loop {
            let opts = GetOptions {
                prefix: true,
                limit: 1,
                ..Default::default()
            };
            let left = self.client.get(waiters.clone(), opts).await?;
            let Some(kv) = left.kvs.first() else {
                self.client
                    .delete(self.key("ready"), DeleteOptions::default())
                    .await?;
                return Ok(());
            };
            wait_delete(&self.client, &kv.key, revision_of(left.header.as_ref())).await?;
        }
    }
}
