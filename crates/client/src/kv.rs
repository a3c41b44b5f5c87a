//! KV request options, etcd's key-range conventions and transaction builders.

use chorus_api::etcdserverpb::{
    compare::{CompareResult, CompareTarget, TargetUnion},
    range_request::{SortOrder, SortTarget},
    request_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

/// The end of the range holding every key that starts with `key`, as etcd computes it:
/// increment the last byte below 0xff and drop what follows it. A key of only 0xff bytes
/// (or an empty key) has no such end; then the answer is `"\0"`, which etcd reads as
/// "every key >= key".
pub fn prefix_range_end(key: &[u8]) -> Vec<u8> {
    match key.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = key[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

/// Computes `(key, range_end)` for the range options shared by get, delete and watch.
/// Precedence when several are set: `range_end`, then `prefix`, then `from_key`.
pub(crate) fn key_range(
    key: Vec<u8>,
    prefix: bool,
    from_key: bool,
    range_end: Option<&[u8]>,
) -> (Vec<u8>, Vec<u8>) {
    if let Some(end) = range_end {
        return (key, end.to_vec());
    }
    // etcd's clientv3: an empty key with a prefix or from-key option means every key.
    if key.is_empty() && (prefix || from_key) {
        return (vec![0], vec![0]);
    }
    if prefix {
        let end = prefix_range_end(&key);
        (key, end)
    } else if from_key {
        (key, vec![0])
    } else {
        (key, Vec::new())
    }
}

/// Options of a range read (`Client::get`). Defaults: just `key`, linearizable, no limit,
/// at the current revision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GetOptions {
    /// Every key starting with the key.
    pub prefix: bool,
    /// Every key >= the key.
    pub from_key: bool,
    /// Explicit exclusive end of the range.
    pub range_end: Option<Vec<u8>>,
    /// At most this many keys (0 = no limit).
    pub limit: i64,
    /// Read at this revision (0 = current).
    pub revision: i64,
    /// Sort by target and order; etcd's default is by key, ascending.
    pub sort: Option<(SortTarget, SortOrder)>,
    /// Answer from the local member without a linearizable read barrier.
    pub serializable: bool,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

impl GetOptions {
    /// The request for `key` with these options.
    pub fn to_request(&self, key: impl Into<Vec<u8>>) -> RangeRequest {
        let (key, range_end) = key_range(
            key.into(),
            self.prefix,
            self.from_key,
            self.range_end.as_deref(),
        );
        let (sort_target, sort_order) = match self.sort {
            // As clientv3 does: the server already returns keys in ascending order, and
            // any other sort order makes it fetch the whole range before applying the limit.
            Some((SortTarget::Key, SortOrder::Ascend)) | None => (SortTarget::Key, SortOrder::None),
            Some(sort) => sort,
        };
        RangeRequest {
            key,
            range_end,
            limit: self.limit,
            revision: self.revision,
            sort_order: sort_order as i32,
            sort_target: sort_target as i32,
            serializable: self.serializable,
            keys_only: self.keys_only,
            count_only: self.count_only,
            min_mod_revision: self.min_mod_revision,
            max_mod_revision: self.max_mod_revision,
            min_create_revision: self.min_create_revision,
            max_create_revision: self.max_create_revision,
        }
    }
}

/// Options of a put (`Client::put`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutOptions {
    /// Attach the key to this lease (0 = none).
    pub lease: i64,
    /// Return the previous key-value.
    pub prev_kv: bool,
    /// Keep the current value (the key must exist).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist).
    pub ignore_lease: bool,
}

impl PutOptions {
    /// The request for `key` = `value` with these options.
    pub fn to_request(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> PutRequest {
        PutRequest {
            key: key.into(),
            value: value.into(),
            lease: self.lease,
            prev_kv: self.prev_kv,
            ignore_value: self.ignore_value,
            ignore_lease: self.ignore_lease,
        }
    }
}

/// Options of a delete (`Client::delete`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOptions {
    /// Every key starting with the key.
    pub prefix: bool,
    /// Every key >= the key.
    pub from_key: bool,
    /// Explicit exclusive end of the range.
    pub range_end: Option<Vec<u8>>,
    /// Return the deleted key-values.
    pub prev_kv: bool,
}

impl DeleteOptions {
    /// The request for `key` with these options.
    pub fn to_request(&self, key: impl Into<Vec<u8>>) -> DeleteRangeRequest {
        let (key, range_end) = key_range(
            key.into(),
            self.prefix,
            self.from_key,
            self.range_end.as_deref(),
        );
        DeleteRangeRequest {
            key,
            range_end,
            prev_kv: self.prev_kv,
        }
    }
}

/// Builders of transaction guards: `Cmp::value("k", CompareResult::Equal, "v")`.
pub struct Cmp;

impl Cmp {
    fn build(key: impl Into<Vec<u8>>, result: CompareResult, operand: TargetUnion) -> Compare {
        let target = match operand {
            TargetUnion::Version(_) => CompareTarget::Version,
            TargetUnion::CreateRevision(_) => CompareTarget::Create,
            TargetUnion::ModRevision(_) => CompareTarget::Mod,
            TargetUnion::Value(_) => CompareTarget::Value,
            TargetUnion::Lease(_) => CompareTarget::Lease,
        };
        Compare {
            result: result as i32,
            target: target as i32,
            key: key.into(),
            target_union: Some(operand),
            range_end: Vec::new(),
        }
    }

    /// Compares the key's value.
    pub fn value(
        key: impl Into<Vec<u8>>,
        result: CompareResult,
        value: impl Into<Vec<u8>>,
    ) -> Compare {
        Self::build(key, result, TargetUnion::Value(value.into()))
    }

    /// Compares the key's version (0 = the key does not exist).
    pub fn version(key: impl Into<Vec<u8>>, result: CompareResult, version: i64) -> Compare {
        Self::build(key, result, TargetUnion::Version(version))
    }

    /// Compares the key's create revision.
    pub fn create_revision(key: impl Into<Vec<u8>>, result: CompareResult, rev: i64) -> Compare {
        Self::build(key, result, TargetUnion::CreateRevision(rev))
    }

    /// Compares the key's mod revision.
    pub fn mod_revision(key: impl Into<Vec<u8>>, result: CompareResult, rev: i64) -> Compare {
        Self::build(key, result, TargetUnion::ModRevision(rev))
    }

    /// Compares the key's lease.
    pub fn lease(key: impl Into<Vec<u8>>, result: CompareResult, lease: i64) -> Compare {
        Self::build(key, result, TargetUnion::Lease(lease))
    }

    /// Turns a guard on one key into a guard on every key starting with it.
    pub fn with_prefix(mut cmp: Compare) -> Compare {
        cmp.range_end = prefix_range_end(&cmp.key);
        cmp
    }
}

/// Builders of transaction operations.
pub struct Op;

impl Op {
    pub fn get(key: impl Into<Vec<u8>>, opts: &GetOptions) -> RequestOp {
        Self::wrap(request_op::Request::RequestRange(opts.to_request(key)))
    }

    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, opts: &PutOptions) -> RequestOp {
        Self::wrap(request_op::Request::RequestPut(opts.to_request(key, value)))
    }

    pub fn delete(key: impl Into<Vec<u8>>, opts: &DeleteOptions) -> RequestOp {
        Self::wrap(request_op::Request::RequestDeleteRange(
            opts.to_request(key),
        ))
    }

    /// A nested transaction.
    pub fn txn(txn: impl Into<TxnRequest>) -> RequestOp {
        Self::wrap(request_op::Request::RequestTxn(txn.into()))
    }

    fn wrap(request: request_op::Request) -> RequestOp {
        RequestOp {
            request: Some(request),
        }
    }
}

/// A transaction: `Txn::new().when([..]).and_then([..]).or_else([..])`, passed to
/// `Client::txn` (or turned into a `TxnRequest` with `into()`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Txn(TxnRequest);

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds guards; the success branch runs when all of them hold.
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.0.compare.extend(compares);
        self
    }

    /// Adds operations to the success branch.
    pub fn and_then(mut self, ops: impl IntoIterator<Item = RequestOp>) -> Self {
        self.0.success.extend(ops);
        self
    }

    /// Adds operations to the failure branch.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = RequestOp>) -> Self {
        self.0.failure.extend(ops);
        self
    }
}

