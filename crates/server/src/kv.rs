//! etcd's KV request semantics (Range, Put, DeleteRange, Txn) over the MVCC store: what
//! etcd's `applierV3backend` does. The same code serves reads on a pinned revision and
//! writes inside an apply batch.

use std::cmp::Ordering;

use chorus_api::etcdserverpb::{
    compare, range_request, request_op, response_op, Compare, DeleteRangeRequest,
    DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use chorus_api::mvccpb::KeyValue;
use chorus_storage::mvcc::{self, KvStore, RangeEnd, RangeOptions, RangeResult, Records, TxnWrite};

use crate::error::EtcdError;

/// Something ranges can be served from: a pinned revision of the store, or an etcd
/// transaction being applied (which sees its own writes).
pub trait KvView {
    /// The revision reads see when they ask for the current one.
    fn rev(&self) -> i64;
    fn compact_rev(&self) -> i64;
    fn range(&self, key: &[u8], end: RangeEnd<'_>, opts: RangeOptions)
        -> mvcc::Result<RangeResult>;
}

/// A read-only view of the store at one revision, so that every read of a read-only txn
/// sees the same state.
pub struct PinnedRead<'a> {
    store: &'a KvStore,
    rev: i64,
}

impl<'a> PinnedRead<'a> {
    pub fn new(store: &'a KvStore) -> Self {
        PinnedRead {
            rev: store.current_rev(),
            store,
        }
    }
}

impl KvView for PinnedRead<'_> {
    fn rev(&self) -> i64 {
        self.rev
    }

    fn compact_rev(&self) -> i64 {
        self.store.compact_rev()
    }

    fn range(
        &self,
        key: &[u8],
        end: RangeEnd<'_>,
        mut opts: RangeOptions,
    ) -> mvcc::Result<RangeResult> {
        if opts.rev > self.rev {
            return Err(mvcc::MvccError::FutureRev);
        }
        if opts.rev <= 0 {
            opts.rev = self.rev;
        }
        let mut r = self.store.range(key, end, opts)?;
        r.rev = self.rev;
        Ok(r)
    }
}

impl PinnedRead<'_> {
    /// A plain Range's records, read when sent ([`crate::range_body`]), and whether the
    /// limit left some out (`more`).
    pub fn records(&self, r: &RangeRequest) -> Result<(Records, bool), EtcdError> {
        chorus_metrics::RANGE_TOTAL.inc();
        if r.revision > self.rev {
            return Err(mvcc::MvccError::FutureRev.into());
        }
        let opts = RangeOptions {
            // One extra to learn whether there are more.
            limit: if r.limit > 0 { r.limit as usize + 1 } else { 0 },
            rev: if r.revision <= 0 {
                self.rev
            } else {
                r.revision
            },
            count_only: false,
        };
        let mut records =
            self.store
                .range_records(&r.key, RangeEnd::from_request(&r.range_end), opts)?;
        records.rev = self.rev;
        let more = r.limit > 0 && records.len() > r.limit as usize;
        if more {
            records.truncate(r.limit as usize);
        }
        Ok((records, more))
    }
}

impl KvView for TxnWrite<'_, '_, '_> {
    fn rev(&self) -> i64 {
        self.read_rev()
    }

    fn compact_rev(&self) -> i64 {
        TxnWrite::compact_rev(self)
    }

    fn range(
        &self,
        key: &[u8],
        end: RangeEnd<'_>,
        opts: RangeOptions,
    ) -> mvcc::Result<RangeResult> {
        TxnWrite::range(self, key, end, opts)
    }
}

/// Which leases exist; Put with an unknown lease fails.
pub trait LeaseCheck {
    fn exists(&self, id: i64) -> bool;
}

