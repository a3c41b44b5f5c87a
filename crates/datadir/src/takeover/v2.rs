//! etcd's v2 store, carried over. etcd keeps it in memory only: its newest `.snap` file
//! holds the tree as JSON, and a restart replays the v2 requests of the WAL entries after
//! that snapshot. The tree as of the backend's consistent index is therefore the snapshot's
//! tree plus the v2 writes of the entries up to that index; the entries after it are
//! carried as raft entries (translate.rs) and applied by chorus itself.
//!
//! ```text
//!   .snap data: {"Root": {...}, "CurrentIndex": n}  ─▶ V2Tree (pre-order nodes)
//!   WAL entries snapshot+1 ..= consistent index     ─▶ v2 writes (V2Request), in order
//!   no .snap file                                   ─▶ a new store with the members
//!                      V2Seed ──(the server's V2Builder)──▶ chorus's saved v2 store
//! ```
//! The v2 store's code lives in the server, above this crate: it hands the takeover a
//! [`V2Builder`] that turns a [`V2Seed`] into the blob chorus keeps in its backend.

use chorus_api::internalpb::v2_request::Method;
use chorus_api::internalpb::{Member, V2Request};
use chorus_etcd_format::entry::{decode_entry, EntryPayload};
use chorus_etcd_format::proto::etcdserverpb_raft::Request as EtcdV2Request;
use chorus_etcd_format::snap::{parse_v2_store, V2Node, V2Store};

use super::etcd_member::EtcdMember;
use super::TakeoverError;

/// Expirations before 2000-01-01T00:00:00Z mean "permanent" (etcd's `minExpireTime`).
const MIN_EXPIRE_NANOS: i64 = 946_684_800_000_000_000;

/// Turns a seed into chorus's saved v2 store (the server's v2 module).
pub type V2Builder = fn(&V2Seed) -> Result<Vec<u8>, String>;

/// What the v2 store of the taken-over member is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct V2Seed {
    /// The tree of etcd's newest snapshot; `None`: no snapshot, a new store holding
    /// `members` (as a new cluster's bootstrap writes them).
    pub tree: Option<V2Tree>,
    pub members: Vec<Member>,
    /// The v2 writes etcd applied after that snapshot, up to the consistent index.
    pub requests: Vec<V2Request>,
}

/// A v2 tree: its index and its nodes, every directory before its children.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct V2Tree {
    pub current_index: u64,
    pub nodes: Vec<V2SeedNode>,
}

/// One node of a v2 tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct V2SeedNode {
    pub path: String,
    pub created_index: u64,
    pub modified_index: u64,
    /// Absolute expiration, unix nanoseconds; `None`: permanent.
    pub expire_time: Option<i64>,
    /// `None` for a directory.
    pub value: Option<String>,
}

impl V2Seed {
    /// Keys (not directories) in the tree.
    pub fn keys(&self) -> usize {
        self.tree
            .as_ref()
            .map_or(0, |t| t.nodes.iter().filter(|n| n.value.is_some()).count())
    }
}

/// The seed of `m`'s v2 store as of its backend's consistent index `ci`.
pub fn seed(m: &EtcdMember, ci: u64, members: &[Member]) -> Result<V2Seed, TakeoverError> {
    let tree = match &m.snapshot {
        Some((_, snap)) if !snap.data.is_empty() => Some(tree(&parse_v2_store(&snap.data)?)?),
        _ => None,
    };
    let mut requests = Vec::new();
    for e in m.entries.iter().filter(|e| e.index <= ci) {
        let payload = decode_entry(e).map_err(|source| TakeoverError::BadEntry {
            index: e.index,
            what: source.to_string(),
        })?;
        if let EntryPayload::V2Request(r) = payload {
            requests.extend(write_request(&r));
        }
    }
    Ok(V2Seed {
        tree,
        members: members.to_vec(),
        requests,
    })
}

