//! The in-memory raft log that raft-rs reads through its `Storage` trait, as etcd's
//! `raft.MemoryStorage`: the WAL is its durable copy, rebuilt into it at start-up.
//!
//! ```text
//!   snapshot (index S, term) | entries S+1 ..= last      <- kept in memory
//!   compacted (index C, term) marks the entry before the first one held (C >= S - catch-up)
//! ```

use std::collections::VecDeque;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

#[derive(Default)]
pub struct RaftStorage {
    hard_state: HardState,
    conf_state: ConfState,
    /// The last snapshot saved or received: what `snapshot()` hands to raft.
    snapshot: SnapshotMetadata,
    /// Index and term of the entry just before `entries[0]`.
    offset: (u64, u64),
    entries: VecDeque<Entry>,
}

impl RaftStorage {
    /// A log that starts at `snapshot` (index 0 for a new member) with the given hard state
    /// and the entries that follow the snapshot.
    pub fn new(snapshot: SnapshotMetadata, hard_state: HardState, entries: Vec<Entry>) -> Self {
        let conf_state = snapshot.get_conf_state().clone();
        let mut s = RaftStorage {
            hard_state,
            conf_state,
            offset: (snapshot.index, snapshot.term),
            snapshot,
            entries: VecDeque::new(),
        };
        s.append(&entries);
        s
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    pub fn set_commit(&mut self, commit: u64) {
        self.hard_state.commit = commit;
    }

    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    pub fn snapshot_metadata(&self) -> &SnapshotMetadata {
        &self.snapshot
    }

    fn first(&self) -> u64 {
        self.offset.0 + 1
    }

    fn last(&self) -> u64 {
        self.offset.0 + self.entries.len() as u64
    }

    /// Appends entries, dropping any conflicting suffix (raft log truncation).
    pub fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else { return };
        assert!(
            first.index >= self.first(),
            "raft storage: append at {} below first index {}",
            first.index,
            self.first()
        );
        assert!(
            first.index <= self.last() + 1,
            "raft storage: gap between last index {} and append at {}",
            self.last(),
            first.index
        );
        self.entries.truncate((first.index - self.first()) as usize);
        self.entries.extend(ents.iter().cloned());
    }

    /// Records a snapshot taken locally at `meta.index` (already applied) and drops entries
    /// up to `compact_to`, keeping the rest for slow followers.
    pub fn create_snapshot(&mut self, meta: SnapshotMetadata, compact_to: u64) {
        self.snapshot = meta;
        self.compact(compact_to);
    }

    /// Drops entries up to and including `index`.
    pub fn compact(&mut self, index: u64) {
        if index < self.first() {
            return;
        }
        let index = index.min(self.last());
        let term = self
            .term_of(index)
            .expect("term of an entry held in memory");
        let n = (index - self.offset.0) as usize;
        self.entries.drain(..n);
        self.offset = (index, term);
    }

    /// Replaces the log with a snapshot received from the leader.
    pub fn apply_snapshot(&mut self, snap: &Snapshot) {
        let meta = snap.get_metadata();
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = meta.index;
        self.conf_state = meta.get_conf_state().clone();
        self.offset = (meta.index, meta.term);
        self.snapshot = meta.clone();
        self.entries.clear();
    }

    fn term_of(&self, idx: u64) -> Option<u64> {
        if idx == self.offset.0 {
            return Some(self.offset.1);
        }
        if idx < self.first() || idx > self.last() {
            return None;
        }
        Some(self.entries[(idx - self.first()) as usize].term)
    }
}

impl raft::Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        assert!(
            high <= self.last() + 1,
            "raft storage: entries up to {high} past last index {}",
            self.last()
        );
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut out = Vec::with_capacity((high - low) as usize);
        let mut size = 0u64;
        for e in self
            .entries
            .range((low - self.first()) as usize..(high - self.first()) as usize)
        {
            size += (e.data.len() + e.context.len() + 16) as u64;
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snapshot.index {
            return Ok(self.snapshot.term);
        }
        if idx < self.offset.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.term_of(idx)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // The data is attached when the message is sent (see the transport): the follower
        // gets the backend as of the leader's applied index at that moment.
        let mut snap = Snapshot::default();
        snap.set_metadata(self.snapshot.clone());
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use raft::Storage;

    use super::*;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn append_truncates_conflicts_and_compacts() {
        let mut s = RaftStorage::new(SnapshotMetadata::default(), HardState::default(), vec![]);
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 0));
        s.append(&[ent(1, 1), ent(2, 1), ent(3, 1)]);
        s.append(&[ent(3, 2), ent(4, 2)]);
        assert_eq!(s.term(3).unwrap(), 2);
        assert_eq!(s.last_index().unwrap(), 4);
        s.compact(2);
        assert_eq!(s.first_index().unwrap(), 3);
        assert_eq!(s.term(2).unwrap(), 1);
        assert!(s.term(1).is_err());
        let got = s
            .entries(3, 5, None, GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(got.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3, 4]);
        assert!(s
            .entries(2, 5, None, GetEntriesContext::empty(false))
            .is_err());
    }

    #[test]
    fn snapshot_replaces_log() {
        let mut s = RaftStorage::new(SnapshotMetadata::default(), HardState::default(), vec![]);
        s.append(&[ent(1, 1)]);
        let mut snap = Snapshot::default();
        snap.set_metadata(SnapshotMetadata {
            index: 10,
            term: 3,
            ..Default::default()
        });
        s.apply_snapshot(&snap);
        assert_eq!(
            (s.first_index().unwrap(), s.last_index().unwrap()),
            (11, 10)
        );
        assert_eq!(s.term(10).unwrap(), 3);
        assert_eq!(s.hard_state().commit, 10);
        s.append(&[ent(11, 3)]);
        assert_eq!(s.snapshot(0, 0).unwrap().get_metadata().index, 10);
    }
}
