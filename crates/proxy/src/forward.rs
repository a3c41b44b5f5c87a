//! Services the proxy forwards as they are: Maintenance and Auth (etcd's
//! `grpcproxy/maintenance.go` and `auth.go`). Each call goes to the member with the
//! caller's metadata; reads fail over like reads, changes like writes.

use std::pin::Pin;

use chorus_api::etcdserverpb::{
    auth_client::AuthClient, auth_server::Auth, maintenance_client::MaintenanceClient,
    maintenance_server::Maintenance, *,
};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::upstream::{forward, Retry, Upstream};

/// An impl of a service trait: `extra` items as written, plus one forwarding method per
/// `name(Request) -> Response, retry;` (the caller's metadata goes along; reads fail over
/// like reads, changes like writes). The whole impl is generated so that
/// `#[tonic::async_trait]` sees the methods.
macro_rules! forwarding {
    (impl $trait:ident for $ty:ty; $client:ident; { $($extra:tt)* }
     $( $method:ident($req:ty) -> $resp:ty, $retry:expr; )*) => {
        #[tonic::async_trait]
        impl $trait for $ty {
            $($extra)*
            $(
                async fn $method(&self, request: Request<$req>) -> Result<Response<$resp>, Status> {
                    let (md, _, req) = request.into_parts();
                    let resp = self
                        .up
                        .call($retry, |ch| {
                            let r = forward(&md, req.clone());
                            async move {
                                $client::new(ch)
                                    .max_decoding_message_size(usize::MAX)
                                    .$method(r)
                                    .await
                            }
                        })
                        .await?;
                    Ok(Response::new(resp))
                }
            )*
        }
    };
}
pub(crate) use forwarding;

/// The Maintenance service of the proxy.
pub struct MaintenanceProxy {
    pub up: Upstream,
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

forwarding! { impl Maintenance for MaintenanceProxy; MaintenanceClient; {
        type SnapshotStream = SnapshotStream;

        async fn snapshot(
            &self,
            request: Request<SnapshotRequest>,
        ) -> Result<Response<Self::SnapshotStream>, Status> {
            let (md, _, req) = request.into_parts();
            let stream = self
                .up
                .call(Retry::Read, |ch| {
                    let r = forward(&md, req);
                    async move {
                        MaintenanceClient::new(ch)
                            .max_decoding_message_size(usize::MAX)
                            .snapshot(r)
                            .await
                    }
                })
                .await?;
            Ok(Response::new(Box::pin(stream)))
        }
    }
    alarm(AlarmRequest) -> AlarmResponse, Retry::Write;
    status(StatusRequest) -> StatusResponse, Retry::Read;
    defragment(DefragmentRequest) -> DefragmentResponse, Retry::Write;
    hash(HashRequest) -> HashResponse, Retry::Read;
    hash_kv(HashKvRequest) -> HashKvResponse, Retry::Read;
    move_leader(MoveLeaderRequest) -> MoveLeaderResponse, Retry::Write;
    downgrade(DowngradeRequest) -> DowngradeResponse, Retry::Write;
}

/// The Auth service of the proxy.
pub struct AuthProxy {
    pub up: Upstream,
}

forwarding! { impl Auth for AuthProxy; AuthClient; {}
        auth_enable(AuthEnableRequest) -> AuthEnableResponse, Retry::Write;
        auth_disable(AuthDisableRequest) -> AuthDisableResponse, Retry::Write;
        auth_status(AuthStatusRequest) -> AuthStatusResponse, Retry::Read;
        authenticate(AuthenticateRequest) -> AuthenticateResponse, Retry::Read;
        user_add(AuthUserAddRequest) -> AuthUserAddResponse, Retry::Write;
        user_get(AuthUserGetRequest) -> AuthUserGetResponse, Retry::Read;
        user_list(AuthUserListRequest) -> AuthUserListResponse, Retry::Read;
        user_delete(AuthUserDeleteRequest) -> AuthUserDeleteResponse, Retry::Write;
        user_change_password(AuthUserChangePasswordRequest) -> AuthUserChangePasswordResponse, Retry::Write;
        user_grant_role(AuthUserGrantRoleRequest) -> AuthUserGrantRoleResponse, Retry::Write;
        user_revoke_role(AuthUserRevokeRoleRequest) -> AuthUserRevokeRoleResponse, Retry::Write;
        role_add(AuthRoleAddRequest) -> AuthRoleAddResponse, Retry::Write;
        role_get(AuthRoleGetRequest) -> AuthRoleGetResponse, Retry::Read;
        role_list(AuthRoleListRequest) -> AuthRoleListResponse, Retry::Read;
        role_delete(AuthRoleDeleteRequest) -> AuthRoleDeleteResponse, Retry::Write;
        role_grant_permission(AuthRoleGrantPermissionRequest) -> AuthRoleGrantPermissionResponse, Retry::Write;
        role_revoke_permission(AuthRoleRevokePermissionRequest) -> AuthRoleRevokePermissionResponse, Retry::Write;
}
