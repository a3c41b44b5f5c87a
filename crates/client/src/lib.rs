//! An async client for chorus and etcd, over etcd's v3 gRPC API: what etcd's `clientv3`
//! does, leaner. Used by `chorusctl`, `chorus-bench` and the whole-system tests.
//!
//! ```text
//!   Client (Clone, Send + Sync)
//!     ├─ endpoints[0] ── tonic Channel (lazy, HTTP/2 keep-alive) ──> member 0
//!     ├─ endpoints[1] ── tonic Channel ──────────────────────────────> member 1
//!     └─ current ──┐   a call goes to `current`; if that member is unreachable it moves on
//!                  │   to the next endpoint (reads also on `Unavailable` and on a broken
//!                  │   connection; writes only if the connection could not be made, so a
//!                  └── write is never applied twice); the one that answers becomes current.
//!   get / put / delete / txn / compact ── KV          watch ─────────── Watch (bidi stream)
//!   status / hash_kv ──────────────────── Maintenance lease_* ───────── Lease
//!   member_list ───────────────────────── Cluster     *_client() ────── raw tonic clients
//! ```
//!
//! Responses are etcd's own message types from `chorus_api::etcdserverpb`; errors keep the
//! gRPC status (code and `etcdserver: ...` message) so callers can match on them.
//!
//! ```no_run
//! use chorus_client::{Client, ConnectOptions, GetOptions, PutOptions};
//!
//! # async fn demo() -> chorus_client::Result<()> {
//! let client = Client::connect(&["127.0.0.1:2379"], ConnectOptions::default()).await?;
//! client.put("greeting", "hello", PutOptions::default()).await?;
//! let resp = client
//!     .get("greet", GetOptions { prefix: true, ..Default::default() })
//!     .await?;
//! assert_eq!(resp.kvs[0].value, b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! TLS: `https://` endpoints (and scheme-less ones when [`ConnectOptions::tls`] is set)
//! are dialled through [`tls::TlsConnect`] (rustls, ALPN h2), verifying the server against
//! [`TlsOptions::ca_pem`] or the system's CAs, with an optional client certificate.
//!
//! Authentication: with [`ConnectOptions::credentials`] the client gets a token from
//! `Auth.Authenticate` on connect, sends it as metadata `token` with every call and stream
//! (the raw clients' too), and when a typed call is refused with `etcdserver: invalid auth
//! token` (or `revision of auth store is old`, or `user name is empty`) it authenticates
//! again and repeats the call once, as clientv3 does; raw clients' calls get that through
//! [`Client::with_token_retry`]. A watcher refused at creation for its token is created
//! once more after a new login. Channels dialled elsewhere carry a token through
//! [`TokenSource`]. Neither the password nor the token appears in `Debug` output or logs.
//!
//! ```no_run
//! use chorus_client::{Client, ConnectOptions, Credentials, GetOptions};
//!
//! # async fn demo() -> chorus_client::Result<()> {
//! let opts = ConnectOptions {
//!     credentials: Some(Credentials::new("alice", "s3cret")),
//!     ..ConnectOptions::default()
//! };
//! let client = Client::connect(&["127.0.0.1:2379"], opts).await?; // logs in
//! client.get("/app/config", GetOptions::default()).await?;
//! # Ok(())
//! # }
//! ```

mod auth;
mod client;
mod error;
mod kv;
mod lease;
#[cfg(feature = "prompt")]
pub mod prompt;
pub mod recipes;
pub mod tls;
mod watch;

pub use auth::{
    is_token_refused, AuthChannel, Credentials, TokenInterceptor, TokenSource, TOKEN_METADATA_KEY,
};
pub use client::{Client, ConnectOptions};
pub use error::{messages, with_causes, Error, Result};
pub use kv::{prefix_range_end, Cmp, DeleteOptions, GetOptions, Op, PutOptions, Txn};
pub use lease::{KeepAliveSender, KeepAliveStream};
pub use tls::TlsOptions;
pub use watch::{WatchOptions, WatchStream};

pub use chorus_api::etcdserverpb::compare::CompareResult;
pub use chorus_api::etcdserverpb::range_request::{SortOrder, SortTarget};
/// etcd's message types, re-exported for callers of the typed helpers.
pub use chorus_api::{etcdserverpb as pb, mvccpb};
