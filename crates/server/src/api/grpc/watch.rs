//! `etcdserverpb.Watch`: one bidirectional stream carries any number of watchers. Requests
//! (create, cancel, progress) go to the watch hub; what the hub queues for the stream is
//! turned into `WatchResponse`s here (previous key-values looked up, fragments split).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chorus_api::etcdserverpb::watch_server::{Watch, WatchServer};
use chorus_api::etcdserverpb::{
    watch_create_request, watch_request, WatchCreateRequest, WatchRequest, WatchResponse,
};
use chorus_api::mvccpb::{event::EventType, Event};
use chorus_storage::mvcc::{KvStore, RangeEnd, RangeOptions};
use futures::Stream;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status, Streaming};

use super::stream_failures::{self, Api};
use crate::member::Member;
use crate::watch::{Outgoing, StreamHandle, WatchHub, WatchSpec};

pub fn service(member: Arc<Member>) -> WatchServer<WatchService> {
    WatchServer::new(WatchService {
        member,
        next_stream: AtomicU64::new(1),
    })
}

pub struct WatchService {
    member: Arc<Member>,
    next_stream: AtomicU64,
}

/// Unregisters the stream's watchers when the response stream is dropped (client gone).
struct StreamGuard {
    hub: Arc<WatchHub>,
    id: u64,
}

impl StreamGuard {
    fn new(hub: Arc<WatchHub>, id: u64) -> StreamGuard {
        chorus_metrics::WATCH_STREAMS.inc();
        StreamGuard { hub, id }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        chorus_metrics::WATCH_STREAMS.dec();
        self.hub.close_stream(self.id);
    }
}

