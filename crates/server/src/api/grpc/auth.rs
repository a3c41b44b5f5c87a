//! `etcdserverpb.Auth`: every call is proposed through raft with the caller in its header
//! and answered by the auth applier (which refuses non-root callers where etcd does);
//! Authenticate checks the password on this member first.

use std::sync::Arc;

use chorus_api::etcdserverpb::auth_server::{Auth, AuthServer};
use chorus_api::etcdserverpb::*;
use chorus_api::internalpb::internal_request::Request as Internal;
use tonic::{Request, Response, Status};

use super::caller::who;
use crate::member::Member;

pub fn service(member: Arc<Member>) -> AuthServer<AuthService> {
    AuthServer::new(AuthService { member })
}

pub struct AuthService {
    member: Arc<Member>,
}

impl AuthService {
    pub fn new(member: Arc<Member>) -> Self {
        AuthService { member }
    }
}

impl AuthService {
    /// One Auth call proposed as it is: `wrap` makes it the replicated command; the
    /// reply is the call's response type.
    async fn proposed<Req, Resp>(
        &self,
        req: Request<Req>,
        wrap: fn(Req) -> Internal,
    ) -> Result<Response<Resp>, Status>
    where
        Resp: crate::apply::Reply + crate::member::HasHeader,
    {
        let who = who(&self.member, &req).await?;
        let call = wrap(req.into_inner());
        Ok(Response::new(
            self.member.auth_call(who.as_ref(), call).await?,
        ))
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        req: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        self.proposed(req, Internal::AuthEnable).await
    }
    async fn auth_disable(
        &self,
        req: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        self.proposed(req, Internal::AuthDisable).await
    }
    async fn auth_status(
        &self,
        req: Request<AuthStatusRequest>,
    ) -> Result<Response<AuthStatusResponse>, Status> {
        self.proposed(req, Internal::AuthStatus).await
    }
    async fn user_get(
        &self,
        req: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        self.proposed(req, Internal::AuthUserGet).await
    }
    async fn user_list(
        &self,
        req: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        self.proposed(req, Internal::AuthUserList).await
    }
    async fn user_delete(
        &self,
        req: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        self.proposed(req, Internal::AuthUserDelete).await
    }
    async fn user_grant_role(
        &self,
        req: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        self.proposed(req, Internal::AuthUserGrantRole).await
    }
    async fn user_revoke_role(
        &self,
        req: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        self.proposed(req, Internal::AuthUserRevokeRole).await
    }
    async fn role_add(
        &self,
        req: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        self.proposed(req, Internal::AuthRoleAdd).await
    }
    async fn role_get(
        &self,
        req: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        self.proposed(req, Internal::AuthRoleGet).await
    }
    async fn role_list(
        &self,
        req: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        self.proposed(req, Internal::AuthRoleList).await
    }
    async fn role_delete(
        &self,
        req: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        self.proposed(req, Internal::AuthRoleDelete).await
    }
    async fn role_grant_permission(
        &self,
        req: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        self.proposed(req, Internal::AuthRoleGrantPermission).await
    }
    async fn role_revoke_permission(
        &self,
        req: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        self.proposed(req, Internal::AuthRoleRevokePermission).await
    }

    async fn authenticate(
        &self,
        req: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        Ok(Response::new(
            self.member.authenticate(req.into_inner()).await?,
        ))
    }

    async fn user_add(
        &self,
        req: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let resp = self.member.user_add(who.as_ref(), req.into_inner()).await?;
        Ok(Response::new(resp))
    }

    async fn user_change_password(
        &self,
        req: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let r = req.into_inner();
        let resp = self.member.user_change_password(who.as_ref(), r).await?;
        Ok(Response::new(resp))
    }
}
