use std::sync::Arc;

use chorus_storage::backend::{Backend, BackendOptions};
use chorus_storage::mvcc::{KvStore, RangeEnd};

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    kv: KvStore,
    hub: Arc<WatchHub>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::open(&dir.path().join("db"), &BackendOptions::default()).unwrap();
    let (kv, _) = KvStore::open(Arc::new(backend)).unwrap();
    let hub = WatchHub::new(kv.current_rev());
    Fixture { _dir: dir, kv, hub }
}

/// Applies one txn of puts (and deletes for `None` values) and notifies the hub.
fn apply(f: &Fixture, ops: &[(&str, Option<&str>)]) -> i64 {
    let tx = f.kv.backend().begin_write().unwrap();
    let (rev, events, _) = {
        let mut batch = f.kv.write(&tx).unwrap();
        {
            let mut t = batch.txn();
            for (k, v) in ops {
                match v {
                    Some(v) => {
                        t.put(k.as_bytes(), v.as_bytes(), 0).unwrap();
                    }
                    None => {
                        t.delete_range(k.as_bytes(), RangeEnd::Single).unwrap();
                    }
                }
            }
        }
        batch.finish()
    };
    tx.commit().unwrap();
    f.kv.publish(rev, Vec::new());
    f.hub.notify(rev, &events);
    rev
}

fn spec(key: &str, end: &str, start_rev: i64) -> WatchSpec {
    WatchSpec {
        key: key.into(),
        range_end: end.into(),
        start_rev,
        no_put: false,
        no_delete: false,
        progress_notify: false,
        prev_kv: false,
        fragment: false,
    }
}

/// Everything queued so far for a stream.
fn drain(stream: &StreamHandle, rx: &mut mpsc::UnboundedReceiver<Outgoing>) -> Vec<Outgoing> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        stream.taken(&m);
        out.push(m);
    }
    out
}

/// (revision, key, is_put) of every event delivered to `watch_id`.
fn events_of(msgs: &[Outgoing], watch_id: i64) -> Vec<(i64, String, bool)> {
    msgs.iter()
        .filter_map(|m| match m {
            Outgoing::Events {
                watch_id: w,
                events,
                ..
            } if *w == watch_id => Some(events),
            _ => None,
        })
        .flatten()
        .map(|e| {
            let kv = e.kv.as_ref().unwrap();
            (
                kv.mod_revision,
                String::from_utf8(kv.key.clone()).unwrap(),
                e.r#type == EventType::Put as i32,
            )
        })
        .collect()
}

#[test]
fn live_events_in_order_with_one_message_per_txn() {
    let f = fixture();
    let (s, mut rx) = StreamHandle::new(1);
    let id = f.hub.watch(&s, 0, spec("a", "b", 0)).unwrap();
    assert_eq!(id, 0);
    apply(
        &f,
        &[("a1", Some("x")), ("a2", Some("y")), ("zz", Some("no"))],
    );
    apply(&f, &[("a1", None)]);
    let msgs = drain(&s, &mut rx);
    assert!(matches!(msgs[0], Outgoing::Created { watch_id: 0, .. }));
    // The txn's two events arrive together, then the delete.
    let Outgoing::Events { events, rev, .. } = &msgs[1] else {
        panic!("{msgs:?}")
    };
    assert_eq!((events.len(), *rev), (2, 2));
    assert_eq!(
        events_of(&msgs, 0),
        vec![
            (2, "a1".into(), true),
            (2, "a2".into(), true),
            (3, "a1".into(), false)
        ]
    );
}

#[test]
fn catch_up_from_history_then_live_without_gap_or_duplicate() {
    let f = fixture();
    for i in 0..5 {
        apply(&f, &[("k", Some(&i.to_string()))]); // revs 2..=6
    }
    let (s, mut rx) = StreamHandle::new(1);
    f.hub.watch(&s, 7, spec("k", "", 3)).unwrap();
    // A write lands before the catch-up round runs.
    apply(&f, &[("k", Some("late"))]); // rev 7
    assert_eq!(f.hub.counts(), (0, 1));
    while f.hub.catch_up_round(&f.kv) {}
    assert_eq!(f.hub.counts(), (1, 0));
    apply(&f, &[("k", Some("live"))]); // rev 8
    let revs: Vec<i64> = events_of(&drain(&s, &mut rx), 7)
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(revs, vec![3, 4, 5, 6, 7, 8]);
}

