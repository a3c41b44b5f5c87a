//! A generic linearizability checker: Wing & Gong's search for linearization points with
//! backtracking, with Lowe's memoization of (set of linearized operations, model state),
//! as in Porcupine.
//!
//! ```text
//!  entries, sorted by time:  call(a) call(b) ret(a) call(c) ret(b) ret(c) ... ret(u)=+inf
//!  walk from the head: at a call, try the model step; if legal and (linearized ∪ {op},
//!  state') is new, lift the op (its call and its return leave the list) and restart at the
//!  head; at a return (an op that must have happened by now and could not), undo the last
//!  lifted op and try the next candidate after it.
//! ```
//!
//! An operation with an unknown outcome returns at +infinity: it may take effect at any
//! point after its call, and taking effect after every other operation is the same as
//! never taking effect. Models must accept any outcome for it (`output` None). The search
//! ends once every operation of known outcome is linearized, and stops offering an
//! unknown one that the model says can no longer change anything (`Model::is_dead`).
//!
//! The search is bounded: past `budget` steps the answer is `Unknown`, never `Ok`.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Debug;
    type Output: Debug;

    fn init(&self) -> Self::State;

    /// The state after `input` when `output` is a legal answer in `state` (`output` None:
    /// unknown, any answer is legal); None when the answer is not.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// Whether `input`, of unknown outcome, can change nothing from `state` on, whatever
    /// comes after (a compaction at or below the compacted revision). The search then
    /// stops offering it: taking effect from here on is the same as never.
    fn is_dead(&self, _state: &Self::State, _input: &Self::Input) -> bool {
        false
    }
}

/// One operation for the checker. `ret` is `u64::MAX` for an unknown outcome.
#[derive(Debug, Clone)]
pub struct Op<I, O> {
    pub call: u64,
    pub ret: u64,
    pub input: I,
    pub output: Option<O>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// No linearization exists. `linearized` is the longest sequence of operations (indices
    /// into the input) the search linearized; `stuck` are the operations that were
    /// candidates at that point and could not go next.
    Illegal {
        linearized: Vec<usize>,
        stuck: Vec<usize>,
    },
    /// The search ran out of budget.
    Unknown {
        steps: u64,
    },
}

#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
    /// For a call: the index of its return entry.
    matching: usize,
}

const NIL: usize = usize::MAX;

