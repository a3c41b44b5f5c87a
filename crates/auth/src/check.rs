//! Permission checks: the hot path (one read lock, a hash lookup, a binary search) and
//! etcd's apply-time rules for whole requests (`authApplierV3`, `apply_auth.go`).

use chorus_api::etcdserverpb::{
    request_op, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use chorus_api::internalpb::internal_request::Request;

use crate::error::AuthError;
use crate::perm::{IntervalSet, UserPerms};
use crate::store::{AuthInfo, AuthStore};

enum Access {
    Read,
    Write,
}

impl AuthStore {
    /// etcd's `isOpPermitted`: no requester -> `user name is empty`; credentials from an
    /// older auth revision -> `revision of auth store is old`; a user with the root role
    /// may do anything; otherwise the user's merged intervals decide.
    fn is_op_permitted(
        &self,
        ai: Option<&AuthInfo>,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<(), AuthError> {
        let state = self.state.read();
        if !state.enabled {
            return Ok(());
        }
        let ai = match ai {
            Some(ai) if ai.revision != 0 => ai,
            _ => return Err(AuthError::UserEmpty),
        };
        if ai.revision < state.revision {
            return Err(AuthError::AuthOldRevision);
        }
        let Some(perms) = state.perms.get(&ai.username) else {
            return Err(AuthError::PermissionDenied);
        };
        if perms.is_root || select(perms, access).covers(key, range_end) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    /// Reading `[key, range_end)` (etcd's forms: empty end = one key, `"\0"` = from key).
    pub fn is_range_permitted(
        &self,
        ai: Option<&AuthInfo>,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), AuthError> {
        self.is_op_permitted(ai, key, range_end, Access::Read)
    }

    pub fn is_put_permitted(&self, ai: Option<&AuthInfo>, key: &[u8]) -> Result<(), AuthError> {
        self.is_op_permitted(ai, key, &[], Access::Write)
    }

    pub fn is_delete_range_permitted(
        &self,
        ai: Option<&AuthInfo>,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), AuthError> {
        self.is_op_permitted(ai, key, range_end, Access::Write)
    }

    /// etcd's `IsAdminPermitted`: the requester holds the root role. No revision check.
    pub fn is_admin_permitted(&self, ai: Option<&AuthInfo>) -> Result<(), AuthError> {
        let state = self.state.read();
        if !state.enabled {
            return Ok(());
        }
        let ai = match ai {
            Some(ai) if !ai.username.is_empty() => ai,
            _ => return Err(AuthError::UserEmpty),
        };
        match state.perms.get(&ai.username) {
            None => Err(AuthError::UserNotFound),
            Some(p) if p.is_root => Ok(()),
            Some(_) => Err(AuthError::PermissionDenied),
        }
    }

    /// Whether `user` holds `role` (etcd's `HasRole`, for RoleGet by a non-admin).
    pub fn has_role(&self, user: &str, role: &str) -> bool {
        self.state.read().perms.get(user).is_some_and(|p| {
            if role == crate::store::ROOT_ROLE {
                p.is_root
            } else {
                p.roles.iter().any(|r| &**r == role)
            }
        })
    }

    /// After a read served outside raft: credentials whose revision is no longer current
    /// make the reply `revision of auth store is old` (etcd's `doSerialize`).
    pub fn check_revision_unchanged(&self, ai: Option<&AuthInfo>) -> Result<(), AuthError> {
        match ai {
            Some(ai) if ai.revision != 0 && ai.revision != self.revision() => {
                Err(AuthError::AuthOldRevision)
            }
            _ => Ok(()),
        }
    }
}

fn select(p: &UserPerms, access: Access) -> &IntervalSet {
    match access {
        Access::Read => &p.read,
        Access::Write => &p.write,
    }
}

/// The keys attached to a lease, for the lease rules (etcd's `checkLeasePuts`): `None` when
/// the lease does not exist.
pub trait LeaseKeys {
    fn lease_keys(&self, lease_id: i64) -> Option<Vec<Vec<u8>>>;
}

impl<F: Fn(i64) -> Option<Vec<Vec<u8>>>> LeaseKeys for F {
    fn lease_keys(&self, lease_id: i64) -> Option<Vec<Vec<u8>>> {
        self(lease_id)
    }
}

/// No leases (tests, and callers that checked leases already).
pub struct NoLeases;

impl LeaseKeys for NoLeases {
    fn lease_keys(&self, _: i64) -> Option<Vec<Vec<u8>>> {
        None
    }
}

impl AuthStore {
    /// etcd's auth applier for one replicated request, run in apply before the request
    /// itself, with the requester from the entry's header. `Ok` means apply it.
    pub fn check_request(
        &self,
        ai: &AuthInfo,
        req: &Request,
        leases: &dyn LeaseKeys,
    ) -> Result<(), AuthError> {
        let ai = Some(ai);
        if needs_admin(req) {
            return self.is_admin_permitted(ai);
        }
        match req {
            Request::Put(p) => self.check_put(ai, p, leases),
            Request::DeleteRange(d) => self.check_delete_range(ai, d),
            Request::Txn(t) => self.check_txn(ai, t, leases),
            Request::LeaseRevoke(r) => self.check_lease_puts(ai, r.id, leases),
            Request::AuthUserGet(r) => self.check_user_get(ai, &r.name),
            Request::AuthRoleGet(r) => self.check_role_get(ai, &r.role),
            _ => Ok(()),
        }
    }

    pub fn check_range(&self, ai: Option<&AuthInfo>, r: &RangeRequest) -> Result<(), AuthError> {
        self.is_range_permitted(ai, &r.key, &r.range_end)
    }

    pub fn check_put(
        &self,
        ai: Option<&AuthInfo>,
        r: &PutRequest,
        leases: &dyn LeaseKeys,
    ) -> Result<(), AuthError> {
        self.is_put_permitted(ai, &r.key)?;
        // A lease holding keys this user cannot write is one it could not revoke: it may
        // not attach new keys to it either.
        self.check_lease_puts(ai, r.lease, leases)?;
        if r.prev_kv {
            self.is_range_permitted(ai, &r.key, &[])?;
        }
        Ok(())
    }

    pub fn check_delete_range(
        &self,
        ai: Option<&AuthInfo>,
        r: &DeleteRangeRequest,
    ) -> Result<(), AuthError> {
        self.is_delete_range_permitted(ai, &r.key, &r.range_end)?;
        if r.prev_kv {
            self.is_range_permitted(ai, &r.key, &r.range_end)?;
        }
        Ok(())
    }

    /// Every compare, and every operation of both branches (nested txns too).
    pub fn check_txn(
        &self,
        ai: Option<&AuthInfo>,
        t: &TxnRequest,
        leases: &dyn LeaseKeys,
    ) -> Result<(), AuthError> {
        for c in &t.compare {
            self.is_range_permitted(ai, &c.key, &c.range_end)?;
        }
        self.check_ops(ai, &t.success, leases)?;
        self.check_ops(ai, &t.failure, leases)
    }

    fn check_ops(
        &self,
        ai: Option<&AuthInfo>,
        ops: &[RequestOp],
        leases: &dyn LeaseKeys,
    ) -> Result<(), AuthError> {
        for op in ops {
            match &op.request {
                Some(request_op::Request::RequestRange(r)) => self.check_range(ai, r)?,
                Some(request_op::Request::RequestPut(p)) => self.check_put(ai, p, leases)?,
                Some(request_op::Request::RequestDeleteRange(d)) => {
                    if d.prev_kv {
                        self.is_range_permitted(ai, &d.key, &d.range_end)?;
                    }
                    self.is_delete_range_permitted(ai, &d.key, &d.range_end)?;
                }
                Some(request_op::Request::RequestTxn(t)) => self.check_txn(ai, t, leases)?,
                None => {}
            }
        }
        Ok(())
    }

    /// Using (putting to, or revoking) a lease needs write access to every key on it,
    /// unless the requester is an admin (etcd's `checkLeasePuts`).
    pub fn check_lease_puts(
        &self,
        ai: Option<&AuthInfo>,
        lease_id: i64,
        leases: &dyn LeaseKeys,
    ) -> Result<(), AuthError> {
        let Some(keys) = leases.lease_keys(lease_id) else {
            return Ok(());
        };
        if self.is_admin_permitted(ai).is_ok() {
            return Ok(());
        }
        keys.iter().try_for_each(|k| self.is_put_permitted(ai, k))
    }

    /// A user may read its own roles; otherwise an admin request.
    pub fn check_user_get(&self, ai: Option<&AuthInfo>, name: &str) -> Result<(), AuthError> {
        match self.is_admin_permitted(ai) {
            Err(e) if ai.is_none_or(|ai| ai.username != name) => Err(e),
            _ => Ok(()),
        }
    }

    /// A user may read a role it holds; otherwise an admin request.
    pub fn check_role_get(&self, ai: Option<&AuthInfo>, role: &str) -> Result<(), AuthError> {
        match self.is_admin_permitted(ai) {
            Err(e) if !ai.is_some_and(|ai| self.has_role(&ai.username, role)) => Err(e),
            _ => Ok(()),
        }
    }
}

/// Handler-side lease rules (etcd 3.5's `checkLeaseRenew`, `checkLeaseTimeToLive`,
/// `checkLeaseLeases`): an admin may do anything; others need access to every key
/// attached to the lease(s). `keys` are the attached keys (none for an unknown lease).
impl AuthStore {
    /// LeaseKeepAlive: write access to every key on the lease.
    pub fn check_lease_renew<'a>(
        &self,
        ai: Option<&AuthInfo>,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), AuthError> {
        self.check_lease_keys(ai, keys, Access::Write, true)
    }

    /// LeaseTimeToLive: read access to every key on the lease.
    pub fn check_lease_time_to_live<'a>(
        &self,
        ai: Option<&AuthInfo>,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), AuthError> {
        self.check_lease_keys(ai, keys, Access::Read, false)
    }

    /// LeaseLeases: read access to every key on every lease.
    pub fn check_lease_leases<'a>(
        &self,
        ai: Option<&AuthInfo>,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), AuthError> {
        self.check_lease_keys(ai, keys, Access::Read, true)
    }

    fn check_lease_keys<'a>(
        &self,
        ai: Option<&AuthInfo>,
        keys: impl IntoIterator<Item = &'a [u8]>,
        access: Access,
        recheck_revision: bool,
    ) -> Result<(), AuthError> {
        let revision = self.revision();
        if !self.is_enabled() {
            return Ok(());
        }
        let Some(ai) = ai else {
            return Err(AuthError::UserEmpty);
        };
        if self.is_admin_permitted(Some(ai)).is_ok() {
            return Ok(());
        }
        for key in keys {
            match access {
                Access::Read => self.is_range_permitted(Some(ai), key, &[])?,
                Access::Write => self.is_put_permitted(Some(ai), key)?,
            }
        }
        if recheck_revision && revision != self.revision() {
            return Err(AuthError::AuthOldRevision);
        }
        Ok(())
    }
}

/// The requests only a root-role user may make once auth is enabled (etcd's
/// `needAdminPermission`). UserGet and RoleGet have their own rule.
pub fn needs_admin(req: &Request) -> bool {
    matches!(
        req,
        Request::AuthEnable(_)
            | Request::AuthDisable(_)
            | Request::AuthStatus(_)
            | Request::AuthUserAdd(_)
            | Request::AuthUserDelete(_)
            | Request::AuthUserChangePassword(_)
            | Request::AuthUserGrantRole(_)
            | Request::AuthUserRevokeRole(_)
            | Request::AuthRoleAdd(_)
            | Request::AuthRoleGrantPermission(_)
            | Request::AuthRoleRevokePermission(_)
            | Request::AuthRoleDelete(_)
            | Request::AuthUserList(_)
            | Request::AuthRoleList(_)
    )
}
