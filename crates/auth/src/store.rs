//! [`AuthStore`]: the auth state of one member, its permission checks, and the apply
//! functions (in `apply.rs`) that change it in raft-log order.

use std::collections::HashMap;

use chorus_api::authpb::{Role, User};
use chorus_storage::backend::{Backend, AUTH, AUTH_ROLES, AUTH_USERS};
use parking_lot::RwLock;

use crate::error::AuthError;
use crate::password::{effective_bcrypt_cost, verify_password, Password};
use crate::perm::UserPerms;
use crate::persist;
use crate::token::TokenProvider;

pub const ROOT_USER: &str = "root";
pub const ROOT_ROLE: &str = "root";

/// Who a request is from: a user name and the auth revision its credentials were issued
/// at (etcd's `AuthInfo`). Carried in every proposal's header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthInfo {
    pub username: String,
    pub revision: u64,
}

impl AuthInfo {
    /// From a proposal's header (`username`, `auth_revision`): what apply checks against.
    pub fn from_header(h: &chorus_api::internalpb::RequestHeader) -> AuthInfo {
        AuthInfo {
            username: h.username.clone(),
            revision: h.auth_revision,
        }
    }
}

/// The outcome of an applied Authenticate entry (see [`AuthStore::issue_token`]). Its
/// `Debug` shows the token only as a fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub username: String,
    /// The auth revision at apply: a JWT carries it, and a proposer whose password check
    /// saw another revision retries (etcd's loop in `EtcdServer.Authenticate`).
    pub revision: u64,
    /// The simple token recorded on every member; `None` for JWT.
    pub simple_token: Option<String>,
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("username", &self.username)
            .field("revision", &self.revision)
            .field(
                "simple_token",
                &self.simple_token.as_deref().map(redact_token),
            )
            .finish()
    }
}

/// The store's settings (`--bcrypt-cost`, and the token provider built from
/// `--auth-token` / `--auth-token-ttl`).
#[derive(Debug)]
pub struct AuthConfig {
    pub bcrypt_cost: u32,
    pub tokens: TokenProvider,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) enabled: bool,
    pub(crate) revision: u64,
    /// Every user's merged permissions (etcd's `rangePermCache`), rebuilt on each change.
    pub(crate) perms: HashMap<String, UserPerms>,
}

