//! Queues: [`Queue`] (FIFO), [`PriorityQueue`] and the seed's condition-gated
//! [`GatedQueue`] (etcd's `contrib/recipes` queues, plus the gate).

use chorus_api::etcdserverpb::Compare;
use chorus_api::mvccpb::KeyValue;

use super::{by_create, create_unique, created_at, dir, revision_of, wait_key, wait_put, Result};
use crate::{
    Client, Cmp, CompareResult, DeleteOptions, GetOptions, Op, PutOptions, SortOrder, SortTarget,
    Txn,
};

/// An item taken off a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// When it was enqueued (its key's create revision).
    pub create_revision: i64,
    /// When it was dequeued (the revision of the delete that took it).
    pub revision: i64,
}

/// Deletes `kv` if it is still the same item (same create revision) and every extra guard
/// holds; `Some(item)` if this call took it.
async fn take(client: &Client, kv: KeyValue, guards: Vec<Compare>) -> Result<Option<QueueItem>> {
    let resp = client
        .txn(
            created_at(&kv.key, kv.create_revision)
                .when(guards)
                .and_then([Op::delete(kv.key.clone(), &DeleteOptions::default())]),
        )
        .await?;
    Ok(resp.succeeded.then(|| QueueItem {
        revision: revision_of(resp.header.as_ref()),
        key: kv.key,
        value: kv.value,
        create_revision: kv.create_revision,
    }))
}

/// A FIFO queue of values under `name/` (the seed's in-order keys, in v3 terms).
///
/// Algorithm: enqueue writes a new unique key `name/<unique>` (no lease: items outlive
/// their producer). Dequeue reads the key with the lowest create revision and deletes it
/// in a transaction guarded by that create revision; if another consumer took it first,
/// the guard fails and it reads again. An empty queue is waited on with a watch for the
/// next put under the prefix, from the revision of the read that found it empty.
///
/// Guarantees: every enqueued item is dequeued at most once (the guarded delete succeeds
/// for one consumer only) and none is lost while the store keeps it; ordered by the
/// revision of the deletes that took them, items come out in the order they went in
/// (increasing create revision), across all producers and consumers. Not guaranteed:
/// that a consumer that took an item also processed it — it is gone from the queue once
/// taken; re-enqueue on failure if you need at-least-once processing.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    prefix: Vec<u8>,
}

impl Queue {
    pub fn new(client: &Client, name: impl AsRef<[u8]>) -> Queue {
        Queue {
            client: client.clone(),
            prefix: dir(name),
        }
    }

    /// Appends `value`; returns its key and create revision.
    pub async fn enqueue(&self, value: impl AsRef<[u8]>) -> Result<(Vec<u8>, i64)> {
        create_unique(&self.client, &self.prefix, value.as_ref(), 0).await
    }

    /// Takes the oldest item, waiting while the queue is empty.
    pub async fn dequeue(&self) -> Result<QueueItem> {
        loop {
            let resp = self
                .client
                .get(self.prefix.clone(), by_create(false, 0))
                .await?;
            match resp.kvs.into_iter().next() {
                Some(kv) => {
                    if let Some(item) = take(&self.client, kv, Vec::new()).await? {
                        return Ok(item);
                    }
                }
                None => {
                    wait_put(
                        &self.client,
                        &self.prefix,
                        revision_of(resp.header.as_ref()),
                    )
                    .await?
                }
            }
        }
    }

    /// Number of items waiting.
    pub async fn len(&self) -> Result<usize> {
        count(&self.client, &self.prefix).await
    }
}

async fn count(client: &Client, prefix: &[u8]) -> Result<usize> {
    let opts = GetOptions {
        prefix: true,
        count_only: true,
        ..Default::default()
    };
    Ok(client.get(prefix.to_vec(), opts).await?.count as usize)
}

/// A priority queue under `name/`: lower priority numbers come out first, equal ones in
/// FIFO order.
///
/// Algorithm: enqueue writes `name/<priority, 5 digits>/<unique>`, so keys sort by
/// priority. Dequeue reads the first key (by key) to find the best non-empty priority,
/// then the oldest item (by create revision) of that priority, and takes it with a
/// guarded delete as [`Queue`] does. Same guarantees as [`Queue`] per priority; an item of
/// better priority enqueued while a consumer is between its two reads may come out after
/// the item that consumer takes.
#[derive(Debug, Clone)]
pub struct PriorityQueue {
    client: Client,
    prefix: Vec<u8>,
}

impl PriorityQueue {
    pub fn new(client: &Client, name: impl AsRef<[u8]>) -> PriorityQueue {
        PriorityQueue {
            client: client.clone(),
            prefix: dir(name),
        }
    }

    /// Adds `value` with `priority` (0 first); returns its key and create revision.
    pub async fn enqueue(&self, value: impl AsRef<[u8]>, priority: u16) -> Result<(Vec<u8>, i64)> {
        let mut prefix = self.prefix.clone();
        prefix.extend_from_slice(format!("{priority:05}/").as_bytes());
        create_unique(&self.client, &prefix, value.as_ref(), 0).await
    }

