//! Latency statistics and their two renderings: etcd's text layout (`pkg/report`) and one
//! JSON object per report.
//!
//! ```text
//!   worker 0 ── Recorder { lats, errors } ─┐
//!   worker 1 ── Recorder ──────────────────┼─ merge ─> Stats::new(recorder, wall time)
//!   worker n ── Recorder ──────────────────┘             ├─ text()  etcd's layout
//!                                                       └─ json()  stable field names
//! ```
//!
//! Each worker records into its own [`Recorder`] (a `Vec` sized up front, no locks and no
//! channel on the hot path); they are merged once the run is over.
//!
//! Definitions, as etcd's `pkg/report`:
//! - `total` is the wall time of the run; `requests_per_sec` = successful requests / total.
//! - average and stddev are over successful requests; stddev is the population one
//!   (divides by n).
//! - percentile p is the smallest latency at sorted index i with `i * 100 / n >= p` (etcd's
//!   rule; etcd additionally moves to the next index after each match, which only differs
//!   when n < ~110, and leaves 99.9 out when n < 1000, which we do too: `None`).
//! - the histogram has 11 buckets: upper bounds `fastest + i * (slowest - fastest) / 10`
//!   for i in 0..10, then `slowest`; each latency counts in the first bucket whose upper
//!   bound is >= it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

/// Percentiles reported, as etcd's `pctls`.
pub const PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

/// JSON names of [`PERCENTILES`].
pub const PERCENTILE_NAMES: [&str; 8] = ["p10", "p25", "p50", "p75", "p90", "p95", "p99", "p99_9"];

/// Number of histogram buckets etcd uses (plus the last one at `slowest`).
const BUCKETS: usize = 10;

const BAR_CHAR: &str = "∎";

/// Results of one worker (or several, merged): latencies of successful requests and a
/// count per error message.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    lats: Vec<Duration>,
    errors: HashMap<String, u64>,
}

impl Recorder {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            lats: Vec::with_capacity(n),
            errors: HashMap::new(),
        }
    }

    /// A successful request that took `latency`.
    #[inline]
    pub fn ok(&mut self, latency: Duration) {
        self.lats.push(latency);
    }

    /// A failed request (counted, not timed), keyed by its message.
    pub fn error(&mut self, message: impl Into<String>) {
        *self.errors.entry(message.into()).or_default() += 1;
    }

    /// `count` failures with the same message.
    pub fn errors(&mut self, message: impl Into<String>, count: u64) {
        if count > 0 {
            *self.errors.entry(message.into()).or_default() += count;
        }
    }

    pub fn successes(&self) -> usize {
        self.lats.len()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, other: Recorder) {
        if self.lats.is_empty() {
            self.lats = other.lats;
        } else {
            self.lats.extend_from_slice(&other.lats);
        }
        for (message, count) in other.errors {
            *self.errors.entry(message).or_default() += count;
        }
    }

    pub fn merged(recorders: impl IntoIterator<Item = Recorder>) -> Recorder {
        let mut all = Recorder::default();
        for r in recorders {
            all.merge(r);
        }
        all
    }
}

/// A gRPC error as Go's grpc prints it (`rpc error: code = Unavailable desc = ...`), so
/// the error distribution reads like etcd's benchmark's.
pub fn status_message(status: &tonic::Status) -> String {
    format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    )
}

/// One finished report: the numbers etcd's benchmark prints.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Wall time of the run.
    pub total: Duration,
    /// Latencies of successful requests in seconds, sorted.
    pub lats: Vec<f64>,
    /// (message, count), most frequent first.
    pub errors: Vec<(String, u64)>,
    pub fastest: f64,
    pub slowest: f64,
    pub average: f64,
    pub stddev: f64,
    /// Successful requests per second of wall time.
    pub rps: f64,
}

