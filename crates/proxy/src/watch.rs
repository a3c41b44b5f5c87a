//! The Watch service of the proxy (etcd's `grpcproxy/watch.go`): each client stream's
//! create and cancel requests become receivers in the [`WatchHub`], which coalesces
//! identical watches into one upstream watch.
//!
//! A create is checked first with a count-only serializable range of the same keys,
//! made with the caller's credentials, so a watcher never rides on an upstream watch
//! it could not have opened itself (etcd's `checkPermissionForWatch`).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chorus_api::etcdserverpb::{
    kv_client::KvClient, watch_create_request::FilterType, watch_request::RequestUnion,
    watch_server::Watch, RangeRequest, ResponseHeader, WatchCreateRequest, WatchRequest,
    WatchResponse,
};
use futures::Stream;
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::broadcast::{RangeKey, Receiver, WatchHub};
use crate::namespace::Namespace;
use crate::upstream::{forward, Retry, Upstream};

/// Responses queued for one client stream before it counts as too slow.
pub const STREAM_QUEUE: usize = 1024;
/// Watchers one client stream may hold.
pub const MAX_WATCHERS_PER_STREAM: usize = 100_000;

const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";

/// The Watch service of the proxy.
pub struct WatchProxy {
    pub hub: Arc<WatchHub>,
    pub up: Upstream,
    pub ns: Namespace,
    next_stream: AtomicU64,
}

impl WatchProxy {
    pub fn new(hub: Arc<WatchHub>, up: Upstream, ns: Namespace) -> Self {
        WatchProxy {
            hub,
            up,
            ns,
            next_stream: AtomicU64::new(1),
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchProxy {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (md, _, inbound) = request.into_parts();
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let stream = ClientStream {
            id: self.next_stream.fetch_add(1, Ordering::Relaxed),
            hub: self.hub.clone(),
            up: self.up.clone(),
            ns: self.ns.clone(),
            md,
            tx,
            slow: Arc::new(Notify::new()),
            watchers: HashMap::new(),
            next_id: 0,
        };
        tokio::spawn(stream.serve(inbound));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// One client's watch stream.
struct ClientStream {
    id: u64,
    hub: Arc<WatchHub>,
    up: Upstream,
    ns: Namespace,
    md: MetadataMap,
    tx: mpsc::Sender<Result<WatchResponse, Status>>,
    slow: Arc<Notify>,
    watchers: HashMap<i64, RangeKey>,
    next_id: i64,
}

impl ClientStream {
    async fn serve(mut self, mut inbound: Streaming<WatchRequest>) {
        loop {
            let slow = self.slow.clone();
            let tx = self.tx.clone();
            tokio::select! {
                _ = slow.notified() => {
                    tracing::warn!("closing a watch stream that fell {STREAM_QUEUE} responses behind");
                    break;
                }
                _ = tx.closed() => break,
                msg = inbound.message() => match msg {
                    Ok(Some(req)) => self.handle(req).await,
                    _ => break,
                },
            }
        }
        for (id, range) in std::mem::take(&mut self.watchers) {
            self.hub.remove(&range, (self.id, id));
        }
    }

    async fn handle(&mut self, req: WatchRequest) {
        match req.request_union {
            Some(RequestUnion::CreateRequest(cr)) => self.create(cr).await,
            Some(RequestUnion::CancelRequest(c)) => {
                let Some(range) = self.watchers.remove(&c.watch_id) else {
                    return;
                };
                let header = self.hub.remove(&range, (self.id, c.watch_id));
                self.send(WatchResponse {
                    header: Some(header.unwrap_or_default()),
                    watch_id: c.watch_id,
                    canceled: true,
                    ..Default::default()
                })
                .await;
            }
            // etcd's proxy does not serve progress requests either.
            Some(RequestUnion::ProgressRequest(_)) | None => {
                tracing::debug!("watch request not supported by the proxy ignored")
            }
        }
    }

    async fn send(&self, resp: WatchResponse) {
        let _ = self.tx.send(Ok(resp)).await;
    }

    async fn refuse(&self, watch_id: i64, reason: String) {
        self.send(WatchResponse {
            header: Some(ResponseHeader::default()),
            watch_id,
            created: true,
            canceled: true,
            cancel_reason: reason,
            ..Default::default()
        })
        .await;
    }

    async fn create(&mut self, cr: WatchCreateRequest) {
        if cr.start_revision < 0 {
            return self.refuse(-1, COMPACTED.into()).await;
        }
        let valid = cr.range_end.is_empty() || cr.range_end == [0] || cr.range_end > cr.key;
        if !valid || self.watchers.len() >= MAX_WATCHERS_PER_STREAM {
            return self.refuse(-1, String::new()).await;
        }
        let (key, end) = self.ns.range(&cr.key, &cr.range_end);
        if let Err(status) = self.check_permission(&key, &end).await {
            return self.refuse(-1, status.message().to_string()).await;
        }
        let id = match cr.watch_id {
            0 => {
                while self.watchers.contains_key(&self.next_id) {
                    self.next_id += 1;
                }
                self.next_id
            }
            id if self.watchers.contains_key(&id) => {
                return self
                    .refuse(id, "etcdserver: duplicate watch ID".into())
                    .await
            }
            id => id,
        };
        let filters = |f: FilterType| cr.filters.contains(&(f as i32));
        let receiver = Receiver {
            watch_id: id,
            tx: self.tx.clone(),
            slow: self.slow.clone(),
            nextrev: cr.start_revision,
            created_sent: false,
            no_put: filters(FilterType::Noput),
            no_delete: filters(FilterType::Nodelete),
            prev_kv: cr.prev_kv,
            progress: cr.progress_notify,
        };
        let range = (key, end);
        self.watchers.insert(id, range.clone());
        self.hub.add(range, (self.id, id), receiver, &self.md);
    }

    /// etcd's `checkPermissionForWatch`: a count-only read of the range as the caller.
    async fn check_permission(&self, key: &[u8], end: &[u8]) -> Result<(), Status> {
        let (key, end) = if key.is_empty() {
            (vec![0], vec![0])
        } else {
            (key.to_vec(), end.to_vec())
        };
        let req = RangeRequest {
            key,
            range_end: end,
            serializable: true,
            count_only: true,
            limit: 1,
            ..Default::default()
        };
        self.up
            .call(Retry::Read, |ch| {
                let r = forward(&self.md, req.clone());
                async move {
                    KvClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .range(r)
                        .await
                }
            })
            .await
            .map(|_| ())
    }
}
