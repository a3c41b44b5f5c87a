//! chorus server: an etcd-compatible member.
//!
//! ```text
//!            client port (gRPC + HTTP/1.1)                 peer port (peerpb.Raft)
//!   grpc/{kv,maintenance,cluster}  http/                     transport
//!              │  validate, propose / read                     │  Step / Report*
//!              ▼                                               ▼
//!          server::Server ── propose ──► raft thread (raft/) ◄──┘
//!              ▲   ReadIndex (batched)      │ WAL append + fdatasync, messages out
//!              │                            ▼ committed entries, in order
//!              └──── Wait ◄──────────── apply thread (apply/) ──► storage::mvcc / backend
//! ```
//! Start with [`run`], which takes a validated [`config::Config`].

pub mod alarm;
pub mod apply;
pub mod compactor;
pub mod concurrency;
pub mod config;
pub mod error;
pub mod grpc;
pub mod http;
pub mod lease;
pub mod mailbox;
pub mod membership;
pub mod notify;
pub mod raft;
pub mod reconfig;
pub mod serve;
pub mod server;
pub mod snapshot;
pub mod tls;
pub mod transport;
pub mod v2;
pub mod wait;
pub mod watch;

/// Runs a member until SIGINT or SIGTERM: recovers or bootstraps it, serves clients on
/// every `--listen-client-urls` address and stops cleanly.
pub async fn run(cfg: config::Config) -> Result<(), String> {
    // Check certificates and bind first, so that a bad file or a busy port fails start-up
    // before anything is written.
    let tls = tls::MemberTls::from_config(&cfg)?;
    let listeners = serve::bind_listeners(
        "--listen-client-urls",
        &cfg.listen_client_urls,
        tls.client.is_some(),
    )
    .await?;
    let metrics_listeners = serve::bind_listeners(
        "--listen-metrics-urls",
        &cfg.listen_metrics_urls,
        tls.client.is_some(),
    )
    .await?;
    let running = server::start(&cfg, &tls).await.map_err(|e| e.to_string())?;
    let server = running.server.clone();
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (url, listener) in listeners {
        tracing::info!("serving client requests on {url}");
        tasks.push(tokio::spawn(serve::serve_clients(
            server.clone(),
            listener,
            tls.client.clone(),
            shutdown_rx.clone(),
        )));
    }
    for (url, listener) in metrics_listeners {
        tracing::info!("serving metrics on {url}");
        let service = serve::RouterService(http::metrics_router(server.clone()));
        let tls = url.is_tls().then(|| tls.client.clone()).flatten();
        tasks.push(tokio::spawn(serve::serve_listener(
            listener,
            service,
            tls,
            None,
            shutdown_rx.clone(),
        )));
    }
    let client_urls = cfg
        .advertise_client_urls
        .iter()
        .map(|u| u.to_string())
        .collect();
    tokio::spawn(server::publish_attributes(server.clone(), client_urls));
    let policy = cfg.auto_compaction().map_err(|e| e.to_string())?;
    let auto_compaction = tokio::spawn(compactor::run(policy, server.clone()));
    tokio::select! {
        _ = wait_for_signal() => tracing::info!("received signal, shutting down"),
        _ = server.wait_removed() => {
            tracing::warn!("the member has been permanently removed from the cluster; shutting down");
        }
    }
    let _ = notify::notify("STOPPING=1");
    // Stop accepting and let in-flight requests finish, then hand leadership over.
    let _ = shutdown_tx.send(true);
    auto_compaction.abort();
    for t in tasks {
        let _ = t.await;
    }
    server.transfer_leadership_away().await;
    drop(server);
    tokio::task::spawn_blocking(move || running.shutdown())
        .await
        .map_err(|e| e.to_string())?
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The process-wide `tracing` subscriber from `--log-level` (etcd's levels; `dpanic`,
/// `panic` and `fatal` log errors only; `--debug` means debug), `--logger` (`zap`: JSON
/// lines, `capnslog`: text) and `--log-outputs` (`default`/`stderr`, `stdout`, or files,
/// appended to). `RUST_LOG` overrides the level for debugging.
pub fn init_logging(cfg: &config::Config) -> Result<(), String> {
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
    let level = match cfg.log_level.as_str() {
        _ if cfg.debug => "debug",
        "dpanic" | "panic" | "fatal" => "error",
        other => other,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let mut writer: Option<BoxMakeWriter> = None;
    for out in &cfg.log_outputs {
        let w = match out.as_str() {
            "default" | "stderr" => BoxMakeWriter::new(std::io::stderr),
            "stdout" => BoxMakeWriter::new(std::io::stdout),
            "systemd/journal" => {
                return Err("--log-outputs=systemd/journal is not implemented yet in chorus (see docs/compatibility.md)".into())
            }
            path => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open log output {path}: {e}"))?;
                BoxMakeWriter::new(std::sync::Mutex::new(file))
            }
        };
        writer = Some(match writer {
            None => w,
            Some(prev) => BoxMakeWriter::new(prev.and(w)),
        });
    }
    let writer = writer.unwrap_or_else(|| BoxMakeWriter::new(std::io::stderr));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let _ = if cfg.logger == "zap" {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
    Ok(())
}
