//! `etcdserverpb.KV`: Range, RangeStream (etcd 3.7, `range_stream.rs`), Put, DeleteRange,
//! Txn, Compact.

use std::sync::Arc;

use chorus_api::etcdserverpb::kv_server::{Kv, KvServer};
use chorus_api::etcdserverpb::{
    request_op, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
    PutRequest, PutResponse, RangeRequest, RangeResponse, RangeStreamResponse, RequestOp,
    TxnRequest, TxnResponse,
};
use futures::StreamExt as _;
use tonic::{Request, Response, Status};

use super::caller::who;
use super::streamed::{self, StreamedRanges};
use crate::alarm::QuotaCost;
use crate::error::EtcdError;
use crate::kv as ops;
use crate::member::{Member, Who};
use crate::range_body::RangeAnswer;
use crate::range_stream;

/// The KV service, taking requests of up to `max_request` bytes; big plain ranges are
/// streamed (`streamed.rs`), which is why it is only served wrapped.
pub fn service(member: Arc<Member>, max_request: usize) -> StreamedRanges<KvServer<KvService>> {
    let server = KvServer::new(KvService { member })
        .max_decoding_message_size(max_request)
        .max_encoding_message_size(usize::MAX);
    StreamedRanges(server)
}

pub struct KvService {
    member: Arc<Member>,
}

impl KvService {
    pub fn new(member: Arc<Member>) -> Self {
        KvService { member }
    }
}

