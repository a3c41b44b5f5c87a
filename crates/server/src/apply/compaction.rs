//! The background compactor: compactions are scheduled in apply (in the batch's
//! transaction) and run here once committed.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::sync::watch;

use crate::kv::KvSlot;

/// The compactor thread: runs each scheduled compaction in chunks of `chunk` deletions
/// with `pause` between them (`--compaction-batch-limit`, `--compaction-sleep-interval`),
/// so apply is never blocked for long, and publishes the last revision it finished.
/// Each compaction runs on the store in use when it starts, never during a defragment's
/// copy ([`KvSlot::rewrites`]).
pub fn spawn_compactor(
    slot: Arc<KvSlot>,
    chunk: usize,
    pause: Duration,
    done: watch::Sender<i64>,
) -> Sender<i64> {
    let (compactor, jobs) = crossbeam_channel::unbounded::<i64>();
    std::thread::Builder::new()
        .name("compactor".into())
        .spawn(move || {
            for rev in jobs {
                let _rewrites = slot.rewrites().blocking_lock();
                let kv = slot.get();
                let started = std::time::Instant::now();
                match kv.compact_paced(rev, chunk, pause) {
                    Ok(n) => {
                        record_compaction(started, n);
                        tracing::info!(revision = rev, deleted = n, "finished compaction")
                    }
                    Err(e) => tracing::error!(revision = rev, "compaction failed: {e}"),
                }
                done.send_replace(rev);
            }
        })
        .expect("spawn compactor thread");
    compactor
}

fn record_compaction(started: std::time::Instant, deleted: usize) {
    use chorus_metrics::{DB_COMPACTION_KEYS, DB_COMPACTION_LAST, DB_COMPACTION_TOTAL_MS};
    DB_COMPACTION_TOTAL_MS.observe_millis(started.elapsed());
    DB_COMPACTION_KEYS.add(deleted as u64);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    DB_COMPACTION_LAST.set(now.map_or(0, |d| d.as_secs() as i64));
}
