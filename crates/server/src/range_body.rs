//! A big Range answered as one gRPC message written while it is read: the stored records
//! (each an encoded `mvccpb.KeyValue`, the very bytes a `RangeResponse` holds) are copied
//! from the store into HTTP/2 frames a few at a time, so the member never holds the
//! decoded key-values nor the encoded response. `get "" --prefix` over a million keys
//! was etcd's classic out-of-memory; a unary Range now costs what RangeStream costs.
//!
//! ```text
//!   handler:  ReadIndex, permission, the index gives the revisions (a snapshot is held)
//!             one pass over the records sums their sizes: the message's length prefix
//!   body:     [0, len] header(1) | kvs(2) record, record, ... (64 KiB frames) | more(3)
//!             count(4) | trailers grpc-status 0 (a read error: its status instead)
//! ```
//! The bytes are what prost writes for the same `RangeResponse` (fields in number order,
//! defaults left out); a test compares them. Only plain ranges qualify: in key order,
//! without revision filters, with values (a keys-only, count-only, sorted or filtered
//! range is built whole as before), and only from [`STREAM_MIN_RECORDS`] records on.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use chorus_api::etcdserverpb::{range_request, RangeRequest, RangeResponse, ResponseHeader};
use chorus_storage::mvcc::Records;
use http_body::{Frame, SizeHint};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message as _;

use crate::error::EtcdError;

/// A plain range of at least this many records is streamed; a smaller one is built whole
/// (one read of each record instead of two).
pub const STREAM_MIN_RECORDS: usize = 1_000;
/// Records are copied into frames of about this size.
const FRAME_BYTES: usize = 64 * 1024;

/// `RangeResponse`'s field numbers.
const HEADER: u32 = 1;
const KVS: u32 = 2;
const MORE: u32 = 3;
const COUNT: u32 = 4;

/// What a gRPC Range is answered with.
pub enum RangeAnswer {
    /// A response built whole.
    Whole(RangeResponse),
    /// A big plain range's response body, written as its records are read.
    Streamed(StreamedRange),
}

/// Whether a Range's response is its records as stored, in key order.
pub fn streamable(r: &RangeRequest) -> bool {
    use range_request::{SortOrder, SortTarget};
    let key_order = matches!(
        (
            SortOrder::try_from(r.sort_order),
            SortTarget::try_from(r.sort_target)
        ),
        (Ok(SortOrder::None | SortOrder::Ascend), Ok(SortTarget::Key))
    );
    let filters = [
        r.min_mod_revision,
        r.max_mod_revision,
        r.min_create_revision,
        r.max_create_revision,
    ];
    !r.range_end.is_empty()
        && !r.keys_only
        && !r.count_only
        && key_order
        && filters.iter().all(|&f| f == 0)
}

/// The body of one streamed Range response (gRPC framing and trailers included).
pub struct StreamedRange {
    records: Records,
    /// The next record to send.
    next: usize,
    /// The message's prefix and header field, then `more` and `count`, each sent once.
    head: Option<Bytes>,
    tail: Option<Bytes>,
    done: bool,
}

impl StreamedRange {
    /// Sums the records' sizes (one read of each) for the message's length prefix.
    pub fn new(
        header: &ResponseHeader,
        records: Records,
        more: bool,
        count: i64,
    ) -> Result<StreamedRange, EtcdError> {
        let tail = tail(more, count);
        let mut len = field_len(HEADER, header.encoded_len()) + tail.len();
        records.visit(0, |record| {
            len += field_len(KVS, record.len());
            std::ops::ControlFlow::Continue(())
        })?;
        // gRPC's length prefix is 32 bits; etcd's clients refuse far less anyway.
        let len = u32::try_from(len).map_err(|_| {
            EtcdError::Internal(format!("a range response of {len} bytes cannot be framed"))
        })?;
        let mut head = BytesMut::with_capacity(5 + field_len(HEADER, header.encoded_len()));
        head.put_u8(0); // not compressed
        head.put_u32(len);
        prost::encoding::message::encode(HEADER, header, &mut head);
        Ok(StreamedRange {
            records,
            next: 0,
            head: Some(head.freeze()),
            tail: Some(tail),
            done: false,
        })
    }

    fn next_frame(&mut self) -> Option<Frame<Bytes>> {
        if self.done {
            return None;
        }
        if let Some(head) = self.head.take() {
            return Some(Frame::data(head));
        }
        if self.next < self.records.len() {
            return Some(self.records_frame());
        }
        if let Some(tail) = self.tail.take().filter(|t| !t.is_empty()) {
            return Some(Frame::data(tail));
        }
        self.done = true;
        Some(Frame::trailers(trailers(&tonic::Status::new(
            tonic::Code::Ok,
            "",
        ))))
    }

    /// The next records, about [`FRAME_BYTES`] of them; a read error ends the call with
    /// its status (the client sees the call fail, never a short answer).
    fn records_frame(&mut self) -> Frame<Bytes> {
        let mut buf = BytesMut::with_capacity(FRAME_BYTES + FRAME_BYTES / 4);
        let read = self.records.visit(self.next, |record| {
            encode_key(KVS, WireType::LengthDelimited, &mut buf);
            encode_varint(record.len() as u64, &mut buf);
            buf.put_slice(record);
            match buf.len() >= FRAME_BYTES {
                true => std::ops::ControlFlow::Break(()),
                false => std::ops::ControlFlow::Continue(()),
            }
        });
        match read {
            Ok(at) => {
                self.next = at;
                Frame::data(buf.freeze())
            }
            Err(e) => {
                self.done = true;
                tracing::error!("streaming a range response: {e}");
                Frame::trailers(trailers(&EtcdError::from(e).into()))
            }
        }
    }
}

