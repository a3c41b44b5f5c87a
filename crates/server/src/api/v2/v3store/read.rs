//! The v2v3 store's reads: a node, or a directory listed one level at a time (etcd's
//! `Get` and `getDir`).

use super::layout::{self, is_root, v2_rev};
use super::ops;
use super::store::{event, V3Store};
use crate::v2::{ecode, Action, Event, NodeExtern, V2Error};

impl V3Store {
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
