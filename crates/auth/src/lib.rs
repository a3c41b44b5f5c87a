//! chorus's auth domain: users, roles, key permissions, the enabled flag and the auth
//! revision (etcd 3.5's `server/auth`), with no dependency on the server. The server calls
//! it from its request handlers and from its apply layer:
//!
//! ```text
//!  client ──token / TLS cert──▶ handler (proposing member)
//!    │  auth_info_from_token(token) ─▶ AuthInfo{username, revision}   (simple token: wait
//!    │  auth_info_from_tls(chain)   ─▶ AuthInfo                        until its index is
//!    │                                                                  applied here)
//!    │  reads:  is_range_permitted(ai, key, end) ─ read lock + binary search ─▶ serve,
//!    │          then check_revision_unchanged(ai)
//!    │  UserAdd / ChangePassword: prepare_*(req) ── bcrypt on a blocking thread ──┐
//!    │  Authenticate: prepare_authenticate(backend, req) ── bcrypt check,         │
//!    │                 16-letter token prefix ─────────────────────────────────────┤
//!    │  header{username, auth_revision} = ai                                       ▼
//!    └──────────────────────────────────────────────────────────────────▶ raft proposal
//!                                                                              │
//!  every member, in log order, inside the apply batch's redb WriteTransaction:  ▼
//!    check_request(AuthInfo::from_header(h), req, leases)   (etcd's auth applier)
//!    apply_request(tx, req, index) ─▶ authUsers / authRoles / auth tables,
//!        revision += 1, permission cache rebuilt, simple token "<prefix>.<index>" kept
//!    ─▶ typed response (the proposer: issue_token(&Authenticated) for Authenticate)
//! ```
//!
//! Apply is deterministic: it reads no clock and draws no random number. Permission checks
//! on the hot path take one read lock and binary-search the user's merged key intervals
//! ([`perm`]). Errors carry etcd's exact texts and gRPC codes ([`AuthError::code`]).
//! Passwords are a redacting newtype ([`Password`]); tokens are logged only as a SHA-256
//! fingerprint.

mod apply;
pub mod check;
pub mod clock;
pub mod command;
pub mod config;
pub mod error;
pub mod password;
pub mod perm;
pub mod persist;
pub mod store;
pub mod tls;
pub mod token;

pub use check::{needs_admin, LeaseKeys, NoLeases};
pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{is_auth_request, AuthResponse};
pub use config::AuthOptions;
pub use error::{AuthError, AuthOptionsError};
pub use password::{hash_password, verify_password, Password, DEFAULT_BCRYPT_COST};
pub use store::{AuthConfig, AuthInfo, AuthStore, Authenticated, ROOT_ROLE, ROOT_USER};
pub use token::{simple_token_index, TokenOptions, TokenProvider};
