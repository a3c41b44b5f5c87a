//! What the clients did: every request with its invoke and return times and what came
//! back. Requests and responses are etcd's, reduced to what the model checks.

use serde::{Deserialize, Serialize};

/// A key-value as a range or a watch event carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Kv {
    pub key: String,
    pub value: String,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// `key` alone (`end` None), or the half-open range `[key, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRange {
    pub key: String,
    pub end: Option<String>,
}

impl KeyRange {
    pub fn single(key: impl Into<String>) -> Self {
        KeyRange {
            key: key.into(),
            end: None,
        }
    }

    /// Every key starting with `prefix` (prefix without a trailing 0xff byte).
    pub fn prefix(prefix: &str) -> Self {
        let mut end = prefix.as_bytes().to_vec();
        *end.last_mut().expect("non-empty prefix") += 1;
        KeyRange {
            key: prefix.to_owned(),
            end: Some(String::from_utf8(end).expect("ASCII prefix")),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        match &self.end {
            None => key == self.key,
            Some(end) => key >= self.key.as_str() && key < end.as_str(),
        }
    }
}

/// One comparison of a transaction: the key's mod_revision equals `mod_revision`
/// (0: the key does not exist), as clientv3's `Compare(ModRevision(k), "=", r)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Compare {
    pub key: String,
    pub mod_revision: i64,
}

/// An operation inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxnOp {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
        lease: i64,
    },
    Delete {
        key: String,
    },
}

/// A request as a client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Request {
    /// A range read at the current revision (linearizable or serializable) or at an
    /// older `revision` (> 0).
    Range {
        range: KeyRange,
        revision: i64,
        serializable: bool,
    },
    Put {
        key: String,
        value: String,
        lease: i64,
    },
    Delete {
        key: String,
    },
    Txn {
        compare: Vec<Compare>,
        success: Vec<TxnOp>,
        failure: Vec<TxnOp>,
    },
    LeaseGrant {
        id: i64,
    },
    LeaseRevoke {
        id: i64,
    },
    Compact {
        revision: i64,
    },
}

impl Request {
    /// Whether the request can change the store.
    pub fn is_write(&self) -> bool {
        !matches!(self, Request::Range { .. })
    }

    /// The leases the request names (granted, revoked or attached to a put).
    pub fn leases(&self) -> Vec<i64> {
        match self {
            Request::LeaseGrant { id } | Request::LeaseRevoke { id } => vec![*id],
            Request::Put { lease, .. } if *lease != 0 => vec![*lease],
            Request::Txn {
                success, failure, ..
            } => success
                .iter()
                .chain(failure)
                .filter_map(|op| match op {
                    TxnOp::Put { lease, .. } if *lease != 0 => Some(*lease),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Values the request writes (each unique in a run), for matching with watch events.
    pub fn put_values(&self) -> Vec<&str> {
        match self {
            Request::Put { value, .. } => vec![value],
            Request::Txn { success, .. } => success
                .iter()
                .filter_map(|op| match op {
                    TxnOp::Put { value, .. } => Some(value.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The result of one operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxnOpResult {
    Get { kvs: Vec<Kv> },
    Put,
    Delete { deleted: i64 },
}

/// Errors that are answers of the state machine, so the model predicts them. Every other
/// error leaves the outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EtcdError {
    /// `etcdserver: requested lease not found`
    LeaseNotFound,
    /// `etcdserver: mvcc: required revision has been compacted`
    Compacted,
    /// `etcdserver: mvcc: required revision is a future revision`
    FutureRev,
}

/// What came back. `revision` is always the response header's revision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Response {
    Range {
        revision: i64,
        kvs: Vec<Kv>,
    },
    Put {
        revision: i64,
    },
    Delete {
        revision: i64,
        deleted: i64,
    },
    /// `results` None when only the revision and branch are known (an unknown outcome
    /// resolved from the watch history).
    Txn {
        revision: i64,
        succeeded: bool,
        results: Option<Vec<TxnOpResult>>,
    },
    LeaseGrant {
        revision: i64,
    },
    LeaseRevoke {
        revision: i64,
    },
    Compact {
        revision: i64,
    },
    Error(EtcdError),
}

impl Response {
    pub fn revision(&self) -> Option<i64> {
        match self {
            Response::Range { revision, .. }
            | Response::Put { revision }
            | Response::Delete { revision, .. }
            | Response::Txn { revision, .. }
            | Response::LeaseGrant { revision }
            | Response::LeaseRevoke { revision }
            | Response::Compact { revision } => Some(*revision),
            Response::Error(_) => None,
        }
    }
}

/// One request of one client: invoked at `call`, answered at `ret` (nanoseconds since
/// the run began). `response` None is an unknown outcome (timeout, lost connection,
/// `Unavailable`...): the request may have taken effect at any time after `call`, or
/// never; `ret` is then when the client gave up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub id: usize,
    pub client: usize,
    pub call: u64,
    pub ret: u64,
    pub request: Request,
    pub response: Option<Response>,
    /// The error text, when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One event as a watch delivered it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    pub delete: bool,
    pub kv: Kv,
}

/// One watch response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchResponse {
    /// When it arrived (nanoseconds since the run began).
    pub time: u64,
    pub revision: i64,
    pub events: Vec<Event>,
    /// A response without events that is not the creation or cancellation: a progress
    /// notification, whose revision says every event up to it was delivered.
    pub progress_notify: bool,
    pub canceled: bool,
    pub compact_revision: i64,
}

/// One gRPC watch stream of a watcher: created at `start_revision` on a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchSession {
    pub member: usize,
    pub start_revision: i64,
    /// Header revision of the `created` response.
    pub created_revision: i64,
    pub responses: Vec<WatchResponse>,
    /// Why the session ended (error text), if it did not end by the harness's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
}

/// A logical watcher: sessions chained by resuming at the last delivered revision + 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watcher {
    pub id: usize,
    pub range: KeyRange,
    /// Watchers over the whole key space from revision 1: the reference event history.
    pub reference: bool,
    pub sessions: Vec<WatchSession>,
}

/// Everything a scenario recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub operations: Vec<Operation>,
    pub watchers: Vec<Watcher>,
    /// The final linearizable read of the whole key space, after the faults.
    pub final_read: Option<(i64, Vec<Kv>)>,
}
