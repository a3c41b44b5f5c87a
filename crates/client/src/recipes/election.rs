//! [`Election`]: etcd's leader election (`concurrency.Election`), the one `etcdctl elect`
//! and the Election service use.

use chorus_api::mvccpb::{event::EventType, KeyValue};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{
    by_create, created_at, dir, lease_key, range_of, revision_of, wait_deletes, RecipeError,
    Result, Session,
};
use crate::{Client, Cmp, CompareResult, DeleteOptions, GetOptions, Op, PutOptions};
use crate::{Error, WatchOptions};

/// A leader election named `name`, for one [`Session`].
///
/// Algorithm (etcd's): a candidate puts `name/<lease hex>` = its value with the session's
/// lease (or, if that key exists already, keeps it and proclaims the new value); it leads
/// once every key under `name/` created before its own is deleted — the leader is always
/// the live key with the lowest create revision. Proclaim and resign are transactions
/// guarded by "my key still has my create revision", so a candidate that lost its key
/// (lease expired) cannot overwrite or delete a successor's.
///
/// Guarantees: at any revision at most one key leads; a leader whose session dies is
/// replaced by the next candidate in create order; observers see leaders in that order.
/// As with [`super::Mutex`], a leader that stalls past its TTL may still think it leads:
/// use the leader revision as a fencing token, or guard writes with [`Election::is_leader`].
#[derive(Debug)]
pub struct Election {
    client: Client,
    lease: i64,
    prefix: Vec<u8>,
    /// This candidate's key and its create revision, while campaigning or leading.
    leader: Option<(Vec<u8>, i64)>,
}

impl Election {
    /// An election on `name` for `session`. Nothing is sent yet.
    pub fn new(session: &Session, name: impl AsRef<[u8]>) -> Election {
        Election {
            client: session.client().clone(),
            lease: session.lease(),
            prefix: dir(name),
            leader: None,
        }
    }

    /// Campaigns with `value` and returns once this candidate leads; the result is the
    /// leader key's create revision (a fencing token for this term of leadership).
    ///
    /// If this future is dropped while waiting, the candidate's key stays until
    /// [`Election::resign`] or the end of the session.
    pub async fn campaign(&mut self, value: impl Into<Vec<u8>>) -> Result<i64> {
        let value = value.into();
        let key = lease_key(&self.prefix, self.lease);
        let put = PutOptions {
            lease: self.lease,
            ..Default::default()
        };
        let resp = self
            .client
            .txn(
                created_at(&key, 0)
                    .and_then([Op::put(key.clone(), value.clone(), &put)])
                    .or_else([Op::get(key.clone(), &GetOptions::default())]),
            )
            .await?;
        let revision = if resp.succeeded {
            revision_of(resp.header.as_ref())
        } else {
            let existing = range_of(&resp.responses, 0)
                .first()
                .cloned()
                .ok_or(RecipeError::SessionExpired)?;
            existing.create_revision
        };
        self.leader = Some((key.clone(), revision));
        if !resp.succeeded {
            self.proclaim(value).await?;
        }
        if let Err(e) = wait_deletes(&self.client, &self.prefix, revision - 1).await {
            let _ = self.resign().await;
            return Err(e);
        }
        let mine = self.client.get(key, GetOptions::default()).await?;
        if mine.kvs.first().map(|kv| kv.create_revision) != Some(revision) {
            self.leader = None;
            return Err(RecipeError::SessionExpired);
        }
        Ok(revision)
    }

    /// Announces a new value as the leader, without another election.
    pub async fn proclaim(&self, value: impl Into<Vec<u8>>) -> Result<()> {
        let (key, revision) = self.leader.clone().ok_or(RecipeError::NotLeader)?;
        let put = PutOptions {
            lease: self.lease,
            ..Default::default()
        };
        let resp = self
            .client
            .txn(created_at(&key, revision).and_then([Op::put(key.clone(), value, &put)]))
            .await?;
        if !resp.succeeded {
            return Err(RecipeError::NotLeader);
        }
        Ok(())
    }

    /// Gives up leadership (or candidacy): deletes the key if it is still this
    /// candidate's. Resigning without campaigning is a no-op.
    pub async fn resign(&mut self) -> Result<()> {
        let Some((key, revision)) = self.leader.take() else {
            return Ok(());
        };
        self.client
            .txn(
                created_at(&key, revision)
                    .and_then([Op::delete(key.clone(), &DeleteOptions::default())]),
            )
            .await?;
        Ok(())
    }

