//! The gRPC method behind each `/v3/` gateway path. etcd's gateway calls its own gRPC
//! server over loopback, so a gateway call shows in `grpc_server_*` under the method's
//! labels; chorus calls the services directly and counts the call itself.

use chorus_metrics::grpc;

/// Gateway path (after `/v3/`) and the gRPC method it calls.
const ROUTES: [(&str, &str); 51] = [
    ("kv/range", "/etcdserverpb.KV/Range"),
    ("kv/put", "/etcdserverpb.KV/Put"),
    ("kv/deleterange", "/etcdserverpb.KV/DeleteRange"),
    ("kv/txn", "/etcdserverpb.KV/Txn"),
    ("kv/compaction", "/etcdserverpb.KV/Compact"),
    ("watch", "/etcdserverpb.Watch/Watch"),
    ("lease/grant", "/etcdserverpb.Lease/LeaseGrant"),
    ("lease/revoke", "/etcdserverpb.Lease/LeaseRevoke"),
    ("kv/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke"),
    ("lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive"),
    ("kv/lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive"),
    ("lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive"),
    ("kv/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive"),
    ("lease/leases", "/etcdserverpb.Lease/LeaseLeases"),
    ("kv/lease/leases", "/etcdserverpb.Lease/LeaseLeases"),
    ("cluster/member/add", "/etcdserverpb.Cluster/MemberAdd"),
    (
        "cluster/member/remove",
        "/etcdserverpb.Cluster/MemberRemove",
    ),
    (
        "cluster/member/update",
        "/etcdserverpb.Cluster/MemberUpdate",
    ),
    ("cluster/member/list", "/etcdserverpb.Cluster/MemberList"),
    (
        "cluster/member/promote",
        "/etcdserverpb.Cluster/MemberPromote",
    ),
    ("maintenance/alarm", "/etcdserverpb.Maintenance/Alarm"),
    ("maintenance/status", "/etcdserverpb.Maintenance/Status"),
    (
        "maintenance/defragment",
        "/etcdserverpb.Maintenance/Defragment",
    ),
    ("maintenance/hash", "/etcdserverpb.Maintenance/Hash"),
    ("maintenance/hashkv", "/etcdserverpb.Maintenance/HashKV"),
    ("maintenance/snapshot", "/etcdserverpb.Maintenance/Snapshot"),
    (
        "maintenance/transfer-leadership",
        "/etcdserverpb.Maintenance/MoveLeader",
    ),
    ("auth/enable", "/etcdserverpb.Auth/AuthEnable"),
    ("auth/disable", "/etcdserverpb.Auth/AuthDisable"),
    ("auth/status", "/etcdserverpb.Auth/AuthStatus"),
    ("auth/authenticate", "/etcdserverpb.Auth/Authenticate"),
    ("auth/user/add", "/etcdserverpb.Auth/UserAdd"),
    ("auth/user/get", "/etcdserverpb.Auth/UserGet"),
    ("auth/user/list", "/etcdserverpb.Auth/UserList"),
    ("auth/user/delete", "/etcdserverpb.Auth/UserDelete"),
    (
        "auth/user/changepw",
        "/etcdserverpb.Auth/UserChangePassword",
    ),
    ("auth/user/grant", "/etcdserverpb.Auth/UserGrantRole"),
    ("auth/user/revoke", "/etcdserverpb.Auth/UserRevokeRole"),
    ("auth/role/add", "/etcdserverpb.Auth/RoleAdd"),
    ("auth/role/get", "/etcdserverpb.Auth/RoleGet"),
    ("auth/role/list", "/etcdserverpb.Auth/RoleList"),
    ("auth/role/delete", "/etcdserverpb.Auth/RoleDelete"),
    ("auth/role/grant", "/etcdserverpb.Auth/RoleGrantPermission"),
    (
        "auth/role/revoke",
        "/etcdserverpb.Auth/RoleRevokePermission",
    ),
    ("lock/lock", "/v3lockpb.Lock/Lock"),
    ("lock/unlock", "/v3lockpb.Lock/Unlock"),
    ("election/campaign", "/v3electionpb.Election/Campaign"),
    ("election/proclaim", "/v3electionpb.Election/Proclaim"),
    ("election/leader", "/v3electionpb.Election/Leader"),
    ("election/observe", "/v3electionpb.Election/Observe"),
    ("election/resign", "/v3electionpb.Election/Resign"),
];

/// The `grpc_server_*` slot of the method behind gateway `path`.
pub(super) fn slot(path: &str) -> Option<usize> {
    let (_, method) = ROUTES.iter().find(|(p, _)| *p == path)?;
    grpc::method_index(method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_names_a_served_method() {
        for (path, method) in ROUTES {
            assert!(slot(path).is_some(), "{path} -> {method}");
        }
        let put = slot("kv/put").unwrap();
        assert_eq!(grpc::METHODS[put].1, "Put");
        assert_eq!(slot("kv/nope"), None);
    }
}
