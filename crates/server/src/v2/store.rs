//! The v2 store: etcd's `v2store` tree of directories and files, with TTLs, the global index,
//! the 1,000-event history and the watcher hub.
//!
//! Paths are etcd's internal ones: user keys live under [`KEYS_PREFIX`] (`/1/foo` is the
//! key `/foo`), `/0` is reserved for cluster data, and `/`, `/0`, `/1` are read-only.
//!
//! The store is deterministic: it never reads the clock. Expirations are absolute unix
//! nanoseconds chosen by the proposer, and every operation takes `now` (unix nanoseconds)
//! only to render the `ttl` field of the nodes it returns. Expiry happens when the caller
//! applies [`V2Store::delete_expired_keys`] with a cutoff (etcd's replicated SYNC).
//!
//! Nodes are kept in a flat map keyed by path (each directory holds its children's names),
//! so no operation recurses over the depth of the tree.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::error::{ecode, V2Error};
use super::format::{clean, join, push_json_str, rfc3339_nano, split};

/// Where user keys live (etcd's `StoreKeysPrefix`).
pub const KEYS_PREFIX: &str = "/1";
/// Reserved for cluster data (etcd's `StoreClusterPrefix`).
pub const CLUSTER_PREFIX: &str = "/0";
/// Events kept for `waitIndex` watches.
pub const HISTORY_CAPACITY: usize = 1000;
/// Events a watcher may have unread before it is dropped (etcd's channel size).
const WATCHER_BUFFER: usize = 100;
/// Expirations before 2000-01-01T00:00:00Z mean "permanent" (etcd's `minExpireTime`).
const MIN_EXPIRE_NANOS: i64 = 946_684_800_000_000_000;
const SNAPSHOT_VERSION: u32 = 2;

/// What happened, by etcd's name (`action` in responses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Get,
    Create,
    Set,
    Update,
    Delete,
    CompareAndSwap,
    CompareAndDelete,
    Expire,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::Create => "create",
            Action::Set => "set",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::CompareAndSwap => "compareAndSwap",
            Action::CompareAndDelete => "compareAndDelete",
            Action::Expire => "expire",
        }
    }
}

/// A node as responses show it (etcd's `NodeExtern`). Empty fields are left out of JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeExtern {
    pub key: String,
    pub value: Option<String>,
    pub dir: bool,
    /// Absolute expiration, unix nanoseconds.
    pub expiration: Option<i64>,
    /// Seconds left when the node was rendered, rounded up.
    pub ttl: i64,
    pub nodes: Option<Vec<NodeExtern>>,
    pub modified_index: u64,
    pub created_index: u64,
}

impl Drop for NodeExtern {
    // Iterative, so that dropping a listing of a very deep tree cannot overflow the stack.
    fn drop(&mut self) {
        if let Some(mut stack) = self.nodes.take() {
            while let Some(mut n) = stack.pop() {
                if let Some(children) = n.nodes.take() {
                    stack.extend(children);
                }
            }
        }
    }
}

impl NodeExtern {
    fn new(key: &str, modified_index: u64, created_index: u64) -> NodeExtern {
        NodeExtern {
            key: key.to_string(),
            value: None,
            dir: false,
            expiration: None,
            ttl: 0,
            nodes: None,
            modified_index,
            created_index,
        }
    }

    /// Appends this node as etcd's JSON, with `trim` removed from the front of every key
    /// (the HTTP layer trims [`KEYS_PREFIX`]). Iterative over the depth of `nodes`.
    pub fn write_json(&self, out: &mut String, trim: &str) {
        enum Step<'a> {
            Open(&'a NodeExtern),
            Tail(&'a NodeExtern),
            Comma,
        }
        let mut stack = vec![Step::Open(self)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Comma => out.push(','),
                Step::Open(n) => {
                    out.push('{');
                    let mut first = true;
                    let mut field = |out: &mut String, name: &str| {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        out.push('"');
                        out.push_str(name);
                        out.push_str("\":");
                    };
                    let key = n.key.strip_prefix(trim).unwrap_or(&n.key);
                    if !key.is_empty() {
                        field(out, "key");
                        push_json_str(out, key);
                    }
                    if let Some(v) = &n.value {
                        field(out, "value");
                        push_json_str(out, v);
                    }
                    if n.dir {
                        field(out, "dir");
                        out.push_str("true");
                    }
                    if let Some(t) = n.expiration {
                        field(out, "expiration");
                        out.push('"');
                        out.push_str(&rfc3339_nano(t));
                        out.push('"');
                    }
                    if n.ttl != 0 {
                        field(out, "ttl");
                        out.push_str(&n.ttl.to_string());
                    }
                    match n.nodes.as_deref() {
                        Some(children) if !children.is_empty() => {
                            field(out, "nodes");
                            out.push('[');
                            stack.push(Step::Tail(n));
                            for (i, c) in children.iter().enumerate().rev() {
                                stack.push(Step::Open(c));
                                if i > 0 {
                                    stack.push(Step::Comma);
                                }
                            }
                        }
                        _ => {
                            write_indexes(out, n, !first);
                        }
                    }
                }
                Step::Tail(n) => {
                    out.push(']');
                    write_indexes(out, n, true);
                }
            }
        }
    }
}

fn write_indexes(out: &mut String, n: &NodeExtern, mut comma: bool) {
    for (name, v) in [
        ("modifiedIndex", n.modified_index),
        ("createdIndex", n.created_index),
    ] {
        if v != 0 {
            if comma {
                out.push(',');
            }
            comma = true;
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            out.push_str(&v.to_string());
        }
    }
    out.push('}');
}

/// The result of an operation, and what watchers receive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub action: Action,
    /// `None` only when a response leaves it out (`noValueOnSuccess`).
    pub node: Option<NodeExtern>,
    pub prev_node: Option<NodeExtern>,
    /// The store index after the operation (`X-Etcd-Index`); not part of the JSON.
    pub etcd_index: u64,
    /// A TTL refresh: kept in the history but not sent to watchers.
    pub refresh: bool,
}

impl Event {
    fn new(action: Action, key: &str, modified_index: u64, created_index: u64) -> Event {
        Event {
            action,
            node: Some(NodeExtern::new(key, modified_index, created_index)),
            prev_node: None,
            etcd_index: 0,
            refresh: false,
        }
    }

