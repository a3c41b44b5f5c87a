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
use chorus_api::internalpb::internal_request::Request as Internal;
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::alarm::QuotaCost;
use crate::apply::Applied;
use crate::error::EtcdError;
use crate::server::Server;

pub fn service(server: Arc<Server>) -> LeaseServer<LeaseService> {
    LeaseServer::new(LeaseService { server })
}

pub struct LeaseService {
    server: Arc<Server>,
}

impl LeaseService {
    pub fn new(server: Arc<Server>) -> Self {
        LeaseService { server }
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let mut r = req.into_inner();
        self.server.check_quota(r.cost())?;
        if r.id == 0 {
            // A cluster-unique, positive ID, as etcd picks one.
            r.id = (self.server.next_id() & (i64::MAX as u64)) as i64;
        }
        match self.server.propose(Internal::LeaseGrant(r)).await? {
            Applied::LeaseGrant(mut resp) => {
                self.server.fill_header(&mut resp.header);
                Ok(Response::new(resp))
            }
            other => Err(Status::internal(format!(
                "unexpected apply result {other:?}"
            ))),
        }
    }

    async fn lease_revoke(
        &self,
        req: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        match self
            .server
            .propose(Internal::LeaseRevoke(req.into_inner()))
            .await?
        {
            Applied::LeaseRevoke(mut resp) => {
                self.server.fill_header(&mut resp.header);
                Ok(Response::new(resp))
            }
            other => Err(Status::internal(format!(
                "unexpected apply result {other:?}"
            ))),
        }
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        crate::grpc::require_leader(&self.server, req.metadata())?;
        let inbound = req.into_inner();
        let server = self.server.clone();
        let stream =
            futures::stream::unfold((inbound, server), |(mut inbound, server)| async move {
                let req = match inbound.message().await {
                    Ok(Some(r)) => r,
                    Ok(None) => return None,
                    Err(s) => return Some((Err(s), (inbound, server))),
                };
                // An unknown (or expired) lease answers TTL 0 and the stream stays open.
                let ttl = match server.lease_renew(req.id).await {
                    Ok(ttl) => ttl,
                    Err(EtcdError::LeaseNotFound) => 0,
                    Err(e) => return Some((Err(e.into()), (inbound, server))),
                };
                let resp = LeaseKeepAliveResponse {
                    header: Some(server.header(server.kv().current_rev())),
                    id: req.id,
                    ttl,
                };
                Some((Ok(resp), (inbound, server)))
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let r = req.into_inner();
        let id = r.id;
        let mut resp = match self.server.lease_time_to_live(r).await {
            Ok(resp) => resp,
            // etcd answers an unknown lease with TTL -1, not an error.
            Err(EtcdError::LeaseNotFound) => LeaseTimeToLiveResponse {
                id,
                ttl: -1,
                ..Default::default()
            },
            Err(e) => return Err(e.into()),
        };
        resp.header = Some(self.server.header(self.server.kv().current_rev()));
        Ok(Response::new(resp))
    }

    async fn lease_leases(
        &self,
        _req: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let leases = self
            .server
            .lessor
            .lock()
            .leases()
            .into_iter()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(self.server.header(self.server.kv().current_rev())),
            leases,
        }))
    }
}
