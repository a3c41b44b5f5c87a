//! The `tracing` layer: each event becomes an [`Entry`], is encoded once and written to
//! every sink.

use std::time::SystemTime;

use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;

use crate::encode::{caller_package, encode, short_caller, Entry, Format};
use crate::level::ZapLevel;
use crate::sink::Sink;
use crate::value::{Fields, Value};

/// Writes events as etcd's logger would.
#[derive(Debug)]
pub struct EtcdLayer {
    format: Format,
    sinks: Vec<Sink>,
    /// Targets written as zap's `logger` name (`raft`).
    named: Vec<String>,
}

impl EtcdLayer {
    pub fn new(format: Format, sinks: Vec<Sink>, named: Vec<String>) -> EtcdLayer {
        EtcdLayer {
            format,
            sinks,
            named,
        }
    }

    /// The entry for `event` at `time`.
    fn entry<'a>(&'a self, event: &Event<'_>, time: SystemTime) -> Entry<'a> {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Events bridged from the `log` crate carry their origin as `log.*` fields.
        let mut log_file = None;
        let mut log_line = None;
        fields.fields.retain(|(name, value)| match name.as_str() {
            "log.file" => {
                log_file = Some(value.clone());
                false
            }
            "log.line" => {
                log_line = Some(value.clone());
                false
            }
            n => !n.starts_with("log."),
        });
        let caller = match (meta.file(), log_file) {
            (Some(file), _) => Some(short_caller(file, meta.line().unwrap_or(0))),
            (None, Some(Value::Str(file))) => {
                let line = match log_line {
                    Some(Value::U64(l)) => l as u32,
                    _ => 0,
                };
                Some(short_caller(&file, line))
            }
            _ => None,
        };
        let logger = self
            .named
            .iter()
            .find(|n| n.as_str() == meta.target())
            .map(String::as_str);
        Entry {
            level: ZapLevel::of(meta.level()),
            time,
            logger,
            caller,
            fields,
        }
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for EtcdLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let entry = self.entry(event, SystemTime::now());
        let line = encode(self.format, &entry);
        let package = entry.caller.as_deref().map_or(".", caller_package);
        for sink in &self.sinks {
            sink.write(&line, entry.level, package);
        }
    }
}
