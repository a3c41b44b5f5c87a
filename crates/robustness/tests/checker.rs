//! The checker on known histories: linearizable ones pass; a stale read, a lost write, a
//! duplicated write, a revision going backwards and a read of a write not yet invoked are
//! rejected. Histories are written by hand, with etcd's revisions.

use chorus_robustness::history::{
    Compare, Event, History, KeyRange, Kv, Operation, Request, Response, TxnOp, TxnOpResult,
    WatchResponse, WatchSession, Watcher,
};
use chorus_robustness::linearizability::{check, Op, Verdict};
use chorus_robustness::model::EtcdModel;
use chorus_robustness::traffic::key_space;
use chorus_robustness::validate::validate;

const BUDGET: u64 = 1_000_000;

fn kv(key: &str, value: &str, create: i64, rev: i64, version: i64) -> Kv {
    Kv {
        key: key.into(),
        value: value.into(),
        create_revision: create,
        mod_revision: rev,
        version,
        lease: 0,
    }
}

fn put(key: &str, value: &str) -> Request {
    Request::Put {
        key: key.into(),
        value: value.into(),
        lease: 0,
    }
}

fn get(key: &str) -> Request {
    Request::Range {
        range: KeyRange::single(key),
        revision: 0,
        serializable: false,
    }
}

fn op(call: u64, ret: u64, input: Request, output: Option<Response>) -> Op<Request, Response> {
    Op {
        call,
        ret: if output.is_some() { ret } else { u64::MAX },
        input,
        output,
    }
}

fn range(revision: i64, kvs: Vec<Kv>) -> Option<Response> {
    Some(Response::Range { revision, kvs })
}

fn is_illegal(ops: &[Op<Request, Response>]) -> bool {
    matches!(check(&EtcdModel, ops, BUDGET), Verdict::Illegal { .. })
}

fn is_ok(ops: &[Op<Request, Response>]) -> bool {
    check(&EtcdModel, ops, BUDGET) == Verdict::Ok
}

