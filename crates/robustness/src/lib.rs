//! chorus's robustness suite: real member processes, faults, recorded traffic, and
//! checks of what the clients saw, after etcd's robustness tests and Jepsen.
//!
//! ```text
//!   clients (one request in flight each) ─┐          ┌─ SIGKILL / SIGSTOP / crash points
//!   watchers (resume at last + 1) ────────┼─► members ◄─┤  (FAILPOINTS, `failpoints` feature)
//!   compactor ────────────────────────────┘    ▲  ▲     └─ proxy: blackhole, delay, drop
//!                                              │  └── peer links through the fault proxy
//!   Recorder: every request with invoke/return times and outcome (unknown on timeout)
//!        │
//!        ▼
//!   validate: reference watch history ─► watch guarantees, acknowledged writes, stale reads
//!             operations (unknown puts resolved by the watch history) ─► linearizability
//!             (Wing-Gong-Lowe search against etcd's KV model, bounded: never "ok" unproven)
//!             members' HashKV at the final revision equal
//! ```

pub mod auth_churn;
pub mod cluster;
pub mod faultfs;
pub mod faults;
pub mod history;
pub mod linearizability;
pub mod membership;
pub mod model;
pub mod profile;
pub mod proxy;
pub mod scenario;
pub mod traffic;
pub mod validate;
pub mod watch;
