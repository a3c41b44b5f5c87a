//! `--latency-log FILE`: when each successful request started (Unix time, seconds) and
//! how long it took (seconds), one request per line, written when the run ends. For
//! paced loops next to an operation whose effect on latency is wanted at the moment it
//! happens (`scripts/bench-defrag.sh`: the requests sent while a compaction runs), which
//! the run's percentiles mix with the rest.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Cheap to clone; inert unless made with [`LatencyLog::enabled`].
#[derive(Clone, Default)]
pub struct LatencyLog {
    all: Option<Arc<Mutex<Vec<(f64, f64)>>>>,
}

/// One worker's part: kept apart while the worker runs, handed over once at its end.
pub struct WorkerLog {
    /// The run's start as Unix time, and as the monotonic clock read at the same moment.
    origin: (f64, Instant),
    entries: Option<Vec<(f64, f64)>>,
}

impl LatencyLog {
    pub fn enabled() -> LatencyLog {
        LatencyLog {
            all: Some(Arc::default()),
        }
    }

    /// A worker's log for a run that started at `start` (read just before the workers).
    pub fn worker(&self, start: Instant) -> WorkerLog {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
            - start.elapsed().as_secs_f64();
        WorkerLog {
            origin: (unix, start),
            entries: self.all.as_ref().map(|_| Vec::new()),
        }
    }

    /// Takes in a finished worker's entries.
    pub fn add(&self, worker: WorkerLog) {
        if let (Some(all), Some(mine)) = (&self.all, worker.entries) {
            all.lock().expect("latency log").extend(mine);
        }
    }

    /// Writes every entry, in order of start, as `start latency` lines, to `file`
    /// (created before the run, so that a path that cannot be written fails at once).
    pub fn write(&self, file: std::fs::File) -> std::io::Result<()> {
        let mut entries = match &self.all {
            Some(all) => std::mem::take(&mut *all.lock().expect("latency log")),
            None => Vec::new(),
        };
        entries.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = std::io::BufWriter::new(file);
        for (start, latency) in entries {
            writeln!(out, "{start:.6} {latency:.6}")?;
        }
        out.flush()
    }
}

impl WorkerLog {
    /// A successful request sent at `t0` that took `latency`.
    #[inline]
    pub fn ok(&mut self, t0: Instant, latency: Duration) {
        if let Some(entries) = &mut self.entries {
            let since = t0.saturating_duration_since(self.origin.1).as_secs_f64();
            entries.push((self.origin.0 + since, latency.as_secs_f64()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_written_in_order_of_start() {
        let log = LatencyLog::enabled();
        let start = Instant::now();
        let mut late = log.worker(start);
        late.ok(start + Duration::from_secs(2), Duration::from_millis(30));
        let mut early = log.worker(start);
        early.ok(start + Duration::from_secs(1), Duration::from_millis(5));
        log.add(late);
        log.add(early);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        log.write(std::fs::File::create(&path).unwrap()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<(f64, f64)> = text
            .lines()
            .map(|l| {
                let (a, b) = l.split_once(' ').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect();
        assert_eq!(rows.len(), 2);
        assert!((rows[1].0 - rows[0].0 - 1.0).abs() < 1e-3, "{rows:?}");
        assert_eq!((rows[0].1, rows[1].1), (0.005, 0.03));
    }

    #[test]
    fn a_log_not_enabled_keeps_nothing() {
        let log = LatencyLog::default();
        let mut w = log.worker(Instant::now());
        w.ok(Instant::now(), Duration::from_millis(1));
        assert!(w.entries.is_none());
    }
}
