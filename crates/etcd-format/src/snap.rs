//! etcd's raft snapshot files (`member/snap/%016x-%016x.snap`, term-index): a
//! `snappb.Snapshot {crc, data}` whose data is a `raftpb.Snapshot` with a CRC-32C, and, up to
//! etcd 3.5 (and still written by 3.6), the v2 store as JSON in the raft snapshot's data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use serde::Deserialize;

use crate::backend::{Member, Membership};
use crate::proto::{raftpb, snappb};

/// A `.snap` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    /// An I/O call failed.
    #[error("{file}: {op}: {source}")]
    Io {
        /// The file or directory.
        file: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file, or its data, is empty (etcd's ErrEmptySnapshot).
    #[error("{file}: empty snapshot")]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// A message does not decode.
    #[error("{file}: not a valid {message}: {source}")]
    Decode {
        /// The file.
        file: PathBuf,
        /// The message type.
        message: &'static str,
        /// Why.
        source: prost::DecodeError,
    },
    /// The CRC does not match the data.
    #[error("{file}: CRC mismatch: file says {stored:#010x}, data has {computed:#010x}")]
    CrcMismatch {
        /// The file.
        file: PathBuf,
        /// The CRC stored.
        stored: u32,
        /// The CRC of the data.
        computed: u32,
    },
    /// The v2 store JSON does not parse.
    #[error("v2 store JSON: {0}")]
    V2Json(#[from] serde_json::Error),
}

/// One `.snap` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFile {
    /// Its path.
    pub path: PathBuf,
    /// Raft term of the snapshot.
    pub term: u64,
    /// Raft index of the snapshot.
    pub index: u64,
}

/// The `.snap` files of `dir`, oldest first (etcd loads the newest that reads).
pub fn list_snap_files(dir: impl AsRef<Path>) -> Result<Vec<SnapFile>, SnapError> {
    let dir = dir.as_ref();
    let io = |op, source| SnapError::Io {
        file: dir.to_path_buf(),
        op,
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io("read dir", e))? {
        let entry = entry.map_err(|e| io("read dir", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((term, index)) = name.strip_suffix(".snap").and_then(|s| s.split_once('-')) else {
            continue;
        };
        if let (16, 16, Ok(term), Ok(index)) = (
            term.len(),
            index.len(),
            u64::from_str_radix(term, 16),
            u64::from_str_radix(index, 16),
        ) {
            out.push(SnapFile {
                path: entry.path(),
                term,
                index,
            });
        }
    }
    out.sort_by_key(|s| (s.term, s.index));
    Ok(out)
}

/// Reads a `.snap` file and checks its CRC.
pub fn read_snap_file(path: impl AsRef<Path>) -> Result<raftpb::Snapshot, SnapError> {
    let path = path.as_ref();
    let file = || path.to_path_buf();
    let bytes = std::fs::read(path).map_err(|source| SnapError::Io {
        file: file(),
        op: "read",
        source,
    })?;
    if bytes.is_empty() {
        return Err(SnapError::Empty { file: file() });
    }
    let envelope =
        snappb::Snapshot::decode(bytes.as_slice()).map_err(|source| SnapError::Decode {
            file: file(),
            message: "snappb.Snapshot",
            source,
        })?;
    if envelope.data.is_empty() || envelope.crc == 0 {
        return Err(SnapError::Empty { file: file() });
    }
    let computed = crc32c::crc32c(&envelope.data);
    if computed != envelope.crc {
        return Err(SnapError::CrcMismatch {
            file: file(),
            stored: envelope.crc,
            computed,
        });
    }
    raftpb::Snapshot::decode(envelope.data.as_slice()).map_err(|source| SnapError::Decode {
        file: file(),
        message: "raftpb.Snapshot",
        source,
    })
}

/// etcd's v2 store, as saved in a raft snapshot's data (Go's JSON of `v2store.store`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct V2Store {
    /// The root directory `/`.
    #[serde(rename = "Root")]
    pub root: V2Node,
    /// The store's index.
    #[serde(rename = "CurrentIndex", default)]
    pub current_index: u64,
    /// Always 2.
    #[serde(rename = "CurrentVersion", default)]
    pub current_version: i64,
}

/// A node of the v2 store: a directory (with `children`) or a key (with `value`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct V2Node {
    /// Full path.
    #[serde(rename = "Path")]
    pub path: String,
    /// Index of its creation.
    #[serde(rename = "CreatedIndex", default)]
    pub created_index: u64,
    /// Index of its last modification.
    #[serde(rename = "ModifiedIndex", default)]
    pub modified_index: u64,
    /// Expiry, RFC 3339 (`0001-01-01T00:00:00Z` for none).
    #[serde(rename = "ExpireTime", default)]
    pub expire_time: String,
    /// The value, for a key.
    #[serde(rename = "Value", default)]
    pub value: String,
    /// Children by name, for a directory (`None` for a key).
    #[serde(rename = "Children", default)]
    pub children: Option<BTreeMap<String, V2Node>>,
}

/// Parses the v2 store JSON of a raft snapshot's data.
pub fn parse_v2_store(data: &[u8]) -> Result<V2Store, SnapError> {
    Ok(serde_json::from_slice(data)?)
}

impl V2Store {
    /// The node at `path` (`/`-separated, absolute).
    pub fn get(&self, path: &str) -> Option<&V2Node> {
        let mut node = &self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            node = node.children.as_ref()?.get(part)?;
        }
        Some(node)
    }

    /// The cluster version (`/0/version`).
    pub fn cluster_version(&self) -> Option<&str> {
        self.get("/0/version").map(|n| n.value.as_str())
    }

    /// Members from `/0/members/<id>/{raftAttributes,attributes}` and `/0/removed_members`.
    pub fn membership(&self) -> Result<Membership, SnapError> {
        let mut m = Membership::default();
        let children = |p: &str| self.get(p).and_then(|n| n.children.as_ref());
        for (id, node) in children("/0/members").into_iter().flatten() {
            let Ok(id) = u64::from_str_radix(id, 16) else {
                continue;
            };
            let mut member = Member {
                id,
                ..Default::default()
            };
            let attr = |name: &str| {
                node.children
                    .as_ref()
                    .and_then(|c| c.get(name))
                    .map(|n| n.value.as_bytes())
            };
            if let Some(raft) = attr("raftAttributes") {
                let r: RaftAttributes = serde_json::from_slice(raft)?;
                (member.peer_urls, member.is_learner) =
                    (r.peer_urls.unwrap_or_default(), r.is_learner);
            }
            if let Some(a) = attr("attributes") {
                let a: Attributes = serde_json::from_slice(a)?;
                (member.name, member.client_urls) = (a.name, a.client_urls.unwrap_or_default());
            }
            m.members.push(member);
        }
        for id in children("/0/removed_members")
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            m.removed.extend(u64::from_str_radix(id, 16).ok());
        }
        m.members.sort_by_key(|m| m.id);
        m.removed.sort_unstable();
        Ok(m)
    }
}

