//! The v2v3 store itself: the member it reads and writes through, and its layout.

use std::sync::Arc;

use chorus_api::etcdserverpb::{Compare, RequestOp, TxnRequest, TxnResponse};

use super::layout::{v2_rev, Layout};
use crate::member::Member;
use crate::v2::{Action, Event, NodeExtern, V2Error};

/// When Go's monotonic clock would read 0 (set when the store is built).
pub(super) static PROCESS_START: std::sync::OnceLock<std::time::Instant> =
    std::sync::OnceLock::new();

/// The v2 keys API over the member's v3 keyspace.
pub struct V3Store {
    pub(super) member: Arc<Member>,
    pub(super) layout: Layout,
}

impl V3Store {
    pub fn new(member: Arc<Member>, prefix: &str) -> V3Store {
        PROCESS_START.get_or_init(std::time::Instant::now);
        let layout = Layout {
            pfx: prefix.to_string(),
        };
        V3Store { member, layout }
    }

    /// A txn as the KV service runs it (quota, limits, served locally when it only
    /// reads), as etcd's v2v3 store goes through its own v3 client.
    pub(super) async fn txn(
        &self,
        compare: Vec<Compare>,
        success: Vec<RequestOp>,
        failure: Vec<RequestOp>,
    ) -> Result<TxnResponse, V2Error> {
        let r = TxnRequest {
            compare,
            success,
            failure,
        };
        let resp = crate::api::grpc::kv::txn(&self.member, None, r).await;
        // Failures outside the store (timeouts, a stopped member), as etcd reports them.
        resp.map_err(|e| V2Error::raft_internal(e.to_string()))
    }
}

/// A v2 event whose index is v3 revision `rev`'s.
pub(super) fn event(
    action: Action,
    node: Option<NodeExtern>,
    prev_node: Option<NodeExtern>,
    rev: i64,
) -> Event {
    Event {
        action,
        node,
        prev_node,
        etcd_index: v2_rev(rev),
        refresh: false,
    }
}
