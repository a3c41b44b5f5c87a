//! The serializable-range cache (etcd's `grpcproxy/cache`): responses to ranges, looked
//! up by the exact request (and the caller's token, so one user's answer is never handed
//! to another), at most [`MAX_ENTRIES`] of them, least recently used out first.
//!
//! ```text
//!   Range(serializable) ──▶ get ── hit ──▶ answer from memory
//!                               └─ miss ─▶ member ──▶ add (if not older than the watch)
//!   Put/DeleteRange/Txn via this proxy ──▶ invalidate the keys at once
//!   invalidation watch on the namespace ──▶ invalidate every event's key
//!                                      └── (re)connect ──▶ clear (events may be lost)
//! ```
//!
//! etcd's cache is invalidated only by writes through the same proxy, so a write made
//! elsewhere stays invisible until evicted. Here a watch over the whole namespace also
//! invalidates, so a serializable read through the proxy is at most the watch's delay
//! behind the member. An entry is added only when its revision is at least the newest
//! revision the watch has seen (otherwise an event between the two could be missed), and
//! nothing is cached while that watch is down. Ranges at a fixed revision never change;
//! they go only when compacted.

use std::collections::HashMap;

use chorus_api::etcdserverpb::{RangeRequest, RangeResponse};
use parking_lot::Mutex;
use prost::Message as _;

/// Bound on cached ranges (etcd's `DefaultMaxEntries`).
pub const MAX_ENTRIES: usize = 2048;

struct Entry {
    response: RangeResponse,
    /// `[key, end)` in the member's keyspace; `end` empty: the key alone.
    key: Vec<u8>,
    end: Vec<u8>,
    /// Fixed-revision reads are immutable: invalidation skips them.
    fixed_revision: bool,
    last_used: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<Vec<u8>, Entry>,
    clock: u64,
    compacted: i64,
    /// Newest revision the invalidation watch has reported; `None` while it is down.
    watched: Option<i64>,
}

/// The cache. All methods take `&self`.
#[derive(Default)]
pub struct Cache {
    state: Mutex<State>,
}

/// Why a cached answer is not given.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    Hit(RangeResponse),
    Miss,
    /// The revision asked for is below the compaction point.
    Compacted,
}

/// The lookup key: token, then the request in the member's keyspace as serializable.
pub fn cache_key(token: &[u8], request: &RangeRequest) -> Vec<u8> {
    let mut r = request.clone();
    r.serializable = true;
    let mut key = Vec::with_capacity(token.len() + 1 + r.encoded_len());
    key.extend_from_slice(token);
    key.push(0);
    r.encode(&mut key).expect("a Vec grows");
    key
}

/// `[key, end)` as a half-open interval; `None` as the upper bound: no end.
fn interval(key: &[u8], end: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    match end {
        [] => {
            let mut next = key.to_vec();
            next.push(0);
            (key.to_vec(), Some(next))
        }
        [0] => (key.to_vec(), None),
        e => (key.to_vec(), Some(e.to_vec())),
    }
}

fn overlaps(entry: &Entry, key: &[u8], end: &[u8]) -> bool {
    let (a_lo, a_hi) = interval(&entry.key, &entry.end);
    let (b_lo, b_hi) = interval(key, end);
    let below = |lo: &Vec<u8>, hi: &Option<Vec<u8>>| hi.as_ref().is_none_or(|h| lo < h);
    below(&a_lo, &b_hi) && below(&b_lo, &a_hi)
}

impl Cache {
    pub fn len(&self) -> usize {
        self.state.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, lookup_key: &[u8], revision: i64) -> Lookup {
        let mut s = self.state.lock();
        if revision > 0 && revision < s.compacted {
            s.entries.remove(lookup_key);
            return Lookup::Compacted;
        }
        s.clock += 1;
        let now = s.clock;
        match s.entries.get_mut(lookup_key) {
            Some(e) => {
                e.last_used = now;
                Lookup::Hit(e.response.clone())
            }
            None => Lookup::Miss,
        }
    }