pub(crate) fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// etcd's Range: filters, sorts and truncates on top of the MVCC range.
pub fn range(view: &impl KvView, r: &RangeRequest) -> Result<RangeResponse, EtcdError> {
    chorus_metrics::RANGE_TOTAL.inc();
    let sort_order = range_request::SortOrder::try_from(r.sort_order).unwrap_or_default();
    let sort_target = range_request::SortTarget::try_from(r.sort_target).unwrap_or_default();
    let filtered = sort_order != range_request::SortOrder::None
        || r.min_mod_revision != 0
        || r.max_mod_revision != 0
        || r.min_create_revision != 0
        || r.max_create_revision != 0;
    let limit = match r.limit {
        l if l <= 0 || filtered => 0,
        // One extra to learn whether there are more.
        l => l as usize + 1,
    };
    let opts = RangeOptions {
        limit,
        rev: r.revision,
        count_only: r.count_only,
    };
    let mut rr = view.range(&r.key, RangeEnd::from_request(&r.range_end), opts)?;
    let kvs = &mut rr.kvs;
    if r.max_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision <= r.max_mod_revision);
    }
    if r.min_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision >= r.min_mod_revision);
    }
    if r.max_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision <= r.max_create_revision);
    }
    if r.min_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision >= r.min_create_revision);
    }
    let mut order = sort_order;
    if sort_target != range_request::SortTarget::Key && order == range_request::SortOrder::None {
        // The MVCC range is already in ascending key order.
        order = range_request::SortOrder::Ascend;
    }
    if order != range_request::SortOrder::None {
        let cmp: fn(&KeyValue, &KeyValue) -> Ordering = match sort_target {
            range_request::SortTarget::Key => |a, b| a.key.cmp(&b.key),
            range_request::SortTarget::Version => |a, b| a.version.cmp(&b.version),
            range_request::SortTarget::Create => |a, b| a.create_revision.cmp(&b.create_revision),
            range_request::SortTarget::Mod => |a, b| a.mod_revision.cmp(&b.mod_revision),
            range_request::SortTarget::Value => |a, b| a.value.cmp(&b.value),
        };
        if order == range_request::SortOrder::Descend {
            kvs.sort_by(|a, b| cmp(b, a));
        } else {
            kvs.sort_by(cmp);
        }
    }
    let mut more = false;
    if r.limit > 0 && kvs.len() > r.limit as usize {
        kvs.truncate(r.limit as usize);
        more = true;
    }
    if r.keys_only {
        for kv in kvs.iter_mut() {
            kv.value.clear();
        }
    }
    Ok(RangeResponse {
        header: header(rr.rev),
        kvs: rr.kvs,
        more,
        count: rr.count as i64,
    })
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    use compare::{CompareResult, CompareTarget, TargetUnion};
    let target = CompareTarget::try_from(c.target).unwrap_or_default();
    let ord = match target {
        CompareTarget::Value => {
            let v: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(v)
        }
        _ => {
            let (have, want) = match (target, &c.target_union) {
                (CompareTarget::Create, Some(TargetUnion::CreateRevision(r))) => {
                    (kv.create_revision, *r)
                }
                (CompareTarget::Create, _) => (kv.create_revision, 0),
                (CompareTarget::Mod, Some(TargetUnion::ModRevision(r))) => (kv.mod_revision, *r),
                (CompareTarget::Mod, _) => (kv.mod_revision, 0),
                (CompareTarget::Version, Some(TargetUnion::Version(v))) => (kv.version, *v),
                (CompareTarget::Version, _) => (kv.version, 0),
                (CompareTarget::Lease, Some(TargetUnion::Lease(l))) => (kv.lease, *l),
                (CompareTarget::Lease, _) => (kv.lease, 0),
                (CompareTarget::Value, _) => unreachable!("handled above"),
            };
            have.cmp(&want)
        }
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ord == Ordering::Equal,
        Ok(CompareResult::NotEqual) => ord != Ordering::Equal,
        Ok(CompareResult::Greater) => ord == Ordering::Greater,
        Ok(CompareResult::Less) => ord == Ordering::Less,
        Err(_) => true,
    }
}

/// One compare over a key or a range: holds if it holds for every key; over no key it is
/// evaluated against an empty key-value, except that a VALUE compare then fails.
pub fn apply_compare(view: &impl KvView, c: &Compare) -> bool {
    let Ok(rr) = view.range(
        &c.key,
        RangeEnd::from_request(&c.range_end),
        RangeOptions::default(),
    ) else {
        return false;
    };
    if rr.kvs.is_empty() {
        if c.target == compare::CompareTarget::Value as i32 {
            return false;
        }
        return compare_kv(c, &KeyValue::default());
    }
    rr.kvs.iter().all(|kv| compare_kv(c, kv))
}

