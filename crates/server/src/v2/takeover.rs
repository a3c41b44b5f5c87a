//! etcd's v2 store in chorus's form, when chorus takes over a stopped etcd member's data
//! dir: `chorus_datadir::takeover` reads etcd's snapshot tree and the v2 writes etcd
//! applied after it ([`V2Seed`]); this builds the store from them, as etcd's restart
//! would, and hands back what chorus saves in its backend.

use std::time::SystemTime;

use chorus_datadir::takeover::{V2Seed, V2SeedNode};

use super::request::{apply, unix_nanos};
use super::store::SavedNode;
use super::V2Store;

/// The saved v2 store of `seed` (a [`chorus_datadir::takeover::V2Builder`]).
pub fn build(seed: &V2Seed) -> Result<Vec<u8>, String> {
    let mut store = match &seed.tree {
        Some(t) => V2Store::from_tree(t.current_index, t.nodes.iter().map(node).collect())
            .map_err(|e| e.to_string())?,
        None => {
            let mut store = V2Store::new();
            for m in &seed.members {
                super::members::add(&mut store, m);
            }
            store
        }
    };
    let now = unix_nanos(SystemTime::now());
    for r in &seed.requests {
        let mut r = r.clone();
        if r.time == 0 {
            // Only renders the TTLs of the result, which nobody waits for.
            r.time = now;
        }
        // etcd applied each of these; a refused one (a failed compare) was refused by
        // etcd too and changes nothing.
        let _ = apply(&mut store, &r);
    }
    Ok(store.save())
}

fn node(n: &V2SeedNode) -> SavedNode {
    SavedNode {
        path: n.path.clone(),
        created_index: n.created_index,
        modified_index: n.modified_index,
        expire_time: n.expire_time,
        value: n.value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use chorus_api::internalpb::v2_request::Method;
    use chorus_api::internalpb::V2Request;
    use chorus_datadir::takeover::V2Tree;

    use super::*;

    fn n(path: &str, idx: u64, expire: Option<i64>, value: Option<&str>) -> V2SeedNode {
        V2SeedNode {
            path: path.into(),
            created_index: idx,
            modified_index: idx,
            expire_time: expire,
            value: value.map(Into::into),
        }
    }

    fn put(path: &str, val: &str) -> V2Request {
        let mut r = V2Request {
            path: path.into(),
            val: val.into(),
            ..Default::default()
        };
        r.set_method(Method::Put);
        r
    }

    #[test]
    fn etcd_tree_then_the_writes_after_it() {
        let far = 4_102_444_800_000_000_000; // 2100-01-01
        let seed = V2Seed {
            tree: Some(V2Tree {
                current_index: 9,
                nodes: vec![
                    n("/", 0, None, None),
                    n("/0", 0, None, None),
                    n("/1", 0, None, None),
                    n("/1/dir", 5, None, None),
                    n("/1/dir/ttl", 8, Some(far), Some("t")),
                    n("/1/k", 9, None, Some("v")),
                ],
            }),
            members: Vec::new(),
            requests: vec![put("/1/k", "v2"), put("/1/new", "n")],
        };
        let mut store = V2Store::new();
        store.recover(&build(&seed).unwrap()).unwrap();
        assert_eq!(store.index(), 11);
        let now = unix_nanos(SystemTime::now());
        let k = store.get("/1/k", false, false, now).unwrap().node.unwrap();
        assert_eq!(k.value.as_deref(), Some("v2"));
        // A set replaces the node: etcd gives it a new created index too.
        assert_eq!((k.created_index, k.modified_index), (10, 10));
        let ttl = store.get("/1/dir/ttl", false, false, now).unwrap();
        let ttl = ttl.node.unwrap();
        assert_eq!((ttl.expiration, ttl.created_index), (Some(far), 8));
        let new = store
            .get("/1/new", false, false, now)
            .unwrap()
            .node
            .unwrap();
        assert_eq!(new.created_index, 11);
    }

    #[test]
    fn a_tree_without_a_root_is_refused() {
        let seed = V2Seed {
            tree: Some(V2Tree {
                current_index: 1,
                nodes: vec![n("/1/k", 1, None, Some("v"))],
            }),
            ..Default::default()
        };
        let e = build(&seed).unwrap_err();
        assert!(e.contains("corrupt"), "{e}");
    }
}
