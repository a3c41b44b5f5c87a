//! [`AuthStore`]: etcd's v2 auth store (`v2auth.store`). Users, roles and the switch are
//! JSON files in the v2 store under `/2` (`/2/users/<name>`, `/2/roles/<name>`,
//! `/2/enabled`), read from the member's own store (a quorum read where etcd makes one)
//! and written with ordinary v2 requests through a [`Doer`], so raft replicates them and
//! snapshots and restarts keep them, exactly as etcd does: the same requests in the same
//! order, so that the v2 index and `/v2/stats/store` move as etcd's do.
//!
//! Safer than etcd 3.4 in two places. An update of a user or role is a compare-and-swap
//! on the index it was read at, redone on a concurrent change (etcd overwrites, so one of
//! two concurrent grants could be lost, or a revoke undone). And the apply-time guard
//! (`guard.rs`) makes "root cannot be removed while auth is on" and "auth needs a root
//! user" hold against concurrent requests through other members.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::RwLock;

use super::error::AuthError;
use super::model::{
    default_guest_role, enabled_from_stored, root_role, Role, User, ENABLED_PATH, GUEST_ROLE,
    PERMS_PREFIX, ROOT_ROLE, ROOT_USER,
};
use super::password::Passwords;
use crate::v2::error::{ecode, V2Error};
use crate::v2::format::{join, split};
use crate::v2::request::{Method, V2Request};
use crate::v2::store::{Event, V2Store};

/// How often an update is redone when a concurrent change got in between.
const UPDATE_ATTEMPTS: usize = 5;

/// What the auth store needs from the member (etcd's `doer`): the local store for reads,
/// a linearizable barrier for quorum reads, and proposals for writes.
pub trait Doer: Send + Sync + 'static {
    fn store(&self) -> Arc<RwLock<V2Store>>;
    fn linearizable(&self) -> BoxFuture<'static, Result<(), V2Error>>;
    fn propose(&self, req: V2Request) -> BoxFuture<'static, Result<Event, V2Error>>;
}

pub struct AuthStore {
    doer: Arc<dyn Doer>,
    passwords: Passwords,
    /// etcd's `ensuredOnce`: this process has made sure the directories and the switch
    /// exist (it tries again after a restart, as etcd does).
    ensured_once: AtomicBool,
}

/// The path of `res` under `/2`, as etcd's `path.Join(StorePermsPrefix, res)`.
fn perms_path(res: &str) -> String {
    join(&[PERMS_PREFIX, res])
}

/// A file's value and modified index; `None` for a directory.
fn file_value(ev: &Event) -> Option<(&str, u64)> {
    let n = ev.node.as_ref()?;
    Some((n.value.as_deref()?, n.modified_index))
}

fn put(path: String, val: &str, dir: bool, prev_exist: bool, prev_index: u64) -> V2Request {
    V2Request {
        method: Method::Put as i32,
        path,
        val: val.to_string(),
        dir,
        prev_exist: Some(prev_exist),
        prev_index,
        ..Default::default()
    }
}

impl AuthStore {
    pub fn new(doer: Arc<dyn Doer>, passwords: Passwords) -> AuthStore {
        AuthStore {
            doer,
            passwords,
            ensured_once: AtomicBool::new(false),
        }
    }

    /// etcd's `requestResource`: a GET (or QGET) of `/2<res>`. Counted in the store's stats.
    async fn request_resource(&self, res: &str, quorum: bool) -> Result<Event, V2Error> {
        if quorum {
            self.doer.linearizable().await?;
        }
        self.doer
            .store()
            .read()
            .get(&perms_path(res), false, false, 0)
    }

    /// etcd's `detectAuth`: whether `/2/enabled` holds `true` (a local read).
    pub async fn auth_enabled(&self) -> bool {
        match self.request_resource("/enabled", false).await {
            Ok(ev) => file_value(&ev).is_some_and(|(v, _)| enabled_from_stored(v)),
            Err(e) if e.code == ecode::KEY_NOT_FOUND => false,
            Err(e) => {
                tracing::warn!("failed to detect auth settings: {e}");
                false
            }
        }
    }

