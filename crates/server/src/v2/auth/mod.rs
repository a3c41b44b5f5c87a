//! etcd 3.4's v2 auth (`etcdserver/api/v2auth`): users with bcrypt passwords, roles that
//! grant read and write on key patterns, the built-in `root` role and the `guest` role for
//! requests without credentials, and the switch that turns checking on.
//!
//! ```text
//!  api::v2 (HTTP: /v2/auth/*, checks on /v2/keys and /v2/members)
//!     │ get_user, get_role, auth_enabled ........ local reads of the store (counted in
//!     │ all_users, all_roles                      /v2/stats/store, as etcd's are)
//!     │ create_*, update_*, delete_*, enable ... JSON built here (passwords hashed here,
//!     ▼                                          on a blocking thread) ─▶ Doer::propose
//!  AuthStore (store.rs) ──▶ V2Request PUT/DELETE /2/... ─▶ raft ─▶ every member:
//!                                              request::apply ─▶ guard::check ─▶ V2Store
//!  /2/users/<name>  {"user":..,"password":"$2a$10$..","roles":[..]}
//!  /2/roles/<name>  {"role":..,"permissions":{"kv":{"read":[..],"write":[..]}}}
//!  /2/enabled       true | false
//! ```
//!
//! The records live in the v2 store like any key (so raft replicates them, snapshots and
//! restarts keep them, and they take v2 indexes as in etcd), but `/v2/keys` cannot reach
//! them: its keys are under `/1`.

pub mod error;
pub mod guard;
pub mod json;
pub mod model;
pub mod password;
pub mod store;

pub use error::AuthError;
pub use model::{
    Permissions, Role, RwPermission, User, ENABLED_PATH, GUEST_ROLE, PERMS_PREFIX, ROOT_ROLE,
    ROOT_USER,
};
pub use password::Passwords;
pub use store::{AuthStore, Doer};
