//! `etcd_mvcc_*` and `etcd_debugging_mvcc_*` that count operations (the store's own state,
//! such as the revision and the key count, is read from the member at scrape).

use crate::exposition::Exposition;
use crate::primitives::{exponential_buckets, Counter, Gauge, Histogram};

pub static PUT_TOTAL: Counter = Counter::new();
pub static DELETE_TOTAL: Counter = Counter::new();
pub static RANGE_TOTAL: Counter = Counter::new();
pub static TXN_TOTAL: Counter = Counter::new();
/// Bytes of keys and values put (etcd's `total_put_size_in_bytes`, a gauge).
pub static TOTAL_PUT_SIZE: Gauge = Gauge::new();
/// Watch events sent to clients.
pub static EVENTS_TOTAL: Counter = Counter::new();
/// Open watch streams.
pub static WATCH_STREAMS: Gauge = Gauge::new();
/// Keys removed by compactions.
pub static DB_COMPACTION_KEYS: Counter = Counter::new();
/// Unix time of the last finished compaction.
pub static DB_COMPACTION_LAST: Gauge = Gauge::new();
/// A whole compaction, in milliseconds.
pub static DB_COMPACTION_TOTAL_MS: Histogram<14> = Histogram::new(exponential_buckets(100.0, 2.0));
/// One compaction transaction (a batch of deletions), in whole milliseconds.
pub static DB_COMPACTION_PAUSE_MS: Histogram<13> = Histogram::new(exponential_buckets(1.0, 2.0));
/// Compacting the in-memory index, in whole milliseconds.
pub static INDEX_COMPACTION_PAUSE_MS: Histogram<14> = Histogram::new(exponential_buckets(0.5, 2.0));
/// Backend read transactions open (the snapshots ranges and watch catch-up read from).
pub static DB_OPEN_READ_TXN: Gauge = Gauge::new();
/// Events that could not go to a watcher at once and wait for catch-up (etcd only ever
/// adds to this gauge).
pub static PENDING_EVENTS: Gauge = Gauge::new();
pub static HASH_SECONDS: Histogram<15> = Histogram::new(exponential_buckets(0.01, 2.0));
pub static HASH_REV_SECONDS: Histogram<15> = Histogram::new(exponential_buckets(0.01, 2.0));

pub(crate) fn render(out: &mut Exposition) {
    let ops: [(&str, &str, &Counter); 4] = [
        ("put", "puts", &PUT_TOTAL),
        ("delete", "deletes", &DELETE_TOTAL),
        ("range", "ranges", &RANGE_TOTAL),
        ("txn", "txns", &TXN_TOTAL),
    ];
    for (op, plural, c) in ops {
        out.counter_of(
            &format!("etcd_mvcc_{op}_total"),
            &format!("Total number of {plural} seen by this member."),
            c,
        );
    }
    out.counter_of(
        "etcd_debugging_mvcc_range_total",
        "Total number of ranges seen by this member.",
        &RANGE_TOTAL,
    );
    out.gauge_of(
        "etcd_debugging_mvcc_total_put_size_in_bytes",
        "The total size of put kv pairs seen by this member.",
        &TOTAL_PUT_SIZE,
    );
    out.counter_of(
        "etcd_debugging_mvcc_events_total",
        "Total number of events sent by this member.",
        &EVENTS_TOTAL,
    );
    out.gauge_of(
        "etcd_debugging_mvcc_watch_stream_total",
        "Total number of watch streams.",
        &WATCH_STREAMS,
    );
    out.gauge_of(
        "etcd_debugging_mvcc_pending_events_total",
        "Total number of pending events to be sent.",
        &PENDING_EVENTS,
    );
    out.gauge_of(
        "etcd_mvcc_db_open_read_transactions",
        "The number of currently open read transactions",
        &DB_OPEN_READ_TXN,
    );
    render_compaction(out);
    out.histogram(
        "etcd_mvcc_hash_duration_seconds",
        "The latency distribution of storage hash operation.",
        &HASH_SECONDS,
    );
    out.histogram(
        "etcd_mvcc_hash_rev_duration_seconds",
        "The latency distribution of storage hash by revision operation.",
        &HASH_REV_SECONDS,
    );
}

fn render_compaction(out: &mut Exposition) {
    out.counter_of(
        "etcd_debugging_mvcc_db_compaction_keys_total",
        "Total number of db keys compacted.",
        &DB_COMPACTION_KEYS,
    );
    out.gauge_of(
        "etcd_debugging_mvcc_db_compaction_last",
        "The unix time of the last db compaction. Resets to 0 on start.",
        &DB_COMPACTION_LAST,
    );
    out.histogram(
        "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds",
        "Bucketed histogram of db compaction total duration.",
        &DB_COMPACTION_TOTAL_MS,
    );
    out.histogram(
        "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds",
        "Bucketed histogram of db compaction pause duration.",
        &DB_COMPACTION_PAUSE_MS,
    );
    out.histogram(
        "etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds",
        "Bucketed histogram of index compaction pause duration.",
        &INDEX_COMPACTION_PAUSE_MS,
    );
}