    async fn get_user_at(&self, name: &str, quorum: bool) -> Result<(User, u64), AuthError> {
        let ev = match self
            .request_resource(&format!("/users/{name}"), quorum)
            .await
        {
            Err(e) if e.code == ecode::KEY_NOT_FOUND => {
                return Err(AuthError::UserNotFound(name.to_string()))
            }
            r => r?,
        };
        let (value, index) =
            file_value(&ev).ok_or_else(|| AuthError::UserNotFound(name.to_string()))?;
        let u = User::from_stored(value).map_err(|_| AuthError::Corrupt(format!("user {name}")))?;
        let u = if u.user == ROOT_USER {
            u.with_root_role()
        } else {
            u
        };
        Ok((u, index))
    }

    /// A user as stored (its password hash included), from this member's store.
    pub async fn get_user(&self, name: &str) -> Result<User, AuthError> {
        self.get_user_at(name, false).await.map(|(u, _)| u)
    }

    async fn get_role_at(&self, name: &str, quorum: bool) -> Result<(Role, u64), AuthError> {
        if name == ROOT_ROLE {
            return Ok((root_role(), 0));
        }
        let ev = match self
            .request_resource(&format!("/roles/{name}"), quorum)
            .await
        {
            Err(e) if e.code == ecode::KEY_NOT_FOUND => {
                return Err(AuthError::RoleNotFound(name.to_string()))
            }
            r => r?,
        };
        let (value, index) =
            file_value(&ev).ok_or_else(|| AuthError::RoleNotFound(name.to_string()))?;
        let r = Role::from_stored(value).map_err(|_| AuthError::Corrupt(format!("role {name}")))?;
        Ok((r, index))
    }

    /// A role (root is built in), from this member's store.
    pub async fn get_role(&self, name: &str) -> Result<Role, AuthError> {
        self.get_role_at(name, false).await.map(|(r, _)| r)
    }

    /// The names under `/2/<dir>/`, sorted (none when it does not exist yet).
    async fn list(&self, dir: &str) -> Result<Vec<String>, AuthError> {
        let ev = match self.request_resource(dir, false).await {
            Err(e) if e.code == ecode::KEY_NOT_FOUND => return Ok(Vec::new()),
            r => r?,
        };
        let nodes = ev.node.as_ref().and_then(|n| n.nodes.as_ref());
        let mut names: Vec<String> = nodes
            .into_iter()
            .flatten()
            .map(|n| split(&n.key).1.to_string())
            .collect();
        names.sort();
        Ok(names)
    }

    pub async fn all_users(&self) -> Result<Vec<String>, AuthError> {
        self.list("/users/").await
    }

    /// Every role name, root included.
    pub async fn all_roles(&self) -> Result<Vec<String>, AuthError> {
        let mut names = self.list("/roles/").await?;
        names.push(ROOT_ROLE.to_string());
        names.sort();
        Ok(names)
    }

    /// The user named `name` if `password` (raw request bytes) is theirs. An unknown name
    /// costs a bcrypt check all the same.
    pub async fn authenticate(&self, name: &str, password: &[u8]) -> Option<User> {
        let user = self.get_user(name).await.ok();
        let hash = user.as_ref().map(|u| u.password.as_str());
        if self.passwords.check(hash, password).await {
            user
        } else {
            tracing::warn!(user_name = name, "incorrect password");
            None
        }
    }

    // ---- writes ----

    /// etcd's `ensureAuthDirectories`: `/2`, `/2/users/`, `/2/roles/` and `/2/enabled`
    /// (`false`) are created unless they exist, once per process.
    async fn ensure_auth_directories(&self) -> Result<(), V2Error> {
        if self.ensured_once.load(Ordering::Acquire) {
            return Ok(());
        }
        for dir in ["/2", "/2/users/", "/2/roles/"] {
            match self.doer.propose(put(dir.into(), "", true, false, 0)).await {
                Ok(_) => {}
                Err(e) if e.code == ecode::NODE_EXIST => {}
                Err(e) => {
                    tracing::warn!("failed to create auth directories: {e}");
                    return Err(e);
                }
            }
        }
        let switch = put(ENABLED_PATH.into(), "false", false, false, 0);
        match self.doer.propose(switch).await {
            Ok(_) => {}
            Err(e) if e.code == ecode::NODE_EXIST => {}
            Err(e) => return Err(e),
        }
        self.ensured_once.store(true, Ordering::Release);
        Ok(())
    }

