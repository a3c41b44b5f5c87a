//! `etcdserverpb.Cluster`: MemberList and the runtime membership changes (see
//! `crate::member::Member`).

use std::sync::Arc;

use chorus_api::etcdserverpb::cluster_server::{Cluster, ClusterServer};
use chorus_api::etcdserverpb::{
    Member as MemberPb, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use super::caller::who;
use crate::member::Member;

pub fn service(member: Arc<Member>) -> ClusterServer<ClusterService> {
    ClusterServer::new(ClusterService { member })
}

pub struct ClusterService {
    member: Arc<Member>,
}

impl ClusterService {
    pub fn new(member: Arc<Member>) -> Self {
        ClusterService { member }
    }
}

/// A member in etcd's wire form.
pub fn to_pb(m: &chorus_api::internalpb::Member) -> MemberPb {
    MemberPb {
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
        let who = who(&self.member, &r).await?;
        let r = r.into_inner();
        let (member, members) = self
            .member
            .member_add(who.as_ref(), &r.peer_ur_ls, r.is_learner)
            .await?;
        Ok(Response::new(MemberAddResponse {
            header: Some(self.member.header(0)),
            member: Some(to_pb(&member)),
            members: members.iter().map(to_pb).collect(),
        }))
    }

    async fn member_remove(
        &self,
        r: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let who = who(&self.member, &r).await?;
        let members = self
            .member
            .member_remove(who.as_ref(), r.into_inner().id)
            .await?;
        Ok(Response::new(MemberRemoveResponse {
            header: Some(self.member.header(0)),
            members: members.iter().map(to_pb).collect(),
        }))
    }

    async fn member_update(
        &self,
        r: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let who = who(&self.member, &r).await?;
        let r = r.into_inner();
        let members = self
            .member
            .member_update(who.as_ref(), r.id, &r.peer_ur_ls)
            .await?;
        Ok(Response::new(MemberUpdateResponse {
            header: Some(self.member.header(0)),
            members: members.iter().map(to_pb).collect(),
        }))
    }

    async fn member_list(
        &self,
        req: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let who = who(&self.member, &req).await?;
        if req.into_inner().linearizable {
            self.member.linearizable_read().await?;
        }
        // Only authenticated users learn the topology (GHSA-q8m4-xhhv-38mg).
        self.member.require_auth(who.as_ref())?;
        let members = self.member.cluster().members.values().map(to_pb).collect();
        // etcd 3.4's MemberList header carries no revision.
        Ok(Response::new(MemberListResponse {
            header: Some(self.member.header(0)),
            members,
        }))
    }

    async fn member_promote(
        &self,
        r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let who = who(&self.member, &r).await?;
        let members = self
            .member
            .member_promote(who.as_ref(), r.into_inner().id)
            .await?;
        Ok(Response::new(MemberPromoteResponse {
            header: Some(self.member.header(0)),
            members: members.iter().map(to_pb).collect(),
        }))
    }
}
