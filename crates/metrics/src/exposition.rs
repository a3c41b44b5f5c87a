//! Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, then samples, numbers
//! formatted as Go's client formats them (`1.048576e+06`, `0.001`), so that a bucket's
//! `le` label reads the same as etcd's.

use std::fmt::Write as _;

use crate::primitives::{Counter, Gauge, Histogram};

/// A scrape's text, built family by family.
#[derive(Debug, Default)]
pub struct Exposition(pub String);

impl Exposition {
    pub fn with_capacity(n: usize) -> Exposition {
        Exposition(String::with_capacity(n))
    }

    /// The `# HELP` and `# TYPE` lines of a family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample line: `name{l1="v1",...} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let text = label_text(labels);
        self.sample_raw(name, &text, value);
    }

    /// A sample whose labels are already written out (`l1="v1",l2="v2"`).
    fn sample_raw(&mut self, name: &str, labels: &str, value: f64) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {}", format_float(value));
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {}", format_float(value));
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value);
    }

    pub fn counter_of(&mut self, name: &str, help: &str, c: &Counter) {
        self.counter(name, help, c.get() as f64);
    }

    pub fn gauge_of(&mut self, name: &str, help: &str, g: &Gauge) {
        self.gauge(name, help, g.get() as f64);
    }

    /// A gauge that is always 1 and carries its value as a label (etcd's version metrics).
    pub fn info(&mut self, name: &str, help: &str, label: &str, value: &str) {
        self.family(name, "gauge", help);
        self.sample(name, &[(label, value)], 1.0);
    }

    /// A histogram family with one unlabelled series.
    pub fn histogram<const N: usize>(&mut self, name: &str, help: &str, h: &Histogram<N>) {
        self.family(name, "histogram", help);
        self.histogram_series(name, &[], h);
    }

    /// The `_bucket`, `_sum` and `_count` lines of one histogram series.
    pub fn histogram_series<const N: usize>(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        h: &Histogram<N>,
    ) {
        let text = label_text(labels);
        let sep = if text.is_empty() { "" } else { "," };
        let bucket = format!("{name}_bucket");
        let count = h.count();
        for (bound, n) in h.cumulative() {
            let le = format!("{text}{sep}le=\"{}\"", format_float(bound));
            self.sample_raw(&bucket, &le, n as f64);
        }
        self.sample_raw(&bucket, &format!("{text}{sep}le=\"+Inf\""), count as f64);
        self.sample_raw(&format!("{name}_sum"), &text, h.sum());
        self.sample_raw(&format!("{name}_count"), &text, count as f64);
    }
}

/// `l1="v1",l2="v2"`, values escaped.
fn label_text(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"");
        escape_into(&mut out, v);
        out.push('"');
    }
    out
}

fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which Prometheus' Go client writes numbers
/// with: the shortest digits that read back exactly, in exponent form when the decimal
/// exponent is below -4 or at least 6 (`1e-05`, `1.048576e+06`).
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's `{:e}` is shortest too, and its exponent exact: `1.048576e6`.
    let s = format!("{v:e}");
    let (mantissa, e) = s.split_once('e').expect("{:e} has an exponent");
    let e: i32 = e.parse().expect("{:e} exponent is an integer");
    if v == 0.0 || (-4..6).contains(&e) {
        return format!("{v}");
    }
    let sign = if e < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", e.abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::exponential_buckets;

    #[test]
    fn floats_read_as_go_writes_them() {
        let cases = [
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (8.192, "8.192"),
            (524288.0, "524288"),
            (1048576.0, "1.048576e+06"),
            (8388608.0, "8.388608e+06"),
            (1.7650e9, "1.765e+09"),
            (3.0, "3"),
            (0.0, "0"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float(v), want, "{v}");
        }
    }

    #[test]
    fn exposition_lines() {
        let mut e = Exposition::default();
        e.gauge("g", "A gauge.", 1.5);
        e.info("v", "Version.", "server_version", "3.4.0");
        assert_eq!(
            e.0,
            "# HELP g A gauge.\n# TYPE g gauge\ng 1.5\n\
             # HELP v Version.\n# TYPE v gauge\nv{server_version=\"3.4.0\"} 1\n"
        );
    }

    #[test]
    fn histogram_lines() {
        let h = Histogram::new(exponential_buckets::<2>(0.5, 2.0));
        h.observe(0.7);
        let mut e = Exposition::default();
        e.histogram_series("h", &[("op", "a\"b")], &h);
        assert_eq!(
            e.0,
            "h_bucket{op=\"a\\\"b\",le=\"0.5\"} 0\nh_bucket{op=\"a\\\"b\",le=\"1\"} 1\n\
             h_bucket{op=\"a\\\"b\",le=\"+Inf\"} 1\nh_sum{op=\"a\\\"b\"} 0.7\n\
             h_count{op=\"a\\\"b\"} 1\n"
        );
    }
}
