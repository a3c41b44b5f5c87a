//! `v3lockpb.Lock`: a distributed mutex on a key prefix (etcd's v3lock, built like
//! clientv3's concurrency.Mutex). The ownership key `name/<lease hex>` carries the caller's
//! lease; its revision is a fencing token.

use std::sync::Arc;

use chorus_api::etcdserverpb::{
    request_op, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use chorus_api::v3lockpb::lock_server::{Lock, LockServer};
use chorus_api::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use tonic::{Request, Response, Status};

use super::caller::who;
use crate::api::grpc::concurrency::{by_create, create_revision_is, op_range, wait_deletes};
use crate::api::grpc::kv;
use crate::error::EtcdError;
use crate::member::{Member, Who};

pub fn service(member: Arc<Member>) -> LockServer<LockService> {
    LockServer::new(LockService { member })
}

pub struct LockService {
    member: Arc<Member>,
}

impl LockService {
    pub fn new(member: Arc<Member>) -> Self {
        LockService { member }
    }
}

/// `prefix/<lease hex>`, as clientv3's concurrency package names keys.
pub fn owner_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(format!("{lease:x}").as_bytes());
    k
}

impl LockService {
    async fn lock(&self, who: Who<'_>, r: LockRequest) -> Result<LockResponse, EtcdError> {
        let s = &self.member;
        let mut prefix = r.name.clone();
        prefix.push(b'/');
        let key = owner_key(&prefix, r.lease);
        let put = RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: key.clone(),
                lease: r.lease,
                ..Default::default()
            })),
        };
        let get = op_range(RangeRequest {
            key: key.clone(),
            ..Default::default()
        });
        let owner = op_range(by_create(&prefix, false, 0));
        let resp = kv::txn(
            s,
            who,
            TxnRequest {
                compare: vec![create_revision_is(&key, 0)],
                success: vec![put, owner.clone()],
                failure: vec![get, owner],
            },
        )
        .await?;
        let header = resp.header.unwrap_or_default();
        let range_of = |i: usize| match resp.responses.get(i).and_then(|r| r.response.as_ref()) {
            Some(chorus_api::etcdserverpb::response_op::Response::ResponseRange(rr)) => {
                rr.kvs.clone()
            }
            _ => Vec::new(),
        };
        let my_rev = if resp.succeeded {
            header.revision
        } else {
            range_of(0)
                .first()
                .map_or(header.revision, |kv| kv.create_revision)
        };
        let owner = range_of(1);
        if owner.first().is_none_or(|kv| kv.create_revision == my_rev) {
            return Ok(LockResponse {
                header: Some(header),
                key,
            });
        }
        // If the wait fails or the caller goes away, do not leave the waiter's key behind.
        let mut guard = WaiterKey {
            member: s.clone(),
            who: who.cloned(),
            key: Some(key.clone()),
        };
        let header = wait_deletes(s, who, &prefix, my_rev - 1).await?;
        guard.key = None;
        Ok(LockResponse {
            header: Some(header),
            key,
        })
    }
}

/// Deletes a waiter's key when dropped while still armed.
pub struct WaiterKey {
    pub member: Arc<Member>,
    /// Whose key it is (the delete is made as that caller).
    pub who: Option<chorus_auth::AuthInfo>,
    pub key: Option<Vec<u8>>,
}

impl Drop for WaiterKey {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let (member, who) = (self.member.clone(), self.who.take());
            tokio::spawn(async move {
                let req = DeleteRangeRequest {
                    key,
                    ..Default::default()
                };
                if let Err(e) = kv::delete_range(&member, who.as_ref(), req).await {
                    tracing::warn!("could not delete an abandoned lock waiter key: {e}");
                }
            });
        }
    }
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, req: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let resp = LockService::lock(self, who.as_ref(), req.into_inner()).await?;
        Ok(Response::new(resp))
    }

    async fn unlock(
        &self,
        req: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        let resp = kv::delete_range(
            &self.member,
            who.as_ref(),
            DeleteRangeRequest {
                key: r.key,
                ..Default::default()
            },
        )
        .await?;
        Ok(Response::new(UnlockResponse {
            header: resp.header,
        }))
    }
}