/// The branch taken by the txn and by every nested txn on that branch, depth first.
pub fn txn_path(view: &impl KvView, r: &TxnRequest) -> Vec<bool> {
    let mut path = Vec::new();
    fn walk(view: &impl KvView, r: &TxnRequest, path: &mut Vec<bool>) {
        let ok = r.compare.iter().all(|c| apply_compare(view, c));
        path.push(ok);
        let ops = if ok { &r.success } else { &r.failure };
        for op in ops {
            if let Some(request_op::Request::RequestTxn(t)) = &op.request {
                walk(view, t, path);
            }
        }
    }
    walk(view, r, &mut path);
    path
}

pub fn is_txn_read_only(r: &TxnRequest) -> bool {
    r.success
        .iter()
        .chain(&r.failure)
        .all(|op| match &op.request {
            Some(request_op::Request::RequestRange(_)) | None => true,
            Some(request_op::Request::RequestTxn(t)) => is_txn_read_only(t),
            _ => false,
        })
}

pub fn is_txn_serializable(r: &TxnRequest) -> bool {
    r.success
        .iter()
        .chain(&r.failure)
        .all(|op| match &op.request {
            Some(request_op::Request::RequestRange(rr)) => rr.serializable,
            Some(request_op::Request::RequestTxn(t)) => is_txn_serializable(t),
            None => true,
            _ => false,
        })
}

/// Checks every op on the chosen path before anything is written, so a txn fails whole or
/// applies whole (etcd's checkRequests).
fn check_ops(
    view: &impl KvView,
    r: &TxnRequest,
    path: &mut std::slice::Iter<'_, bool>,
    leases: &dyn LeaseCheck,
) -> Result<(), EtcdError> {
    let ok = *path.next().expect("txn path covers every txn");
    for op in if ok { &r.success } else { &r.failure } {
        match &op.request {
            Some(request_op::Request::RequestTxn(t)) => check_ops(view, t, path, leases)?,
            Some(request_op::Request::RequestPut(p)) => check_put(view, p, leases)?,
            Some(request_op::Request::RequestRange(rr)) => match rr.revision {
                0 => {}
                rev if rev > view.rev() => return Err(EtcdError::FutureRev),
                rev if rev < view.compact_rev() => return Err(EtcdError::Compacted),
                _ => {}
            },
            _ => {}
        }
    }
    Ok(())
}

fn check_put(view: &impl KvView, p: &PutRequest, leases: &dyn LeaseCheck) -> Result<(), EtcdError> {
    if p.ignore_value || p.ignore_lease {
        let rr = view.range(&p.key, RangeEnd::Single, RangeOptions::default())?;
        if rr.kvs.is_empty() {
            return Err(EtcdError::KeyNotFound);
        }
    }
    if p.lease != 0 && !leases.exists(p.lease) {
        return Err(EtcdError::LeaseNotFound);
    }
    Ok(())
}

/// Keys whose lease attachment changed: (key, lease now attached or 0 if deleted).
pub type LeaseChanges = Vec<(Vec<u8>, i64)>;

pub fn put(
    t: &mut TxnWrite<'_, '_, '_>,
    p: &PutRequest,
    leases: &dyn LeaseCheck,
    changes: &mut LeaseChanges,
) -> Result<PutResponse, EtcdError> {
    let prev = if p.prev_kv || p.ignore_value || p.ignore_lease {
        t.get(&p.key)?
    } else {
        None
    };
    if (p.ignore_value || p.ignore_lease) && prev.is_none() {
        return Err(EtcdError::KeyNotFound);
    }
    let value = match (&prev, p.ignore_value) {
        (Some(kv), true) => kv.value.clone(),
        _ => p.value.clone(),
    };
    let lease = match (&prev, p.ignore_lease) {
        (Some(kv), true) => kv.lease,
        _ => p.lease,
    };
    if lease != 0 && !leases.exists(lease) {
        return Err(EtcdError::LeaseNotFound);
    }
    let rev = t.put(&p.key, &value, lease)?;
    chorus_metrics::PUT_TOTAL.inc();
    chorus_metrics::TOTAL_PUT_SIZE.add((p.key.len() + value.len()) as i64);
    changes.push((p.key.clone(), lease));
    Ok(PutResponse {
        header: header(rev),
        prev_kv: if p.prev_kv { prev } else { None },
    })
}

