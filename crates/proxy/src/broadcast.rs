//! Watch coalescing (etcd's `watch_broadcast*.go`): every client watcher on the same
//! range whose start fits joins one upstream watch, a *broadcast*, so a member sees one
//! watcher however many clients watch the same key through the proxy.
//!
//! ```text
//!   client watchers ──add──▶ WatchHub ── ranges: (key, end) ──▶ broadcasts ──▶ 1 upstream watch each
//!        ▲                                                          │ (prev_kv, progress_notify)
//!        └──── per receiver: skip revisions < its nextrev, filters, ◀┘ responses
//!              prev_kv removed unless asked, namespace taken off
//! ```
//!
//! A watcher joins a broadcast when it loses nothing by it: a current watcher (start 0)
//! joins one that is being created or is created (its `created` answer then carries the
//! broadcast's last header, and events follow from there); a watcher from revision S
//! joins a created broadcast that has not delivered past S. Otherwise it gets a broadcast
//! of its own; after each response a broadcast hands the receivers that are already as
//! far as another broadcast of the range over to it, and stops when it has none left.
//! A broken upstream watch is resumed from the broadcast's next revision on the next
//! member. Each client stream's queue holds [`crate::watch::STREAM_QUEUE`] responses; a
//! client that falls that far behind has its stream closed (etcd cancels it too).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chorus_api::etcdserverpb::{
    watch_request::RequestUnion, ResponseHeader, WatchCreateRequest, WatchRequest, WatchResponse,
};
use chorus_api::mvccpb::event::EventType;
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};
use tonic::metadata::MetadataMap;
use tonic::Status;

use crate::metrics::Metrics;
use crate::namespace::Namespace;
use crate::upstream::Upstream;
use crate::Shutdown;

/// `(key, range_end)` in the member's keyspace.
pub type RangeKey = (Vec<u8>, Vec<u8>);
/// `(client stream, watch ID on that stream)`.
pub type ReceiverId = (u64, i64);

/// One client watcher.
pub struct Receiver {
    pub watch_id: i64,
    pub tx: mpsc::Sender<Result<WatchResponse, Status>>,
    /// Told when this client's queue is full: its stream is closed.
    pub slow: Arc<Notify>,
    /// Lowest revision still to deliver (0: current, set when created).
    pub nextrev: i64,
    pub created_sent: bool,
    pub no_put: bool,
    pub no_delete: bool,
    pub prev_kv: bool,
    pub progress: bool,
}

impl Receiver {
    /// etcd's `watcher.send`: what this watcher gets of an upstream response.
    fn shape(&mut self, resp: &WatchResponse, ns: &Namespace) -> Option<WatchResponse> {
        let header = resp.header;
        if resp.events.is_empty() {
            if !self.progress {
                return None;
            }
            let rev = header.as_ref().map_or(0, |h| h.revision);
            self.nextrev = self.nextrev.max(rev + 1);
            return Some(WatchResponse {
                header,
                watch_id: self.watch_id,
                ..Default::default()
            });
        }
        let mut events = Vec::with_capacity(resp.events.len());
        let mut last = 0;
        for ev in &resp.events {
            let rev = ev.kv.as_ref().map_or(0, |kv| kv.mod_revision);
            if rev < self.nextrev {
                continue;
            }
            last = rev;
            let put = ev.r#type == EventType::Put as i32;
            if (put && self.no_put) || (!put && self.no_delete) {
                continue;
            }
            let mut ev = ev.clone();
            if !self.prev_kv {
                ev.prev_kv = None;
            }
            ns.strip_event(&mut ev);
            events.push(ev);
        }
        if last >= self.nextrev {
            self.nextrev = last + 1;
        }
        (!events.is_empty()).then(|| WatchResponse {
            header,
            watch_id: self.watch_id,
            events,
            ..Default::default()
        })
    }

