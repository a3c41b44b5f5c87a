//! What a raft entry carries, decoded as etcd's apply loop decodes it: normal entries are an
//! `InternalRaftRequest` (or, from etcd 3.3/3.4 and the v2 API, a bare v2 `Request`), empty
//! for a new leader's no-op; configuration entries are a `raftpb.ConfChange` (or
//! `ConfChangeV2`) whose context is the member as JSON.

use prost::Message;
use serde::Deserialize;

use crate::backend::Member;
use crate::proto::etcdserverpb_raft::{InternalRaftRequest, Request};
use crate::proto::raftpb::{ConfChange, ConfChangeV2, Entry, EntryType};

/// An entry's payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The data is neither an InternalRaftRequest nor a v2 Request.
    #[error("entry {index} (term {term}): data is neither an InternalRaftRequest nor a v2 Request: {source}")]
    Request {
        /// The entry's index.
        index: u64,
        /// Its term.
        term: u64,
        /// The v2 decoding error.
        source: prost::DecodeError,
    },
    /// A configuration entry does not decode.
    #[error("entry {index} (term {term}): not a valid {message}: {source}")]
    ConfChange {
        /// The entry's index.
        index: u64,
        /// Its term.
        term: u64,
        /// The message type.
        message: &'static str,
        /// Why.
        source: prost::DecodeError,
    },
    /// A ConfChange context is not a member as JSON.
    #[error("entry {index} (term {term}): ConfChange context is not a member as JSON: {source}")]
    Context {
        /// The entry's index.
        index: u64,
        /// Its term.
        term: u64,
        /// Why.
        source: serde_json::Error,
    },
    /// The entry type is unknown.
    #[error("entry {index} (term {term}): unknown entry type {entry_type}")]
    UnknownType {
        /// The entry's index.
        index: u64,
        /// Its term.
        term: u64,
        /// The type.
        entry_type: i32,
    },
}

/// The member in a ConfChange's context (etcd's `ConfigChangeContext`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConfChangeContext {
    /// The member added, updated or promoted.
    #[serde(flatten)]
    pub member: Member,
    /// The change promotes a learner (3.4+).
    #[serde(rename = "isPromote", default)]
    pub is_promote: bool,
}

/// What an entry carries.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryPayload {
    /// No data: a new leader's no-op.
    Empty,
    /// A v3 request.
    Request(Box<InternalRaftRequest>),
    /// A v2 store request (bare, or in an InternalRaftRequest's `v2`).
    V2Request(Box<Request>),
    /// A membership change; `context` when it carries a member.
    ConfChange {
        /// The change.
        change: ConfChange,
        /// The member from its context.
        context: Option<ConfChangeContext>,
    },
    /// A joint-consensus membership change (not proposed by etcd 3.3–3.7 itself).
    ConfChangeV2(ConfChangeV2),
}

/// Decodes an entry's data as etcd's apply loop does.
pub fn decode_entry(e: &Entry) -> Result<EntryPayload, EntryError> {
    let (index, term) = (e.index, e.term);
    match EntryType::try_from(e.r#type) {
        Ok(EntryType::EntryNormal) => decode_normal(e),
        Ok(EntryType::EntryConfChange) => {
            let change =
                ConfChange::decode(e.data.as_slice()).map_err(|source| EntryError::ConfChange {
                    index,
                    term,
                    message: "raftpb.ConfChange",
                    source,
                })?;
            let context = if change.context.is_empty() {
                None
            } else {
                let ctx = serde_json::from_slice(&change.context).map_err(|source| {
                    EntryError::Context {
                        index,
                        term,
                        source,
                    }
                })?;
                Some(ctx)
            };
            Ok(EntryPayload::ConfChange { change, context })
        }
        Ok(EntryType::EntryConfChangeV2) => ConfChangeV2::decode(e.data.as_slice())
            .map(EntryPayload::ConfChangeV2)
            .map_err(|source| EntryError::ConfChange {
                index,
                term,
                message: "raftpb.ConfChangeV2",
                source,
            }),
        Err(_) => Err(EntryError::UnknownType {
            index,
            term,
            entry_type: e.r#type,
        }),
    }
}

fn decode_normal(e: &Entry) -> Result<EntryPayload, EntryError> {
    if e.data.is_empty() {
        return Ok(EntryPayload::Empty);
    }
    match InternalRaftRequest::decode(e.data.as_slice()) {
        Ok(mut r) => match r.v2.take() {
            Some(v2) => Ok(EntryPayload::V2Request(Box::new(v2))),
            None => Ok(EntryPayload::Request(Box::new(r))),
        },
        Err(_) => Request::decode(e.data.as_slice())
            .map(|r| EntryPayload::V2Request(Box::new(r)))
            .map_err(|source| EntryError::Request {
                index: e.index,
                term: e.term,
                source,
            }),
    }
}

