//! A range's records as stored, read on demand: for a caller that sends them on as they
//! are (each record is an encoded `mvccpb.KeyValue`, which is what a Range response holds),
//! so that a range of a million keys is never decoded, copied and held whole.

use std::ops::ControlFlow;
use std::sync::Arc;

use chorus_api::mvccpb::KeyValue;

use super::{
    check_rev, collect_revisions, KvStore, RangeEnd, RangeOptions, Result, Revision, View,
};
use super::{decode_kv, MvccError};
use crate::backend::{Backend, BackendError, KV};

/// The records of a range at one revision, in key order, in a snapshot of the store
/// (held open, as a redb read transaction, until this is dropped).
pub struct Records {
    view: View,
    /// Held so that a backend a defragment replaced is not closed under a long read (it
    /// is closed once released).
    _backend: Arc<Backend>,
    revs: Vec<Revision>,
    /// Keys in the range at `rev`, however many `limit` kept.
    pub count: usize,
    /// The store's revision when read (a response header's).
    pub rev: i64,
}

impl KvStore {
    /// [`KvStore::range`]'s records, not yet read (`opts.count_only` is ignored).
    pub fn range_records(
        &self,
        key: &[u8],
        end: RangeEnd<'_>,
        opts: RangeOptions,
    ) -> Result<Records> {
        let index = self.index.read();
        let cur = self.current_rev();
        let rev = check_rev(opts.rev, cur, self.compact_rev())?;
        let view = self.view()?;
        let (revs, count) = collect_revisions(&index, key, end, rev, opts.limit);
        drop(index);
        Ok(Records {
            view,
            _backend: self.backend.clone(),
            revs,
            count,
            rev: cur,
        })
    }
}

impl Records {
    /// Records in the range (at most the limit asked for).
    pub fn len(&self) -> usize {
        self.revs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.revs.is_empty()
    }

    /// Keeps the first `n` records.
    pub fn truncate(&mut self, n: usize) {
        self.revs.truncate(n);
    }

    /// Calls `f` with each record's bytes, in key order, from the `from`th on, until it
    /// breaks; the position after the last record `f` was given.
    pub fn visit(&self, from: usize, mut f: impl FnMut(&[u8]) -> ControlFlow<()>) -> Result<usize> {
        let table = self.view.tx.open_table(KV)?;
        let mut at = from;
        for r in self.revs.iter().skip(from) {
            at += 1;
            let flow = match self.view.pending_get((r.main, r.sub)) {
                Some(bytes) => f(bytes),
                None => {
                    let v = table.get((r.main, r.sub))?.ok_or_else(|| missing(*r))?;
                    f(v.value())
                }
            };
            if flow.is_break() {
                break;
            }
        }
        Ok(at)
    }

    /// The records decoded (what [`KvStore::range`] returns).
    pub fn decode(&self) -> Result<Vec<KeyValue>> {
        let mut kvs = Vec::with_capacity(self.revs.len());
        let mut failed = None;
        self.visit(0, |bytes| match decode_kv(bytes) {
            Ok(kv) => {
                kvs.push(kv);
                ControlFlow::Continue(())
            }
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(kvs),
        }
    }
}

pub(super) fn missing(r: Revision) -> MvccError {
    MvccError::Backend(BackendError::Corrupt {
        what: format!(
            "revision {}.{} is in the index but not the backend",
            r.main, r.sub
        ),
    })
}
