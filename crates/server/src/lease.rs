//! Leases (etcd's lessor): TTL'd handles that keys attach to; revoking a lease deletes
//! its keys in one revision.
//!
//! ```text
//!  replicated (apply, every member)      leader only (primary)
//!  grant / revoke / checkpoint / attach   expiry times, renewals (keep-alives),
//!  persisted in the `lease` table         expiry scan → LeaseRevoke proposals,
//!                                         periodic remaining-TTL checkpoints
//! ```
//! Only the leader keeps expiry times. Followers hold every lease "forever"; a member
//! that becomes leader starts each clock from the last checkpointed remaining TTL (or the
//! full TTL) plus an election timeout, so a leader change neither expires leases early nor
//! hands them a fresh full TTL (beyond one checkpoint interval).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chorus_api::internalpb::LeaseRecord;
use chorus_storage::backend::{Backend, BackendError, LEASES};
use prost::Message as _;
use redb::ReadableTable;
use tokio::time::Instant;

use crate::error::EtcdError;

/// etcd's MaxLeaseTTL (seconds).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

#[derive(Debug)]
struct Lease {
    /// Granted TTL, seconds (raised to the minimum TTL).
    ttl: i64,
    /// Last checkpointed remaining TTL, seconds; 0 = none.
    remaining_ttl: i64,
    /// When the lease expires; None while this member is not the leader.
    expiry: Option<Instant>,
    /// When the leader should next checkpoint this lease.
    next_checkpoint: Option<Instant>,
    /// The leader found it expired and proposed its revoke; `expiry` is then the time to
    /// propose again if the revoke is lost.
    expired: bool,
    keys: HashSet<Vec<u8>>,
}

impl Lease {
    fn full_or_checkpointed(&self) -> i64 {
        if self.remaining_ttl > 0 {
            self.remaining_ttl
        } else {
            self.ttl
        }
    }

    fn record(&self, id: i64) -> LeaseRecord {
        LeaseRecord {
            id,
            ttl: self.ttl,
            remaining_ttl: self.remaining_ttl,
        }
    }
}

/// What `time_to_live` reports.
#[derive(Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// Seconds left (truncated, as etcd); on a follower, the granted TTL.
    pub remaining: i64,
    pub granted: i64,
    pub keys: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub struct Lessor {
    leases: HashMap<i64, Lease>,
    /// Key -> the lease it is attached to.
    items: HashMap<Vec<u8>, i64>,
    primary: bool,
    min_ttl: i64,
    checkpoint_interval: Option<Duration>,
    persist_checkpoints: bool,
    /// Leases renewed since their remaining TTL was checkpointed: the leader checkpoints
    /// them back to "full TTL" in its next batch.
    cleared: HashSet<i64>,
}

impl Lessor {
    /// Loads the leases of a backend and attaches the keys that name them.
    pub fn load(
        backend: &Backend,
        key_leases: &[(Vec<u8>, i64)],
        min_ttl: i64,
        checkpoint_interval: Option<Duration>,
        persist_checkpoints: bool,
    ) -> Result<Lessor, BackendError> {
        let tx = backend.begin_read()?;
        let table = tx.open_table(LEASES)?;
        let mut leases = HashMap::new();
        for item in table.iter()? {
            let (k, v) = item?;
            let r = LeaseRecord::decode(v.value()).map_err(|e| BackendError::Corrupt {
                what: format!("lease {:x}: {e}", k.value()),
            })?;
            leases.insert(
                r.id,
                Lease {
                    ttl: r.ttl,
                    remaining_ttl: r.remaining_ttl,
                    expiry: None,
                    next_checkpoint: None,
                    expired: false,
                    keys: HashSet::new(),
                },
            );
        }
        let mut lessor = Lessor {
            leases,
            items: HashMap::new(),
            primary: false,
            min_ttl,
            checkpoint_interval,
            persist_checkpoints,
            cleared: HashSet::new(),
        };
        for (key, id) in key_leases {
            lessor.attach(key, *id);
        }
        Ok(lessor)
    }

    /// Replaces the leases with those of a backend that replaced the old one (a snapshot
    /// from the leader), keeping the configuration; a primary lessor stays primary and
    /// gives every lease a fresh clock extended by `extend`.
    pub fn reload(
        &mut self,
        backend: &Backend,
        key_leases: &[(Vec<u8>, i64)],
        extend: Duration,
    ) -> Result<(), BackendError> {
        let mut fresh = Lessor::load(
            backend,
            key_leases,
            self.min_ttl,
            self.checkpoint_interval,
            self.persist_checkpoints,
        )?;
        if self.primary {
            fresh.promote(extend);
        }
        *self = fresh;
        Ok(())
    }

