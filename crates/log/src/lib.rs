//! chorus's logs as etcd writes them, so that operators, log shippers and test harnesses
//! that key on etcd's lines keep working.
//!
//! ```text
//!  tracing::info!(local_member_id = %id, "published local member to cluster through raft")
//!     │  (RUST_LOG, or --log-level with dependencies held at info)
//!     ▼
//!  EtcdLayer ── Fields: msg + fields in order, `_` -> `-`, Strings -> JSON arrays
//!     │         Entry: level, ts (local zone, ms), logger (named targets), caller
//!     ▼
//!  encode ── zap JSON  {"level":"info","ts":"2026-12-06T13:09:01.387Z","caller":"server/lib.rs:93","msg":"...","local-member-id":"8e9e05c52164694d"}
//!         ── zap console (--log-format=console), capnslog text (--logger=capnslog)
//!     ▼
//!  sinks ── stderr | stdout | file (append) | RotatingFile (lumberjack) | journald datagram
//! ```
//!
//! [`init`] installs it for the process from a [`LogConfig`]; [`LogConfig::from_flags`]
//! reads etcd's flag values.

mod encode;
mod gojson;
mod journal;
mod layer;
mod level;
mod rotation;
mod sink;
mod time;
mod value;

use std::path::PathBuf;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

pub use encode::{short_caller, Format};
pub use journal::{JournalSink, JournalUnavailable, JOURNAL_SOCKET};
pub use layer::EtcdLayer;
pub use level::{UnknownLevel, ZapLevel};
pub use rotation::{
    check_rotation_outputs, RotatingFile, RotationConfig, RotationConfigError,
    DEFAULT_ROTATION_CONFIG_JSON,
};
pub use sink::{OpenError, Output, Sink};
pub use time::{go_duration, GoDuration};
pub use value::{field_name, Strings};

/// Dependencies whose debug events are not chorus's: held at `info` under
/// `--log-level=debug` (etcd's debug lines are its own too). `RUST_LOG` lifts this.
const QUIET_TARGETS: [&str; 10] = [
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "axum",
    "rustls",
    "tokio_util",
    "mio",
    "want",
];

/// Everything the logger needs, from etcd's logging flags.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub format: Format,
    pub level: ZapLevel,
    pub outputs: Vec<Output>,
    /// `Some` with `--enable-log-rotation`: the one file output is rotated.
    pub rotation: Option<RotationConfig>,
    /// `tracing` targets written as zap's `logger` name (`raft`).
    pub named_targets: Vec<String>,
    /// journald's socket (tests use their own).
    pub journal_socket: PathBuf,
    /// An `EnvFilter` directive that replaces the level (from `RUST_LOG`).
    pub directives: Option<String>,
}

/// The logging flags as etcd takes them.
#[derive(Debug, Clone, Copy)]
pub struct LogFlags<'a> {
    /// `--logger`: `zap` or `capnslog`.
    pub logger: &'a str,
    /// `--log-format` (`json`, `console`, or empty for json).
    pub format: &'a str,
    /// `--log-level`.
    pub level: &'a str,
    /// `--log-outputs`.
    pub outputs: &'a [String],
    /// `--enable-log-rotation`.
    pub enable_rotation: bool,
    /// `--log-rotation-config-json`.
    pub rotation_json: &'a str,
}

/// Why logging could not be set up: etcd's messages (it reports them as `failed to
/// verify flags`).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Level(#[from] UnknownLevel),
    #[error("unknown log format: {0}, supported values json, console")]
    Format(String),
    #[error(transparent)]
    Rotation(#[from] RotationConfigError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Journal(#[from] JournalUnavailable),
}

impl From<sink::SinkError> for LogError {
    fn from(e: sink::SinkError) -> Self {
        match e {
            sink::SinkError::Open(e) => LogError::Open(e),
            sink::SinkError::Journal(e) => LogError::Journal(e),
        }
    }
}

impl LogConfig {
    /// Reads etcd's flag values (already checked by the configuration for what does not
    /// need the file system), with `RUST_LOG` as `directives`.
    pub fn from_flags(flags: &LogFlags<'_>) -> Result<LogConfig, LogError> {
        let format = match (flags.logger, flags.format) {
            ("capnslog", _) => Format::Capnslog,
            (_, "json" | "") => Format::Json,
            (_, "console") => Format::Console,
            (_, other) => return Err(LogError::Format(other.to_string())),
        };
        let rotation = if flags.enable_rotation {
            check_rotation_outputs(flags.outputs)?;
            Some(RotationConfig::from_json(flags.rotation_json)?)
        } else {
            None
        };
        let outputs = match flags.outputs {
            [] => vec![Output::Stderr],
            given => given.iter().map(|o| Output::parse(o)).collect(),
        };
        Ok(LogConfig {
            format,
            level: ZapLevel::parse(flags.level)?,
            outputs,
            rotation,
            named_targets: Vec::new(),
            journal_socket: PathBuf::from(JOURNAL_SOCKET),
            directives: std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty()),
        })
    }

    /// The layer with its filter, ready to put on a registry.
    pub fn layer<S>(&self) -> Result<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>, LogError>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let sinks = sink::open_sinks(&self.outputs, self.rotation.as_ref(), &self.journal_socket)?;
        let layer = EtcdLayer::new(self.format, sinks, self.named_targets.clone());
        if let Some(d) = &self.directives {
            if let Ok(filter) = tracing_subscriber::EnvFilter::try_new(d) {
                return Ok(layer.with_filter(filter).boxed());
            }
        }
        let level = self.level.filter();
        let quiet = level.min(LevelFilter::INFO);
        let targets = tracing_subscriber::filter::Targets::new()
            .with_default(level)
            .with_targets(QUIET_TARGETS.iter().map(|t| (*t, quiet)));
        Ok(layer.with_filter(targets).boxed())
    }
}

/// Installs the process-wide logger (once; later calls change nothing). Events of the
/// `log` crate are bridged in.
pub fn init(cfg: &LogConfig) -> Result<(), LogError> {
    let layer = cfg.layer()?;
    if tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .is_ok()
    {
        let _ = ACTIVE_FORMAT.set(cfg.format);
    }
    Ok(())
}

static ACTIVE_FORMAT: std::sync::OnceLock<Format> = std::sync::OnceLock::new();

/// The line layout [`init`] installed (zap JSON before that, or without it): for the few
/// lines etcd 3.4 and 3.5 word differently, not only lay out differently.
pub fn active_format() -> Format {
    ACTIVE_FORMAT.get().copied().unwrap_or(Format::Json)
}

#[cfg(test)]
mod tests;