    fn node_mut(&mut self) -> &mut NodeExtern {
        self.node.get_or_insert_with(NodeExtern::default)
    }

    fn key(&self) -> &str {
        self.node.as_ref().map_or("", |n| n.key.as_str())
    }

    /// The index the event happened at: its node's modifiedIndex.
    pub fn index(&self) -> u64 {
        self.node.as_ref().map_or(0, |n| n.modified_index)
    }

    /// A create, or a set that found nothing to replace: HTTP 201.
    pub fn is_created(&self) -> bool {
        self.action == Action::Create || (self.action == Action::Set && self.prev_node.is_none())
    }

    /// etcd's JSON for the event (`{"action":..,"node":..,"prevNode":..}`), keys with
    /// `trim` removed from the front; no trailing newline. `refresh` is never written, as in
    /// etcd, whose response path copies events without it.
    pub fn to_json(&self, trim: &str) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("{\"action\":\"");
        out.push_str(self.action.as_str());
        out.push('"');
        if let Some(n) = &self.node {
            out.push_str(",\"node\":");
            n.write_json(&mut out, trim);
        }
        if let Some(n) = &self.prev_node {
            out.push_str(",\"prevNode\":");
            n.write_json(&mut out, trim);
        }
        out.push('}');
        out
    }
}

#[derive(Clone, Debug)]
enum Kind {
    File(String),
    /// Children's names.
    Dir(BTreeSet<String>),
}

#[derive(Clone, Debug)]
struct Node {
    created_index: u64,
    modified_index: u64,
    /// Absolute expiration, unix nanoseconds; `None` = permanent.
    expire_time: Option<i64>,
    kind: Kind,
}

impl Node {
    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    fn value(&self) -> &str {
        match &self.kind {
            Kind::File(v) => v,
            Kind::Dir(_) => "",
        }
    }

    /// etcd's `expirationAndTTL`: the TTL is the time left rounded up to whole seconds.
    fn expiration_and_ttl(&self, now: i64) -> (Option<i64>, i64) {
        match self.expire_time {
            None => (None, 0),
            Some(t) => {
                let left = t.saturating_sub(now);
                let mut ttl = left / 1_000_000_000;
                if left % 1_000_000_000 > 0 {
                    ttl += 1;
                }
                (Some(t), ttl)
            }
        }
    }

    /// etcd's `node.Repr(false, false)`: the node alone.
    fn shallow(&self, path: &str, now: i64) -> NodeExtern {
        let mut n = NodeExtern::new(path, self.modified_index, self.created_index);
        match &self.kind {
            Kind::File(v) => n.value = Some(v.clone()),
            Kind::Dir(_) => n.dir = true,
        }
        (n.expiration, n.ttl) = self.expiration_and_ttl(now);
        n
    }
}

/// etcd's `isHidden`: whether `key_path`, seen from a watcher at `watch_path`, is (inside) a
/// hidden node.
fn is_hidden(watch_path: &str, key_path: &str) -> bool {
    if watch_path.len() > key_path.len() {
        return false;
    }
    let Some(rest) = key_path.get(watch_path.len()..) else {
        return false;
    };
    clean(&format!("/{rest}")).contains("/_")
}

/// Which comparison of a CAS/CAD failed.
enum Compare {
    Match,
    IndexNotMatch,
    ValueNotMatch,
    NotMatch,
}

fn compare(n: &Node, prev_value: &str, prev_index: u64) -> Compare {
    let index_match = prev_index == 0 || n.modified_index == prev_index;
    let value_match = prev_value.is_empty() || n.value() == prev_value;
    match (value_match, index_match) {
        (true, true) => Compare::Match,
        (false, true) => Compare::ValueNotMatch,
        (true, false) => Compare::IndexNotMatch,
        (false, false) => Compare::NotMatch,
    }
}

fn compare_fail_cause(n: &Node, which: Compare, prev_value: &str, prev_index: u64) -> String {
    match which {
        Compare::IndexNotMatch => format!("[{prev_index} != {}]", n.modified_index),
        Compare::ValueNotMatch => format!("[{prev_value} != {}]", n.value()),
        _ => format!(
            "[{prev_value} != {}] [{prev_index} != {}]",
            n.value(),
            n.modified_index
        ),
    }
}

/// etcd's store counters (`/v2/stats/store`). Per member, not replicated.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub gets_success: AtomicU64,
    pub gets_fail: AtomicU64,
    pub sets_success: AtomicU64,
    pub sets_fail: AtomicU64,
    pub delete_success: AtomicU64,
    pub delete_fail: AtomicU64,
    pub update_success: AtomicU64,
    pub update_fail: AtomicU64,
    pub create_success: AtomicU64,
    pub create_fail: AtomicU64,
    pub compare_and_swap_success: AtomicU64,
    pub compare_and_swap_fail: AtomicU64,
    pub compare_and_delete_success: AtomicU64,
    pub compare_and_delete_fail: AtomicU64,
    pub expire_count: AtomicU64,
}

fn count<T>(action: Action, r: &Result<T, V2Error>, ok: &AtomicU64, fail: &AtomicU64) {
    count_as_etcd(action, r, ok, fail, &[]);
}

/// A read for `/v2/stats/store` and `etcd_debugging_store_reads_total`.
fn count_read<T>(recursive: bool, r: &Result<T, V2Error>, ok: &AtomicU64, fail: &AtomicU64) {
    let action = if recursive { "getRecursive" } else { "get" };
    chorus_metrics::STORE_READS.add([action], 1);
    count_as_etcd_stats(r, ok, fail, &[]);
}

/// Counts a result, with etcd 3.4's quirk: its store counts an operation from a deferred
/// check of a local `err` that some refusals return without setting, so those count as
/// successes. `as_success` names the error codes that do this for the operation:
/// update (root, a value on a directory), delete (root), compare-and-swap (root),
/// compare-and-delete (a directory, a failed compare). `/v2/stats/store` then reads as
/// etcd's. Every write counts in `etcd_debugging_store_writes_total` by its action.
fn count_as_etcd<T>(
    action: Action,
    r: &Result<T, V2Error>,
    ok: &AtomicU64,
    fail: &AtomicU64,
    as_success: &[u32],
) {
    chorus_metrics::STORE_WRITES.add([action.as_str()], 1);
    count_as_etcd_stats(r, ok, fail, as_success);
}

