//! Coordination recipes on top of the v3 API, built the way etcd's `clientv3/concurrency`
//! and `contrib/recipes` packages build them: from leases, revisions and watches only, so
//! they interoperate with etcd's Go clients and with `etcdctl lock` / `etcdctl elect`.
//!
//! ```text
//!   Session ── a lease kept alive in the background; every key below that a client owns
//!   │          is attached to it, so a client that dies lets go when its TTL runs out
//!   ├─ Mutex      name/<lease hex>          wait for the key created just before mine
//!   ├─ RwMutex    name/read/<unique>        readers wait for older writers,
//!   │             name/write/<unique>       writers wait for every older key
//!   └─ Election   name/<lease hex> = value  the key with the lowest create revision leads
//!   Barrier       one key: waiting = watching for its delete
//!   Queue         name/<unique>             dequeue the lowest create revision by a
//!   PriorityQueue name/<priority>/<unique>    guarded delete (no item taken twice)
//!   GatedQueue    a Queue whose deletes also require `condition key == open value`
//! ```
//!
//! The shared idea: a contender writes its own key and reads the header revision of that
//! write, which is the key's create revision. Keys under a prefix are totally ordered by
//! create revision, so "my turn" means "no key of the prefix created before mine exists".
//! A waiter watches only the key created just before its own (no herd effect) and every
//! wait is a watch starting at the revision it read, so no event can slip between the read
//! and the watch. Nothing here polls.
//!
//! What these recipes do not give: a lock is only as good as its lease. If a holder stalls
//! (GC pause, network partition) past its lease's TTL, the server deletes its key and
//! the next waiter takes over while the first still believes it holds the lock. Pass
//! [`Mutex::fencing_token`] (the key's create revision, which only grows from holder to
//! holder) to the protected resource and have it reject writes with an older token, or
//! guard writes into the store itself with [`Mutex::is_owner`] in a transaction.
//! `docs/recipes.md` shows both.
//!
//! ```no_run
//! use chorus_client::recipes::{Election, GatedQueue, Mutex, Session};
//! use chorus_client::{Client, ConnectOptions, Op, PutOptions, Txn};
//!
//! # async fn demo() -> chorus_client::recipes::Result<()> {
//! let client = Client::connect(&["127.0.0.1:2379"], ConnectOptions::default()).await?;
//! let session = Session::new(&client, 10).await?; // lease, renewed every 10/3 s
//!
//! let mut lock = Mutex::new(&session, "printer");
//! let token = lock.lock().await?; // fencing token: grows from holder to holder
//! // A write that only happens while this session still holds the lock:
//! let guarded = Txn::new()
//!     .when([lock.is_owner()])
//!     .and_then([Op::put("/printer/queue", format!("job {token}"), &PutOptions::default())]);
//! assert!(client.txn(guarded).await?.succeeded);
//! lock.unlock().await?;
//!
//! let mut election = Election::new(&session, "cluster-leader");
//! election.campaign("node-1").await?; // returns once leading
//! let mut leaders = Election::observe(&client, "cluster-leader");
//! let first = leaders.next().await.expect("a leader")?;
//! assert_eq!(first.value, b"node-1");
//! election.resign().await?;
//!
//! let queue = GatedQueue::new(&client, "/queue/work", "/queue/condition", "go");
//! queue.enqueue("job-1").await?;
//! queue.open().await?;
//! let item = queue.dequeue().await?; // waits by watch while closed or empty
//! assert_eq!(item.value, b"job-1");
//! session.close().await?;
//! # Ok(())
//! # }
//! ```

mod barrier;
mod election;
mod mutex;
mod queue;
mod rwmutex;
mod session;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chorus_api::etcdserverpb::response_op::Response;
use chorus_api::etcdserverpb::{RangeResponse, ResponseOp};
use chorus_api::mvccpb::{event::EventType, KeyValue};

