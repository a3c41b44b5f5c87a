//! The watcher hub: fans applied events out to watchers, as etcd's watchableStore.
//!
//! ```text
//!   apply thread ── notify(rev, events) ──► synced watchers (index by key / by range)
//!                                             │ per stream: queue of outgoing messages
//!                                             │ queue over its limit → watcher unsynced
//!   catch-up task ── events_within(min_rev, hub.rev) from the backend ──► unsynced
//!                   watchers, then synced once they have everything up to hub.rev
//! ```
//! Guarantees: a watcher gets events in revision order, each once, every event of a
//! revision in one message (unless it asked for fragments), and nothing between its start
//! revision and now is skipped. A slow stream never blocks apply or other streams: its
//! watchers fall back to the catch-up path, which reads from the backend in batches of
//! bounded size, so memory stays bounded by the per-stream queue limits (messages and
//! bytes) whether or not the client reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chorus_api::mvccpb::{event::EventType, Event};
use chorus_storage::mvcc::{KvStore, MvccError, RangeEnd};
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};

/// Queued event messages a stream may hold before its watchers are moved to catch-up.
pub const STREAM_QUEUE_LIMIT: usize = 1024;
/// Bytes of keys and values a stream's queue may hold before the same happens (a queue
/// under it takes one more message, however large: a revision is never split).
pub const STREAM_QUEUE_BYTES: usize = 8 << 20;
/// Bytes of keys and values a watcher catches up by in one round (whole revisions, at
/// least one): a watcher far behind is sent its history in bounded messages, where one
/// message of everything since it fell behind could be any size.
pub const CATCH_UP_BYTES: usize = 1 << 20;

/// What a stream's sender task turns into `WatchResponse`s, in order.
#[derive(Debug)]
pub enum Outgoing {
    Created {
        watch_id: i64,
        rev: i64,
    },
    /// A create that failed: created and canceled at once.
    Refused {
        watch_id: i64,
        rev: i64,
        reason: String,
    },
    Canceled {
        watch_id: i64,
        rev: i64,
        reason: String,
    },
    /// The start revision was compacted: the watcher is canceled.
    Compacted {
        watch_id: i64,
        rev: i64,
        compact_rev: i64,
    },
    /// Events of one or more whole revisions; `rev` is the header revision.
    Events {
        watch_id: i64,
        rev: i64,
        events: Vec<Event>,
        prev_kv: bool,
        fragment: bool,
    },
    /// An empty response telling the client everything up to `rev` was sent
    /// (`watch_id` -1 for a stream-wide progress request).
    Progress {
        watch_id: i64,
        rev: i64,
    },
}

/// The hub's handle on one gRPC watch stream.
pub struct StreamHandle {
    pub id: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Event messages queued and not yet taken by the sender.
    queued: AtomicUsize,
    /// Their keys' and values' bytes.
    queued_bytes: AtomicUsize,
}

impl StreamHandle {
    pub fn new(id: u64) -> (Arc<StreamHandle>, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let h = Arc::new(StreamHandle {
            id,
            tx,
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
        });
        (h, rx)
    }

    /// Control messages are never refused (they are few and small).
    fn control(&self, m: Outgoing) {
        let _ = self.tx.send(m);
    }

    /// Whether the queue takes another event message.
    fn has_room(&self) -> bool {
        self.queued.load(Ordering::Acquire) < STREAM_QUEUE_LIMIT
            && self.queued_bytes.load(Ordering::Acquire) < STREAM_QUEUE_BYTES
    }

    /// Queues events unless the stream is over its limits.
    fn events(&self, w: &Watcher, watch_id: i64, rev: i64, events: Vec<Event>) -> bool {
        if !self.has_room() {
            return false;
        }
        let bytes = event_bytes(&events);
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if self
            .tx
            .send(Outgoing::Events {
                watch_id,
                rev,
                events,
                prev_kv: w.prev_kv,
                fragment: w.fragment,
            })
            .is_err()
        {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
        true
    }

    /// The sender took an event message off the queue.
    pub fn taken(&self, m: &Outgoing) {
        if let Outgoing::Events { events, .. } = m {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.queued_bytes
                .fetch_sub(event_bytes(events), Ordering::AcqRel);
        }
    }
}

/// What a queue limit counts of an event message: its keys and values.
fn event_bytes(events: &[Event]) -> usize {
    events
        .iter()
        .filter_map(|e| e.kv.as_ref())
        .map(|kv| kv.key.len() + kv.value.len())
        .sum()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    Single,
    Unbounded,
    Before(Vec<u8>),
}

impl End {
    fn as_range_end(&self) -> RangeEnd<'_> {
        match self {
            End::Single => RangeEnd::Single,
            End::Unbounded => RangeEnd::Unbounded,
            End::Before(e) => RangeEnd::Before(e),
        }
    }
}