#[test]
fn slow_stream_falls_back_to_catch_up_and_loses_nothing() {
    let f = fixture();
    let (slow, mut slow_rx) = StreamHandle::new(1);
    let (fast, mut fast_rx) = StreamHandle::new(2);
    f.hub.watch(&slow, 0, spec("k", "", 0)).unwrap();
    f.hub.watch(&fast, 0, spec("k", "", 0)).unwrap();
    let n = STREAM_QUEUE_LIMIT as i64 + 50;
    let mut fast_seen = Vec::new();
    for i in 0..n {
        apply(&f, &[("k", Some(&i.to_string()))]);
        // The fast stream is drained as it goes; the slow one is not read at all.
        fast_seen.extend(
            events_of(&drain(&fast, &mut fast_rx), 0)
                .into_iter()
                .map(|e| e.0),
        );
    }
    assert_eq!(fast_seen, (2..n + 2).collect::<Vec<_>>());
    assert_eq!(
        f.hub.counts(),
        (1, 1),
        "the slow watcher left the synced group"
    );
    let mut slow_seen: Vec<i64> = events_of(&drain(&slow, &mut slow_rx), 0)
        .iter()
        .map(|e| e.0)
        .collect();
    while f.hub.catch_up_round(&f.kv) {
        slow_seen.extend(
            events_of(&drain(&slow, &mut slow_rx), 0)
                .into_iter()
                .map(|e| e.0),
        );
    }
    slow_seen.extend(
        events_of(&drain(&slow, &mut slow_rx), 0)
            .into_iter()
            .map(|e| e.0),
    );
    assert_eq!(slow_seen, (2..n + 2).collect::<Vec<_>>());
    assert_eq!(f.hub.counts(), (2, 0));
}

/// A stream that is not read holds at most its byte limit plus one catch-up batch, however
/// far behind its watcher is; once read, it gets every event in order, in messages of
/// bounded size.
#[test]
fn an_unread_stream_holds_bounded_bytes_and_loses_nothing() {
    let f = fixture();
    let (s, mut rx) = StreamHandle::new(1);
    f.hub.watch(&s, 0, spec("k", "", 0)).unwrap();
    let value = "v".repeat(64 << 10);
    // 24 MiB written: three times the stream's byte limit.
    let n = 3 * (STREAM_QUEUE_BYTES / value.len()) as i64;
    for _ in 0..n {
        apply(&f, &[("k", Some(&value))]);
        while f.hub.catch_up_round(&f.kv) {}
    }
    let bound = STREAM_QUEUE_BYTES + CATCH_UP_BYTES + value.len() + 1;
    let held = s.queued_bytes.load(Ordering::Acquire);
    assert!(held <= bound, "{held} bytes queued for an unread stream");
    let mut seen = Vec::new();
    loop {
        let msgs = drain(&s, &mut rx);
        for m in &msgs {
            if let Outgoing::Events { events, .. } = m {
                assert!(event_bytes(events) <= CATCH_UP_BYTES + value.len() + 1);
            }
        }
        seen.extend(events_of(&msgs, 0).into_iter().map(|e| e.0));
        if !f.hub.catch_up_round(&f.kv) && rx.is_empty() {
            break;
        }
    }
    assert_eq!(seen, (2..n + 2).collect::<Vec<_>>());
    assert_eq!(f.hub.counts(), (1, 0));
}

#[test]
fn filters_future_start_and_cancel() {
    let f = fixture();
    let (s, mut rx) = StreamHandle::new(1);
    let mut no_put = spec("k", "", 0);
    no_put.no_put = true;
    let a = f.hub.watch(&s, 0, no_put).unwrap();
    let b = f.hub.watch(&s, 0, spec("k", "", 4)).unwrap();
    assert_eq!((a, b), (0, 1));
    apply(&f, &[("k", Some("1"))]); // 2
    apply(&f, &[("k", None)]); // 3
    apply(&f, &[("k", Some("2"))]); // 4
    assert!(f.hub.cancel(&s, a));
    assert!(!f.hub.cancel(&s, a));
    apply(&f, &[("k", None)]); // 5
    let msgs = drain(&s, &mut rx);
    assert_eq!(events_of(&msgs, a), vec![(3, "k".into(), false)]);
    assert_eq!(
        events_of(&msgs, b),
        vec![(4, "k".into(), true), (5, "k".into(), false)]
    );
    assert!(msgs
        .iter()
        .any(|m| matches!(m, Outgoing::Canceled { watch_id: 0, .. })));
}