impl From<Txn> for TxnRequest {
    fn from(txn: Txn) -> Self {
        txn.0
    }
}

/// Whether a transaction only reads (then it is as safe to resend as a range read).
pub(crate) fn txn_is_read_only(txn: &TxnRequest) -> bool {
    txn.success
        .iter()
        .chain(&txn.failure)
        .all(|op| match &op.request {
            Some(request_op::Request::RequestRange(_)) => true,
            Some(request_op::Request::RequestTxn(inner)) => txn_is_read_only(inner),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_end_follows_etcd() {
        assert_eq!(prefix_range_end(b"foo"), b"fop");
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b"a\xfe\xff\xff"), b"a\xff");
        assert_eq!(prefix_range_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_range_end(b""), b"\0");
    }

    #[test]
    fn key_ranges() {
        assert_eq!(
            key_range(b"k".to_vec(), false, false, None),
            (b"k".to_vec(), vec![])
        );
        assert_eq!(
            key_range(b"k".to_vec(), true, false, None),
            (b"k".to_vec(), b"l".to_vec())
        );
        assert_eq!(
            key_range(b"k".to_vec(), false, true, None),
            (b"k".to_vec(), vec![0])
        );
        assert_eq!(key_range(vec![], true, false, None), (vec![0], vec![0]));
        assert_eq!(key_range(vec![], false, true, None), (vec![0], vec![0]));
        assert_eq!(key_range(vec![0], true, false, None), (vec![0], vec![1]));
        assert_eq!(
            key_range(b"a".to_vec(), true, false, Some(b"c")),
            (b"a".to_vec(), b"c".to_vec())
        );
    }

    #[test]
    fn sort_by_key_ascending_is_sent_as_none() {
        let opts = GetOptions {
            sort: Some((SortTarget::Key, SortOrder::Ascend)),
            ..Default::default()
        };
        assert_eq!(opts.to_request("k").sort_order, SortOrder::None as i32);
        let opts = GetOptions {
            sort: Some((SortTarget::Mod, SortOrder::Descend)),
            ..Default::default()
        };
        let req = opts.to_request("k");
        assert_eq!(req.sort_order, SortOrder::Descend as i32);
        assert_eq!(req.sort_target, SortTarget::Mod as i32);
    }

    #[test]
    fn read_only_txns() {
        let read = Txn::new().and_then([Op::get("a", &GetOptions::default())]);
        assert!(txn_is_read_only(&read.clone().into()));
        let nested = Txn::new().or_else([Op::txn(read)]);
        assert!(txn_is_read_only(&nested.into()));
        let write = Txn::new().or_else([Op::put("a", "b", &PutOptions::default())]);
        assert!(!txn_is_read_only(&write.into()));
    }

    #[test]
    fn compare_target_matches_operand() {
        let c = Cmp::mod_revision("k", CompareResult::Less, 5);
        assert_eq!(c.target, CompareTarget::Mod as i32);
        assert_eq!(c.result, CompareResult::Less as i32);
        let c = Cmp::with_prefix(Cmp::version("k", CompareResult::Greater, 0));
        assert_eq!(c.range_end, b"l");
    }
}
