//! raft-rs logs through `slog`; this drain forwards its records to `tracing`, as etcd's
//! raft lines read: `<member id> <message>` (`8e9e05c52164694d became leader at term 2`),
//! then the record's other values (`key=value`) not already in the message.

use std::fmt::Write as _;

use slog::{Drain, Level, OwnedKVList, Record, KV};

struct TracingDrain;

/// The values to append, and the member id to put first.
struct Fields<'a> {
    msg: &'a str,
    text: String,
    member: String,
}

impl slog::Serializer for Fields<'_> {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let val = val.to_string();
        let in_msg = self
            .msg
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == val);
        match key {
            "member" => self.member = val,
            "raft_id" => {}
            _ if in_msg => {}
            _ => {
                let _ = write!(self.text, " {key}={val}");
            }
        }
        Ok(())
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let msg = record.msg().to_string();
        let mut f = Fields {
            msg: &msg,
            text: String::new(),
            member: String::new(),
        };
        let _ = record.kv().serialize(record, &mut f);
        let _ = values.serialize(record, &mut f);
        let (id, text) = (f.member, f.text);
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "raft", "{id} {msg}{text}"),
            Level::Warning => tracing::warn!(target: "raft", "{id} {msg}{text}"),
            Level::Info => tracing::info!(target: "raft", "{id} {msg}{text}"),
            Level::Debug => tracing::debug!(target: "raft", "{id} {msg}{text}"),
            Level::Trace => tracing::trace!(target: "raft", "{id} {msg}{text}"),
        }
        Ok(())
    }
}

/// A slog logger for raft-rs whose output goes to `tracing` under the `raft` target.
pub fn logger(member_id: u64) -> slog::Logger {
    slog::Logger::root(
        TracingDrain.fuse(),
        slog::o!("member" => format!("{member_id:x}")),
    )
}
