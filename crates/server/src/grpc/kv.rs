//! `etcdserverpb.KV`: Range, Put, DeleteRange, Txn, Compact.

use std::sync::Arc;

use chorus_api::etcdserverpb::kv_server::{Kv, KvServer};
use chorus_api::etcdserverpb::{
    request_op, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
    PutRequest, PutResponse, RangeRequest, RangeResponse, RangeStreamResponse, RequestOp,
    TxnRequest, TxnResponse,
};
use chorus_api::internalpb::internal_request::Request as Internal;
use tonic::{Request, Response, Status};

use crate::alarm::QuotaCost;
use crate::apply::{kv as ops, Applied};
use crate::error::EtcdError;
use crate::server::Server;

pub fn service(server: Arc<Server>) -> KvServer<KvService> {
    KvServer::new(KvService { server })
}

pub struct KvService {
    server: Arc<Server>,
}

impl KvService {
    pub fn new(server: Arc<Server>) -> Self {
        KvService { server }
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
pub(crate) async fn range(server: &Server, r: RangeRequest) -> Result<RangeResponse, EtcdError> {
    check_range(&r)?;
    if !r.serializable {
        if server.is_learner() {
            return Err(EtcdError::NotSupportedForLearner);
        }
        server.linearizable_read().await?;
    }
    let kv = server.kv();
    let mut resp = ops::range(&ops::PinnedRead::new(&kv), &r)?;
    server.fill_header(&mut resp.header);
    Ok(resp)
}

/// A Txn as the KV service serves it: read-only ones locally, the others through raft.
pub(crate) async fn txn(server: &Arc<Server>, r: TxnRequest) -> Result<TxnResponse, EtcdError> {
    server.check_quota(r.cost())?;
    check_txn(&r, server.limits.max_txn_ops)?;
    check_intervals(&r.success)?;
    check_intervals(&r.failure)?;
    if ops::is_txn_read_only(&r) {
        if !ops::is_txn_serializable(&r) {
            server.linearizable_read().await?;
        }
        let kv = server.kv();
        let mut resp = ops::read_only_txn(&ops::PinnedRead::new(&kv), &r)?;
        server.fill_header(&mut resp.header);
        return Ok(resp);
    }
    match server.propose(Internal::Txn(r)).await? {
        Applied::Txn(mut resp) => {
            server.fill_header(&mut resp.header);
            Ok(resp)
        }
        other => Err(unexpected(other)),
    }
}

/// A DeleteRange through raft.
pub(crate) async fn delete_range(
    server: &Server,
    r: DeleteRangeRequest,
) -> Result<DeleteRangeResponse, EtcdError> {
    check_delete(&r)?;
    match server.propose(Internal::DeleteRange(r)).await? {
        Applied::DeleteRange(mut resp) => {
            server.fill_header(&mut resp.header);
            Ok(resp)
        }
        other => Err(unexpected(other)),
    }
}

fn unexpected(a: Applied) -> EtcdError {
    EtcdError::Internal(format!("unexpected apply result {a:?}"))
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        Ok(Response::new(range(&self.server, req.into_inner()).await?))
    }

    type RangeStreamStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<RangeStreamResponse, Status>> + Send>>;

    async fn range_stream(
        &self,
        _req: Request<RangeRequest>,
    ) -> Result<Response<Self::RangeStreamStream>, Status> {
        Err(Status::unimplemented(
            "RangeStream (etcd 3.7) is not implemented by chorus",
        ))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let r = req.into_inner();
        self.server.check_quota(r.cost())?;
        check_put(&r)?;
        match self.server.propose(Internal::Put(r)).await? {
            Applied::Put(mut resp) => {
                self.server.fill_header(&mut resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(other).into()),
        }
    }

    async fn delete_range(
        &self,
        req: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        Ok(Response::new(
            delete_range(&self.server, req.into_inner()).await?,
        ))
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        Ok(Response::new(txn(&self.server, req.into_inner()).await?))
    }

    async fn compact(
        &self,
        req: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let r = req.into_inner();
        let (rev, physical) = (r.revision, r.physical);
        match self.server.propose(Internal::Compaction(r)).await? {
            Applied::Compaction(mut resp) => {
                if physical {
                    let mut done = self.server.compacted.subscribe();
                    let wait = async move { done.wait_for(|c| *c >= rev).await.map(|_| ()) };
                    if tokio::time::timeout(self.server.limits.request_timeout, wait)
                        .await
                        .is_err()
                    {
                        return Err(EtcdError::Timeout.into());
                    }
                }
                self.server.fill_header(&mut resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(other).into()),
        }
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