    /// etcd's `setResource`: a PUT of `/2<res>` that must (`prev_exist`) or must not find
    /// it; with `prev_index`, only over that version (chorus's compare-and-swap updates).
    async fn set_resource(
        &self,
        res: &str,
        value: String,
        prev_exist: bool,
        prev_index: u64,
    ) -> Result<Event, V2Error> {
        self.ensure_auth_directories().await?;
        let req = put(perms_path(res), &value, false, prev_exist, prev_index);
        self.doer.propose(req).await
    }

    async fn delete_resource(&self, res: &str) -> Result<Event, V2Error> {
        self.ensure_auth_directories().await?;
        let req = V2Request {
            method: Method::Delete as i32,
            path: perms_path(res),
            prev_exist: Some(true),
            ..Default::default()
        };
        self.doer.propose(req).await
    }

    /// etcd's `CreateOrUpdateUser` (a PUT with a password and no roles): an update when
    /// the user exists (quorum read), else a create. `true` when it was created.
    pub async fn create_or_update_user(&self, user: User) -> Result<(User, bool), AuthError> {
        if self.get_user_at(&user.user, true).await.is_ok() {
            return Ok((self.update_user(user).await?, false));
        }
        Ok((self.create_user(user).await?, true))
    }

    /// etcd's `CreateUser`: the user named root gets the root role. Returns the user as
    /// stored (password hashed).
    pub async fn create_user(&self, mut user: User) -> Result<User, AuthError> {
        if user.user == ROOT_USER {
            user = user.with_root_role();
        }
        if user.password.is_empty() {
            return Err(AuthError::EmptyPassword(user.user));
        }
        user.password = self.passwords.hash(&user.user, &user.password).await?;
        let res = format!("/users/{}", user.user);
        match self.set_resource(&res, user.to_json(), false, 0).await {
            Err(e) if e.code == ecode::NODE_EXIST => Err(AuthError::UserExists(user.user)),
            Err(e) => Err(e.into()),
            Ok(_) => {
                tracing::info!(user_name = %user.user, "created a user");
                Ok(user)
            }
        }
    }

