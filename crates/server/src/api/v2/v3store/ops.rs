//! v3 requests as the v2v3 store builds them (clientv3's `OpGet`, `OpPut`, `OpDelete`,
//! `Compare`), and the reading of their responses.

use chorus_api::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use chorus_api::etcdserverpb::{
    request_op, response_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnResponse,
};
use chorus_api::mvccpb::KeyValue;

use crate::api::grpc::concurrency::prefix_end;

pub fn get(key: &str) -> RequestOp {
    range(key, Vec::new(), 0)
}

/// Every key starting with `prefix`, at `rev` (0: current).
pub fn get_prefix(prefix: &str, rev: i64) -> RequestOp {
    range(prefix, prefix_end(prefix.as_bytes()), rev)
}

fn range(key: &str, range_end: Vec<u8>, revision: i64) -> RequestOp {
    let r = RangeRequest {
        key: key.as_bytes().to_vec(),
        range_end,
        revision,
        ..Default::default()
    };
    RequestOp {
        request: Some(request_op::Request::RequestRange(r)),
    }
}

pub fn put(key: &str, value: &str, prev_kv: bool) -> RequestOp {
    let r = PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        prev_kv,
        ..Default::default()
    };
    RequestOp {
        request: Some(request_op::Request::RequestPut(r)),
    }
}

/// Deletes `key`, or with `prefix` every key starting with it; returns what it deleted.
pub fn delete(key: &str, prefix: bool) -> RequestOp {
    let r = DeleteRangeRequest {
        key: key.as_bytes().to_vec(),
        range_end: if prefix {
            prefix_end(key.as_bytes())
        } else {
            Vec::new()
        },
        prev_kv: true,
    };
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(r)),
    }
}

fn compare(key: &str, target: CompareTarget, result: CompareResult, u: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
        target_union: Some(u),
    }
}

pub fn version_is(key: &str, result: CompareResult, version: i64) -> Compare {
    compare(
        key,
        CompareTarget::Version,
        result,
        TargetUnion::Version(version),
    )
}

/// `version(prefix*) = 0`: no key starts with `prefix`.
pub fn none_under(prefix: &str) -> Compare {
    let mut c = version_is(prefix, CompareResult::Equal, 0);
    c.range_end = prefix_end(prefix.as_bytes());
    c
}

pub fn mod_revision_is(key: &str, rev: i64) -> Compare {
    let u = TargetUnion::ModRevision(rev);
    compare(key, CompareTarget::Mod, CompareResult::Equal, u)
}

pub fn value_is(key: &str, value: &str) -> Compare {
    let u = TargetUnion::Value(value.as_bytes().to_vec());
    compare(key, CompareTarget::Value, CompareResult::Equal, u)
}

/// The key-values the `i`-th op of a txn read.
pub fn range_kvs(resp: &TxnResponse, i: usize) -> &[KeyValue] {
    match resp.responses.get(i).and_then(|r| r.response.as_ref()) {
        Some(response_op::Response::ResponseRange(r)) => &r.kvs,
        _ => &[],
    }
}

/// The key-values the `i`-th op of a txn deleted.
pub fn deleted_kvs(resp: &TxnResponse, i: usize) -> &[KeyValue] {
    match resp.responses.get(i).and_then(|r| r.response.as_ref()) {
        Some(response_op::Response::ResponseDeleteRange(r)) => &r.prev_kvs,
        _ => &[],
    }
}

/// etcd's `prevKeyFromPuts`: the first previous key-value a put of the txn replaced.
pub fn prev_kv_of_puts(resp: &TxnResponse) -> Option<&KeyValue> {
    resp.responses
        .iter()
        .filter_map(|r| match &r.response {
            Some(response_op::Response::ResponsePut(p)) => p.prev_kv.as_ref(),
            _ => None,
        })
        .find(|kv| kv.create_revision > 0)
}

pub fn revision(resp: &TxnResponse) -> i64 {
    resp.header.as_ref().map_or(0, |h| h.revision)
}