    pub fn exists(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn is_primary(&self) -> bool {
        self.primary
    }

    fn persist(tx: &redb::WriteTransaction, id: i64, l: &Lease) -> Result<(), BackendError> {
        tx.open_table(LEASES)?
            .insert(id, l.record(id).encode_to_vec().as_slice())?;
        Ok(())
    }

    /// Applies a grant; returns the effective TTL.
    pub fn grant(
        &mut self,
        tx: &redb::WriteTransaction,
        id: i64,
        ttl: i64,
    ) -> Result<i64, GrantError> {
        if id == 0 {
            return Err(GrantError::Etcd(EtcdError::LeaseNotFound));
        }
        if ttl > MAX_LEASE_TTL {
            return Err(GrantError::Etcd(EtcdError::LeaseTtlTooLarge));
        }
        if self.leases.contains_key(&id) {
            return Err(GrantError::Etcd(EtcdError::LeaseExist));
        }
        let ttl = ttl.max(self.min_ttl);
        let now = Instant::now();
        let lease = Lease {
            ttl,
            remaining_ttl: 0,
            expiry: self.primary.then(|| now + Duration::from_secs(ttl as u64)),
            next_checkpoint: self.first_checkpoint(now, ttl),
            expired: false,
            keys: HashSet::new(),
        };
        Self::persist(tx, id, &lease).map_err(GrantError::Backend)?;
        self.leases.insert(id, lease);
        chorus_metrics::LEASE_GRANTED.inc();
        chorus_metrics::LEASE_TTL.observe(ttl as f64);
        Ok(ttl)
    }

    fn first_checkpoint(&self, now: Instant, ttl: i64) -> Option<Instant> {
        let every = self.checkpoint_interval?;
        // A lease that lives shorter than the interval is never checkpointed (as etcd).
        (self.primary && Duration::from_secs(ttl as u64) > every).then_some(now + every)
    }

    /// The keys a revoke must delete, sorted (the caller deletes them in one txn).
    pub fn keys(&self, id: i64) -> Option<Vec<Vec<u8>>> {
        let mut keys: Vec<Vec<u8>> = self.leases.get(&id)?.keys.iter().cloned().collect();
        keys.sort();
        Some(keys)
    }

    /// Removes a revoked lease (its keys were deleted by the caller).
    pub fn remove(&mut self, tx: &redb::WriteTransaction, id: i64) -> Result<(), BackendError> {
        if let Some(l) = self.leases.remove(&id) {
            chorus_metrics::LEASE_REVOKED.inc();
            for k in l.keys {
                self.items.remove(&k);
            }
        }
        self.cleared.remove(&id);
        tx.open_table(LEASES)?.remove(id)?;
        Ok(())
    }

    /// Applies a checkpoint of a lease's remaining TTL (0: back to the full TTL).
    pub fn checkpoint(
        &mut self,
        tx: &redb::WriteTransaction,
        id: i64,
        remaining: i64,
    ) -> Result<(), BackendError> {
        let persist = self.persist_checkpoints;
        if let Some(l) = self.leases.get_mut(&id) {
            l.remaining_ttl = remaining;
            if persist {
                Self::persist(tx, id, l)?;
            }
        }
        Ok(())
    }

    /// Records that `key` now belongs to lease `id` (0: to no lease).
    pub fn attach(&mut self, key: &[u8], id: i64) {
        self.detach(key);
        if id == 0 {
            return;
        }
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.insert(key.to_vec());
            self.items.insert(key.to_vec(), id);
        }
    }

    pub fn detach(&mut self, key: &[u8]) {
        if let Some(old) = self.items.remove(key) {
            if let Some(l) = self.leases.get_mut(&old) {
                l.keys.remove(key);
            }
        }
    }

    /// This member became leader: start every lease's clock (etcd's Promote).
    pub fn promote(&mut self, extend: Duration) {
        self.primary = true;
        let now = Instant::now();
        let interval = self.checkpoint_interval;
        for l in self.leases.values_mut() {
            l.expired = false;
            l.expiry = Some(now + extend + Duration::from_secs(l.full_or_checkpointed() as u64));
            l.next_checkpoint = interval
                .filter(|every| Duration::from_secs(l.ttl as u64) > *every)
                .map(|every| now + every);
        }
    }

