//! From a recorded history to a verdict.
//!
//! ```text
//!  watchers ──► Reference (merged, gapless, = final read) ──► watch guarantees per watcher
//!      │                 │
//!      │                 ├─► acknowledged writes present at their revision (lost = 0)
//!      │                 ├─► serializable reads and reads at a revision = state at that revision
//!      │                 └─► unknown puts resolved: found at revision R → response known;
//!      │                     not found → never took effect (dropped)
//!  operations ───────────────────────────► linearizability of the rest against EtcdModel
//! ```
//!
//! Resolving unknown outcomes from the reference is sound because a put always makes an
//! event with its (unique) value, and the reference is checked to be complete.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::history::{History, Operation, Request, Response, TxnOp};
use crate::linearizability::{check, Op, Verdict};
use crate::model::EtcdModel;
use crate::watch::{check_watcher, Reference, WatchStats};

/// What validation found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Validation {
    /// Operations given to the linearizability checker.
    pub ops_checked: usize,
    /// Operations whose outcome stayed unknown (after resolving from the watch history).
    pub unknown: usize,
    /// Operations with an unknown outcome that the watch history resolved.
    pub resolved: usize,
    /// "ok", "illegal" or "unknown (budget)".
    pub linearizable: String,
    pub serializable_reads_checked: usize,
    pub watch_events_checked: usize,
    pub progress_notifications_checked: usize,
    /// Acknowledged writes missing from the history at their revision.
    pub acked_writes_lost: usize,
    pub acked_writes: usize,
    pub violations: Vec<String>,
    /// Ids of the operations around a linearizability failure.
    pub failing_ops: Vec<usize>,
}

impl Validation {
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.linearizable == "ok"
    }
}

