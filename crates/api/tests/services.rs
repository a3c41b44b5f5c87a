//! gRPC service names and method paths: clients dial `/<package>.<Service>/<Method>`, so these
//! strings are the contract. The paths are observed by driving each generated client against a
//! recording transport that answers every call with UNIMPLEMENTED.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use chorus_api::{etcdserverpb as pb, v3electionpb as el, v3lockpb as lk};
use tonic::server::NamedService;

#[test]
fn service_names() {
    assert_eq!(pb::kv_server::KvServer::<()>::NAME, "etcdserverpb.KV");
    assert_eq!(
        pb::watch_server::WatchServer::<()>::NAME,
        "etcdserverpb.Watch"
    );
    assert_eq!(
        pb::lease_server::LeaseServer::<()>::NAME,
        "etcdserverpb.Lease"
    );
    assert_eq!(
        pb::cluster_server::ClusterServer::<()>::NAME,
        "etcdserverpb.Cluster"
    );
    assert_eq!(
        pb::maintenance_server::MaintenanceServer::<()>::NAME,
        "etcdserverpb.Maintenance"
    );
    assert_eq!(pb::auth_server::AuthServer::<()>::NAME, "etcdserverpb.Auth");
    assert_eq!(lk::lock_server::LockServer::<()>::NAME, "v3lockpb.Lock");
    assert_eq!(
        el::election_server::ElectionServer::<()>::NAME,
        "v3electionpb.Election"
    );
}

/// A transport that records each request path and replies with grpc-status 12.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl tower::Service<http::Request<tonic::body::Body>> for Recorder {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        self.0.lock().unwrap().push(req.uri().path().to_owned());
        let resp = http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "12")
            .body(tonic::body::Body::empty())
            .unwrap();
        ready(Ok(resp))
    }
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn empty<T: Send + 'static>() -> tokio_stream::Iter<std::vec::IntoIter<T>> {
    tokio_stream::iter(Vec::new())
}

/// Awaits a call, insisting it failed with UNIMPLEMENTED (i.e. reached the recorder).
async fn unimpl<T>(fut: impl std::future::Future<Output = Result<T, tonic::Status>>) {
    match fut.await {
        Err(s) => assert_eq!(s.code(), tonic::Code::Unimplemented, "{s:?}"),
        Ok(_) => panic!("recorder never succeeds"),
    }
}

