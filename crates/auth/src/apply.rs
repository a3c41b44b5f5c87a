//! The apply side: one function per replicated auth request, run in raft-log order on
//! every member inside the apply batch's write transaction. Deterministic: no clock, no
//! randomness (the proposer hashed the password and chose the token prefix). Responses
//! leave `header` unset: the server fills it in.
//!
//! Every change bumps the auth revision and rebuilds the permission cache, as etcd 3.5
//! does (`commitRevision` + `refreshRangePermCache`).

use base64::Engine as _;
use chorus_api::authpb::{Permission, Role, User, UserAddOptions};
use chorus_api::etcdserverpb::*;
use chorus_api::internalpb::InternalAuthenticateRequest;
use chorus_storage::backend::AUTH;
use redb::WriteTransaction;

use crate::error::AuthError;
use crate::perm::is_valid_permission_range;
use crate::persist;
use crate::store::{build_perms, has_root_role, AuthStore, Authenticated, ROOT_ROLE, ROOT_USER};

type Result<T> = std::result::Result<T, AuthError>;

impl AuthStore {
    /// Bumps the revision and rebuilds every user's permissions from the tables in `tx`.
    fn commit_change(&self, tx: &WriteTransaction) -> Result<()> {
        let users = persist::all_users(&persist::users(tx)?)?;
        let roles = persist::all_roles(&persist::roles(tx)?)?;
        let perms = build_perms(&users, &roles);
        let mut state = self.state.write();
        let revision = state.revision + 1;
        persist::put_revision(tx, revision)?;
        state.revision = revision;
        state.perms = perms;
        Ok(())
    }

    /// Refuses without a `root` user holding the `root` role; enabling twice is a no-op.
    /// Enabling does not bump the revision (etcd 3.5 neither).
    pub fn apply_auth_enable(&self, tx: &WriteTransaction) -> Result<AuthEnableResponse> {
        if self.is_enabled() {
            tracing::info!("authentication is already enabled; ignored auth enable request");
            return Ok(AuthEnableResponse::default());
        }
        let root = persist::get_user(&persist::users(tx)?, ROOT_USER)?
            .ok_or(AuthError::RootUserNotExist)?;
        if !has_root_role(&root) {
            return Err(AuthError::RootRoleNotExist);
        }
        persist::put_enabled(tx, true)?;
        let users = persist::all_users(&persist::users(tx)?)?;
        let roles = persist::all_roles(&persist::roles(tx)?)?;
        let mut state = self.state.write();
        state.enabled = true;
        state.perms = build_perms(&users, &roles);
        self.tokens.enable();
        tracing::info!("enabled authentication");
        Ok(AuthEnableResponse::default())
    }

    /// Disabling forgets every simple token.
    pub fn apply_auth_disable(&self, tx: &WriteTransaction) -> Result<AuthDisableResponse> {
        if !self.is_enabled() {
            return Ok(AuthDisableResponse::default());
        }
        persist::put_enabled(tx, false)?;
        self.commit_change(tx)?;
        self.state.write().enabled = false;
        self.tokens.disable();
        tracing::info!("disabled authentication");
        Ok(AuthDisableResponse::default())
    }

    pub fn apply_auth_status(&self, tx: &WriteTransaction) -> Result<AuthStatusResponse> {
        let (enabled, auth_revision) = persist::read_meta(&tx.open_table(AUTH)?)?;
        Ok(AuthStatusResponse {
            header: None,
            enabled,
            auth_revision,
        })
    }