/// Validates a whole history. `budget` bounds the linearizability search.
pub fn validate(history: &History, budget: u64) -> Validation {
    let mut out = Validation::default();
    let (reference, errs) = Reference::build(&history.watchers);
    let violations_before = errs.len();
    out.violations.extend(errs);

    // The final read: the reference must reach it and replay to it.
    if let Some((rev, kvs)) = &history.final_read {
        if reference.last < *rev {
            out.violations.push(format!(
                "the reference watch history ends at {} before the final revision {rev}",
                reference.last
            ));
        }
        let replayed = reference.at(*rev, &crate::traffic::key_space());
        if replayed != *kvs {
            out.violations.push(format!(
                "the final read at {rev} differs from the watch history replayed: read {kvs:?}, replayed {replayed:?}"
            ));
        }
    } else {
        out.violations.push("no final read".to_owned());
    }

    // Resolving unknown outcomes from the reference needs it whole: gapless, agreed and
    // equal to the final read.
    let complete = violations_before == 0 && out.violations.is_empty();

    // Watch guarantees.
    let mut stats = WatchStats::default();
    for w in &history.watchers {
        out.violations
            .extend(check_watcher(w, &reference, &mut stats));
    }
    out.watch_events_checked = stats.events;
    out.progress_notifications_checked = stats.progress_notifications;

    // Unique values: each put value appears at most once.
    let puts = reference.put_revisions();
    for (value, at) in &puts {
        if at.len() > 1 {
            out.violations
                .push(format!("value {value:?} written more than once: {at:?}"));
        }
    }

    // Acknowledged writes are in the history at their revision.
    for op in &history.operations {
        let Some(resp) = &op.response else { continue };
        let (expected, rev): (Vec<(&str, Option<&str>)>, i64) = match (&op.request, resp) {
            (Request::Put { key, value, .. }, Response::Put { revision }) => {
                (vec![(key.as_str(), Some(value.as_str()))], *revision)
            }
            (Request::Delete { key }, Response::Delete { revision, deleted }) if *deleted > 0 => {
                (vec![(key.as_str(), None)], *revision)
            }
            (
                Request::Txn {
                    success, failure, ..
                },
                Response::Txn {
                    revision,
                    succeeded,
                    results,
                },
            ) => {
                let ops = if *succeeded { success } else { failure };
                let mut exp = Vec::new();
                for (i, o) in ops.iter().enumerate() {
                    match o {
                        TxnOp::Put { key, value, .. } => {
                            exp.push((key.as_str(), Some(value.as_str())))
                        }
                        TxnOp::Delete { key } => {
                            let deleted = results.as_ref().and_then(|r| match r.get(i) {
                                Some(crate::history::TxnOpResult::Delete { deleted }) => {
                                    Some(*deleted)
                                }
                                _ => None,
                            });
                            if deleted.unwrap_or(0) > 0 {
                                exp.push((key.as_str(), None));
                            }
                        }
                        TxnOp::Get { .. } => {}
                    }
                }
                (exp, *revision)
            }
            _ => continue,
        };
        if rev > reference.last {
            // Past what the reference covers: it must then be past the final read too,
            // which cannot be for an acknowledged write.
            out.acked_writes += expected.len();
            out.acked_writes_lost += expected.len();
            out.violations.push(format!(
                "acknowledged write (op {}) at revision {rev} is beyond the history's end {}",
                op.id, reference.last
            ));
            continue;
        }
        let events = reference.revisions.get(&rev);
        for (key, value) in expected {
            out.acked_writes += 1;
            let found = events.is_some_and(|evs| {
                evs.iter().any(|e| {
                    e.kv.key == key
                        && match value {
                            Some(v) => !e.delete && e.kv.value == v,
                            None => e.delete,
                        }
                })
            });
            if !found {
                out.acked_writes_lost += 1;
                out.violations.push(format!(
                    "acknowledged write lost: op {} {key:?}={value:?} at revision {rev}; the history has {events:?}",
                    op.id
                ));
            }
        }
    }

    // Serializable reads and reads at a revision: the state at that revision.
    for op in &history.operations {
        let (
            Request::Range {
                range,
                revision,
                serializable,
            },
            Some(Response::Range {
                revision: header,
                kvs,
            }),
        ) = (&op.request, &op.response)
        else {
            continue;
        };
        let at = if *revision > 0 {
            *revision
        } else if *serializable {
            *header
        } else {
            continue;
        };
        if at > reference.last {
            continue;
        }
        out.serializable_reads_checked += 1;
        let expected = reference.at(at, range);
        if expected != *kvs {
            out.violations.push(format!(
                "op {}: read at revision {at} ({}) returned {kvs:?}, the state then was {expected:?}",
                op.id,
                if *serializable { "serializable" } else { "linearizable, at a revision" }
            ));
        }
    }

    // Resolve unknown outcomes, then check linearizability.
    // Revisions at which an operation with a known (or resolved) response wrote: a delete
    // event elsewhere was made by an operation of unknown outcome (or a lease revoke).
    let mut explained: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
    for op in &history.operations {
        match (&op.request, &op.response) {
            (Request::Put { .. }, Some(Response::Put { revision }))
            | (
                Request::Txn { .. },
                Some(Response::Txn {
                    revision,
                    succeeded: true,
                    ..
                }),
            ) => {
                explained.insert(*revision);
            }
            (Request::Delete { .. }, Some(Response::Delete { revision, deleted }))
                if *deleted > 0 =>
            {
                explained.insert(*revision);
            }
            (Request::Put { .. } | Request::Txn { .. }, None) => {
                let values = op.request.put_values();
                if let Some(&(rev, _)) = values
                    .iter()
                    .find_map(|v| puts.get(v).and_then(|at| at.first()))
                {
                    explained.insert(rev);
                }
            }
            _ => {}
        }
    }
    let unexplained_delete = |key: &str| {
        reference.revisions.iter().any(|(rev, events)| {
            !explained.contains(rev) && events.iter().any(|e| e.delete && e.kv.key == key)
        })
    };
    let mut ops: Vec<Op<Request, Response>> = Vec::new();
    let mut ids: Vec<usize> = Vec::new();
    for op in &history.operations {
        let mut response = op.response.clone();
        let mut ret = op.ret;
        if let Request::Range {
            serializable: true,
            revision: 0,
            ..
        } = op.request
        {
            continue;
        }
        if response.is_none() {
            if !op.request.is_write() {
                continue;
            }
            let values = op.request.put_values();
            let found = values
                .iter()
                .find_map(|v| puts.get(v).and_then(|at| at.first()));
            match (&op.request, found) {
                (Request::Put { .. }, Some(&(rev, _))) => {
                    response = Some(Response::Put { revision: rev });
                    out.resolved += 1;
                }
                (Request::Txn { .. }, Some(&(rev, _))) => {
                    response = Some(Response::Txn {
                        revision: rev,
                        succeeded: true,
                        results: None,
                    });
                    out.resolved += 1;
                }
                (Request::Put { .. }, None) if complete => {
                    out.resolved += 1;
                    continue;
                }
                (
                    Request::Txn {
                        success, failure, ..
                    },
                    None,
                ) if complete
                    && failure.iter().all(|o| matches!(o, TxnOp::Get { .. }))
                    && success.iter().any(|o| matches!(o, TxnOp::Put { .. })) =>
                {
                    // Had the success branch run, its put would be there; the failure
                    // branch only reads. So it changed nothing.
                    out.resolved += 1;
                    continue;
                }
                (Request::Delete { key }, None) if complete && !unexplained_delete(key) => {
                    // Every delete event of this key was made by another operation: this
                    // one deleted nothing, or never ran.
                    out.resolved += 1;
                    continue;
                }
                _ => {}
            }
            if response.is_none() {
                out.unknown += 1;
            }
            ret = u64::MAX;
        }
        if let (Request::Range { revision, .. }, Some(Response::Range { kvs, .. })) =
            (&op.request, &mut response)
        {
            if *revision > 0 {
                kvs.clear();
            }
        }
        ops.push(Op {
            call: op.call,
            ret,
            input: op.request.clone(),
            output: response,
        });
        ids.push(op.id);
    }
    out.ops_checked = ops.len();
    match check(&EtcdModel, &ops, budget) {
        Verdict::Ok => out.linearizable = "ok".into(),
        Verdict::Unknown { steps } => {
            out.linearizable = format!("unknown (search budget of {steps} steps exhausted)");
        }
        Verdict::Illegal { linearized, stuck } => {
            out.linearizable = "illegal".into();
            let mut failing: Vec<usize> = linearized
                .iter()
                .rev()
                .take(20)
                .rev()
                .map(|&i| ids[i])
                .collect();
            failing.extend(stuck.iter().map(|&i| ids[i]));
            out.violations.push(format!(
                "not linearizable: {} operations linearized, none of {:?} can go next",
                linearized.len(),
                stuck.iter().map(|&i| ids[i]).collect::<Vec<_>>()
            ));
            out.failing_ops = failing;
        }
    }
    out
}

/// The operations with these ids, for a report.
pub fn sub_history(history: &History, ids: &[usize]) -> Vec<Operation> {
    let by_id: BTreeMap<usize, &Operation> = history.operations.iter().map(|o| (o.id, o)).collect();
    ids.iter()
        .filter_map(|i| by_id.get(i).map(|o| (*o).clone()))
        .collect()
}
