//! etcd's key-value store as a sequential specification: revisions, per-key
//! create/mod revision and version, leases, transactions and compaction.
//!
//! The state is the whole store (the traffic keeps the key space small), so revisions,
//! which couple every key, are checked exactly: a read's header revision is the store's
//! revision, a write's is the revision it created.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{EtcdError, KeyRange, Kv, Request, Response, TxnOp, TxnOpResult};
use crate::linearizability::Model;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EtcdState {
    pub revision: i64,
    pub compact_revision: i64,
    pub kvs: BTreeMap<String, Kv>,
    pub leases: BTreeSet<i64>,
}

impl Default for EtcdState {
    fn default() -> Self {
        // A new cluster is at revision 1 with no keys.
        EtcdState {
            revision: 1,
            compact_revision: 0,
            kvs: BTreeMap::new(),
            leases: BTreeSet::new(),
        }
    }
}

impl EtcdState {
    pub fn range(&self, range: &KeyRange) -> Vec<Kv> {
        match &range.end {
            None => self.kvs.get(&range.key).cloned().into_iter().collect(),
            Some(end) => self
                .kvs
                .range::<str, _>((
                    std::ops::Bound::Included(range.key.as_str()),
                    std::ops::Bound::Excluded(end.as_str()),
                ))
                .map(|(_, kv)| kv.clone())
                .collect(),
        }
    }

    /// Writes `key` at revision `rev` (the write's main revision).
    fn put(&mut self, key: &str, value: &str, lease: i64, rev: i64) {
        let (create_revision, version) = match self.kvs.get(key) {
            Some(kv) => (kv.create_revision, kv.version + 1),
            None => (rev, 1),
        };
        self.kvs.insert(
            key.to_owned(),
            Kv {
                key: key.to_owned(),
                value: value.to_owned(),
                create_revision,
                mod_revision: rev,
                version,
                lease,
            },
        );
    }

    /// Applies `request`: the new state and the response the store gives.
    pub fn apply(&self, request: &Request) -> (EtcdState, Response) {
        let mut s = self.clone();
        let response = match request {
            Request::Range {
                range, revision, ..
            } => {
                if *revision > s.revision {
                    Response::Error(EtcdError::FutureRev)
                } else if *revision > 0 && *revision < s.compact_revision {
                    Response::Error(EtcdError::Compacted)
                } else {
                    // The content of a read at a given revision is checked against the
                    // watch history, not here (the state keeps no history); the checker
                    // gets such reads without their key-values.
                    let kvs = if *revision > 0 {
                        Vec::new()
                    } else {
                        s.range(range)
                    };
                    Response::Range {
                        revision: s.revision,
                        kvs,
                    }
                }
            }
            Request::Put { key, value, lease } => {
                if *lease != 0 && !s.leases.contains(lease) {
                    Response::Error(EtcdError::LeaseNotFound)
                } else {
                    s.revision += 1;
                    let rev = s.revision;
                    s.put(key, value, *lease, rev);
                    Response::Put { revision: rev }
                }
            }
            Request::Delete { key } => {
                let deleted = i64::from(s.kvs.remove(key).is_some());
                s.revision += deleted;
                Response::Delete {
                    revision: s.revision,
                    deleted,
                }
            }
            Request::Txn {
                compare,
                success,
                failure,
            } => {
                let succeeded = compare
                    .iter()
                    .all(|c| s.kvs.get(&c.key).map_or(0, |kv| kv.mod_revision) == c.mod_revision);
                let ops = if succeeded { success } else { failure };
                let leases_ok = ops.iter().all(|op| match op {
                    TxnOp::Put { lease, .. } => *lease == 0 || s.leases.contains(lease),
                    _ => true,
                });
                if !leases_ok {
                    return (self.clone(), Response::Error(EtcdError::LeaseNotFound));
                }
                let rev = s.revision + 1;
                let mut changed = false;
                let mut results = Vec::with_capacity(ops.len());
                for op in ops {
                    results.push(match op {
                        TxnOp::Get { key } => TxnOpResult::Get {
                            kvs: s.kvs.get(key).cloned().into_iter().collect(),
                        },
                        TxnOp::Put { key, value, lease } => {
                            s.put(key, value, *lease, rev);
                            changed = true;
                            TxnOpResult::Put
                        }
                        TxnOp::Delete { key } => {
                            let deleted = i64::from(s.kvs.remove(key).is_some());
                            changed |= deleted > 0;
                            TxnOpResult::Delete { deleted }
                        }
                    });
                }
                if changed {
                    s.revision = rev;
                }
                Response::Txn {
                    revision: s.revision,
                    succeeded,
                    results: Some(results),
                }
            }
            Request::LeaseGrant { id } => {
                s.leases.insert(*id);
                Response::LeaseGrant {
                    revision: s.revision,
                }
            }
            Request::LeaseRevoke { id } => {
                if !s.leases.remove(id) {
                    Response::Error(EtcdError::LeaseNotFound)
                } else {
                    let before = s.kvs.len();
                    s.kvs.retain(|_, kv| kv.lease != *id);
                    if s.kvs.len() != before {
                        s.revision += 1;
                    }
                    Response::LeaseRevoke {
                        revision: s.revision,
                    }
                }
            }
            Request::Compact { revision } => {
                if *revision <= s.compact_revision {
                    Response::Error(EtcdError::Compacted)
                } else if *revision > s.revision {
                    Response::Error(EtcdError::FutureRev)
                } else {
                    s.compact_revision = *revision;
                    Response::Compact {
                        revision: s.revision,
                    }
                }
            }
        };
        (s, response)
    }
}

/// Whether `observed` is what the store answered (`expected`). A transaction whose
/// results are unknown matches on revision and branch alone.
fn matches(expected: &Response, observed: &Response) -> bool {
    match (expected, observed) {
        (
            Response::Txn {
                revision: r1,
                succeeded: s1,
                results: res1,
            },
            Response::Txn {
                revision: r2,
                succeeded: s2,
                results: res2,
            },
        ) => r1 == r2 && s1 == s2 && (res2.is_none() || res1 == res2),
        _ => expected == observed,
    }
}

/// The model for the linearizability checker.
#[derive(Debug, Default)]
pub struct EtcdModel;

impl Model for EtcdModel {
    type State = EtcdState;
    type Input = Request;
    type Output = Response;

    fn init(&self) -> EtcdState {
        EtcdState::default()
    }

    fn step(
        &self,
        state: &EtcdState,
        input: &Request,
        output: Option<&Response>,
    ) -> Option<EtcdState> {
        let (next, expected) = state.apply(input);
        match output {
            None => Some(next),
            Some(observed) if matches(&expected, observed) => Some(next),
            Some(_) => None,
        }
    }

    /// A compaction at or below the compacted revision only ever answers "compacted":
    /// the compact revision never goes down.
    fn is_dead(&self, state: &EtcdState, input: &Request) -> bool {
        matches!(input, Request::Compact { revision } if *revision <= state.compact_revision)
    }
}