/// A watch request as the hub needs it.
#[derive(Clone, Debug)]
pub struct WatchSpec {
    pub key: Vec<u8>,
    /// etcd's convention: empty = one key, `"\0"` = every key from `key` on.
    pub range_end: Vec<u8>,
    /// 0 = from the next revision.
    pub start_rev: i64,
    pub no_put: bool,
    pub no_delete: bool,
    pub progress_notify: bool,
    pub prev_kv: bool,
    pub fragment: bool,
}

struct Watcher {
    key: Vec<u8>,
    end: End,
    /// The next revision this watcher needs.
    min_rev: i64,
    no_put: bool,
    no_delete: bool,
    progress_notify: bool,
    prev_kv: bool,
    fragment: bool,
    synced: bool,
    /// Events were sent since the last periodic progress tick.
    sent_since_tick: bool,
    stream: Arc<StreamHandle>,
}

impl Watcher {
    fn matches(&self, k: &[u8]) -> bool {
        match &self.end {
            End::Single => k == self.key.as_slice(),
            End::Unbounded => k >= self.key.as_slice(),
            End::Before(e) => k >= self.key.as_slice() && k < e.as_slice(),
        }
    }

    /// Whether the watcher is sent an event of a key it watches: not before its start
    /// revision, and not of a type it filters out.
    fn takes(&self, e: &Event) -> bool {
        e.kv.as_ref()
            .is_some_and(|kv| kv.mod_revision >= self.min_rev)
            && self.wants(e)
    }

    fn wants(&self, e: &Event) -> bool {
        let put = e.r#type == EventType::Put as i32;
        !(put && self.no_put || !put && self.no_delete)
    }
}

/// (stream id, watch id)
type WatcherKey = (u64, i64);
/// Maps keyed by watcher, looked up once per watcher an event reaches: foldhash instead
/// of SipHash, which took 6% of a fan-out's CPU. Its seeds are random per map, so IDs a
/// client picks cannot be chosen to collide in advance; the watched keys themselves
/// (`synced_keys`, looked up once per event) keep SipHash.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// A stream's watchers, so that closing it costs its own watchers, not every watcher.
#[derive(Default)]
struct StreamWatchers {
    next_id: i64,
    ids: FastSet<i64>,
}

#[derive(Default)]
struct Hub {
    /// The last revision handed to `notify` (events up to it are with synced watchers).
    rev: i64,
    watchers: FastMap<WatcherKey, Watcher>,
    /// Synced single-key watchers by key.
    synced_keys: HashMap<Vec<u8>, FastSet<WatcherKey>>,
    /// Synced range watchers.
    synced_ranges: FastSet<WatcherKey>,
    unsynced: FastSet<WatcherKey>,
    /// Each stream's watch IDs and next server-assigned ID.
    streams: FastMap<u64, StreamWatchers>,
    /// Streams that asked for progress while some of their watchers were catching up.
    progress_requested: HashMap<u64, Arc<StreamHandle>>,
}

impl Hub {
    fn insert(&mut self, k: WatcherKey, w: Watcher) {
        self.watchers.insert(k, w);
        self.streams.entry(k.0).or_default().ids.insert(k.1);
    }

    fn remove(&mut self, k: WatcherKey) {
        self.unindex(k);
        self.unsynced.remove(&k);
        self.watchers.remove(&k);
        if let Some(s) = self.streams.get_mut(&k.0) {
            s.ids.remove(&k.1);
        }
    }

    fn index(&mut self, k: WatcherKey) {
        let w = &self.watchers[&k];
        match w.end {
            End::Single => {
                self.synced_keys.entry(w.key.clone()).or_default().insert(k);
            }
            _ => {
                self.synced_ranges.insert(k);
            }
        }
    }

