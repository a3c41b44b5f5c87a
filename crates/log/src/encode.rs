//! One event to one line, in the three layouts etcd has written:
//!
//! ```text
//! json      {"level":"info","ts":"2026-12-06T13:09:01.387Z","logger":"raft","caller":"raft/logger.rs:31","msg":"...","term":2}
//! console   2026-12-06T13:09:01.387Z<TAB>info<TAB>raft<TAB>raft/logger.rs:31<TAB>...<TAB>{"term": 2}
//! capnslog  2026-12-06 13:09:01.387654 I | raft: ... term=2
//! ```
//!
//! `json` and `console` are zap's encoders with etcd's `DefaultZapLoggerConfig` (keys
//! `level`, `ts`, `logger`, `caller`, `msg`; lower-case levels; ISO 8601 local time with
//! milliseconds; short callers); `logger` appears only for named loggers (raft's).

use std::time::SystemTime;

use crate::level::ZapLevel;
use crate::time::Civil;
use crate::value::{push_json_str, Fields};

/// The line layout: `--log-format` for `--logger=zap`, or 3.4's capnslog text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Console,
    Capnslog,
}

/// What one event becomes before it is encoded.
#[derive(Debug)]
pub struct Entry<'a> {
    pub level: ZapLevel,
    pub time: SystemTime,
    /// zap's logger name (`raft`), if the event comes from a named logger.
    pub logger: Option<&'a str>,
    /// `dir/file.rs:line`, see [`short_caller`].
    pub caller: Option<String>,
    pub fields: Fields,
}

/// zap's `ShortCallerEncoder` for a Rust path: the file and its directory, where a
/// crate's `src` is replaced by the crate's directory name
/// (`crates/server/src/lib.rs` -> `server/lib.rs`,
/// `crates/server/src/api/grpc/kv.rs` -> `grpc/kv.rs`, `.../raft-0.7.0/src/raft.rs` ->
/// `raft-0.7.0/raft.rs`).
pub fn short_caller(file: &str, line: u32) -> String {
    let parts: Vec<&str> = file.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let short = match parts.as_slice() {
        [.., krate, "src", name] => format!("{krate}/{name}"),
        [.., dir, name] => format!("{dir}/{name}"),
        [name] => (*name).to_string(),
        [] => String::new(),
    };
    format!("{short}:{line}")
}

/// The package a caller names (`server/lib.rs:93` -> `server`): capnslog's package and
/// journald's `PACKAGE` (etcd: `filepath.Dir(caller)`).
pub fn caller_package(caller: &str) -> &str {
    match caller.rfind('/') {
        Some(i) => &caller[..i],
        None => ".",
    }
}

/// The line for `entry`, with its `\n`.
pub fn encode(format: Format, entry: &Entry<'_>) -> String {
    match format {
        Format::Json => json(entry),
        Format::Console => console(entry),
        Format::Capnslog => capnslog(entry),
    }
}

fn json(e: &Entry<'_>) -> String {
    let mut out = String::with_capacity(128 + e.fields.message.len());
    out.push_str("{\"level\":\"");
    out.push_str(e.level.as_str());
    out.push_str("\",\"ts\":\"");
    out.push_str(&Civil::local(e.time).iso8601());
    out.push('"');
    if let Some(name) = e.logger {
        out.push_str(",\"logger\":");
        push_json_str(&mut out, name);
    }
    if let Some(caller) = &e.caller {
        out.push_str(",\"caller\":");
        push_json_str(&mut out, caller);
    }
    out.push_str(",\"msg\":");
    push_json_str(&mut out, &e.fields.message);
    for (name, value) in &e.fields.fields {
        out.push(',');
        push_json_str(&mut out, name);
        out.push(':');
        value.push_json(&mut out, false);
    }
    out.push_str("}\n");
    out
}

fn console(e: &Entry<'_>) -> String {
    let mut out = Civil::local(e.time).iso8601();
    out.push('\t');
    out.push_str(e.level.as_str());
    for part in [e.logger, e.caller.as_deref()].into_iter().flatten() {
        out.push('\t');
        out.push_str(part);
    }
    out.push('\t');
    out.push_str(&e.fields.message);
    if !e.fields.fields.is_empty() {
        out.push_str("\t{");
        for (i, (name, value)) in e.fields.fields.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_json_str(&mut out, name);
            out.push_str(": ");
            value.push_json(&mut out, true);
        }
        out.push('}');
    }
    out.push('\n');
    out
}