fn count_as_etcd_stats<T>(
    r: &Result<T, V2Error>,
    ok: &AtomicU64,
    fail: &AtomicU64,
    as_success: &[u32],
) {
    match r {
        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
        Err(e) if as_success.contains(&e.code) => ok.fetch_add(1, Ordering::Relaxed),
        Err(_) => fail.fetch_add(1, Ordering::Relaxed),
    };
}

struct WatcherEntry {
    id: u64,
    recursive: bool,
    stream: bool,
    since_index: u64,
    tx: mpsc::Sender<Arc<Event>>,
}

#[derive(Default)]
struct WatcherHub {
    /// Watched path -> watchers, in registration order.
    watchers: HashMap<String, Vec<WatcherEntry>>,
    count: u64,
    next_id: u64,
}

impl WatcherHub {
    fn remove(&mut self, key: &str, id: u64) {
        if let Some(list) = self.watchers.get_mut(key) {
            let before = list.len();
            list.retain(|w| w.id != id);
            self.count -= (before - list.len()) as u64;
            if list.is_empty() {
                self.watchers.remove(key);
            }
        }
    }
}

/// A watch: yields the matching events (one, unless it streams). Dropping it unregisters it.
pub struct Watcher {
    rx: mpsc::Receiver<Arc<Event>>,
    start_index: u64,
    registration: Option<(Arc<Mutex<WatcherHub>>, String, u64)>,
    /// Holds the channel open when the watch was answered from history, as etcd does (a
    /// streaming watch answered from history then waits for nothing more).
    _idle: Option<mpsc::Sender<Arc<Event>>>,
}

impl Watcher {
    /// The next event; `None` once the watcher was dropped by the hub (it fell 100 events
    /// behind).
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        self.rx.recv().await
    }

    /// The next event if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        self.rx.try_recv().ok()
    }

    /// The store index when the watch started (`X-Etcd-Index` of a watch response).
    pub fn start_index(&self) -> u64 {
        self.start_index
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some((hub, key, id)) = self.registration.take() {
            hub.lock().remove(&key, id);
        }
    }
}

/// The last [`HISTORY_CAPACITY`] events, for watches that start in the past.
#[derive(Clone, Debug, Default)]
struct EventHistory {
    events: VecDeque<Arc<Event>>,
    start_index: u64,
    last_index: u64,
}

impl EventHistory {
    fn add(&mut self, e: Arc<Event>) {
        if self.events.len() == HISTORY_CAPACITY {
            self.events.pop_front();
        }
        self.last_index = e.index();
        self.events.push_back(e);
        self.start_index = self.events.front().map_or(0, |e| e.index());
    }

    /// The first event at or after `index` that a watcher on `key` would see.
    fn scan(&self, key: &str, recursive: bool, index: u64) -> Result<Option<Arc<Event>>, V2Error> {
        if index < self.start_index {
            return Err(V2Error::new(
                ecode::EVENT_INDEX_CLEARED,
                format!(
                    "the requested history has been cleared [{}/{index}]",
                    self.start_index
                ),
                0,
            ));
        }
        if index > self.last_index {
            return Ok(None);
        }
        let mut prefix = clean(key);
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        let offset = (index - self.start_index) as usize;
        for e in self.events.iter().skip(offset) {
            if e.refresh {
                continue;
            }
            let ekey = e.key();
            let mut ok = ekey == key || (recursive && ekey.starts_with(&prefix));
            if matches!(e.action, Action::Delete | Action::Expire) {
                if let Some(p) = &e.prev_node {
                    ok = ok || (p.dir && key.starts_with(&p.key));
                }
            }
            if ok {
                return Ok(Some(e.clone()));
            }
        }
        Ok(None)
    }
}

/// The v2 key space. See the module documentation.
pub struct V2Store {
    nodes: HashMap<String, Node>,
    current_index: u64,
    /// (expiration, path) of every node with a TTL, soonest first.
    ttl_keys: BTreeSet<(i64, String)>,
    history: EventHistory,
    hub: Arc<Mutex<WatcherHub>>,
    stats: StoreStats,
}

impl Default for V2Store {
    fn default() -> Self {
        V2Store::new()
    }
}

fn new_dir(index: u64, expire_time: Option<i64>) -> Node {
    Node {
        created_index: index,
        modified_index: index,
        expire_time,
        kind: Kind::Dir(BTreeSet::new()),
    }
}

/// Byte offsets that end each ancestor of a clean absolute path: for `/1/a/b`, the
/// prefixes `/1`, `/1/a`, `/1/a/b`.
fn prefix_ends(path: &str) -> Vec<usize> {
    if path == "/" {
        return Vec::new();
    }
    let mut ends: Vec<usize> = path
        .char_indices()
        .skip(1)
        .filter(|(_, c)| *c == '/')
        .map(|(i, _)| i)
        .collect();
    ends.push(path.len());
    ends
}

fn prefix(path: &str, ends: &[usize], k: usize) -> String {
    if k == 0 {
        "/".to_string()
    } else {
        path[..ends[k - 1]].to_string()
    }
}

impl V2Store {
    /// An empty store with etcd's two namespaces, `/0` and `/1`, at index 0.
    pub fn new() -> V2Store {
        let mut nodes = HashMap::new();
        let mut root_children = BTreeSet::new();
        for ns in [CLUSTER_PREFIX, KEYS_PREFIX] {
            nodes.insert(ns.to_string(), new_dir(0, None));
            root_children.insert(ns[1..].to_string());
        }
        nodes.insert(
            "/".to_string(),
            Node {
                created_index: 0,
                modified_index: 0,
                expire_time: None,
                kind: Kind::Dir(root_children),
            },
        );
        V2Store {
            nodes,
            current_index: 0,
            ttl_keys: BTreeSet::new(),
            history: EventHistory::default(),
            hub: Arc::new(Mutex::new(WatcherHub::default())),
            stats: StoreStats::default(),
        }
    }

    /// The global index (`X-Etcd-Index`): incremented by every change.
    pub fn index(&self) -> u64 {
        self.current_index
    }

    /// Whether some node has a TTL (the leader only proposes expiry SYNCs then).
    pub fn has_ttl_keys(&self) -> bool {
        !self.ttl_keys.is_empty()
    }

