//! `etcd_snap_*`: raft snapshot files, and the backend file a follower receives.

use crate::exposition::Exposition;
use crate::primitives::{exponential_buckets, Histogram};

/// Writing one `.snap` file, fsync included.
pub static SNAP_SAVE_SECONDS: Histogram<14> = Histogram::new(exponential_buckets(0.001, 2.0));
/// The fsync of one `.snap` file.
pub static SNAP_FSYNC_SECONDS: Histogram<14> = Histogram::new(exponential_buckets(0.001, 2.0));
/// Receiving the leader's backend file (etcd's `.snap.db`).
pub static SNAP_DB_SAVE_SECONDS: Histogram<10> = Histogram::new(exponential_buckets(0.1, 2.0));
/// The fsync of a received backend file.
pub static SNAP_DB_FSYNC_SECONDS: Histogram<14> = Histogram::new(exponential_buckets(0.001, 2.0));

pub(crate) fn render(out: &mut Exposition) {
    out.histogram(
        "etcd_debugging_snap_save_total_duration_seconds",
        "The total latency distributions of save called by snapshot.",
        &SNAP_SAVE_SECONDS,
    );
    out.histogram(
        "etcd_snap_fsync_duration_seconds",
        "The latency distributions of fsync called by snap.",
        &SNAP_FSYNC_SECONDS,
    );
    out.histogram(
        "etcd_snap_db_save_total_duration_seconds",
        "The total latency distributions of v3 snapshot save",
        &SNAP_DB_SAVE_SECONDS,
    );
    out.histogram(
        "etcd_snap_db_fsync_duration_seconds",
        "The latency distributions of fsyncing .snap.db file",
        &SNAP_DB_FSYNC_SECONDS,
    );
}