impl Stats {
    pub fn new(recorder: Recorder, total: Duration) -> Stats {
        let mut lats: Vec<f64> = recorder.lats.iter().map(Duration::as_secs_f64).collect();
        lats.sort_by(f64::total_cmp);
        let n = lats.len();
        let (mut average, mut stddev, mut fastest, mut slowest) = (0.0, 0.0, 0.0, 0.0);
        if n > 0 {
            average = lats.iter().sum::<f64>() / n as f64;
            stddev = (lats
                .iter()
                .map(|l| (l - average) * (l - average))
                .sum::<f64>()
                / n as f64)
                .sqrt();
            fastest = lats[0];
            slowest = lats[n - 1];
        }
        let secs = total.as_secs_f64();
        let rps = if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let mut errors: Vec<(String, u64)> = recorder.errors.into_iter().collect();
        errors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Stats {
            total,
            lats,
            errors,
            fastest,
            slowest,
            average,
            stddev,
            rps,
        }
    }

    pub fn successes(&self) -> u64 {
        self.lats.len() as u64
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().map(|(_, c)| c).sum()
    }

    /// The value at each of [`PERCENTILES`]; `None` where there are too few samples.
    pub fn percentiles(&self) -> [Option<f64>; 8] {
        percentiles(&self.lats)
    }

    /// (upper bound, count) of etcd's 11 buckets; empty when there is no latency.
    pub fn histogram(&self) -> Vec<(f64, u64)> {
        if self.lats.is_empty() {
            return Vec::new();
        }
        let step = (self.slowest - self.fastest) / BUCKETS as f64;
        let mut buckets: Vec<(f64, u64)> = (0..BUCKETS)
            .map(|i| (self.fastest + step * i as f64, 0))
            .collect();
        buckets.push((self.slowest, 0));
        let mut b = 0;
        for &lat in &self.lats {
            while lat > buckets[b].0 && b < BUCKETS {
                b += 1;
            }
            buckets[b].1 += 1;
        }
        buckets
    }

    /// etcd's text layout; `precise` is etcd's `--precise` (`%g` instead of `%4.4f`).
    pub fn text(&self, precise: bool) -> String {
        let num = |v: f64| {
            if precise {
                format!("{v}")
            } else {
                format!("{v:4.4}")
            }
        };
        let secs = |v: f64| format!("{} secs", num(v));
        let mut s = String::new();
        if !self.lats.is_empty() {
            s.push_str("\nSummary:\n");
            let _ = writeln!(s, "  Total:\t{}.", secs(self.total.as_secs_f64()));
            let _ = writeln!(s, "  Slowest:\t{}.", secs(self.slowest));
            let _ = writeln!(s, "  Fastest:\t{}.", secs(self.fastest));
            let _ = writeln!(s, "  Average:\t{}.", secs(self.average));
            let _ = writeln!(s, "  Stddev:\t{}.", secs(self.stddev));
            let _ = writeln!(s, "  Requests/sec:\t{}", num(self.rps));

            s.push_str("\nResponse time histogram:\n");
            let histogram = self.histogram();
            let max = histogram.iter().map(|b| b.1).max().unwrap_or(0);
            for (upper, count) in histogram {
                let bar = (count * 40).checked_div(max).unwrap_or(0) as usize;
                let _ = writeln!(s, "  {} [{count}]\t|{}", num(upper), BAR_CHAR.repeat(bar));
            }

            s.push_str("\nLatency distribution:\n");
            for (p, v) in PERCENTILES.iter().zip(self.percentiles()) {
                if let Some(v) = v.filter(|v| *v > 0.0) {
                    let _ = writeln!(s, "  {p}% in {}.", secs(v));
                }
            }
        }
        if !self.errors.is_empty() {
            s.push_str("\nError distribution:\n");
            for (message, count) in &self.errors {
                let _ = writeln!(s, "  [{count}]\t{message}");
            }
        }
        s
    }