fn capnslog(e: &Entry<'_>) -> String {
    let package = match (e.logger, e.caller.as_deref()) {
        (Some(name), _) => name,
        (None, Some(caller)) => caller_package(caller),
        (None, None) => "chorus",
    };
    let mut out = format!(
        "{} {} | {package}: {}",
        Civil::local(e.time).capnslog(),
        e.level.capnslog_char(),
        e.fields.message
    );
    for (name, value) in &e.fields.fields {
        out.push(' ');
        out.push_str(name);
        out.push('=');
        value.push_text(&mut out);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;
    use std::time::{Duration, UNIX_EPOCH};

    fn entry(logger: Option<&'static str>, fields: Vec<(&str, Value)>) -> Entry<'static> {
        Entry {
            level: ZapLevel::Info,
            time: UNIX_EPOCH + Duration::new(1_796_566_141, 387_000_000),
            logger,
            caller: Some(short_caller("crates/server/src/lib.rs", 93)),
            fields: Fields {
                message: "serving client traffic insecurely; this is strongly discouraged!".into(),
                fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            },
        }
    }

    /// The timestamp part depends on the machine's zone: compare the rest.
    fn without_ts(line: &str, ts_end: &str) -> String {
        let start = line.find("2026-12-06").expect("ts");
        let end = line[start..].find(ts_end).expect("ts end") + start;
        format!("{}<ts>{}", &line[..start], &line[end..])
    }

    #[test]
    fn json_lines_have_etcds_keys_in_zaps_order() {
        let e = entry(None, vec![("address", Value::Str("127.0.0.1:2379".into()))]);
        let line = encode(Format::Json, &e);
        assert_eq!(
            without_ts(&line, "\","),
            "{\"level\":\"info\",\"ts\":\"<ts>\",\"caller\":\"server/lib.rs:93\",\"msg\":\"serving client traffic insecurely; this is strongly discouraged!\",\"address\":\"127.0.0.1:2379\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["address"], "127.0.0.1:2379");
    }

    #[test]
    fn named_loggers_come_between_ts_and_caller() {
        let line = encode(Format::Json, &entry(Some("raft"), vec![]));
        let v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v.len(), 5);
        assert_eq!(v["logger"], "raft");
        let pos = |k: &str| line.find(&format!("\"{k}\":")).expect(k);
        assert!(pos("level") < pos("ts") && pos("ts") < pos("logger"));
        assert!(pos("logger") < pos("caller") && pos("caller") < pos("msg"));
    }

    #[test]
    fn console_lines_are_tab_separated_with_spaced_json_fields() {
        let e = entry(
            Some("raft"),
            vec![
                ("address", Value::Str("127.0.0.1:2379".into())),
                ("urls", Value::Strings(vec!["a".into(), "b".into()])),
                ("term", Value::U64(2)),
            ],
        );
        let line = encode(Format::Console, &e);
        assert_eq!(
            without_ts(&line, "\t"),
            "<ts>\tinfo\traft\tserver/lib.rs:93\tserving client traffic insecurely; this is strongly discouraged!\t{\"address\": \"127.0.0.1:2379\", \"urls\": [\"a\", \"b\"], \"term\": 2}\n"
        );
        let bare = encode(Format::Console, &entry(None, vec![]));
        assert!(bare.ends_with("\tinfo\tserver/lib.rs:93\tserving client traffic insecurely; this is strongly discouraged!\n"), "{bare}");
    }

    #[test]
    fn capnslog_lines_name_the_package() {
        let e = entry(None, vec![("address", Value::Str("127.0.0.1:2379".into()))]);
        let line = encode(Format::Capnslog, &e);
        assert_eq!(
            without_ts(&line, " I |"),
            "<ts> I | server: serving client traffic insecurely; this is strongly discouraged! address=127.0.0.1:2379\n"
        );
    }

    #[test]
    fn callers_are_short() {
        assert_eq!(
            short_caller("crates/server/src/lib.rs", 9),
            "server/lib.rs:9"
        );
        assert_eq!(
            short_caller("crates/server/src/api/grpc/kv.rs", 1),
            "grpc/kv.rs:1"
        );
        assert_eq!(short_caller("src/main.rs", 40), "src/main.rs:40");
        assert_eq!(
            short_caller("/root/.cargo/registry/src/x/raft-0.7.0/src/raft.rs", 5),
            "raft-0.7.0/raft.rs:5"
        );
        assert_eq!(short_caller("lib.rs", 1), "lib.rs:1");
        assert_eq!(caller_package("server/lib.rs:93"), "server");
        assert_eq!(caller_package("lib.rs:1"), ".");
    }
}
