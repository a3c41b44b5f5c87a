//! The in-memory key index: for every key, the revisions at which it was written, grouped
//! into generations (a generation runs from a creation to a deletion). It answers "which
//! revision of key K is visible at revision R" without touching the backend, exactly as
//! etcd's `treeIndex`/`keyIndex`.
//!
//! ```text
//!   key "foo":  gen 0: created 2, revs [2, 5, 9(tombstone)]
//!               gen 1: created 12, revs [12, 14]
//!               gen 2: (empty: the key is live)          <- last generation
//! ```
//! A key whose last generation is empty was deleted; a key with a single empty generation
//! is gone from the index (compacted away).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use smallvec::SmallVec;

use super::Revision;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Generation {
    /// Number of puts in this generation (the key's `version` after its last put).
    ver: i64,
    created: Revision,
    /// Oldest first; the last one of a finished generation is its tombstone.
    revs: Vec<Revision>,
}

impl Generation {
    fn is_empty(&self) -> bool {
        self.revs.is_empty()
    }
}

/// The history of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyIndex(Repr);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Repr {
    /// A live key put exactly once (created = modified, version 1) and never deleted: most
    /// keys of a large store look like this, and this form needs no allocation of its own
    /// (a `Vec` of one generation holding a `Vec` of one revision takes two, 64 bytes more
    /// a key). The first put after it or a delete turns it into `Gens`.
    Once(Revision),
    Gens(Vec<Generation>),
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex(Repr::Gens(Vec::new()))
    }
}

/// The result of looking a key up at a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyAt {
    pub modified: Revision,
    pub created: Revision,
    pub version: i64,
}

impl KeyIndex {
    /// Deleted and compacted away (or never written): nothing left to keep.
    fn is_gone(&self) -> bool {
        match &self.0 {
            Repr::Once(_) => false,
            Repr::Gens(gens) => gens.is_empty() || (gens.len() == 1 && gens[0].is_empty()),
        }
    }

    fn modified(&self) -> Option<Revision> {
        match &self.0 {
            Repr::Once(r) => Some(*r),
            Repr::Gens(gens) => gens.iter().rev().find_map(|g| g.revs.last().copied()),
        }
    }

    /// Rebuilds a key's first generation from a stored revision whose earlier history was
    /// compacted away: `created` and `version` come from the stored KeyValue.
    fn restore(created: Revision, modified: Revision, version: i64) -> Self {
        if created == modified && version == 1 {
            return KeyIndex(Repr::Once(modified));
        }
        KeyIndex(Repr::Gens(vec![Generation {
            ver: version,
            created,
            revs: vec![modified],
        }]))
    }

    /// The generations, written out (a `Once` key becomes one generation of one revision).
    fn gens_mut(&mut self) -> &mut Vec<Generation> {
        if let Repr::Once(r) = self.0 {
            let mut revs = Vec::with_capacity(2);
            revs.push(r);
            self.0 = Repr::Gens(vec![Generation {
                ver: 1,
                created: r,
                revs,
            }]);
        }
        match &mut self.0 {
            Repr::Gens(gens) => gens,
            Repr::Once(_) => unreachable!("written out above"),
        }
    }

    fn put(&mut self, rev: Revision) {
        if let Some(m) = self.modified() {
            assert!(
                rev > m,
                "mvcc index: put at {rev:?} not above modified {m:?}"
            );
        }
        if matches!(&self.0, Repr::Gens(gens) if gens.is_empty()) {
            self.0 = Repr::Once(rev);
            return;
        }
        let g = self.gens_mut().last_mut().expect("one generation");
        if g.revs.is_empty() {
            g.created = rev;
            // A key re-created after a delete: room for one revision only (a Vec's first
            // push reserves four).
            g.revs.reserve_exact(1);
        }
        g.revs.push(rev);
        g.ver += 1;
    }

    /// Ends the current generation with a tombstone. False when the key is not live.
    fn tombstone(&mut self, rev: Revision) -> bool {
        if let Repr::Gens(gens) = &self.0 {
            match gens.last() {
                None => return false,
                Some(g) if g.is_empty() => return false,
                Some(_) => {}
            }
        }
        self.put(rev);
        self.gens_mut().push(Generation::default());
        true
    }