#[tokio::test]
async fn method_paths() {
    let rec = Recorder::default();

    let mut c = pb::kv_client::KvClient::new(rec.clone());
    unimpl(c.range(pb::RangeRequest::default())).await;
    unimpl(c.range_stream(pb::RangeRequest::default())).await;
    unimpl(c.put(pb::PutRequest::default())).await;
    unimpl(c.delete_range(pb::DeleteRangeRequest::default())).await;
    unimpl(c.txn(pb::TxnRequest::default())).await;
    unimpl(c.compact(pb::CompactionRequest::default())).await;
    assert_eq!(
        rec.take(),
        [
            "/etcdserverpb.KV/Range",
            "/etcdserverpb.KV/RangeStream",
            "/etcdserverpb.KV/Put",
            "/etcdserverpb.KV/DeleteRange",
            "/etcdserverpb.KV/Txn",
            "/etcdserverpb.KV/Compact",
        ]
    );

    let mut c = pb::watch_client::WatchClient::new(rec.clone());
    unimpl(c.watch(empty::<pb::WatchRequest>())).await;
    assert_eq!(rec.take(), ["/etcdserverpb.Watch/Watch"]);

    let mut c = pb::lease_client::LeaseClient::new(rec.clone());
    unimpl(c.lease_grant(pb::LeaseGrantRequest::default())).await;
    unimpl(c.lease_revoke(pb::LeaseRevokeRequest::default())).await;
    unimpl(c.lease_keep_alive(empty::<pb::LeaseKeepAliveRequest>())).await;
    unimpl(c.lease_time_to_live(pb::LeaseTimeToLiveRequest::default())).await;
    unimpl(c.lease_leases(pb::LeaseLeasesRequest::default())).await;
    assert_eq!(
        rec.take(),
        [
            "/etcdserverpb.Lease/LeaseGrant",
            "/etcdserverpb.Lease/LeaseRevoke",
            "/etcdserverpb.Lease/LeaseKeepAlive",
            "/etcdserverpb.Lease/LeaseTimeToLive",
            "/etcdserverpb.Lease/LeaseLeases",
        ]
    );

    let mut c = pb::cluster_client::ClusterClient::new(rec.clone());
    unimpl(c.member_add(pb::MemberAddRequest::default())).await;
    unimpl(c.member_remove(pb::MemberRemoveRequest::default())).await;
    unimpl(c.member_update(pb::MemberUpdateRequest::default())).await;
    unimpl(c.member_list(pb::MemberListRequest::default())).await;
    unimpl(c.member_promote(pb::MemberPromoteRequest::default())).await;
    assert_eq!(
        rec.take(),
        [
            "/etcdserverpb.Cluster/MemberAdd",
            "/etcdserverpb.Cluster/MemberRemove",
            "/etcdserverpb.Cluster/MemberUpdate",
            "/etcdserverpb.Cluster/MemberList",
            "/etcdserverpb.Cluster/MemberPromote",
        ]
    );

    let mut c = pb::maintenance_client::MaintenanceClient::new(rec.clone());
    unimpl(c.alarm(pb::AlarmRequest::default())).await;
    unimpl(c.status(pb::StatusRequest::default())).await;
    unimpl(c.defragment(pb::DefragmentRequest::default())).await;
    unimpl(c.hash(pb::HashRequest::default())).await;
    unimpl(c.hash_kv(pb::HashKvRequest::default())).await;
    unimpl(c.snapshot(pb::SnapshotRequest::default())).await;
    unimpl(c.move_leader(pb::MoveLeaderRequest::default())).await;
    unimpl(c.downgrade(pb::DowngradeRequest::default())).await;
    assert_eq!(
        rec.take(),
        [
            "/etcdserverpb.Maintenance/Alarm",
            "/etcdserverpb.Maintenance/Status",
            "/etcdserverpb.Maintenance/Defragment",
            "/etcdserverpb.Maintenance/Hash",
            "/etcdserverpb.Maintenance/HashKV",
            "/etcdserverpb.Maintenance/Snapshot",
            "/etcdserverpb.Maintenance/MoveLeader",
            "/etcdserverpb.Maintenance/Downgrade",
        ]
    );

    let mut c = pb::auth_client::AuthClient::new(rec.clone());
    unimpl(c.auth_enable(pb::AuthEnableRequest::default())).await;
    unimpl(c.auth_disable(pb::AuthDisableRequest::default())).await;
    unimpl(c.auth_status(pb::AuthStatusRequest::default())).await;
    unimpl(c.authenticate(pb::AuthenticateRequest::default())).await;
    unimpl(c.user_add(pb::AuthUserAddRequest::default())).await;
    unimpl(c.user_get(pb::AuthUserGetRequest::default())).await;
    unimpl(c.user_list(pb::AuthUserListRequest::default())).await;
    unimpl(c.user_delete(pb::AuthUserDeleteRequest::default())).await;
    unimpl(c.user_change_password(pb::AuthUserChangePasswordRequest::default())).await;
    unimpl(c.user_grant_role(pb::AuthUserGrantRoleRequest::default())).await;
    unimpl(c.user_revoke_role(pb::AuthUserRevokeRoleRequest::default())).await;
    unimpl(c.role_add(pb::AuthRoleAddRequest::default())).await;
    unimpl(c.role_get(pb::AuthRoleGetRequest::default())).await;
    unimpl(c.role_list(pb::AuthRoleListRequest::default())).await;
    unimpl(c.role_delete(pb::AuthRoleDeleteRequest::default())).await;
    unimpl(c.role_grant_permission(pb::AuthRoleGrantPermissionRequest::default())).await;
    unimpl(c.role_revoke_permission(pb::AuthRoleRevokePermissionRequest::default())).await;
    assert_eq!(
        rec.take(),
        [
            "/etcdserverpb.Auth/AuthEnable",
            "/etcdserverpb.Auth/AuthDisable",
            "/etcdserverpb.Auth/AuthStatus",
            "/etcdserverpb.Auth/Authenticate",
            "/etcdserverpb.Auth/UserAdd",
            "/etcdserverpb.Auth/UserGet",
            "/etcdserverpb.Auth/UserList",
            "/etcdserverpb.Auth/UserDelete",
            "/etcdserverpb.Auth/UserChangePassword",
            "/etcdserverpb.Auth/UserGrantRole",
            "/etcdserverpb.Auth/UserRevokeRole",
            "/etcdserverpb.Auth/RoleAdd",
            "/etcdserverpb.Auth/RoleGet",
            "/etcdserverpb.Auth/RoleList",
            "/etcdserverpb.Auth/RoleDelete",
            "/etcdserverpb.Auth/RoleGrantPermission",
            "/etcdserverpb.Auth/RoleRevokePermission",
        ]
    );

    let mut c = lk::lock_client::LockClient::new(rec.clone());
    unimpl(c.lock(lk::LockRequest::default())).await;
    unimpl(c.unlock(lk::UnlockRequest::default())).await;
    assert_eq!(rec.take(), ["/v3lockpb.Lock/Lock", "/v3lockpb.Lock/Unlock"]);

    let mut c = el::election_client::ElectionClient::new(rec.clone());
    unimpl(c.campaign(el::CampaignRequest::default())).await;
    unimpl(c.proclaim(el::ProclaimRequest::default())).await;
    unimpl(c.leader(el::LeaderRequest::default())).await;
    unimpl(c.observe(el::LeaderRequest::default())).await;
    unimpl(c.resign(el::ResignRequest::default())).await;
    assert_eq!(
        rec.take(),
        [
            "/v3electionpb.Election/Campaign",
            "/v3electionpb.Election/Proclaim",
            "/v3electionpb.Election/Leader",
            "/v3electionpb.Election/Observe",
            "/v3electionpb.Election/Resign",
        ]
    );
}
