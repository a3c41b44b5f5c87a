//! etcd 3.7's RangeStream: a Range answered as a stream of chunks, each read from the
//! store at the revision the first chunk pinned, so the chunks together are one
//! consistent snapshot while memory stays bounded by a chunk, not by the result.
//!
//! ```text
//!   chunk 1: range(key, end, limit 10)            at the current revision R (pinned)
//!   chunk n: range(last key + \0, end, limit L_n) at R; L_n doubles while a chunk is
//!            under half of --max-request-bytes, halves while over twice it
//!   last:    header{revision R}, more, count (everything in [key, end) at R)
//! ```
//!
//! Only the last message carries the header, `more` and `count`; a count-only request is
//! answered by that message alone (etcd's `rangeStream`).

use std::sync::Arc;

use chorus_api::etcdserverpb::{range_request, RangeRequest, RangeResponse, ResponseHeader};
use chorus_storage::mvcc::KvStore;
use prost::Message as _;

use crate::error::EtcdError;
use crate::kv::{self, PinnedRead};

/// etcd's `initialStreamChunkLimit`: keys in the first chunk.
const INITIAL_CHUNK_LIMIT: i64 = 10;

/// etcd's `checkRangeStreamRequest`: a Range's checks, and only the store's own order
/// (ascending keys) without revision filters, which chunks could not honour.
pub fn check_request(r: &RangeRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    let order = range_request::SortOrder::try_from(r.sort_order);
    let target = range_request::SortTarget::try_from(r.sort_target);
    let (Ok(order), Ok(target)) = (order, target) else {
        return Err(EtcdError::InvalidSortOption);
    };
    let default_order = order == range_request::SortOrder::None
        || (target == range_request::SortTarget::Key && order == range_request::SortOrder::Ascend);
    if !default_order {
        return Err(EtcdError::Unimplemented(
            "RangeStream does not support custom sort orders".into(),
        ));
    }
    let filters = [
        r.min_mod_revision,
        r.max_mod_revision,
        r.min_create_revision,
        r.max_create_revision,
    ];
    if filters.iter().any(|&f| f != 0) {
        return Err(EtcdError::Unimplemented(
            "RangeStream does not support revision filters".into(),
        ));
    }
    Ok(())
}

/// The chunks of one RangeStream, read one at a time.
pub struct RangeChunks {
    kv: Arc<KvStore>,
    /// The next chunk's request: its key, limit and (once pinned) revision advance.
    req: RangeRequest,
    /// The request's limit (no limit: `i64::MAX`).
    total_limit: i64,
    /// Keys sent so far.
    sent: i64,
    /// The store's revision when the first chunk was read (0 before).
    header_rev: i64,
    /// The size a chunk aims at (`--max-request-bytes`).
    target_bytes: usize,
    done: bool,
}

impl RangeChunks {
    pub fn new(kv: Arc<KvStore>, mut req: RangeRequest, target_bytes: usize) -> RangeChunks {
        let total_limit = if req.limit > 0 { req.limit } else { i64::MAX };
        req.limit = INITIAL_CHUNK_LIMIT.min(total_limit);
        RangeChunks {
            kv,
            req,
            total_limit,
            sent: 0,
            header_rev: 0,
            target_bytes,
            done: false,
        }
    }

    /// The next chunk; `None` after the last one or an error.
    pub fn next_chunk(&mut self) -> Option<Result<RangeResponse, EtcdError>> {
        if self.done {
            return None;
        }
        let chunk = match self.req.count_only {
            true => self.count_only(),
            false => self.chunk(),
        };
        self.done |= chunk.is_err();
        Some(chunk)
    }

    fn count_only(&mut self) -> Result<RangeResponse, EtcdError> {
        self.done = true;
        let resp = kv::range(&PinnedRead::new(&self.kv), &self.req)?;
        Ok(last_message(resp.header, false, resp.count))
    }

    fn chunk(&mut self) -> Result<RangeResponse, EtcdError> {
        let resp = kv::range(&PinnedRead::new(&self.kv), &self.req)?;
        if self.header_rev == 0 {
            self.header_rev = resp.header.as_ref().map_or(0, |h| h.revision);
            if self.req.revision == 0 {
                self.req.revision = self.header_rev;
            }
        }
        self.sent += resp.kvs.len() as i64;
        // `count` is every key from this chunk's first on.
        let remaining = resp.count - resp.kvs.len() as i64;
        let size = resp.encoded_len();
        let next_key = resp.kvs.last().filter(|_| resp.more).map(|kv| {
            let mut k = kv.key.clone();
            k.push(0);
            k
        });
        self.done = next_key.is_none() || self.sent == self.total_limit;
        if self.done {
            let header = Some(ResponseHeader {
                revision: self.header_rev,
                ..Default::default()
            });
            let mut last = last_message(header, resp.more, self.sent + remaining);
            last.kvs = resp.kvs;
            return Ok(last);
        }
        self.req.key = next_key.expect("not done: more keys");
        let limit = next_chunk_limit(self.req.limit, size, self.target_bytes);
        self.req.limit = limit.min(self.total_limit - self.sent);
        Ok(RangeResponse {
            kvs: resp.kvs,
            ..Default::default()
        })
    }
}

fn last_message(header: Option<ResponseHeader>, more: bool, count: i64) -> RangeResponse {
    RangeResponse {
        header,
        more,
        count,
        ..Default::default()
    }
}

/// etcd's `adjustChunkLimit`: doubles the limit while a chunk is under half the target
/// size, halves it while over twice it; never 0 (which would mean no limit).
fn next_chunk_limit(last_limit: i64, last_size: usize, target: usize) -> i64 {
    let limit = if last_size < target / 2 {
        last_limit.saturating_mul(2)
    } else if last_size > target.saturating_mul(2) {
        last_limit / 2
    } else {
        last_limit
    };
    limit.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_limit_follows_the_chunk_size() {
        assert_eq!(next_chunk_limit(10, 100, 1000), 20);
        assert_eq!(next_chunk_limit(10, 600, 1000), 10);
        assert_eq!(next_chunk_limit(10, 2001, 1000), 5);
        assert_eq!(next_chunk_limit(1, 5000, 1000), 1);
    }

    #[test]
    fn only_the_store_order_without_filters() {
        let ok = RangeRequest {
            key: b"a".to_vec(),
            sort_order: range_request::SortOrder::Ascend as i32,
            ..Default::default()
        };
        assert_eq!(check_request(&ok), Ok(()));
        let by_mod = RangeRequest {
            sort_target: range_request::SortTarget::Mod as i32,
            ..ok.clone()
        };
        assert!(
            matches!(check_request(&by_mod), Err(EtcdError::Unimplemented(m)) if m == "RangeStream does not support custom sort orders")
        );
        let filtered = RangeRequest {
            min_mod_revision: 2,
            ..ok.clone()
        };
        assert!(
            matches!(check_request(&filtered), Err(EtcdError::Unimplemented(m)) if m == "RangeStream does not support revision filters")
        );
        let bad = RangeRequest {
            sort_order: 9,
            ..ok
        };
        assert_eq!(check_request(&bad), Err(EtcdError::InvalidSortOption));
    }
}
