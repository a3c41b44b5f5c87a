//! The v2v3 store's writes, each one v3 txn as etcd builds it. `set` and `create` read
//! first and commit only if nothing they read changed (etcd runs them in a serializable
//! STM), retrying a bounded number of times.

use chorus_api::etcdserverpb::compare::CompareResult;
use chorus_api::etcdserverpb::{Compare, RequestOp, TxnResponse};
use chorus_api::mvccpb::KeyValue;

use super::layout::{is_root, parents, v2_rev, v3_rev, MAX_PATH_DEPTH};
use super::ops;
use super::store::{event, V3Store};
use crate::v2::format::{clean, join, rfc3339_nano};
use crate::v2::{ecode, Action, Event, Method, V2Error, V2Request};

/// Attempts of a read-then-commit write before it gives up.
const STM_RETRIES: usize = 32;

/// What a read-then-commit write saw: each key's value and mod revision (0: missing).
struct Reads(Vec<(String, i64)>);

impl Reads {
    fn rev(&self, key: &str) -> i64 {
        self.0.iter().find(|(k, _)| k == key).map_or(0, |(_, r)| *r)
    }
}

fn unsupported() -> V2Error {
    V2Error::raft_internal("TTLs are unsupported")
}

fn root_only(node_path: &str) -> V2Error {
    V2Error::new(ecode::ROOT_READ_ONLY, node_path, 0)
}

/// Go's `fmt.Sprintf("%020s", time.Now())` in UTC, with the monotonic reading of this
/// process (`m=+<seconds>`), as etcd names a POSTed key.
fn unique_name() -> String {
    let start = *super::store::PROCESS_START.get_or_init(std::time::Instant::now);
    let now = crate::v2::request::unix_nanos(std::time::SystemTime::now());
    let wall = rfc3339_nano(now).replacen('T', " ", 1).replace('Z', "");
    let m = start.elapsed();
    format!(
        "{wall} +0000 UTC m=+{}.{:09}",
        m.as_secs(),
        m.subsec_nanos()
    )
}

impl V3Store {
    /// A POST/PUT/DELETE as etcd's v2 applier dispatches it.
    pub async fn write(&self, r: &V2Request) -> Result<Event, V2Error> {
        let ttl = r.expiration != 0 || r.refresh;
        let cas = r.prev_index > 0 || !r.prev_value.is_empty();
        let p = r.path.as_str();
        match r.method() {
            Method::Post => self.create(p, r.dir, &r.val, true, ttl).await,
            Method::Put => match r.prev_exist {
                Some(true) if !cas => self.update(p, &r.val, ttl).await,
                Some(false) => self.create(p, r.dir, &r.val, false, ttl).await,
                _ if cas => self.compare_and_swap(r, ttl).await,
                _ => self.set(p, r.dir, &r.val, ttl).await,
            },
            Method::Delete if cas => self.compare_and_delete(r).await,
            Method::Delete => self.delete(p, r.dir, r.recursive).await,
            _ => Err(V2Error::raft_internal("etcdserver: unknown method")),
        }
    }

    /// Reads `keys`, lets `decide` pick the writes (or an error code), and commits them if
    /// none of the keys changed meanwhile.
    async fn stm(
        &self,
        node_path: &str,
        keys: Vec<String>,
        decide: impl Fn(&Reads) -> Result<Vec<RequestOp>, u32>,
    ) -> Result<TxnResponse, V2Error> {
        for _ in 0..STM_RETRIES {
            let gets = keys.iter().map(|k| ops::get(k)).collect();
            let read = self.txn(Vec::new(), gets, Vec::new()).await?;
            let revs = (0..keys.len()).map(|i| {
                ops::range_kvs(&read, i)
                    .first()
                    .map_or(0, |kv| kv.mod_revision)
            });
            let reads = Reads(keys.iter().cloned().zip(revs).collect());
            let puts = decide(&reads)
                .map_err(|code| V2Error::new(code, node_path, v2_rev(ops::revision(&read))))?;
            let cmps = reads
                .0
                .iter()
                .map(|(k, rev)| ops::mod_revision_is(k, *rev))
                .collect();
            let resp = self.txn(cmps, puts, Vec::new()).await?;
            if resp.succeeded {
                return Ok(resp);
            }
        }
        Err(V2Error::raft_internal("etcdserver: request timed out"))
    }

    /// Puts an empty directory key for every missing parent; `NOT_DIR` if one is a file.
    fn missing_dirs(&self, reads: &Reads, node_path: &str) -> Result<Vec<RequestOp>, u32> {
        let mut puts = Vec::new();
        for p in parents(node_path) {
            let pp = self.layout.path(&p);
            if reads.rev(&pp) > 0 {
                return Err(ecode::NOT_DIR);
            }
            if reads.rev(&format!("{pp}/")) == 0 {
                puts.push(ops::put(&format!("{pp}/"), "", false));
            }
        }
        Ok(puts)
    }

