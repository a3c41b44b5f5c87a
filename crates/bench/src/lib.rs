//! chorus-bench: a load generator for etcd's v3 gRPC API, after etcd's `tools/benchmark`
//! (same commands, flags, key scheme and report layout), for chorus and etcd alike.
//!
//! ```text
//!   cli ──> cmd::run ──> conn::ConnConfig::connect   --conns clients, checked before the clock
//!                   │      └─ tls::TlsConnect          TCP + rustls (ALPN h2) for https
//!                   └──> cmd::<command>
//!                          ├─ driver::run            --clients workers, one request in flight
//!                          │    ├─ keys::KeyGen       etcd's varint keys
//!                          │    ├─ rate::RateLimiter  --rate, drift-free token bucket
//!                          │    └─ report::Recorder   per-worker latencies and errors
//!                          └─ output::Output         report::Stats -> etcd's text | JSON
//! ```

pub mod cli;
pub mod cmd;
pub mod conn;
pub mod driver;
pub mod keys;
pub mod latency_log;
pub mod output;
pub mod progress;
pub mod rate;
pub mod report;
pub mod tls;
