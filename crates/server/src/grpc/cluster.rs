//! `etcdserverpb.Cluster`: MemberList and the runtime membership changes (see
//! `crate::reconfig`).

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
        r: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let r = r.into_inner();
        let (member, members) = self.server.member_add(&r.peer_ur_ls, r.is_learner).await?;
        Ok(Response::new(MemberAddResponse {
            header: Some(self.server.header(0)),
            member: Some(to_pb(&member)),
            members: members.iter().map(to_pb).collect(),
        }))
    }

    async fn member_remove(
        &self,
        r: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let members = self.server.member_remove(r.into_inner().id).await?;
        Ok(Response::new(MemberRemoveResponse {
            header: Some(self.server.header(0)),
            members: members.iter().map(to_pb).collect(),
        }))
    }

    async fn member_update(
        &self,
        r: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let r = r.into_inner();
        let members = self.server.member_update(r.id, &r.peer_ur_ls).await?;
        Ok(Response::new(MemberUpdateResponse {
            header: Some(self.server.header(0)),
            members: members.iter().map(to_pb).collect(),
        }))
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
        r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let members = self.server.member_promote(r.into_inner().id).await?;
        Ok(Response::new(MemberPromoteResponse {
            header: Some(self.server.header(0)),
            members: members.iter().map(to_pb).collect(),
        }))
    }
}
