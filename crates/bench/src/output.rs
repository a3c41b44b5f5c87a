//! What a command prints: etcd's text (`-w simple`) or one JSON object (`-w json`).
//!
//! JSON schema (`"schema": "chorus-bench/v1"`), every field always present:
//!
//! ```text
//! {
//!   "schema": "chorus-bench/v1",
//!   "command": "put",                      // the subcommand
//!   "endpoints": ["http://127.0.0.1:2379"],// endpoints dialled (the leader's with --target-leader)
//!   "conns": 1, "clients": 1, "target_leader": false,
//!   "params": { "total": 10000, ... },     // the command's flags, by flag name with '_'
//!   "reports": {                           // one or more, by name (see each command)
//!     "put": {
//!       "total_seconds": 1.23,             // wall time of the run
//!       "requests": 10000,                 // successful requests (or events)
//!       "errors": 0,                       // failed requests (or missing events)
//!       "requests_per_sec": 8130.0,        // requests / total_seconds
//!       "latency_seconds": {               // null when requests == 0; p* null when too few
//!         "fastest", "slowest", "average", "stddev",
//!         "p10", "p25", "p50", "p75", "p90", "p95", "p99", "p99_9"
//!       },
//!       "histogram": [ {"upper_seconds": 0.0001, "count": 12}, ... ],   // 11 buckets
//!       "error_distribution": [ {"error": "rpc error: ...", "count": 3} ]
//!     }
//!   },
//!   "extra": { }                           // command-specific counters (watch: events_expected, ...)
//! }
//! ```

use serde_json::{json, Map, Value};

use crate::report::Stats;

/// One report of a command.
pub struct Section {
    /// Key in the JSON `reports` object.
    pub name: &'static str,
    /// Printed verbatim before the report in text mode (etcd's headings).
    pub heading: String,
    pub stats: Stats,
}

/// A command's whole result.
pub struct Output {
    pub command: &'static str,
    pub params: Value,
    /// Text-mode lines before the reports (etcd's `bench with linearizable range`).
    pub preamble: Vec<String>,
    pub sections: Vec<Section>,
    pub extra: Map<String, Value>,
}

/// Run-wide facts for the JSON header.
pub struct RunInfo {
    pub endpoints: Vec<String>,
    pub conns: usize,
    pub clients: usize,
    pub target_leader: bool,
}

impl Output {
    pub fn new(command: &'static str, params: Value) -> Output {
        Output {
            command,
            params,
            preamble: Vec::new(),
            sections: Vec::new(),
            extra: Map::new(),
        }
    }

    pub fn section(mut self, name: &'static str, heading: impl Into<String>, stats: Stats) -> Self {
        self.sections.push(Section {
            name,
            heading: heading.into(),
            stats,
        });
        self
    }

    pub fn text(&self, precise: bool) -> String {
        let mut s = String::new();
        for line in &self.preamble {
            s.push_str(line);
            s.push('\n');
        }
        for section in &self.sections {
            s.push_str(&section.heading);
            s.push_str(&section.stats.text(precise));
        }
        s
    }

    pub fn json(&self, info: &RunInfo) -> Value {
        let reports: Map<String, Value> = self
            .sections
            .iter()
            .map(|s| (s.name.to_owned(), s.stats.json()))
            .collect();
        json!({
            "schema": "chorus-bench/v1",
            "command": self.command,
            "endpoints": info.endpoints,
            "conns": info.conns,
            "clients": info.clients,
            "target_leader": info.target_leader,
            "params": self.params,
            "reports": reports,
            "extra": self.extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::Recorder;

    #[test]
    fn json_document_shape() {
        let mut r = Recorder::default();
        r.ok(Duration::from_millis(2));
        let mut out = Output::new("range", json!({"total": 1})).section(
            "range",
            "",
            Stats::new(r, Duration::from_secs(1)),
        );
        out.preamble.push("bench with linearizable range".into());
        out.extra.insert("x".into(), json!(1));
        let info = RunInfo {
            endpoints: vec!["127.0.0.1:2379".into()],
            conns: 2,
            clients: 3,
            target_leader: false,
        };
        let v = out.json(&info);
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "clients",
                "command",
                "conns",
                "endpoints",
                "extra",
                "params",
                "reports",
                "schema",
                "target_leader"
            ]
        );
        assert_eq!(v["schema"], "chorus-bench/v1");
        assert_eq!(v["command"], "range");
        assert_eq!(v["conns"], 2);
        assert_eq!(v["clients"], 3);
        assert_eq!(v["reports"]["range"]["requests"], 1);
        assert_eq!(v["extra"]["x"], 1);
        assert!(out
            .text(false)
            .starts_with("bench with linearizable range\n\nSummary:\n"));
    }
}