use crate::{Client, Error};
use crate::{
    Cmp, CompareResult, GetOptions, Op, PutOptions, SortOrder, SortTarget, Txn, WatchOptions,
};

pub use barrier::{Barrier, DoubleBarrier};
pub use election::{Election, Observe};
pub use mutex::Mutex;
pub use queue::{GatedQueue, PriorityQueue, Queue, QueueItem};
pub use rwmutex::RwMutex;
pub use session::{Session, DEFAULT_SESSION_TTL};

/// Result with a [`RecipeError`].
pub type Result<T, E = RecipeError> = std::result::Result<T, E>;

/// What can go wrong in a recipe.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// A call to the cluster failed.
    #[error(transparent)]
    Client(#[from] Error),
    /// The session's lease is gone (expired or revoked): its keys are deleted, so whatever
    /// it held is no longer held.
    #[error("session expired")]
    SessionExpired,
    /// `try_lock` found the lock held by another session.
    #[error("mutex: locked by another session")]
    Locked,
    /// The call needs this handle to be leader (campaign first) or it no longer is.
    #[error("election: not leader")]
    NotLeader,
    /// The lock or read-write lock is not held by this handle.
    #[error("not locked")]
    NotLocked,
}

/// The range response of operation `i` of a transaction's answer.
fn range_of(responses: &[ResponseOp], i: usize) -> &[KeyValue] {
    match responses.get(i).and_then(|r| r.response.as_ref()) {
        Some(Response::ResponseRange(RangeResponse { kvs, .. })) => kvs,
        _ => &[],
    }
}

/// Options of a read of the one key under `prefix` with the lowest (or, `last`, the
/// highest) create revision, ignoring keys created after `max_create_revision` when it is
/// non-zero (etcd's `WithFirstCreate` / `WithLastCreate` + `WithMaxCreateRev`).
fn by_create(last: bool, max_create_revision: i64) -> GetOptions {
    let order = if last {
        SortOrder::Descend
    } else {
        SortOrder::Ascend
    };
    GetOptions {
        prefix: true,
        limit: 1,
        sort: Some((SortTarget::Create, order)),
        max_create_revision,
        ..Default::default()
    }
}

/// `prefix/` as bytes: recipes own every key strictly under `name/`.
fn dir(name: impl AsRef<[u8]>) -> Vec<u8> {
    let mut prefix = name.as_ref().to_vec();
    prefix.push(b'/');
    prefix
}

/// A session-owned key: `prefix<lease in lower-case hex>`, the scheme of etcd's Mutex and
/// Election (so `etcdctl lock` and `etcdctl elect` contend on the same keys).
fn lease_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    key
}

/// Writes `value` under a new key `prefix<unique suffix>` that did not exist before (a
/// transaction guarded by "create revision = 0" makes that certain); returns the key and its
/// create revision. The suffix is the wall clock in nanoseconds plus a process-wide
/// counter, as etcd's recipes use the clock; only uniqueness matters, order comes from the
/// create revision.
async fn create_unique(
    client: &Client,
    prefix: &[u8],
    value: &[u8],
    lease: i64,
) -> Result<(Vec<u8>, i64)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let put = PutOptions {
        lease,
        ..Default::default()
    };
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut key = prefix.to_vec();
        key.extend_from_slice(format!("{nanos:016x}{n:08x}").as_bytes());
        let resp = client
            .txn(created_at(&key, 0).and_then([Op::put(key.clone(), value.to_vec(), &put)]))
            .await?;
        if resp.succeeded {
            let revision = resp.header.map(|h| h.revision).unwrap_or_default();
            return Ok((key, revision));
        }
    }
}

/// The header revision of a response (0 if it has none).
fn revision_of(header: Option<&chorus_api::etcdserverpb::ResponseHeader>) -> i64 {
    header.map(|h| h.revision).unwrap_or_default()
}

