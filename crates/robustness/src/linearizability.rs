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
//! never taking effect. Models must accept any outcome for it (`output` None).
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

struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// Checks `ops` against `model` with at most `budget` search steps.
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

    let mut state = model.init();
    let mut linearized = Bits::new(n);
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    // (call entry, state before it)
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut longest_stuck: Vec<usize> = Vec::new();
    let mut steps: u64 = 0;
    let mut entry = entries[0].next;

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

    while entries[0].next != NIL {
        steps += 1;
        if steps > budget {
            return Verdict::Unknown { steps };
        }
        if entry == NIL {
            // Only reachable if every remaining entry is a call whose step failed; the
            // last entry is always a return, so treat it as one.
            unreachable!("ran past the last entry");
        }
        let e = entries[entry];
        if e.is_call {
            let op = &ops[e.op];
            if let Some(next) = model.step(&state, &op.input, op.output.as_ref()) {
                linearized.set(e.op);
                if cache.insert((linearized.0.clone(), next.clone())) {
                    let before = std::mem::replace(&mut state, next);
                    stack.push((entry, before));
                    lift(&mut entries, entry);
                    entry = entries[0].next;
                    continue;
                }
                linearized.clear(e.op);
            }
            entry = e.next;
        } else {
            // A return: its operation must be linearized by now and was not.
            if stack.len() >= longest.len() {
                longest = stack.iter().map(|&(i, _)| entries[i].op).collect();
                longest_stuck = candidates(&entries, entries[0].next);
            }
            let Some((top, before)) = stack.pop() else {
                return Verdict::Illegal {
                    linearized: longest,
                    stuck: longest_stuck,
                };
            };
            state = before;
            linearized.clear(entries[top].op);
            unlift(&mut entries, top);
            entry = entries[top].next;
        }
    }
    Verdict::Ok
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
