//! The v2 API's errors: etcd's codes, messages and HTTP statuses (`v2error`), and the one place
//! where they become the JSON body clients match on.

use http::StatusCode;

/// etcd's v2 error codes. Clients compare these numbers, so they are etcd's exactly.
pub mod ecode {
    pub const KEY_NOT_FOUND: u32 = 100;
    pub const TEST_FAILED: u32 = 101;
    pub const NOT_FILE: u32 = 102;
    pub const NO_MORE_PEER: u32 = 103;
    pub const NOT_DIR: u32 = 104;
    pub const NODE_EXIST: u32 = 105;
    pub const KEY_IS_PRESERVED: u32 = 106;
    pub const ROOT_READ_ONLY: u32 = 107;
    pub const DIR_NOT_EMPTY: u32 = 108;
    pub const EXISTING_PEER_ADDR: u32 = 109;
    pub const UNAUTHORIZED: u32 = 110;

    pub const VALUE_REQUIRED: u32 = 200;
    pub const PREV_VALUE_REQUIRED: u32 = 201;
    pub const TTL_NAN: u32 = 202;
    pub const INDEX_NAN: u32 = 203;
    pub const VALUE_OR_TTL_REQUIRED: u32 = 204;
    pub const TIMEOUT_NAN: u32 = 205;
    pub const NAME_REQUIRED: u32 = 206;
    pub const INDEX_OR_VALUE_REQUIRED: u32 = 207;
    pub const INDEX_VALUE_MUTEX: u32 = 208;
    pub const INVALID_FIELD: u32 = 209;
    pub const INVALID_FORM: u32 = 210;
    pub const REFRESH_VALUE: u32 = 211;
    pub const REFRESH_TTL_REQUIRED: u32 = 212;

    pub const RAFT_INTERNAL: u32 = 300;
    pub const LEADER_ELECT: u32 = 301;

    pub const WATCHER_CLEARED: u32 = 400;
    pub const EVENT_INDEX_CLEARED: u32 = 401;
    pub const STANDBY_INTERNAL: u32 = 402;
    pub const INVALID_ACTIVE_SIZE: u32 = 403;
    pub const INVALID_REMOVE_DELAY: u32 = 404;

    pub const CLIENT_INTERNAL: u32 = 500;
}

/// etcd's message for a code ("" for an unknown code, as in etcd).
pub fn message(code: u32) -> &'static str {
    use ecode::*;
    match code {
        KEY_NOT_FOUND => "Key not found",
        TEST_FAILED => "Compare failed",
        NOT_FILE => "Not a file",
        NO_MORE_PEER => "Reached the max number of peers in the cluster",
        NOT_DIR => "Not a directory",
        NODE_EXIST => "Key already exists",
        KEY_IS_PRESERVED => "The prefix of given key is a keyword in etcd",
        ROOT_READ_ONLY => "Root is read only",
        DIR_NOT_EMPTY => "Directory not empty",
        EXISTING_PEER_ADDR => "Peer address has existed",
        UNAUTHORIZED => "The request requires user authentication",
        VALUE_REQUIRED => "Value is Required in POST form",
        PREV_VALUE_REQUIRED => "PrevValue is Required in POST form",
        TTL_NAN => "The given TTL in POST form is not a number",
        INDEX_NAN => "The given index in POST form is not a number",
        VALUE_OR_TTL_REQUIRED => "Value or TTL is required in POST form",
        TIMEOUT_NAN => "The given timeout in POST form is not a number",
        NAME_REQUIRED => "Name is required in POST form",
        INDEX_OR_VALUE_REQUIRED => "Index or value is required",
        INDEX_VALUE_MUTEX => "Index and value cannot both be specified",
        INVALID_FIELD => "Invalid field",
        INVALID_FORM => "Invalid POST form",
        REFRESH_VALUE => "Value provided on refresh",
        REFRESH_TTL_REQUIRED => "A TTL must be provided on refresh",
        RAFT_INTERNAL => "Raft Internal Error",
        LEADER_ELECT => "During Leader Election",
        WATCHER_CLEARED => "watcher is cleared due to etcd recovery",
        EVENT_INDEX_CLEARED => "The event in requested index is outdated and cleared",
        STANDBY_INTERNAL => "Standby Internal Error",
        INVALID_ACTIVE_SIZE => "Invalid active size",
        INVALID_REMOVE_DELAY => "Standby remove delay",
        CLIENT_INTERNAL => "Client Internal Error",
        _ => "",
    }
}

/// A v2 error as etcd reports it: `{"errorCode":..,"message":..,"cause":..,"index":..}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({cause})", message(*.code))]
pub struct V2Error {
    pub code: u32,
    pub cause: String,
    /// The store index when the error happened (0 for request errors).
    pub index: u64,
}

impl V2Error {
    pub fn new(code: u32, cause: impl Into<String>, index: u64) -> V2Error {
        V2Error {
            code,
            cause: cause.into(),
            index,
        }
    }

    /// An error about the request itself (etcd's `NewRequestError`): index 0.
    pub fn request(code: u32, cause: impl Into<String>) -> V2Error {
        V2Error::new(code, cause, 0)
    }

    /// What etcd answers when a proposal fails for a reason outside the store (timeout,
    /// stopped server, lost leader): 300 with the reason as the cause.
    pub fn raft_internal(cause: impl Into<String>) -> V2Error {
        V2Error::new(ecode::RAFT_INTERNAL, cause, 0)
    }

    pub fn message(&self) -> &'static str {
        message(self.code)
    }

    /// etcd's HTTP status for the code: everything unlisted is 400.
    pub fn status(&self) -> StatusCode {
        use ecode::*;
        match self.code {
            KEY_NOT_FOUND => StatusCode::NOT_FOUND,
            NOT_FILE | DIR_NOT_EMPTY => StatusCode::FORBIDDEN,
            UNAUTHORIZED => StatusCode::UNAUTHORIZED,
            TEST_FAILED | NODE_EXIST => StatusCode::PRECONDITION_FAILED,
            RAFT_INTERNAL | LEADER_ELECT => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body, without the trailing newline etcd's writer adds. `cause` is omitted
    /// when empty, as Go's `omitempty` does.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + self.cause.len());
        out.push_str("{\"errorCode\":");
        out.push_str(&self.code.to_string());
        out.push_str(",\"message\":");
        super::format::push_json_str(&mut out, self.message());
        if !self.cause.is_empty() {
            out.push_str(",\"cause\":");
            super::format::push_json_str(&mut out, &self.cause);
        }
        out.push_str(",\"index\":");
        out.push_str(&self.index.to_string());
        out.push('}');
        out
    }
}
