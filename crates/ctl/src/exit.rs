//! etcdctl's exit codes, its `Error: ...` lines, and the text of a failed call as clientv3
//! renders it (etcd's own errors by their message, anything else as `rpc error: ...`).

use std::io::Write;

use chorus_client::Error as ClientError;
use tonic::Code;

/// etcdctl's exit codes (`ctlv3/command/error.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Error = 1,
    BadConnection = 2,
    InvalidInput = 3,
    BadFeature = 4,
    Interrupted = 5,
    BadArgs = 128,
}

/// Flushes standard output and exits.
pub fn exit(code: ExitCode) -> ! {
    exit_raw(code as i32)
}

pub fn exit_raw(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// `ExitWithError`: `Error: <msg>` on standard error, then exit.
pub fn fail(code: ExitCode, msg: &str) -> ! {
    let _ = std::io::stdout().flush();
    eprintln!("Error: {msg}");
    exit(code)
}

/// etcd's server errors (rpctypes): clientv3 shows these by their message alone.
const ETCD_ERRORS: &[&str] = &[
    "etcdserver: watch canceled",
    "etcdserver: corrupt cluster",
    "etcdserver: Peer URLs already exists",
    "etcdserver: authentication is not enabled",
    "etcdserver: bad leader transferee",
    "etcdserver: can only promote a learner member",
    "etcdserver: can only promote a learner member which is in sync with leader",
    "etcdserver: lease already exists",
    "etcdserver: member ID already exist",
    "etcdserver: not leader",
    "etcdserver: permission is not granted to the role",
    "etcdserver: re-configuration failed due to not enough started members",
    "etcdserver: role is not granted to the user",
    "etcdserver: role name already exists",
    "etcdserver: role name not found",
    "etcdserver: root user does not exist",
    "etcdserver: root user does not have root role",
    "etcdserver: too many learner members in cluster",
    "etcdserver: user name already exists",
    "etcdserver: user name not found",
    "etcdserver: authentication failed, invalid user ID or password",
    "etcdserver: duplicate key given in txn request",
    "etcdserver: given member URLs are invalid",
    "etcdserver: invalid auth management",
    "etcdserver: key is not provided",
    "etcdserver: key not found",
    "etcdserver: lease is provided",
    "etcdserver: request is too large",
    "etcdserver: revision of auth store is old",
    "etcdserver: role name is empty",
    "etcdserver: too many operations in txn request",
    "etcdserver: user name is empty",
    "etcdserver: value is provided",
    "etcdserver: member not found",
    "etcdserver: requested lease not found",
    "etcdserver: mvcc: required revision has been compacted",
    "etcdserver: mvcc: required revision is a future revision",
    "etcdserver: too large lease TTL",
    "etcdserver: permission denied",
    "etcdserver: mvcc: database space exceeded",
    "etcdserver: too many requests",
    "etcdserver: invalid auth token",
    "etcdserver: leader changed",
    "etcdserver: no leader",
    "etcdserver: not capable",
    "etcdserver: request timed out",
    "etcdserver: request timed out, possibly due to connection lost",
    "etcdserver: request timed out, possibly due to previous leader failure",
    "etcdserver: request timed out, waiting for the applied index took too long",
    "etcdserver: rpc not supported for learner",
    "etcdserver: server stopped",
    "etcdserver: unhealthy cluster",
];

/// grpc-go's name of a status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// A status as grpc-go's error prints it.
pub fn rpc_error(code: Code, message: &str) -> String {
    format!("rpc error: code = {} desc = {message}", code_name(code))
}

/// What clientv3 returns for a failed call, as text.
pub fn error_text(err: &ClientError) -> String {
    match err {
        ClientError::Grpc(status) => {
            if ETCD_ERRORS.contains(&status.message()) {
                status.message().to_owned()
            } else if err.is_transport_error() {
                // The connection failed: after the command timeout clientv3 gives up with
                // its context's error.
                "context deadline exceeded".to_owned()
            } else {
                rpc_error(status.code(), status.message())
            }
        }
        ClientError::Timeout(_) => "context deadline exceeded".to_owned(),
        ClientError::WatchCanceled { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// How clientv3's log lines name the connection a call went through.
fn log_target(target: &str) -> String {
    let passthrough = PASSTHROUGH.lock().ok().and_then(|p| p.clone());
    if let Some(ep) = passthrough {
        format!("passthrough:///{ep}")
    } else {
        format!(
            "endpoint://client-{}/{}",
            crate::gofmt::uuid4(),
            strip_scheme(target)
        )
    }
}

/// The warning clientv3's retry interceptor logs for every failed unary call (zap JSON on
/// standard error). `target` is the endpoint the call went to.
pub fn log_retry(target: &str, code: Code, message: &str) {
    let target = log_target(target);
    let line = format!(
        "{{\"level\":\"warn\",\"ts\":\"{}\",\"caller\":\"clientv3/retry_interceptor.go:62\",\"msg\":\"retrying of unary invoker failed\",\"target\":{},\"attempt\":0,\"error\":{}}}",
        crate::gofmt::zap_timestamp(),
        crate::gofmt::json_str(&target),
        crate::gofmt::json_str(&rpc_error(code, message)),
    );
    eprintln!("{line}");
}

/// clientv3's warning when a new token could not be had after the server refused the old
/// one (`retry_interceptor.go:79`).
pub fn log_token_refresh_failed(target: &str, error: &str) {
    let line = format!(
        "{{\"level\":\"warn\",\"ts\":\"{}\",\"caller\":\"clientv3/retry_interceptor.go:79\",\"msg\":\"retrying of unary invoker failed to fetch new auth token\",\"target\":{},\"error\":{}}}",
        crate::gofmt::zap_timestamp(),
        crate::gofmt::json_str(&log_target(target)),
        crate::gofmt::json_str(error),
    );
    eprintln!("{line}");
}

static PASSTHROUGH: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Calls to one endpoint in particular (Maintenance.Status, HashKV, Defragment) go through
/// a connection clientv3 dials as `passthrough:///<endpoint>`; its log lines say so.
pub fn set_passthrough(endpoint: Option<&str>) {
    if let Ok(mut p) = PASSTHROUGH.lock() {
        *p = endpoint.map(str::to_owned);
    }
}

/// The endpoint of the current per-endpoint call, if any.
pub fn passthrough() -> Option<String> {
    PASSTHROUGH.lock().ok().and_then(|p| p.clone())
}

pub fn strip_scheme(endpoint: &str) -> &str {
    endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .unwrap_or(endpoint)
}