    /// etcd's `UpdateUser`: grants, revokes and a new password merged into the user read
    /// with a quorum read; refused when nothing changes.
    pub async fn update_user(&self, user: User) -> Result<User, AuthError> {
        let (mut old, mut index) = self.get_user_at(&user.user, true).await?;
        let hash = match user.password.as_str() {
            "" => None,
            p => Some(self.passwords.hash(&user.user, p).await?),
        };
        let res = format!("/users/{}", user.user);
        for attempt in 1..=UPDATE_ATTEMPTS {
            let new = old.merge(&user, hash.clone())?;
            if new == old {
                return Err(AuthError::UserNotUpdated);
            }
            match self.set_resource(&res, new.to_json(), true, index).await {
                Ok(_) => {
                    tracing::info!(user_name = %user.user, "updated a user");
                    return Ok(new);
                }
                Err(e) if e.code == ecode::TEST_FAILED && attempt < UPDATE_ATTEMPTS => {
                    (old, index) = self.get_user_at(&user.user, true).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// etcd's `DeleteUser`: root stays while auth is enabled (the switch is read for
    /// every delete, as etcd does).
    pub async fn delete_user(&self, name: &str) -> Result<(), AuthError> {
        if self.auth_enabled().await && name == ROOT_USER {
            return Err(AuthError::RootUserInUse);
        }
        match self.delete_resource(&format!("/users/{name}")).await {
            Err(e) if e.code == ecode::KEY_NOT_FOUND => {
                Err(AuthError::UserToDeleteNotFound(name.to_string()))
            }
            // The apply-time guard: auth was enabled meanwhile.
            Err(e) if e.code == ecode::TEST_FAILED => Err(AuthError::RootUserInUse),
            Err(e) => Err(e.into()),
            Ok(_) => {
                tracing::info!(user_name = name, "deleted a user");
                Ok(())
            }
        }
    }

    pub async fn create_role(&self, role: &Role) -> Result<(), AuthError> {
        if role.role == ROOT_ROLE {
            return Err(AuthError::RootRoleReadOnly(role.role.clone()));
        }
        let res = format!("/roles/{}", role.role);
        match self.set_resource(&res, role.to_json(), false, 0).await {
            Err(e) if e.code == ecode::NODE_EXIST => Err(AuthError::RoleExists(role.role.clone())),
            Err(e) => Err(e.into()),
            Ok(_) => {
                tracing::info!(role_name = %role.role, "created a new role");
                Ok(())
            }
        }
    }

    pub async fn delete_role(&self, name: &str) -> Result<(), AuthError> {
        if name == ROOT_ROLE {
            return Err(AuthError::RootRoleReadOnly(name.to_string()));
        }
        match self.delete_resource(&format!("/roles/{name}")).await {
            Err(e) if e.code == ecode::KEY_NOT_FOUND => {
                Err(AuthError::RoleToDeleteNotFound(name.to_string()))
            }
            Err(e) => Err(e.into()),
            Ok(_) => {
                tracing::info!(role_name = name, "deleted a role");
                Ok(())
            }
        }
    }

    /// etcd's `UpdateRole`: the request's grant and revoke merged into the role read with
    /// a quorum read; refused when nothing changes.
    pub async fn update_role(&self, role: &Role) -> Result<Role, AuthError> {
        if role.role == ROOT_ROLE {
            return Err(AuthError::RootRoleReadOnly(role.role.clone()));
        }
        let (mut old, mut index) = self.get_role_at(&role.role, true).await?;
        let res = format!("/roles/{}", role.role);
        for attempt in 1..=UPDATE_ATTEMPTS {
            let new = old.merge(role)?;
            if new == old {
                return Err(AuthError::RoleNotUpdated);
            }
            match self.set_resource(&res, new.to_json(), true, index).await {
                Ok(_) => {
                    tracing::info!(role_name = %role.role, "updated a role");
                    return Ok(new);
                }
                Err(e) if e.code == ecode::TEST_FAILED && attempt < UPDATE_ATTEMPTS => {
                    (old, index) = self.get_role_at(&role.role, true).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// etcd's `EnableAuth`: needs the root user; creates the default guest role (every
    /// key, read and write) when there is none.
    pub async fn enable_auth(&self) -> Result<(), AuthError> {
        if self.auth_enabled().await {
            return Err(AuthError::AlreadyEnabled);
        }
        if self.get_user_at(ROOT_USER, true).await.is_err() {
            return Err(AuthError::NoRootUser);
        }
        if self.get_role_at(GUEST_ROLE, true).await.is_err() {
            tracing::info!(
                role_name = GUEST_ROLE,
                "no guest role access found; creating default"
            );
            self.create_role(&default_guest_role()).await?;
        }
        match self.set_resource("/enabled", "true".into(), true, 0).await {
            // The apply-time guard: root was removed meanwhile.
            Err(e) if e.code == ecode::TEST_FAILED => Err(AuthError::NoRootUser),
            Err(e) => Err(e.into()),
            Ok(_) => {
                tracing::info!("enabled auth");
                Ok(())
            }
        }
    }

    pub async fn disable_auth(&self) -> Result<(), AuthError> {
        if !self.auth_enabled().await {
            return Err(AuthError::AlreadyDisabled);
        }
        self.set_resource("/enabled", "false".into(), true, 0)
            .await?;
        tracing::info!("disabled auth");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures::FutureExt;
    use parking_lot::Mutex;

    use super::*;
    use crate::v2::request::apply;

    type Hook = Box<dyn FnOnce(&mut V2Store) + Send>;

    /// A store in this process; `hook` runs just before the first proposal for its path
    /// is applied, as a request through another member would have been.
    #[derive(Default)]
    struct Local {
        store: Arc<RwLock<V2Store>>,
        hook: Mutex<Option<(String, Hook)>>,
        proposals: AtomicUsize,
    }

    impl Doer for Local {
        fn store(&self) -> Arc<RwLock<V2Store>> {
            self.store.clone()
        }

        fn linearizable(&self) -> BoxFuture<'static, Result<(), V2Error>> {
            async { Ok(()) }.boxed()
        }

        fn propose(&self, req: V2Request) -> BoxFuture<'static, Result<Event, V2Error>> {
            self.proposals.fetch_add(1, Ordering::Relaxed);
            let mut hook = self.hook.lock();
            if hook.as_ref().is_some_and(|(path, _)| *path == req.path) {
                let (_, f) = hook.take().expect("hook");
                f(&mut self.store.write());
            }
            let r = apply(&mut self.store.write(), &req).map(|e| e.expect("an event"));
            async move { r }.boxed()
        }
    }

    fn auth_over(local: &Arc<Local>) -> AuthStore {
        AuthStore::new(local.clone(), Passwords::new(4))
    }

    fn user(name: &str, password: &str) -> User {
        User {
            user: name.into(),
            password: password.into(),
            ..User::default()
        }
    }

    fn stored_roles(local: &Local, name: &str) -> Option<Vec<String>> {
        let s = local.store.read();
        let value = s.peek_file(&format!("/2/users/{name}")).expect("stored");
        User::from_stored(value).unwrap().roles
    }

    #[tokio::test]
    async fn a_concurrent_update_is_not_lost() {
        let local = Arc::new(Local::default());
        let auth = auth_over(&local);
        auth.create_user(user("u", "pw")).await.unwrap();
        let other = r#"{"user":"u","password":"x","roles":["other"]}"#;
        *local.hook.lock() = Some((
            "/2/users/u".into(),
            Box::new(move |s: &mut V2Store| {
                s.set("/2/users/u", false, other, None, false, 0).unwrap();
            }),
        ));
        let grant = User {
            grant: vec!["mine".into()],
            ..user("u", "")
        };
        let out = auth.update_user(grant).await.unwrap();
        let both = Some(vec!["mine".to_string(), "other".to_string()]);
        assert_eq!(out.roles, both);
        assert_eq!(stored_roles(&local, "u"), both);
    }

    #[tokio::test]
    async fn auth_stays_off_when_root_went_meanwhile() {
        let local = Arc::new(Local::default());
        let auth = auth_over(&local);
        auth.create_user(user("root", "pw")).await.unwrap();
        *local.hook.lock() = Some((
            ENABLED_PATH.into(),
            Box::new(|s: &mut V2Store| {
                s.delete("/2/users/root", false, false, 0).unwrap();
            }),
        ));
        assert_eq!(auth.enable_auth().await, Err(AuthError::NoRootUser));
        assert!(!auth.auth_enabled().await);
    }

    #[tokio::test]
    async fn root_stays_when_auth_came_on_meanwhile() {
        let local = Arc::new(Local::default());
        let auth = auth_over(&local);
        auth.create_user(user("root", "pw")).await.unwrap();
        *local.hook.lock() = Some((
            "/2/users/root".into(),
            Box::new(|s: &mut V2Store| {
                s.set(ENABLED_PATH, false, "true", None, false, 0).unwrap();
            }),
        ));
        assert_eq!(
            auth.delete_user("root").await,
            Err(AuthError::RootUserInUse)
        );
        assert!(auth.get_user("root").await.is_ok());
    }

    #[tokio::test]
    async fn directories_are_made_sure_of_once_per_process() {
        let local = Arc::new(Local::default());
        let auth = auth_over(&local);
        auth.create_user(user("a", "pw")).await.unwrap();
        assert_eq!(
            local.proposals.load(Ordering::Relaxed),
            5,
            "/2, users, roles, enabled, a"
        );
        assert_eq!(local.store.read().index(), 5);
        auth.create_user(user("b", "pw")).await.unwrap();
        assert_eq!(local.proposals.load(Ordering::Relaxed), 6);
        // Another process (a restart): it tries again; nothing new is made.
        let again = auth_over(&local);
        again.create_user(user("c", "pw")).await.unwrap();
        assert_eq!(local.proposals.load(Ordering::Relaxed), 11);
        assert_eq!(local.store.read().index(), 7);
        assert_eq!(again.all_users().await.unwrap(), ["a", "b", "c"]);
    }
}
