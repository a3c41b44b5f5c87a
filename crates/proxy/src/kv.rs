//! KV through the proxy: serializable ranges answered from the [`Cache`] when it can,
//! everything else forwarded; the proxy's own writes invalidate the cache at once
//! (etcd's `grpcproxy/kv.go`), the invalidation watch ([`run_invalidation`]) does it
//! for writes made anywhere else.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chorus_api::etcdserverpb::{
    kv_client::KvClient, kv_server::Kv, request_op::Request as OpRequest,
    watch_request::RequestUnion, CompactionRequest, CompactionResponse, DeleteRangeRequest,
    DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, RangeStreamResponse,
    RequestOp, TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest,
};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::cache::{cache_key, Cache, Lookup};
use crate::metrics::Metrics;
use crate::namespace::Namespace;
use crate::upstream::{forward, token, Retry, Upstream};
use crate::Shutdown;

/// The KV service of the proxy.
#[derive(Clone)]
pub struct KvProxy {
    pub up: Upstream,
    pub ns: Namespace,
    pub cache: Arc<Cache>,
    pub metrics: Arc<Metrics>,
}

const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";

impl KvProxy {
    fn set_size(&self) {
        self.metrics
            .cache_keys
            .store(self.cache.len() as i64, Ordering::Relaxed);
    }

    fn invalidate_ops(&self, ops: &[RequestOp]) {
        for op in ops {
            match op.request.as_ref() {
                Some(OpRequest::RequestPut(p)) => self.cache.invalidate(&p.key, b""),
                Some(OpRequest::RequestDeleteRange(d)) => {
                    self.cache.invalidate(&d.key, &d.range_end)
                }
                Some(OpRequest::RequestTxn(t)) => {
                    self.invalidate_ops(&t.success);
                    self.invalidate_ops(&t.failure);
                }
                _ => {}
            }
        }
    }
}

type RangeStream = Pin<Box<dyn Stream<Item = Result<RangeStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Kv for KvProxy {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        self.ns.range_request(&mut req);
        let key = cache_key(token(&md), &req);
        if req.serializable {
            match self.cache.get(&key, req.revision) {
                Lookup::Hit(resp) => {
                    self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Response::new(resp));
                }
                Lookup::Compacted => {
                    self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Err(Status::out_of_range(COMPACTED));
                }
                Lookup::Miss => {
                    self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let mut resp = self
            .up
            .call(Retry::Read, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    KvClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .range(r)
                        .await
                }
            })
            .await?;
        self.ns.range_response(&mut resp);
        // Linearizable answers are cached as serializable ones, as etcd does.
        self.cache.add(key, &req, &resp);
        self.set_size();
        Ok(Response::new(resp))
    }

    type RangeStreamStream = RangeStream;

    async fn range_stream(
        &self,
        _request: Request<RangeRequest>,
    ) -> Result<Response<Self::RangeStreamStream>, Status> {
        Err(Status::unimplemented(
            "RangeStream is not supported by the gRPC proxy",
        ))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        self.ns.put_request(&mut req);
        self.cache.invalidate(&req.key, b"");
        self.set_size();
        let mut resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    KvClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .put(r)
                        .await
                }
            })
            .await?;
        self.ns.put_response(&mut resp);
        Ok(Response::new(resp))
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        self.ns.delete_request(&mut req);
        self.cache.invalidate(&req.key, &req.range_end);
        self.set_size();
        let mut resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    KvClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .delete_range(r)
                        .await
                }
            })
            .await?;
        self.ns.delete_response(&mut resp);
        Ok(Response::new(resp))
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        self.ns.txn_request(&mut req);
        let writes = has_writes(&req.success) || has_writes(&req.failure);
        let retry = if writes { Retry::Write } else { Retry::Read };
        let mut resp = self
            .up
            .call(retry, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    KvClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .txn(r)
                        .await
                }
            })
            .await?;
        // A txn may claim an outdated key is updated; be safe and invalidate (etcd).
        for c in &req.compare {
            self.cache.invalidate(&c.key, &c.range_end);
        }
        self.invalidate_ops(&req.success);
        self.invalidate_ops(&req.failure);
        self.set_size();
        self.ns.txn_response(&mut resp);
        Ok(Response::new(resp))
    }

    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req);
                async move {
                    KvClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .compact(r)
                        .await
                }
            })
            .await?;
        self.cache.compact(req.revision);
        self.set_size();
        Ok(Response::new(resp))
    }
}

fn has_writes(ops: &[RequestOp]) -> bool {
    ops.iter().any(|op| match op.request.as_ref() {
        Some(OpRequest::RequestRange(_)) | None => false,
        Some(OpRequest::RequestTxn(t)) => has_writes(&t.success) || has_writes(&t.failure),
        _ => true,
    })
}

/// Keeps a watch on the whole namespace and invalidates the cache with its events;
/// reconnects (with a bounded back-off) until shutdown.
pub async fn run_invalidation(kv: KvProxy, mut shutdown: Shutdown) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let done = tokio::select! {
            _ = shutdown.wait() => return,
            r = invalidation_watch(&kv) => r,
        };
        kv.cache.unwatched();
        kv.set_size();
        if let Err(status) = done {
            tracing::debug!("cache invalidation watch ended: {}", status.message());
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn invalidation_watch(kv: &KvProxy) -> Result<(), Status> {
    let (key, range_end) = kv.ns.whole();
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key,
            range_end,
            ..Default::default()
        })),
    };
    let (tx, mut stream) = kv.up.open_watch(&Default::default(), create).await?;
    while let Some(resp) = stream.message().await? {
        if resp.canceled {
            return Err(Status::aborted(resp.cancel_reason));
        }
        for ev in &resp.events {
            if let Some(k) = ev.kv.as_ref() {
                kv.cache.invalidate(&k.key, b"");
            }
        }
        if let Some(h) = resp.header.as_ref() {
            kv.cache.watched(h.revision);
        }
        kv.set_size();
    }
    drop(tx);
    Err(Status::unavailable("watch stream closed"))
}