    /// This member stopped being leader: leases live forever here until it leads again.
    pub fn demote(&mut self) {
        self.primary = false;
        self.cleared.clear();
        for l in self.leases.values_mut() {
            l.expiry = None;
            l.next_checkpoint = None;
            l.expired = false;
        }
    }

    /// A keep-alive on the leader; returns the TTL. An expired lease cannot be renewed.
    pub fn renew(&mut self, id: i64) -> Result<i64, EtcdError> {
        if !self.primary {
            return Err(EtcdError::NotLeader);
        }
        let now = Instant::now();
        let l = self.leases.get_mut(&id).ok_or(EtcdError::LeaseNotFound)?;
        if l.expired || l.expiry.is_some_and(|e| e <= now) {
            return Err(EtcdError::LeaseNotFound);
        }
        l.expiry = Some(now + Duration::from_secs(l.ttl as u64));
        chorus_metrics::LEASE_RENEWED.inc();
        if l.remaining_ttl > 0 {
            // Tell the other members the full TTL is back, in the next checkpoint batch.
            l.remaining_ttl = 0;
            self.cleared.insert(id);
        }
        Ok(l.ttl)
    }

    pub fn time_to_live(&self, id: i64, keys: bool) -> Option<LeaseInfo> {
        let l = self.leases.get(&id)?;
        let remaining = match l.expiry {
            _ if l.expired => 0,
            Some(e) => e.saturating_duration_since(Instant::now()).as_secs() as i64,
            None => l.ttl,
        };
        let mut ks: Vec<Vec<u8>> = if keys {
            l.keys.iter().cloned().collect()
        } else {
            Vec::new()
        };
        ks.sort();
        Some(LeaseInfo {
            remaining,
            granted: l.ttl,
            keys: ks,
        })
    }