    /// Records the simple token `<prefix>.<index>` (index: this entry's raft index) on
    /// every member. The password was checked by the proposer.
    pub fn apply_authenticate(
        &self,
        tx: &WriteTransaction,
        r: &InternalAuthenticateRequest,
        index: u64,
    ) -> Result<Authenticated> {
        if !self.is_enabled() {
            return Err(AuthError::AuthNotEnabled);
        }
        let user =
            persist::get_user(&persist::users(tx)?, &r.name)?.ok_or(AuthError::AuthFailed)?;
        if user.options.as_ref().is_some_and(|o| o.no_password) {
            return Err(AuthError::AuthFailed);
        }
        let simple_token = match &self.tokens {
            crate::token::TokenProvider::Simple(s) => {
                let token = format!("{}.{}", r.simple_token, index);
                s.assign(&r.name, token.clone());
                Some(token)
            }
            _ => None,
        };
        Ok(Authenticated {
            username: r.name.clone(),
            revision: self.revision(),
            simple_token,
        })
    }

    pub fn apply_user_add(
        &self,
        tx: &WriteTransaction,
        r: &AuthUserAddRequest,
    ) -> Result<AuthUserAddResponse> {
        if r.name.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        let mut users = persist::users(tx)?;
        if persist::get_user(&users, &r.name)?.is_some() {
            return Err(AuthError::UserAlreadyExist);
        }
        let options = r.options.unwrap_or(UserAddOptions { no_password: false });
        let password = if options.no_password {
            Vec::new()
        } else {
            hashed_password(&r.password, &r.hashed_password)?
        };
        let user = User {
            name: r.name.clone().into_bytes(),
            password,
            roles: Vec::new(),
            options: Some(options),
        };
        persist::put_user(&mut users, &user)?;
        drop(users);
        self.commit_change(tx)?;
        tracing::info!(user_name = %r.name, "added a user");
        Ok(AuthUserAddResponse::default())
    }

    /// `root` cannot be deleted while auth is enabled. The user's simple tokens die.
    pub fn apply_user_delete(
        &self,
        tx: &WriteTransaction,
        r: &AuthUserDeleteRequest,
    ) -> Result<AuthUserDeleteResponse> {
        if self.is_enabled() && r.name == ROOT_USER {
            tracing::error!(user_name = %r.name, "cannot delete 'root' user");
            return Err(AuthError::InvalidAuthMgmt);
        }
        let mut users = persist::users(tx)?;
        if persist::get_user(&users, &r.name)?.is_none() {
            return Err(AuthError::UserNotFound);
        }
        users.remove(r.name.as_bytes())?;
        drop(users);
        self.commit_change(tx)?;
        self.tokens.invalidate_user(&r.name);
        tracing::info!(user_name = %r.name, "deleted a user");
        Ok(AuthUserDeleteResponse::default())
    }

    /// A no-password user keeps no password. The user's simple tokens die.
    pub fn apply_user_change_password(
        &self,
        tx: &WriteTransaction,
        r: &AuthUserChangePasswordRequest,
    ) -> Result<AuthUserChangePasswordResponse> {
        let mut users = persist::users(tx)?;
        let mut user = persist::get_user(&users, &r.name)?.ok_or(AuthError::UserNotFound)?;
        let no_password = user.options.as_ref().is_some_and(|o| o.no_password);
        user.password = if no_password {
            Vec::new()
        } else {
            hashed_password(&r.password, &r.hashed_password)?
        };
        persist::put_user(&mut users, &user)?;
        drop(users);
        self.commit_change(tx)?;
        self.tokens.invalidate_user(&r.name);
        tracing::info!(user_name = %r.name, "changed a password of a user");
        Ok(AuthUserChangePasswordResponse::default())
    }

    /// The role must exist, except `root`, which may be granted before it is created.
    /// Granting a role the user has is a no-op (no revision bump).
    pub fn apply_user_grant_role(
        &self,
        tx: &WriteTransaction,
        r: &AuthUserGrantRoleRequest,
    ) -> Result<AuthUserGrantRoleResponse> {
        let mut users = persist::users(tx)?;
        let mut user = persist::get_user(&users, &r.user)?.ok_or(AuthError::UserNotFound)?;
        if r.role != ROOT_ROLE && persist::get_role(&persist::roles(tx)?, &r.role)?.is_none() {
            return Err(AuthError::RoleNotFound);
        }
        let Err(at) = user.roles.binary_search(&r.role) else {
            tracing::warn!(user_name = %r.user, role = %r.role, "ignored grant role request to a user");
            return Ok(AuthUserGrantRoleResponse::default());
        };
        user.roles.insert(at, r.role.clone());
        persist::put_user(&mut users, &user)?;
        drop(users);
        self.commit_change(tx)?;
        tracing::info!(user_name = %r.user, added_role_name = %r.role, "granted a role to a user");
        Ok(AuthUserGrantRoleResponse::default())
    }

