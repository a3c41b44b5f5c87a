//! `/metrics`: Prometheus text exposition (format 0.0.4) of the metrics etcd users alert
//! on, under etcd's names: the member's state read here when scraped, then every family
//! counted where it happens (`chorus_metrics`: disk, server, mvcc, lease, gRPC, network,
//! process).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chorus_metrics::Exposition;

use crate::member::Member;
use chorus_config::ETCD_COMPAT_VERSION;

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

pub async fn metrics(State(member): State<Arc<Member>>) -> Response {
    let scrape = chorus_metrics::Scrape::begin();
    let body = tokio::task::spawn_blocking(move || render(&member))
        .await
        .unwrap_or_default();
    scrape.done(200);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

fn render(member: &Member) -> String {
    let mut out = Exposition::with_capacity(64 * 1024);
    let status = &member.status;
    let kv = member.kv();
    let leader = status.leader();
    out.gauge(
        "etcd_server_has_leader",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        flag(leader != raft::INVALID_ID),
    );
    out.gauge(
        "etcd_server_is_leader",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        flag(status.is_leader.load(Ordering::Acquire)),
    );
    out.gauge(
        "etcd_server_is_learner",
        "Whether or not this member is a learner. 1 if is, 0 otherwise.",
        flag(member.is_learner()),
    );
    out.counter(
        "etcd_server_leader_changes_seen_total",
        "The number of leader changes seen.",
        status.leader_changes.load(Ordering::Acquire) as f64,
    );
    out.family(
        "etcd_server_id",
        "gauge",
        "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
    );
    out.sample(
        "etcd_server_id",
        &[("server_id", &format!("{:x}", member.id))],
        1.0,
    );
    out.info(
        "etcd_server_version",
        "Which version is running. 1 for 'server_version' label with current version.",
        "server_version",
        ETCD_COMPAT_VERSION,
    );
    out.gauge(
        "etcd_server_proposals_committed_total",
        "The total number of consensus proposals committed.",
        status.commit.load(Ordering::Acquire) as f64,
    );
    out.gauge(
        "etcd_server_proposals_applied_total",
        "The total number of consensus proposals applied.",
        member.applied_index() as f64,
    );
    out.gauge(
        "etcd_server_term",
        "The current raft term of this member.",
        status.term() as f64,
    );
    if let Some(quota) = member.limits.quota {
        out.gauge(
            "etcd_server_quota_backend_bytes",
            "Current backend storage quota size in bytes.",
            quota as f64,
        );
    }
    let db_size = kv.backend().refresh_size() as f64;
    for name in [
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_debugging_mvcc_db_total_size_in_bytes",
    ] {
        out.gauge(
            name,
            "Total size of the underlying database physically allocated in bytes.",
            db_size,
        );
    }
    out.gauge(
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "Total size of the underlying database logically in use in bytes.",
        db_size,
    );
    out.gauge(
        "etcd_debugging_mvcc_current_revision",
        "The current revision of store.",
        kv.current_rev() as f64,
    );
    out.gauge(
        "etcd_debugging_mvcc_compact_revision",
        "The revision of the last compaction in store.",
        kv.compact_rev() as f64,
    );
    out.gauge(
        "etcd_debugging_mvcc_keys_total",
        "Total number of keys.",
        kv.index_len() as f64,
    );
    let (synced, unsynced) = member.watch_hub().counts();
    out.gauge(
        "etcd_debugging_mvcc_watcher_total",
        "Total number of watchers.",
        (synced + unsynced) as f64,
    );
    out.gauge(
        "etcd_debugging_mvcc_slow_watcher_total",
        "Total number of unsynced slow watchers.",
        unsynced as f64,
    );
    // etcd has no series until the leader set the cluster version.
    if let Some(cv) = member.cluster_version() {
        out.info(
            "etcd_cluster_version",
            "Which version is running. 1 for 'cluster_version' label with current cluster version",
            "cluster_version",
            &cv.major_minor(),
        );
    }
    out.gauge(
        "etcd_debugging_store_watchers",
        "Count of currently active watchers.",
        member.v2_store().read().watcher_count() as f64,
    );
    out.gauge(
        "etcd_debugging_auth_revision",
        "The current revision of auth store.",
        member.auth_store().revision() as f64,
    );
    chorus_metrics::render(&mut out);
    out.0
}