fn check_range(r: &RangeRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

fn check_put(r: &PutRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

fn check_delete(r: &DeleteRangeRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

fn check_txn(r: &TxnRequest, max_ops: usize) -> Result<(), EtcdError> {
    let ops = r.compare.len().max(r.success.len()).max(r.failure.len());
    if ops > max_ops {
        return Err(EtcdError::TooManyOps);
    }
    if r.compare.iter().any(|c| c.key.is_empty()) {
        return Err(EtcdError::EmptyKey);
    }
    for op in r.success.iter().chain(&r.failure) {
        match &op.request {
            Some(request_op::Request::RequestRange(rr)) => check_range(rr)?,
            Some(request_op::Request::RequestPut(p)) => check_put(p)?,
            Some(request_op::Request::RequestDeleteRange(d)) => check_delete(d)?,
            Some(request_op::Request::RequestTxn(t)) => check_txn(t, max_ops - ops)?,
            None => return Err(EtcdError::KeyNotFound),
        }
    }
    Ok(())
}

/// A key interval: `[key, end)`, or a single key when `end` is empty; `end == "\0"` is
/// every key from `key` on.
#[derive(Clone, Debug)]
struct Interval {
    key: Vec<u8>,
    end: Vec<u8>,
}

impl Interval {
    fn contains(&self, k: &[u8]) -> bool {
        match self.end.as_slice() {
            [] => k == self.key.as_slice(),
            [0] => k >= self.key.as_slice(),
            end => k >= self.key.as_slice() && k < end,
        }
    }
}

/// etcd's checkIntervals: a txn may not put the same key twice or put a key it deletes,
/// on one level or between a level and its nested txns (then/else branches may overlap
/// each other since only one runs).
fn check_intervals(reqs: &[RequestOp]) -> Result<(Vec<Vec<u8>>, Vec<Interval>), EtcdError> {
    let mut dels: Vec<Interval> = reqs
        .iter()
        .filter_map(|r| match &r.request {
            Some(request_op::Request::RequestDeleteRange(d)) => Some(Interval {
                key: d.key.clone(),
                end: d.range_end.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut puts: Vec<Vec<u8>> = Vec::new();
    for r in reqs {
        let Some(request_op::Request::RequestTxn(t)) = &r.request else {
            continue;
        };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.iter().any(|d| d.contains(k)) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.push(k.clone());
        }
        for k in &puts_else {
            if puts.contains(k) && !puts_then.contains(k) {
                return Err(EtcdError::DuplicateKey);
            }
            if dels.iter().any(|d| d.contains(k)) {
                return Err(EtcdError::DuplicateKey);
            }
            if !puts.contains(k) {
                puts.push(k.clone());
            }
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for r in reqs {
        let Some(request_op::Request::RequestPut(p)) = &r.request else {
            continue;
        };
        if puts.contains(&p.key) || dels.iter().any(|d| d.contains(&p.key)) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.push(p.key.clone());
    }
    Ok((puts, dels))
}

/// A Range as the KV service serves it (also used by the lock and election services).
pub(crate) async fn range(
    member: &Member,
    who: Who<'_>,
    r: RangeRequest,
) -> Result<RangeResponse, EtcdError> {
    check_range(&r)?;
    member.range(who, &r).await
}

/// A Txn as the KV service serves it: read-only ones locally, the others through raft.
pub(crate) async fn txn(
    member: &Arc<Member>,
    who: Who<'_>,
    r: TxnRequest,
) -> Result<TxnResponse, EtcdError> {
    member.check_quota(r.cost())?;
    check_txn(&r, member.limits.max_txn_ops)?;
    check_intervals(&r.success)?;
    check_intervals(&r.failure)?;
    if ops::is_txn_read_only(&r) {
        member.read_txn(who, &r).await
    } else {
        member.txn(who, r).await
    }
}

/// A DeleteRange through raft.
pub(crate) async fn delete_range(
    member: &Member,
    who: Who<'_>,
    r: DeleteRangeRequest,
) -> Result<DeleteRangeResponse, EtcdError> {
    check_delete(&r)?;
    member.delete_range(who, r).await
}

/// A RangeStream message; the chunk that carries a header (the last) gets the member's
/// fields, keeping the revision the stream pinned.
fn stream_message(member: &Member, mut chunk: RangeResponse) -> RangeStreamResponse {
    if chunk.header.is_some() {
        member.fill_header(&mut chunk.header);
    }
    RangeStreamResponse {
        range_response: Some(chunk),
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        check_range(&r)?;
        Ok(match self.member.range_answer(who.as_ref(), &r).await? {
            RangeAnswer::Whole(resp) => Response::new(resp),
            RangeAnswer::Streamed(body) => streamed::response(body),
        })
    }

    type RangeStreamStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<RangeStreamResponse, Status>> + Send>>;

    /// The first chunk is read before answering, so a request a Range would refuse
    /// (compacted or future revision, permission) fails the call itself.
    async fn range_stream(
        &self,
        req: Request<RangeRequest>,
    ) -> Result<Response<Self::RangeStreamStream>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        range_stream::check_request(&r)?;
        let mut chunks = self.member.range_stream(who.as_ref(), r).await?;
        let first = chunks.next_chunk().expect("a first chunk")?;
        let first = stream_message(&self.member, first);
        let member = self.member.clone();
        let rest = futures::stream::unfold(chunks, move |mut chunks| {
            let next = chunks.next_chunk().map(|chunk| {
                let msg = chunk.map(|c| stream_message(&member, c));
                (msg.map_err(Status::from), chunks)
            });
            std::future::ready(next)
        });
        let stream = futures::stream::once(std::future::ready(Ok(first))).chain(rest);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        self.member.check_quota(r.cost())?;
        check_put(&r)?;
        Ok(Response::new(self.member.put(who.as_ref(), r).await?))
    }

    async fn delete_range(
        &self,
        req: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let resp = delete_range(&self.member, who.as_ref(), req.into_inner()).await?;
        Ok(Response::new(resp))
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let resp = txn(&self.member, who.as_ref(), req.into_inner()).await?;
        Ok(Response::new(resp))
    }

    async fn compact(
        &self,
        req: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let resp = self.member.compact(who.as_ref(), req.into_inner()).await?;
        Ok(Response::new(resp))
    }
}

#[cfg(test)]
mod tests {
    use chorus_api::etcdserverpb::{PutRequest, TxnRequest};

    use super::*;

    fn put(k: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: k.into(),
                ..Default::default()
            })),
        }
    }

    fn del(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key: k.into(),
                    range_end: end.into(),
                    ..Default::default()
                },
            )),
        }
    }

    fn nested(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestTxn(TxnRequest {
                success,
                failure,
                ..Default::default()
            })),
        }
    }

    #[test]
    fn duplicate_keys_are_refused_like_etcd() {
        assert!(check_intervals(&[put("a"), put("b")]).is_ok());
        assert_eq!(
            check_intervals(&[put("a"), put("a")]).unwrap_err(),
            EtcdError::DuplicateKey
        );
        assert_eq!(
            check_intervals(&[put("b"), del("a", "c")]).unwrap_err(),
            EtcdError::DuplicateKey
        );
        assert!(check_intervals(&[put("c"), del("a", "c")]).is_ok());
        // then and else of a nested txn may both put the same key...
        assert!(check_intervals(&[nested(vec![put("a")], vec![put("a")])]).is_ok());
        // ...but not a key the outer level puts too.
        assert_eq!(
            check_intervals(&[put("a"), nested(vec![put("a")], vec![])]).unwrap_err(),
            EtcdError::DuplicateKey
        );
        assert_eq!(
            check_intervals(&[del("a", "\0"), nested(vec![], vec![put("z")])]).unwrap_err(),
            EtcdError::DuplicateKey
        );
    }

    #[test]
    fn txn_op_limits_and_empty_ops() {
        let r = TxnRequest {
            success: vec![put("a"), put("b"), put("c")],
            ..Default::default()
        };
        assert_eq!(check_txn(&r, 2).unwrap_err(), EtcdError::TooManyOps);
        assert!(check_txn(&r, 3).is_ok());
        let r = TxnRequest {
            success: vec![RequestOp { request: None }],
            ..Default::default()
        };
        assert_eq!(check_txn(&r, 128).unwrap_err(), EtcdError::KeyNotFound);
    }
}