    /// The report as JSON (see the crate's README for the schema). Latencies in seconds;
    /// latency fields are `null` when no request succeeded.
    pub fn json(&self) -> Value {
        let some = !self.lats.is_empty();
        let opt = |v: f64| if some { json!(v) } else { Value::Null };
        let mut latency = serde_json::Map::new();
        latency.insert("fastest".into(), opt(self.fastest));
        latency.insert("slowest".into(), opt(self.slowest));
        latency.insert("average".into(), opt(self.average));
        latency.insert("stddev".into(), opt(self.stddev));
        for (name, v) in PERCENTILE_NAMES.iter().zip(self.percentiles()) {
            latency.insert((*name).into(), v.map_or(Value::Null, |v| json!(v)));
        }
        json!({
            "total_seconds": self.total.as_secs_f64(),
            "requests": self.successes(),
            "errors": self.error_count(),
            "requests_per_sec": self.rps,
            "latency_seconds": latency,
            "histogram": self.histogram().into_iter()
                .map(|(upper, count)| json!({"upper_seconds": upper, "count": count}))
                .collect::<Vec<_>>(),
            "error_distribution": self.errors.iter()
                .map(|(message, count)| json!({"error": message, "count": count}))
                .collect::<Vec<_>>(),
        })
    }
}

