//! chorus's metrics: every etcd metric family that has a meaning in chorus, under etcd's
//! names, types, label names and bucket boundaries, so that the etcd mixin's alerts and
//! dashboards work unchanged.
//!
//! ```text
//!   hot paths (WAL fsync, backend commit, raft loop, apply, gRPC layer)
//!      └─ one or two atomic adds on a `static` (families below: disk, server, mvcc,
//!         lease, grpc, network, snap)
//!   scrape (/metrics) ─▶ render(): reads every static ─▶ Exposition (text format 0.0.4)
//!                        + the member's own gauges (leader, revision, sizes: read at scrape)
//! ```
//!
//! Families are process-wide statics, as in etcd (one member per process). A family whose
//! label values are known up front (gRPC method × code) is an array of atomics; one whose
//! values appear at run time (peer IDs, client API versions) is a small bounded map behind
//! a read-mostly lock ([`Labeled`]). A labelled family with no series yet is not rendered
//! (Prometheus' Go client does the same).

mod apply;
mod disk;
mod exposition;
pub mod grpc;
mod lease;
mod mvcc;
mod network;
mod peer;
mod primitives;
mod process;
mod scrape;
mod server;
mod snap;
mod store;

pub use apply::{observe_apply, ApplyOp};
pub use disk::*;
pub use exposition::{format_float, Exposition};
pub use lease::*;
pub use mvcc::*;
pub use network::*;
pub use peer::{Inflight, SnapshotTransfers, PEER_RTT_SECONDS, SNAPSHOT_RECEIVE, SNAPSHOT_SEND};
pub use primitives::{exponential_buckets, Counter, Gauge, Histogram, Labeled, MAX_SERIES};
pub use process::render as render_process;
pub use scrape::Scrape;
pub use server::*;
pub use snap::*;
pub use store::*;

/// Renders every family this crate holds (the member adds the ones it reads at scrape).
pub fn render(out: &mut Exposition) {
    disk::render(out);
    server::render(out);
    apply::render(out);
    mvcc::render(out);
    lease::render(out);
    snap::render(out);
    store::render(out);
    network::render(out);
    peer::render(out);
    grpc::render(out);
    process::render(out);
    scrape::render(out);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every sample follows its family's `# TYPE` line, and no family is written twice.
    #[test]
    fn render_writes_each_family_once_with_its_samples_after_it() {
        PEER_SENT_BYTES.add(["8e9e05c52164694d"], 10);
        let mut out = Exposition::default();
        render(&mut out);
        let mut seen = BTreeSet::new();
        let mut current = String::new();
        for line in out.0.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap().to_owned();
                assert!(seen.insert(current.clone()), "{current} twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|b| *b == current))
                    .unwrap_or(name);
                assert_eq!(base, current, "{line}");
            }
        }
        assert!(out
            .0
            .contains("etcd_network_peer_sent_bytes_total{To=\"8e9e05c52164694d\"} 10\n"));
        assert!(seen.contains("etcd_disk_wal_fsync_duration_seconds"));
        // A labelled family without series is left out, as Prometheus' Go client does.
        assert!(!seen.contains("etcd_network_active_peers"));
    }
}
