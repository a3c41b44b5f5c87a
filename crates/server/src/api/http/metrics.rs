//! `/metrics`: Prometheus text exposition (format 0.0.4) of the metrics etcd users alert
//! on, under etcd's names, plus the Go client's `process_*` collector that tools such as
//! `etcdctl check datascale` read. Every value is read when scraped; nothing here sits on
//! a hot path.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::member::Member;
use chorus_config::ETCD_COMPAT_VERSION;

/// One metric family: `# HELP`, `# TYPE` and its samples.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, "", value);
    }

    fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "counter", help);
        self.sample(name, "", value);
    }

    /// A gauge that is always 1 and carries its value as a label (etcd's version metrics).
    fn info(&mut self, name: &str, help: &str, label: &str, value: &str) {
        self.family(name, "gauge", help);
        self.sample(name, &format!("{label}=\"{value}\""), 1.0);
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

pub async fn metrics(State(member): State<Arc<Member>>) -> Response {
    let body = tokio::task::spawn_blocking(move || render(&member))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

fn render(member: &Member) -> String {
    let mut out = Exposition(String::with_capacity(4096));
    let status = &member.status;
    let kv = member.kv();
    let leader = status.leader();
    out.gauge(
        "etcd_server_has_leader",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        flag(leader != raft::INVALID_ID),
    );
    out.gauge(
        "etcd_server_is_leader",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        flag(status.is_leader.load(Ordering::Acquire)),
    );
    out.gauge(
        "etcd_server_is_learner",
        "Whether or not this member is a learner. 1 if is, 0 otherwise.",
        flag(member.is_learner()),
    );
    out.counter(
        "etcd_server_leader_changes_seen_total",
        "The number of leader changes seen.",
        status.leader_changes.load(Ordering::Acquire) as f64,
    );
    out.family(
        "etcd_server_id",
        "gauge",
        "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
    );
    out.sample(
        "etcd_server_id",
        &format!("server_id=\"{:x}\"", member.id),
        1.0,
    );
    out.info(
        "etcd_server_version",
        "Which version is running. 1 for 'server_version' label with current version.",
        "server_version",
        ETCD_COMPAT_VERSION,
    );
    out.gauge(
        "etcd_server_proposals_committed_total",
        "The total number of consensus proposals committed.",
        status.commit.load(Ordering::Acquire) as f64,
    );
    out.gauge(
        "etcd_server_proposals_applied_total",
        "The total number of consensus proposals applied.",
        member.applied_index() as f64,
    );
    out.gauge(
        "etcd_server_term",
        "The current raft term of this member.",
        status.term() as f64,
    );
    if let Some(quota) = member.limits.quota {
        out.gauge(
            "etcd_server_quota_backend_bytes",
            "Current backend storage quota size in bytes.",
            quota as f64,
        );
    }
    let db_size = kv.backend().refresh_size() as f64;
    for name in [
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_debugging_mvcc_db_total_size_in_bytes",
    ] {
        out.gauge(
            name,
            "Total size of the underlying database physically allocated in bytes.",
            db_size,
        );
    }
    out.gauge(
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "Total size of the underlying database logically in use in bytes.",
        db_size,
    );
    out.gauge(
        "etcd_debugging_mvcc_current_revision",
        "The current revision of store.",
        kv.current_rev() as f64,
    );
    out.gauge(
        "etcd_debugging_mvcc_compact_revision",
        "The revision of the last compaction in store.",
        kv.compact_rev() as f64,
    );
    out.gauge(
        "etcd_debugging_mvcc_keys_total",
        "Total number of keys.",
        kv.index_len() as f64,
    );
    let (synced, unsynced) = member.watch_hub().counts();
    out.gauge(
        "etcd_debugging_mvcc_watcher_total",
        "Total number of watchers.",
        (synced + unsynced) as f64,
    );
    out.gauge(
        "etcd_debugging_mvcc_slow_watcher_total",
        "Total number of unsynced slow watchers.",
        unsynced as f64,
    );
    process_metrics(&mut out);
    out.0
}

/// The `process_*` family of Prometheus' Go client, read from `/proc/self`.
fn process_metrics(out: &mut Exposition) {
    // SAFETY: sysconf and getrlimit only read process-wide values into locals.
    let (ticks, page, max_fds) = unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            Some(lim.rlim_cur as f64)
        } else {
            None
        };
        (
            libc::sysconf(libc::_SC_CLK_TCK) as f64,
            libc::sysconf(libc::_SC_PAGESIZE) as f64,
            max,
        )
    };
    if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ProcStat::parse(&s))
    {
        out.counter(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            (stat.utime + stat.stime) as f64 / ticks,
        );
        out.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            stat.rss_pages as f64 * page,
        );
        out.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            stat.vsize as f64,
        );
        if let Some(boot) = boot_time() {
            out.gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                boot + stat.start_ticks as f64 / ticks,
            );
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        out.gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            dir.count() as f64,
        );
    }
    if let Some(max) = max_fds {
        out.gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max,
        );
    }
}

/// The fields of `/proc/self/stat` the process collector uses.
#[derive(Debug, PartialEq, Eq)]
struct ProcStat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

impl ProcStat {
    /// Fields are counted after the command name, which is in parentheses and may itself
    /// contain spaces and parentheses: split at the last `)`.
    fn parse(s: &str) -> Option<ProcStat> {
        let rest = &s[s.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state); field n is f[n - 3].
        let field = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
        Some(ProcStat {
            utime: field(14)?,
            stime: field(15)?,
            start_ticks: field(22)?,
            vsize: field(23)?,
            rss_pages: field(24)?,
        })
    }
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_after_a_command_with_spaces_and_parens() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 5 0 \
                    12345 987654 321 18446744073709551615";
        assert_eq!(
            ProcStat::parse(line),
            Some(ProcStat {
                utime: 7,
                stime: 3,
                start_ticks: 12345,
                vsize: 987654,
                rss_pages: 321,
            })
        );
        assert_eq!(ProcStat::parse("4242 (x) S 1 2"), None);
    }

    #[test]
    fn exposition_lines() {
        let mut e = Exposition(String::new());
        e.gauge("g", "A gauge.", 1.5);
        e.info("v", "Version.", "server_version", "3.4.0");
        assert_eq!(
            e.0,
            "# HELP g A gauge.\n# TYPE g gauge\ng 1.5\n\
             # HELP v Version.\n# TYPE v gauge\nv{server_version=\"3.4.0\"} 1\n"
        );
    }
}