pub fn delete_range(
    t: &mut TxnWrite<'_, '_, '_>,
    d: &DeleteRangeRequest,
    changes: &mut LeaseChanges,
) -> Result<DeleteRangeResponse, EtcdError> {
    let end = RangeEnd::from_request(&d.range_end);
    let prev_kvs = if d.prev_kv {
        t.range(&d.key, end, RangeOptions::default())?.kvs
    } else {
        Vec::new()
    };
    let (deleted, rev) = t.delete_range(&d.key, end)?;
    chorus_metrics::DELETE_TOTAL.inc();
    let n = deleted.len() as i64;
    changes.extend(deleted.into_iter().map(|k| (k, 0)));
    Ok(DeleteRangeResponse {
        header: header(rev),
        deleted: n,
        prev_kvs,
    })
}

/// Applies a txn that may write, as one etcd transaction (one revision).
pub fn txn(
    t: &mut TxnWrite<'_, '_, '_>,
    r: &TxnRequest,
    leases: &dyn LeaseCheck,
    changes: &mut LeaseChanges,
) -> Result<TxnResponse, EtcdError> {
    chorus_metrics::TXN_TOTAL.inc();
    let path = txn_path(t, r);
    check_ops(t, r, &mut path.iter(), leases)?;
    let mut path = path.iter();
    let mut resp = run_ops(&mut WriteOps { t, leases, changes }, r, &mut path)?;
    resp.header = header(t.rev());
    Ok(resp)
}

/// Serves a read-only txn from a pinned view.
pub fn read_only_txn(view: &impl KvView, r: &TxnRequest) -> Result<TxnResponse, EtcdError> {
    chorus_metrics::TXN_TOTAL.inc();
    let path = txn_path(view, r);
    let mut path = path.iter();
    let mut resp = run_ops(&mut ReadOps(view), r, &mut path)?;
    resp.header = header(view.rev());
    Ok(resp)
}

trait Ops {
    fn range(&mut self, r: &RangeRequest) -> Result<RangeResponse, EtcdError>;
    fn put(&mut self, p: &PutRequest) -> Result<PutResponse, EtcdError>;
    fn delete_range(&mut self, d: &DeleteRangeRequest) -> Result<DeleteRangeResponse, EtcdError>;
}

struct WriteOps<'a, 'b, 'c, 'd, 'e> {
    t: &'a mut TxnWrite<'b, 'c, 'd>,
    leases: &'e dyn LeaseCheck,
    changes: &'e mut LeaseChanges,
}

impl Ops for WriteOps<'_, '_, '_, '_, '_> {
    fn range(&mut self, r: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        range(&*self.t, r)
    }
    fn put(&mut self, p: &PutRequest) -> Result<PutResponse, EtcdError> {
        put(self.t, p, self.leases, self.changes)
    }
    fn delete_range(&mut self, d: &DeleteRangeRequest) -> Result<DeleteRangeResponse, EtcdError> {
        delete_range(self.t, d, self.changes)
    }
}

struct ReadOps<'a, V>(&'a V);

impl<V: KvView> Ops for ReadOps<'_, V> {
    fn range(&mut self, r: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        range(self.0, r)
    }
    fn put(&mut self, _: &PutRequest) -> Result<PutResponse, EtcdError> {
        Err(EtcdError::Internal("write in a read-only txn".into()))
    }
    fn delete_range(&mut self, _: &DeleteRangeRequest) -> Result<DeleteRangeResponse, EtcdError> {
        Err(EtcdError::Internal("write in a read-only txn".into()))
    }
}