impl http_body::Body for StreamedRange {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().next_frame().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A length-delimited field's size: key, length, bytes.
fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// `more` and `count` as prost writes them (left out when false or zero).
fn tail(more: bool, count: i64) -> Bytes {
    let mut buf = BytesMut::new();
    if more {
        encode_key(MORE, WireType::Varint, &mut buf);
        encode_varint(1, &mut buf);
    }
    if count != 0 {
        encode_key(COUNT, WireType::Varint, &mut buf);
        encode_varint(count as u64, &mut buf);
    }
    buf.freeze()
}

fn trailers(status: &tonic::Status) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    if status.add_header(&mut h).is_err() {
        h.insert("grpc-status", http::HeaderValue::from_static("13"));
    }
    h
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chorus_api::etcdserverpb::RangeResponse;
    use chorus_storage::backend::{Backend, BackendOptions};
    use chorus_storage::mvcc::{KvStore, RangeEnd, RangeOptions};
    use http_body::Body as _;

    use super::*;

    fn store(keys: usize) -> (tempfile::TempDir, KvStore) {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(&dir.path().join("db"), &BackendOptions::default()).unwrap();
        let (kv, _) = KvStore::open(Arc::new(backend)).unwrap();
        for round in 0..2 {
            let tx = kv.backend().begin_write().unwrap();
            let (rev, _, chunk) = {
                let mut batch = kv.write(&tx).unwrap();
                {
                    let mut t = batch.txn();
                    // The second round rewrites every third key: versions and revisions vary.
                    for i in (0..keys).filter(|i| round == 0 || i % 3 == 0) {
                        let value = format!("{round}-{i}-{}", "v".repeat(i % 300));
                        t.put(
                            format!("k/{i:05}").as_bytes(),
                            value.as_bytes(),
                            i as i64 % 4,
                        )
                        .unwrap();
                    }
                }
                batch.finish()
            };
            tx.commit().unwrap();
            kv.publish(rev, chunk);
        }
        (dir, kv)
    }

    /// Every frame of a body: the data joined, and the trailers.
    fn drain(mut body: StreamedRange) -> (Vec<u8>, http::HeaderMap) {
        let waker = futures::task::noop_waker_ref();
        let mut cx = Context::from_waker(waker);
        let mut data = Vec::new();
        loop {
            let frame = match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                other => panic!("the body ended without trailers: {other:?}"),
            };
            match frame.into_data() {
                Ok(bytes) => data.extend_from_slice(&bytes),
                Err(frame) => {
                    assert!(body.is_end_stream());
                    return (data, frame.into_trailers().expect("trailers"));
                }
            }
        }
    }

    #[test]
    fn writes_the_bytes_prost_writes_for_the_whole_response() {
        let (_dir, kv) = store(2_500);
        let header = ResponseHeader {
            cluster_id: 7,
            member_id: 9,
            revision: kv.current_rev(),
            raft_term: 3,
        };
        for limit in [0, 1_500, 2_500, 2_501] {
            let opts = RangeOptions {
                limit: if limit > 0 { limit + 1 } else { 0 },
                ..Default::default()
            };
            let mut records = kv
                .range_records(b"k/", RangeEnd::Before(b"k0"), opts)
                .unwrap();
            let more = limit > 0 && records.len() > limit;
            if more {
                records.truncate(limit);
            }
            let count = records.count as i64;
            let whole = RangeResponse {
                header: Some(header),
                kvs: records.decode().unwrap(),
                more,
                count,
            };
            let expect = if limit == 0 { 2_500 } else { limit.min(2_500) };
            assert_eq!(
                (whole.kvs.len(), count, more),
                (expect, 2_500, expect < 2_500)
            );
            let (data, trailers) =
                drain(StreamedRange::new(&header, records, more, count).unwrap());
            assert_eq!(data[0], 0, "not compressed");
            let len = u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize;
            assert_eq!(len, data.len() - 5);
            assert_eq!(
                &data[5..],
                whole.encode_to_vec().as_slice(),
                "limit {limit}"
            );
            assert_eq!(trailers.get("grpc-status").unwrap(), "0");
        }
    }

    #[test]
    fn only_plain_ranges_with_values_in_key_order_stream() {
        use range_request::{SortOrder, SortTarget};
        let prefix = RangeRequest {
            key: b"k/".to_vec(),
            range_end: b"k0".to_vec(),
            ..Default::default()
        };
        let ascending = RangeRequest {
            sort_order: SortOrder::Ascend as i32,
            ..prefix.clone()
        };
        for r in [prefix.clone(), ascending] {
            assert!(streamable(&r), "{r:?}");
        }
        let not = [
            RangeRequest {
                range_end: Vec::new(),
                ..prefix.clone()
            },
            RangeRequest {
                keys_only: true,
                ..prefix.clone()
            },
            RangeRequest {
                count_only: true,
                ..prefix.clone()
            },
            RangeRequest {
                sort_order: SortOrder::Descend as i32,
                ..prefix.clone()
            },
            RangeRequest {
                sort_target: SortTarget::Mod as i32,
                ..prefix.clone()
            },
            RangeRequest {
                sort_order: 9,
                ..prefix.clone()
            },
            RangeRequest {
                min_mod_revision: 1,
                ..prefix.clone()
            },
            RangeRequest {
                max_create_revision: 1,
                ..prefix.clone()
            },
        ];
        for r in not {
            assert!(!streamable(&r), "{r:?}");
        }
    }
}
