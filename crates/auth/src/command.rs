//! The auth requests of chorus's replicated command enum, as one dispatch for the apply
//! layer, and what the proposing member does before it proposes them (hash a password,
//! check a password and pick a token prefix).

use chorus_api::etcdserverpb::*;
use chorus_api::internalpb::internal_request::Request;
use chorus_api::internalpb::InternalAuthenticateRequest;
use chorus_storage::backend::Backend;
use redb::WriteTransaction;

use crate::error::AuthError;
use crate::password::{encode_hashed_password, hash_password, Password};
use crate::store::{AuthStore, Authenticated};

/// The typed reply of an applied auth request (`header` unset: the server fills it in).
#[derive(Clone, Debug, PartialEq)]
pub enum AuthResponse {
    AuthEnable(AuthEnableResponse),
    AuthDisable(AuthDisableResponse),
    AuthStatus(AuthStatusResponse),
    /// The proposer turns it into an `AuthenticateResponse` with
    /// [`AuthStore::issue_token`].
    Authenticate(Authenticated),
    UserAdd(AuthUserAddResponse),
    UserDelete(AuthUserDeleteResponse),
    UserChangePassword(AuthUserChangePasswordResponse),
    UserGrantRole(AuthUserGrantRoleResponse),
    UserGet(AuthUserGetResponse),
    UserRevokeRole(AuthUserRevokeRoleResponse),
    UserList(AuthUserListResponse),
    RoleAdd(AuthRoleAddResponse),
    RoleGrantPermission(AuthRoleGrantPermissionResponse),
    RoleGet(AuthRoleGetResponse),
    RoleRevokePermission(AuthRoleRevokePermissionResponse),
    RoleDelete(AuthRoleDeleteResponse),
    RoleList(AuthRoleListResponse),
}

/// Whether `req` is one of the auth requests [`AuthStore::apply_request`] applies.
pub fn is_auth_request(req: &Request) -> bool {
    matches!(
        req,
        Request::AuthEnable(_)
            | Request::AuthDisable(_)
            | Request::AuthStatus(_)
            | Request::Authenticate(_)
            | Request::AuthUserAdd(_)
            | Request::AuthUserDelete(_)
            | Request::AuthUserChangePassword(_)
            | Request::AuthUserGrantRole(_)
            | Request::AuthUserGet(_)
            | Request::AuthUserRevokeRole(_)
            | Request::AuthUserList(_)
            | Request::AuthRoleAdd(_)
            | Request::AuthRoleGrantPermission(_)
            | Request::AuthRoleGet(_)
            | Request::AuthRoleRevokePermission(_)
            | Request::AuthRoleDelete(_)
            | Request::AuthRoleList(_)
    )
}

impl AuthStore {
    /// Applies an auth request (after [`AuthStore::check_request`] allowed it); `None` when
    /// `req` is not an auth request. `index` is the entry's raft index (simple tokens).
    pub fn apply_request(
        &self,
        tx: &WriteTransaction,
        req: &Request,
        index: u64,
    ) -> Option<Result<AuthResponse, AuthError>> {
        use AuthResponse as R;
        Some(match req {
            Request::AuthEnable(_) => self.apply_auth_enable(tx).map(R::AuthEnable),
            Request::AuthDisable(_) => self.apply_auth_disable(tx).map(R::AuthDisable),
            Request::AuthStatus(_) => self.apply_auth_status(tx).map(R::AuthStatus),
            Request::Authenticate(r) => self.apply_authenticate(tx, r, index).map(R::Authenticate),
            Request::AuthUserAdd(r) => self.apply_user_add(tx, r).map(R::UserAdd),
            Request::AuthUserDelete(r) => self.apply_user_delete(tx, r).map(R::UserDelete),
            Request::AuthUserChangePassword(r) => self
                .apply_user_change_password(tx, r)
                .map(R::UserChangePassword),
            Request::AuthUserGrantRole(r) => {
                self.apply_user_grant_role(tx, r).map(R::UserGrantRole)
            }
            Request::AuthUserGet(r) => self.apply_user_get(tx, r).map(R::UserGet),
            Request::AuthUserRevokeRole(r) => {
                self.apply_user_revoke_role(tx, r).map(R::UserRevokeRole)
            }
            Request::AuthUserList(_) => self.apply_user_list(tx).map(R::UserList),
            Request::AuthRoleAdd(r) => self.apply_role_add(tx, r).map(R::RoleAdd),
            Request::AuthRoleGrantPermission(r) => self
                .apply_role_grant_permission(tx, r)
                .map(R::RoleGrantPermission),
            Request::AuthRoleGet(r) => self.apply_role_get(tx, r).map(R::RoleGet),
            Request::AuthRoleRevokePermission(r) => self
                .apply_role_revoke_permission(tx, r)
                .map(R::RoleRevokePermission),
            Request::AuthRoleDelete(r) => self.apply_role_delete(tx, r).map(R::RoleDelete),
            Request::AuthRoleList(_) => self.apply_role_list(tx).map(R::RoleList),
            _ => return None,
        })
    }

    /// Proposer side of UserAdd (CPU heavy: a blocking thread): unless the user has no
    /// password, hash it into `hashedPassword` and clear `password`, so that neither the
    /// log nor a snapshot ever holds the plaintext.
    pub fn prepare_user_add(
        &self,
        mut r: AuthUserAddRequest,
    ) -> Result<AuthUserAddRequest, AuthError> {
        if !r.options.is_some_and(|o| o.no_password) {
            let password = Password::new(std::mem::take(&mut r.password));
            r.hashed_password =
                encode_hashed_password(&hash_password(&password, self.bcrypt_cost())?);
        }
        Ok(r)
    }

    /// Proposer side of UserChangePassword (a blocking thread), as for UserAdd.
    pub fn prepare_user_change_password(
        &self,
        mut r: AuthUserChangePasswordRequest,
    ) -> Result<AuthUserChangePasswordRequest, AuthError> {
        if !r.password.is_empty() {
            let password = Password::new(std::mem::take(&mut r.password));
            r.hashed_password =
                encode_hashed_password(&hash_password(&password, self.bcrypt_cost())?);
        }
        Ok(r)
    }

    /// Proposer side of Authenticate (a blocking thread; call after a linearizable-read
    /// barrier, as etcd does): checks the password, picks the simple-token prefix, and
    /// returns the entry to propose with the revision the password was checked at. After
    /// apply, when [`Authenticated::revision`] differs from it, propose again (the user may
    /// have changed meanwhile); else answer with [`AuthStore::issue_token`].
    pub fn prepare_authenticate(
        &self,
        backend: &Backend,
        r: AuthenticateRequest,
    ) -> Result<(InternalAuthenticateRequest, u64), AuthError> {
        let password = Password::new(r.password);
        let checked_revision = self.check_password(backend, &r.name, &password)?;
        let entry = InternalAuthenticateRequest {
            name: r.name,
            simple_token: self.gen_token_prefix(),
        };
        Ok((entry, checked_revision))
    }
}
