use super::*;
use crate::backend::{Backend, BackendOptions};

struct Fixture {
    _dir: tempfile::TempDir,
    store: KvStore,
}

fn open_at(dir: &std::path::Path) -> (KvStore, Restored) {
    let backend = Arc::new(Backend::open(&dir.join("db"), &BackendOptions::default()).unwrap());
    KvStore::open(backend).unwrap()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (store, restored) = open_at(dir.path());
    assert_eq!(restored.current_rev, 1);
    Fixture { _dir: dir, store }
}

/// Applies `f` as one batch holding one etcd transaction and publishes it.
fn txn<T>(store: &KvStore, f: impl FnOnce(&mut TxnWrite<'_, '_, '_>) -> T) -> (T, Vec<Event>) {
    let tx = store.backend().begin_write().unwrap();
    let (out, rev, events) = {
        let mut batch = store.write(&tx).unwrap();
        let out = {
            let mut t = batch.txn();
            f(&mut t)
        };
        let (rev, events, _) = batch.finish();
        (out, rev, events)
    };
    tx.commit().unwrap();
    store.publish(rev, Vec::new());
    (out, events)
}

fn put(store: &KvStore, k: &str, v: &str) -> i64 {
    txn(store, |t| t.put(k.as_bytes(), v.as_bytes(), 0).unwrap()).0
}

fn del(store: &KvStore, k: &str, end: RangeEnd<'_>) -> usize {
    txn(store, |t| {
        t.delete_range(k.as_bytes(), end).unwrap().0.len()
    })
    .0
}

fn get(store: &KvStore, k: &str, rev: i64) -> Result<Option<KeyValue>> {
    let r = store.range(
        k.as_bytes(),
        RangeEnd::Single,
        RangeOptions {
            rev,
            ..Default::default()
        },
    )?;
    Ok(r.kvs.into_iter().next())
}

#[test]
fn revisions_versions_and_history() {
    let f = fixture();
    let s = &f.store;
    assert_eq!(put(s, "foo", "a"), 2);
    assert_eq!(put(s, "foo", "b"), 3);
    assert_eq!(put(s, "bar", "x"), 4);
    let kv = get(s, "foo", 0).unwrap().unwrap();
    assert_eq!(
        (
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            kv.value.as_slice()
        ),
        (2, 3, 2, &b"b"[..])
    );
    assert_eq!(get(s, "foo", 2).unwrap().unwrap().value, b"a");
    assert_eq!(del(s, "foo", RangeEnd::Single), 1);
    assert_eq!(s.current_rev(), 5);
    assert!(get(s, "foo", 0).unwrap().is_none());
    assert_eq!(get(s, "foo", 4).unwrap().unwrap().value, b"b");
    // Re-created: a new generation with version 1.
    assert_eq!(put(s, "foo", "c"), 6);
    let kv = get(s, "foo", 0).unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.version), (6, 1));
    // Deleting nothing does not bump the revision.
    assert_eq!(del(s, "nope", RangeEnd::Single), 0);
    assert_eq!(s.current_rev(), 6);
    assert!(matches!(get(s, "foo", 7), Err(MvccError::FutureRev)));
}

