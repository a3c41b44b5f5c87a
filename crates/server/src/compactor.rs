//! Automatic compaction (`--auto-compaction-mode`/`--auto-compaction-retention`), as etcd's
//! v3compactor: it runs on the leader only and proposes ordinary Compact requests.
//!
//! * periodic, retention P: the revision is sampled every P/10 (at most every 6 minutes);
//!   once P has passed since the last success, compact at the revision sampled P ago; after
//!   that, every min(P, 1h).
//! * revision, retention N: every 5 minutes, compact at current revision - N.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::EtcdError;
use chorus_config::AutoCompaction;

/// What the compactor needs from the member.
pub trait Compactable: Send + Sync {
    fn current_rev(&self) -> i64;
    fn is_leader(&self) -> bool;
    fn compact(&self, rev: i64) -> impl Future<Output = Result<(), EtcdError>> + Send;
}

pub async fn run(policy: AutoCompaction, c: impl Compactable) {
    match policy {
        AutoCompaction::Disabled => {}
        AutoCompaction::Periodic(period) => periodic(period, &c).await,
        AutoCompaction::Revision(retention) => revision(retention, &c).await,
    }
}

fn succeeded(r: &Result<(), EtcdError>) -> bool {
    matches!(r, Ok(()) | Err(EtcdError::Compacted))
}

async fn periodic(period: Duration, c: &impl Compactable) {
    let compact_interval = period.min(Duration::from_secs(3600));
    let retry = compact_interval / 10;
    let retentions = (period.as_nanos() / retry.as_nanos().max(1)) as usize + 1;
    let mut revs: std::collections::VecDeque<i64> = std::collections::VecDeque::new();
    let mut last_success = Instant::now();
    let mut base = period;
    loop {
        revs.push_back(c.current_rev());
        if revs.len() > retentions {
            revs.pop_front();
        }
        tokio::time::sleep(retry).await;
        if !c.is_leader() || last_success.elapsed() < base {
            continue;
        }
        base = compact_interval;
        let rev = revs[0];
        tracing::info!(revision = rev, period = ?period, "starting auto periodic compaction");
        let result = c.compact(rev).await;
        if succeeded(&result) {
            tracing::info!(revision = rev, "completed auto periodic compaction");
            last_success = Instant::now();
        } else if let Err(e) = result {
            tracing::warn!(revision = rev, "failed auto periodic compaction: {e}");
        }
    }
}

const REVISION_INTERVAL: Duration = Duration::from_secs(5 * 60);

async fn revision(retention: i64, c: &impl Compactable) {
    let mut prev = 0;
    loop {
        tokio::time::sleep(REVISION_INTERVAL).await;
        if !c.is_leader() {
            continue;
        }
        let rev = c.current_rev() - retention;
        if rev <= 0 || rev == prev {
            continue;
        }
        tracing::info!(
            revision = rev,
            retention,
            "starting auto revision compaction"
        );
        let result = c.compact(rev).await;
        if succeeded(&result) {
            prev = rev;
            tracing::info!(revision = rev, "completed auto revision compaction");
        } else if let Err(e) = result {
            tracing::warn!(revision = rev, "failed auto revision compaction: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Fake {
        rev: Arc<AtomicI64>,
        follower: Arc<AtomicBool>,
        compacted: Arc<Mutex<Vec<i64>>>,
    }

    impl Compactable for Fake {
        fn current_rev(&self) -> i64 {
            self.rev.load(Ordering::SeqCst)
        }
        fn is_leader(&self) -> bool {
            !self.follower.load(Ordering::SeqCst)
        }
        async fn compact(&self, rev: i64) -> Result<(), EtcdError> {
            self.compacted.lock().unwrap().push(rev);
            Ok(())
        }
    }

    /// Advances virtual time in steps, the revision growing by one per second.
    async fn advance(f: &Fake, secs: u64) {
        for _ in 0..secs {
            tokio::time::sleep(Duration::from_secs(1)).await;
            f.rev.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_compacts_at_the_revision_one_period_ago() {
        let f = Fake::default();
        f.rev.store(1, Ordering::SeqCst);
        let task = tokio::spawn(run(
            AutoCompaction::Periodic(Duration::from_secs(10)),
            f.clone(),
        ));
        advance(&f, 9).await;
        assert!(
            f.compacted.lock().unwrap().is_empty(),
            "nothing before one period"
        );
        advance(&f, 2).await;
        let first = f.compacted.lock().unwrap().clone();
        assert_eq!(first.len(), 1);
        // The revision sampled 10 s earlier (revision grows by one per second).
        assert!((1..=2).contains(&first[0]), "compacted at {first:?}");
        advance(&f, 10).await;
        let all = f.compacted.lock().unwrap().clone();
        assert_eq!(all.len(), 2, "then once per period: {all:?}");
        assert!(all[1] > all[0]);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_pauses_on_followers() {
        let f = Fake::default();
        f.follower.store(true, Ordering::SeqCst);
        let task = tokio::spawn(run(
            AutoCompaction::Periodic(Duration::from_secs(5)),
            f.clone(),
        ));
        advance(&f, 30).await;
        assert!(f.compacted.lock().unwrap().is_empty());
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn revision_mode_keeps_the_last_n_revisions() {
        let f = Fake::default();
        f.rev.store(100, Ordering::SeqCst);
        let task = tokio::spawn(run(AutoCompaction::Revision(30), f.clone()));
        tokio::time::sleep(REVISION_INTERVAL + Duration::from_secs(1)).await;
        assert_eq!(*f.compacted.lock().unwrap(), vec![70]);
        // No new revisions: no second compaction at the same revision.
        tokio::time::sleep(REVISION_INTERVAL).await;
        assert_eq!(f.compacted.lock().unwrap().len(), 1);
        f.rev.store(200, Ordering::SeqCst);
        tokio::time::sleep(REVISION_INTERVAL).await;
        assert_eq!(*f.compacted.lock().unwrap(), vec![70, 170]);
        task.abort();
    }
}