#[test]
fn sequential_history_with_every_request_kind_passes() {
    let k = "/robust/k00";
    let ops = vec![
        op(0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
        op(2, 3, get(k), range(2, vec![kv(k, "a", 2, 2, 1)])),
        op(
            4,
            5,
            Request::Txn {
                compare: vec![Compare {
                    key: k.into(),
                    mod_revision: 2,
                }],
                success: vec![TxnOp::Put {
                    key: k.into(),
                    value: "b".into(),
                    lease: 0,
                }],
                failure: vec![TxnOp::Get { key: k.into() }],
            },
            Some(Response::Txn {
                revision: 3,
                succeeded: true,
                results: Some(vec![TxnOpResult::Put]),
            }),
        ),
        op(
            6,
            7,
            Request::Txn {
                compare: vec![Compare {
                    key: k.into(),
                    mod_revision: 2,
                }],
                success: vec![TxnOp::Put {
                    key: k.into(),
                    value: "c".into(),
                    lease: 0,
                }],
                failure: vec![TxnOp::Get { key: k.into() }],
            },
            Some(Response::Txn {
                revision: 3,
                succeeded: false,
                results: Some(vec![TxnOpResult::Get {
                    kvs: vec![kv(k, "b", 2, 3, 2)],
                }]),
            }),
        ),
        op(
            8,
            9,
            Request::LeaseGrant { id: 7 },
            Some(Response::LeaseGrant { revision: 3 }),
        ),
        op(
            10,
            11,
            Request::Put {
                key: "/robust/k01".into(),
                value: "l".into(),
                lease: 7,
            },
            Some(Response::Put { revision: 4 }),
        ),
        op(
            12,
            13,
            Request::LeaseRevoke { id: 7 },
            Some(Response::LeaseRevoke { revision: 5 }),
        ),
        op(
            14,
            15,
            Request::Put {
                key: "/robust/k01".into(),
                value: "m".into(),
                lease: 7,
            },
            Some(Response::Error(
                chorus_robustness::history::EtcdError::LeaseNotFound,
            )),
        ),
        op(
            16,
            17,
            Request::Delete { key: k.into() },
            Some(Response::Delete {
                revision: 6,
                deleted: 1,
            }),
        ),
        op(
            18,
            19,
            Request::Delete { key: k.into() },
            Some(Response::Delete {
                revision: 6,
                deleted: 0,
            }),
        ),
        op(
            20,
            21,
            Request::Compact { revision: 5 },
            Some(Response::Compact { revision: 6 }),
        ),
        op(
            22,
            23,
            Request::Range {
                range: key_space(),
                revision: 4,
                serializable: false,
            },
            Some(Response::Error(
                chorus_robustness::history::EtcdError::Compacted,
            )),
        ),
        op(
            24,
            25,
            Request::Range {
                range: key_space(),
                revision: 0,
                serializable: false,
            },
            range(6, vec![]),
        ),
    ];
    assert!(is_ok(&ops), "{:?}", check(&EtcdModel, &ops, BUDGET));
}

#[test]
fn concurrent_writes_in_either_order_pass() {
    let k = "/robust/k00";
    let ops = vec![
        op(0, 10, put(k, "a"), Some(Response::Put { revision: 3 })),
        op(1, 9, put(k, "b"), Some(Response::Put { revision: 2 })),
        op(11, 12, get(k), range(3, vec![kv(k, "a", 2, 3, 2)])),
    ];
    assert!(is_ok(&ops));
}

#[test]
fn stale_read_is_rejected() {
    let k = "/robust/k00";
    let ops = vec![
        op(0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
        op(2, 3, put(k, "b"), Some(Response::Put { revision: 3 })),
        // Returns the state before the second put, which had returned.
        op(4, 5, get(k), range(2, vec![kv(k, "a", 2, 2, 1)])),
    ];
    assert!(is_illegal(&ops));
    // The same read while the second put is in flight is fine.
    let ops = vec![
        op(0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
        op(2, 6, put(k, "b"), Some(Response::Put { revision: 3 })),
        op(4, 5, get(k), range(2, vec![kv(k, "a", 2, 2, 1)])),
    ];
    assert!(is_ok(&ops));
}

#[test]
fn lost_write_is_rejected() {
    let k = "/robust/k00";
    let ops = vec![
        op(0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
        // Acknowledged, then the key reads as if it never happened.
        op(2, 3, get(k), range(1, vec![])),
    ];
    assert!(is_illegal(&ops));
}

#[test]
fn duplicated_write_is_rejected() {
    let k = "/robust/k00";
    // One put applied twice: its value at version 2 and the revision counted twice.
    let ops = vec![
        op(0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
        op(2, 3, get(k), range(3, vec![kv(k, "a", 2, 3, 2)])),
    ];
    assert!(is_illegal(&ops));
}

#[test]
fn revision_going_backwards_is_rejected() {
    let k = "/robust/k00";
    let ops = vec![
        op(0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
        op(
            2,
            3,
            put("/robust/k01", "b"),
            Some(Response::Put { revision: 3 }),
        ),
        op(4, 5, get(k), range(3, vec![kv(k, "a", 2, 2, 1)])),
        // Same contents for this key, but the store's revision went back.
        op(6, 7, get(k), range(2, vec![kv(k, "a", 2, 2, 1)])),
    ];
    assert!(is_illegal(&ops));
    // A write's revision below one already observed.
    let ops = vec![
        op(0, 1, put(k, "a"), Some(Response::Put { revision: 3 })),
        op(2, 3, put(k, "b"), Some(Response::Put { revision: 2 })),
    ];
    assert!(is_illegal(&ops));
}

#[test]
fn read_of_a_write_not_yet_invoked_is_rejected() {
    let k = "/robust/k00";
    let ops = vec![
        op(0, 1, get(k), range(2, vec![kv(k, "a", 2, 2, 1)])),
        op(5, 6, put(k, "a"), Some(Response::Put { revision: 2 })),
    ];
    assert!(is_illegal(&ops));
}

#[test]
fn unknown_write_may_or_may_not_happen() {
    let k = "/robust/k00";
    // Never observed: fine.
    let ops = vec![
        op(0, 0, put(k, "a"), None),
        op(2, 3, get(k), range(1, vec![])),
    ];
    assert!(is_ok(&ops));
    // Observed later: fine.
    let ops = vec![
        op(0, 0, put(k, "a"), None),
        op(2, 3, get(k), range(1, vec![])),
        op(4, 5, get(k), range(2, vec![kv(k, "a", 2, 2, 1)])),
    ];
    assert!(is_ok(&ops));
    // Observed, then gone without a delete: rejected.
    let ops = vec![
        op(0, 0, put(k, "a"), None),
        op(2, 3, get(k), range(2, vec![kv(k, "a", 2, 2, 1)])),
        op(4, 5, get(k), range(1, vec![])),
    ];
    assert!(is_illegal(&ops));
}

#[test]
fn failed_cas_must_see_the_conflicting_write() {
    let k = "/robust/k00";
    let cas = |m| Request::Txn {
        compare: vec![Compare {
            key: k.into(),
            mod_revision: m,
        }],
        success: vec![TxnOp::Put {
            key: k.into(),
            value: "x".into(),
            lease: 0,
        }],
        failure: vec![TxnOp::Get { key: k.into() }],
    };
    // CAS on mod_revision 2 fails although nothing changed the key since revision 2.
    let ops = vec![
        op(0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
        op(
            2,
            3,
            cas(2),
            Some(Response::Txn {
                revision: 2,
                succeeded: false,
                results: Some(vec![TxnOpResult::Get {
                    kvs: vec![kv(k, "a", 2, 2, 1)],
                }]),
            }),
        ),
    ];
    assert!(is_illegal(&ops));
}

// Whole-pipeline checks: history + watch → validate.

fn operation(
    id: usize,
    call: u64,
    ret: u64,
    request: Request,
    response: Option<Response>,
) -> Operation {
    Operation {
        id,
        client: 0,
        call,
        ret,
        request,
        response,
        error: None,
    }
}

fn reference_watcher(events: Vec<Event>) -> Watcher {
    let responses = events
        .into_iter()
        .map(|e| WatchResponse {
            time: 0,
            revision: e.kv.mod_revision,
            events: vec![e],
            progress_notify: false,
            canceled: false,
            compact_revision: 0,
        })
        .collect();
    Watcher {
        id: 0,
        range: key_space(),
        reference: true,
        sessions: vec![WatchSession {
            member: 0,
            start_revision: 1,
            created_revision: 1,
            responses,
            ended_by: None,
        }],
    }
}

fn ev(key: &str, value: &str, create: i64, rev: i64, version: i64) -> Event {
    Event {
        delete: false,
        kv: kv(key, value, create, rev, version),
    }
}

#[test]
fn validate_accepts_a_consistent_history_and_resolves_unknown_puts() {
    let k = "/robust/k00";
    let history = History {
        operations: vec![
            operation(0, 0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
            // Timed out, but the watch shows it at revision 3.
            operation(1, 2, 3, put(k, "b"), None),
            // Timed out and never applied.
            operation(2, 2, 3, put(k, "c"), None),
            operation(3, 4, 5, get(k), range(3, vec![kv(k, "b", 2, 3, 2)])),
            operation(
                4,
                4,
                5,
                Request::Range {
                    range: KeyRange::single(k),
                    revision: 0,
                    serializable: true,
                },
                range(2, vec![kv(k, "a", 2, 2, 1)]),
            ),
        ],
        watchers: vec![reference_watcher(vec![
            ev(k, "a", 2, 2, 1),
            ev(k, "b", 2, 3, 2),
        ])],
        final_read: Some((3, vec![kv(k, "b", 2, 3, 2)])),
    };
    let v = validate(&history, BUDGET);
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.resolved, 2);
    assert_eq!(v.acked_writes_lost, 0);
    assert_eq!(v.serializable_reads_checked, 1);
}

#[test]
fn validate_counts_a_lost_acknowledged_write() {
    let k = "/robust/k00";
    let history = History {
        operations: vec![
            operation(0, 0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
            operation(1, 2, 3, put(k, "b"), Some(Response::Put { revision: 3 })),
        ],
        // After a crash the cluster forgot revision 3 and wrote something else there.
        watchers: vec![reference_watcher(vec![
            ev(k, "a", 2, 2, 1),
            ev(k, "z", 2, 3, 2),
        ])],
        final_read: Some((3, vec![kv(k, "z", 2, 3, 2)])),
    };
    let v = validate(&history, BUDGET);
    assert!(!v.ok());
    assert_eq!(v.acked_writes_lost, 1, "{v:?}");
}

#[test]
fn validate_rejects_a_stale_serializable_read_and_a_duplicated_put() {
    let k = "/robust/k00";
    let history = History {
        operations: vec![
            operation(0, 0, 1, put(k, "a"), Some(Response::Put { revision: 2 })),
            // Claims revision 2 but shows nothing.
            operation(
                1,
                2,
                3,
                Request::Range {
                    range: KeyRange::single(k),
                    revision: 0,
                    serializable: true,
                },
                range(2, vec![]),
            ),
        ],
        // The put applied twice.
        watchers: vec![reference_watcher(vec![
            ev(k, "a", 2, 2, 1),
            ev(k, "a", 2, 3, 2),
        ])],
        final_read: Some((3, vec![kv(k, "a", 2, 3, 2)])),
    };
    let v = validate(&history, BUDGET);
    assert!(
        v.violations.iter().any(|e| e.contains("serializable")),
        "{v:?}"
    );
    assert!(
        v.violations.iter().any(|e| e.contains("more than once")),
        "{v:?}"
    );
}

#[test]
fn validate_rejects_a_final_state_that_differs_from_the_watch_history() {
    let k = "/robust/k00";
    let history = History {
        operations: vec![operation(
            0,
            0,
            1,
            put(k, "a"),
            Some(Response::Put { revision: 2 }),
        )],
        watchers: vec![reference_watcher(vec![ev(k, "a", 2, 2, 1)])],
        final_read: Some((2, vec![])),
    };
    let v = validate(&history, BUDGET);
    assert!(
        v.violations.iter().any(|e| e.contains("final read")),
        "{v:?}"
    );
}

fn del_ev(key: &str, rev: i64) -> Event {
    Event {
        delete: true,
        kv: Kv {
            key: key.into(),
            value: String::new(),
            create_revision: 0,
            mod_revision: rev,
            version: 0,
            lease: 0,
        },
    }
}

/// k0 put at 2, k1 put with lease 7 at 3, then deletes of unknown outcome, a revoke of
/// lease 7 (outcome `revoke`) and the final read at 5.
fn deletes_and_revoke(revoke: Option<Response>, read_k0: Option<Response>) -> History {
    let (k0, k1) = ("/robust/k00", "/robust/k01");
    let leased = Kv {
        lease: 7,
        ..kv(k1, "b", 3, 3, 1)
    };
    History {
        operations: vec![
            operation(
                0,
                0,
                1,
                Request::LeaseGrant { id: 7 },
                Some(Response::LeaseGrant { revision: 1 }),
            ),
            operation(1, 2, 3, put(k0, "a"), Some(Response::Put { revision: 2 })),
            operation(
                2,
                4,
                5,
                Request::Put {
                    key: k1.into(),
                    value: "b".into(),
                    lease: 7,
                },
                Some(Response::Put { revision: 3 }),
            ),
            // Timed out; the only delete of k0 in the watch history (revision 4) is its.
            operation(3, 6, 7, Request::Delete { key: k0.into() }, None),
            operation(4, 8, 9, get(k0), read_k0),
            // Invoked once revision 4 was known: it cannot have made it; it deleted nothing
            // or never ran.
            operation(5, 10, 11, Request::Delete { key: k0.into() }, None),
            // Revision 5 deletes exactly the keys of lease 7.
            operation(6, 12, 13, Request::LeaseRevoke { id: 7 }, revoke),
            operation(7, 14, 15, get(k1), range(5, vec![])),
        ],
        watchers: vec![reference_watcher(vec![
            ev(k0, "a", 2, 2, 1),
            Event {
                delete: false,
                kv: leased,
            },
            del_ev(k0, 4),
            del_ev(k1, 5),
        ])],
        final_read: Some((5, vec![])),
    }
}

#[test]
fn validate_resolves_unknown_deletes_and_revokes_from_the_watch_history() {
    let history = deletes_and_revoke(None, range(4, vec![]));
    let v = validate(&history, BUDGET);
    assert!(v.ok(), "{v:?}");
    // The first delete and the revoke made revisions 4 and 5; the second delete is dropped.
    assert_eq!((v.resolved, v.unknown), (3, 0), "{v:?}");

    // A known revoke explains revision 5 as well.
    let history = deletes_and_revoke(
        Some(Response::LeaseRevoke { revision: 5 }),
        range(4, vec![]),
    );
    let v = validate(&history, BUDGET);
    assert!(v.ok(), "{v:?}");
    assert_eq!((v.resolved, v.unknown), (2, 0), "{v:?}");
}

#[test]
fn resolving_unknown_deletes_still_rejects_a_stale_read() {
    // The delete of unknown outcome made revision 4; a read invoked after the revoke at 5
    // returned still shows k0 at revision 5.
    let k0 = "/robust/k00";
    let mut history = deletes_and_revoke(None, range(4, vec![]));
    history.operations.push(operation(
        8,
        16,
        17,
        get(k0),
        range(5, vec![kv(k0, "a", 2, 2, 1)]),
    ));
    let v = validate(&history, BUDGET);
    assert_eq!(v.linearizable, "illegal", "{v:?}");
}

#[test]
fn superseded_unknown_compactions_leave_the_search() {
    // Twenty compactions of unknown outcome, then a known one past them: from there on they
    // can only answer "compacted". Afterwards puts, each with a concurrent read invoked
    // after it that still sees the value before it, so the search tries the put first and
    // must backtrack every time.
    let k = "/robust/k00";
    let mut ops = vec![op(0, 1, put(k, "v1"), Some(Response::Put { revision: 2 }))];
    for i in 0..20 {
        ops.push(op(2 + i, u64::MAX, Request::Compact { revision: 2 }, None));
    }
    ops.push(op(
        30,
        31,
        Request::Compact { revision: 2 },
        Some(Response::Compact { revision: 2 }),
    ));
    let mut t = 40;
    for rev in 2..14 {
        let before = kv(k, &format!("v{}", rev - 1), 2, rev, rev - 1);
        ops.push(op(
            t,
            t + 10,
            put(k, &format!("v{rev}")),
            Some(Response::Put { revision: rev + 1 }),
        ));
        ops.push(op(t + 1, t + 5, get(k), range(rev, vec![before])));
        t += 20;
    }
    assert!(matches!(check(&EtcdModel, &ops, 20_000), Verdict::Ok));
}
