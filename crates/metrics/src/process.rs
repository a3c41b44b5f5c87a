//! The `process_*` collector of Prometheus' Go client and etcd's `os_fd_*`, read from
//! `/proc/self` at scrape.

use crate::exposition::Exposition;

/// The `process_*` family of Prometheus' Go client, read from `/proc/self`.
pub fn render(out: &mut Exposition) {
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
        let open = dir.count() as f64;
        out.gauge("process_open_fds", "Number of open file descriptors.", open);
        out.gauge("os_fd_used", "The number of used file descriptors.", open);
    }
    if let Some(max) = max_fds {
        out.gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max,
        );
        out.gauge("os_fd_limit", "The file descriptor limit.", max);
    }
    if let Some(max) = address_space_limit() {
        out.gauge(
            "process_virtual_memory_max_bytes",
            "Maximum amount of virtual memory available in bytes.",
            max,
        );
    }
}

/// `RLIMIT_AS` (unlimited reads as 2^64-1, as the Go collector reports it).
fn address_space_limit() -> Option<f64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the local struct only.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0 {
        return None;
    }
    Some(lim.rlim_cur as f64)
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
}