    /// The keys a write at `node_path` reads: its parents' and its own, as file and dir.
    fn keys_around(&self, node_path: &str, key: &str) -> Vec<String> {
        let mut keys = vec![key.to_string(), format!("{key}/")];
        for p in parents(node_path) {
            let pp = self.layout.path(&p);
            keys.push(format!("{pp}/"));
            keys.push(pp);
        }
        keys
    }

    async fn set(
        &self,
        node_path: &str,
        dir: bool,
        value: &str,
        ttl: bool,
    ) -> Result<Event, V2Error> {
        if ttl {
            return Err(unsupported());
        }
        if is_root(node_path) {
            return Err(root_only(node_path));
        }
        let key = self.layout.path(node_path);
        let act = self.layout.action_key();
        let resp = self
            .stm(node_path, self.keys_around(node_path, &key), |reads| {
                let mut puts = self.missing_dirs(reads, node_path)?;
                let target = match dir {
                    true if reads.rev(&key) != 0 => return Err(ecode::NOT_DIR),
                    true => format!("{key}/"),
                    false if reads.rev(&format!("{key}/")) != 0 => return Err(ecode::NOT_FILE),
                    false => key.clone(),
                };
                puts.push(ops::put(&target, value, true));
                puts.push(ops::put(&act, Action::Set.as_str(), false));
                Ok(puts)
            })
            .await?;
        let rev = ops::revision(&resp);
        let prev = ops::prev_kv_of_puts(&resp);
        let created = prev.map_or(rev, |kv| kv.create_revision);
        let node = self.written(node_path, (!dir).then_some(value), dir, rev, created);
        let prev = prev.map(|kv| self.layout.node(kv));
        Ok(event(Action::Set, Some(node), prev, rev))
    }

    async fn update(&self, node_path: &str, value: &str, ttl: bool) -> Result<Event, V2Error> {
        if is_root(node_path) {
            return Err(root_only(node_path));
        }
        if ttl {
            return Err(unsupported());
        }
        let key = self.layout.path(node_path);
        let act = self.layout.action_key();
        let keys = vec![format!("{key}/"), key.clone()];
        // etcd answers "Not a file" for a missing key too.
        let resp = self
            .stm(node_path, keys, |reads| {
                if reads.rev(&format!("{key}/")) != 0 || reads.rev(&key) == 0 {
                    return Err(ecode::NOT_FILE);
                }
                Ok(vec![
                    ops::put(&key, value, true),
                    ops::put(&act, Action::Update.as_str(), false),
                ])
            })
            .await?;
        self.replaced(Action::Update, node_path, Some(value), &resp)
    }

    /// The event of a write that replaced a key-value (update, compare-and-swap).
    fn replaced(
        &self,
        action: Action,
        node_path: &str,
        value: Option<&str>,
        resp: &TxnResponse,
    ) -> Result<Event, V2Error> {
        let rev = ops::revision(resp);
        let prev =
            ops::prev_kv_of_puts(resp).ok_or_else(|| V2Error::raft_internal("no previous key"))?;
        let node = self.written(node_path, value, false, rev, prev.create_revision);
        Ok(event(action, Some(node), Some(self.layout.node(prev)), rev))
    }

    fn written(
        &self,
        node_path: &str,
        value: Option<&str>,
        dir: bool,
        rev: i64,
        created: i64,
    ) -> crate::v2::NodeExtern {
        crate::v2::NodeExtern {
            key: node_path.to_string(),
            value: value.map(str::to_string),
            dir,
            expiration: None,
            ttl: 0,
            nodes: None,
            modified_index: v2_rev(rev),
            created_index: v2_rev(created),
        }
    }

    async fn create(
        &self,
        node_path: &str,
        dir: bool,
        value: &str,
        unique: bool,
        ttl: bool,
    ) -> Result<Event, V2Error> {
        if is_root(node_path) {
            return Err(root_only(node_path));
        }
        if ttl {
            return Err(unsupported());
        }
        let key = if unique {
            let name = format!("{node_path}/{}", unique_name());
            self.layout.path(&clean(&join(&["/", &name])))
        } else {
            self.layout.path(node_path)
        };
        let act = self.layout.action_key();
        let resp = self
            .stm(node_path, self.keys_around(node_path, &key), |reads| {
                if reads.rev(&key) > 0 || reads.rev(&format!("{key}/")) > 0 {
                    return Err(ecode::NODE_EXIST);
                }
                let mut puts = self.missing_dirs(reads, node_path)?;
                let target = if dir { format!("{key}/") } else { key.clone() };
                puts.push(ops::put(&target, value, false));
                puts.push(ops::put(&act, Action::Create.as_str(), false));
                Ok(puts)
            })
            .await?;
        let rev = ops::revision(&resp);
        let node = self.written(node_path, (!dir).then_some(value), dir, rev, rev);
        Ok(event(Action::Create, Some(node), None, rev))
    }

