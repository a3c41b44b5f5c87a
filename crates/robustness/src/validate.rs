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

use std::collections::{BTreeMap, BTreeSet};

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
    let compactions: BTreeSet<i64> = history
        .operations
        .iter()
        .filter_map(|o| match o.request {
            Request::Compact { revision } => Some(revision),
            _ => None,
        })
        .collect();
    let mut stats = WatchStats::default();
    for w in &history.watchers {
        out.violations
            .extend(check_watcher(w, &reference, &compactions, &mut stats));
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
    let mut explained: BTreeSet<i64> = BTreeSet::new();
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
    // A known revoke explains the revision where exactly its lease's keys were deleted.
    for op in &history.operations {
        if let (Request::LeaseRevoke { id }, Some(Response::LeaseRevoke { revision })) =
            (&op.request, &op.response)
        {
            if revoke_made(&reference, *id, *revision) {
                explained.insert(*revision);
            }
        }
    }
    let deletes = DeleteMakers::new(history, &reference, &explained);
    // Operations of unknown outcome that could have made each unexplained revision.
    let mut claimants: BTreeMap<i64, usize> = BTreeMap::new();
    for op in history.operations.iter().filter(|o| o.response.is_none()) {
        for rev in deletes.candidates(op) {
            *claimants.entry(rev).or_default() += 1;
        }
    }
    // How many operations name each lease: a grant of unknown outcome that no other
    // operation names changes nothing any operation can observe (the traffic uses a lease
    // only once its grant succeeded), so it leaves the search, where it would double the
    // states below every point it could take effect.
    let mut lease_uses: BTreeMap<i64, usize> = BTreeMap::new();
    for op in &history.operations {
        for id in op.request.leases() {
            *lease_uses.entry(id).or_default() += 1;
        }
    }
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
                (Request::LeaseGrant { id }, _) if lease_uses.get(id) == Some(&1) => {
                    out.resolved += 1;
                    continue;
                }
                (Request::Delete { .. } | Request::LeaseRevoke { .. }, None) if complete => {
                    match deletes.candidates(op).as_slice() {
                        // No revision it could have made: it deleted nothing, or never
                        // ran; a delete of nothing changes nothing, and the revoked lease
                        // is named by no later operation.
                        [] if deletes.lease_unused_after(op) => {
                            out.resolved += 1;
                            continue;
                        }
                        // The one revision it could have made, which nothing else could.
                        &[rev] if claimants.get(&rev) == Some(&1) => {
                            response = Some(match op.request {
                                Request::Delete { .. } => Response::Delete {
                                    revision: rev,
                                    deleted: 1,
                                },
                                _ => Response::LeaseRevoke { revision: rev },
                            });
                            out.resolved += 1;
                        }
                        _ => {}
                    }
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

/// Whether a revoke of `lease` made `revision`: its events delete exactly the keys that
/// had the lease just before (at least one).
fn revoke_made(reference: &Reference, lease: i64, revision: i64) -> bool {
    let Some(events) = reference.revisions.get(&revision) else {
        return false;
    };
    let before = reference.at(revision - 1, &crate::traffic::key_space());
    let attached: BTreeSet<&str> = before
        .iter()
        .filter(|kv| kv.lease == lease)
        .map(|kv| kv.key.as_str())
        .collect();
    let deleted: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.delete)
        .map(|e| e.kv.key.as_str())
        .collect();
    events.iter().all(|e| e.delete) && !attached.is_empty() && attached == deleted
}

/// Who could have made the revisions that no known or resolved write explains (deletes of
/// unknown outcome and revokes: the only writes left that make no put).
struct DeleteMakers<'a> {
    reference: &'a Reference,
    unexplained: Vec<i64>,
    /// (return time, the highest revision any response had shown by then), by return time.
    seen: Vec<(u64, i64)>,
    /// Per lease: the return times of the operations naming it (+∞ for unknown outcomes).
    lease_rets: BTreeMap<i64, Vec<(usize, u64)>>,
}

impl<'a> DeleteMakers<'a> {
    fn new(history: &History, reference: &'a Reference, explained: &BTreeSet<i64>) -> Self {
        let mut seen: Vec<(u64, i64)> = history
            .operations
            .iter()
            .filter_map(|o| Some((o.ret, o.response.as_ref()?.revision()?)))
            .collect();
        seen.sort_unstable();
        let mut max = 1;
        for s in &mut seen {
            max = max.max(s.1);
            s.1 = max;
        }
        let mut lease_rets: BTreeMap<i64, Vec<(usize, u64)>> = BTreeMap::new();
        for o in &history.operations {
            let ret = if o.response.is_some() {
                o.ret
            } else {
                u64::MAX
            };
            for id in o.request.leases() {
                lease_rets.entry(id).or_default().push((o.id, ret));
            }
        }
        DeleteMakers {
            reference,
            unexplained: reference
                .revisions
                .keys()
                .copied()
                .filter(|r| !explained.contains(r))
                .collect(),
            seen,
            lease_rets,
        }
    }

    /// The highest revision a response had shown before `t`: a write invoked at `t` made a
    /// later one.
    fn known_before(&self, t: u64) -> i64 {
        let i = self.seen.partition_point(|&(ret, _)| ret < t);
        if i == 0 {
            1
        } else {
            self.seen[i - 1].1
        }
    }

    /// The unexplained revisions `op` (a delete or revoke of unknown outcome) could have made.
    fn candidates(&self, op: &Operation) -> Vec<i64> {
        let after = self.known_before(op.call);
        let made =
            |rev: i64| match &op.request {
                Request::Delete { key } => self.reference.revisions.get(&rev).is_some_and(
                    |evs| matches!(evs.as_slice(), [e] if e.delete && e.kv.key == *key),
                ),
                Request::LeaseRevoke { id } => revoke_made(self.reference, *id, rev),
                _ => false,
            };
        self.unexplained
            .iter()
            .copied()
            .filter(|&r| r > after && made(r))
            .collect()
    }

    /// For a revoke: no other operation naming its lease returns after it was invoked
    /// (so whether the lease is gone is never observed). True for anything else.
    fn lease_unused_after(&self, op: &Operation) -> bool {
        let Request::LeaseRevoke { id } = op.request else {
            return true;
        };
        self.lease_rets
            .get(&id)
            .into_iter()
            .flatten()
            .all(|&(other, ret)| other == op.id || ret < op.call)
    }
}

/// The operations with these ids, for a report.
pub fn sub_history(history: &History, ids: &[usize]) -> Vec<Operation> {
    let by_id: BTreeMap<usize, &Operation> = history.operations.iter().map(|o| (o.id, o)).collect();
    ids.iter()
        .filter_map(|i| by_id.get(i).map(|o| (*o).clone()))
        .collect()
}