#[derive(Deserialize)]
struct RaftAttributes {
    #[serde(rename = "peerURLs", default)]
    peer_urls: Option<Vec<String>>,
    #[serde(rename = "isLearner", default)]
    is_learner: bool,
}

#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    name: String,
    #[serde(rename = "clientURLs", default)]
    client_urls: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_file_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let snap = raftpb::Snapshot {
            data: br#"{"Root":{"Path":"/","Children":{"0":{"Path":"/0","Children":{"version":{"Path":"/0/version","Value":"3.5.0"}}}}},"CurrentIndex":7}"#.to_vec(),
            metadata: Some(raftpb::SnapshotMetadata { conf_state: None, index: 7, term: 2 }),
        };
        let data = snap.encode_to_vec();
        let envelope = snappb::Snapshot {
            crc: crc32c::crc32c(&data),
            data,
        }
        .encode_to_vec();
        let path = dir.path().join(format!("{:016x}-{:016x}.snap", 2, 7));
        std::fs::write(&path, &envelope).unwrap();
        std::fs::write(dir.path().join("db"), b"not a snap").unwrap();
        let files = list_snap_files(dir.path()).unwrap();
        assert_eq!(
            files,
            vec![SnapFile {
                path: path.clone(),
                term: 2,
                index: 7
            }]
        );
        let back = read_snap_file(&path).unwrap();
        assert_eq!(back, snap);
        let store = parse_v2_store(&back.data).unwrap();
        assert_eq!(store.cluster_version(), Some("3.5.0"));
        assert_eq!(store.membership().unwrap(), Membership::default());
        for cut in [0, 1, 5, envelope.len() - 1] {
            std::fs::write(&path, &envelope[..cut]).unwrap();
            assert!(read_snap_file(&path).is_err(), "cut {cut}");
        }
        let mut flipped = envelope.clone();
        let n = flipped.len();
        flipped[n - 3] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            read_snap_file(&path),
            Err(SnapError::CrcMismatch { .. })
        ));
    }
}
