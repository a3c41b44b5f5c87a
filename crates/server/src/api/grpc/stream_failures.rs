//! etcd's `etcd_network_server_stream_failures_total` for the client streams (Watch and
//! LeaseKeepAlive): an error receiving from the stream counts unless it is the client
//! leaving, as etcd's `isClientCtxErr` decides.

use chorus_metrics::SERVER_STREAM_FAILURES;
use tonic::{Code, Status};

/// The `API` label of a client stream.
#[derive(Clone, Copy)]
pub(super) enum Api {
    Watch,
    LeaseKeepAlive,
}

/// Counts `status`, an error from the stream's `message()`, unless the client left;
/// true when counted (the server then ends the stream with that error).
pub(super) fn receive_failed(api: Api, status: &Status) -> bool {
    if client_left(status) {
        return false;
    }
    let api = match api {
        Api::Watch => "watch",
        Api::LeaseKeepAlive => "lease-keepalive",
    };
    SERVER_STREAM_FAILURES.add(["receive", api], 1);
    true
}

/// Cancelled and deadline errors are etcd's client context errors; a connection that
/// breaks reaches tonic as Unavailable or Unknown, where Go sees the stream's context
/// cancelled. What remains (a message too large, one that does not decode, a protocol
/// error) is the server refusing the stream.
fn client_left(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Cancelled | Code::DeadlineExceeded | Code::Unavailable | Code::Unknown
    )
}