    fn unindex(&mut self, k: WatcherKey) {
        let Some(w) = self.watchers.get(&k) else {
            return;
        };
        match w.end {
            End::Single => {
                if let Some(set) = self.synced_keys.get_mut(&w.key) {
                    set.remove(&k);
                    if set.is_empty() {
                        self.synced_keys.remove(&w.key);
                    }
                }
            }
            _ => {
                self.synced_ranges.remove(&k);
            }
        }
    }

    fn move_to_unsynced(&mut self, k: WatcherKey, min_rev: i64) {
        self.unindex(k);
        if let Some(w) = self.watchers.get_mut(&k) {
            w.synced = false;
            w.min_rev = min_rev;
            self.unsynced.insert(k);
        }
    }

    fn move_to_synced(&mut self, k: WatcherKey) {
        self.unsynced.remove(&k);
        if let Some(w) = self.watchers.get_mut(&k) {
            w.synced = true;
            self.index(k);
        }
    }

    /// Every (synced watcher, event index) pair whose key the watcher watches, grouped by
    /// watcher, each watcher's pairs in event order: one list instead of a map of batches
    /// per put (a single-event put, the common case, needs no grouping at all).
    fn targets(&self, events: &[Event]) -> Vec<(WatcherKey, usize)> {
        let mut out = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let Some(kv) = &e.kv else { continue };
            if let Some(set) = self.synced_keys.get(&kv.key) {
                out.extend(set.iter().map(|k| (*k, i)));
            }
            let ranges = self.synced_ranges.iter();
            out.extend(
                ranges
                    .filter(|k| self.watchers[*k].matches(&kv.key))
                    .map(|k| (*k, i)),
            );
        }
        if events.len() > 1 {
            // By watcher, then event index: a watcher's events stay in revision order.
            out.sort_unstable();
        }
        out
    }

    fn stream_synced(&self, stream: u64) -> bool {
        !self.unsynced.iter().any(|(s, _)| *s == stream)
    }

    fn answer_progress(&mut self) {
        let ready: Vec<u64> = self
            .progress_requested
            .keys()
            .copied()
            .filter(|s| self.stream_synced(*s))
            .collect();
        for s in ready {
            if let Some(stream) = self.progress_requested.remove(&s) {
                stream.control(Outgoing::Progress {
                    watch_id: -1,
                    rev: self.rev,
                });
            }
        }
    }
}

pub struct WatchHub {
    hub: Mutex<Hub>,
    kick: Notify,
}

#[derive(Debug, PartialEq, Eq)]
pub enum WatchError {
    DuplicateId,
    EmptyRange,
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WatchError::DuplicateId => "mvcc: duplicate watch ID provided on the WatchStream",
            WatchError::EmptyRange => "mvcc: watcher range is empty",
        })
    }
}

impl WatchHub {
    pub fn new(rev: i64) -> Arc<WatchHub> {
        Arc::new(WatchHub {
            hub: Mutex::new(Hub {
                rev,
                ..Default::default()
            }),
            kick: Notify::new(),
        })
    }

    /// The revision up to which synced watchers have been given every event.
    pub fn rev(&self) -> i64 {
        self.hub.lock().rev
    }

    /// Answers a create request that may not be served (auth refused it) with a created
    /// and canceled response, as etcd does.
    pub fn refuse(&self, stream: &Arc<StreamHandle>, reason: String) {
        let rev = self.hub.lock().rev;
        stream.control(Outgoing::Refused {
            watch_id: -1,
            rev,
            reason,
        });
    }