    /// Takes the oldest item of the best priority, waiting while the queue is empty.
    pub async fn dequeue(&self) -> Result<QueueItem> {
        loop {
            let first = GetOptions {
                prefix: true,
                limit: 1,
                keys_only: true,
                sort: Some((SortTarget::Key, SortOrder::Ascend)),
                ..Default::default()
            };
            let resp = self.client.get(self.prefix.clone(), first).await?;
            let Some(kv) = resp.kvs.first() else {
                wait_put(
                    &self.client,
                    &self.prefix,
                    revision_of(resp.header.as_ref()),
                )
                .await?;
                continue;
            };
            // `name/` + 5 digits + `/`: the bucket of that priority.
            let bucket = kv.key[..(self.prefix.len() + 6).min(kv.key.len())].to_vec();
            let oldest = self.client.get(bucket, by_create(false, 0)).await?;
            if let Some(kv) = oldest.kvs.into_iter().next() {
                if let Some(item) = take(&self.client, kv, Vec::new()).await? {
                    return Ok(item);
                }
            }
        }
    }

    /// Number of items waiting.
    pub async fn len(&self) -> Result<usize> {
        count(&self.client, &self.prefix).await
    }
}

/// The seed's distributed queue with a condition: a FIFO [`Queue`] whose consumers take
/// items only while `condition` holds `open_value` (the seed's `/queue/condition`).
///
/// Algorithm: a dequeue reads the condition and the oldest item at one revision (one
/// read-only transaction). Gate closed: it watches the condition key from that revision
/// until it is put with the open value. Queue empty: it watches for the next put of an
/// item. Otherwise it deletes the item in a transaction guarded by the item's create
/// revision *and* `value(condition) == open_value`, so an item is never taken at a
/// revision where the gate is closed, however the consumer's reads and the gate's
/// changes interleave. Waiting is always a watch, never polling.
///
/// The condition key must not be under the items' prefix (`/queue/condition` with items
/// under `/queue/jobs/`, say); a missing condition key counts as closed.
#[derive(Debug, Clone)]
pub struct GatedQueue {
    queue: Queue,
    condition: Vec<u8>,
    open_value: Vec<u8>,
}

impl GatedQueue {
    /// Items under `name/`, gated by `condition` == `open_value`.
    pub fn new(
        client: &Client,
        name: impl AsRef<[u8]>,
        condition: impl AsRef<[u8]>,
        open_value: impl AsRef<[u8]>,
    ) -> GatedQueue {
        GatedQueue {
            queue: Queue::new(client, name),
            condition: condition.as_ref().to_vec(),
            open_value: open_value.as_ref().to_vec(),
        }
    }

    /// Appends `value` (producers are never gated); returns its key and create revision.
    pub async fn enqueue(&self, value: impl AsRef<[u8]>) -> Result<(Vec<u8>, i64)> {
        self.queue.enqueue(value).await
    }

    /// Opens the gate (puts the open value); returns the revision of that put.
    pub async fn open(&self) -> Result<i64> {
        let resp = self
            .queue
            .client
            .put(
                self.condition.clone(),
                self.open_value.clone(),
                PutOptions::default(),
            )
            .await?;
        Ok(revision_of(resp.header.as_ref()))
    }

    /// Closes the gate (deletes the condition key); returns the revision of that delete.
    pub async fn close(&self) -> Result<i64> {
        let resp = self
            .queue
            .client
            .delete(self.condition.clone(), DeleteOptions::default())
            .await?;
        Ok(revision_of(resp.header.as_ref()))
    }

    /// Takes the oldest item once the gate is open, waiting (by watch) while it is closed
    /// or the queue is empty.
    pub async fn dequeue(&self) -> Result<QueueItem> {
        let client = &self.queue.client;
        let prefix = &self.queue.prefix;
        loop {
            let read = client
                .txn(Txn::new().and_then([
                    Op::get(self.condition.clone(), &GetOptions::default()),
                    Op::get(prefix.clone(), &by_create(false, 0)),
                ]))
                .await?;
            let revision = revision_of(read.header.as_ref());
            let open = super::range_of(&read.responses, 0)
                .first()
                .is_some_and(|kv| kv.value == self.open_value);
            if !open {
                self.wait_open(revision).await?;
                continue;
            }
            let Some(kv) = super::range_of(&read.responses, 1).first().cloned() else {
                wait_put(client, prefix, revision).await?;
                continue;
            };
            let gate = Cmp::value(
                self.condition.clone(),
                CompareResult::Equal,
                self.open_value.clone(),
            );
            if let Some(item) = take(client, kv, vec![gate]).await? {
                return Ok(item);
            }
        }
    }

    /// Waits for the condition key to hold the open value, closed at `revision`.
    async fn wait_open(&self, revision: i64) -> Result<()> {
        let open = |kv: Option<&KeyValue>| kv.is_some_and(|kv| kv.value == self.open_value);
        wait_key(&self.queue.client, &self.condition, revision, open).await
    }

    /// Number of items waiting.
    pub async fn len(&self) -> Result<usize> {
        self.queue.len().await
    }
}
