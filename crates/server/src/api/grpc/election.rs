//! `v3electionpb.Election`: leader election on a key prefix (etcd's v3election, built like
//! clientv3's concurrency.Election). Candidates hold `name/<lease hex>`; the one with the
//! lowest create revision leads.

use std::pin::Pin;
use std::sync::Arc;

use chorus_api::etcdserverpb::{
    request_op, response_op, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    ResponseHeader, TxnRequest,
};
use chorus_api::mvccpb::{event::EventType, KeyValue};
use chorus_api::v3electionpb::election_server::{Election, ElectionServer};
use chorus_api::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use futures::Stream;
use tonic::{Code, Request, Response, Status};

use super::caller::who;
use crate::api::grpc::concurrency::{
    create_revision_is, first_created, op_range, prefix_end, wait_deletes, LocalWatch,
};
use crate::api::grpc::kv;
use crate::api::grpc::lock::{owner_key, WaiterKey};
use crate::error::EtcdError;
use crate::member::{Member, Who};

pub fn service(member: Arc<Member>) -> ElectionServer<ElectionService> {
    ElectionServer::new(ElectionService { member })
}

pub struct ElectionService {
    member: Arc<Member>,
}

impl ElectionService {
    pub fn new(member: Arc<Member>) -> Self {
        ElectionService { member }
    }
}

fn not_leader() -> Status {
    Status::new(Code::Unknown, "election: not leader")
}

fn no_leader() -> Status {
    Status::new(Code::Unknown, "election: no leader")
}

fn missing_leader() -> Status {
    Status::new(Code::Unknown, r#""leader" field must be provided"#)
}

fn prefix_of(name: &[u8]) -> Vec<u8> {
    let mut p = name.to_vec();
    p.push(b'/');
    p
}

fn put_op(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            ..Default::default()
        })),
    }
}

impl ElectionService {
    /// Overwrites the leader's value if it still holds the leadership it was given.
    async fn proclaim_as(
        &self,
        who: Who<'_>,
        leader: &LeaderKey,
        value: &[u8],
    ) -> Result<ResponseHeader, Status> {
        let resp = kv::txn(
            &self.member,
            who,
            TxnRequest {
                compare: vec![create_revision_is(&leader.key, leader.rev)],
                success: vec![put_op(&leader.key, value, leader.lease)],
                failure: vec![],
            },
        )
        .await?;
        if !resp.succeeded {
            return Err(not_leader());
        }
        Ok(resp.header.unwrap_or_default())
    }
}

type ObserveStream = Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let who = who.as_ref();
        let r = req.into_inner();
        let s = &self.member;
        let prefix = prefix_of(&r.name);
        let key = owner_key(&prefix, r.lease);
        let resp = kv::txn(
            s,
            who,
            TxnRequest {
                compare: vec![create_revision_is(&key, 0)],
                success: vec![put_op(&key, &r.value, r.lease)],
                failure: vec![op_range(RangeRequest {
                    key: key.clone(),
                    ..Default::default()
                })],
            },
        )
        .await?;
        let header = resp.header.unwrap_or_default();
        let mut leader = LeaderKey {
            name: r.name.clone(),
            key: key.clone(),
            rev: header.revision,
            lease: r.lease,
        };
        let mut guard = WaiterKey {
            member: s.clone(),
            who: who.cloned(),
            key: Some(key.clone()),
        };
        if !resp.succeeded {
            let existing = match resp.responses.first().and_then(|x| x.response.as_ref()) {
                Some(response_op::Response::ResponseRange(rr)) => rr.kvs.first().cloned(),
                _ => None,
            };
            if let Some(kv) = existing {
                leader.rev = kv.create_revision;
                if kv.value != r.value {
                    self.proclaim_as(who, &leader, &r.value).await?;
                }
            }
        }
        wait_deletes(s, who, &prefix, leader.rev - 1).await?;
        guard.key = None;
        Ok(Response::new(CampaignResponse {
            header: Some(header),
            leader: Some(leader),
        }))
    }

    async fn proclaim(
        &self,
        req: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        let leader = r.leader.ok_or_else(missing_leader)?;
        let header = self.proclaim_as(who.as_ref(), &leader, &r.value).await?;
        Ok(Response::new(ProclaimResponse {
            header: Some(header),
        }))
    }

    async fn leader(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        let prefix = prefix_of(&r.name);
        let (header, kv) = first_created(&self.member, who.as_ref(), &prefix).await?;
        let kv = kv.ok_or_else(no_leader)?;
        Ok(Response::new(LeaderResponse {
            header: Some(header),
            kv: Some(kv),
        }))
    }

    type ObserveStream = ObserveStream;

    async fn observe(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let who = who(&self.member, &req).await?;
        let prefix = prefix_of(&req.into_inner().name);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let member = self.member.clone();
        tokio::spawn(async move {
            if let Err(e) = observe(member, who.as_ref(), prefix, &tx).await {
                let _ = tx.send(Err(e.into())).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn resign(
        &self,
        req: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        let leader = r.leader.ok_or_else(missing_leader)?;
        let resp = kv::txn(
            &self.member,
            who.as_ref(),
            TxnRequest {
                compare: vec![create_revision_is(&leader.key, leader.rev)],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestDeleteRange(
                        DeleteRangeRequest {
                            key: leader.key.clone(),
                            ..Default::default()
                        },
                    )),
                }],
                failure: vec![],
            },
        )
        .await?;
        Ok(Response::new(ResignResponse {
            header: resp.header,
        }))
    }
}

/// Streams the leader and every change of it: value updates, and the next leader once the
/// current one's key is deleted (clientv3's Election.Observe).
async fn observe(
    member: Arc<Member>,
    who: Who<'_>,
    prefix: Vec<u8>,
    tx: &tokio::sync::mpsc::Sender<Result<LeaderResponse, Status>>,
) -> Result<(), EtcdError> {
    loop {
        let (header, first) = first_created(&member, who, &prefix).await?;
        let (mut header, kv): (ResponseHeader, KeyValue) = match first {
            Some(kv) => (header, kv),
            None => {
                // Wait for the first candidate.
                let end = prefix_end(&prefix);
                let mut w = LocalWatch::new(&member, who, &prefix, end, header.revision)?;
                loop {
                    let (_, events) = w.next().await?;
                    if let Some(e) = events
                        .into_iter()
                        .find(|e| e.r#type == EventType::Put as i32)
                    {
                        let kv = e.kv.unwrap_or_default();
                        break (member.header(kv.mod_revision), kv);
                    }
                }
            }
        };
        let key = kv.key.clone();
        if tx
            .send(Ok(LeaderResponse {
                header: Some(header),
                kv: Some(kv),
            }))
            .await
            .is_err()
        {
            return Ok(());
        }
        let mut w = LocalWatch::new(&member, who, &key, Vec::new(), header.revision + 1)?;
        'leader: loop {
            let (rev, events) = w.next().await?;
            for e in events {
                if e.r#type == EventType::Delete as i32 {
                    break 'leader;
                }
                header = member.header(rev);
                let resp = LeaderResponse {
                    header: Some(header),
                    kv: e.kv,
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}