/// etcd's v2 write as chorus's; `None` for a read (`QGET`, `GET`) or an unknown method.
pub fn write_request(r: &EtcdV2Request) -> Option<V2Request> {
    let method = match r.method.as_str() {
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "SYNC" => Method::Sync,
        _ => return None,
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out = V2Request {
        path: text(&r.path),
        val: text(&r.val),
        dir: r.dir,
        prev_value: text(&r.prev_value),
        prev_index: r.prev_index,
        prev_exist: r.prev_exist,
        expiration: r.expiration,
        recursive: r.recursive,
        sorted: r.sorted,
        refresh: r.refresh.unwrap_or(false),
        time: r.time,
        ..Default::default()
    };
    out.set_method(method);
    Some(out)
}

/// etcd's tree flattened, directories first. Iterative: a deep tree cannot overflow the
/// stack.
fn tree(store: &V2Store) -> Result<V2Tree, TakeoverError> {
    let mut nodes = Vec::new();
    let mut stack: Vec<&V2Node> = vec![&store.root];
    while let Some(n) = stack.pop() {
        nodes.push(V2SeedNode {
            path: n.path.clone(),
            created_index: n.created_index,
            modified_index: n.modified_index,
            expire_time: expire_time(n)?,
            value: n.children.is_none().then(|| n.value.clone()),
        });
        if let Some(children) = &n.children {
            stack.extend(children.values().rev());
        }
    }
    Ok(V2Tree {
        current_index: store.current_index,
        nodes,
    })
}

fn expire_time(n: &V2Node) -> Result<Option<i64>, TakeoverError> {
    if n.expire_time.is_empty() {
        return Ok(None);
    }
    let t = chorus_etcd_format::gotime::parse_unix_nanos(&n.expire_time)
        .map_err(|what| TakeoverError::V2Store(format!("node {}: ExpireTime {what}", n.path)))?;
    Ok((t >= MIN_EXPIRE_NANOS).then_some(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_flattened_directories_first_with_expirations() {
        let json = br#"{"Root":{"Path":"/","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{
            "0":{"Path":"/0","ExpireTime":"0001-01-01T00:00:00Z","Children":{}},
            "1":{"Path":"/1","ExpireTime":"0001-01-01T00:00:00Z","Children":{
                "dir":{"Path":"/1/dir","CreatedIndex":5,"ModifiedIndex":5,"ExpireTime":"0001-01-01T00:00:00Z","Children":{
                    "k":{"Path":"/1/dir/k","CreatedIndex":6,"ModifiedIndex":7,"ExpireTime":"2030-01-01T00:00:00.5+01:00","Value":"v","Children":null}}},
                "a":{"Path":"/1/a","CreatedIndex":4,"ModifiedIndex":4,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":null}}}}},
            "CurrentIndex":7,"CurrentVersion":2}"#;
        let t = tree(&parse_v2_store(json).unwrap()).unwrap();
        assert_eq!(t.current_index, 7);
        let paths: Vec<_> = t.nodes.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(paths, ["/", "/0", "/1", "/1/a", "/1/dir", "/1/dir/k"]);
        let k = &t.nodes[5];
        assert_eq!(k.value.as_deref(), Some("v"));
        assert_eq!(k.expire_time, Some(1_893_452_400_500_000_000));
        assert_eq!((k.created_index, k.modified_index), (6, 7));
        // An empty value is a key, not a directory; an empty directory is a directory.
        assert_eq!(t.nodes[3].value.as_deref(), Some(""));
        assert_eq!(t.nodes[1].value, None);
        assert_eq!(t.nodes[0].expire_time, None);
    }

    #[test]
    fn a_bad_expiration_is_refused_naming_the_node() {
        let json = br#"{"Root":{"Path":"/","Children":{"k":{"Path":"/k","ExpireTime":"tomorrow","Value":"v"}}},"CurrentIndex":1}"#;
        let e = tree(&parse_v2_store(json).unwrap()).unwrap_err();
        assert!(e.to_string().contains("node /k: ExpireTime"), "{e}");
    }

    #[test]
    fn writes_are_carried_and_reads_are_not() {
        let r = |method: &str| EtcdV2Request {
            method: method.into(),
            path: b"/1/k".to_vec(),
            val: b"v".to_vec(),
            prev_exist: Some(false),
            expiration: 42,
            ..Default::default()
        };
        let put = write_request(&r("PUT")).unwrap();
        assert_eq!(put.method(), Method::Put);
        assert_eq!((put.path.as_str(), put.val.as_str()), ("/1/k", "v"));
        assert_eq!((put.prev_exist, put.expiration), (Some(false), 42));
        assert_eq!(write_request(&r("POST")).unwrap().method(), Method::Post);
        assert_eq!(
            write_request(&r("DELETE")).unwrap().method(),
            Method::Delete
        );
        assert_eq!(write_request(&r("SYNC")).unwrap().method(), Method::Sync);
        assert_eq!(write_request(&r("QGET")), None);
        assert_eq!(write_request(&r("GET")), None);
    }
}
