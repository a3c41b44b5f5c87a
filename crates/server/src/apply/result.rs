//! What applying a request produced, handed to the member that proposed it, and the
//! typed replies proposers ask for ([`Reply`]): the one place an [`Applied`] is matched
//! back to a response type.

use chorus_api::etcdserverpb::{
    AlarmResponse, CompactionResponse, DeleteRangeResponse, LeaseCheckpointResponse,
    LeaseGrantResponse, LeaseRevokeResponse, PutResponse, TxnResponse,
};
use chorus_api::internalpb::Member;

use crate::error::EtcdError;

/// The result of applying one request.
#[derive(Debug)]
pub enum Applied {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    Alarm(AlarmResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    LeaseCheckpoint(LeaseCheckpointResponse),
    /// A v2 request's result (`None` for the expiry sync).
    V2(Result<Option<crate::v2::Event>, crate::v2::V2Error>),
    /// The members after a membership change.
    Members(Vec<Member>),
    /// An auth request's reply (header unset: the adapter fills it in).
    Auth(chorus_auth::AuthResponse),
    /// Requests with no response body (member attributes).
    Done,
}

pub type ApplyResult = Result<Applied, EtcdError>;

/// A response type a proposal can be answered with.
pub trait Reply: Sized {
    /// The reply, or the result back when it is of another kind.
    fn from_applied(a: Applied) -> Result<Self, Box<Applied>>;
}

macro_rules! reply {
    ($($variant:ident => $ty:ty),* $(,)?) => {
        $(impl Reply for $ty {
            fn from_applied(a: Applied) -> Result<Self, Box<Applied>> {
                match a {
                    Applied::$variant(r) => Ok(r),
                    other => Err(Box::new(other)),
                }
            }
        })*
    };
}

reply! {
    Put => PutResponse,
    DeleteRange => DeleteRangeResponse,
    Txn => TxnResponse,
    Compaction => CompactionResponse,
    Alarm => AlarmResponse,
    LeaseGrant => LeaseGrantResponse,
    LeaseRevoke => LeaseRevokeResponse,
    LeaseCheckpoint => LeaseCheckpointResponse,
    V2 => Result<Option<crate::v2::Event>, crate::v2::V2Error>,
    Members => Vec<Member>,
}

impl Reply for () {
    fn from_applied(a: Applied) -> Result<Self, Box<Applied>> {
        match a {
            Applied::Done => Ok(()),
            other => Err(Box::new(other)),
        }
    }
}

/// Converts what apply answered into the reply type the proposer expects; anything else
/// is a bug, reported as an internal error.
pub fn reply<R: Reply>(a: Applied) -> Result<R, EtcdError> {
    R::from_applied(a).map_err(|other| {
        EtcdError::Internal(format!(
            "unexpected apply result {other:?} for {}",
            std::any::type_name::<R>()
        ))
    })
}

/// Each auth response type is a reply too (inside [`Applied::Auth`]).
macro_rules! auth_reply {
    ($($variant:ident => $ty:ty),* $(,)?) => {
        $(impl Reply for $ty {
            fn from_applied(a: Applied) -> Result<Self, Box<Applied>> {
                match a {
                    Applied::Auth(chorus_auth::AuthResponse::$variant(r)) => Ok(r),
                    other => Err(Box::new(other)),
                }
            }
        })*
    };
}

auth_reply! {
    AuthEnable => chorus_api::etcdserverpb::AuthEnableResponse,
    AuthDisable => chorus_api::etcdserverpb::AuthDisableResponse,
    AuthStatus => chorus_api::etcdserverpb::AuthStatusResponse,
    Authenticate => chorus_auth::Authenticated,
    UserAdd => chorus_api::etcdserverpb::AuthUserAddResponse,
    UserDelete => chorus_api::etcdserverpb::AuthUserDeleteResponse,
    UserChangePassword => chorus_api::etcdserverpb::AuthUserChangePasswordResponse,
    UserGrantRole => chorus_api::etcdserverpb::AuthUserGrantRoleResponse,
    UserGet => chorus_api::etcdserverpb::AuthUserGetResponse,
    UserRevokeRole => chorus_api::etcdserverpb::AuthUserRevokeRoleResponse,
    UserList => chorus_api::etcdserverpb::AuthUserListResponse,
    RoleAdd => chorus_api::etcdserverpb::AuthRoleAddResponse,
    RoleGrantPermission => chorus_api::etcdserverpb::AuthRoleGrantPermissionResponse,
    RoleGet => chorus_api::etcdserverpb::AuthRoleGetResponse,
    RoleRevokePermission => chorus_api::etcdserverpb::AuthRoleRevokePermissionResponse,
    RoleDelete => chorus_api::etcdserverpb::AuthRoleDeleteResponse,
    RoleList => chorus_api::etcdserverpb::AuthRoleListResponse,
}
