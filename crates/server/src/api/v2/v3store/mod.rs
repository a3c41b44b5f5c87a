//! etcd's v2v3 store (`--experimental-enable-v2v3=<prefix>`, etcd 3.4 and 3.5): the v2
//! keys API served from the v3 keyspace, every node a v3 key under the prefix in etcd's
//! layout (`layout.rs`), every write one v3 txn through the member (`write.rs`), watches
//! a v3 watch on the prefix (`watch.rs`).
//!
//! ```text
//!  /v2/keys handler ─ V2Request ─▶ V3Store::write ─ txn (compares + puts/deletes) ─▶ Member::txn
//!                   ─ GET ───────▶ V3Store::get ─── read txn / prefix ranges ───────▶ Member::read_txn
//!                   ─ wait=true ─▶ V3Store::watch ─ LocalWatch on <prefix> ─────────▶ WatchHub
//! ```
//!
//! As in etcd: indexes are v3 revisions minus one, TTLs are refused ("TTLs are
//! unsupported"), and the quirks of etcd's store are kept (a POSTed key is named after
//! Go's `time.Now().String()`, an update of a missing key is "Not a file").

mod layout;
mod ops;
mod watch;
mod write;

use std::sync::Arc;

use chorus_api::etcdserverpb::{Compare, RequestOp, TxnRequest, TxnResponse};

pub use layout::Layout;
pub use watch::V3Watcher;

use self::layout::{is_root, v2_rev};
use super::member::v2_error;
use crate::member::Member;
use crate::v2::{ecode, Action, Event, NodeExtern, V2Error};

/// The v2 keys API over the member's v3 keyspace.
pub struct V3Store {
    member: Arc<Member>,
    layout: Layout,
}

impl V3Store {
    pub fn new(member: Arc<Member>, prefix: &str) -> V3Store {
        write::PROCESS_START.get_or_init(std::time::Instant::now);
        let layout = Layout {
            pfx: prefix.to_string(),
        };
        V3Store { member, layout }
    }

    /// A txn through raft (or served locally when it only reads).
    async fn txn(
        &self,
        compare: Vec<Compare>,
        success: Vec<RequestOp>,
        failure: Vec<RequestOp>,
    ) -> Result<TxnResponse, V2Error> {
        let r = TxnRequest {
            compare,
            success,
            failure,
        };
        let read_only = crate::kv::is_txn_read_only(&r);
        let resp = if read_only {
            self.member.read_txn(None, &r).await
        } else {
            self.member.txn(None, r).await
        };
        resp.map_err(v2_error)
    }

    /// etcd's v2v3 `Get`: a directory (or the root) with its children, else a file.
    pub async fn get(
        &self,
        node_path: &str,
        recursive: bool,
        sorted: bool,
    ) -> Result<Event, V2Error> {
        let key = self.layout.path(node_path);
        let resp = self
            .txn(
                Vec::new(),
                vec![ops::get(&format!("{key}/")), ops::get(&key)],
                Vec::new(),
            )
            .await?;
        let rev = ops::revision(&resp);
        let dir = ops::range_kvs(&resp, 0).first();
        let node = if dir.is_some() || is_root(node_path) {
            let mut node = dir.map_or_else(|| self.root_node(node_path), |kv| self.layout.node(kv));
            node.key = node_path.to_string();
            node.nodes = Some(self.children(node_path, recursive, sorted, rev).await?);
            node
        } else {
            let Some(kv) = ops::range_kvs(&resp, 1).first() else {
                return Err(V2Error::new(ecode::KEY_NOT_FOUND, node_path, v2_rev(rev)));
            };
            self.layout.node(kv)
        };
        Ok(event(Action::Get, Some(node), None, rev))
    }

    fn root_node(&self, node_path: &str) -> NodeExtern {
        NodeExtern {
            key: node_path.to_string(),
            value: None,
            dir: true,
            expiration: None,
            ttl: 0,
            nodes: None,
            modified_index: 0,
            created_index: 0,
        }
    }

    /// The nodes `depth` levels below `node_path`, at `rev`.
    async fn level(
        &self,
        node_path: &str,
        depth: usize,
        rev: i64,
    ) -> Result<Vec<NodeExtern>, V2Error> {
        let prefix = self.layout.path_depth(node_path, depth);
        let resp = self
            .txn(Vec::new(), vec![ops::get_prefix(&prefix, rev)], Vec::new())
            .await?;
        Ok(ops::range_kvs(&resp, 0)
            .iter()
            .map(|kv| self.layout.node(kv))
            .collect())
    }

    /// etcd's `getDir`: one level, or (recursive) a breadth-first walk of every level,
    /// each child placed under its parent.
    async fn children(
        &self,
        node_path: &str,
        recursive: bool,
        sorted: bool,
        rev: i64,
    ) -> Result<Vec<NodeExtern>, V2Error> {
        let mut levels = vec![self.level(node_path, 1, rev).await?];
        while recursive && !levels.last().is_some_and(Vec::is_empty) {
            let depth = levels.len() + 1;
            if depth > layout::MAX_PATH_DEPTH + 1 {
                break;
            }
            levels.push(self.level(node_path, depth, rev).await?);
        }
        let mut nodes = nest(levels);
        if sorted {
            nodes.sort_by(|a, b| a.key.cmp(&b.key));
        }
        Ok(nodes)
    }
}

/// Builds the tree from the levels of a breadth-first walk, deepest first: each node goes
/// under the node of the level above whose key is its parent's (orphans are dropped, as
/// etcd drops them).
fn nest(mut levels: Vec<Vec<NodeExtern>>) -> Vec<NodeExtern> {
    let mut below = levels.pop().unwrap_or_default();
    while let Some(mut level) = levels.pop() {
        for child in below {
            let parent = layout::dir_of(&child.key);
            if let Some(p) = level.iter_mut().find(|n| n.key == parent) {
                p.nodes.get_or_insert_with(Vec::new).push(child);
            }
        }
        below = level;
    }
    below
}

fn event(
    action: Action,
    node: Option<NodeExtern>,
    prev_node: Option<NodeExtern>,
    rev: i64,
) -> Event {
    Event {
        action,
        node,
        prev_node,
        etcd_index: v2_rev(rev),
        refresh: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(key: &str) -> NodeExtern {
        NodeExtern {
            key: key.into(),
            value: None,
            dir: true,
            expiration: None,
            ttl: 0,
            nodes: None,
            modified_index: 1,
            created_index: 1,
        }
    }

    #[test]
    fn levels_nest_under_their_parents() {
        let levels = vec![
            vec![node("/1/a"), node("/1/b")],
            vec![node("/1/a/x"), node("/1/b/y"), node("/1/c/orphan")],
            vec![node("/1/a/x/z")],
        ];
        let tree = nest(levels);
        assert_eq!(tree.len(), 2);
        let a = tree[0].nodes.as_deref().expect("a's children");
        assert_eq!(a[0].key, "/1/a/x");
        assert_eq!(
            a[0].nodes.as_deref().expect("x's children")[0].key,
            "/1/a/x/z"
        );
        let b = tree[1].nodes.as_deref().expect("b's children");
        assert_eq!((b.len(), b[0].key.as_str()), (1, "/1/b/y"));
        assert!(nest(Vec::new()).is_empty());
    }
}