/// Waits until `key` is in the state `done` accepts (`None`: the key does not exist),
/// given that it was not at `revision`: a watch from `revision + 1`. If the watch ends
/// (its member went away) or cannot start there (the revision was compacted), the key is
/// read again and the wait resumes from that read. Never polls.
async fn wait_key(
    client: &Client,
    key: &[u8],
    mut revision: i64,
    done: impl Fn(Option<&KeyValue>) -> bool,
) -> Result<()> {
    loop {
        let opts = WatchOptions {
            start_revision: revision + 1,
            ..Default::default()
        };
        match client.watch(key.to_vec(), opts).await {
            Ok(mut watch) => {
                while let Ok(Some(resp)) = watch.message().await {
                    let reached = resp.events.iter().any(|e| {
                        let put = e.r#type == EventType::Put as i32;
                        done(e.kv.as_ref().filter(|_| put))
                    });
                    if reached {
                        return Ok(());
                    }
                    if resp.canceled {
                        break;
                    }
                }
            }
            Err(Error::WatchCanceled { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let now = client.get(key.to_vec(), GetOptions::default()).await?;
        if done(now.kvs.first()) {
            return Ok(());
        }
        revision = revision_of(now.header.as_ref());
    }
}

/// Waits until `key`, which existed at `revision`, is deleted.
async fn wait_delete(client: &Client, key: &[u8], revision: i64) -> Result<()> {
    wait_key(client, key, revision, |kv| kv.is_none()).await
}

/// A transaction guarded by "`key` has create revision `revision`" (0: does not exist),
/// the guard of every step a contender takes on its own key.
fn created_at(key: &[u8], revision: i64) -> Txn {
    Txn::new().when([Cmp::create_revision(
        key.to_vec(),
        CompareResult::Equal,
        revision,
    )])
}

/// Waits until no key under `prefix` with create revision <= `max_create_revision`
/// exists (etcd's `waitDeletes`): repeatedly watch the newest such key until it is
/// deleted. Each waiter thus watches only its predecessor.
async fn wait_deletes(client: &Client, prefix: &[u8], max_create_revision: i64) -> Result<()> {
    loop {
        let resp = client
            .get(prefix.to_vec(), by_create(true, max_create_revision))
            .await?;
        let Some(last) = resp.kvs.first() else {
            return Ok(());
        };
        wait_delete(client, &last.key, revision_of(resp.header.as_ref())).await?;
    }
}

/// Waits for the first put under `prefix` after `revision` (etcd's `waitPrefixEvents`
/// for PUT): used by the queues when they are empty.
async fn wait_put(client: &Client, prefix: &[u8], revision: i64) -> Result<()> {
    let opts = WatchOptions {
        prefix: true,
        start_revision: revision + 1,
        filter_delete: true,
        ..Default::default()
    };
    match client.watch(prefix.to_vec(), opts).await {
        Ok(mut watch) => {
            while let Ok(Some(resp)) = watch.message().await {
                if !resp.events.is_empty() || resp.canceled {
                    return Ok(());
                }
            }
            // The stream ended: the caller reads again, which is always safe.
            Ok(())
        }
        // Compacted past `revision`: something happened since; read again.
        Err(Error::WatchCanceled { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_schemes() {
        assert_eq!(dir("lock"), b"lock/");
        assert_eq!(
            lease_key(b"lock/", 0x694d_7a3b_0c1e_2f10),
            b"lock/694d7a3b0c1e2f10"
        );
        let opts = by_create(true, 7);
        let req = opts.to_request("p/");
        assert_eq!(req.range_end, b"p0");
        assert_eq!(req.sort_order, SortOrder::Descend as i32);
        assert_eq!(req.sort_target, SortTarget::Create as i32);
        assert_eq!((req.limit, req.max_create_revision), (1, 7));
        let req = by_create(false, 0).to_request("p/");
        assert_eq!(req.sort_order, SortOrder::Ascend as i32);
    }
}
