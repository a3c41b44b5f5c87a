//! etcd's v2v3 key layout: where a v2 node lives in the v3 keyspace, and how a v3
//! key-value reads back as a v2 node.
//!
//! A node `/1/a/b` (the HTTP layer's `/a/b`) is the v3 key `<pfx>/003/k//1/a/b`: the
//! number is the node's depth (slashes in its clean path), so one prefix range lists a
//! directory's children. A directory is the same key with a trailing `/` and an empty
//! value. `<pfx>/act` holds the action of the last write, which watchers read.

use chorus_api::mvccpb::KeyValue;

use crate::v2::format::{clean, join};
use crate::v2::NodeExtern;

/// etcd's `maxPathDepth`: a recursive delete removes at most this many levels.
pub const MAX_PATH_DEPTH: usize = 63;

/// The prefix every v2 node is kept under (`--experimental-enable-v2v3`).
#[derive(Clone, Debug)]
pub struct Layout {
    pub pfx: String,
}

impl Layout {
    /// The v3 key of a file node (a directory adds `/`).
    pub fn path(&self, node_path: &str) -> String {
        self.path_depth(node_path, 0)
    }

    /// The v3 key prefix of the nodes `depth` levels below `node_path`.
    pub fn path_depth(&self, node_path: &str, depth: usize) -> String {
        let normal = clean(&join(&["/", node_path]));
        let n = normal.matches('/').count() + depth;
        format!("{}/{n:03}/k/{normal}", self.pfx)
    }

    /// The key holding the last write's action.
    pub fn action_key(&self) -> String {
        format!("{}/act", self.pfx)
    }

    /// The v2 path of a node's v3 key.
    fn node_path(&self, key: &str) -> String {
        let skip = self.pfx.len() + "/k/000/".len();
        clean(key.get(skip..).unwrap_or(""))
    }

    /// A v3 key-value as the v2 node it stores.
    pub fn node(&self, kv: &KeyValue) -> NodeExtern {
        let key = String::from_utf8_lossy(&kv.key);
        let dir = key.ends_with('/');
        NodeExtern {
            key: self.node_path(&key),
            value: (!dir).then(|| String::from_utf8_lossy(&kv.value).into_owned()),
            dir,
            expiration: None,
            ttl: 0,
            nodes: None,
            modified_index: v2_rev(kv.mod_revision),
            created_index: v2_rev(kv.create_revision),
        }
    }
}

/// etcd's `isRoot` (`/1` is the keys root the HTTP layer adds; `/0` the v2 members').
pub fn is_root(p: &str) -> bool {
    matches!(p, "" | "/" | "/0" | "/1")
}

/// A v3 revision as a v2 index (etcd's `mkV2Rev`: one less, 0 stays 0).
pub fn v2_rev(rev: i64) -> u64 {
    if rev == 0 {
        0
    } else {
        (rev - 1) as u64
    }
}

/// A v2 index as a v3 revision (etcd's `mkV3Rev`).
pub fn v3_rev(index: u64) -> i64 {
    if index == 0 {
        0
    } else {
        index as i64 + 1
    }
}

/// The parents of `node_path` below the root, nearest first (Go's `path.Dir` walk).
pub fn parents(node_path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = dir_of(node_path);
    while !is_root(&p) {
        let next = dir_of(&p);
        out.push(p);
        p = next;
    }
    out
}

/// Go's `path.Dir`.
pub fn dir_of(p: &str) -> String {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    clean(&p[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout { pfx: "/v2/".into() }
    }

    #[test]
    fn keys_match_etcds_layout() {
        let l = layout();
        assert_eq!(l.path("/1/a/b"), "/v2//003/k//1/a/b");
        assert_eq!(l.path_depth("/1", 1), "/v2//002/k//1");
        assert_eq!(l.action_key(), "/v2//act");
        let kv = KeyValue {
            key: b"/v2//003/k//1/a/b/".to_vec(),
            create_revision: 3,
            mod_revision: 4,
            ..Default::default()
        };
        let n = l.node(&kv);
        assert_eq!(
            (n.key.as_str(), n.dir, n.value.as_deref()),
            ("/1/a/b", true, None)
        );
        assert_eq!((n.created_index, n.modified_index), (2, 3));
    }

    #[test]
    fn parents_stop_at_the_root() {
        assert_eq!(parents("/1/a/b/c"), vec!["/1/a/b", "/1/a"]);
        assert!(parents("/1/a").is_empty());
        assert_eq!(dir_of("/a"), "/");
    }
}