/// Checks `ops` against `model` with at most `budget` search steps.
///
/// The memo holds (Zobrist hash of the linearized set ×2, hash of the state): 24 bytes an
/// entry instead of a bitset and a state. A collision could only prune a branch, making
/// the search miss a linearization (a false "illegal"), never a false "ok"; with 192 bits
/// it does not happen in practice.
///
/// At each node the candidates (calls before the first pending return) are tried with known
/// outcomes first: an operation of unknown outcome is deferred until something needs its
/// effect, which keeps the search linear on histories with many unknown outcomes.
pub fn check<M: Model>(model: &M, ops: &[Op<M::Input, M::Output>], budget: u64) -> Verdict {
    let n = ops.len();
    // Entries: node 0 is the head sentinel, then 2n entries sorted by time; at equal times
    // calls come first, so operations that touch are concurrent (the permissive choice).
    let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        assert!(op.call <= op.ret, "operation {i} returns before its call");
        order.push((op.call, true, i));
        order.push((op.ret, false, i));
    }
    order.sort_by_key(|&(t, is_call, i)| (t, !is_call, i));
    let mut entries: Vec<Entry> = Vec::with_capacity(2 * n + 1);
    entries.push(Entry {
        op: NIL,
        is_call: false,
        prev: NIL,
        next: if n > 0 { 1 } else { NIL },
        matching: NIL,
    });
    let mut ret_of = vec![NIL; n];
    for (k, &(_, is_call, op)) in order.iter().enumerate() {
        let idx = k + 1;
        entries.push(Entry {
            op,
            is_call,
            prev: idx - 1,
            next: if k + 1 < order.len() { idx + 1 } else { NIL },
            matching: NIL,
        });
        if !is_call {
            ret_of[op] = idx;
        }
    }
    for e in entries.iter_mut().skip(1) {
        if e.is_call {
            e.matching = ret_of[e.op];
        }
    }
    let unknown: Vec<bool> = ops.iter().map(|o| o.output.is_none()).collect();
    // Zobrist keys: two independent 64-bit values per operation.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next_key = || {
        // splitmix64
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let keys: Vec<(u64, u64)> = (0..n).map(|_| (next_key(), next_key())).collect();
    let hash_state = |s: &M::State| {
        use std::hash::Hasher;
        let mut h = std::hash::DefaultHasher::new();
        s.hash(&mut h);
        h.finish()
    };

    struct Level<S> {
        /// The call entries that may go next, in the order to try.
        candidates: Vec<usize>,
        tried: usize,
        /// The call entry lifted to get here, and the state before it.
        via: Option<(usize, S)>,
    }

    let candidates_at = |entries: &[Entry], state: &M::State| -> Vec<usize> {
        let mut known = Vec::new();
        let mut deferred = Vec::new();
        let mut e = entries[0].next;
        while e != NIL && entries[e].is_call {
            let op = entries[e].op;
            if !unknown[op] {
                known.push(e);
            } else if !model.is_dead(state, &ops[op].input) {
                deferred.push(e);
            }
            e = entries[e].next;
        }
        known.extend(deferred);
        known
    };

    let mut state = model.init();
    let mut set_hash = (0u64, 0u64);
    let mut cache: HashSet<(u64, u64, u64)> = HashSet::new();
    let mut stack: Vec<Level<M::State>> = vec![Level {
        candidates: candidates_at(&entries, &state),
        tried: 0,
        via: None,
    }];
    // Done once every operation of known outcome is linearized: the unknown ones left
    // never took effect (or did so last, which models accept).
    let mut known_left = unknown.iter().filter(|&&u| !u).count();
    let mut linearized_count = 0usize;
    let mut longest: Vec<usize> = Vec::new();
    let mut longest_stuck: Vec<usize> = Vec::new();
    let mut steps: u64 = 0;

    loop {
        if known_left == 0 {
            return Verdict::Ok;
        }
        steps += 1;
        if steps > budget {
            return Verdict::Unknown { steps };
        }
        let top = stack.last_mut().expect("root level");
        if top.tried >= top.candidates.len() {
            // Dead end: remember the deepest one, then undo the last lift.
            if linearized_count >= longest.len() {
                longest = stack
                    .iter()
                    .filter_map(|l| l.via.as_ref().map(|(e, _)| entries[*e].op))
                    .collect();
                longest_stuck = candidates(&entries, entries[0].next);
            }
            let level = stack.pop().expect("level");
            let Some((e, before)) = level.via else {
                return Verdict::Illegal {
                    linearized: longest,
                    stuck: longest_stuck,
                };
            };
            state = before;
            let op = entries[e].op;
            set_hash = (set_hash.0 ^ keys[op].0, set_hash.1 ^ keys[op].1);
            linearized_count -= 1;
            known_left += usize::from(!unknown[op]);
            unlift(&mut entries, e);
            continue;
        }
        let e = top.candidates[top.tried];
        top.tried += 1;
        let op_index = entries[e].op;
        let op = &ops[op_index];
        let Some(next) = model.step(&state, &op.input, op.output.as_ref()) else {
            continue;
        };
        let next_set = (set_hash.0 ^ keys[op_index].0, set_hash.1 ^ keys[op_index].1);
        if !cache.insert((next_set.0, next_set.1, hash_state(&next))) {
            continue;
        }
        let before = std::mem::replace(&mut state, next);
        set_hash = next_set;
        linearized_count += 1;
        known_left -= usize::from(!unknown[op_index]);
        lift(&mut entries, e);
        stack.push(Level {
            candidates: candidates_at(&entries, &state),
            tried: 0,
            via: Some((e, before)),
        });
    }
}

fn lift(entries: &mut [Entry], i: usize) {
    let (p, nx) = (entries[i].prev, entries[i].next);
    entries[p].next = nx;
    if nx != NIL {
        entries[nx].prev = p;
    }
    let m = entries[i].matching;
    let (p, nx) = (entries[m].prev, entries[m].next);
    entries[p].next = nx;
    if nx != NIL {
        entries[nx].prev = p;
    }
}

fn unlift(entries: &mut [Entry], i: usize) {
    let m = entries[i].matching;
    let (p, nx) = (entries[m].prev, entries[m].next);
    entries[p].next = m;
    if nx != NIL {
        entries[nx].prev = m;
    }
    let (p, nx) = (entries[i].prev, entries[i].next);
    entries[p].next = i;
    if nx != NIL {
        entries[nx].prev = i;
    }
}