fn run_ops(
    ops: &mut impl Ops,
    r: &TxnRequest,
    path: &mut std::slice::Iter<'_, bool>,
) -> Result<TxnResponse, EtcdError> {
    let succeeded = *path.next().expect("txn path covers every txn");
    let reqs: &[RequestOp] = if succeeded { &r.success } else { &r.failure };
    let mut responses = Vec::with_capacity(reqs.len());
    for op in reqs {
        let response = match &op.request {
            Some(request_op::Request::RequestRange(rr)) => {
                Some(response_op::Response::ResponseRange(ops.range(rr)?))
            }
            Some(request_op::Request::RequestPut(p)) => {
                Some(response_op::Response::ResponsePut(ops.put(p)?))
            }
            Some(request_op::Request::RequestDeleteRange(d)) => Some(
                response_op::Response::ResponseDeleteRange(ops.delete_range(d)?),
            ),
            Some(request_op::Request::RequestTxn(t)) => {
                Some(response_op::Response::ResponseTxn(run_ops(ops, t, path)?))
            }
            None => None,
        };
        responses.push(ResponseOp { response });
    }
    Ok(TxnResponse {
        // etcd gives nested txn responses an empty header; the outer one is filled in.
        header: Some(ResponseHeader::default()),
        succeeded,
        responses,
    })
}

/// The MVCC store in use, shared by the apply thread (which replaces it when a snapshot
/// from the leader or a defragmented copy takes over) and every reader.
pub struct KvSlot {
    kv: parking_lot::RwLock<std::sync::Arc<KvStore>>,
    rewrites: tokio::sync::Mutex<()>,
}

impl KvSlot {
    pub fn new(kv: std::sync::Arc<KvStore>) -> KvSlot {
        KvSlot {
            kv: parking_lot::RwLock::new(kv),
            rewrites: tokio::sync::Mutex::new(()),
        }
    }

    pub fn get(&self) -> std::sync::Arc<KvStore> {
        self.kv.read().clone()
    }

    pub fn set(&self, kv: std::sync::Arc<KvStore>) {
        *self.kv.write() = kv;
    }

