//! `etcd_network_*`: peer traffic (per peer, labelled with its hexadecimal member ID like
//! etcd) and client gRPC bytes.

use std::sync::Arc;

use crate::exposition::Exposition;
use crate::primitives::{Counter, Gauge, Labeled};

/// Bytes of raft messages sent, per `To` peer.
pub static PEER_SENT_BYTES: Labeled<Counter, 1> = Labeled::new(Counter::new);
/// Bytes of raft messages received, per `From` peer.
pub static PEER_RECEIVED_BYTES: Labeled<Counter, 1> = Labeled::new(Counter::new);
/// Message streams from a peer that failed (broken, or a message refused), per `From`.
pub static PEER_RECEIVED_FAILURES: Labeled<Counter, 1> = Labeled::new(Counter::new);
/// Messages dropped because the peer's queue was full or its stream broke, per `To`.
pub static PEER_SENT_FAILURES: Labeled<Counter, 1> = Labeled::new(Counter::new);
/// Open message streams per `Local`, `Remote` member.
pub static ACTIVE_PEERS: Labeled<Gauge, 2> = Labeled::new(Gauge::new);
/// Message streams that broke, per `Local`, `Remote` member.
pub static DISCONNECTED_PEERS: Labeled<Counter, 2> = Labeled::new(Counter::new);
/// Client streams (Watch, LeaseKeepAlive) that failed on the server's side, per `Type`
/// (`receive`, `send`) and `API` (`watch`, `lease-keepalive`); a client that cancels or
/// goes away is not a failure.
pub static SERVER_STREAM_FAILURES: Labeled<Counter, 2> = Labeled::new(Counter::new);
pub static CLIENT_GRPC_SENT_BYTES: Counter = Counter::new();
pub static CLIENT_GRPC_RECEIVED_BYTES: Counter = Counter::new();

/// How etcd writes a member ID in a label.
pub fn peer_label(id: u64) -> String {
    format!("{id:x}")
}

/// One peer's series of a per-peer counter, looked up once and kept while the peer stays
/// the same (a message stream's loop holds one): recording is then one atomic add.
#[derive(Debug)]
pub struct PeerSeries {
    family: &'static Labeled<Counter, 1>,
    cached: Option<(u64, Arc<Counter>)>,
}

impl PeerSeries {
    pub fn new(family: &'static Labeled<Counter, 1>) -> PeerSeries {
        PeerSeries {
            family,
            cached: None,
        }
    }

    pub fn add(&mut self, peer: u64, n: u64) {
        if self.cached.as_ref().is_none_or(|(id, _)| *id != peer) {
            self.cached = self.family.with([&peer_label(peer)]).map(|c| (peer, c));
        }
        if let Some((_, c)) = &self.cached {
            c.add(n);
        }
    }
}

pub(crate) fn render(out: &mut Exposition) {
    let per_peer: [(&str, &str, &str, &Labeled<Counter, 1>); 4] = [
        (
            "etcd_network_peer_sent_bytes_total",
            "The total number of bytes sent to peers.",
            "To",
            &PEER_SENT_BYTES,
        ),
        (
            "etcd_network_peer_received_bytes_total",
            "The total number of bytes received from peers.",
            "From",
            &PEER_RECEIVED_BYTES,
        ),
        (
            "etcd_network_peer_sent_failures_total",
            "The total number of send failures from peers.",
            "To",
            &PEER_SENT_FAILURES,
        ),
        (
            "etcd_network_peer_received_failures_total",
            "The total number of receive failures from peers.",
            "From",
            &PEER_RECEIVED_FAILURES,
        ),
    ];
    for (name, help, label, family) in per_peer {
        if family.is_empty() {
            continue;
        }
        out.family(name, "counter", help);
        family.each(|[peer], c| out.sample(name, &[(label, peer)], c.get() as f64));
    }
    let name = "etcd_network_active_peers";
    if !ACTIVE_PEERS.is_empty() {
        out.family(
            name,
            "gauge",
            "The current number of active peer connections.",
        );
        ACTIVE_PEERS
            .each(|[l, r], g| out.sample(name, &[("Local", l), ("Remote", r)], g.get() as f64));
    }
    let name = "etcd_network_disconnected_peers_total";
    if !DISCONNECTED_PEERS.is_empty() {
        out.family(name, "counter", "The total number of disconnected peers.");
        DISCONNECTED_PEERS
            .each(|[l, r], c| out.sample(name, &[("Local", l), ("Remote", r)], c.get() as f64));
    }
    let name = "etcd_network_server_stream_failures_total";
    if !SERVER_STREAM_FAILURES.is_empty() {
        out.family(
            name,
            "counter",
            "The total number of stream failures from the local server.",
        );
        SERVER_STREAM_FAILURES
            .each(|[t, a], c| out.sample(name, &[("API", a), ("Type", t)], c.get() as f64));
    }
    out.counter_of(
        "etcd_network_client_grpc_sent_bytes_total",
        "The total number of bytes sent to grpc clients.",
        &CLIENT_GRPC_SENT_BYTES,
    );
    out.counter_of(
        "etcd_network_client_grpc_received_bytes_total",
        "The total number of bytes received from grpc clients.",
        &CLIENT_GRPC_RECEIVED_BYTES,
    );
}