#[test]
fn duplicate_ids_and_empty_ranges_are_refused() {
    let f = fixture();
    let (s, mut rx) = StreamHandle::new(1);
    assert_eq!(f.hub.watch(&s, 5, spec("k", "", 0)), Ok(5));
    assert_eq!(
        f.hub.watch(&s, 5, spec("k", "", 0)),
        Err(WatchError::DuplicateId)
    );
    assert_eq!(
        f.hub.watch(&s, 0, spec("b", "a", 0)),
        Err(WatchError::EmptyRange)
    );
    // Auto-assigned IDs skip the ones in use.
    assert_eq!(f.hub.watch(&s, 0, spec("k", "", 0)), Ok(0));
    let reasons: Vec<String> = drain(&s, &mut rx)
        .into_iter()
        .filter_map(|m| match m {
            Outgoing::Refused { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            "mvcc: duplicate watch ID provided on the WatchStream".to_string(),
            "mvcc: watcher range is empty".to_string()
        ]
    );
}

#[test]
fn compacted_start_revision_cancels_with_the_compact_revision() {
    let f = fixture();
    for i in 0..4 {
        apply(&f, &[("k", Some(&i.to_string()))]); // 2..=5
    }
    let tx = f.kv.backend().begin_write().unwrap();
    f.kv.schedule_compaction(&tx, 4, 5).unwrap();
    tx.commit().unwrap();
    f.kv.compact(4, 100).unwrap();
    let (s, mut rx) = StreamHandle::new(1);
    f.hub.watch(&s, 0, spec("k", "", 2)).unwrap();
    while f.hub.catch_up_round(&f.kv) {}
    let msgs = drain(&s, &mut rx);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, Outgoing::Compacted { compact_rev: 4, .. })),
        "{msgs:?}"
    );
    assert_eq!(f.hub.counts(), (0, 0));
}

#[test]
fn progress_never_claims_unsent_revisions() {
    let f = fixture();
    apply(&f, &[("k", Some("1"))]); // 2
    let (s, mut rx) = StreamHandle::new(1);
    f.hub.watch(&s, 0, spec("k", "", 2)).unwrap(); // needs catch-up
    f.hub.request_progress(&s);
    assert!(
        !drain(&s, &mut rx)
            .iter()
            .any(|m| matches!(m, Outgoing::Progress { .. })),
        "no progress while a watcher is behind"
    );
    while f.hub.catch_up_round(&f.kv) {}
    let msgs = drain(&s, &mut rx);
    let pos_events = msgs
        .iter()
        .position(|m| matches!(m, Outgoing::Events { .. }))
        .unwrap();
    let pos_progress = msgs
        .iter()
        .position(|m| {
            matches!(
                m,
                Outgoing::Progress {
                    watch_id: -1,
                    rev: 2
                }
            )
        })
        .unwrap();
    assert!(pos_events < pos_progress);
    // Periodic progress goes to idle progress_notify watchers only.
    let mut p = spec("other", "", 0);
    p.progress_notify = true;
    let id = f.hub.watch(&s, 0, p).unwrap();
    f.hub.progress_tick();
    assert!(drain(&s, &mut rx)
        .iter()
        .any(|m| matches!(m, Outgoing::Progress { watch_id, .. } if *watch_id == id)));
}

#[test]
fn restore_moves_watchers_to_catch_up_from_the_new_backend() {
    let f = fixture();
    let (s, mut rx) = StreamHandle::new(1);
    f.hub.watch(&s, 0, spec("k", "", 0)).unwrap();
    apply(&f, &[("k", Some("1"))]); // 2
    drain(&s, &mut rx);
    // Pretend the backend was replaced by one three revisions ahead.
    apply(&f, &[("k", Some("2"))]);
    let tx = f.kv.backend().begin_write().unwrap();
    let (rev, _, _) = {
        let mut b = f.kv.write(&tx).unwrap();
        b.txn().put(b"k", b"3", 0).unwrap();
        b.finish()
    };
    tx.commit().unwrap();
    f.kv.publish(rev, Vec::new());
    drain(&s, &mut rx);
    f.hub.restore(rev);
    while f.hub.catch_up_round(&f.kv) {}
    let revs: Vec<i64> = events_of(&drain(&s, &mut rx), 0)
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(revs, vec![4], "only what the watcher had not seen");
}

/// A watcher that starts in the future (a member behind the revision the client asked
/// for) keeps its start revision through a snapshot install that lands below it: found by
/// the robustness suite, where such a watcher got an event before its start revision.
#[test]
fn future_start_revision_survives_a_restore_below_it() {
    let f = fixture();
    let (s, mut rx) = StreamHandle::new(1);
    let id = f.hub.watch(&s, 0, spec("k", "", 5)).unwrap();
    apply(&f, &[("k", Some("a"))]); // 2
    let rev = apply(&f, &[("k", Some("b"))]); // 3
    f.hub.restore(rev);
    while f.hub.catch_up_round(&f.kv) {}
    apply(&f, &[("k", Some("c"))]); // 4
    apply(&f, &[("k", Some("d"))]); // 5
    let revs: Vec<i64> = events_of(&drain(&s, &mut rx), id)
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(revs, vec![5], "nothing before the start revision");
}