    /// A transaction guard that holds only while this candidate's key is the one it
    /// created (combine with a check that it leads, or use after [`Election::campaign`]).
    pub fn is_leader(&self) -> Option<chorus_api::etcdserverpb::Compare> {
        let (key, revision) = self.leader.clone()?;
        Some(Cmp::create_revision(key, CompareResult::Equal, revision))
    }

    /// This candidate's key and its create revision, after a campaign.
    pub fn key(&self) -> Option<(&[u8], i64)> {
        self.leader.as_ref().map(|(k, r)| (k.as_slice(), *r))
    }

    /// The current leader of election `name`: the key under `name/` with the lowest create
    /// revision, or `None` when nobody leads.
    pub async fn leader(client: &Client, name: impl AsRef<[u8]>) -> Result<Option<KeyValue>> {
        let resp = client.get(dir(name), by_create(false, 0)).await?;
        Ok(resp.kvs.into_iter().next())
    }

    /// Follows election `name`: yields the leader's key-value now (if any) and again at
    /// every change of leader or proclaimed value. Leaders come in the order they led;
    /// one that leads and resigns between two reads of the observer may be skipped, and
    /// after the observer's watch is broken (its member went away) the current leader is
    /// reported again.
    pub fn observe(client: &Client, name: impl AsRef<[u8]>) -> Observe {
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(observe(client.clone(), dir(name), tx));
        Observe { rx, task }
    }
}

/// The leaders of an election as they change (see [`Election::observe`]). Dropping it
/// stops observing.
#[derive(Debug)]
pub struct Observe {
    rx: mpsc::Receiver<Result<KeyValue>>,
    task: JoinHandle<()>,
}

impl Observe {
    /// The next leader (or new value of the leader); `None` after an error was returned.
    pub async fn next(&mut self) -> Option<Result<KeyValue>> {
        self.rx.recv().await
    }
}

impl Drop for Observe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn observe(client: Client, prefix: Vec<u8>, tx: mpsc::Sender<Result<KeyValue>>) {
    if let Err(e) = follow(&client, &prefix, &tx).await {
        let _ = tx.send(Err(e)).await;
    }
}

/// etcd's observe loop: read the leader; with none, wait for the first put under the
/// prefix; report it, then watch that key for new values until it is deleted, and start
/// over. Returns when the receiver is gone.
async fn follow(client: &Client, prefix: &[u8], tx: &mpsc::Sender<Result<KeyValue>>) -> Result<()> {
    loop {
        let resp = client.get(prefix.to_vec(), by_create(false, 0)).await?;
        let mut revision = revision_of(resp.header.as_ref());
        let leader = match resp.kvs.into_iter().next() {
            Some(kv) => kv,
            None => {
                let opts = WatchOptions {
                    prefix: true,
                    start_revision: revision + 1,
                    filter_delete: true,
                    ..Default::default()
                };
                let mut watch = client.watch(prefix.to_vec(), opts).await?;
                let first = loop {
                    match watch.message().await.map_err(RecipeError::from)? {
                        Some(w) if w.canceled => break None,
                        Some(w) => {
                            if let Some(kv) = w.events.into_iter().find_map(|e| e.kv) {
                                break Some(kv);
                            }
                        }
                        None => break None,
                    }
                };
                match first {
                    Some(kv) => {
                        revision = kv.mod_revision;
                        kv
                    }
                    None => continue,
                }
            }
        };
        let key = leader.key.clone();
        let mut last_value = leader.value.clone();
        if tx.send(Ok(leader)).await.is_err() {
            return Ok(());
        }
        let opts = WatchOptions {
            start_revision: revision + 1,
            ..Default::default()
        };
        let mut watch = match client.watch(key, opts).await {
            Ok(w) => w,
            Err(Error::WatchCanceled { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        'key: while let Ok(Some(w)) = watch.message().await {
            for event in w.events {
                if event.r#type == EventType::Delete as i32 {
                    break 'key;
                }
                if let Some(kv) = event.kv.filter(|kv| kv.value != last_value) {
                    last_value = kv.value.clone();
                    if tx.send(Ok(kv)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            if w.canceled {
                break;
            }
        }
    }
}