    pub fn apply_user_get(
        &self,
        tx: &WriteTransaction,
        r: &AuthUserGetRequest,
    ) -> Result<AuthUserGetResponse> {
        let user =
            persist::get_user(&persist::users(tx)?, &r.name)?.ok_or(AuthError::UserNotFound)?;
        Ok(AuthUserGetResponse {
            header: None,
            roles: user.roles,
        })
    }

    pub fn apply_user_list(&self, tx: &WriteTransaction) -> Result<AuthUserListResponse> {
        let users = persist::all_users(&persist::users(tx)?)?;
        Ok(AuthUserListResponse {
            header: None,
            users: users.into_iter().map(|u| lossy(u.name)).collect(),
        })
    }

    /// `root` keeps the `root` role while auth is enabled.
    pub fn apply_user_revoke_role(
        &self,
        tx: &WriteTransaction,
        r: &AuthUserRevokeRoleRequest,
    ) -> Result<AuthUserRevokeRoleResponse> {
        if self.is_enabled() && r.name == ROOT_USER && r.role == ROOT_ROLE {
            tracing::error!("'root' user cannot revoke 'root' role");
            return Err(AuthError::InvalidAuthMgmt);
        }
        let mut users = persist::users(tx)?;
        let mut user = persist::get_user(&users, &r.name)?.ok_or(AuthError::UserNotFound)?;
        let before = user.roles.len();
        user.roles.retain(|role| *role != r.role);
        if user.roles.len() == before {
            return Err(AuthError::RoleNotGranted);
        }
        persist::put_user(&mut users, &user)?;
        drop(users);
        self.commit_change(tx)?;
        tracing::info!(user_name = %r.name, revoked_role_name = %r.role, "revoked a role from a user");
        Ok(AuthUserRevokeRoleResponse::default())
    }
}

/// The stored hash: the proposer's base64 `hashedPassword` (etcd 3.5). A plaintext
/// password without a hash would have to be hashed here, with a random salt: refused.
fn hashed_password(password: &str, hashed: &str) -> Result<Vec<u8>> {
    if !password.is_empty() && hashed.is_empty() {
        return Err(AuthError::PasswordNotHashed);
    }
    base64::engine::general_purpose::STANDARD
        .decode(hashed)
        .map_err(|_| AuthError::NoPasswordUser)
}