    /// Registers a watcher and queues its `created` response (or the refusal).
    pub fn watch(
        &self,
        stream: &Arc<StreamHandle>,
        watch_id: i64,
        spec: WatchSpec,
    ) -> Result<i64, WatchError> {
        let mut hub = self.hub.lock();
        let rev = hub.rev;
        let end = match spec.range_end.as_slice() {
            [] => End::Single,
            [0] => End::Unbounded,
            e if spec.key.as_slice() >= e => {
                stream.control(Outgoing::Refused {
                    watch_id: -1,
                    rev,
                    reason: WatchError::EmptyRange.to_string(),
                });
                return Err(WatchError::EmptyRange);
            }
            e => End::Before(e.to_vec()),
        };
        let id = if watch_id != 0 {
            if hub.watchers.contains_key(&(stream.id, watch_id)) {
                stream.control(Outgoing::Refused {
                    watch_id: -1,
                    rev,
                    reason: WatchError::DuplicateId.to_string(),
                });
                return Err(WatchError::DuplicateId);
            }
            watch_id
        } else {
            let s = hub.streams.entry(stream.id).or_default();
            let mut id = s.next_id;
            while s.ids.contains(&id) {
                id += 1;
            }
            s.next_id = id + 1;
            id
        };
        let min_rev = if spec.start_rev <= 0 {
            rev + 1
        } else {
            spec.start_rev
        };
        let key = (stream.id, id);
        hub.insert(
            key,
            Watcher {
                key: spec.key,
                end,
                min_rev,
                no_put: spec.no_put,
                no_delete: spec.no_delete,
                progress_notify: spec.progress_notify,
                prev_kv: spec.prev_kv,
                fragment: spec.fragment,
                synced: false,
                sent_since_tick: false,
                stream: stream.clone(),
            },
        );
        stream.control(Outgoing::Created { watch_id: id, rev });
        if min_rev > rev {
            hub.move_to_synced(key);
        } else {
            hub.unsynced.insert(key);
            drop(hub);
            self.kick.notify_one();
        }
        Ok(id)
    }

    /// Cancels a watcher; queues the `canceled` response. False if it did not exist.
    pub fn cancel(&self, stream: &Arc<StreamHandle>, watch_id: i64) -> bool {
        let mut hub = self.hub.lock();
        let key = (stream.id, watch_id);
        if !hub.watchers.contains_key(&key) {
            return false;
        }
        hub.remove(key);
        stream.control(Outgoing::Canceled {
            watch_id,
            rev: hub.rev,
            reason: String::new(),
        });
        true
    }

    /// Drops every watcher of a stream that went away.
    pub fn close_stream(&self, stream: u64) {
        let mut hub = self.hub.lock();
        let ids = hub.streams.remove(&stream).unwrap_or_default().ids;
        for id in ids {
            hub.remove((stream, id));
        }
        hub.progress_requested.remove(&stream);
    }

    /// A client's progress request: answered at once if every watcher of the stream is
    /// synced, otherwise as soon as they are (never claiming unsent revisions).
    pub fn request_progress(&self, stream: &Arc<StreamHandle>) {
        let mut hub = self.hub.lock();
        if hub.stream_synced(stream.id) {
            stream.control(Outgoing::Progress {
                watch_id: -1,
                rev: hub.rev,
            });
        } else {
            hub.progress_requested.insert(stream.id, stream.clone());
        }
    }

    /// Periodic progress: an empty response to every synced `progress_notify` watcher that
    /// received nothing since the last tick.
    pub fn progress_tick(&self) {
        let mut hub = self.hub.lock();
        let rev = hub.rev;
        for (&(_, id), w) in hub.watchers.iter_mut() {
            if w.progress_notify && w.synced && !w.sent_since_tick {
                w.stream.control(Outgoing::Progress { watch_id: id, rev });
            }
            w.sent_since_tick = false;
        }
    }

    /// Delivers the events of an applied batch (revisions up to `rev`, in order).
    pub fn notify(&self, rev: i64, events: &[Event]) {
        let mut hub = self.hub.lock();
        if events.is_empty() {
            hub.rev = hub.rev.max(rev);
            return;
        }
        let targets = hub.targets(events);
        hub.rev = rev;
        let mut fell_behind = Vec::new();
        for group in targets.chunk_by(|a, b| a.0 == b.0) {
            let k = group[0].0;
            let w = hub.watchers.get_mut(&k).expect("indexed watchers exist");
            // Cloned only once known to be wanted: a put reaching 100,000 watchers is
            // copied as often, so nothing is copied twice or in vain.
            let evs: Vec<Event> = group
                .iter()
                .map(|&(_, i)| &events[i])
                .filter(|e| w.takes(e))
                .cloned()
                .collect();
            let Some(first) = evs.first().and_then(|e| e.kv.as_ref()) else {
                continue;
            };
            let (first, n) = (first.mod_revision, evs.len());
            if w.stream.events(w, k.1, rev, evs) {
                w.sent_since_tick = true;
            } else {
                chorus_metrics::PENDING_EVENTS.add(n as i64);
                fell_behind.push((k, first));
            }
        }
        if !fell_behind.is_empty() {
            for (k, from) in fell_behind {
                hub.move_to_unsynced(k, from);
            }
            drop(hub);
            self.kick.notify_one();
        }
    }