    /// Held by each compaction and by a defragment from its copy to its switch: a
    /// compaction deletes key records that a copy made before it still holds.
    pub fn rewrites(&self) -> &tokio::sync::Mutex<()> {
        &self.rewrites
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chorus_api::etcdserverpb::{
        compare::CompareResult, compare::CompareTarget, compare::TargetUnion,
    };
    use chorus_storage::backend::{Backend, BackendOptions};

    use super::*;

    struct Leases(Vec<i64>);

    impl LeaseCheck for Leases {
        fn exists(&self, id: i64) -> bool {
            self.0.contains(&id)
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        kv: KvStore,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(&dir.path().join("db"), &BackendOptions::default()).unwrap();
        let (kv, _) = KvStore::open(Arc::new(backend)).unwrap();
        Fixture { _dir: dir, kv }
    }

    /// Runs one write transaction through `f` and publishes it.
    fn write<T>(kv: &KvStore, f: impl FnOnce(&mut TxnWrite<'_, '_, '_>) -> T) -> T {
        let tx = kv.backend().begin_write().unwrap();
        let (out, rev) = {
            let mut batch = kv.write(&tx).unwrap();
            let out = f(&mut batch.txn());
            (out, batch.finish().0)
        };
        tx.commit().unwrap();
        kv.publish(rev, Vec::new());
        out
    }

    fn put_req(k: &str, v: &str) -> PutRequest {
        PutRequest {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        }
    }

    fn put(kv: &KvStore, k: &str, v: &str) -> PutResponse {
        write(kv, |t| {
            super::put(t, &put_req(k, v), &Leases(vec![]), &mut Vec::new())
        })
        .unwrap()
    }

    fn get(kv: &KvStore, r: RangeRequest) -> RangeResponse {
        range(&PinnedRead::new(kv), &r).unwrap()
    }

    fn keys(resp: &RangeResponse) -> Vec<String> {
        resp.kvs
            .iter()
            .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
            .collect()
    }

    fn all() -> RangeRequest {
        RangeRequest {
            key: b"\0".to_vec(),
            range_end: b"\0".to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn range_limit_sort_and_filters() {
        let f = fixture();
        put(&f.kv, "c", "1"); // rev 2
        put(&f.kv, "a", "3"); // 3
        put(&f.kv, "b", "2"); // 4
        put(&f.kv, "a", "0"); // 5: a has version 2
        let r = get(&f.kv, RangeRequest { limit: 2, ..all() });
        assert_eq!(
            (keys(&r), r.more, r.count),
            (vec!["a".into(), "b".into()], true, 3)
        );
        let r = get(&f.kv, RangeRequest { limit: 3, ..all() });
        assert!(!r.more);
        let by = |target: range_request::SortTarget, order: range_request::SortOrder| {
            keys(&get(
                &f.kv,
                RangeRequest {
                    sort_target: target as i32,
                    sort_order: order as i32,
                    ..all()
                },
            ))
        };
        use range_request::{SortOrder as O, SortTarget as T};
        assert_eq!(by(T::Key, O::Descend), ["c", "b", "a"]);
        assert_eq!(by(T::Create, O::Ascend), ["c", "a", "b"]);
        assert_eq!(by(T::Mod, O::Descend), ["a", "b", "c"]);
        assert_eq!(by(T::Value, O::Ascend), ["a", "c", "b"]);
        // A non-key target with no order sorts ascending, as etcd does.
        assert_eq!(by(T::Version, O::None)[2], "a");
        let r = get(
            &f.kv,
            RangeRequest {
                min_mod_revision: 3,
                max_create_revision: 3,
                ..all()
            },
        );
        assert_eq!(keys(&r), ["a"]);
        // count stays the number of keys in the range, before filters.
        assert_eq!(r.count, 3);
        let r = get(
            &f.kv,
            RangeRequest {
                keys_only: true,
                ..all()
            },
        );
        assert!(r.kvs.iter().all(|kv| kv.value.is_empty()));
        let r = get(
            &f.kv,
            RangeRequest {
                count_only: true,
                ..all()
            },
        );
        assert_eq!((r.kvs.len(), r.count), (0, 3));
        assert_eq!(r.header.unwrap().revision, 5);
        let r = get(
            &f.kv,
            RangeRequest {
                limit: 1,
                sort_order: O::Descend as i32,
                ..all()
            },
        );
        assert_eq!((keys(&r), r.more), (vec!["c".to_string()], true));
    }

    fn cmp(key: &str, target: CompareTarget, result: CompareResult, v: TargetUnion) -> Compare {
        Compare {
            key: key.into(),
            target: target as i32,
            result: result as i32,
            target_union: Some(v),
            range_end: Vec::new(),
        }
    }

    #[test]
    fn compares_follow_etcd() {
        let f = fixture();
        put(&f.kv, "k", "v"); // rev 2
        let view = PinnedRead::new(&f.kv);
        use CompareResult::*;
        use CompareTarget::*;
        assert!(apply_compare(
            &view,
            &cmp("k", Value, Equal, TargetUnion::Value(b"v".to_vec()))
        ));
        assert!(apply_compare(
            &view,
            &cmp("k", Value, Greater, TargetUnion::Value(b"a".to_vec()))
        ));
        // A value compare on a missing key fails whatever the operator.
        assert!(!apply_compare(
            &view,
            &cmp("x", Value, NotEqual, TargetUnion::Value(b"v".to_vec()))
        ));
        // "create_revision == 0" is how clients test that a key does not exist.
        assert!(apply_compare(
            &view,
            &cmp("x", Create, Equal, TargetUnion::CreateRevision(0))
        ));
        assert!(!apply_compare(
            &view,
            &cmp("k", Create, Equal, TargetUnion::CreateRevision(0))
        ));
        assert!(apply_compare(
            &view,
            &cmp("k", Mod, Less, TargetUnion::ModRevision(3))
        ));
        assert!(apply_compare(
            &view,
            &cmp("k", Version, Equal, TargetUnion::Version(1))
        ));
        assert!(apply_compare(
            &view,
            &cmp("k", Lease, Equal, TargetUnion::Lease(0))
        ));
        let mut over_range = cmp("a", Version, Greater, TargetUnion::Version(0));
        over_range.range_end = b"z".to_vec();
        assert!(apply_compare(&view, &over_range));
    }

    fn op_put(k: &str, v: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(put_req(k, v))),
        }
    }

    fn op_get(k: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key: k.into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn txn_takes_one_branch_at_one_revision() {
        let f = fixture();
        put(&f.kv, "k", "v"); // rev 2
        let req = TxnRequest {
            compare: vec![cmp(
                "k",
                CompareTarget::Value,
                CompareResult::Equal,
                TargetUnion::Value(b"v".to_vec()),
            )],
            success: vec![
                op_put("a", "1"),
                op_put("b", "2"),
                op_get("a"),
                RequestOp {
                    request: Some(request_op::Request::RequestTxn(TxnRequest {
                        compare: vec![],
                        success: vec![op_get("b")],
                        failure: vec![],
                    })),
                },
            ],
            failure: vec![op_put("c", "3")],
        };
        let resp = write(&f.kv, |t| txn(t, &req, &Leases(vec![]), &mut Vec::new())).unwrap();
        assert!(resp.succeeded);
        assert_eq!(resp.header.unwrap().revision, 3);
        let Some(response_op::Response::ResponseRange(r)) = &resp.responses[2].response else {
            panic!("expected a range response");
        };
        // Reads inside the txn see its own writes.
        assert_eq!(r.kvs[0].value, b"1");
        let Some(response_op::Response::ResponseTxn(nested)) = &resp.responses[3].response else {
            panic!("expected a nested txn");
        };
        let Some(response_op::Response::ResponseRange(r)) = &nested.responses[0].response else {
            panic!("expected a nested range");
        };
        assert_eq!(r.kvs[0].mod_revision, 3);
        assert!(get(
            &f.kv,
            RangeRequest {
                key: b"c".to_vec(),
                ..Default::default()
            }
        )
        .kvs
        .is_empty());
        // A txn that writes nothing leaves the revision alone.
        let ro = TxnRequest {
            success: vec![op_get("a")],
            ..Default::default()
        };
        assert!(is_txn_read_only(&ro));
        let resp = read_only_txn(&PinnedRead::new(&f.kv), &ro).unwrap();
        assert_eq!(resp.header.unwrap().revision, 3);
    }

    #[test]
    fn txn_is_checked_whole_before_writing() {
        let f = fixture();
        let req = TxnRequest {
            success: vec![
                op_put("a", "1"),
                RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: b"b".to_vec(),
                        lease: 7,
                        ..Default::default()
                    })),
                },
            ],
            ..Default::default()
        };
        let err = write(&f.kv, |t| txn(t, &req, &Leases(vec![]), &mut Vec::new())).unwrap_err();
        assert_eq!(err, EtcdError::LeaseNotFound);
        assert_eq!(f.kv.current_rev(), 1);
        assert!(get(&f.kv, all()).kvs.is_empty());
        let ok = write(&f.kv, |t| txn(t, &req, &Leases(vec![7]), &mut Vec::new())).unwrap();
        assert!(ok.succeeded);
    }

