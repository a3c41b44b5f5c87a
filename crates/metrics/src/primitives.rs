//! The three metric kinds on atomics. Recording is a relaxed atomic add (a histogram: one
//! bucket, the count and a compare-and-swap on the sum); nothing on a recording path
//! locks or allocates, except the first use of a new label set of a [`Labeled`] family.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub const fn new() -> Gauge {
        Gauge(AtomicI64::new(0))
    }

    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn dec(&self) {
        self.add(-1);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `count` upper bounds `start`, `start * factor`, ... (Prometheus' `ExponentialBuckets`).
pub const fn exponential_buckets<const N: usize>(start: f64, factor: f64) -> [f64; N] {
    let mut out = [0.0; N];
    let mut i = 0;
    let mut v = start;
    while i < N {
        out[i] = v;
        v *= factor;
        i += 1;
    }
    out
}

/// A distribution over `N` fixed upper bounds (the `+Inf` bucket is the count).
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: [f64; N],
    /// Observations per bucket, not cumulative: `buckets[i]` counts `bounds[i-1] < v <= bounds[i]`.
    buckets: [AtomicU64; N],
    count: AtomicU64,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    pub const fn new(bounds: [f64; N]) -> Histogram<N> {
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Records `d` in whole milliseconds, as etcd's `time.Since(start) / time.Millisecond`.
    pub fn observe_millis(&self, d: Duration) {
        self.observe(d.as_millis() as f64);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }

    /// `(upper bound, cumulative count)` per bucket, without `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut acc = 0;
        self.bounds.iter().zip(&self.buckets).map(move |(b, n)| {
            acc += n.load(Ordering::Relaxed);
            (*b, acc)
        })
    }
}

/// Label sets per family at most: a client cannot grow the map without bound (new label
/// sets past the limit are not recorded).
pub const MAX_SERIES: usize = 256;

/// A family whose label values appear at run time (peer IDs, client API versions): one
/// `T` per label set, created on first use. Look-ups take a read lock; callers on a hot
/// path keep the returned `Arc`.
#[derive(Debug)]
pub struct Labeled<T, const L: usize> {
    series: RwLock<Vec<([String; L], Arc<T>)>>,
    make: fn() -> T,
}

impl<T, const L: usize> Labeled<T, L> {
    pub const fn new(make: fn() -> T) -> Labeled<T, L> {
        Labeled {
            series: RwLock::new(Vec::new()),
            make,
        }
    }

    /// The series for `values`, created if new; `None` once [`MAX_SERIES`] exist.
    pub fn with(&self, values: [&str; L]) -> Option<Arc<T>> {
        let found = |s: &[([String; L], Arc<T>)]| {
            s.iter()
                .find(|(k, _)| k.iter().zip(&values).all(|(a, b)| a == b))
                .map(|(_, t)| t.clone())
        };
        if let Some(t) = found(&self.series.read()) {
            return Some(t);
        }
        let mut series = self.series.write();
        if let Some(t) = found(&series) {
            return Some(t);
        }
        if series.len() >= MAX_SERIES {
            return None;
        }
        let t = Arc::new((self.make)());
        series.push((values.map(str::to_owned), t.clone()));
        Some(t)
    }

    /// Every series, in creation order.
    pub fn each(&self, mut f: impl FnMut(&[String; L], &T)) {
        for (k, t) in self.series.read().iter() {
            f(k, t);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series.read().is_empty()
    }
}

impl<const L: usize> Labeled<Counter, L> {
    /// Adds `n` to the series for `values` (nothing once the family is full).
    pub fn add(&self, values: [&str; L], n: u64) {
        if let Some(c) = self.with(values) {
            c.add(n);
        }
    }
}

impl<const L: usize> Labeled<Gauge, L> {
    /// Adds `n` (negative to subtract) to the series for `values`.
    pub fn add(&self, values: [&str; L], n: i64) {
        if let Some(g) = self.with(values) {
            g.add(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_sum_adds_up() {
        let h = Histogram::new(exponential_buckets::<3>(1.0, 2.0));
        for v in [0.5, 1.0, 3.0, 100.0] {
            h.observe(v);
        }
        let got: Vec<_> = h.cumulative().collect();
        assert_eq!(got, vec![(1.0, 2), (2.0, 2), (4.0, 3)]);
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), 104.5);
    }

    #[test]
    fn labeled_series_are_shared_and_bounded() {
        let f: Labeled<Counter, 1> = Labeled::new(Counter::new);
        f.with(["a"]).unwrap().inc();
        f.with(["a"]).unwrap().inc();
        assert_eq!(f.with(["a"]).unwrap().get(), 2);
        for i in 1..MAX_SERIES {
            assert!(f.with([&i.to_string()]).is_some());
        }
        assert!(f.with(["one too many"]).is_none());
    }
}