    /// After the backend was replaced by a leader's snapshot: every watcher catches up
    /// from the new backend (and is told if what it needs was compacted).
    pub fn restore(&self, rev: i64) {
        let mut hub = self.hub.lock();
        let delivered = hub.rev;
        let keys: Vec<WatcherKey> = hub.watchers.keys().copied().collect();
        for k in keys {
            let w = &hub.watchers[&k];
            // A synced watcher has everything up to the old hub revision.
            let min = if w.synced {
                w.min_rev.max(delivered + 1)
            } else {
                w.min_rev
            };
            hub.move_to_unsynced(k, min);
        }
        hub.rev = rev;
        drop(hub);
        self.kick.notify_one();
    }

    /// Runs catch-up rounds while `store` gives a key space (None: the member is gone).
    pub async fn run_catch_up(
        self: Arc<Self>,
        store: impl Fn() -> Option<Arc<KvStore>> + Send + 'static,
    ) {
        loop {
            tokio::select! {
                _ = self.kick.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
            }
            let this = self.clone();
            let Some(kv) = store() else { return };
            let more = tokio::task::spawn_blocking(move || this.catch_up_round(&kv))
                .await
                .unwrap_or(false);
            if more {
                self.kick.notify_one();
            }
        }
    }

    /// One catch-up round over at most 512 unsynced watchers whose stream has room, each
    /// sent at most [`CATCH_UP_BYTES`] of its history. Returns whether work is left.
    pub fn catch_up_round(&self, kv: &KvStore) -> bool {
        let (rev, todo) = {
            let hub = self.hub.lock();
            let todo: Vec<(WatcherKey, Vec<u8>, End, i64)> = hub
                .unsynced
                .iter()
                .filter(|k| hub.watchers[k].stream.has_room())
                .take(512)
                .map(|k| {
                    let w = &hub.watchers[k];
                    (*k, w.key.clone(), w.end.clone(), w.min_rev)
                })
                .collect();
            // Never past what `kv` holds: a round that started just before the backend
            // was replaced (snapshot install, defragment) reads the old store, which ends
            // below the revision the new one brought.
            (hub.rev.min(kv.current_rev()), todo)
        };
        if todo.is_empty() {
            return false;
        }
        let mut fetched = BTreeMap::new();
        for (k, key, end, min_rev) in &todo {
            let r = if *min_rev > rev {
                Ok((Vec::new(), rev))
            } else {
                kv.events_within(key, end.as_range_end(), *min_rev, rev, CATCH_UP_BYTES)
            };
            fetched.insert(*k, (*min_rev, r));
        }
        let mut hub = self.hub.lock();
        for (k, (min_rev, result)) in fetched {
            let Some(w) = hub.watchers.get_mut(&k) else {
                continue;
            };
            if w.synced || w.min_rev != min_rev {
                continue;
            }
            match result {
                Err(MvccError::Compacted) => {
                    w.stream.control(Outgoing::Compacted {
                        watch_id: k.1,
                        rev,
                        compact_rev: kv.compact_rev(),
                    });
                    hub.remove(k);
                }
                Err(e) => tracing::error!("watch catch-up: {e}"),
                Ok((events, through)) => {
                    let events: Vec<Event> = events.into_iter().filter(|e| w.wants(e)).collect();
                    if !events.is_empty() {
                        let n = events.len();
                        if !w.stream.events(w, k.1, rev, events) {
                            chorus_metrics::PENDING_EVENTS.add(n as i64);
                            continue; // still behind: try again next round
                        }
                        w.sent_since_tick = true;
                    }
                    // Never below the start revision of a watcher that starts in the
                    // future (nothing was fetched for it then).
                    w.min_rev = w.min_rev.max(through + 1);
                    if through == rev && hub.rev == rev {
                        hub.move_to_synced(k);
                    }
                }
            }
        }
        hub.answer_progress();
        !hub.unsynced.is_empty()
    }

    /// Number of watchers (synced, unsynced).
    pub fn counts(&self) -> (usize, usize) {
        let hub = self.hub.lock();
        (hub.watchers.len() - hub.unsynced.len(), hub.unsynced.len())
    }
}

#[cfg(test)]
mod tests;