    /// etcd's `mkCompare`: the key exists, and has the index and value asked for.
    fn compares(&self, r: &V2Request) -> Vec<Compare> {
        let key = self.layout.path(&r.path);
        let mut cmps = vec![ops::version_is(&key, CompareResult::Greater, 0)];
        if r.prev_index != 0 {
            cmps.push(ops::mod_revision_is(&key, v3_rev(r.prev_index)));
        }
        if !r.prev_value.is_empty() {
            cmps.push(ops::value_is(&key, &r.prev_value));
        }
        cmps
    }

    /// A compare-and-swap or -delete: `then` if the compares hold, else why not.
    async fn compare_and(
        &self,
        r: &V2Request,
        then: RequestOp,
        action: Action,
    ) -> Result<TxnResponse, V2Error> {
        if is_root(&r.path) {
            return Err(root_only(&r.path));
        }
        let key = self.layout.path(&r.path);
        let success = vec![
            then,
            ops::put(&self.layout.action_key(), action.as_str(), false),
        ];
        let failure = vec![ops::get(&key), ops::get(&format!("{key}/"))];
        let resp = self.txn(self.compares(r), success, failure).await?;
        if !resp.succeeded {
            return Err(compare_failed(r, &resp));
        }
        Ok(resp)
    }

    async fn compare_and_swap(&self, r: &V2Request, ttl: bool) -> Result<Event, V2Error> {
        if !is_root(&r.path) && ttl {
            return Err(unsupported());
        }
        let put = ops::put(&self.layout.path(&r.path), &r.val, true);
        let resp = self.compare_and(r, put, Action::CompareAndSwap).await?;
        self.replaced(Action::CompareAndSwap, &r.path, Some(&r.val), &resp)
    }

    async fn compare_and_delete(&self, r: &V2Request) -> Result<Event, V2Error> {
        let del = ops::delete(&self.layout.path(&r.path), false);
        let resp = self.compare_and(r, del, Action::CompareAndDelete).await?;
        self.deleted(Action::CompareAndDelete, &r.path, &resp)
    }

    /// The event of a file's deletion (delete, compare-and-delete).
    fn deleted(
        &self,
        action: Action,
        node_path: &str,
        resp: &TxnResponse,
    ) -> Result<Event, V2Error> {
        let rev = ops::revision(resp);
        let Some(prev) = ops::deleted_kvs(resp, 0).first() else {
            return Err(V2Error::new(ecode::KEY_NOT_FOUND, node_path, v2_rev(rev)));
        };
        let node = self.written(node_path, None, false, rev, prev.create_revision);
        Ok(event(action, Some(node), Some(self.layout.node(prev)), rev))
    }

    async fn delete(&self, node_path: &str, dir: bool, recursive: bool) -> Result<Event, V2Error> {
        if is_root(node_path) {
            return Err(root_only(node_path));
        }
        let key = self.layout.path(node_path);
        let act = ops::put(&self.layout.action_key(), Action::Delete.as_str(), false);
        let dir_key = format!("{key}/");
        let (cmps, dels, refused) = if !dir && !recursive {
            let cmps = vec![ops::version_is(&dir_key, CompareResult::Equal, 0)];
            (cmps, vec![ops::delete(&key, false)], ecode::NOT_FILE)
        } else if !recursive {
            let cmps = vec![ops::none_under(&self.layout.path_depth(node_path, 1))];
            (
                cmps,
                vec![ops::delete(&dir_key, false)],
                ecode::DIR_NOT_EMPTY,
            )
        } else {
            let deepest = format!("{}/", self.layout.path_depth(node_path, MAX_PATH_DEPTH));
            let cmps = vec![
                ops::version_is(&dir_key, CompareResult::Greater, 0),
                ops::version_is(&deepest, CompareResult::Equal, 0),
            ];
            let mut dels = vec![ops::delete(&dir_key, false)];
            dels.extend(
                (1..MAX_PATH_DEPTH)
                    .map(|i| ops::delete(&self.layout.path_depth(node_path, i), true)),
            );
            (cmps, dels, ecode::NODE_EXIST)
        };
        let mut then = dels;
        then.push(act);
        let resp = self.txn(cmps, then, Vec::new()).await?;
        let rev = ops::revision(&resp);
        if !resp.succeeded {
            return Err(V2Error::new(refused, node_path, v2_rev(rev)));
        }
        if !dir && !recursive {
            return self.deleted(Action::Delete, node_path, &resp);
        }
        let Some(prev) = ops::deleted_kvs(&resp, 0).first() else {
            return Err(V2Error::new(ecode::NODE_EXIST, node_path, v2_rev(rev)));
        };
        Ok(event(
            Action::Delete,
            None,
            Some(self.layout.node(prev)),
            rev,
        ))
    }
}