    /// Every lease: on the leader soonest to expire first (as etcd lists them), else by ID.
    pub fn leases(&self) -> Vec<i64> {
        let mut ids: Vec<(Option<Instant>, i64)> =
            self.leases.iter().map(|(id, l)| (l.expiry, *id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Leases past their expiry (leader only), at most `limit`. Each is given a short
    /// grace before it is reported again, in case its revoke is lost.
    pub fn expired(&mut self, limit: usize, retry: Duration) -> Vec<i64> {
        if !self.primary {
            return Vec::new();
        }
        let now = Instant::now();
        let mut out = Vec::new();
        for (id, l) in self.leases.iter_mut() {
            if out.len() >= limit {
                break;
            }
            if l.expiry.is_some_and(|e| e <= now) {
                out.push(*id);
                if !l.expired {
                    chorus_metrics::LEASE_EXPIRED.inc();
                }
                l.expired = true;
                l.expiry = Some(now + retry);
            }
        }
        out
    }

    /// Remaining TTLs to checkpoint now (leader only), at most `limit`: leases whose turn
    /// came, and renewed leases going back to their full TTL (remaining 0).
    pub fn due_checkpoints(&mut self, limit: usize) -> Vec<(i64, i64)> {
        if !self.primary {
            return Vec::new();
        }
        let now = Instant::now();
        let mut out: Vec<(i64, i64)> = Vec::new();
        for id in self.cleared.drain().take(limit) {
            out.push((id, 0));
        }
        let Some(every) = self.checkpoint_interval else {
            return out;
        };
        for (id, l) in self.leases.iter_mut() {
            if out.len() >= limit {
                break;
            }
            if !l.expired && l.next_checkpoint.is_some_and(|t| t <= now) {
                if let Some(e) = l.expiry {
                    let left = e.saturating_duration_since(now);
                    // Round up: a checkpoint never shortens a lease.
                    let secs = left.as_secs() as i64 + i64::from(left.subsec_nanos() > 0);
                    out.push((*id, secs.max(1)));
                }
                l.next_checkpoint = Some(now + every);
            }
        }
        out
    }
}

#[derive(Debug)]
pub enum GrantError {
    Etcd(EtcdError),
    Backend(BackendError),
}

impl crate::kv::LeaseCheck for Lessor {
    fn exists(&self, id: i64) -> bool {
        Lessor::exists(self, id)
    }
}

/// etcd's minimum lease TTL: 1.5 election timeouts, rounded up to whole seconds.
pub fn min_ttl(election_ticks: u64, heartbeat_ms: u64) -> i64 {
    let ms = (3 * election_ticks / 2) * heartbeat_ms;
    ms.div_ceil(1000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        backend: Backend,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(&dir.path().join("db"), &Default::default()).unwrap();
        Fixture { _dir: dir, backend }
    }

    fn lessor(f: &Fixture) -> Lessor {
        Lessor::load(&f.backend, &[], 2, Some(Duration::from_secs(5)), true).unwrap()
    }

    fn with_tx<T>(f: &Fixture, op: impl FnOnce(&redb::WriteTransaction) -> T) -> T {
        let tx = f.backend.begin_write().unwrap();
        let out = op(&tx);
        tx.commit().unwrap();
        out
    }

    #[test]
    fn min_ttl_follows_etcd() {
        assert_eq!(min_ttl(10, 100), 2); // 1.5 s rounds up
        assert_eq!(min_ttl(10, 50), 1);
        assert_eq!(min_ttl(20, 100), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn grant_errors_and_minimum_ttl() {
        let f = fixture();
        let mut l = lessor(&f);
        assert_eq!(with_tx(&f, |tx| l.grant(tx, 1, 1).unwrap()), 2);
        assert!(matches!(
            with_tx(&f, |tx| l.grant(tx, 1, 10)),
            Err(GrantError::Etcd(EtcdError::LeaseExist))
        ));
        assert!(matches!(
            with_tx(&f, |tx| l.grant(tx, 2, MAX_LEASE_TTL + 1)),
            Err(GrantError::Etcd(EtcdError::LeaseTtlTooLarge))
        ));
        // Persisted: a reload sees the lease.
        let reloaded = lessor(&f);
        assert!(reloaded.exists(1));
        assert_eq!(reloaded.time_to_live(1, false).unwrap().granted, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn leader_expires_renews_and_checkpoints() {
        let f = fixture();
        let mut l = lessor(&f);
        l.promote(Duration::ZERO);
        with_tx(&f, |tx| l.grant(tx, 7, 10).unwrap());
        l.attach(b"k", 7);
        tokio::time::advance(Duration::from_secs(6)).await;
        // The checkpoint rounds the remaining 4 s up.
        assert_eq!(l.due_checkpoints(100), vec![(7, 4)]);
        with_tx(&f, |tx| l.checkpoint(tx, 7, 4).unwrap());
        // A renewal resets the clock and queues a "full TTL again" checkpoint.
        assert_eq!(l.renew(7), Ok(10));
        assert_eq!(l.due_checkpoints(100), vec![(7, 0)]);
        assert_eq!(l.time_to_live(7, true).unwrap().keys, vec![b"k".to_vec()]);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(l.expired(10, Duration::from_secs(3)), vec![7]);
        // Reported once, then again only after the retry interval.
        assert!(l.expired(10, Duration::from_secs(3)).is_empty());
        assert_eq!(l.renew(7), Err(EtcdError::LeaseNotFound));
        assert_eq!(l.keys(7).unwrap(), vec![b"k".to_vec()]);
        with_tx(&f, |tx| l.remove(tx, 7).unwrap());
        assert!(!l.exists(7) && l.items.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn new_leader_starts_from_the_checkpoint_not_the_full_ttl() {
        let f = fixture();
        let mut l = lessor(&f);
        with_tx(&f, |tx| l.grant(tx, 1, 60).unwrap());
        with_tx(&f, |tx| l.checkpoint(tx, 1, 20).unwrap());
        // A follower neither expires nor renews.
        assert_eq!(l.renew(1), Err(EtcdError::NotLeader));
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(l.expired(10, Duration::ZERO).is_empty());
        // After a full restart the checkpoint is still there.
        let mut l = lessor(&f);
        l.promote(Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(l.expired(10, Duration::ZERO).is_empty());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(l.expired(10, Duration::ZERO), vec![1]);
    }

    #[tokio::test(start_paused = true)]
    async fn attach_moves_keys_between_leases() {
        let f = fixture();
        let mut l = lessor(&f);
        with_tx(&f, |tx| {
            l.grant(tx, 1, 10).unwrap();
            l.grant(tx, 2, 10).unwrap();
        });
        l.attach(b"k", 1);
        l.attach(b"k", 2);
        assert!(l.keys(1).unwrap().is_empty());
        assert_eq!(l.keys(2).unwrap(), vec![b"k".to_vec()]);
        l.attach(b"k", 0);
        assert!(l.keys(2).unwrap().is_empty());
        // Keys restored from the key space at start-up.
        let l = Lessor::load(&f.backend, &[(b"x".to_vec(), 1)], 2, None, true).unwrap();
        assert_eq!(l.keys(1).unwrap(), vec![b"x".to_vec()]);
    }
}
