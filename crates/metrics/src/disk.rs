//! `etcd_disk_*`: the WAL and the backend file.

use crate::exposition::Exposition;
use crate::primitives::{exponential_buckets, Counter, Gauge, Histogram};

/// Each WAL `fdatasync` (etcd: 1 ms to 8 s).
pub static WAL_FSYNC_SECONDS: Histogram<14> = Histogram::new(exponential_buckets(0.001, 2.0));
/// Bytes written to WAL segments (etcd exports it as a gauge).
pub static WAL_WRITE_BYTES: Counter = Counter::new();
/// Each durable backend commit.
pub static BACKEND_COMMIT_SECONDS: Histogram<14> = Histogram::new(exponential_buckets(0.001, 2.0));
/// Each defragmentation.
pub static BACKEND_DEFRAG_SECONDS: Histogram<13> = Histogram::new(exponential_buckets(0.1, 2.0));
/// Each backend snapshot streamed out (Maintenance.Snapshot, a snapshot for a follower).
pub static BACKEND_SNAPSHOT_SECONDS: Histogram<17> = Histogram::new(exponential_buckets(0.01, 2.0));
/// 1 while a defragmentation runs.
pub static DEFRAG_INFLIGHT: Gauge = Gauge::new();

pub(crate) fn render(out: &mut Exposition) {
    out.histogram(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        &WAL_FSYNC_SECONDS,
    );
    out.gauge(
        "etcd_disk_wal_write_bytes_total",
        "Total number of bytes written in WAL.",
        WAL_WRITE_BYTES.get() as f64,
    );
    out.histogram(
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend.",
        &BACKEND_COMMIT_SECONDS,
    );
    out.histogram(
        "etcd_disk_backend_defrag_duration_seconds",
        "The latency distribution of backend defragmentation.",
        &BACKEND_DEFRAG_SECONDS,
    );
    out.histogram(
        "etcd_disk_backend_snapshot_duration_seconds",
        "The latency distribution of backend snapshots.",
        &BACKEND_SNAPSHOT_SECONDS,
    );
    out.gauge_of(
        "etcd_disk_defrag_inflight",
        "Whether or not defrag is active on the member. 1 means active, 0 means not.",
        &DEFRAG_INFLIGHT,
    );
}
