//! `etcd_server_apply_duration_seconds` for one applied request: its `op` as etcd names
//! it, and whether it succeeded as etcd counts success (a compacted revision is not a
//! failure; a v2 request fails with its store error).

use std::time::Duration;

use chorus_api::internalpb::internal_request::Request;
use chorus_api::internalpb::v2_request::Method;
use chorus_metrics::ApplyOp;

use super::result::{Applied, ApplyResult};
use crate::error::EtcdError;

/// The `op` of `r`; `None` for what etcd applies outside its appliers (new peer URLs
/// are a conf change there).
pub fn op(r: &Request) -> Option<ApplyOp> {
    Some(match r {
        Request::Put(_) => ApplyOp::Put,
        Request::DeleteRange(_) => ApplyOp::DeleteRange,
        Request::Txn(_) => ApplyOp::Txn,
        Request::Compaction(_) => ApplyOp::Compaction,
        Request::LeaseGrant(_) => ApplyOp::LeaseGrant,
        Request::LeaseRevoke(_) => ApplyOp::LeaseRevoke,
        Request::LeaseCheckpoint(_) => ApplyOp::LeaseCheckpoint,
        Request::Alarm(_) => ApplyOp::Alarm,
        Request::MemberAttributes(_) => ApplyOp::ClusterMemberAttrSet,
        Request::MemberPeerUrls(_) => return None,
        Request::V2(v) => v2_op(v.method()),
        Request::DowngradeInfoSet(_) => ApplyOp::DowngradeInfoSet,
        Request::ClusterVersionSet(_) => ApplyOp::ClusterVersionSet,
        other => auth_op(other)?,
    })
}

fn v2_op(m: Method) -> ApplyOp {
    match m {
        Method::Post => ApplyOp::V2Post,
        Method::Put => ApplyOp::V2Put,
        Method::Delete => ApplyOp::V2Delete,
        Method::Qget => ApplyOp::V2QGet,
        Method::Sync | Method::Unspecified => ApplyOp::V2Sync,
    }
}

fn auth_op(r: &Request) -> Option<ApplyOp> {
    Some(match r {
        Request::AuthEnable(_) => ApplyOp::AuthEnable,
        Request::AuthDisable(_) => ApplyOp::AuthDisable,
        Request::AuthStatus(_) => ApplyOp::AuthStatus,
        Request::Authenticate(_) => ApplyOp::Authenticate,
        Request::AuthUserAdd(_) => ApplyOp::AuthUserAdd,
        Request::AuthUserDelete(_) => ApplyOp::AuthUserDelete,
        Request::AuthUserChangePassword(_) => ApplyOp::AuthUserChangePassword,
        Request::AuthUserGrantRole(_) => ApplyOp::AuthUserGrantRole,
        Request::AuthUserGet(_) => ApplyOp::AuthUserGet,
        Request::AuthUserRevokeRole(_) => ApplyOp::AuthUserRevokeRole,
        Request::AuthUserList(_) => ApplyOp::AuthUserList,
        Request::AuthRoleAdd(_) => ApplyOp::AuthRoleAdd,
        Request::AuthRoleGrantPermission(_) => ApplyOp::AuthRoleGrantPermission,
        Request::AuthRoleGet(_) => ApplyOp::AuthRoleGet,
        Request::AuthRoleRevokePermission(_) => ApplyOp::AuthRoleRevokePermission,
        Request::AuthRoleDelete(_) => ApplyOp::AuthRoleDelete,
        Request::AuthRoleList(_) => ApplyOp::AuthRoleList,
        _ => return None,
    })
}

/// etcd's `success`: no error, or only a compacted revision; a v2 store error fails.
fn succeeded(result: &ApplyResult) -> bool {
    match result {
        Ok(Applied::V2(r)) => r.is_ok(),
        Ok(_) | Err(EtcdError::Compacted) => true,
        Err(_) => false,
    }
}

/// Records a request of kind `op` that took `took`.
pub fn record(op: Option<ApplyOp>, result: &ApplyResult, took: Duration) {
    if let Some(op) = op {
        chorus_metrics::observe_apply(op, succeeded(result), took);
    }
}
