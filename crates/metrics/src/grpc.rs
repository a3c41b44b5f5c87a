//! `grpc_server_*`: the families of go-grpc-prometheus, which etcd serves its client API
//! with. Every method etcd registers is known up front, so each has a fixed slot of
//! atomics, and every method × code series is rendered from the start, as etcd does.
//! Handling-time histograms only with `--metrics=extensive`.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::exposition::Exposition;
use crate::primitives::{Counter, Histogram};

/// `grpc_type` of a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unary,
    ServerStream,
    BidiStream,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ServerStream => "server_stream",
            Kind::BidiStream => "bidi_stream",
        }
    }
}

use Kind::{BidiStream, ServerStream, Unary};

/// `(grpc_service, grpc_method, grpc_type)` of every client-port method.
pub const METHODS: [(&str, &str, Kind); 50] = [
    ("etcdserverpb.KV", "Range", Unary),
    ("etcdserverpb.KV", "Put", Unary),
    ("etcdserverpb.KV", "DeleteRange", Unary),
    ("etcdserverpb.KV", "Txn", Unary),
    ("etcdserverpb.KV", "Compact", Unary),
    ("etcdserverpb.Watch", "Watch", BidiStream),
    ("etcdserverpb.Lease", "LeaseGrant", Unary),
    ("etcdserverpb.Lease", "LeaseRevoke", Unary),
    ("etcdserverpb.Lease", "LeaseKeepAlive", BidiStream),
    ("etcdserverpb.Lease", "LeaseTimeToLive", Unary),
    ("etcdserverpb.Lease", "LeaseLeases", Unary),
    ("etcdserverpb.Cluster", "MemberAdd", Unary),
    ("etcdserverpb.Cluster", "MemberRemove", Unary),
    ("etcdserverpb.Cluster", "MemberUpdate", Unary),
    ("etcdserverpb.Cluster", "MemberList", Unary),
    ("etcdserverpb.Cluster", "MemberPromote", Unary),
    ("etcdserverpb.Maintenance", "Alarm", Unary),
    ("etcdserverpb.Maintenance", "Status", Unary),
    ("etcdserverpb.Maintenance", "Defragment", Unary),
    ("etcdserverpb.Maintenance", "Hash", Unary),
    ("etcdserverpb.Maintenance", "HashKV", Unary),
    ("etcdserverpb.Maintenance", "Snapshot", ServerStream),
    ("etcdserverpb.Maintenance", "MoveLeader", Unary),
    ("etcdserverpb.Maintenance", "Downgrade", Unary),
    ("etcdserverpb.Auth", "AuthEnable", Unary),
    ("etcdserverpb.Auth", "AuthDisable", Unary),
    ("etcdserverpb.Auth", "AuthStatus", Unary),
    ("etcdserverpb.Auth", "Authenticate", Unary),
    ("etcdserverpb.Auth", "UserAdd", Unary),
    ("etcdserverpb.Auth", "UserGet", Unary),
    ("etcdserverpb.Auth", "UserList", Unary),
    ("etcdserverpb.Auth", "UserDelete", Unary),
    ("etcdserverpb.Auth", "UserChangePassword", Unary),
    ("etcdserverpb.Auth", "UserGrantRole", Unary),
    ("etcdserverpb.Auth", "UserRevokeRole", Unary),
    ("etcdserverpb.Auth", "RoleAdd", Unary),
    ("etcdserverpb.Auth", "RoleGet", Unary),
    ("etcdserverpb.Auth", "RoleList", Unary),
    ("etcdserverpb.Auth", "RoleDelete", Unary),
    ("etcdserverpb.Auth", "RoleGrantPermission", Unary),
    ("etcdserverpb.Auth", "RoleRevokePermission", Unary),
    ("v3lockpb.Lock", "Lock", Unary),
    ("v3lockpb.Lock", "Unlock", Unary),
    ("v3electionpb.Election", "Campaign", Unary),
    ("v3electionpb.Election", "Proclaim", Unary),
    ("v3electionpb.Election", "Leader", Unary),
    ("v3electionpb.Election", "Observe", ServerStream),
    ("v3electionpb.Election", "Resign", Unary),
    // Served by etcd's gRPC server; chorus answers them as unimplemented.
    ("grpc.health.v1.Health", "Check", Unary),
    ("grpc.health.v1.Health", "Watch", ServerStream),
];

/// gRPC status code names, indexed by code.
pub const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// go-grpc-prometheus' default buckets (Prometheus' `DefBuckets`).
const HANDLING_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The counters of one method.
#[derive(Debug)]
pub struct MethodStats {
    pub started: Counter,
    pub handled: [Counter; 17],
    pub msg_received: Counter,
    pub msg_sent: Counter,
    pub handling_seconds: Histogram<11>,
}

impl MethodStats {
    const fn new() -> MethodStats {
        MethodStats {
            started: Counter::new(),
            handled: [const { Counter::new() }; 17],
            msg_received: Counter::new(),
            msg_sent: Counter::new(),
            handling_seconds: Histogram::new(HANDLING_BUCKETS),
        }
    }