    /// The visible version of the key at main revision `at`.
    pub fn get(&self, at: i64) -> Option<KeyAt> {
        let gens = match &self.0 {
            Repr::Once(r) => {
                return (r.main <= at).then_some(KeyAt {
                    modified: *r,
                    created: *r,
                    version: 1,
                })
            }
            Repr::Gens(gens) => gens,
        };
        let g = find_generation(gens, at)?;
        let n = g.revs.iter().rposition(|r| r.main <= at)?;
        Some(KeyAt {
            modified: g.revs[n],
            created: g.created,
            version: g.ver - (g.revs.len() - n - 1) as i64,
        })
    }

    /// Every revision with main >= `since`, keeping only the last sub-revision of a main
    /// revision (a key written twice in one txn yields one event).
    fn since(&self, since: i64, out: &mut Vec<Revision>) {
        let since = Revision::new(since, 0);
        let gens = match &self.0 {
            Repr::Once(r) => {
                if *r >= since {
                    out.push(*r);
                }
                return;
            }
            Repr::Gens(gens) => gens,
        };
        let mut gi = gens.len().saturating_sub(1);
        while gi > 0 {
            let g = &gens[gi];
            if !g.is_empty() && since > g.created {
                break;
            }
            gi -= 1;
        }
        let start = out.len();
        for g in &gens[gi..] {
            for &r in &g.revs {
                if r < since {
                    continue;
                }
                if out.len() > start && out.last().is_some_and(|l| l.main == r.main) {
                    *out.last_mut().expect("non-empty") = r;
                } else {
                    out.push(r);
                }
            }
        }
    }

    /// Drops history below `at`: keeps the latest revision <= `at` of the generation live at
    /// `at`, unless that revision is a tombstone.
    fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) {
        let gens = match &mut self.0 {
            Repr::Once(r) => {
                // The one live generation: its revision stays if it is at or below `at`.
                if r.main <= at {
                    keep.insert(*r);
                }
                return;
            }
            Repr::Gens(gens) => gens,
        };
        let (mut gi, ri) = do_compact(gens, at, keep);
        let last = gens.len() - 1;
        let g = &mut gens[gi];
        if !g.is_empty() {
            if let Some(ri) = ri {
                g.revs.drain(..ri);
            }
            if g.revs.len() == 1 && gi != last {
                keep.remove(&g.revs[0]);
                gi += 1;
            }
        }
        gens.drain(..gi);
    }

    /// Like `compact` but only computes what would be kept (for hashing at a revision).
    fn keep(&self, at: i64, keep: &mut HashSet<Revision>) {
        let gens = match &self.0 {
            Repr::Once(r) => {
                if r.main <= at {
                    keep.insert(*r);
                }
                return;
            }
            Repr::Gens(gens) => gens,
        };
        if gens.len() == 1 && gens[0].is_empty() {
            return;
        }
        let (gi, ri) = do_compact(gens, at, keep);
        let g = &gens[gi];
        if !g.is_empty() && ri == Some(g.revs.len() - 1) && gi != gens.len() - 1 {
            keep.remove(&g.revs[g.revs.len() - 1]);
        }
    }
}

/// The generation that holds `rev`, if the key was live at `rev`.
fn find_generation(gens: &[Generation], rev: i64) -> Option<&Generation> {
    let last = gens.len().checked_sub(1)?;
    for (i, g) in gens.iter().enumerate().rev() {
        let (Some(first), Some(tomb)) = (g.revs.first(), g.revs.last()) else {
            continue;
        };
        if i != last && tomb.main <= rev {
            // The key was deleted at or before `rev` and not re-created since.
            return None;
        }
        if first.main <= rev {
            return Some(g);
        }
    }
    None
}

/// Locates the generation and revision that compaction at `at` keeps, recording every
/// revision <= `at` that must stay in the backend in `keep`.
fn do_compact(
    gens: &[Generation],
    at: i64,
    keep: &mut HashSet<Revision>,
) -> (usize, Option<usize>) {
    let mut gi = 0;
    while gi < gens.len() - 1 {
        let g = &gens[gi];
        if g.revs.last().is_some_and(|t| t.main > at) {
            break;
        }
        gi += 1;
    }
    let g = &gens[gi];
    let ri = g.revs.iter().rposition(|r| r.main <= at);
    if let Some(ri) = ri {
        keep.insert(g.revs[ri]);
    }
    (gi, ri)
}

