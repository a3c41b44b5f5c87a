//! The building blocks of etcd's concurrency package (mutex, election), run inside the
//! member for the Lock and Election services: ownership keys under a prefix, ordered by
//! create revision, each waiting for the keys created before it to be deleted.
//!
//! ```text
//!   name/<lease-a>  create rev 10   ◄── holder
//!   name/<lease-b>  create rev 12   waits for the delete of the last key created before 12
//! ```

use std::sync::Arc;

use chorus_api::etcdserverpb::{
    compare, range_request, request_op, Compare, RangeRequest, RequestOp, ResponseHeader,
};
use chorus_api::mvccpb::{event::EventType, KeyValue};

use crate::api::grpc::kv;
use crate::error::EtcdError;
use crate::member::{Member, Who};
use crate::watch::{Outgoing, StreamHandle, WatchSpec};

/// The end of the range that covers every key starting with `prefix` (etcd's GetPrefixRangeEnd).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The key under `prefix` with the first (or, `last`, the last) create revision, at most
/// `max_create_rev` when non-zero.
pub fn by_create(prefix: &[u8], last: bool, max_create_rev: i64) -> RangeRequest {
    RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_target: range_request::SortTarget::Create as i32,
        sort_order: if last {
            range_request::SortOrder::Descend as i32
        } else {
            range_request::SortOrder::Ascend as i32
        },
        max_create_revision: max_create_rev,
        ..Default::default()
    }
}

pub fn op_range(r: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(r)),
    }
}

pub fn create_revision_is(key: &[u8], rev: i64) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Create as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(compare::TargetUnion::CreateRevision(rev)),
    }
}

/// A watcher registered directly with the hub (no gRPC stream).
pub struct LocalWatch {
    member: Arc<Member>,
    handle: Arc<StreamHandle>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Outgoing>,
}

static NEXT_LOCAL_STREAM: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 62);

impl LocalWatch {
    /// A watch for the caller: it must be allowed to read the range.
    pub fn new(
        member: &Arc<Member>,
        who: Who<'_>,
        key: &[u8],
        range_end: Vec<u8>,
        start_rev: i64,
    ) -> Result<LocalWatch, EtcdError> {
        member.check_watch(who, key, &range_end)?;
        let id = NEXT_LOCAL_STREAM.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (handle, rx) = StreamHandle::new(id);
        let spec = WatchSpec {
            key: key.to_vec(),
            range_end,
            start_rev,
            no_put: false,
            no_delete: false,
            progress_notify: false,
            prev_kv: false,
            fragment: false,
        };
        let _ = member.watch_hub().watch(&handle, 0, spec);
        Ok(LocalWatch {
            member: member.clone(),
            handle,
            rx,
        })
    }

    /// The next batch of events (header revision, events); errors when the watcher was
    /// canceled (its start revision was compacted) or the member is stopping.
    pub async fn next(&mut self) -> Result<(i64, Vec<chorus_api::mvccpb::Event>), EtcdError> {
        loop {
            let m = self.rx.recv().await.ok_or(EtcdError::Stopped)?;
            self.handle.taken(&m);
            match m {
                Outgoing::Events { rev, events, .. } => return Ok((rev, events)),
                Outgoing::Compacted { .. } => return Err(EtcdError::Compacted),
                Outgoing::Refused { reason, .. } | Outgoing::Canceled { reason, .. } => {
                    return Err(EtcdError::Internal(format!("lost watcher: {reason}")))
                }
                Outgoing::Created { .. } | Outgoing::Progress { .. } => {}
            }
        }
    }
}

impl Drop for LocalWatch {
    fn drop(&mut self) {
        self.member.watch_hub().close_stream(self.handle.id);
    }
}

/// Waits until `key` is deleted, watching from `rev`.
pub async fn wait_delete(
    member: &Arc<Member>,
    who: Who<'_>,
    key: &[u8],
    rev: i64,
) -> Result<(), EtcdError> {
    let mut w = LocalWatch::new(member, who, key, Vec::new(), rev)?;
    loop {
        let (_, events) = w.next().await?;
        if events.iter().any(|e| e.r#type == EventType::Delete as i32) {
            return Ok(());
        }
    }
}

/// Waits until every key under `prefix` created at or before `max_create_rev` is gone
/// (etcd's waitDeletes); returns the header of the final, empty read.
pub async fn wait_deletes(
    member: &Arc<Member>,
    who: Who<'_>,
    prefix: &[u8],
    max_create_rev: i64,
) -> Result<ResponseHeader, EtcdError> {
    loop {
        let resp = kv::range(member, who, by_create(prefix, true, max_create_rev)).await?;
        let header = resp.header.unwrap_or_default();
        let Some(last) = resp.kvs.into_iter().next() else {
            return Ok(header);
        };
        wait_delete(member, who, &last.key, header.revision).await?;
    }
}

/// The first key (by create revision) under `prefix`, if any.
pub async fn first_created(
    member: &Arc<Member>,
    who: Who<'_>,
    prefix: &[u8],
) -> Result<(ResponseHeader, Option<KeyValue>), EtcdError> {
    let resp = kv::range(member, who, by_create(prefix, false, 0)).await?;
    Ok((resp.header.unwrap_or_default(), resp.kvs.into_iter().next()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_follows_etcd() {
        assert_eq!(prefix_end(b"a"), b"b");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }
}