/// etcd's `compareFail`: why a compare-and-swap or -delete did not hold.
fn compare_failed(r: &V2Request, resp: &TxnResponse) -> V2Error {
    let index = v2_rev(ops::revision(resp));
    if !ops::range_kvs(resp, 1).is_empty() {
        return V2Error::new(ecode::NOT_FILE, r.path.as_str(), index);
    }
    let Some(kv): Option<&KeyValue> = ops::range_kvs(resp, 0).first() else {
        return V2Error::new(ecode::KEY_NOT_FOUND, r.path.as_str(), index);
    };
    let value = String::from_utf8_lossy(&kv.value);
    let index_match = r.prev_index == 0 || kv.mod_revision == r.prev_index as i64;
    let value_match = r.prev_value.is_empty() || value == r.prev_value;
    let cause = match (index_match, value_match) {
        (true, false) => format!("[{} != {value}]", r.prev_value),
        (false, true) => format!("[{} != {}]", r.prev_index, kv.mod_revision),
        _ => format!(
            "[{} != {value}] [{} != {}]",
            r.prev_value, r.prev_index, kv.mod_revision
        ),
    };
    V2Error::new(ecode::TEST_FAILED, cause, index)
}

#[cfg(test)]
mod tests {
    use chorus_api::etcdserverpb::{response_op, RangeResponse, ResponseHeader, ResponseOp};

    use super::*;

    fn failed(file: Option<KeyValue>, dir: Option<KeyValue>) -> TxnResponse {
        let range = |kv: Option<KeyValue>| ResponseOp {
            response: Some(response_op::Response::ResponseRange(RangeResponse {
                kvs: kv.into_iter().collect(),
                ..Default::default()
            })),
        };
        TxnResponse {
            header: Some(ResponseHeader {
                revision: 8,
                ..Default::default()
            }),
            succeeded: false,
            responses: vec![range(file), range(dir)],
        }
    }

    fn request(prev_value: &str, prev_index: u64) -> V2Request {
        V2Request {
            path: "/1/k".into(),
            prev_value: prev_value.into(),
            prev_index,
            ..Default::default()
        }
    }

    #[test]
    fn compare_failures_read_as_etcds() {
        let kv = KeyValue {
            key: b"/v2//002/k//1/k".to_vec(),
            value: b"v".to_vec(),
            mod_revision: 5,
            ..Default::default()
        };
        let e = compare_failed(&request("x", 0), &failed(Some(kv.clone()), None));
        assert_eq!(
            (e.code, e.cause.as_str(), e.index),
            (ecode::TEST_FAILED, "[x != v]", 7)
        );
        let e = compare_failed(&request("", 3), &failed(Some(kv.clone()), None));
        assert_eq!(e.cause, "[3 != 5]");
        let e = compare_failed(&request("x", 3), &failed(Some(kv.clone()), None));
        assert_eq!(e.cause, "[x != v] [3 != 5]");
        let e = compare_failed(&request("x", 0), &failed(None, None));
        assert_eq!((e.code, e.cause.as_str()), (ecode::KEY_NOT_FOUND, "/1/k"));
        let e = compare_failed(&request("x", 0), &failed(None, Some(kv)));
        assert_eq!(e.code, ecode::NOT_FILE);
    }

    #[test]
    fn unique_names_are_gos_time_strings() {
        // e.g. "2026-12-06 19:22:22.082776332 +0000 UTC m=+11.566694835"
        let name = unique_name();
        let (wall, mono) = name
            .split_once(" +0000 UTC m=+")
            .expect("zone and monotonic");
        assert_eq!(
            (wall.as_bytes()[4], wall.as_bytes()[10]),
            (b'-', b' '),
            "{name}"
        );
        assert!(!wall.ends_with('0') || !wall.contains('.'), "{name}");
        let (secs, nanos) = mono.split_once('.').expect("seconds");
        assert!(secs.parse::<u64>().is_ok() && nanos.len() == 9, "{name}");
    }
}
