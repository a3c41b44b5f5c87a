//! `etcdserverpb.Cluster`: MemberList; membership changes answer `Unimplemented` until
//! runtime reconfiguration is built.

use std::sync::Arc;

use chorus_api::etcdserverpb::cluster_server::{Cluster, ClusterServer};
use chorus_api::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use crate::server::Server;

pub fn service(server: Arc<Server>) -> ClusterServer<ClusterService> {
    ClusterServer::new(ClusterService { server })
}

pub struct ClusterService {
    server: Arc<Server>,
}

impl ClusterService {
    pub fn new(server: Arc<Server>) -> Self {
        ClusterService { server }
    }
}

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!("chorus: {what} is not implemented yet"))
}

/// A member in etcd's wire form.
pub fn to_pb(m: &chorus_api::internalpb::Member) -> Member {
    Member {
        id: m.id,
        name: m.name.clone(),
        peer_ur_ls: m.peer_urls.clone(),
        client_ur_ls: m.client_urls.clone(),
        is_learner: m.is_learner,
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _r: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(unimplemented("member add"))
    }

    async fn member_remove(
        &self,
        _r: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(unimplemented("member remove"))
    }

    async fn member_update(
        &self,
        _r: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(unimplemented("member update"))
    }

    async fn member_list(
        &self,
        req: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        if req.into_inner().linearizable {
            self.server.linearizable_read().await?;
        }
        let members = self.server.cluster().members.values().map(to_pb).collect();
        // etcd 3.4's MemberList header carries no revision.
        Ok(Response::new(MemberListResponse {
            header: Some(self.server.header(0)),
            members,
        }))
    }

    async fn member_promote(
        &self,
        _r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(unimplemented("member promote"))
    }
}