/// See the module doc: for each percentile p, the first sorted value at index i with
/// `i * 100 / n >= p`.
pub fn percentiles(sorted: &[f64]) -> [Option<f64>; 8] {
    let n = sorted.len();
    let mut out = [None; 8];
    let mut i = 0;
    for (j, p) in PERCENTILES.iter().enumerate() {
        while i < n && (i as f64) * 100.0 / (n as f64) < *p {
            i += 1;
        }
        if i < n {
            out[j] = Some(sorted[i]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn stats_of(millis: &[u64], total: Duration) -> Stats {
        let mut r = Recorder::with_capacity(millis.len());
        for &m in millis {
            r.ok(ms(m));
        }
        Stats::new(r, total)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn summary_numbers_match_hand_computation() {
        // 2, 4, 4, 4, 5, 5, 7, 9 ms: mean 5 ms, population stddev 2 ms (textbook example).
        let s = stats_of(&[4, 2, 5, 4, 9, 4, 7, 5], Duration::from_secs(2));
        assert!(close(s.average, 0.005), "{}", s.average);
        assert!(close(s.stddev, 0.002), "{}", s.stddev);
        assert!(close(s.fastest, 0.002));
        assert!(close(s.slowest, 0.009));
        assert!(close(s.rps, 4.0), "8 requests over 2 s");
        assert_eq!(s.successes(), 8);
        assert_eq!(s.error_count(), 0);
    }

    #[test]
    fn percentiles_follow_etcd_rule() {
        // 1..=1000 ms: index i has (i+1) ms; p at the first i with i*100/1000 >= p.
        let millis: Vec<u64> = (1..=1000).collect();
        let s = stats_of(&millis, Duration::from_secs(1));
        let want = [101, 251, 501, 751, 901, 951, 991, 1000];
        for (got, want) in s.percentiles().iter().zip(want) {
            assert!(
                close(got.unwrap(), want as f64 / 1000.0),
                "{got:?} vs {want}"
            );
        }
        // Fewer than 1000 samples: no 99.9th percentile (etcd prints none either).
        let s = stats_of(&(1..=100).collect::<Vec<_>>(), Duration::from_secs(1));
        let p = s.percentiles();
        assert!(close(p[0].unwrap(), 0.011));
        assert!(close(p[2].unwrap(), 0.051));
        assert!(close(p[6].unwrap(), 0.100));
        assert_eq!(p[7], None);
        // One sample: only p10.. would need index >= 1, so nothing but... i=0 is 0% < 10%.
        assert_eq!(percentiles(&[0.5]), [None; 8]);
        assert_eq!(percentiles(&[]), [None; 8]);
    }

    #[test]
    fn histogram_buckets() {
        // fastest 0, slowest 10 ms: bounds 0, 1, ..., 9 ms, then 10 ms.
        let s = stats_of(&[0, 1, 1, 3, 10, 10, 10, 5, 5], Duration::from_secs(1));
        let h = s.histogram();
        assert_eq!(h.len(), 11);
        for (i, (upper, _)) in h.iter().enumerate() {
            assert!(close(*upper, i as f64 / 1000.0), "bucket {i}: {upper}");
        }
        let counts: Vec<u64> = h.iter().map(|b| b.1).collect();
        assert_eq!(counts, [1, 2, 0, 1, 0, 2, 0, 0, 0, 0, 3]);
        assert_eq!(counts.iter().sum::<u64>(), 9);
        // All equal: every latency in the first bucket.
        let s = stats_of(&[3, 3, 3], Duration::from_secs(1));
        let counts: Vec<u64> = s.histogram().iter().map(|b| b.1).collect();
        assert_eq!(counts, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn text_layout_is_etcds() {
        let mut r = Recorder::default();
        for m in [1, 2, 3, 4] {
            r.ok(ms(m));
        }
        r.error("rpc error: code = Unavailable desc = etcdserver: no leader");
        r.error("rpc error: code = Unavailable desc = etcdserver: no leader");
        let s = Stats::new(r, Duration::from_millis(500));
        let text = s.text(false);
        let want_head = "\nSummary:\n  Total:\t0.5000 secs.\n  Slowest:\t0.0040 secs.\n  \
             Fastest:\t0.0010 secs.\n  Average:\t0.0025 secs.\n  Stddev:\t0.0011 secs.\n  \
             Requests/sec:\t8.0000\n\nResponse time histogram:\n  0.0010 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n";
        assert!(text.starts_with(want_head), "{text}");
        assert!(text.contains("\nLatency distribution:\n  10% in 0.0020 secs.\n"));
        assert!(text.contains("  50% in 0.0030 secs.\n  75% in 0.0040 secs.\n"));
        assert!(!text.contains("99.9%"));
        assert!(text.ends_with(
            "\nError distribution:\n  [2]\trpc error: code = Unavailable desc = etcdserver: no leader\n"
        ));
        // No success: only the errors, as etcd.
        let mut r = Recorder::default();
        r.error("boom");
        assert_eq!(
            Stats::new(r, ms(1)).text(false),
            "\nError distribution:\n  [1]\tboom\n"
        );
    }

    #[test]
    fn json_shape() {
        let mut r = Recorder::default();
        for m in 1..=1000 {
            r.ok(ms(m));
        }
        r.error("e1");
        let v = Stats::new(r, Duration::from_secs(4)).json();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "error_distribution",
                "errors",
                "histogram",
                "latency_seconds",
                "requests",
                "requests_per_sec",
                "total_seconds"
            ]
        );
        assert_eq!(v["requests"], 1000);
        assert_eq!(v["errors"], 1);
        assert_eq!(v["requests_per_sec"], 250.0);
        assert_eq!(v["total_seconds"], 4.0);
        let lat = &v["latency_seconds"];
        for name in ["fastest", "slowest", "average", "stddev"]
            .iter()
            .chain(PERCENTILE_NAMES.iter())
        {
            assert!(lat[name].is_f64(), "{name}: {lat}");
        }
        assert_eq!(lat["p99_9"], 1.0);
        assert_eq!(v["histogram"].as_array().unwrap().len(), 11);
        // Last bucket: above fastest + 9 * (slowest - fastest) / 10 = 0.9001 s: 901..=1000 ms.
        assert_eq!(v["histogram"][10]["count"], 100);
        assert_eq!(v["histogram"][10]["upper_seconds"], 1.0);
        assert_eq!(v["error_distribution"][0]["error"], "e1");
        assert_eq!(v["error_distribution"][0]["count"], 1);
        // Nothing succeeded: latency fields are null, histogram empty.
        let v = Stats::new(Recorder::default(), ms(1)).json();
        assert_eq!(v["requests"], 0);
        assert!(v["latency_seconds"]["average"].is_null());
        assert!(v["latency_seconds"]["p50"].is_null());
        assert_eq!(v["histogram"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn merge_adds_up() {
        let mut a = Recorder::default();
        a.ok(ms(1));
        a.error("x");
        let mut b = Recorder::default();
        b.ok(ms(2));
        b.error("x");
        b.errors("y", 3);
        b.errors("z", 0);
        let m = Recorder::merged([a, b]);
        assert_eq!(m.successes(), 2);
        assert_eq!(m.error_count(), 5);
        let s = Stats::new(m, ms(1));
        assert_eq!(s.errors, vec![("y".to_owned(), 3), ("x".to_owned(), 2)]);
    }
}
