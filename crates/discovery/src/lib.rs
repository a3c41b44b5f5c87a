//! etcd's three ways for a new cluster's members to find each other instead of being
//! given `--initial-cluster`, and etcdctl's way to find the client endpoints:
//!
//! ```text
//!   --discovery-srv <domain>    srv.rs ── dns.rs (SRV + addresses; system resolver or
//!                                          CHORUS_DNS_RESOLVER=ip:port)
//!       _etcd-server-ssl[-name]._tcp.<domain>, _etcd-server[-name]._tcp.<domain>
//!         ─▶ "name=https://target:port,0=http://...": the initial cluster
//!   --discovery <url>           v2.rs ── http.rs (HTTP/1.1, optional --discovery-proxy)
//!       register <url>/<id>, read <url>/_config/size, watch until full
//!         ─▶ the registrations joined: the initial cluster (token = the URL)
//!   --discovery-token/-endpoints  v3.rs ── chorus_client (v3 API of another cluster)
//!       /_etcd/registry/<token>/_config/size, /_etcd/registry/<token>/members/<id>
//!         ─▶ the registrations joined: the initial cluster (token = the token)
//!   chorusctl --discovery-srv   srv::get_client: _etcd-client-ssl / _etcd-client
//! ```
//!
//! Errors carry etcd's messages ([`DiscoveryError`], [`srv::SrvError`]); the server
//! prefixes them as etcd does (`error setting up initial cluster: ...`, `failed to join
//! discovery cluster (...)`).

pub mod dns;
pub mod error;
mod http;
pub mod srv;
pub mod v2;
pub mod v3;

pub use dns::{Resolver, RESOLVER_ENV};
pub use error::{DiscoveryError, MAX_RETRIES};
