//! Lock and Election through the proxy: forwarded, with lock names, election names and
//! leader keys moved into the namespace and back. (etcd's grpc-proxy forwards these two
//! without its namespace, so a namespaced etcd proxy locks outside its namespace; chorus
//! keeps them inside.)

use std::pin::Pin;

use chorus_api::v3electionpb::{
    election_client::ElectionClient, election_server::Election, CampaignRequest, CampaignResponse,
    LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse, ResignRequest,
    ResignResponse,
};
use chorus_api::v3lockpb::{
    lock_client::LockClient, lock_server::Lock, LockRequest, LockResponse, UnlockRequest,
    UnlockResponse,
};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::namespace::Namespace;
use crate::upstream::{forward, Retry, Upstream};

/// The Lock service of the proxy.
pub struct LockProxy {
    pub up: Upstream,
    pub ns: Namespace,
}

#[tonic::async_trait]
impl Lock for LockProxy {
    async fn lock(&self, request: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        req.name = self.ns.key(&req.name);
        let mut resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    LockClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .lock(r)
                        .await
                }
            })
            .await?;
        self.ns.strip(&mut resp.key);
        Ok(Response::new(resp))
    }

    async fn unlock(
        &self,
        request: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        req.key = self.ns.key(&req.key);
        let resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    LockClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .unlock(r)
                        .await
                }
            })
            .await?;
        Ok(Response::new(resp))
    }
}

/// The Election service of the proxy.
pub struct ElectionProxy {
    pub up: Upstream,
    pub ns: Namespace,
}

impl ElectionProxy {
    fn leader_into_ns(&self, leader: &mut Option<LeaderKey>) {
        if let Some(l) = leader.as_mut() {
            l.name = self.ns.key(&l.name);
            l.key = self.ns.key(&l.key);
        }
    }

    fn leader_out_of_ns(&self, leader: &mut Option<LeaderKey>) {
        if let Some(l) = leader.as_mut() {
            self.ns.strip(&mut l.name);
            self.ns.strip(&mut l.key);
        }
    }
}

type ObserveStream = Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Election for ElectionProxy {
    async fn campaign(
        &self,
        request: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        req.name = self.ns.key(&req.name);
        let mut resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    ElectionClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .campaign(r)
                        .await
                }
            })
            .await?;
        self.leader_out_of_ns(&mut resp.leader);
        Ok(Response::new(resp))
    }

    async fn proclaim(
        &self,
        request: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        self.leader_into_ns(&mut req.leader);
        let resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    ElectionClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .proclaim(r)
                        .await
                }
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn leader(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        req.name = self.ns.key(&req.name);
        let mut resp = self
            .up
            .call(Retry::Read, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    ElectionClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .leader(r)
                        .await
                }
            })
            .await?;
        if let Some(kv) = resp.kv.as_mut() {
            self.ns.strip_kv(kv);
        }
        Ok(Response::new(resp))
    }

    type ObserveStream = ObserveStream;

    async fn observe(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let (md, _, mut req) = request.into_parts();
        req.name = self.ns.key(&req.name);
        let stream = self
            .up
            .call(Retry::Read, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    ElectionClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .observe(r)
                        .await
                }
            })
            .await?;
        let ns = self.ns.clone();
        let stripped = stream.map(move |item| {
            item.map(|mut resp| {
                if let Some(kv) = resp.kv.as_mut() {
                    ns.strip_kv(kv);
                }
                resp
            })
        });
        Ok(Response::new(Box::pin(stripped)))
    }

    async fn resign(
        &self,
        request: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        let (md, _, mut req) = request.into_parts();
        self.leader_into_ns(&mut req.leader);
        let resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req.clone());
                async move {
                    ElectionClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .resign(r)
                        .await
                }
            })
            .await?;
        Ok(Response::new(resp))
    }
}
