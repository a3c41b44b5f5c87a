//! `chorus grpc-proxy start` and `chorus gateway start`: etcd's stateless L7 gRPC proxy
//! and its L4 TCP gateway, for "a chorus on every machine" (docs/proxy.md).
//!
//! ```text
//!  clients (etcdctl, clientv3, chorus-client)
//!     │ gRPC (+ /metrics, /health), TLS optional
//!     ▼
//!  ┌────────────────────────── chorus grpc-proxy ───────────────────────────┐
//!  │ namespace: keys in ──prefix──▶            ◀──strip── keys out          │
//!  │ KV ───────── serializable Range ─▶ Cache (2048, LRU) ◀─ invalidation watch
//!  │ Watch ────── WatchHub: identical watches ─▶ one upstream watch (broadcast)
//!  │ Lease ────── KeepAliveHub: keep-alives of one lease ─▶ one per 500 ms   │
//!  │ Lock, Election ─ forwarded (namespaced); Cluster: proxies in MemberList │
//!  │ Maintenance, Auth ─ forwarded; `token` metadata forwarded everywhere    │
//!  │ register: <resolver-prefix>/<advertise-url> under a lease              │
//!  │ DNS (optional): SkyDNS /skydns/… answered over UDP/TCP (chorus-dns)     │
//!  └─────────── Upstream: one channel per --endpoints, fail-over ───────────┘
//!     ▼
//!  members (chorus or etcd)
//! ```
//!
//! The gateway ([`gateway`]) splices TCP connections to the endpoints round-robin. [`v2`]
//! is etcd 3.4/3.5's v2 HTTP proxy (`chorus --proxy=on|readonly`), started by the root
//! binary instead of a member.
//! Flags are parsed here ([`flags`]), not in `chorus-config`: the root binary hands the
//! arguments after `grpc-proxy` / `gateway` to [`main_grpc_proxy`] / [`main_gateway`].

pub mod broadcast;
pub mod cache;
pub mod cluster;
pub mod concurrency;
pub mod error;
pub mod flags;
pub mod forward;
pub mod gateway;
pub mod kv;
pub mod lease;
pub mod metrics;
pub mod namespace;
pub mod server;
pub mod upstream;
pub mod v2;
pub mod watch;

use clap::Parser;
use tokio::sync::watch as signal_watch;

pub use error::ProxyError;
pub use flags::ProxyConfig;

/// Turns true when the process should stop. Cheap to clone.
#[derive(Clone)]
pub struct Shutdown(pub signal_watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once shutdown has begun (at once if it has).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

/// The shutdown signal: SIGTERM or SIGINT.
fn on_signal() -> Shutdown {
    let (tx, rx) = signal_watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("received a signal; shutting down");
        let _ = tx.send(true);
        // Keep the sender so that receivers see `true`, not a closed channel.
        std::future::pending::<()>().await;
    });
    Shutdown(rx)
}

fn init_logging(debug: bool) {
    let level = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHORUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("chorus-proxy")
        .build()
        .expect("start the tokio runtime")
}

/// Parses `args` (as clap does: `--help` and errors print and exit) for `name`.
fn parse<P: Parser>(name: &str, args: Vec<String>) -> P {
    let argv = std::iter::once(name.to_string()).chain(args);
    P::parse_from(argv)
}

/// `chorus grpc-proxy <args>`: returns the process exit code.
pub fn main_grpc_proxy(args: Vec<String>) -> i32 {
    let cli: flags::GrpcProxyCli = parse("chorus grpc-proxy", args);
    let flags::GrpcProxyCommand::Start(f) = cli.command;
    let cfg = match f.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chorus grpc-proxy: {e}");
            return 1;
        }
    };
    init_logging(cfg.debug);
    runtime().block_on(async move {
        match server::run(cfg, on_signal()).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("chorus grpc-proxy: {e}");
                1
            }
        }
    })
}

/// `chorus gateway <args>`: returns the process exit code.
pub fn main_gateway(args: Vec<String>) -> i32 {
    let cli: flags::GatewayCli = parse("chorus gateway", args);
    let flags::GatewayCommand::Start(f) = cli.command;
    let cfg = match f.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chorus gateway: {e}");
            return 1;
        }
    };
    init_logging(false);
    runtime().block_on(async move {
        match gateway::run(cfg, on_signal()).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("chorus gateway: {e}");
                1
            }
        }
    })
}