#[test]
fn range_limit_count_and_conventions() {
    let f = fixture();
    let s = &f.store;
    for k in ["a", "b", "c", "d"] {
        put(s, k, k);
    }
    let r = s
        .range(
            b"a",
            RangeEnd::Before(b"d"),
            RangeOptions {
                limit: 2,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.kvs.len(), 2);
    assert_eq!(r.count, 3);
    assert_eq!(r.rev, 5);
    let r = s
        .range(
            b"\0",
            RangeEnd::from_request(b"\0"),
            RangeOptions {
                count_only: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(r.kvs.is_empty());
    assert_eq!(r.count, 4);
}

#[test]
fn txn_sees_its_own_writes_and_shares_one_revision() {
    let f = fixture();
    let s = &f.store;
    let ((r1, r2, seen, n), events) = txn(s, |t| {
        let r1 = t.put(b"k1", b"v1", 0).unwrap();
        let r2 = t.put(b"k1", b"v2", 7).unwrap();
        let seen = t.get(b"k1").unwrap().unwrap();
        let n = t.delete_range(b"k1", RangeEnd::Single).unwrap().0.len();
        (r1, r2, seen, n)
    });
    assert_eq!((r1, r2), (2, 2));
    assert_eq!(
        (seen.value.as_slice(), seen.version, seen.lease),
        (&b"v2"[..], 2, 7)
    );
    assert_eq!(n, 1);
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].r#type, EventType::Delete as i32);
    assert_eq!(events[2].kv.as_ref().unwrap().mod_revision, 2);
    assert_eq!(s.current_rev(), 2);
}

#[test]
fn compaction_keeps_latest_and_rejects_old_reads() {
    let f = fixture();
    let s = &f.store;
    put(s, "a", "1"); // 2
    put(s, "a", "2"); // 3
    put(s, "b", "1"); // 4
    del(s, "b", RangeEnd::Single); // 5
    put(s, "c", "1"); // 6
    let tx = s.backend().begin_write().unwrap();
    s.schedule_compaction(&tx, 5, s.current_rev()).unwrap();
    tx.commit().unwrap();
    let deleted = s.compact(5, 2).unwrap();
    // a@2, b@4 and b's tombstone @5 go; a@3 and c@6 stay.
    assert_eq!(deleted, 3);
    assert!(matches!(get(s, "a", 4), Err(MvccError::Compacted)));
    assert_eq!(get(s, "a", 5).unwrap().unwrap().value, b"2");
    assert!(get(s, "b", 5).unwrap().is_none());
    let tx = s.backend().begin_write().unwrap();
    assert!(matches!(
        s.schedule_compaction(&tx, 5, 6),
        Err(MvccError::Compacted)
    ));
    assert!(matches!(
        s.schedule_compaction(&tx, 9, 6),
        Err(MvccError::FutureRev)
    ));
}

#[test]
fn restart_rebuilds_index_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let before_hash;
    {
        let (s, _) = open_at(dir.path());
        put(&s, "a", "1"); // 2
        put(&s, "a", "2"); // 3
        put(&s, "b", "1"); // 4
        del(&s, "b", RangeEnd::Single); // 5
        let tx = s.backend().begin_write().unwrap();
        s.schedule_compaction(&tx, 4, 5).unwrap();
        tx.commit().unwrap();
        s.compact(4, 100).unwrap();
        put(&s, "a", "3"); // 6
        s.backend().force_commit().unwrap();
        before_hash = s.hash_kv(0).unwrap();
    }
    let (s, restored) = open_at(dir.path());
    assert_eq!(
        restored,
        Restored {
            current_rev: 6,
            compact_rev: 4,
            pending_compaction: None,
            key_leases: Vec::new(),
        }
    );
    let kv = get(&s, "a", 0).unwrap().unwrap();
    // Version survives the loss of the compacted history.
    assert_eq!((kv.create_revision, kv.version, kv.mod_revision), (2, 3, 6));
    assert_eq!(get(&s, "a", 4).unwrap().unwrap().value, b"2");
    assert!(get(&s, "b", 5).unwrap().is_none());
    assert_eq!(s.hash_kv(0).unwrap(), before_hash);
}

#[test]
fn interrupted_compaction_is_reported_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (s, _) = open_at(dir.path());
        put(&s, "a", "1");
        put(&s, "a", "2");
        let tx = s.backend().begin_write().unwrap();
        s.schedule_compaction(&tx, 3, 3).unwrap();
        tx.commit().unwrap();
        s.backend().force_commit().unwrap();
        // Stop before the backend deletion runs.
    }
    let (s, restored) = open_at(dir.path());
    assert_eq!(restored.pending_compaction, Some(3));
    assert_eq!(s.compact(3, 10).unwrap(), 1);
    assert!(matches!(get(&s, "a", 2), Err(MvccError::Compacted)));
    assert_eq!(get(&s, "a", 3).unwrap().unwrap().value, b"2");
}

