//! Request IDs and the registry a proposer waits in until apply reports its result.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// Cluster-unique request IDs, as etcd's idutil: the member ID's low 16 bits, then a
/// millisecond timestamp and a counter, so IDs from different members and restarts differ.
pub struct IdGenerator {
    prefix: u64,
    suffix: AtomicU64,
}

const SUFFIX_BITS: u32 = 48;

impl IdGenerator {
    pub fn new(member_id: u64, now_ms: u64) -> Self {
        IdGenerator {
            prefix: member_id << SUFFIX_BITS,
            suffix: AtomicU64::new((now_ms & ((1 << 40) - 1)) << 8),
        }
    }

    pub fn next(&self) -> u64 {
        let s = self.suffix.fetch_add(1, Ordering::Relaxed) + 1;
        self.prefix | (s & ((1 << SUFFIX_BITS) - 1))
    }
}

const SHARDS: usize = 16;

/// Pending proposals by request ID. Each shard is a small map behind its own lock so that
/// many concurrent proposers and the apply thread rarely contend.
pub struct Wait<T> {
    shards: [Mutex<HashMap<u64, oneshot::Sender<T>>>; SHARDS],
}

impl<T> Default for Wait<T> {
    fn default() -> Self {
        Wait {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl<T> Wait<T> {
    fn shard(&self, id: u64) -> &Mutex<HashMap<u64, oneshot::Sender<T>>> {
        &self.shards[(id as usize) % SHARDS]
    }

    pub fn register(&self, id: u64) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let old = self.shard(id).lock().insert(id, tx);
        debug_assert!(old.is_none(), "duplicate request id {id:x}");
        rx
    }

    /// Delivers the result to the waiter, if it is still waiting. Returns whether one was.
    pub fn trigger(&self, id: u64, value: T) -> bool {
        match self.shard(id).lock().remove(&id) {
            Some(tx) => tx.send(value).is_ok(),
            None => false,
        }
    }

    /// Forgets a waiter that gave up (timeout, cancelled request).
    pub fn cancel(&self, id: u64) {
        self.shard(id).lock().remove(&id);
    }

    /// Forgets every waiter: each hears that no result will come.
    pub fn cancel_all(&self) {
        for shard in &self.shards {
            shard.lock().clear();
        }
    }

    pub fn is_registered(&self, id: u64) -> bool {
        self.shard(id).lock().contains_key(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_carry_the_member() {
        let g = IdGenerator::new(0xabcd, 12345);
        let a = g.next();
        let b = g.next();
        assert_ne!(a, b);
        assert_eq!(a >> 48, 0xabcd);
        let other = IdGenerator::new(0xabce, 12345);
        assert_ne!(other.next(), a);
    }

    #[tokio::test]
    async fn trigger_reaches_the_waiter_once() {
        let w: Wait<u32> = Wait::default();
        let rx = w.register(7);
        assert!(w.is_registered(7));
        assert!(w.trigger(7, 42));
        assert!(!w.trigger(7, 43));
        assert_eq!(rx.await.unwrap(), 42);
        let rx = w.register(8);
        w.cancel(8);
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    async fn cancel_all_tells_every_waiter() {
        let w: Wait<u32> = Wait::default();
        let rxs: Vec<_> = (0..40).map(|id| w.register(id)).collect();
        w.cancel_all();
        for rx in rxs {
            assert!(rx.await.is_err());
        }
        assert!(!w.is_registered(3));
    }
}