    #[test]
    fn put_options_and_delete_prev_kv() {
        let f = fixture();
        put(&f.kv, "k", "v1");
        let leases = Leases(vec![]);
        let r = write(&f.kv, |t| {
            super::put(
                t,
                &PutRequest {
                    key: b"k".to_vec(),
                    value: b"v2".to_vec(),
                    prev_kv: true,
                    ..Default::default()
                },
                &leases,
                &mut Vec::new(),
            )
        })
        .unwrap();
        assert_eq!(r.prev_kv.unwrap().value, b"v1");
        let r = write(&f.kv, |t| {
            super::put(
                t,
                &PutRequest {
                    key: b"k".to_vec(),
                    ignore_value: true,
                    ..Default::default()
                },
                &leases,
                &mut Vec::new(),
            )
        });
        assert!(r.is_ok());
        let kv = &get(
            &f.kv,
            RangeRequest {
                key: b"k".to_vec(),
                ..Default::default()
            },
        )
        .kvs[0];
        assert_eq!((kv.value.as_slice(), kv.version), (&b"v2"[..], 3));
        let missing = write(&f.kv, |t| {
            super::put(
                t,
                &PutRequest {
                    key: b"nope".to_vec(),
                    ignore_lease: true,
                    ..Default::default()
                },
                &leases,
                &mut Vec::new(),
            )
        });
        assert_eq!(missing.unwrap_err(), EtcdError::KeyNotFound);
        let d = write(&f.kv, |t| {
            delete_range(
                t,
                &DeleteRangeRequest {
                    key: b"\0".to_vec(),
                    range_end: b"\0".to_vec(),
                    prev_kv: true,
                },
                &mut Vec::new(),
            )
        })
        .unwrap();
        assert_eq!((d.deleted, d.prev_kvs.len()), (1, 1));
        assert_eq!(d.header.unwrap().revision, 5);
    }
}