/// Where a range ends: one key, every key from `key` on, or up to (excluding) `end`.
#[derive(Clone, Copy, Debug)]
pub enum RangeEnd<'a> {
    Single,
    Unbounded,
    Before(&'a [u8]),
}

impl<'a> RangeEnd<'a> {
    /// etcd's convention: no range_end is a single key, `"\0"` is every key >= key.
    pub fn from_request(range_end: &'a [u8]) -> Self {
        match range_end {
            [] => RangeEnd::Single,
            [0] => RangeEnd::Unbounded,
            end => RangeEnd::Before(end),
        }
    }
}

/// A key as the index holds it: up to 16 bytes inside the tree's node, longer ones on the
/// heap (24 bytes either way). Searching the tree compares the probe with several keys of
/// each node it passes; keys held in the node are compared without a pointer to follow,
/// which at millions of keys was a cache miss per comparison (the index rebuild at
/// start-up spent most of its time there).
pub type IndexKey = SmallVec<[u8; 16]>;
const _: () = assert!(std::mem::size_of::<IndexKey>() == 24);

/// All keys' histories, ordered by key.
#[derive(Default, Debug)]
pub struct TreeIndex {
    keys: BTreeMap<IndexKey, KeyIndex>,
}

impl TreeIndex {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, key: &[u8], at: i64) -> Option<KeyAt> {
        self.keys.get(key)?.get(at)
    }

    pub fn put(&mut self, key: &[u8], rev: Revision) {
        match self.keys.get_mut(key) {
            Some(ki) => ki.put(rev),
            None => {
                let mut ki = KeyIndex::default();
                ki.put(rev);
                self.keys.insert(IndexKey::from_slice(key), ki);
            }
        }
    }

    /// Replays one stored revision into the index at start-up (revisions arrive in order).
    pub fn restore(
        &mut self,
        key: IndexKey,
        rev: Revision,
        kv_created: i64,
        kv_version: i64,
        tombstone: bool,
    ) {
        // One search of the tree per record (a lookup then an insert searched twice).
        match self.keys.entry(key) {
            Entry::Occupied(mut ki) if tombstone => {
                ki.get_mut().tombstone(rev);
            }
            Entry::Occupied(mut ki) => ki.get_mut().put(rev),
            Entry::Vacant(_) if tombstone => {}
            Entry::Vacant(slot) => {
                slot.insert(KeyIndex::restore(
                    Revision::new(kv_created, 0),
                    rev,
                    kv_version,
                ));
            }
        }
    }

    /// False when the key is not live (nothing to delete).
    pub fn tombstone(&mut self, key: &[u8], rev: Revision) -> bool {
        self.keys.get_mut(key).is_some_and(|ki| ki.tombstone(rev))
    }

    /// Calls `f` for every key in the range, in key order, with its history; stops when `f`
    /// returns false.
    pub fn visit<'a>(
        &'a self,
        key: &[u8],
        end: RangeEnd<'_>,
        mut f: impl FnMut(&'a [u8], &'a KeyIndex) -> bool,
    ) {
        match end {
            RangeEnd::Single => {
                if let Some((k, ki)) = self.keys.get_key_value(key) {
                    f(k, ki);
                }
            }
            RangeEnd::Unbounded => {
                for (k, ki) in self
                    .keys
                    .range::<[u8], _>((Bound::Included(key), Bound::Unbounded))
                {
                    if !f(k, ki) {
                        break;
                    }
                }
            }
            RangeEnd::Before(end) => {
                if key >= end {
                    return;
                }
                let bounds = (Bound::Included(key), Bound::Excluded(end));
                for (k, ki) in self.keys.range::<[u8], _>(bounds) {
                    if !f(k, ki) {
                        break;
                    }
                }
            }
        }
    }

    /// Keys live at `at` in the range, with the revision visible at `at`.
    pub fn range(&self, key: &[u8], end: RangeEnd<'_>, at: i64) -> Vec<(&[u8], KeyAt)> {
        let mut out = Vec::new();
        self.visit(key, end, |k, ki| {
            if let Some(v) = ki.get(at) {
                out.push((k, v));
            }
            true
        });
        out
    }

    /// Number of keys live at `at` in the range.
    pub fn count(&self, key: &[u8], end: RangeEnd<'_>, at: i64) -> usize {
        let mut n = 0;
        self.visit(key, end, |_, ki| {
            n += usize::from(ki.get(at).is_some());
            true
        });
        n
    }

    /// Revisions with main >= `since` of keys in the range, sorted (watch catch-up).
    pub fn range_since(&self, key: &[u8], end: RangeEnd<'_>, since: i64) -> Vec<Revision> {
        let mut out = Vec::new();
        self.visit(key, end, |_, ki| {
            let start = out.len();
            ki.since(since, &mut out);
            debug_assert!(out[start..].windows(2).all(|w| w[0] < w[1]));
            true
        });
        out.sort_unstable();
        out
    }

    /// Compacts every key's history at `at` and returns the revisions <= `at` that must stay
    /// in the backend; every other revision <= `at` may be deleted.
    pub fn compact(&mut self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        let mut after = None;
        while let Some(last) = self.compact_some(at, after.as_deref(), usize::MAX, &mut keep) {
            after = Some(last);
        }
        keep
    }

    /// [`TreeIndex::compact`] of at most `limit` keys, those after `after` (from the
    /// first key without one), adding what must stay to `keep`. Returns the last key it
    /// looked at, where the next call goes on, or `None` when no key was left. A caller
    /// that releases the index's lock between calls blocks its readers and writers for
    /// one part at a time (etcd compacts its tree key by key); keys written meanwhile
    /// have revisions above `at`, which a compaction at `at` does not touch.
    pub fn compact_some(
        &mut self,
        at: i64,
        after: Option<&[u8]>,
        limit: usize,
        keep: &mut HashSet<Revision>,
    ) -> Option<IndexKey> {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut gone = Vec::new();
        let mut last = None;
        for (k, ki) in self
            .keys
            .range_mut::<[u8], _>((from, Bound::Unbounded))
            .take(limit)
        {
            ki.compact(at, keep);
            if ki.is_gone() {
                gone.push(k.clone());
            }
            last = Some(k);
        }
        let last = last.cloned();
        for k in gone {
            self.keys.remove(&k);
        }
        last
    }

    /// What `compact(at)` would keep, without changing anything.
    pub fn keep(&self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        for ki in self.keys.values() {
            ki.keep(at, &mut keep);
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    /// The example from etcd's key_index tests: foo put at 2, 4, tombstone 6, put 8, 10,
    /// tombstone 12, put 14, 14.1, tombstone 16.
    fn sample() -> KeyIndex {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(4));
        assert!(ki.tombstone(r(6)));
        ki.put(r(8));
        ki.put(r(10));
        assert!(ki.tombstone(r(12)));
        ki.put(r(14));
        ki.put(Revision::new(14, 1));
        assert!(ki.tombstone(r(16)));
        ki
    }

    #[test]
    fn get_follows_generations() {
        let ki = sample();
        let cases: &[(i64, Option<(Revision, Revision, i64)>)] = &[
            (17, None),
            (16, None),
            (15, Some((Revision::new(14, 1), r(14), 2))),
            (14, Some((Revision::new(14, 1), r(14), 2))),
            (13, None),
            (12, None),
            (11, Some((r(10), r(8), 2))),
            (10, Some((r(10), r(8), 2))),
            (9, Some((r(8), r(8), 1))),
            (8, Some((r(8), r(8), 1))),
            (7, None),
            (6, None),
            (5, Some((r(4), r(2), 2))),
            (4, Some((r(4), r(2), 2))),
            (3, Some((r(2), r(2), 1))),
            (2, Some((r(2), r(2), 1))),
            (1, None),
            (0, None),
        ];
        for &(at, want) in cases {
            let got = ki.get(at).map(|k| (k.modified, k.created, k.version));
            assert_eq!(got, want, "at {at}");
        }
    }

    #[test]
    fn tombstone_needs_live_key() {
        let mut ki = KeyIndex::default();
        assert!(!ki.tombstone(r(1)));
        ki.put(r(2));
        assert!(ki.tombstone(r(3)));
        assert!(!ki.tombstone(r(4)));
    }

    #[test]
    fn since_keeps_last_sub_revision() {
        let ki = sample();
        let mut out = Vec::new();
        ki.since(1, &mut out);
        let mains: Vec<_> = out.iter().map(|r| (r.main, r.sub)).collect();
        assert_eq!(
            mains,
            vec![
                (2, 0),
                (4, 0),
                (6, 0),
                (8, 0),
                (10, 0),
                (12, 0),
                (14, 1),
                (16, 0)
            ]
        );
        out.clear();
        ki.since(12, &mut out);
        let mains: Vec<_> = out.iter().map(|r| r.main).collect();
        assert_eq!(mains, vec![12, 14, 16]);
    }

    #[test]
    fn compact_keeps_latest_live_revision() {
        // (compact at, revisions kept in the backend, generations' revs left)
        let cases: &[(i64, &[i64], &[&[i64]])] = &[
            (1, &[], &[&[2, 4, 6], &[8, 10, 12], &[14, 14, 16], &[]]),
            (2, &[2], &[&[2, 4, 6], &[8, 10, 12], &[14, 14, 16], &[]]),
            (3, &[2], &[&[2, 4, 6], &[8, 10, 12], &[14, 14, 16], &[]]),
            (4, &[4], &[&[4, 6], &[8, 10, 12], &[14, 14, 16], &[]]),
            (5, &[4], &[&[4, 6], &[8, 10, 12], &[14, 14, 16], &[]]),
            (6, &[], &[&[8, 10, 12], &[14, 14, 16], &[]]),
            (7, &[], &[&[8, 10, 12], &[14, 14, 16], &[]]),
            (8, &[8], &[&[8, 10, 12], &[14, 14, 16], &[]]),
            (10, &[10], &[&[10, 12], &[14, 14, 16], &[]]),
            (12, &[], &[&[14, 14, 16], &[]]),
            (14, &[14], &[&[14, 16], &[]]),
            (15, &[14], &[&[14, 16], &[]]),
            (16, &[], &[&[]]),
            (17, &[], &[&[]]),
        ];
        for &(at, kept, gens) in cases {
            let mut ki = sample();
            let mut keep = HashSet::new();
            ki.compact(at, &mut keep);
            let mut kept_mains: Vec<_> = keep.iter().map(|r| r.main).collect();
            kept_mains.sort();
            assert_eq!(kept_mains, kept, "kept at {at}");
            let left: Vec<Vec<i64>> = ki
                .gens_mut()
                .iter()
                .map(|g| g.revs.iter().map(|r| r.main).collect())
                .collect();
            let want: Vec<Vec<i64>> = gens.iter().map(|g| g.to_vec()).collect();
            assert_eq!(left, want, "generations at {at}");
            // keep() predicts compact() on a fresh copy.
            let mut predicted = HashSet::new();
            sample().keep(at, &mut predicted);
            assert_eq!(predicted, keep, "keep at {at}");
        }
    }

    /// The allocation-free form answers exactly like the written-out generations: random
    /// histories, each applied to a key left in its natural form and to one forced into
    /// `Gens` after every step, must agree on every lookup and every compaction.
    #[test]
    fn once_form_agrees_with_generations() {
        use rand::{Rng, SeedableRng};
        assert!(std::mem::size_of::<KeyIndex>() <= 24);
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..500 {
            let mut natural = KeyIndex::default();
            let mut written = KeyIndex::default();
            let mut main = 0;
            if rng.gen_bool(0.3) {
                // Restored from a compacted store.
                main = rng.gen_range(2..5);
                let (created, version) = if rng.gen_bool(0.5) {
                    (r(main), 1)
                } else {
                    (r(1), rng.gen_range(1..4))
                };
                natural = KeyIndex::restore(created, r(main), version);
                written = natural.clone();
                written.gens_mut();
            }
            for _ in 0..rng.gen_range(1..5) {
                main += rng.gen_range(1..3);
                let live = !natural.is_gone() && natural.get(main).is_some();
                if live && rng.gen_bool(0.3) {
                    assert!(natural.tombstone(r(main)));
                    assert!(written.tombstone(r(main)));
                } else {
                    natural.put(r(main));
                    written.put(r(main));
                }
                written.gens_mut();
            }
            for at in 0..=main + 1 {
                assert_eq!(natural.get(at), written.get(at), "get {at}: {natural:?}");
                let (mut a, mut b) = (Vec::new(), Vec::new());
                natural.since(at, &mut a);
                written.since(at, &mut b);
                assert_eq!(a, b, "since {at}: {natural:?}");
                let (mut a, mut b) = (HashSet::new(), HashSet::new());
                natural.keep(at, &mut a);
                written.keep(at, &mut b);
                assert_eq!(a, b, "keep {at}: {natural:?}");
                let (mut n, mut w) = (natural.clone(), written.clone());
                let (mut a, mut b) = (HashSet::new(), HashSet::new());
                n.compact(at, &mut a);
                w.compact(at, &mut b);
                assert_eq!(a, b, "compact {at}: {natural:?}");
                assert_eq!(n.is_gone(), w.is_gone(), "compact {at}: {natural:?}");
                assert_eq!(n.get(main), w.get(main), "compact {at}: {natural:?}");
            }
        }
    }

    #[test]
    fn compact_removes_deleted_keys() {
        let mut idx = TreeIndex::default();
        idx.put(b"a", r(1));
        idx.put(b"b", r(2));
        assert!(idx.tombstone(b"a", r(3)));
        let keep = idx.compact(3);
        assert_eq!(idx.len(), 1);
        assert!(keep.contains(&r(2)));
        assert!(!keep.contains(&r(1)) && !keep.contains(&r(3)));
        assert_eq!(idx.get(b"b", 3).map(|k| k.modified), Some(r(2)));
        assert_eq!(idx.get(b"a", 3), None);
    }

    /// Compacting three keys at a time, with puts to keys already passed and to keys not
    /// reached yet between the parts, keeps what one whole compaction keeps and removes
    /// the same keys.
    #[test]
    fn a_compaction_in_parts_equals_a_whole_one() {
        let build = || {
            let mut idx = TreeIndex::default();
            for i in 0..20i64 {
                let key = format!("k{i:02}");
                idx.put(key.as_bytes(), r(2 * i + 1));
                if i % 3 == 0 {
                    assert!(idx.tombstone(key.as_bytes(), r(2 * i + 2)));
                } else if i % 3 == 1 {
                    idx.put(key.as_bytes(), r(2 * i + 2));
                }
            }
            idx
        };
        let mut whole = build();
        let expected = whole.compact(30);
        let mut parts = build();
        let mut keep = HashSet::new();
        let mut after = None;
        let mut next_rev = 100;
        while let Some(last) = parts.compact_some(30, after.as_deref(), 3, &mut keep) {
            after = Some(last);
            // Writes between parts: revisions above the compaction's.
            for key in [&b"k01"[..], b"k18", b"new"] {
                parts.put(key, r(next_rev));
                whole.put(key, r(next_rev));
                next_rev += 1;
            }
        }
        assert_eq!(keep, expected);
        assert_eq!(parts.len(), whole.len());
        for i in 0..20 {
            let key = format!("k{i:02}");
            assert_eq!(
                parts.get(key.as_bytes(), 30),
                whole.get(key.as_bytes(), 30),
                "{key}"
            );
        }
    }

    #[test]
    fn ranges_follow_etcd_conventions() {
        let mut idx = TreeIndex::default();
        for (i, k) in [&b"a"[..], b"b", b"c", b"d"].iter().enumerate() {
            idx.put(k, r(i as i64 + 1));
        }
        assert!(idx.tombstone(b"c", r(5)));
        let keys = |end: RangeEnd<'_>, start: &[u8], at| -> Vec<Vec<u8>> {
            idx.range(start, end, at)
                .into_iter()
                .map(|(k, _)| k.to_vec())
                .collect()
        };
        assert_eq!(keys(RangeEnd::Single, b"b", 5), vec![b"b".to_vec()]);
        assert_eq!(
            keys(RangeEnd::Unbounded, b"b", 5),
            vec![b"b".to_vec(), b"d".to_vec()]
        );
        assert_eq!(keys(RangeEnd::Unbounded, b"b", 4).len(), 3);
        assert_eq!(keys(RangeEnd::Before(b"d"), b"a", 5).len(), 2);
        assert!(keys(RangeEnd::Before(b"a"), b"b", 5).is_empty());
        assert_eq!(idx.count(b"\0", RangeEnd::from_request(b"\0"), 5), 3);
        assert_eq!(
            idx.range_since(b"a", RangeEnd::Unbounded, 3),
            vec![r(3), r(4), r(5)]
        );
    }
}
