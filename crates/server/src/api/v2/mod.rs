//! The v2 API's HTTP side: handlers for `/v2/keys`, `/v2/members`, `/v2/stats/*`,
//! `/v2/machines` (`http.rs`) and `/v2/auth/*` (`auth.rs`), with etcd's v2 auth checks
//! (`access.rs`), over the [`V2Backend`] they need, implemented by the member
//! (`member.rs`) and, for tests and examples, by an in-process store (`local.rs`). The
//! store itself, v2 auth's records included, is `crate::v2`. With
//! `--experimental-enable-v2v3`, `/v2/keys` is served from the v3 keyspace instead
//! (`v3store/`).
//!
//! ```text
//!  router ── V2State { backend, auth } ──┬ keys, members ─▶ access checks ─▶ V2Backend
//!                                        ├ auth/* ────────▶ AuthStore ─────▶ (Doer = V2Backend)
//!                                        └ stats, machines ─────────────────▶ V2Backend
//! ```

pub mod access;
pub mod auth;
mod form;
pub mod http;
pub mod local;
pub mod member;
pub mod v3store;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::any;
use axum::Router;
use futures::future::BoxFuture;
use parking_lot::RwLock;

pub use http::{MemberError, MemberInfo, V2Backend, V2Headers};

use crate::v2::auth::{AuthStore, Doer, Passwords};
use crate::v2::{Event, V2Error, V2Request, V2Store};
use v3store::V3Store;

/// What every v2 handler may use: the member, and this listener's v2 auth store (etcd
/// builds one per client handler too).
#[derive(Clone)]
struct V2State {
    backend: Arc<dyn V2Backend>,
    auth: Arc<AuthStore>,
    /// `--experimental-enable-v2v3`: the keys live in the v3 keyspace instead.
    v3: Option<Arc<V3Store>>,
}

impl FromRef<V2State> for Option<Arc<V3Store>> {
    fn from_ref(s: &V2State) -> Self {
        s.v3.clone()
    }
}

impl FromRef<V2State> for Arc<dyn V2Backend> {
    fn from_ref(s: &V2State) -> Self {
        s.backend.clone()
    }
}

impl FromRef<V2State> for Arc<AuthStore> {
    fn from_ref(s: &V2State) -> Self {
        s.auth.clone()
    }
}

/// The auth store reads and writes through the member like the keys handlers do.
struct BackendDoer(Arc<dyn V2Backend>);

impl Doer for BackendDoer {
    fn store(&self) -> Arc<RwLock<V2Store>> {
        self.0.store()
    }

    fn linearizable(&self) -> BoxFuture<'static, Result<(), V2Error>> {
        self.0.linearizable()
    }

    fn propose(&self, req: V2Request) -> BoxFuture<'static, Result<Event, V2Error>> {
        self.0.propose(req)
    }
}

/// The v2 routes, passwords hashed as etcd 3.4 does (bcrypt cost 10). Merge into the
/// client router (when `--enable-v2` is set, as etcd only serves them then); unknown
/// paths fall through to its 404.
pub fn router(backend: Arc<dyn V2Backend>, v3: Option<Arc<V3Store>>) -> Router {
    router_with(backend, Passwords::default(), v3)
}

/// [`router`] with another password hasher (tests use bcrypt's minimum cost).
pub fn router_with(
    backend: Arc<dyn V2Backend>,
    passwords: Passwords,
    v3: Option<Arc<V3Store>>,
) -> Router {
    let auth = Arc::new(AuthStore::new(
        Arc::new(BackendDoer(backend.clone())),
        passwords,
    ));
    Router::new()
        .route(http::KEYS_PATH, any(http::keys))
        .route("/v2/keys/", any(http::keys))
        .route("/v2/keys/{*rest}", any(http::keys))
        .route(http::MEMBERS_PATH, any(http::members))
        .route("/v2/members/", any(http::members))
        .route("/v2/members/{*rest}", any(http::members))
        .route("/v2/machines", any(http::machines))
        .route("/v2/stats/store", any(http::stats_store))
        .route("/v2/stats/self", any(http::stats_self))
        .route("/v2/stats/leader", any(http::stats_leader))
        .route("/v2/auth/enable", any(auth::enable))
        .route("/v2/auth/users", any(auth::users))
        .route("/v2/auth/users/", any(auth::users))
        .route("/v2/auth/users/{*rest}", any(auth::users))
        .route("/v2/auth/roles", any(auth::roles))
        .route("/v2/auth/roles/", any(auth::roles))
        .route("/v2/auth/roles/{*rest}", any(auth::roles))
        .layer(DefaultBodyLimit::disable())
        .with_state(V2State { backend, auth, v3 })
}