    /// Adds an answer (see the module doc for when it is refused).
    pub fn add(&self, lookup_key: Vec<u8>, request: &RangeRequest, response: &RangeResponse) {
        let mut s = self.state.lock();
        let fixed = request.revision > 0;
        let revision = response.header.as_ref().map_or(0, |h| h.revision);
        match s.watched {
            Some(w) if fixed || revision >= w => {}
            _ => return,
        }
        if fixed && request.revision <= s.compacted {
            return;
        }
        if s.entries.len() >= MAX_ENTRIES && !s.entries.contains_key(&lookup_key) {
            let oldest = s
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                s.entries.remove(&k);
            }
        }
        s.clock += 1;
        let entry = Entry {
            response: response.clone(),
            key: request.key.clone(),
            end: request.range_end.clone(),
            fixed_revision: fixed,
            last_used: s.clock,
        };
        s.entries.insert(lookup_key, entry);
    }

    /// Drops every current-revision answer that covers a key in `[key, end)`.
    pub fn invalidate(&self, key: &[u8], end: &[u8]) {
        let mut s = self.state.lock();
        s.entries
            .retain(|_, e| e.fixed_revision || !overlaps(e, key, end));
    }

    /// The invalidation watch saw revision `revision` (events included).
    pub fn watched(&self, revision: i64) {
        let mut s = self.state.lock();
        if s.watched.is_none_or(|w| w < revision) {
            s.watched = Some(revision);
        }
    }

    /// The invalidation watch went down: nothing cached can be trusted or added.
    pub fn unwatched(&self) {
        let mut s = self.state.lock();
        s.watched = None;
        s.entries.clear();
    }

    /// History below `revision` is gone.
    pub fn compact(&self, revision: i64) {
        let mut s = self.state.lock();
        if revision > s.compacted {
            s.compacted = revision;
            s.entries
                .retain(|_, e| !e.fixed_revision || e.response_revision_ok(revision));
        }
    }
}

impl Entry {
    fn response_revision_ok(&self, compacted: i64) -> bool {
        self.response.header.as_ref().map_or(0, |h| h.revision) >= compacted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_api::etcdserverpb::ResponseHeader;

    fn resp(rev: i64) -> RangeResponse {
        RangeResponse {
            header: Some(ResponseHeader {
                revision: rev,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn req(key: &str, end: &str) -> RangeRequest {
        RangeRequest {
            key: key.into(),
            range_end: end.into(),
            serializable: true,
            ..Default::default()
        }
    }

    #[test]
    fn hit_then_invalidated_by_key_and_range() {
        let c = Cache::default();
        c.watched(5);
        let r = req("a", "c");
        let k = cache_key(b"", &r);
        c.add(k.clone(), &r, &resp(5));
        assert_eq!(c.get(&k, 0), Lookup::Hit(resp(5)));
        c.invalidate(b"d", b"");
        assert!(matches!(c.get(&k, 0), Lookup::Hit(_)));
        c.invalidate(b"b", b"");
        assert_eq!(c.get(&k, 0), Lookup::Miss);
        let single = req("x", "");
        let k2 = cache_key(b"", &single);
        c.add(k2.clone(), &single, &resp(6));
        c.invalidate(b"w", b"\0");
        assert_eq!(c.get(&k2, 0), Lookup::Miss);
    }

    #[test]
    fn older_than_the_watch_or_unwatched_is_not_cached() {
        let c = Cache::default();
        let r = req("a", "");
        let k = cache_key(b"", &r);
        c.add(k.clone(), &r, &resp(5));
        assert_eq!(c.get(&k, 0), Lookup::Miss, "watch down");
        c.watched(7);
        c.add(k.clone(), &r, &resp(6));
        assert_eq!(c.get(&k, 0), Lookup::Miss, "older than the watch");
        c.add(k.clone(), &r, &resp(7));
        assert!(matches!(c.get(&k, 0), Lookup::Hit(_)));
        assert_ne!(cache_key(b"tok", &r), k, "tokens separate entries");
    }

    #[test]
    fn bounded() {
        let c = Cache::default();
        c.watched(1);
        for i in 0..MAX_ENTRIES + 10 {
            let r = req(&format!("k{i}"), "");
            c.add(cache_key(b"", &r), &r, &resp(1));
        }
        assert_eq!(c.len(), MAX_ENTRIES);
    }
}
