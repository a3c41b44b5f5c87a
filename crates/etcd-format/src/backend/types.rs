//! Typed values of etcd's backend buckets.

use std::collections::BTreeMap;

use chorus_api::authpb;
use chorus_api::mvccpb::KeyValue;
use serde::{Deserialize, Deserializer, Serialize};

/// An MVCC revision: `main` is the store revision of a transaction, `sub` the index of the
/// change within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    /// The store revision.
    pub main: i64,
    /// The change within the revision.
    pub sub: i64,
}

/// Length of a revision key without the tombstone mark.
pub const REVISION_KEY_LEN: usize = 17;

impl Revision {
    /// The `key` bucket key: 8-byte BE main, `_`, 8-byte BE sub, and `t` for a tombstone.
    pub fn to_key(self, tombstone: bool) -> Vec<u8> {
        let mut k = Vec::with_capacity(REVISION_KEY_LEN + 1);
        k.extend_from_slice(&self.main.to_be_bytes());
        k.push(b'_');
        k.extend_from_slice(&self.sub.to_be_bytes());
        if tombstone {
            k.push(b't');
        }
        k
    }

    /// Parses a `key` bucket key; returns the revision and whether it marks a tombstone.
    pub fn from_key(key: &[u8]) -> Option<(Revision, bool)> {
        let tombstone = match key.len() {
            REVISION_KEY_LEN => false,
            18 if key[17] == b't' => true,
            _ => return None,
        };
        if key[8] != b'_' {
            return None;
        }
        let main = i64::from_be_bytes(key[0..8].try_into().ok()?);
        let sub = i64::from_be_bytes(key[9..17].try_into().ok()?);
        Some((Revision { main, sub }, tombstone))
    }
}

/// One record of the `key` bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionEntry {
    /// The revision of the change.
    pub revision: Revision,
    /// A deletion: `kv` then holds only the key.
    pub tombstone: bool,
    /// The key-value as of this revision.
    pub kv: KeyValue,
}

/// The `meta` bucket.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetaInfo {
    /// Last raft index applied to the backend.
    pub consistent_index: Option<u64>,
    /// Term of that index (3.5+).
    pub term: Option<u64>,
    /// Compaction revision scheduled.
    pub scheduled_compact_rev: Option<i64>,
    /// Compaction revision completed.
    pub finished_compact_rev: Option<i64>,
    /// The raft configuration (3.5+).
    pub conf_state: Option<ConfState>,
    /// The storage version, e.g. `3.6.0` (3.6+).
    pub storage_version: Option<String>,
    /// Any other keys, kept as they are.
    pub other: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// raftpb.ConfState as etcd 3.5+ stores it in `meta` (Go's JSON of the gogo struct).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfState {
    /// Voting members.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub voters: Vec<u64>,
    /// Learners.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub learners: Vec<u64>,
    /// Voters of the outgoing configuration in a joint configuration.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub voters_outgoing: Vec<u64>,
    /// Learners to add when leaving a joint configuration.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub learners_next: Vec<u64>,
    /// Leave the joint configuration automatically.
    #[serde(default)]
    pub auto_leave: bool,
}

/// A member as etcd's membership package stores it in `members` (and in the v2 store and
/// in ConfChange contexts): Go's JSON of `membership.Member`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Member {
    /// Member ID.
    pub id: u64,
    /// Peer URLs.
    #[serde(rename = "peerURLs", default, deserialize_with = "null_as_default")]
    pub peer_urls: Vec<String>,
    /// A learner (non-voting) member.
    #[serde(rename = "isLearner", default, skip_serializing_if = "is_false")]
    pub is_learner: bool,
    /// Name; empty until the member has published it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Client URLs; empty until published.
    #[serde(
        rename = "clientURLs",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub client_urls: Vec<String>,
}

/// The `members` and `members_removed` buckets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    /// Current members, by ID.
    pub members: Vec<Member>,
    /// IDs of removed members.
    pub removed: Vec<u64>,
}

/// etcd's downgrade state (3.5+), stored as JSON in `cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DowngradeInfo {
    /// Target version of the downgrade.
    #[serde(rename = "target-version", default)]
    pub target_version: String,
    /// Whether a downgrade is in progress.
    #[serde(default)]
    pub enabled: bool,
}

/// The `cluster` bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterInfo {
    /// The cluster version, e.g. `3.5.0`.
    pub cluster_version: Option<String>,
    /// Downgrade state.
    pub downgrade: Option<DowngradeInfo>,
}

/// The `auth`, `authUsers` and `authRoles` buckets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthInfo {
    /// `authEnabled`; `None` when absent.
    pub enabled: Option<bool>,
    /// `authRevision`; `None` when absent.
    pub revision: Option<u64>,
    /// Users, by name.
    pub users: Vec<authpb::User>,
    /// Roles, by name.
    pub roles: Vec<authpb::Role>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Go writes a nil slice as `null`.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A member ID as etcd spells it in keys: lowercase hex without padding.
pub fn member_key(id: u64) -> Vec<u8> {
    format!("{id:x}").into_bytes()
}