/// The name of the request an InternalRaftRequest carries (its field name in etcd's proto),
/// `"unknown"` when none of the known fields is set.
pub fn request_kind(r: &InternalRaftRequest) -> &'static str {
    let kinds: [(&'static str, bool); 33] = [
        ("v2", r.v2.is_some()),
        ("range", r.range.is_some()),
        ("put", r.put.is_some()),
        ("delete_range", r.delete_range.is_some()),
        ("txn", r.txn.is_some()),
        ("compaction", r.compaction.is_some()),
        ("lease_grant", r.lease_grant.is_some()),
        ("lease_revoke", r.lease_revoke.is_some()),
        ("alarm", r.alarm.is_some()),
        ("lease_checkpoint", r.lease_checkpoint.is_some()),
        ("auth_enable", r.auth_enable.is_some()),
        ("auth_disable", r.auth_disable.is_some()),
        ("auth_status", r.auth_status.is_some()),
        ("authenticate", r.authenticate.is_some()),
        ("auth_user_add", r.auth_user_add.is_some()),
        ("auth_user_delete", r.auth_user_delete.is_some()),
        ("auth_user_get", r.auth_user_get.is_some()),
        (
            "auth_user_change_password",
            r.auth_user_change_password.is_some(),
        ),
        ("auth_user_grant_role", r.auth_user_grant_role.is_some()),
        ("auth_user_revoke_role", r.auth_user_revoke_role.is_some()),
        ("auth_user_list", r.auth_user_list.is_some()),
        ("auth_role_list", r.auth_role_list.is_some()),
        ("auth_role_add", r.auth_role_add.is_some()),
        ("auth_role_delete", r.auth_role_delete.is_some()),
        ("auth_role_get", r.auth_role_get.is_some()),
        (
            "auth_role_grant_permission",
            r.auth_role_grant_permission.is_some(),
        ),
        (
            "auth_role_revoke_permission",
            r.auth_role_revoke_permission.is_some(),
        ),
        ("cluster_version_set", r.cluster_version_set.is_some()),
        (
            "cluster_member_attr_set",
            r.cluster_member_attr_set.is_some(),
        ),
        ("downgrade_info_set", r.downgrade_info_set.is_some()),
        ("downgrade_version_test", r.downgrade_version_test.is_some()),
        ("header_only", r.header.is_some()),
        ("unknown", true),
    ];
    kinds
        .iter()
        .find(|(_, set)| *set)
        .map(|(k, _)| *k)
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use chorus_api::etcdserverpb::PutRequest;

    use super::*;
    use crate::proto::raftpb::ConfChangeType;

    fn entry(t: EntryType, data: Vec<u8>) -> Entry {
        Entry {
            term: 1,
            index: 2,
            r#type: t as i32,
            data,
        }
    }

    #[test]
    fn decodes_every_payload_kind() {
        assert_eq!(
            decode_entry(&entry(EntryType::EntryNormal, vec![])).unwrap(),
            EntryPayload::Empty
        );
        let put = InternalRaftRequest {
            put: Some(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let EntryPayload::Request(r) =
            decode_entry(&entry(EntryType::EntryNormal, put.encode_to_vec())).unwrap()
        else {
            panic!()
        };
        assert_eq!(request_kind(&r), "put");
        // A bare v2 Request, as etcd 3.4 proposes them.
        let v2 = Request {
            id: 9,
            method: "PUT".into(),
            path: b"/0/version".to_vec(),
            val: b"3.4.0".to_vec(),
            ..Default::default()
        };
        let got = decode_entry(&entry(EntryType::EntryNormal, v2.encode_to_vec())).unwrap();
        assert_eq!(got, EntryPayload::V2Request(Box::new(v2)));
        let cc = ConfChange {
            r#type: ConfChangeType::ConfChangeAddNode as i32,
            node_id: 0x10,
            context: br#"{"id":16,"peerURLs":["http://a"],"isPromote":true}"#.to_vec(),
            id: 0,
        };
        let EntryPayload::ConfChange { context, .. } =
            decode_entry(&entry(EntryType::EntryConfChange, cc.encode_to_vec())).unwrap()
        else {
            panic!()
        };
        let context = context.unwrap();
        assert!(context.is_promote);
        assert_eq!(context.member.id, 16);
        assert!(decode_entry(&entry(EntryType::EntryNormal, vec![0xff, 0xff, 0xff])).is_err());
        let bad = Entry {
            r#type: 7,
            ..entry(EntryType::EntryNormal, vec![])
        };
        assert!(matches!(
            decode_entry(&bad),
            Err(EntryError::UnknownType { .. })
        ));
    }
}
