//! etcd's v2 API: the in-memory key tree and its HTTP+JSON handlers.
//!
//! ```text
//!  curl ──► http (parse form like etcd, 2xx-series errors)
//!             │ GET, HEAD, wait=true ──────────────► store (read lock): get / watch ─► Watcher
//!             │ quorum=true: V2Backend::linearizable, then the same local get       │ events
//!             │ POST/PUT/DELETE: V2Request { .., expiration, time }                ▼
//!             └──► V2Backend::propose ─► raft log ─► every member: request::apply ─► store
//!                                                    (write lock)      │ notify
//!  leader, every 500 ms while store.has_ttl_keys():                    ▼
//!      propose sync_request(now) ─► apply ─► store.delete_expired_keys(now) ─► expire events
//! ```
//!
//! v2 auth (`auth/`) keeps its users, roles and switch in the same store under `/2`,
//! written with the same requests; `request::apply` checks its invariants first.
//!
//! The store never reads the clock: the proposer turns `ttl=` into an absolute expiration
//! and stamps the request with its `time`, so every member applies the same change and
//! renders the same result. [`store::V2Store::save`] and [`store::V2Store::recover`] carry
//! the tree, index and event history through snapshots.

pub mod auth;
pub mod deprecation;
pub mod error;
pub mod format;
pub mod members;
pub mod persist;
pub mod request;
pub mod stats;
pub mod store;
pub mod takeover;

pub use error::{ecode, V2Error};
pub use request::{apply, sync_request, Method, V2Request};
pub use store::{Action, Event, NodeExtern, V2Store, Watcher, KEYS_PREFIX};
