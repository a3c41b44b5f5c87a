//! `etcdserverpb.Lease`: grant and revoke go through raft; keep-alives and time-to-live
//! are answered by the leader (a follower forwards them); the list is local.

use std::pin::Pin;
use std::sync::Arc;

use chorus_api::etcdserverpb::lease_server::{Lease, LeaseServer};
use chorus_api::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::caller::who;
use super::stream_failures::{self, Api};
use crate::alarm::QuotaCost;
use crate::error::EtcdError;
use crate::member::Member;

pub fn service(member: Arc<Member>) -> LeaseServer<LeaseService> {
    LeaseServer::new(LeaseService { member })
}

pub struct LeaseService {
    member: Arc<Member>,
}

impl LeaseService {
    pub fn new(member: Arc<Member>) -> Self {
        LeaseService { member }
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        self.member.check_quota(r.cost())?;
        Ok(Response::new(
            self.member.lease_grant(who.as_ref(), r).await?,
        ))
    }

    async fn lease_revoke(
        &self,
        req: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let resp = self
            .member
            .lease_revoke(who.as_ref(), req.into_inner())
            .await?;
        Ok(Response::new(resp))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        crate::api::grpc::leader::require_leader(&self.member, req.metadata())?;
        let who = who(&self.member, &req).await?;
        let state = (req.into_inner(), self.member.clone(), who);
        let stream = futures::stream::unfold(state, |(mut inbound, member, who)| async move {
            let req = match inbound.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(s) => {
                    stream_failures::receive_failed(Api::LeaseKeepAlive, &s);
                    // tonic ends the response stream with this error, as etcd does.
                    return Some((Err(s), (inbound, member, who)));
                }
            };
            // An unknown (or expired) lease answers TTL 0 and the stream stays open.
            let ttl = match member.lease_renew(who.as_ref(), req.id).await {
                Ok(ttl) => ttl,
                Err(EtcdError::LeaseNotFound) => 0,
                Err(e) => return Some((Err(e.into()), (inbound, member, who))),
            };
            let resp = LeaseKeepAliveResponse {
                header: Some(member.current_header()),
                id: req.id,
                ttl,
            };
            Some((Ok(resp), (inbound, member, who)))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        let id = r.id;
        let mut resp = match self.member.lease_time_to_live(who.as_ref(), r).await {
            Ok(resp) => resp,
            // etcd answers an unknown lease with TTL -1, not an error.
            Err(EtcdError::LeaseNotFound) => LeaseTimeToLiveResponse {
                id,
                ttl: -1,
                ..Default::default()
            },
            Err(e) => return Err(e.into()),
        };
        resp.header = Some(self.member.current_header());
        Ok(Response::new(resp))
    }

    async fn lease_leases(
        &self,
        req: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let leases = self
            .member
            .lease_ids(who.as_ref())?
            .into_iter()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(self.member.current_header()),
            leases,
        }))
    }
}