/// A create request as the hub takes it; etcd reads an empty key as `"\0"`.
pub(crate) fn to_spec(c: &chorus_api::etcdserverpb::WatchCreateRequest) -> WatchSpec {
    let key = if c.key.is_empty() {
        vec![0]
    } else {
        c.key.clone()
    };
    let has = |f: watch_create_request::FilterType| c.filters.contains(&(f as i32));
    WatchSpec {
        key,
        range_end: c.range_end.clone(),
        start_rev: c.start_revision,
        no_put: has(watch_create_request::FilterType::Noput),
        no_delete: has(watch_create_request::FilterType::Nodelete),
        progress_notify: c.progress_notify,
        prev_kv: c.prev_kv,
        fragment: c.fragment,
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

/// A create request on a stream: the caller must be allowed to read the range; a refusal
/// is a created-and-canceled response whose reason is the gRPC error as Go prints it.
pub(crate) fn create(
    member: &Member,
    who: crate::member::Who<'_>,
    stream: &Arc<StreamHandle>,
    c: &WatchCreateRequest,
) {
    let hub = member.watch_hub();
    match member.check_watch(who, &c.key, &c.range_end) {
        Ok(()) => {
            let _ = hub.watch(stream, c.watch_id, to_spec(c));
        }
        Err(e) => {
            let status = Status::from(e);
            let reason = format!(
                "rpc error: code = {:?} desc = {}",
                status.code(),
                status.message()
            );
            hub.refuse(stream, reason);
        }
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        req: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        crate::api::grpc::leader::require_leader(&self.member, req.metadata())?;
        let who = super::caller::who(&self.member, &req).await?;
        let mut inbound = req.into_inner();
        let hub = self.member.watch_hub().clone();
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let (handle, rx) = StreamHandle::new(id);
        let recv_hub = hub.clone();
        let recv_handle = handle.clone();
        let member = self.member.clone();
        let (failed_tx, failed) = oneshot::channel();
        tokio::spawn(async move {
            // A clean half-close keeps the watchers: the client may still be reading.
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(msg)) => msg,
                    Ok(None) => break,
                    Err(status) => {
                        if stream_failures::receive_failed(Api::Watch, &status) {
                            // As etcd ends the stream with its receive error.
                            let _ = failed_tx.send(status);
                        }
                        break;
                    }
                };
                match msg.request_union {
                    Some(watch_request::RequestUnion::CreateRequest(c)) => {
                        create(&member, who.as_ref(), &recv_handle, &c);
                    }
                    Some(watch_request::RequestUnion::CancelRequest(c)) => {
                        recv_hub.cancel(&recv_handle, c.watch_id);
                    }
                    Some(watch_request::RequestUnion::ProgressRequest(_)) => {
                        recv_hub.request_progress(&recv_handle);
                    }
                    None => {}
                }
            }
        });
        let state = Sender {
            member: self.member.clone(),
            rx,
            handle,
            pending: std::collections::VecDeque::new(),
            failed: Some(failed),
            _guard: Some(StreamGuard::new(hub, id)),
        };
        // The stream ends after an error.
        let stream = futures::stream::unfold(Some(state), |s| async move {
            let mut s = s?;
            match s.next().await? {
                Ok(resp) => Some((Ok(resp), Some(s))),
                Err(status) => Some((Err(status), None)),
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

struct Sender {
    member: Arc<Member>,
    rx: mpsc::UnboundedReceiver<Outgoing>,
    handle: Arc<StreamHandle>,
    /// Fragments waiting to go out.
    pending: std::collections::VecDeque<WatchResponse>,
    /// The receiving half's error that ends the stream, if the server refused a request.
    failed: Option<oneshot::Receiver<Status>>,
    _guard: Option<StreamGuard>,
}

impl Sender {
    async fn next(&mut self) -> Option<Result<WatchResponse, Status>> {
        if let Some(r) = self.pending.pop_front() {
            return Some(Ok(r));
        }
        tokio::select! {
            biased;
            m = self.rx.recv() => {
                let m = m?;
                self.handle.taken(&m);
                Some(Ok(self.build(m, true)))
            }
            status = receive_failure(&mut self.failed) => Some(Err(status)),
        }
    }

    /// Turns a hub message into a response; with `fragments`, an oversized event batch of
    /// a watcher that allows it is split and the rest queued.
    fn build(&mut self, m: Outgoing, allow_fragments: bool) -> WatchResponse {
        let s = &self.member;
        match m {
            Outgoing::Created { watch_id, rev } => WatchResponse {
                header: Some(s.header(rev)),
                watch_id,
                created: true,
                ..Default::default()
            },
            Outgoing::Refused {
                watch_id,
                rev,
                reason,
            } => WatchResponse {
                header: Some(s.header(rev)),
                watch_id,
                created: true,
                canceled: true,
                cancel_reason: reason,
                ..Default::default()
            },
            Outgoing::Canceled {
                watch_id,
                rev,
                reason,
            } => WatchResponse {
                header: Some(s.header(rev)),
                watch_id,
                canceled: true,
                cancel_reason: reason,
                ..Default::default()
            },
            Outgoing::Compacted {
                watch_id,
                rev,
                compact_rev,
            } => WatchResponse {
                header: Some(s.header(rev)),
                watch_id,
                canceled: true,
                compact_revision: compact_rev,
                ..Default::default()
            },
            Outgoing::Progress { watch_id, rev } => WatchResponse {
                header: Some(s.header(rev)),
                watch_id,
                ..Default::default()
            },
            Outgoing::Events {
                watch_id,
                rev,
                mut events,
                prev_kv,
                fragment,
            } => {
                if prev_kv {
                    self.fill_prev_kvs(&mut events);
                }
                chorus_metrics::EVENTS_TOTAL.add(events.len() as u64);
                let resp = WatchResponse {
                    header: Some(s.header(rev)),
                    watch_id,
                    events,
                    ..Default::default()
                };
                if fragment && allow_fragments {
                    let mut parts = fragments(resp, s.limits.max_request_bytes);
                    let first = parts.remove(0);
                    self.pending.extend(parts);
                    return first;
                }
                resp
            }
        }
    }

    fn fill_prev_kvs(&self, events: &mut [Event]) {
        fill_prev_kvs(&self.member.kv(), events);
    }
}

/// Resolves with the receiving half's error; never, once that half ended without one.
async fn receive_failure(slot: &mut Option<oneshot::Receiver<Status>>) -> Status {
    if let Some(rx) = slot {
        if let Ok(status) = rx.await {
            return status;
        }
        *slot = None;
    }
    std::future::pending().await
}

/// The key-value before each event (none for a creation), as etcd's sendLoop does.
pub(crate) fn fill_prev_kvs(kv: &KvStore, events: &mut [Event]) {
    for e in events {
        let Some(cur) = &e.kv else { continue };
        let is_create =
            e.r#type == EventType::Put as i32 && cur.create_revision == cur.mod_revision;
        if is_create {
            continue;
        }
        let opts = RangeOptions {
            rev: cur.mod_revision - 1,
            ..Default::default()
        };
        if let Ok(r) = kv.range(&cur.key, RangeEnd::Single, opts) {
            e.prev_kv = r.kvs.into_iter().next();
        }
    }
}

/// One hub message as a single `WatchResponse` (previous key-values filled in; no
/// fragmenting), for the JSON gateway.
pub(crate) fn response(member: &Arc<Member>, m: Outgoing) -> WatchResponse {
    let (handle, rx) = StreamHandle::new(0);
    let mut sender = Sender {
        member: member.clone(),
        rx,
        handle,
        pending: std::collections::VecDeque::new(),
        failed: None,
        _guard: None,
    };
    sender.build(m, false)
}

/// Splits a response whose encoding exceeds `max` bytes into fragments, each but the last
/// marked `fragment` (etcd's sendFragments); a single event is never split.
pub fn fragments(resp: WatchResponse, max: usize) -> Vec<WatchResponse> {
    if resp.encoded_len() < max || resp.events.len() < 2 {
        return vec![resp];
    }
    let mut out = Vec::new();
    let template = WatchResponse {
        events: Vec::new(),
        fragment: true,
        ..resp.clone()
    };
    let mut cur = template.clone();
    for e in resp.events {
        cur.events.push(e);
        if cur.events.len() > 1 && cur.encoded_len() >= max {
            let last = cur.events.pop().expect("just pushed");
            out.push(std::mem::replace(&mut cur, template.clone()));
            cur.events.push(last);
        }
    }
    cur.fragment = false;
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use chorus_api::mvccpb::KeyValue;

    use super::*;

    #[test]
    fn fragments_keep_order_and_mark_all_but_the_last() {
        let events: Vec<Event> = (0..10)
            .map(|i| Event {
                kv: Some(KeyValue {
                    key: format!("k{i}").into_bytes(),
                    value: vec![0; 100],
                    mod_revision: 5,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        let resp = WatchResponse {
            watch_id: 3,
            events,
            ..Default::default()
        };
        let whole = fragments(resp.clone(), 1 << 20);
        assert_eq!(whole.len(), 1);
        assert!(!whole[0].fragment);
        let parts = fragments(resp.clone(), 350);
        assert!(parts.len() > 1);
        assert!(parts[..parts.len() - 1].iter().all(|p| p.fragment));
        assert!(!parts.last().unwrap().fragment);
        let rejoined: Vec<Event> = parts.into_iter().flat_map(|p| p.events).collect();
        assert_eq!(rejoined, resp.events);
    }
}