#[test]
fn events_between_reads_history_in_order() {
    let f = fixture();
    let s = &f.store;
    put(s, "a", "1"); // 2
    put(s, "b", "1"); // 3
    del(s, "a", RangeEnd::Single); // 4
    let ev = s.events_between(b"a", RangeEnd::Single, 2, 4).unwrap();
    let summary: Vec<_> = ev
        .iter()
        .map(|e| (e.r#type, e.kv.as_ref().unwrap().mod_revision))
        .collect();
    assert_eq!(
        summary,
        vec![(EventType::Put as i32, 2), (EventType::Delete as i32, 4)]
    );
    assert_eq!(
        s.events_between(b"", RangeEnd::Unbounded, 3, 4)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn events_within_stops_at_a_revision_after_the_byte_budget() {
    let f = fixture();
    let s = &f.store;
    for _ in 0..5 {
        put(s, "k", "0123456789"); // 2..=6, 11 bytes each
    }
    let (ev, through) = s.events_within(b"k", RangeEnd::Single, 2, 6, 15).unwrap();
    assert_eq!((ev.len(), through), (2, 3));
    let (ev, through) = s.events_within(b"k", RangeEnd::Single, 4, 6, 1000).unwrap();
    assert_eq!((ev.len(), through), (3, 6));
    // At least one revision, however small the budget.
    let (ev, through) = s.events_within(b"k", RangeEnd::Single, 6, 6, 0).unwrap();
    assert_eq!((ev.len(), through), (1, 6));
}

#[test]
fn hash_is_equal_for_equal_histories() {
    let a = fixture();
    let b = fixture();
    for s in [&a.store, &b.store] {
        put(s, "x", "1");
        put(s, "y", "2");
    }
    assert_eq!(a.store.hash_kv(0).unwrap(), b.store.hash_kv(0).unwrap());
    put(&a.store, "z", "3");
    put(&b.store, "z", "4");
    assert_ne!(a.store.hash_kv(0).unwrap().0, b.store.hash_kv(0).unwrap().0);
}

#[test]
fn dump_and_restore_round_trip() {
    let f = fixture();
    put(&f.store, "a", "1");
    put(&f.store, "b", "2");
    del(&f.store, "a", RangeEnd::Single);
    let mut dump = Vec::new();
    let tx = f.store.backend().begin_read().unwrap();
    Backend::dump(&tx, &mut dump).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restored");
    let backend =
        Backend::restore(&mut dump.as_slice(), &path, &BackendOptions::default()).unwrap();
    let (restored, r) = KvStore::open(Arc::new(backend)).unwrap();
    assert_eq!(r.current_rev, 4);
    assert_eq!(restored.hash_kv(0).unwrap(), f.store.hash_kv(0).unwrap());
    // A flipped byte or a cut dump is refused and leaves no file.
    let mut bad = dump.clone();
    bad[10] ^= 1;
    assert!(Backend::restore(
        &mut bad.as_slice(),
        &path.with_extension("bad"),
        &BackendOptions::default()
    )
    .is_err());
    assert!(!path.with_extension("bad").exists());
    let cut = &dump[..dump.len() - 3];
    assert!(Backend::restore(
        &mut &cut[..],
        &path.with_extension("cut"),
        &BackendOptions::default()
    )
    .is_err());
}

#[test]
fn restart_reports_keys_attached_to_leases() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (s, _) = open_at(dir.path());
        txn(&s, |t| t.put(b"a", b"1", 7).unwrap());
        txn(&s, |t| t.put(b"b", b"1", 7).unwrap());
        txn(&s, |t| t.put(b"a", b"2", 0).unwrap()); // detached
        txn(&s, |t| t.put(b"c", b"1", 9).unwrap());
        del(&s, "c", RangeEnd::Single);
        s.backend().force_commit().unwrap();
    }
    let (_, restored) = open_at(dir.path());
    assert_eq!(restored.key_leases, vec![(b"b".to_vec(), 7)]);
}

#[test]
fn pending_batches_are_read_before_their_transaction_commits() {
    let f = fixture();
    let s = &f.store;
    put(s, "a", "committed"); // rev 2
    let tx = s.backend().begin_write().unwrap();
    let (rev, _, chunk) = {
        let mut batch = s.write(&tx).unwrap();
        {
            let mut t = batch.txn();
            t.put(b"a", b"pending", 0).unwrap();
            t.put(b"b", b"pending", 0).unwrap();
        }
        batch.txn().delete_range(b"a", RangeEnd::Single).unwrap();
        batch.finish()
    };
    s.publish(rev, chunk);
    // Not committed yet: readers see the batch through the pending records.
    assert_eq!(get(s, "b", 0).unwrap().unwrap().value, b"pending");
    assert_eq!(get(s, "a", 3).unwrap().unwrap().value, b"pending");
    assert!(get(s, "a", 0).unwrap().is_none());
    let ev = s.events_between(b"a", RangeEnd::Single, 2, rev).unwrap();
    assert_eq!(ev.len(), 3);
    let before = s.hash_kv(0).unwrap();
    tx.commit().unwrap();
    // Committed, not yet cleared: the pending records repeat the backend's, once each.
    assert_eq!(
        s.events_between(b"a", RangeEnd::Single, 2, rev).unwrap(),
        ev
    );
    assert_eq!(s.hash_kv(0).unwrap(), before);
    s.committed();
    assert_eq!(get(s, "b", 0).unwrap().unwrap().value, b"pending");
    assert_eq!(
        s.events_between(b"a", RangeEnd::Single, 2, rev).unwrap(),
        ev
    );
    assert_eq!(s.hash_kv(0).unwrap(), before);
}

#[test]
fn restart_rebuilds_an_index_of_many_chunks_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3 * 4096 + 17;
    let (before, hash, before_delete) = {
        let (s, _) = open_at(dir.path());
        txn(&s, |t| {
            for i in 0..n {
                t.put(format!("k{i:05}").as_bytes(), b"1", i as i64 % 3)
                    .unwrap();
            }
        });
        for i in (0..n).step_by(7) {
            put(&s, &format!("k{i:05}"), "2");
        }
        let before_delete = s.current_rev();
        del(&s, "k00100", RangeEnd::Before(b"k00200"));
        put(&s, "k00150", "back");
        // Keys of 16 bytes and less are held in the index's nodes, longer ones on the
        // heap: both kinds, sorting among each other.
        for long in [
            "k00300-sixteen-b",
            "k00300-seventeen-",
            &format!("k00300{}", "x".repeat(40)),
        ] {
            put(&s, long, "long");
        }
        s.backend().force_commit().unwrap();
        let all = s
            .range(b"\0", RangeEnd::Unbounded, RangeOptions::default())
            .unwrap();
        (all.kvs, s.hash_kv(0).unwrap(), before_delete)
    };
    let (s, restored) = open_at(dir.path());
    let after = s
        .range(b"\0", RangeEnd::Unbounded, RangeOptions::default())
        .unwrap();
    assert_eq!(after.kvs, before);
    assert_eq!(s.hash_kv(0).unwrap(), hash);
    assert_eq!(restored.current_rev, s.current_rev());
    let leased = before.iter().filter(|kv| kv.lease != 0).count();
    assert_eq!(restored.key_leases.len(), leased);
    // History survives too: the deleted range is readable at the revision before.
    let old = s.range(
        b"k00100",
        RangeEnd::Before(b"k00200"),
        RangeOptions {
            rev: before_delete,
            ..Default::default()
        },
    );
    assert_eq!(old.unwrap().kvs.len(), 100);
}