    /// Queues a response; `false` when the client is gone or too slow (then dropped).
    fn post(&self, resp: WatchResponse) -> bool {
        match self.tx.try_send(Ok(resp)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.slow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn created(&mut self, header: &ResponseHeader) -> bool {
        self.created_sent = true;
        self.post(WatchResponse {
            header: Some(*header),
            watch_id: self.watch_id,
            created: true,
            ..Default::default()
        })
    }
}

struct Broadcast {
    receivers: HashMap<ReceiverId, Receiver>,
    /// The upstream watch's start revision (0: current).
    start: i64,
    /// Next revision the upstream will deliver (valid once created).
    nextrev: i64,
    created: bool,
    header: ResponseHeader,
    task: Option<tokio::task::AbortHandle>,
}

impl Broadcast {
    /// Takes `r` in when it loses nothing by joining; gives it back otherwise.
    fn try_join(&mut self, id: ReceiverId, mut r: Receiver) -> Result<(), Receiver> {
        let fits = match (r.nextrev, self.created) {
            (0, false) => self.start == 0,
            (0, true) => true,
            (s, false) => self.start == s,
            (s, true) => self.nextrev <= s,
        };
        if !fits {
            return Err(r);
        }
        if self.created {
            if r.nextrev == 0 {
                r.nextrev = self.nextrev;
            }
            r.created(&self.header);
        }
        self.receivers.insert(id, r);
        Ok(())
    }
}

#[derive(Default)]
struct HubState {
    ranges: HashMap<RangeKey, HashMap<u64, Broadcast>>,
    next_broadcast: u64,
    /// Client watchers and broadcasts, for the gauges.
    receivers: usize,
    broadcasts: usize,
}

/// Every broadcast of the proxy.
pub struct WatchHub {
    state: Mutex<HubState>,
    up: Upstream,
    ns: Namespace,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
}

/// What a broadcast's task does after a response.
enum Next {
    Continue,
    Stop,
}

impl WatchHub {
    pub fn new(up: Upstream, ns: Namespace, metrics: Arc<Metrics>, shutdown: Shutdown) -> Self {
        WatchHub {
            state: Mutex::new(HubState::default()),
            up,
            ns,
            metrics,
            shutdown,
        }
    }

    /// Adds a client watcher; starts an upstream watch (with the caller's metadata)
    /// when no broadcast fits.
    pub fn add(self: &Arc<Self>, range: RangeKey, id: ReceiverId, r: Receiver, md: &MetadataMap) {
        let mut s = self.state.lock();
        let bcasts = s.ranges.entry(range.clone()).or_default();
        let mut r = r;
        for b in bcasts.values_mut() {
            match b.try_join(id, r) {
                Ok(()) => {
                    s.receivers += 1;
                    self.publish(&s);
                    return;
                }
                Err(back) => r = back,
            }
        }
        let bid = s.next_broadcast;
        s.next_broadcast += 1;
        let start = r.nextrev;
        let mut receivers = HashMap::new();
        receivers.insert(id, r);
        let task = tokio::spawn(self.clone().run(range.clone(), bid, md.clone())).abort_handle();
        let b = Broadcast {
            receivers,
            start,
            nextrev: start,
            created: false,
            header: ResponseHeader::default(),
            task: Some(task),
        };
        s.ranges.entry(range).or_default().insert(bid, b);
        s.receivers += 1;
        s.broadcasts += 1;
        self.publish(&s);
    }

    /// etcd's `watchers_coalescing_total`: watchers riding on another's upstream watch.
    fn publish(&self, s: &HubState) {
        let coalescing = s.receivers.saturating_sub(s.broadcasts) as i64;
        self.metrics
            .watchers_coalescing
            .store(coalescing, Ordering::Relaxed);
        self.metrics
            .upstream_watches
            .store(s.broadcasts as i64, Ordering::Relaxed);
    }

    /// Removes a client watcher; returns the last header its broadcast saw (for the
    /// `canceled` answer). The broadcast stops when it has no receiver left.
    pub fn remove(&self, range: &RangeKey, id: ReceiverId) -> Option<ResponseHeader> {
        let mut guard = self.state.lock();
        let s = &mut *guard;
        let bcasts = s.ranges.get_mut(range)?;
        let (&bid, b) = bcasts
            .iter_mut()
            .find(|(_, b)| b.receivers.contains_key(&id))?;
        b.receivers.remove(&id);
        s.receivers -= 1;
        let header = b.header;
        if b.receivers.is_empty() {
            if let Some(task) = bcasts.remove(&bid).and_then(|mut b| b.task.take()) {
                task.abort();
            }
            s.broadcasts -= 1;
        }
        if bcasts.is_empty() {
            s.ranges.remove(range);
        }
        self.publish(s);
        Some(header)
    }

    /// Removes a broadcast from within its own task (no abort: the task returns).
    fn finish(&self, s: &mut HubState, range: &RangeKey, bid: u64) {
        if let Some(bcasts) = s.ranges.get_mut(range) {
            if let Some(b) = bcasts.remove(&bid) {
                s.receivers -= b.receivers.len();
                s.broadcasts -= 1;
            }
            if bcasts.is_empty() {
                s.ranges.remove(range);
            }
        }
        self.publish(s);
    }

    /// The upstream watch of broadcast `bid`: opened, resumed after failures from the
    /// next revision (bounded back-off), until the broadcast ends or the proxy stops.
    async fn run(self: Arc<Self>, range: RangeKey, bid: u64, md: MetadataMap) {
        let mut backoff = Duration::from_millis(50);
        let mut shutdown = self.shutdown.clone();
        loop {
            let start = {
                let s = self.state.lock();
                let Some(b) = s.ranges.get(&range).and_then(|r| r.get(&bid)) else {
                    return;
                };
                if b.created {
                    b.nextrev
                } else {
                    b.start
                }
            };
            let create = WatchRequest {
                request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                    key: range.0.clone(),
                    range_end: range.1.clone(),
                    start_revision: start,
                    progress_notify: true,
                    prev_kv: true,
                    ..Default::default()
                })),
            };
            let ended = tokio::select! {
                _ = shutdown.wait() => return,
                r = self.follow(&range, bid, &md, create) => r,
            };
            match ended {
                Ok(Next::Stop) => return,
                Ok(Next::Continue) => backoff = Duration::from_millis(50),
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tracing::debug!("upstream watch broke: {}; resuming", status.message());
                }
                Err(status) => {
                    self.cancel_all(&range, bid, status.message(), 0);
                    return;
                }
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Opens one upstream watch and delivers its responses until it ends.
    async fn follow(
        &self,
        range: &RangeKey,
        bid: u64,
        md: &MetadataMap,
        create: WatchRequest,
    ) -> Result<Next, Status> {
        let (_requests, mut stream) = self.up.open_watch(md, create).await?;
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => return Err(Status::unavailable("upstream watch closed")),
                Err(status) => return Err(Status::unavailable(status.message().to_string())),
            };
            if let Next::Stop = self.deliver(range, bid, resp) {
                return Ok(Next::Stop);
            }
        }
    }

    /// Hands one upstream response to the broadcast's receivers.
    fn deliver(&self, range: &RangeKey, bid: u64, resp: WatchResponse) -> Next {
        let mut s = self.state.lock();
        let Some(b) = s.ranges.get_mut(range).and_then(|r| r.get_mut(&bid)) else {
            return Next::Stop;
        };
        let header = resp.header.unwrap_or_default();
        if resp.canceled {
            drop(s);
            self.cancel_all(range, bid, &resp.cancel_reason, resp.compact_revision);
            return Next::Stop;
        }
        if resp.created {
            if !b.created {
                b.created = true;
                b.nextrev = if b.start == 0 {
                    header.revision + 1
                } else {
                    b.start
                };
                b.header = header;
                let nextrev = b.nextrev;
                let header = b.header;
                b.receivers.retain(|_, r| {
                    if r.nextrev == 0 {
                        r.nextrev = nextrev;
                    }
                    r.created_sent || r.created(&header)
                });
            }
            return Next::Continue;
        }
        b.header = header;
        b.nextrev = b.nextrev.max(header.revision + 1);
        let (delivered, gone) = self.fan_out(b, &resp);
        let emptied = b.receivers.is_empty();
        if delivered > 1 {
            let extra = (delivered - 1) as u64;
            self.metrics
                .events_coalescing
                .fetch_add(extra, Ordering::Relaxed);
        }
        s.receivers -= gone;
        self.publish(&s);
        if emptied {
            self.finish(&mut s, range, bid);
            return Next::Stop;
        }
        self.coalesce(&mut s, range, bid)
    }

    /// Sends `resp` to each receiver as it should see it; drops the gone and the slow.
    /// Returns how many receivers got events and how many were dropped.
    fn fan_out(&self, b: &mut Broadcast, resp: &WatchResponse) -> (usize, usize) {
        let mut delivered = 0;
        let before = b.receivers.len();
        b.receivers.retain(|_, r| match r.shape(resp, &self.ns) {
            Some(out) => {
                delivered += usize::from(!out.events.is_empty());
                r.post(out)
            }
            None => true,
        });
        (delivered, before - b.receivers.len())
    }

    /// Moves the receivers of `bid` that are as far as another created broadcast of the
    /// range over to it; stops `bid` when none is left.
    fn coalesce(&self, s: &mut HubState, range: &RangeKey, bid: u64) -> Next {
        let Some(bcasts) = s.ranges.get_mut(range) else {
            return Next::Stop;
        };
        let Some(target) = bcasts
            .iter()
            .filter(|(&other, o)| other != bid && o.created)
            .min_by_key(|(_, o)| o.nextrev)
            .map(|(&other, o)| (other, o.nextrev))
        else {
            return Next::Continue;
        };
        let (tid, tnext) = target;
        let b = bcasts.get_mut(&bid).expect("the broadcast being delivered");
        let moving: Vec<ReceiverId> = b
            .receivers
            .iter()
            .filter(|(_, r)| r.nextrev >= tnext)
            .map(|(id, _)| *id)
            .collect();
        if moving.is_empty() {
            return Next::Continue;
        }
        let moved: Vec<(ReceiverId, Receiver)> = moving
            .into_iter()
            .filter_map(|id| b.receivers.remove(&id).map(|r| (id, r)))
            .collect();
        let emptied = b.receivers.is_empty();
        let t = bcasts.get_mut(&tid).expect("target broadcast");
        t.receivers.extend(moved);
        if emptied {
            bcasts.remove(&bid);
            s.broadcasts -= 1;
            self.publish(s);
            return Next::Stop;
        }
        Next::Continue
    }

    /// Ends every receiver of `bid` with a `canceled` answer (compaction, refusal).
    fn cancel_all(&self, range: &RangeKey, bid: u64, reason: &str, compact_revision: i64) {
        let mut s = self.state.lock();
        let Some(b) = s.ranges.get_mut(range).and_then(|r| r.get_mut(&bid)) else {
            return;
        };
        for r in b.receivers.values() {
            r.post(WatchResponse {
                header: Some(b.header),
                watch_id: r.watch_id,
                created: !r.created_sent,
                canceled: true,
                cancel_reason: reason.to_string(),
                compact_revision,
                ..Default::default()
            });
        }
        self.finish(&mut s, range, bid);
    }

    /// Upstream watches open now (for tests and metrics).
    pub fn broadcasts(&self) -> usize {
        self.state.lock().ranges.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_api::mvccpb::{Event, KeyValue};

    fn receiver(nextrev: i64) -> (Receiver, mpsc::Receiver<Result<WatchResponse, Status>>) {
        let (tx, rx) = mpsc::channel(4);
        let r = Receiver {
            watch_id: 7,
            tx,
            slow: Arc::new(Notify::new()),
            nextrev,
            created_sent: false,
            no_put: false,
            no_delete: true,
            prev_kv: false,
            progress: false,
        };
        (r, rx)
    }

    fn event(key: &str, rev: i64, put: bool) -> Event {
        Event {
            r#type: if put {
                EventType::Put
            } else {
                EventType::Delete
            } as i32,
            kv: Some(KeyValue {
                key: key.into(),
                mod_revision: rev,
                ..Default::default()
            }),
            prev_kv: Some(KeyValue::default()),
        }
    }

    #[test]
    fn a_receiver_sees_its_revisions_filters_and_namespace() {
        let (mut r, _rx) = receiver(5);
        let ns = Namespace::new("ns/");
        let resp = WatchResponse {
            header: Some(ResponseHeader {
                revision: 6,
                ..Default::default()
            }),
            events: vec![
                event("ns/a", 4, true),
                event("ns/b", 5, true),
                event("ns/c", 6, false),
            ],
            ..Default::default()
        };
        let out = r.shape(&resp, &ns).expect("events");
        assert_eq!(out.watch_id, 7);
        assert_eq!(
            out.events.len(),
            1,
            "rev 4 is before the start, the delete is filtered"
        );
        assert_eq!(out.events[0].kv.as_ref().unwrap().key, b"b");
        assert!(out.events[0].prev_kv.is_none(), "prev_kv only when asked");
        assert_eq!(
            r.nextrev, 7,
            "the filtered delete still moves the receiver on"
        );
        assert!(r.shape(&resp, &ns).is_none(), "nothing twice");
        let progress = WatchResponse::default();
        assert!(
            r.shape(&progress, &ns).is_none(),
            "no progress unless asked"
        );
    }

    #[test]
    fn who_may_join_a_broadcast() {
        let mut b = Broadcast {
            receivers: HashMap::new(),
            start: 0,
            nextrev: 0,
            created: false,
            header: ResponseHeader::default(),
            task: None,
        };
        assert!(
            b.try_join((1, 0), receiver(0).0).is_ok(),
            "current joins a pending current"
        );
        assert!(
            b.try_join((1, 1), receiver(3).0).is_err(),
            "historical waits for created"
        );
        b.created = true;
        b.nextrev = 10;
        assert!(
            b.try_join((1, 2), receiver(9).0).is_err(),
            "from 9: would miss revision 9"
        );
        let (r, mut rx) = receiver(12);
        assert!(b.try_join((1, 3), r).is_ok(), "from 12: nothing missed");
        let created = rx.try_recv().unwrap().unwrap();
        assert!(created.created);
        let (r, _rx) = receiver(0);
        assert!(b.try_join((1, 4), r).is_ok());
        assert_eq!(
            b.receivers[&(1, 4)].nextrev,
            10,
            "a current joiner starts at nextrev"
        );
    }
}
