//! `etcd_network_snapshot_*` (snapshots sent to and received from peers) and
//! `etcd_network_peer_round_trip_time_seconds` (the peer prober), per peer, labelled with
//! its hexadecimal member ID as etcd labels them.

use std::time::Duration;

use crate::exposition::Exposition;
use crate::network::peer_label;
use crate::primitives::{exponential_buckets, Counter, Gauge, Histogram, Labeled};

/// etcd's snapshot transfer buckets: 0.1 s to 51.2 s.
const SNAPSHOT_BUCKETS: [f64; 10] = exponential_buckets(0.1, 2.0);
/// etcd's round-trip buckets: 0.1 ms to 3.2768 s.
const RTT_BUCKETS: [f64; 16] = exponential_buckets(0.0001, 2.0);

fn snapshot_histogram() -> Histogram<10> {
    Histogram::new(SNAPSHOT_BUCKETS)
}

fn rtt_histogram() -> Histogram<16> {
    Histogram::new(RTT_BUCKETS)
}

/// The families of one direction of snapshot transfer.
#[derive(Debug)]
pub struct SnapshotTransfers {
    pub success: Labeled<Counter, 1>,
    pub failures: Labeled<Counter, 1>,
    pub inflights: Labeled<Gauge, 1>,
    pub seconds: Labeled<Histogram<10>, 1>,
}

impl SnapshotTransfers {
    const fn new() -> SnapshotTransfers {
        SnapshotTransfers {
            success: Labeled::new(Counter::new),
            failures: Labeled::new(Counter::new),
            inflights: Labeled::new(Gauge::new),
            seconds: Labeled::new(snapshot_histogram),
        }
    }

    /// Marks a transfer with `peer` as in flight until the returned guard is dropped.
    pub fn start(&'static self, peer: u64) -> Inflight {
        let label = peer_label(peer);
        self.inflights.add([&label], 1);
        Inflight {
            family: self,
            label,
        }
    }
}

/// A snapshot transfer in flight; counted as done when dropped.
#[derive(Debug)]
pub struct Inflight {
    family: &'static SnapshotTransfers,
    label: String,
}

impl Inflight {
    /// The transfer succeeded after `took`.
    pub fn succeeded(self, took: Duration) {
        let f = self.family;
        f.success.add([&self.label], 1);
        if let Some(h) = f.seconds.with([&self.label]) {
            h.observe_duration(took);
        }
    }

    /// The transfer failed.
    pub fn failed(self) {
        self.family.failures.add([&self.label], 1);
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.family.inflights.add([&self.label], -1);
    }
}

/// Snapshots sent, per `To` peer.
pub static SNAPSHOT_SEND: SnapshotTransfers = SnapshotTransfers::new();
/// Snapshots received, per `From` peer.
pub static SNAPSHOT_RECEIVE: SnapshotTransfers = SnapshotTransfers::new();
/// Round trips of the peer prober's probes, per `To` peer.
pub static PEER_RTT_SECONDS: Labeled<Histogram<16>, 1> = Labeled::new(rtt_histogram);

/// A family of one series per peer (a labelled family without series is not rendered).
fn per_peer<T>(
    out: &mut Exposition,
    (name, kind, help): (&str, &str, &str),
    label: &str,
    family: &Labeled<T, 1>,
    mut sample: impl FnMut(&mut Exposition, &str, &[(&str, &str)], &T),
) {
    if family.is_empty() {
        return;
    }
    out.family(name, kind, help);
    family.each(|[peer], t| sample(out, name, &[(label, peer)], t));
}

fn render_transfers(out: &mut Exposition, dir: &str, label: &str, f: &SnapshotTransfers) {
    let what = if dir == "send" { "sends" } else { "receives" };
    let name = |suffix: &str| format!("etcd_network_snapshot_{dir}_{suffix}");
    let counters = [
        (
            "success",
            format!("Total number of successful snapshot {what}"),
            &f.success,
        ),
        (
            "failures",
            format!("Total number of snapshot {dir} failures"),
            &f.failures,
        ),
    ];
    for (suffix, help, family) in counters {
        let full = name(suffix);
        let meta = (full.as_str(), "counter", help.as_str());
        per_peer(out, meta, label, family, |o, n, l, c| {
            o.sample(n, l, c.get() as f64)
        });
    }
    let (inflights, help) = (
        name("inflights_total"),
        format!("Total number of inflight snapshot {what}"),
    );
    per_peer(
        out,
        (inflights.as_str(), "gauge", help.as_str()),
        label,
        &f.inflights,
        |o, n, l, g| o.sample(n, l, g.get() as f64),
    );
    let (seconds, help) = (
        name("total_duration_seconds"),
        format!("Total latency distributions of v3 snapshot {what}"),
    );
    per_peer(
        out,
        (seconds.as_str(), "histogram", help.as_str()),
        label,
        &f.seconds,
        |o, n, l, h| o.histogram_series(n, l, h),
    );
}

pub(crate) fn render(out: &mut Exposition) {
    render_transfers(out, "send", "To", &SNAPSHOT_SEND);
    render_transfers(out, "receive", "From", &SNAPSHOT_RECEIVE);
    let family = (
        "etcd_network_peer_round_trip_time_seconds",
        "histogram",
        "Round-Trip-Time histogram between peers",
    );
    per_peer(out, family, "To", &PEER_RTT_SECONDS, |o, n, l, h| {
        o.histogram_series(n, l, h)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_counts_once_and_leaves_no_inflight() {
        let t = SNAPSHOT_RECEIVE.start(0xabc);
        assert_eq!(SNAPSHOT_RECEIVE.inflights.with(["abc"]).unwrap().get(), 1);
        t.succeeded(Duration::from_millis(150));
        assert_eq!(SNAPSHOT_RECEIVE.inflights.with(["abc"]).unwrap().get(), 0);
        SNAPSHOT_RECEIVE.start(0xabc).failed();
        let mut out = Exposition::default();
        render(&mut out);
        for line in [
            "etcd_network_snapshot_receive_success{From=\"abc\"} 1\n",
            "etcd_network_snapshot_receive_failures{From=\"abc\"} 1\n",
            "etcd_network_snapshot_receive_inflights_total{From=\"abc\"} 0\n",
            "etcd_network_snapshot_receive_total_duration_seconds_bucket{From=\"abc\",le=\"0.2\"} 1\n",
        ] {
            assert!(out.0.contains(line), "{line} in {}", out.0);
        }
    }
}