pub(crate) fn lossy(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl AuthStore {
    pub fn apply_role_add(
        &self,
        tx: &WriteTransaction,
        r: &AuthRoleAddRequest,
    ) -> Result<AuthRoleAddResponse> {
        if r.name.is_empty() {
            return Err(AuthError::RoleEmpty);
        }
        let mut roles = persist::roles(tx)?;
        if persist::get_role(&roles, &r.name)?.is_some() {
            return Err(AuthError::RoleAlreadyExist);
        }
        let role = Role {
            name: r.name.clone().into_bytes(),
            key_permission: Vec::new(),
        };
        persist::put_role(&mut roles, &role)?;
        drop(roles);
        self.commit_change(tx)?;
        tracing::info!(role_name = %r.name, "created a role");
        Ok(AuthRoleAddResponse::default())
    }

    /// Adds a permission, or changes the type of one with the same key and range end;
    /// permissions stay sorted by key. The range must be one etcd 3.5 accepts.
    pub fn apply_role_grant_permission(
        &self,
        tx: &WriteTransaction,
        r: &AuthRoleGrantPermissionRequest,
    ) -> Result<AuthRoleGrantPermissionResponse> {
        let perm = r.perm.as_ref().ok_or(AuthError::PermissionNotGiven)?;
        if !is_valid_permission_range(&perm.key, &perm.range_end) {
            return Err(AuthError::InvalidAuthMgmt);
        }
        let mut roles = persist::roles(tx)?;
        let mut role = persist::get_role(&roles, &r.name)?.ok_or(AuthError::RoleNotFound)?;
        let same = |p: &&mut Permission| p.key == perm.key && p.range_end == perm.range_end;
        match role.key_permission.iter_mut().find(same) {
            Some(existing) => existing.perm_type = perm.perm_type,
            None => {
                let at = role.key_permission.partition_point(|p| p.key <= perm.key);
                role.key_permission.insert(at, perm.clone());
            }
        }
        persist::put_role(&mut roles, &role)?;
        drop(roles);
        self.commit_change(tx)?;
        tracing::info!(role_name = %r.name, "granted/updated a permission to a role");
        Ok(AuthRoleGrantPermissionResponse::default())
    }

    pub fn apply_role_get(
        &self,
        tx: &WriteTransaction,
        r: &AuthRoleGetRequest,
    ) -> Result<AuthRoleGetResponse> {
        let role =
            persist::get_role(&persist::roles(tx)?, &r.role)?.ok_or(AuthError::RoleNotFound)?;
        Ok(AuthRoleGetResponse {
            header: None,
            perm: role.key_permission,
        })
    }

    pub fn apply_role_list(&self, tx: &WriteTransaction) -> Result<AuthRoleListResponse> {
        let roles = persist::all_roles(&persist::roles(tx)?)?;
        Ok(AuthRoleListResponse {
            header: None,
            roles: roles.into_iter().map(|r| lossy(r.name)).collect(),
        })
    }

    /// Removes the permission with exactly this key and range end.
    pub fn apply_role_revoke_permission(
        &self,
        tx: &WriteTransaction,
        r: &AuthRoleRevokePermissionRequest,
    ) -> Result<AuthRoleRevokePermissionResponse> {
        let mut roles = persist::roles(tx)?;
        let mut role = persist::get_role(&roles, &r.role)?.ok_or(AuthError::RoleNotFound)?;
        let before = role.key_permission.len();
        role.key_permission
            .retain(|p| p.key != r.key || p.range_end != r.range_end);
        if role.key_permission.len() == before {
            return Err(AuthError::PermissionNotGranted);
        }
        persist::put_role(&mut roles, &role)?;
        drop(roles);
        self.commit_change(tx)?;
        tracing::info!(role_name = %r.role, "revoked a permission on range");
        Ok(AuthRoleRevokePermissionResponse::default())
    }

    /// `root` cannot be deleted while auth is enabled; the role leaves every user.
    pub fn apply_role_delete(
        &self,
        tx: &WriteTransaction,
        r: &AuthRoleDeleteRequest,
    ) -> Result<AuthRoleDeleteResponse> {
        if self.is_enabled() && r.role == ROOT_ROLE {
            tracing::error!("cannot delete 'root' role");
            return Err(AuthError::InvalidAuthMgmt);
        }
        let mut roles = persist::roles(tx)?;
        if persist::get_role(&roles, &r.role)?.is_none() {
            return Err(AuthError::RoleNotFound);
        }
        roles.remove(r.role.as_bytes())?;
        drop(roles);
        let mut users = persist::users(tx)?;
        for mut user in persist::all_users(&users)? {
            let before = user.roles.len();
            user.roles.retain(|role| *role != r.role);
            if user.roles.len() != before {
                persist::put_user(&mut users, &user)?;
            }
        }
        drop(users);
        self.commit_change(tx)?;
        tracing::info!(role_name = %r.role, "deleted a role");
        Ok(AuthRoleDeleteResponse::default())
    }
}
