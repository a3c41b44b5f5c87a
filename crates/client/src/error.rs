//! The client's error type. A server's answer keeps its whole gRPC [`Status`], because
//! callers match on etcd's codes and messages (`etcdserver: mvcc: required revision has
//! been compacted` is `OutOfRange`, `etcdserver: no leader` is `Unavailable`, ...).

use std::time::Duration;

use tonic::{Code, Status};

/// Result with the client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in a client call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `Client::connect` was given no endpoint.
    #[error("no endpoints given")]
    NoEndpoints,
    /// An endpoint that is not `host:port`, `http://host:port` or `https://host:port`.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// TLS settings that cannot be used (unreadable PEM, a certificate without its key,
    /// no CA and no system bundle, ...).
    #[error("TLS: {0}")]
    Tls(String),
    /// Options that contradict each other or the request.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// The server (or the transport, for connection errors) answered with a gRPC status.
    #[error("{}", format_status(.0))]
    Grpc(Box<Status>),
    /// No answer within `ConnectOptions::request_timeout`.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The server ended a watch or keep-alive stream.
    #[error("stream closed by the server")]
    StreamClosed,
    /// An authentication call without [`crate::Credentials`] in the options.
    #[error("no credentials given")]
    NoCredentials,
    /// The server's token cannot be sent as gRPC metadata (not printable ASCII).
    #[error("the server's authentication token is not a valid metadata value")]
    InvalidToken,
    /// The server refused or cancelled a watch (for example a compacted start revision).
    #[error("watch canceled: {reason} (compact_revision {compact_revision})")]
    WatchCanceled {
        reason: String,
        compact_revision: i64,
    },
}

fn format_status(status: &Status) -> String {
    format!("grpc status {:?}: {}", status.code(), status.message())
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Grpc(Box::new(status))
    }
}

impl Error {
    /// The gRPC status, when the error came from a call.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Grpc(status) => Some(status),
            _ => None,
        }
    }

    /// The gRPC code, when the error came from a call.
    pub fn code(&self) -> Option<Code> {
        self.status().map(Status::code)
    }

    /// The server's message (etcd's `etcdserver: ...` text), when the error came from a call.
    pub fn message(&self) -> Option<&str> {
        self.status().map(Status::message)
    }

    /// Whether the client's transport failed (connection refused, reset, broken): the
    /// member may be down. A write that failed so may or may not have been applied.
    pub fn is_transport_error(&self) -> bool {
        self.status().is_some_and(is_transport_error)
    }

    /// Whether the request certainly never reached a server: the connection could not be
    /// made (refused, unreachable, dial timeout). Only then is a write safe to send again.
    pub fn is_connect_error(&self) -> bool {
        self.status().is_some_and(is_connect_error)
    }
}

/// Whether a status was made by the client's transport (the connection failed or broke),
/// not sent by a server. tonic attaches the transport error as the status's source.
pub(crate) fn is_transport_error(status: &Status) -> bool {
    source_chain_has(status, |err| {
        err.is::<tonic::transport::Error>() || err.is::<tonic::ConnectError>()
    })
}

/// Whether the status marks a failed connection attempt: the request was never sent.
pub(crate) fn is_connect_error(status: &Status) -> bool {
    source_chain_has(status, |err| err.is::<tonic::ConnectError>())
}

fn source_chain_has(
    status: &Status,
    pred: impl Fn(&(dyn std::error::Error + 'static)) -> bool,
) -> bool {
    let mut source = std::error::Error::source(status);
    // The chain is short (transport -> hyper -> connect -> io); 16 bounds it anyway.
    for _ in 0..16 {
        match source {
            Some(err) if pred(err) => return true,
            Some(err) => source = err.source(),
            None => return false,
        }
    }
    false
}

/// etcd's error messages that callers commonly match on (`Error::message()`).
pub mod messages {
    /// `OutOfRange`: the requested revision is below the compaction point.
    pub const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
    /// `OutOfRange`: the requested revision is above the current one.
    pub const FUTURE_REV: &str = "etcdserver: mvcc: required revision is a future revision";
    /// `NotFound`: the lease does not exist.
    pub const LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";
    /// `Unavailable`: the member does not know a leader.
    pub const NO_LEADER: &str = "etcdserver: no leader";
    /// `InvalidArgument`: the request has no key.
    pub const EMPTY_KEY: &str = "etcdserver: key is not provided";
    /// `Unauthenticated`: the token expired, was revoked, or is unknown.
    pub const INVALID_AUTH_TOKEN: &str = "etcdserver: invalid auth token";
    /// `InvalidArgument`: the auth store changed since the token was issued.
    pub const AUTH_OLD_REVISION: &str = "etcdserver: revision of auth store is old";
    /// `InvalidArgument`: authentication is on and the call carried no token.
    pub const USER_EMPTY: &str = "etcdserver: user name is empty";
    /// `InvalidArgument`: wrong user name or password.
    pub const AUTH_FAILED: &str = "etcdserver: authentication failed, invalid user ID or password";
    /// `FailedPrecondition`: Authenticate on a server without authentication.
    pub const AUTH_NOT_ENABLED: &str = "etcdserver: authentication is not enabled";
    /// `PermissionDenied`: the user's roles do not allow the request.
    pub const PERMISSION_DENIED: &str = "etcdserver: permission denied";
}

/// `text` followed by each cause in `source`'s chain that `text` does not already say,
/// `: `-separated (a TLS refusal sits several levels below tonic's "transport error").
pub fn with_causes(mut text: String, source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut source = source;
    while let Some(e) = source {
        let cause = e.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = e.source();
    }
    text
}
