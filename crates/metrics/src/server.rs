//! `etcd_server_*` counted where things happen (the member's state, such as the leader
//! and the term, is read from the member at scrape).

use crate::exposition::Exposition;
use crate::primitives::{Counter, Gauge, Labeled};

/// Proposals waiting to be applied.
pub static PROPOSALS_PENDING: Gauge = Gauge::new();
/// Proposals that failed (timed out, dropped, no leader).
pub static PROPOSALS_FAILED: Counter = Counter::new();
/// Applies slower than etcd's 100 ms warning threshold.
pub static SLOW_APPLY: Counter = Counter::new();
/// Read indexes that timed out or came back for another request.
pub static SLOW_READ_INDEXES: Counter = Counter::new();
pub static READ_INDEXES_FAILED: Counter = Counter::new();
/// Heartbeats the leader could not hand to a peer's stream.
pub static HEARTBEAT_SEND_FAILURES: Counter = Counter::new();
pub static HEALTH_SUCCESS: Counter = Counter::new();
pub static HEALTH_FAILURES: Counter = Counter::new();
/// 1 while a snapshot from the leader is installed.
pub static SNAPSHOT_APPLY_IN_PROGRESS: Gauge = Gauge::new();
pub static LEASE_EXPIRED: Counter = Counter::new();
pub static LEARNER_PROMOTE_SUCCESSES: Counter = Counter::new();
/// Promotions the leader refused, per `Reason` (the error's text).
pub static LEARNER_PROMOTE_FAILURES: Labeled<Counter, 1> = Labeled::new(Counter::new);
/// Requests per `type` (`unary`, `stream`) and `client_api_version` (the client's
/// `client-api-version` metadata, `unknown` without it).
pub static CLIENT_REQUESTS: Labeled<Counter, 2> = Labeled::new(Counter::new);

/// The toolchain chorus was built with, for `etcd_server_go_version` (set by build.rs).
pub const RUST_VERSION: &str = env!("CHORUS_RUSTC_VERSION");

pub(crate) fn render(out: &mut Exposition) {
    render_proposals(out);
    let counters: [(&str, &str, &Counter); 8] = [
        ("etcd_server_slow_apply_total", "The total number of slow apply requests (likely overloaded from slow disk).", &SLOW_APPLY),
        ("etcd_server_slow_read_indexes_total", "The total number of pending read indexes not in sync with leader's or timed out read index requests.", &SLOW_READ_INDEXES),
        ("etcd_server_read_indexes_failed_total", "The total number of failed read indexes seen.", &READ_INDEXES_FAILED),
        ("etcd_server_heartbeat_send_failures_total", "The total number of leader heartbeat send failures (likely overloaded from slow disk).", &HEARTBEAT_SEND_FAILURES),
        ("etcd_server_health_success", "The total number of successful health checks", &HEALTH_SUCCESS),
        ("etcd_server_health_failures", "The total number of failed health checks", &HEALTH_FAILURES),
        ("etcd_debugging_server_lease_expired_total", "The total number of expired leases.", &LEASE_EXPIRED),
        ("etcd_server_learner_promote_successes", "The total number of successful learner promotions while this member is leader.", &LEARNER_PROMOTE_SUCCESSES),
    ];
    for (name, help, c) in counters {
        out.counter_of(name, help, c);
    }
    out.gauge_of(
        "etcd_server_snapshot_apply_in_progress_total",
        "1 if the server is applying the incoming snapshot. 0 if none.",
        &SNAPSHOT_APPLY_IN_PROGRESS,
    );
    out.info(
        "etcd_server_go_version",
        "Which Go version server is running with. 1 for 'server_go_version' label with current version.",
        "server_go_version",
        RUST_VERSION,
    );
    render_labeled(out);
}

fn render_proposals(out: &mut Exposition) {
    out.gauge_of(
        "etcd_server_proposals_pending",
        "The current number of pending proposals to commit.",
        &PROPOSALS_PENDING,
    );
    out.counter_of(
        "etcd_server_proposals_failed_total",
        "The total number of failed proposals seen.",
        &PROPOSALS_FAILED,
    );
}

fn render_labeled(out: &mut Exposition) {
    let name = "etcd_server_client_requests_total";
    if !CLIENT_REQUESTS.is_empty() {
        out.family(
            name,
            "counter",
            "The total number of client requests per client version.",
        );
        CLIENT_REQUESTS.each(|[kind, version], c| {
            let labels = [
                ("client_api_version", version.as_str()),
                ("type", kind.as_str()),
            ];
            out.sample(name, &labels, c.get() as f64);
        });
    }
    let name = "etcd_server_learner_promote_failures";
    if !LEARNER_PROMOTE_FAILURES.is_empty() {
        let help = "The total number of failed learner promotions (likely learner not ready) while this member is leader.";
        out.family(name, "counter", help);
        LEARNER_PROMOTE_FAILURES.each(|[reason], c| {
            out.sample(name, &[("Reason", reason.as_str())], c.get() as f64);
        });
    }
}
