//! etcd's backpressure on proposals: while apply is far behind the commit index, new
//! work is refused with `etcdserver: too many requests`. With the `PriorityRequest` gate
//! (etcd 3.7's `exceedsRequestLimit`), lease revokes may go on until twice that gap, so
//! that expiring leases still free the cluster under overload.

use chorus_api::internalpb::internal_request::Request;

/// Committed entries apply may fall behind before proposals are refused (etcd's
/// `maxGapBetweenApplyAndCommitIndex`).
pub const MAX_APPLY_GAP: u64 = 5000;

/// The gap a priority request may still be proposed at (etcd's `maxPriorityGap`).
pub const MAX_PRIORITY_GAP: u64 = 2 * MAX_APPLY_GAP;

/// Requests that go first under overload (etcd's `isPriorityRequest`).
pub fn is_priority(r: &Request) -> bool {
    matches!(r, Request::LeaseRevoke(_))
}

/// Whether a proposal must be refused with apply at `applied` and the log committed up
/// to `committed`.
pub fn exceeds_request_limit(applied: u64, committed: u64, priority: bool) -> bool {
    let gap = if priority {
        MAX_PRIORITY_GAP
    } else {
        MAX_APPLY_GAP
    };
    committed > applied + gap
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_api::etcdserverpb::{LeaseRevokeRequest, PutRequest};

    #[test]
    fn lease_revokes_get_twice_the_gap_when_prioritised() {
        assert!(!exceeds_request_limit(100, 100 + MAX_APPLY_GAP, false));
        assert!(exceeds_request_limit(100, 101 + MAX_APPLY_GAP, false));
        assert!(!exceeds_request_limit(100, 101 + MAX_APPLY_GAP, true));
        assert!(!exceeds_request_limit(100, 100 + MAX_PRIORITY_GAP, true));
        assert!(exceeds_request_limit(100, 101 + MAX_PRIORITY_GAP, true));
        assert!(is_priority(&Request::LeaseRevoke(LeaseRevokeRequest {
            id: 1
        })));
        assert!(!is_priority(&Request::Put(PutRequest::default())));
    }
}