    /// Records a finished call with `code` (out-of-range codes count as `Unknown`).
    pub fn handled(&self, code: usize) {
        self.handled.get(code).unwrap_or(&self.handled[2]).inc();
    }
}

pub static STATS: [MethodStats; METHODS.len()] = [const { MethodStats::new() }; METHODS.len()];

static HANDLING_TIME: AtomicBool = AtomicBool::new(false);

/// `--metrics=extensive`: time every call into `grpc_server_handling_seconds`.
pub fn enable_handling_time() {
    HANDLING_TIME.store(true, Ordering::Relaxed);
}

pub fn handling_time_enabled() -> bool {
    HANDLING_TIME.load(Ordering::Relaxed)
}

/// The slot of a request path `/service/method`, if it is a served method.
pub fn method_index(path: &str) -> Option<usize> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    METHODS
        .iter()
        .position(|(s, m, _)| *m == method && *s == service)
}

/// The kind of the method in slot `i`.
pub fn kind(i: usize) -> Kind {
    METHODS[i].2
}

pub(crate) fn render(out: &mut Exposition) {
    let per_method: [(&str, &str, fn(&MethodStats) -> &Counter); 3] = [
        (
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            |s| &s.started,
        ),
        (
            "grpc_server_msg_received_total",
            "Total number of RPC stream messages received on the server.",
            |s| &s.msg_received,
        ),
        (
            "grpc_server_msg_sent_total",
            "Total number of gRPC stream messages sent by the server.",
            |s| &s.msg_sent,
        ),
    ];
    for (name, help, get) in per_method {
        out.family(name, "counter", help);
        for (i, (service, method, kind)) in METHODS.iter().enumerate() {
            let labels = [
                ("grpc_method", *method),
                ("grpc_service", *service),
                ("grpc_type", kind.label()),
            ];
            out.sample(name, &labels, get(&STATS[i]).get() as f64);
        }
    }
    render_handled(out);
    if handling_time_enabled() {
        render_handling_time(out);
    }
}

fn render_handled(out: &mut Exposition) {
    let name = "grpc_server_handled_total";
    out.family(
        name,
        "counter",
        "Total number of RPCs completed on the server, regardless of success or failure.",
    );
    for (code_index, code) in CODES.iter().enumerate() {
        for (i, (service, method, kind)) in METHODS.iter().enumerate() {
            let labels = [
                ("grpc_code", *code),
                ("grpc_method", *method),
                ("grpc_service", *service),
                ("grpc_type", kind.label()),
            ];
            out.sample(name, &labels, STATS[i].handled[code_index].get() as f64);
        }
    }
}

fn render_handling_time(out: &mut Exposition) {
    let name = "grpc_server_handling_seconds";
    out.family(name, "histogram", "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.");
    for (i, (service, method, kind)) in METHODS.iter().enumerate() {
        let labels = [
            ("grpc_method", *method),
            ("grpc_service", *service),
            ("grpc_type", kind.label()),
        ];
        out.histogram_series(name, &labels, &STATS[i].handling_seconds);
    }
}

/// Counts the length-prefixed messages of one direction of a gRPC call as its bytes go
/// by (a 5-byte header: compression flag and big-endian length, then the message).
#[derive(Debug, Default)]
pub struct MessageCounter {
    /// Header bytes seen of the next message (0..5).
    header: u8,
    len: [u8; 4],
    /// Bytes of the current message still to come.
    remaining: u64,
}

impl MessageCounter {
    /// Feeds `chunk`; returns how many messages started in it.
    pub fn feed(&mut self, mut chunk: &[u8]) -> u64 {
        let mut started = 0;
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let n = (self.remaining as usize).min(chunk.len());
                self.remaining -= n as u64;
                chunk = &chunk[n..];
                continue;
            }
            if self.header == 0 {
                started += 1;
            }
            if self.header >= 1 {
                self.len[usize::from(self.header) - 1] = chunk[0];
            }
            self.header += 1;
            chunk = &chunk[1..];
            if self.header == 5 {
                self.header = 0;
                self.remaining = u64::from(u32::from_be_bytes(self.len));
            }
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut f = vec![0];
        f.extend_from_slice(&len.to_be_bytes());
        f.extend(std::iter::repeat_n(7, len as usize));
        f
    }

    #[test]
    fn messages_are_counted_across_any_chunking() {
        let mut bytes = frame(3);
        bytes.extend(frame(0));
        bytes.extend(frame(300));
        for size in [1, 2, 3, 5, 7, 64, bytes.len()] {
            let mut c = MessageCounter::default();
            let n: u64 = bytes.chunks(size).map(|ch| c.feed(ch)).sum();
            assert_eq!(n, 3, "chunks of {size}");
        }
    }

    #[test]
    fn paths_map_to_their_methods() {
        let i = method_index("/etcdserverpb.KV/Put").unwrap();
        assert_eq!(METHODS[i].1, "Put");
        assert_eq!(
            kind(method_index("/etcdserverpb.Watch/Watch").unwrap()),
            Kind::BidiStream
        );
        assert_eq!(method_index("/etcdserverpb.KV/Nope"), None);
        assert_eq!(
            method_index("/grpc.health.v1.Health/Check").map(kind),
            Some(Kind::Unary)
        );
    }
}
