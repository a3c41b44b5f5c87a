//! `etcd_server_apply_duration_seconds`: how long each applied request took, by API
//! `version`, `op` and `success`, with etcd's labels (its `applySec`). Every label set is
//! known up front, so each is a fixed slot: recording is an array index and the
//! histogram's atomic adds, without a look-up or a string.

use std::time::Duration;

use crate::exposition::Exposition;
use crate::primitives::{exponential_buckets, Histogram};

/// A kind of applied request, by etcd's `op` label (v3: the `InternalRaftRequest`
/// field; v2: the request's method).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyOp {
    ClusterVersionSet,
    ClusterMemberAttrSet,
    DowngradeInfoSet,
    Put,
    DeleteRange,
    Txn,
    Compaction,
    LeaseGrant,
    LeaseRevoke,
    LeaseCheckpoint,
    Alarm,
    Authenticate,
    AuthEnable,
    AuthDisable,
    /// etcd leaves `op` at `unknown` for AuthStatus.
    AuthStatus,
    AuthUserAdd,
    AuthUserDelete,
    AuthUserChangePassword,
    AuthUserGrantRole,
    AuthUserGet,
    AuthUserRevokeRole,
    AuthRoleAdd,
    AuthRoleGrantPermission,
    AuthRoleGet,
    AuthRoleRevokePermission,
    AuthRoleDelete,
    AuthUserList,
    AuthRoleList,
    V2Post,
    V2Put,
    V2Delete,
    V2QGet,
    V2Sync,
}

/// `(version, op)` of each [`ApplyOp`], in declaration order.
const LABELS: [(&str, &str); 33] = [
    ("v3", "ClusterVersionSet"),
    ("v3", "ClusterMemberAttrSet"),
    ("v3", "DowngradeInfoSet"),
    ("v3", "Put"),
    ("v3", "DeleteRange"),
    ("v3", "Txn"),
    ("v3", "Compaction"),
    ("v3", "LeaseGrant"),
    ("v3", "LeaseRevoke"),
    ("v3", "LeaseCheckpoint"),
    ("v3", "Alarm"),
    ("v3", "Authenticate"),
    ("v3", "AuthEnable"),
    ("v3", "AuthDisable"),
    ("v3", "unknown"),
    ("v3", "AuthUserAdd"),
    ("v3", "AuthUserDelete"),
    ("v3", "AuthUserChangePassword"),
    ("v3", "AuthUserGrantRole"),
    ("v3", "AuthUserGet"),
    ("v3", "AuthUserRevokeRole"),
    ("v3", "AuthRoleAdd"),
    ("v3", "AuthRoleGrantPermission"),
    ("v3", "AuthRoleGet"),
    ("v3", "AuthRoleRevokePermission"),
    ("v3", "AuthRoleDelete"),
    ("v3", "AuthUserList"),
    ("v3", "AuthRoleList"),
    ("v2", "POST"),
    ("v2", "PUT"),
    ("v2", "DELETE"),
    ("v2", "QGET"),
    ("v2", "SYNC"),
];

/// etcd's buckets: 0.1 ms to 52.4288 s.
const BUCKETS: [f64; 20] = exponential_buckets(0.0001, 2.0);

/// One histogram per op, failed (`[0]`) and succeeded (`[1]`).
static APPLY_SECONDS: [[Histogram<20>; 2]; LABELS.len()] = [const {
    [
        const { Histogram::new(BUCKETS) },
        const { Histogram::new(BUCKETS) },
    ]
}; LABELS.len()];

/// Records one applied request.
#[inline]
pub fn observe_apply(op: ApplyOp, success: bool, took: Duration) {
    APPLY_SECONDS[op as usize][usize::from(success)].observe_duration(took);
}

/// Only the label sets that were recorded, as a Go `HistogramVec` shows them.
pub(crate) fn render(out: &mut Exposition) {
    let name = "etcd_server_apply_duration_seconds";
    let used = || APPLY_SECONDS.iter().flatten().any(|h| h.count() > 0);
    if !used() {
        return;
    }
    out.family(
        name,
        "histogram",
        "The latency distributions of v2 apply called by backend.",
    );
    for ((version, op), pair) in LABELS.iter().zip(&APPLY_SECONDS) {
        for (h, success) in pair.iter().zip(["false", "true"]) {
            if h.count() > 0 {
                let labels = [("op", *op), ("success", success), ("version", *version)];
                out.histogram_series(name, &labels, h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_ops() {
        assert_eq!(LABELS[ApplyOp::Put as usize], ("v3", "Put"));
        assert_eq!(LABELS[ApplyOp::AuthStatus as usize], ("v3", "unknown"));
        assert_eq!(
            LABELS[ApplyOp::AuthRoleList as usize],
            ("v3", "AuthRoleList")
        );
        assert_eq!(LABELS[ApplyOp::V2Sync as usize], ("v2", "SYNC"));
        assert_eq!(BUCKETS[19], 52.4288);
    }

    #[test]
    fn recorded_series_are_rendered_with_etcds_labels() {
        observe_apply(ApplyOp::V2QGet, false, Duration::from_micros(150));
        let mut out = Exposition::default();
        render(&mut out);
        let series = "etcd_server_apply_duration_seconds_bucket{op=\"QGET\",success=\"false\",version=\"v2\",le=\"0.0002\"} 1\n";
        assert!(out.0.contains(series), "{}", out.0);
        assert!(!out.0.contains("op=\"QGET\",success=\"true\""));
    }
}
