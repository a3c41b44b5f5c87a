//! The v2 proxy's counters under etcd's names (`server/proxy/httpproxy/metrics.go`),
//! served on its own `/metrics` with the process families.

use std::collections::BTreeMap;

use chorus_metrics::Exposition;
use parking_lot::Mutex;

/// `etcd_proxy_requests_total{method}`, `etcd_proxy_handled_total{method,code}`,
/// `etcd_proxy_dropped_total{method,reason}`.
#[derive(Default)]
pub struct ProxyMetrics {
    requests: Mutex<BTreeMap<String, u64>>,
    handled: Mutex<BTreeMap<(String, String), u64>>,
    dropped: Mutex<BTreeMap<(String, String), u64>>,
}

impl ProxyMetrics {
    pub fn incoming(&self, method: &str) {
        *self.requests.lock().entry(method.to_string()).or_default() += 1;
    }

    pub fn handled(&self, method: &str, code: u16) {
        let key = (method.to_string(), code.to_string());
        *self.handled.lock().entry(key).or_default() += 1;
    }

    pub fn dropped(&self, method: &str, reason: &str) {
        let key = (method.to_string(), reason.to_string());
        *self.dropped.lock().entry(key).or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut out = Exposition::with_capacity(4096);
        let name = "etcd_proxy_requests_total";
        out.family(name, "counter", "Counter requests incoming by method.");
        for (m, v) in self.requests.lock().iter() {
            out.sample(name, &[("method", m)], *v as f64);
        }
        let name = "etcd_proxy_handled_total";
        out.family(
            name,
            "counter",
            "Counter of requests fully handled (by authoratitave servers)",
        );
        for ((m, c), v) in self.handled.lock().iter() {
            out.sample(name, &[("method", m), ("code", c)], *v as f64);
        }
        let name = "etcd_proxy_dropped_total";
        out.family(name, "counter", "Counter of requests dropped on the proxy.");
        for ((m, r), v) in self.dropped.lock().iter() {
            out.sample(name, &[("method", m), ("proxying_error", r)], *v as f64);
        }
        chorus_metrics::render_process(&mut out);
        out.0
    }
}