/// The call entries before the first return from `from`: the operations that could go next.
fn candidates(entries: &[Entry], mut from: usize) -> Vec<usize> {
    let mut out = Vec::new();
    while from != NIL && entries[from].is_call {
        out.push(entries[from].op);
        from = entries[from].next;
    }
    if from != NIL && !out.contains(&entries[from].op) {
        out.push(entries[from].op);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register: write(v) and read() -> v.
    struct Register;

    #[derive(Debug, Clone)]
    enum RegOp {
        Write(i32),
        Read,
    }

    impl Model for Register {
        type State = i32;
        type Input = RegOp;
        type Output = i32;
        fn init(&self) -> i32 {
            0
        }
        fn step(&self, s: &i32, input: &RegOp, output: Option<&i32>) -> Option<i32> {
            match input {
                RegOp::Write(v) => Some(*v),
                RegOp::Read => match output {
                    Some(o) if o != s => None,
                    _ => Some(*s),
                },
            }
        }
    }

    fn op(call: u64, ret: u64, input: RegOp, output: Option<i32>) -> Op<RegOp, i32> {
        Op {
            call,
            ret,
            input,
            output,
        }
    }

    #[test]
    fn concurrent_write_and_reads() {
        // Porcupine's first example: linearizable.
        let ops = vec![
            op(0, 100, RegOp::Write(100), Some(0)),
            op(25, 75, RegOp::Read, Some(100)),
            op(30, 60, RegOp::Read, Some(0)),
        ];
        assert_eq!(check(&Register, &ops, 1_000), Verdict::Ok);
        // The write returns before both reads start: the read of 0 is stale.
        let ops = vec![
            op(0, 10, RegOp::Write(100), Some(0)),
            op(25, 75, RegOp::Read, Some(100)),
            op(30, 60, RegOp::Read, Some(0)),
        ];
        assert!(matches!(
            check(&Register, &ops, 1_000),
            Verdict::Illegal { .. }
        ));
    }

    #[test]
    fn reads_in_reverse_order_are_illegal() {
        // Porcupine's second example: read(100) finishes before read(0) starts.
        let ops = vec![
            op(0, 100, RegOp::Write(100), Some(0)),
            op(10, 30, RegOp::Read, Some(100)),
            op(40, 90, RegOp::Read, Some(0)),
        ];
        match check(&Register, &ops, 1_000) {
            Verdict::Illegal { .. } => {}
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn unknown_write_may_happen_late_or_never() {
        let ops = vec![
            op(0, u64::MAX, RegOp::Write(7), None),
            op(10, 20, RegOp::Read, Some(0)),
            op(30, 40, RegOp::Read, Some(7)),
        ];
        assert_eq!(check(&Register, &ops, 1_000), Verdict::Ok);
        let ops = vec![
            op(0, u64::MAX, RegOp::Write(7), None),
            op(10, 20, RegOp::Read, Some(0)),
        ];
        assert_eq!(check(&Register, &ops, 1_000), Verdict::Ok);
        // ... but not take effect and then be undone.
        let ops = vec![
            op(0, u64::MAX, RegOp::Write(7), None),
            op(10, 20, RegOp::Read, Some(7)),
            op(30, 40, RegOp::Read, Some(0)),
        ];
        assert!(matches!(
            check(&Register, &ops, 1_000),
            Verdict::Illegal { .. }
        ));
    }

    #[test]
    fn budget_exhaustion_is_unknown_not_ok() {
        // Many concurrent writes and a read that matches none: the search must explore
        // many orders before giving up.
        let mut ops: Vec<_> = (1..=12)
            .map(|v| op(0, 1000, RegOp::Write(v), Some(0)))
            .collect();
        ops.push(op(2000, 2001, RegOp::Read, Some(99)));
        assert!(matches!(
            check(&Register, &ops, 100),
            Verdict::Unknown { .. }
        ));
        assert!(matches!(
            check(&Register, &ops, 100_000_000),
            Verdict::Illegal { .. }
        ));
    }

    #[test]
    fn empty_history_is_ok() {
        assert_eq!(check(&Register, &[], 10), Verdict::Ok);
    }
}