pub struct AuthStore {
    pub(crate) state: RwLock<State>,
    pub(crate) tokens: TokenProvider,
    bcrypt_cost: u32,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.read();
        f.debug_struct("AuthStore")
            .field("enabled", &s.enabled)
            .field("revision", &s.revision)
            .field("users", &s.perms.len())
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl AuthStore {
    /// Reads the auth tables (etcd's `NewAuthStore`). A backend that never had auth gets
    /// revision 1, written at once, as etcd does on every member alike.
    pub fn load(backend: &Backend, config: AuthConfig) -> Result<AuthStore, AuthError> {
        let store = AuthStore {
            state: RwLock::new(State::default()),
            tokens: config.tokens,
            bcrypt_cost: effective_bcrypt_cost(config.bcrypt_cost),
        };
        store.recover(backend)?;
        if store.revision() == 0 {
            let tx = backend.begin_durable_write()?;
            persist::put_revision(&tx, 1)?;
            tx.commit()?;
            store.state.write().revision = 1;
        }
        Ok(store)
    }

    /// Re-reads everything from `backend`, e.g. after a snapshot replaced it (etcd's
    /// `Recover`). Simple tokens survive; they are dropped if auth is now disabled.
    pub fn recover(&self, backend: &Backend) -> Result<(), AuthError> {
        let tx = backend.begin_read()?;
        let (enabled, revision) = persist::read_meta(&tx.open_table(AUTH)?)?;
        let users = persist::all_users(&tx.open_table(AUTH_USERS)?)?;
        let roles = persist::all_roles(&tx.open_table(AUTH_ROLES)?)?;
        let mut state = self.state.write();
        *state = State {
            enabled,
            revision,
            perms: build_perms(&users, &roles),
        };
        if enabled {
            self.tokens.enable();
        } else {
            self.tokens.disable();
        }
        Ok(())
    }

    pub fn is_enabled(&self) -> bool {
        self.state.read().enabled
    }

    /// The auth revision: bumped by every change of users, roles or the enabled flag
    /// (except enabling, as in etcd).
    pub fn revision(&self) -> u64 {
        self.state.read().revision
    }

    pub fn bcrypt_cost(&self) -> u32 {
        self.bcrypt_cost
    }

    pub fn tokens(&self) -> &TokenProvider {
        &self.tokens
    }

    /// The simple-token prefix a proposer puts in an Authenticate entry.
    pub fn gen_token_prefix(&self) -> String {
        self.tokens.gen_token_prefix()
    }

    /// Drops expired simple tokens and starts the TTL of new ones; the server calls it every
    /// second (etcd's `simpleTokenTTLResolution`). A no-op for other providers.
    pub fn purge_expired_tokens(&self) -> usize {
        match &self.tokens {
            TokenProvider::Simple(s) => s.purge_expired(),
            _ => 0,
        }
    }

    /// After a successful Authenticate was applied, the token for the client. Call on the
    /// proposing member only: a JWT is signed here, with this member's clock and key.
    pub fn issue_token(&self, applied: &Authenticated) -> Result<String, AuthError> {
        self.tokens.issue(applied)
    }

    /// The requester behind a token from the `token` (or `authorization`) metadata; a
    /// `Bearer ` prefix is ignored. `Ok(None)` while auth is disabled. For a simple token the
    /// caller first waits until its index is applied here (see
    /// [`crate::token::simple_token_index`]), as etcd's `indexWaiter` does.
    pub fn auth_info_from_token(&self, token: &str) -> Result<Option<AuthInfo>, AuthError> {
        let revision = {
            let s = self.state.read();
            if !s.enabled {
                return Ok(None);
            }
            s.revision
        };
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        match self.tokens.info(token, revision) {
            Some(ai) => Ok(Some(ai)),
            None => {
                tracing::warn!(token_fingerprint = %redact_token(token), "invalid auth token");
                Err(AuthError::InvalidAuthToken)
            }
        }
    }
}

impl AuthStore {
    /// Checks a password outside apply (etcd's `CheckPassword`; CPU heavy: run it on a
    /// blocking thread). Returns the auth revision it was checked at: after the Authenticate
    /// entry is applied the proposer compares it with [`Authenticated::revision`] and retries
    /// on a difference.
    pub fn check_password(
        &self,
        backend: &Backend,
        username: &str,
        password: &Password,
    ) -> Result<u64, AuthError> {
        if !self.is_enabled() {
            return Err(AuthError::AuthNotEnabled);
        }
        let (user, revision) = {
            let tx = backend.begin_read()?;
            let user = persist::get_user(&tx.open_table(AUTH_USERS)?, username)?;
            let (_, revision) = persist::read_meta(&tx.open_table(AUTH)?)?;
            (user, revision)
        };
        let user = user.ok_or(AuthError::AuthFailed)?;
        if user.options.as_ref().is_some_and(|o| o.no_password) {
            return Err(AuthError::NoPasswordUser);
        }
        if !verify_password(password, &user.password) {
            tracing::info!(user_name = username, "invalid password");
            return Err(AuthError::AuthFailed);
        }
        Ok(revision)
    }
}

/// etcd's `redactToken`: the first 12 hex digits of the token's SHA-256, for logs.
pub fn redact_token(token: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    d.as_ref()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every user's merged permissions (roles a user names that do not exist add nothing).
pub(crate) fn build_perms(users: &[User], roles: &[Role]) -> HashMap<String, UserPerms> {
    let by_name: HashMap<&[u8], &Role> = roles.iter().map(|r| (r.name.as_slice(), r)).collect();
    users
        .iter()
        .map(|u| {
            let is_root = has_root_role(u);
            let perms = u
                .roles
                .iter()
                .filter_map(|r| by_name.get(r.as_bytes()))
                .flat_map(|r| r.key_permission.iter());
            let names = u.roles.iter().map(|r| r.as_str().into()).collect();
            (
                String::from_utf8_lossy(&u.name).into_owned(),
                UserPerms::build(is_root, names, perms),
            )
        })
        .collect()
}

pub(crate) fn has_root_role(u: &User) -> bool {
    u.roles.iter().any(|r| r == ROOT_ROLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handlers on many threads and the apply thread share one store.
    #[test]
    fn the_store_is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<AuthStore>();
    }

    #[test]
    fn debug_of_an_authentication_hides_the_token() {
        let a = Authenticated {
            username: "alice".into(),
            revision: 3,
            simple_token: Some("abcdefghijklmnop.42".into()),
        };
        let s = format!("{a:?}");
        assert!(!s.contains("abcdefghijklmnop"), "{s}");
        assert!(s.contains(&redact_token("abcdefghijklmnop.42")), "{s}");
        assert_eq!(redact_token("x").len(), 12);
    }
}
