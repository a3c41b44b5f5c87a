//! `etcd_debugging_store_*`: the v2 store's operations (the membership etcd keeps there
//! included), by etcd's `action` label. The number of watchers is the store's own state,
//! read from the member at scrape.

use crate::exposition::Exposition;
use crate::primitives::{Counter, Labeled};

/// Reads per `action` (`get`, `getRecursive`), failed ones included.
pub static STORE_READS: Labeled<Counter, 1> = Labeled::new(Counter::new);
/// Writes per `action` (`create`, `set`, `update`, `delete`, `compareAndSwap`,
/// `compareAndDelete`), failed ones included.
pub static STORE_WRITES: Labeled<Counter, 1> = Labeled::new(Counter::new);
/// Keys removed by expiry.
pub static STORE_EXPIRES: Counter = Counter::new();
/// Watches asked for (new or re-established).
pub static STORE_WATCH_REQUESTS: Counter = Counter::new();

pub(crate) fn render(out: &mut Exposition) {
    let per_action: [(&str, &str, &Labeled<Counter, 1>); 2] = [
        (
            "etcd_debugging_store_reads_total",
            "Total number of reads action by (get/getRecursive), local to this member.",
            &STORE_READS,
        ),
        (
            "etcd_debugging_store_writes_total",
            "Total number of writes (e.g. set/compareAndDelete) seen by this member.",
            &STORE_WRITES,
        ),
    ];
    for (name, help, family) in per_action {
        if family.is_empty() {
            continue;
        }
        out.family(name, "counter", help);
        family.each(|[action], c| out.sample(name, &[("action", action)], c.get() as f64));
    }
    out.counter_of(
        "etcd_debugging_store_expires_total",
        "Total number of expired keys.",
        &STORE_EXPIRES,
    );
    out.counter_of(
        "etcd_debugging_store_watch_requests_total",
        "Total number of incoming watch requests (new or reestablished).",
        &STORE_WATCH_REQUESTS,
    );
}
