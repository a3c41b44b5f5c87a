//! `etcd_debugging_lease_*`: the lessor.

use crate::exposition::Exposition;
use crate::primitives::{exponential_buckets, Counter, Histogram};

pub static LEASE_GRANTED: Counter = Counter::new();
pub static LEASE_REVOKED: Counter = Counter::new();
/// Keep-alives answered by the leader.
pub static LEASE_RENEWED: Counter = Counter::new();
/// The TTL of each granted lease, in seconds (etcd: 1 s to about 97 days).
pub static LEASE_TTL: Histogram<24> = Histogram::new(exponential_buckets(1.0, 2.0));

pub(crate) fn render(out: &mut Exposition) {
    out.counter_of(
        "etcd_debugging_lease_granted_total",
        "The total number of granted leases.",
        &LEASE_GRANTED,
    );
    out.counter_of(
        "etcd_debugging_lease_revoked_total",
        "The total number of revoked leases.",
        &LEASE_REVOKED,
    );
    out.counter_of(
        "etcd_debugging_lease_renewed_total",
        "The number of renewed leases seen by the leader.",
        &LEASE_RENEWED,
    );
    out.histogram(
        "etcd_debugging_lease_ttl_total",
        "Bucketed histogram of lease TTLs.",
        &LEASE_TTL,
    );
}
