//! etcd's `etcd_grpc_proxy_*` metrics (same names, types and help texts as etcd's
//! `server/proxy/grpcproxy/metrics.go`), rendered in Prometheus' text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The proxy's counters and gauges. Shared by every service.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Gauge: watchers served by another watcher's upstream watch right now.
    pub watchers_coalescing: AtomicI64,
    /// Counter: events delivered to a watcher without an upstream watch of its own.
    pub events_coalescing: AtomicU64,
    /// Gauge: cached ranges.
    pub cache_keys: AtomicI64,
    /// etcd declares these two as gauges; so do we.
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// chorus's own: upstream watches open now (one per coalesced group).
    pub upstream_watches: AtomicI64,
}

impl Metrics {
    /// The Prometheus text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get_i = |a: &AtomicI64| a.load(Ordering::Relaxed) as f64;
        let get_u = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let rows: [(&str, &str, &str, f64); 6] = [
            (
                "etcd_grpc_proxy_cache_hits_total",
                "gauge",
                "Total number of cache hits",
                get_u(&self.cache_hits),
            ),
            (
                "etcd_grpc_proxy_cache_keys_total",
                "gauge",
                "Total number of keys/ranges cached",
                get_i(&self.cache_keys),
            ),
            (
                "etcd_grpc_proxy_cache_misses_total",
                "gauge",
                "Total number of cache misses",
                get_u(&self.cache_misses),
            ),
            (
                "etcd_grpc_proxy_events_coalescing_total",
                "counter",
                "Total number of events coalescing",
                get_u(&self.events_coalescing),
            ),
            (
                "etcd_grpc_proxy_watchers_coalescing_total",
                "gauge",
                "Total number of current watchers coalescing",
                get_i(&self.watchers_coalescing),
            ),
            (
                "chorus_grpc_proxy_upstream_watches",
                "gauge",
                "Watches the proxy holds open on the members",
                get_i(&self.upstream_watches),
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_etcd_names() {
        let m = Metrics::default();
        m.cache_hits.fetch_add(3, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("# TYPE etcd_grpc_proxy_events_coalescing_total counter"));
        assert!(text.contains("etcd_grpc_proxy_cache_hits_total 3\n"));
    }
}
