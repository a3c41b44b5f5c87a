//! `--namespace`: every key the client names is prefixed on the way to the member and
//! the prefix is taken off every key coming back (responses, previous values, events,
//! lease key lists, lock and election keys), as etcd's `clientv3/namespace` does. An
//! empty namespace changes nothing.
//!
//! Ranges follow etcd's `prefixInterval`: `[k, end)` becomes `[p+k, p+end)`, and the
//! "to the end of the keyspace" marker `end = "\0"` becomes the end of the namespace,
//! `prefix_end(p)`.

use chorus_api::etcdserverpb::{
    request_op::Request as OpRequest, response_op::Response as OpResponse, Compare,
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    RequestOp, TxnRequest, TxnResponse,
};
use chorus_api::mvccpb::{Event, KeyValue};

/// The namespace prefix (possibly empty).
#[derive(Debug, Clone, Default)]
pub struct Namespace {
    prefix: Vec<u8>,
}

/// The smallest key after every key starting with `prefix` (`"\0"`: no end).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xff {
            *last += 1;
            return end;
        }
        end.pop();
    }
    vec![0]
}

impl Namespace {
    pub fn new(prefix: impl Into<Vec<u8>>) -> Namespace {
        Namespace {
            prefix: prefix.into(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.prefix.is_empty()
    }

    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// `prefix + key`.
    pub fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + key.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(key);
        out
    }

    /// etcd's `prefixInterval`.
    pub fn range(&self, key: &[u8], end: &[u8]) -> (Vec<u8>, Vec<u8>) {
        if self.is_empty() {
            return (key.to_vec(), end.to_vec());
        }
        let end = match end {
            [] => Vec::new(),
            [0] => prefix_end(&self.prefix),
            end => self.key(end),
        };
        (self.key(key), end)
    }

    /// The whole namespace as a range (the whole keyspace without one).
    pub fn whole(&self) -> (Vec<u8>, Vec<u8>) {
        if self.is_empty() {
            (vec![0], vec![0])
        } else {
            (self.prefix.clone(), prefix_end(&self.prefix))
        }
    }

    /// Takes the prefix off a key coming back (keys outside the namespace are kept).
    pub fn strip(&self, key: &mut Vec<u8>) {
        if !self.is_empty() && key.starts_with(&self.prefix) {
            key.drain(..self.prefix.len());
        }
    }

    pub fn strip_kv(&self, kv: &mut KeyValue) {
        self.strip(&mut kv.key);
    }

    pub fn strip_event(&self, event: &mut Event) {
        if let Some(kv) = event.kv.as_mut() {
            self.strip_kv(kv);
        }
        if let Some(kv) = event.prev_kv.as_mut() {
            self.strip_kv(kv);
        }
    }

    pub fn range_request(&self, r: &mut RangeRequest) {
        (r.key, r.range_end) = self.range(&r.key, &r.range_end);
    }

    pub fn put_request(&self, r: &mut PutRequest) {
        r.key = self.key(&r.key);
    }

    pub fn delete_request(&self, r: &mut DeleteRangeRequest) {
        (r.key, r.range_end) = self.range(&r.key, &r.range_end);
    }

    fn compare(&self, c: &mut Compare) {
        (c.key, c.range_end) = self.range(&c.key, &c.range_end);
    }

    fn request_op(&self, op: &mut RequestOp) {
        match op.request.as_mut() {
            Some(OpRequest::RequestRange(r)) => self.range_request(r),
            Some(OpRequest::RequestPut(r)) => self.put_request(r),
            Some(OpRequest::RequestDeleteRange(r)) => self.delete_request(r),
            Some(OpRequest::RequestTxn(t)) => self.txn_request(t),
            None => {}
        }
    }

    pub fn txn_request(&self, t: &mut TxnRequest) {
        if self.is_empty() {
            return;
        }
        t.compare.iter_mut().for_each(|c| self.compare(c));
        t.success.iter_mut().for_each(|op| self.request_op(op));
        t.failure.iter_mut().for_each(|op| self.request_op(op));
    }

    pub fn range_response(&self, r: &mut RangeResponse) {
        if !self.is_empty() {
            r.kvs.iter_mut().for_each(|kv| self.strip_kv(kv));
        }
    }

    pub fn put_response(&self, r: &mut PutResponse) {
        if let Some(kv) = r.prev_kv.as_mut() {
            self.strip_kv(kv);
        }
    }

    pub fn delete_response(&self, r: &mut DeleteRangeResponse) {
        if !self.is_empty() {
            r.prev_kvs.iter_mut().for_each(|kv| self.strip_kv(kv));
        }
    }

    pub fn txn_response(&self, t: &mut TxnResponse) {
        if self.is_empty() {
            return;
        }
        for op in &mut t.responses {
            match op.response.as_mut() {
                Some(OpResponse::ResponseRange(r)) => self.range_response(r),
                Some(OpResponse::ResponsePut(r)) => self.put_response(r),
                Some(OpResponse::ResponseDeleteRange(r)) => self.delete_response(r),
                Some(OpResponse::ResponseTxn(t)) => self.txn_response(t),
                None => {}
            }
        }
    }

    /// Lease key lists: keys of this namespace, prefix taken off; others left out.
    pub fn lease_keys(&self, keys: &mut Vec<Vec<u8>>) {
        if self.is_empty() {
            return;
        }
        keys.retain(|k| k.starts_with(&self.prefix));
        keys.iter_mut().for_each(|k| self.strip(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_interval_as_etcd() {
        let ns = Namespace::new("ns/");
        assert_eq!(ns.range(b"a", b""), (b"ns/a".to_vec(), vec![]));
        assert_eq!(ns.range(b"a", b"b"), (b"ns/a".to_vec(), b"ns/b".to_vec()));
        assert_eq!(ns.range(b"a", b"\0"), (b"ns/a".to_vec(), b"ns0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        let mut k = b"ns/x".to_vec();
        ns.strip(&mut k);
        assert_eq!(k, b"x");
        let mut keys = vec![b"ns/a".to_vec(), b"other".to_vec()];
        ns.lease_keys(&mut keys);
        assert_eq!(keys, vec![b"a".to_vec()]);
    }
}