/// A catch-up round that took the store just before a snapshot install replaced it reads
/// the old store: it must not mark the watcher as having everything up to the new
/// revision. Found by the robustness suite (crash-defragAfterRename/3m): a watcher
/// resumed at 69 on a member that then installed a snapshot got 280 next.
#[test]
fn a_round_on_the_replaced_store_claims_nothing_beyond_it() {
    let old = fixture(); // the member's store before the install, at revision 1
    let new = fixture(); // the leader's, three revisions ahead
    for v in ["a", "b", "c"] {
        apply(&new, &[("k", Some(v))]);
    }
    let (s, mut rx) = StreamHandle::new(1);
    let id = old.hub.watch(&s, 0, spec("k", "", 2)).unwrap();
    old.hub.restore(new.kv.current_rev());
    assert!(
        old.hub.catch_up_round(&old.kv),
        "still behind after the old store"
    );
    while old.hub.catch_up_round(&new.kv) {}
    let revs: Vec<i64> = events_of(&drain(&s, &mut rx), id)
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        revs,
        vec![2, 3, 4],
        "every revision from the start, from the new store"
    );
}

#[test]
fn a_txn_reaches_key_and_range_watchers_of_several_streams_each_in_order() {
    let f = fixture();
    let (s1, mut rx1) = StreamHandle::new(1);
    let (s2, mut rx2) = StreamHandle::new(2);
    let k1 = f.hub.watch(&s1, 0, spec("b", "", 0)).unwrap();
    let r1 = f.hub.watch(&s1, 0, spec("a", "c", 0)).unwrap();
    let k2 = f.hub.watch(&s2, 0, spec("b", "", 0)).unwrap();
    let all2 = f.hub.watch(&s2, 0, spec("\0", "\0", 0)).unwrap();
    apply(&f, &[("bz", Some("0"))]); // 2
    apply(
        &f,
        &[
            ("b", Some("1")),
            ("z", Some("2")),
            ("a", Some("3")),
            ("bz", None),
        ],
    ); // 3
    let (m1, m2) = (drain(&s1, &mut rx1), drain(&s2, &mut rx2));
    assert_eq!(events_of(&m1, k1), vec![(3, "b".into(), true)]);
    assert_eq!(events_of(&m2, k2), vec![(3, "b".into(), true)]);
    assert_eq!(
        events_of(&m1, r1),
        vec![
            (2, "bz".into(), true),
            (3, "b".into(), true),
            (3, "a".into(), true),
            (3, "bz".into(), false)
        ]
    );
    let keys: Vec<String> = events_of(&m2, all2).into_iter().map(|e| e.1).collect();
    assert_eq!(keys, ["bz", "b", "z", "a", "bz"]);
    // One message per watcher and revision.
    let messages = |m: &[Outgoing]| {
        m.iter()
            .filter(|m| matches!(m, Outgoing::Events { .. }))
            .count()
    };
    assert_eq!((messages(&m1), messages(&m2)), (3, 3));
}

#[test]
fn closing_a_stream_drops_its_watchers_only() {
    let f = fixture();
    let (s1, mut rx1) = StreamHandle::new(1);
    let (s2, mut rx2) = StreamHandle::new(2);
    let a = f.hub.watch(&s1, 0, spec("k", "", 0)).unwrap();
    let b = f.hub.watch(&s1, 0, spec("k", "", 0)).unwrap();
    let c = f.hub.watch(&s2, 0, spec("k", "", 0)).unwrap();
    assert!(f.hub.cancel(&s1, a));
    // A server-assigned ID is never one a live watcher of the stream holds.
    assert_eq!(f.hub.watch(&s1, 0, spec("k", "", 0)).unwrap(), 2);
    assert_eq!(f.hub.watch(&s1, b + 5, spec("k", "", 0)).unwrap(), b + 5);
    assert_eq!(f.hub.watch(&s1, 0, spec("k", "", 0)).unwrap(), 3);
    f.hub.close_stream(1);
    apply(&f, &[("k", Some("1"))]);
    assert_eq!(events_of(&drain(&s1, &mut rx1), b), vec![]);
    assert_eq!(
        events_of(&drain(&s2, &mut rx2), c),
        vec![(2, "k".into(), true)]
    );
    // A stream that reopens with the same ID starts from nothing.
    let (s1, _rx) = StreamHandle::new(1);
    assert_eq!(f.hub.watch(&s1, 0, spec("k", "", 0)).unwrap(), 0);
    assert!(!f.hub.cancel(&s1, b));
}