    /// The earliest expiration of any node, unix nanoseconds.
    pub fn next_expiration(&self) -> Option<i64> {
        self.ttl_keys.first().map(|(t, _)| *t)
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// Number of registered watchers.
    pub fn watcher_count(&self) -> u64 {
        self.hub.lock().count
    }

    /// The value of the file at `path`, if there is one; not counted in the stats (for
    /// checks made while applying, which etcd does not make).
    pub fn peek_file(&self, path: &str) -> Option<&str> {
        let path = clean(&join(&["/", path]));
        match &self.nodes.get(&path)?.kind {
            Kind::File(v) => Some(v),
            Kind::Dir(_) => None,
        }
    }

    /// `/v2/stats/store`: etcd's field names and order.
    pub fn stats_json(&self) -> String {
        let s = &self.stats;
        let fields: [(&str, u64); 16] = [
            ("getsSuccess", s.gets_success.load(Ordering::Relaxed)),
            ("getsFail", s.gets_fail.load(Ordering::Relaxed)),
            ("setsSuccess", s.sets_success.load(Ordering::Relaxed)),
            ("setsFail", s.sets_fail.load(Ordering::Relaxed)),
            ("deleteSuccess", s.delete_success.load(Ordering::Relaxed)),
            ("deleteFail", s.delete_fail.load(Ordering::Relaxed)),
            ("updateSuccess", s.update_success.load(Ordering::Relaxed)),
            ("updateFail", s.update_fail.load(Ordering::Relaxed)),
            ("createSuccess", s.create_success.load(Ordering::Relaxed)),
            ("createFail", s.create_fail.load(Ordering::Relaxed)),
            (
                "compareAndSwapSuccess",
                s.compare_and_swap_success.load(Ordering::Relaxed),
            ),
            (
                "compareAndSwapFail",
                s.compare_and_swap_fail.load(Ordering::Relaxed),
            ),
            (
                "compareAndDeleteSuccess",
                s.compare_and_delete_success.load(Ordering::Relaxed),
            ),
            (
                "compareAndDeleteFail",
                s.compare_and_delete_fail.load(Ordering::Relaxed),
            ),
            ("expireCount", s.expire_count.load(Ordering::Relaxed)),
            ("watchers", self.watcher_count()),
        ];
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    }

    fn is_read_only(path: &str) -> bool {
        path == "/" || path == CLUSTER_PREFIX || path == KEYS_PREFIX
    }

    fn node(&self, path: &str) -> &Node {
        &self.nodes[path]
    }

    fn node_mut(&mut self, path: &str) -> &mut Node {
        self.nodes.get_mut(path).expect("node exists")
    }

    /// etcd's `internalGet`: the node at `path`, or the error its walk from the root hits
    /// (104 at a file on the way, 100 at the first missing name). Returns the clean path.
    fn internal_get(&self, path: &str) -> Result<String, V2Error> {
        let path = clean(&join(&["/", path]));
        if self.nodes.contains_key(&path) {
            return Ok(path);
        }
        // A node exists only under existing directories, so existence is monotone along the
        // ancestors: find the deepest existing one by bisection.
        let ends = prefix_ends(&path);
        let (mut lo, mut hi) = (0usize, ends.len());
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.nodes.contains_key(&prefix(&path, &ends, mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let deepest = prefix(&path, &ends, lo);
        if self.node(&deepest).is_dir() {
            Err(V2Error::new(
                ecode::KEY_NOT_FOUND,
                prefix(&path, &ends, lo + 1),
                self.current_index,
            ))
        } else {
            Err(V2Error::new(ecode::NOT_DIR, deepest, self.current_index))
        }
    }

    /// etcd's `walk(dirName, checkDir)`: makes `dir` and its missing ancestors directories
    /// (created at the next index), or fails with 104 at the first file on the way.
    fn ensure_dir(&mut self, dir: &str) -> Result<(), V2Error> {
        let dir = clean(dir);
        if self.nodes.get(&dir).is_some_and(|n| n.is_dir()) {
            return Ok(());
        }
        let ends = prefix_ends(&dir);
        let (mut lo, mut hi) = (0usize, ends.len() + 1);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.nodes.contains_key(&prefix(&dir, &ends, mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let deepest = prefix(&dir, &ends, lo);
        if !self.node(&deepest).is_dir() {
            return Err(V2Error::new(ecode::NOT_DIR, deepest, self.current_index));
        }
        let next = self.current_index + 1;
        let mut parent = deepest;
        for k in lo + 1..=ends.len() {
            let path = prefix(&dir, &ends, k);
            self.attach(&parent, &path, new_dir(next, None));
            parent = path;
        }
        Ok(())
    }

    fn attach(&mut self, parent: &str, path: &str, node: Node) {
        if let Kind::Dir(children) = &mut self.node_mut(parent).kind {
            children.insert(split(path).1.to_string());
        }
        if let Some(t) = node.expire_time {
            self.ttl_keys.insert((t, path.to_string()));
        }
        self.nodes.insert(path.to_string(), node);
    }

    /// Removes `path` and everything under it; returns the removed paths children first
    /// (the order etcd notifies deleted watchers in).
    fn remove_subtree(&mut self, path: &str) -> Vec<String> {
        let parent = clean(split(path).0);
        if let Some(Kind::Dir(children)) = self.nodes.get_mut(&parent).map(|n| &mut n.kind) {
            children.remove(split(path).1);
        }
        let mut removed = Vec::new();
        let mut stack = vec![(path.to_string(), false)];
        while let Some((p, expanded)) = stack.pop() {
            let is_dir = self.node(&p).is_dir();
            if is_dir && !expanded {
                stack.push((p.clone(), true));
                if let Kind::Dir(children) = &self.node(&p).kind {
                    for c in children.iter().rev() {
                        stack.push((join(&[&p, c]), false));
                    }
                }
                continue;
            }
            let node = self.nodes.remove(&p).expect("node exists");
            if let Some(t) = node.expire_time {
                self.ttl_keys.remove(&(t, p.clone()));
            }
            removed.push(p);
        }
        removed
    }

    /// etcd's `node.Remove(dir, recursive)`.
    fn remove(&mut self, path: &str, dir: bool, recursive: bool) -> Result<Vec<String>, V2Error> {
        if let Kind::Dir(children) = &self.node(path).kind {
            if !dir {
                return Err(V2Error::new(ecode::NOT_FILE, path, self.current_index));
            }
            if !children.is_empty() && !recursive {
                return Err(V2Error::new(ecode::DIR_NOT_EMPTY, path, self.current_index));
            }
        }
        Ok(self.remove_subtree(path))
    }

    fn visible_children(&self, path: &str) -> Vec<String> {
        match &self.node(path).kind {
            Kind::Dir(children) => children
                .iter()
                .filter(|c| !c.starts_with('_'))
                .map(|c| join(&[path, c]))
                .collect(),
            Kind::File(_) => Vec::new(),
        }
    }

    /// etcd's `node.Repr(recursive, sorted)`, without recursion.
    fn repr(&self, path: &str, recursive: bool, sorted: bool, now: i64) -> NodeExtern {
        let node = self.node(path);
        if !recursive || !node.is_dir() {
            return node.shallow(path, now);
        }
        struct Frame {
            ext: NodeExtern,
            children: Vec<String>,
            next: usize,
        }
        let open = |p: &str| {
            let mut ext = self.node(p).shallow(p, now);
            ext.nodes = Some(Vec::new());
            Frame {
                ext,
                children: self.visible_children(p),
                next: 0,
            }
        };
        let mut stack = vec![open(path)];
        loop {
            let top = stack.last_mut().expect("non-empty");
            if top.next < top.children.len() {
                let child = top.children[top.next].clone();
                top.next += 1;
                if self.node(&child).is_dir() {
                    stack.push(open(&child));
                } else {
                    let ext = self.node(&child).shallow(&child, now);
                    top.ext.nodes.get_or_insert_with(Vec::new).push(ext);
                }
                continue;
            }
            let mut done = stack.pop().expect("non-empty");
            if sorted {
                if let Some(n) = done.ext.nodes.as_mut() {
                    n.sort_by(|a, b| a.key.cmp(&b.key));
                }
            }
            match stack.last_mut() {
                None => return std::mem::take(&mut done.ext),
                Some(parent) => parent
                    .ext
                    .nodes
                    .get_or_insert_with(Vec::new)
                    .push(std::mem::take(&mut done.ext)),
            }
        }
    }

    /// etcd's `loadInternalNode`: a file with its value, a directory with its (visible)
    /// children, expanded further when `recursive`.
    fn load(&self, key: &str, path: &str, recursive: bool, sorted: bool, now: i64) -> NodeExtern {
        let node = self.node(path);
        let mut ext = NodeExtern::new(key, node.modified_index, node.created_index);
        match &node.kind {
            Kind::File(v) => ext.value = Some(v.clone()),
            Kind::Dir(_) => {
                ext.dir = true;
                let mut nodes: Vec<NodeExtern> = self
                    .visible_children(path)
                    .iter()
                    .map(|c| self.repr(c, recursive, sorted, now))
                    .collect();
                if sorted {
                    nodes.sort_by(|a, b| a.key.cmp(&b.key));
                }
                ext.nodes = Some(nodes);
            }
        }
        (ext.expiration, ext.ttl) = node.expiration_and_ttl(now);
        ext
    }

    /// Reads `path`: a file, or a directory listing (`recursive` expands subdirectories,
    /// `sorted` orders by key). Hidden (`_`) children are left out.
    pub fn get(
        &self,
        path: &str,
        recursive: bool,
        sorted: bool,
        now: i64,
    ) -> Result<Event, V2Error> {
        let r = self.internal_get(path).map(|clean_path| {
            let node = self.node(&clean_path);
            let mut e = Event::new(Action::Get, path, node.modified_index, node.created_index);
            e.etcd_index = self.current_index;
            e.node = Some(self.load(path, &clean_path, recursive, sorted, now));
            e
        });
        count_read(
            recursive,
            &r,
            &self.stats.gets_success,
            &self.stats.gets_fail,
        );
        r
    }

    /// Creates `path`, which must not exist (`prevExist=false`), or with `unique` a new
    /// in-order child of `path` named by the next index, zero-padded to 20 digits (POST).
    pub fn create(
        &mut self,
        path: &str,
        dir: bool,
        value: &str,
        unique: bool,
        expire_time: Option<i64>,
        now: i64,
    ) -> Result<Event, V2Error> {
        let r = self
            .internal_create(
                path,
                dir,
                value,
                unique,
                false,
                expire_time,
                Action::Create,
                now,
            )
            .map(|mut e| {
                e.etcd_index = self.current_index;
                self.notify(Arc::new(e.clone()));
                e
            });
        count(
            Action::Create,
            &r,
            &self.stats.create_success,
            &self.stats.create_fail,
        );
        r
    }

    /// Creates or replaces the file (or creates the directory) at `path`. With `refresh`
    /// the existing value is kept and watchers are not told.
    pub fn set(
        &mut self,
        path: &str,
        dir: bool,
        value: &str,
        expire_time: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event, V2Error> {
        let r = self.set_inner(path, dir, value, expire_time, refresh, now);
        count(
            Action::Set,
            &r,
            &self.stats.sets_success,
            &self.stats.sets_fail,
        );
        r
    }

    fn set_inner(
        &mut self,
        path: &str,
        dir: bool,
        value: &str,
        expire_time: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event, V2Error> {
        let existing = match self.internal_get(path) {
            Ok(p) => Some(p),
            Err(e) if e.code == ecode::KEY_NOT_FOUND => {
                if refresh {
                    return Err(e);
                }
                None
            }
            Err(e) => return Err(e),
        };
        let mut value = value.to_string();
        let mut prev = None;
        if let Some(p) = &existing {
            if refresh {
                value = self.node(p).value().to_string();
            }
            prev = Some(self.load(path, p, false, false, now));
        }
        let mut e = self.internal_create(
            path,
            dir,
            &value,
            false,
            true,
            expire_time,
            Action::Set,
            now,
        )?;
        e.etcd_index = self.current_index;
        if prev.is_some() {
            e.prev_node = prev;
        }
        self.notify_or_record(&mut e, refresh);
        Ok(e)
    }

    #[allow(clippy::too_many_arguments)]
    fn internal_create(
        &mut self,
        path: &str,
        dir: bool,
        value: &str,
        unique: bool,
        replace: bool,
        expire_time: Option<i64>,
        action: Action,
        now: i64,
    ) -> Result<Event, V2Error> {
        let curr_index = self.current_index;
        let next_index = curr_index + 1;
        let mut path = path.to_string();
        if unique {
            path = format!("{path}/{next_index:020}");
        }
        let path = clean(&join(&["/", &path]));
        if Self::is_read_only(&path) {
            return Err(V2Error::new(ecode::ROOT_READ_ONLY, "/", curr_index));
        }
        let expire_time = expire_time.filter(|t| *t >= MIN_EXPIRE_NANOS);
        let dir_name = split(&path).0.to_string();
        // Check before creating missing parents: an existing node means they all exist.
        let mut e = Event::new(action, &path, next_index, next_index);
        if let Some(existing) = self.nodes.get(&path) {
            if !replace {
                return Err(V2Error::new(ecode::NODE_EXIST, path, curr_index));
            }
            if existing.is_dir() {
                return Err(V2Error::new(ecode::NOT_FILE, path, curr_index));
            }
        }
        if let Err(mut err) = self.ensure_dir(&dir_name) {
            self.stats.sets_fail.fetch_add(1, Ordering::Relaxed);
            err.index = curr_index;
            return Err(err);
        }
        if self.nodes.contains_key(&path) {
            e.prev_node = Some(self.node(&path).shallow(&path, now));
            self.remove_subtree(&path);
        }
        let node = if dir {
            e.node_mut().dir = true;
            new_dir(next_index, expire_time)
        } else {
            e.node_mut().value = Some(value.to_string());
            Node {
                created_index: next_index,
                modified_index: next_index,
                expire_time,
                kind: Kind::File(value.to_string()),
            }
        };
        if expire_time.is_some() {
            let n = e.node_mut();
            (n.expiration, n.ttl) = node.expiration_and_ttl(now);
        }
        let parent = clean(&dir_name);
        self.attach(&parent, &path, node);
        self.current_index = next_index;
        Ok(e)
    }

    /// Changes an existing node: a file's value and TTL, or a directory's TTL (a directory
    /// cannot take a non-empty value). `expire_time: None` makes it permanent.
    pub fn update(
        &mut self,
        path: &str,
        value: &str,
        expire_time: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event, V2Error> {
        let r = self.update_inner(path, value, expire_time, refresh, now);
        count_as_etcd(
            Action::Update,
            &r,
            &self.stats.update_success,
            &self.stats.update_fail,
            &[ecode::ROOT_READ_ONLY, ecode::NOT_FILE],
        );
        r
    }

    fn update_inner(
        &mut self,
        path: &str,
        value: &str,
        expire_time: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event, V2Error> {
        let path = clean(&join(&["/", path]));
        if Self::is_read_only(&path) {
            return Err(V2Error::new(ecode::ROOT_READ_ONLY, "/", self.current_index));
        }
        let next_index = self.current_index + 1;
        let path = self.internal_get(&path)?;
        let node = self.node(&path);
        if node.is_dir() && !value.is_empty() {
            return Err(V2Error::new(ecode::NOT_FILE, path, self.current_index));
        }
        let value = if refresh {
            node.value().to_string()
        } else {
            value.to_string()
        };
        let mut e = Event::new(Action::Update, &path, next_index, node.created_index);
        e.etcd_index = next_index;
        e.prev_node = Some(node.shallow(&path, now));
        let is_dir = node.is_dir();
        {
            let node = self.node_mut(&path);
            // etcd's node.Write fails on a directory, so a directory keeps its modifiedIndex.
            if let Kind::File(v) = &mut node.kind {
                *v = value.clone();
                node.modified_index = next_index;
            }
        }
        if is_dir {
            e.node_mut().dir = true;
        } else {
            e.node_mut().value = Some(value);
        }
        self.update_ttl(&path, expire_time);
        let (exp, ttl) = self.node(&path).expiration_and_ttl(now);
        (e.node_mut().expiration, e.node_mut().ttl) = (exp, ttl);
        self.notify_or_record(&mut e, refresh);
        self.current_index = next_index;
        Ok(e)
    }

    fn update_ttl(&mut self, path: &str, expire_time: Option<i64>) {
        let node = self.node_mut(path);
        let old = std::mem::replace(&mut node.expire_time, expire_time);
        if let Some(t) = old {
            self.ttl_keys.remove(&(t, path.to_string()));
        }
        if let Some(t) = expire_time {
            self.ttl_keys.insert((t, path.to_string()));
        }
    }

    /// Replaces a file's value if `prev_value` (when non-empty) and `prev_index` (when
    /// non-zero) match it.
    #[allow(clippy::too_many_arguments)]
    pub fn compare_and_swap(
        &mut self,
        path: &str,
        prev_value: &str,
        prev_index: u64,
        value: &str,
        expire_time: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event, V2Error> {
        let r = self.cas_inner(
            path,
            prev_value,
            prev_index,
            value,
            expire_time,
            refresh,
            now,
        );
        count_as_etcd(
            Action::CompareAndSwap,
            &r,
            &self.stats.compare_and_swap_success,
            &self.stats.compare_and_swap_fail,
            &[ecode::ROOT_READ_ONLY],
        );
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn cas_inner(
        &mut self,
        path: &str,
        prev_value: &str,
        prev_index: u64,
        value: &str,
        expire_time: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event, V2Error> {
        let path = clean(&join(&["/", path]));
        if Self::is_read_only(&path) {
            return Err(V2Error::new(ecode::ROOT_READ_ONLY, "/", self.current_index));
        }
        let path = self.internal_get(&path)?;
        let node = self.node(&path);
        if node.is_dir() {
            return Err(V2Error::new(ecode::NOT_FILE, path, self.current_index));
        }
        let which = compare(node, prev_value, prev_index);
        if !matches!(which, Compare::Match) {
            let cause = compare_fail_cause(node, which, prev_value, prev_index);
            return Err(V2Error::new(ecode::TEST_FAILED, cause, self.current_index));
        }
        let value = if refresh {
            node.value().to_string()
        } else {
            value.to_string()
        };
        let created_index = node.created_index;
        let prev = node.shallow(&path, now);
        self.current_index += 1;
        let index = self.current_index;
        let mut e = Event::new(Action::CompareAndSwap, &path, index, created_index);
        e.etcd_index = index;
        e.prev_node = Some(prev);
        {
            let node = self.node_mut(&path);
            node.kind = Kind::File(value.clone());
            node.modified_index = index;
        }
        self.update_ttl(&path, expire_time);
        let (exp, ttl) = self.node(&path).expiration_and_ttl(now);
        let n = e.node_mut();
        n.value = Some(value);
        (n.expiration, n.ttl) = (exp, ttl);
        self.notify_or_record(&mut e, refresh);
        Ok(e)
    }

    /// Deletes a file, an empty directory (`dir`), or a directory and everything under it
    /// (`recursive`, which implies `dir`).
    pub fn delete(
        &mut self,
        path: &str,
        dir: bool,
        recursive: bool,
        now: i64,
    ) -> Result<Event, V2Error> {
        let r = self.delete_inner(path, dir || recursive, recursive, now);
        count_as_etcd(
            Action::Delete,
            &r,
            &self.stats.delete_success,
            &self.stats.delete_fail,
            &[ecode::ROOT_READ_ONLY],
        );
        r
    }

    fn delete_inner(
        &mut self,
        path: &str,
        dir: bool,
        recursive: bool,
        now: i64,
    ) -> Result<Event, V2Error> {
        let path = clean(&join(&["/", path]));
        if Self::is_read_only(&path) {
            return Err(V2Error::new(ecode::ROOT_READ_ONLY, "/", self.current_index));
        }
        let path = self.internal_get(&path)?;
        let node = self.node(&path);
        let next_index = self.current_index + 1;
        let mut e = Event::new(Action::Delete, &path, next_index, node.created_index);
        e.etcd_index = next_index;
        e.prev_node = Some(node.shallow(&path, now));
        if node.is_dir() {
            e.node_mut().dir = true;
        }
        let removed = self.remove(&path, dir, recursive)?;
        self.current_index += 1;
        let e = Arc::new(e);
        for p in &removed {
            self.notify_watchers(&e, p, true);
        }
        self.notify(e.clone());
        Ok(Arc::unwrap_or_clone(e))
    }

    /// Deletes a file if `prev_value` (when non-empty) and `prev_index` (when non-zero)
    /// match it.
    pub fn compare_and_delete(
        &mut self,
        path: &str,
        prev_value: &str,
        prev_index: u64,
        now: i64,
    ) -> Result<Event, V2Error> {
        let r = self.cad_inner(path, prev_value, prev_index, now);
        count_as_etcd(
            Action::CompareAndDelete,
            &r,
            &self.stats.compare_and_delete_success,
            &self.stats.compare_and_delete_fail,
            &[ecode::NOT_FILE, ecode::TEST_FAILED],
        );
        r
    }

    fn cad_inner(
        &mut self,
        path: &str,
        prev_value: &str,
        prev_index: u64,
        now: i64,
    ) -> Result<Event, V2Error> {
        let path = self.internal_get(path)?;
        let node = self.node(&path);
        if node.is_dir() {
            return Err(V2Error::new(ecode::NOT_FILE, path, self.current_index));
        }
        let which = compare(node, prev_value, prev_index);
        if !matches!(which, Compare::Match) {
            let cause = compare_fail_cause(node, which, prev_value, prev_index);
            return Err(V2Error::new(ecode::TEST_FAILED, cause, self.current_index));
        }
        let created_index = node.created_index;
        let prev = node.shallow(&path, now);
        self.current_index += 1;
        let index = self.current_index;
        let mut e = Event::new(Action::CompareAndDelete, &path, index, created_index);
        e.etcd_index = index;
        e.prev_node = Some(prev);
        let removed = self.remove_subtree(&path);
        let e = Arc::new(e);
        for p in &removed {
            self.notify_watchers(&e, p, true);
        }
        self.notify(e.clone());
        Ok(Arc::unwrap_or_clone(e))
    }

    /// Expires every node whose expiration is not after `cutoff` (unix nanoseconds), soonest
    /// first, each as an `expire` event at its own index. This is what a replicated SYNC
    /// does; `cutoff` is the proposer's clock, so every member expires the same nodes.
    pub fn delete_expired_keys(&mut self, cutoff: i64) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some((t, path)) = self.ttl_keys.first().cloned() {
            if t > cutoff {
                break;
            }
            self.current_index += 1;
            let index = self.current_index;
            let node = self.node(&path);
            let mut e = Event::new(Action::Expire, &path, index, node.created_index);
            e.etcd_index = index;
            e.prev_node = Some(node.shallow(&path, cutoff));
            if node.is_dir() {
                e.node_mut().dir = true;
            }
            let removed = self.remove_subtree(&path);
            self.stats.expire_count.fetch_add(1, Ordering::Relaxed);
            chorus_metrics::STORE_EXPIRES.inc();
            let e = Arc::new(e);
            for p in &removed {
                self.notify_watchers(&e, p, true);
            }
            self.notify(e.clone());
            events.push(Arc::unwrap_or_clone(e));
        }
        events
    }

    /// A refresh is only recorded (etcd's `WatcherHub.add`); anything else is announced.
    fn notify_or_record(&mut self, e: &mut Event, refresh: bool) {
        if refresh {
            e.refresh = true;
            self.history.add(Arc::new(e.clone()));
        } else {
            self.notify(Arc::new(e.clone()));
        }
    }

    /// Records `e` and tells the watchers on every ancestor of its key (and the key).
    fn notify(&mut self, e: Arc<Event>) {
        self.history.add(e.clone());
        let key = e.key().to_string();
        let mut curr = "/".to_string();
        for seg in key.split('/') {
            curr = join(&[&curr, seg]);
            self.notify_watchers(&e, &curr, false);
        }
    }

    /// etcd's `notifyWatchers`: the watchers registered at `node_path`. `deleted` marks a
    /// path removed by the event, whose watchers hear of it even if not recursive.
    fn notify_watchers(&self, e: &Arc<Event>, node_path: &str, deleted: bool) {
        let mut hub = self.hub.lock();
        let Some(list) = hub.watchers.get_mut(node_path) else {
            return;
        };
        let key = e.key();
        let original = key == node_path;
        let before = list.len();
        list.retain(|w| {
            if !original && is_hidden(node_path, key) {
                return true;
            }
            if !((w.recursive || original || deleted) && e.index() >= w.since_index) {
                return true;
            }
            // A watcher that cannot keep up is dropped, which ends its channel.
            let delivered = w.tx.try_send(e.clone()).is_ok();
            delivered && w.stream
        });
        let removed = (before - list.len()) as u64;
        if list.is_empty() {
            hub.watchers.remove(node_path);
        }
        hub.count -= removed;
    }

    /// Watches `path` (and below it when `recursive`) for the first event at or after
    /// `since_index` (0 = the next one); `stream` keeps watching after that. Fails with 401
    /// when `since_index` is older than the history.
    pub fn watch(
        &self,
        path: &str,
        recursive: bool,
        stream: bool,
        since_index: u64,
    ) -> Result<Watcher, V2Error> {
        chorus_metrics::STORE_WATCH_REQUESTS.inc();
        let key = clean(&join(&["/", path]));
        let since_index = if since_index == 0 {
            self.current_index + 1
        } else {
            since_index
        };
        let found = self
            .history
            .scan(&key, recursive, since_index)
            .map_err(|mut e| {
                e.index = self.current_index;
                e
            })?;
        let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
        if let Some(e) = found {
            let mut e = (*e).clone();
            e.etcd_index = self.current_index;
            tx.try_send(Arc::new(e)).expect("fresh channel has room");
            return Ok(Watcher {
                rx,
                start_index: self.current_index,
                registration: None,
                _idle: Some(tx),
            });
        }
        let mut hub = self.hub.lock();
        hub.next_id += 1;
        let id = hub.next_id;
        hub.watchers
            .entry(key.clone())
            .or_default()
            .push(WatcherEntry {
                id,
                recursive,
                stream,
                since_index,
                tx,
            });
        hub.count += 1;
        Ok(Watcher {
            rx,
            start_index: self.current_index,
            registration: Some((self.hub.clone(), key, id)),
            _idle: None,
        })
    }

    /// The replicated state (tree, index, event history) in a stable encoding (JSON), for
    /// snapshots. Watchers and counters are not part of it.
    pub fn save(&self) -> Vec<u8> {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut stack = vec!["/".to_string()];
        while let Some(p) = stack.pop() {
            let n = self.node(&p);
            if let Kind::Dir(children) = &n.kind {
                for c in children.iter().rev() {
                    stack.push(join(&[&p, c]));
                }
            }
            nodes.push(SavedNode {
                path: p.clone(),
                created_index: n.created_index,
                modified_index: n.modified_index,
                expire_time: n.expire_time,
                value: match &n.kind {
                    Kind::File(v) => Some(v.clone()),
                    Kind::Dir(_) => None,
                },
            });
        }
        let saved = Saved {
            version: SNAPSHOT_VERSION,
            current_index: self.current_index,
            nodes,
            history: SavedHistory {
                start_index: self.history.start_index,
                last_index: self.history.last_index,
                events: self.history.events.iter().map(|e| (**e).clone()).collect(),
            },
        };
        serde_json::to_vec(&saved).expect("v2 store state serializes")
    }

    /// Replaces the state with one from [`V2Store::save`]. Registered watchers stay (as in
    /// etcd); counters are kept.
    pub fn recover(&mut self, data: &[u8]) -> Result<(), RecoverError> {
        let saved: Saved = serde_json::from_slice(data)?;
        if saved.version != SNAPSHOT_VERSION {
            return Err(RecoverError::Version(saved.version));
        }
        self.restore(saved)
    }

    /// A store holding `nodes` (every directory before its children) at `current_index`,
    /// with no event history yet: a tree carried over from etcd.
    pub fn from_tree(current_index: u64, nodes: Vec<SavedNode>) -> Result<V2Store, RecoverError> {
        let mut store = V2Store::new();
        store.restore(Saved {
            version: SNAPSHOT_VERSION,
            current_index,
            nodes,
            history: SavedHistory {
                start_index: current_index,
                last_index: current_index,
                events: Vec::new(),
            },
        })?;
        Ok(store)
    }

    fn restore(&mut self, saved: Saved) -> Result<(), RecoverError> {
        let mut nodes: HashMap<String, Node> = HashMap::with_capacity(saved.nodes.len());
        let mut ttl_keys = BTreeSet::new();
        for n in saved.nodes {
            let path = clean(&n.path);
            if path != n.path || nodes.contains_key(&path) {
                return Err(RecoverError::Corrupt(format!("bad node path {:?}", n.path)));
            }
            if path != "/" {
                let parent = clean(split(&path).0);
                match nodes.get_mut(&parent).map(|p| &mut p.kind) {
                    Some(Kind::Dir(children)) => {
                        children.insert(split(&path).1.to_string());
                    }
                    _ => {
                        return Err(RecoverError::Corrupt(format!(
                            "node {path} has no parent directory"
                        )))
                    }
                }
            } else if n.value.is_some() {
                return Err(RecoverError::Corrupt("root is not a directory".into()));
            }
            if let Some(t) = n.expire_time {
                ttl_keys.insert((t, path.clone()));
            }
            nodes.insert(
                path,
                Node {
                    created_index: n.created_index,
                    modified_index: n.modified_index,
                    expire_time: n.expire_time,
                    kind: match n.value {
                        Some(v) => Kind::File(v),
                        None => Kind::Dir(BTreeSet::new()),
                    },
                },
            );
        }
        if !nodes.get("/").is_some_and(|n| n.is_dir()) {
            return Err(RecoverError::Corrupt("no root directory".into()));
        }
        self.nodes = nodes;
        self.ttl_keys = ttl_keys;
        self.current_index = saved.current_index;
        self.history = EventHistory {
            events: saved.history.events.into_iter().map(Arc::new).collect(),
            start_index: saved.history.start_index,
            last_index: saved.history.last_index,
        };
        Ok(())
    }
}

/// Why [`V2Store::recover`] refused its input.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("v2 store snapshot is not valid JSON: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("v2 store snapshot has unknown version {0}")]
    Version(u32),
    #[error("v2 store snapshot is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    current_index: u64,
    /// Pre-order: every directory before its children.
    nodes: Vec<SavedNode>,
    history: SavedHistory,
}

/// A node as snapshots keep it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedNode {
    pub path: String,
    pub created_index: u64,
    pub modified_index: u64,
    /// Absolute expiration, unix nanoseconds; `None`: permanent.
    pub expire_time: Option<i64>,
    /// `None` for a directory.
    pub value: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SavedHistory {
    start_index: u64,
    last_index: u64,
    events: Vec<Event>,
}
