//! Binary wire compatibility: messages encoded by prost must match, byte for byte, what the
//! protobuf encoding rules give for etcd's field numbers and types. Every expected byte string
//! below was derived by hand; the comments show the derivation (tag = field << 3 | wire type).

use chorus_api::etcdserverpb::{
    compare, range_request, watch_create_request, watch_request, Compare, LeaseGrantRequest,
    PutRequest, RangeRequest, ResponseHeader, WatchCreateRequest, WatchProgressRequest,
    WatchRequest, WatchResponse,
};
use chorus_api::mvccpb::{Event, KeyValue};
use prost::Message;

fn check<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M, expected: &[u8]) {
    assert_eq!(msg.encode_to_vec(), expected, "encoding of {msg:?}");
    assert_eq!(
        &M::decode(expected).expect("decode"),
        msg,
        "decoding of {expected:02x?}"
    );
}

#[test]
fn put_request_bytes() {
    let msg = PutRequest {
        key: b"foo".to_vec(),
        value: b"bar".to_vec(),
        lease: 300,
        prev_kv: true,
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected = [
        0x0a, 0x03, b'f', b'o', b'o', // 1 key: LEN
        0x12, 0x03, b'b', b'a', b'r', // 2 value: LEN
        0x18, 0xac, 0x02,             // 3 lease: VARINT 300
        0x20, 0x01,                   // 4 prev_kv: true
        // 5 ignore_value, 6 ignore_lease: false, so absent
    ];
    check(&msg, &expected);
}

#[test]
fn range_request_bytes() {
    let msg = RangeRequest {
        key: b"a".to_vec(),
        range_end: b"b".to_vec(),
        limit: 10,
        revision: -1,
        sort_order: range_request::SortOrder::Descend as i32,
        sort_target: range_request::SortTarget::Mod as i32,
        serializable: true,
        max_create_revision: 5,
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected = [
        0x0a, 0x01, b'a',       // 1 key
        0x12, 0x01, b'b',       // 2 range_end
        0x18, 0x0a,             // 3 limit 10
        // 4 revision -1: int64 (not sint64), so a ten-byte two's-complement varint
        0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        0x28, 0x02,             // 5 sort_order DESCEND
        0x30, 0x03,             // 6 sort_target MOD
        0x38, 0x01,             // 7 serializable
        0x68, 0x05,             // 13 max_create_revision: tag 13 << 3 = 0x68
    ];
    check(&msg, &expected);
}

#[test]
fn watch_request_create_bytes() {
    let msg = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: b"k".to_vec(),
                range_end: vec![0],
                start_revision: 5,
                progress_notify: true,
                filters: vec![watch_create_request::FilterType::Nodelete as i32],
                prev_kv: true,
                watch_id: 0,
                fragment: true,
            },
        )),
    };
    #[rustfmt::skip]
    let expected = [
        0x0a, 0x11,             // oneof member 1 create_request: LEN 17
        0x0a, 0x01, b'k',       //   1 key
        0x12, 0x01, 0x00,       //   2 range_end "\0"
        0x18, 0x05,             //   3 start_revision
        0x20, 0x01,             //   4 progress_notify
        0x2a, 0x01, 0x01,       //   5 filters: proto3 repeated enum is packed (LEN) -> [NODELETE]
        0x30, 0x01,             //   6 prev_kv
        // 7 watch_id 0: absent
        0x40, 0x01,             //   8 fragment
    ];
    check(&msg, &expected);
}

#[test]
fn watch_request_progress_is_an_empty_but_present_field() {
    let msg = WatchRequest {
        request_union: Some(watch_request::RequestUnion::ProgressRequest(
            WatchProgressRequest {},
        )),
    };
    // 3 progress_request: LEN 0. A set oneof member is always written, even when empty.
    check(&msg, &[0x1a, 0x00]);
}

#[test]
fn compare_target_union_bytes() {
    // A set oneof member is written even when it holds the default (mod_revision == 0,
    // "key does not exist"), and range_end sits at field 64 with a two-byte tag.
    let msg = Compare {
        result: compare::CompareResult::NotEqual as i32,
        target: compare::CompareTarget::Mod as i32,
        key: b"k".to_vec(),
        target_union: Some(compare::TargetUnion::ModRevision(0)),
        range_end: b"l".to_vec(),
    };
    #[rustfmt::skip]
    let expected = [
        0x08, 0x03,             // 1 result NOT_EQUAL
        0x10, 0x02,             // 2 target MOD
        0x1a, 0x01, b'k',       // 3 key
        0x30, 0x00,             // 6 mod_revision 0 (oneof, so present)
        0x82, 0x04, 0x01, b'l', // 64 range_end: tag 64 << 3 | 2 = 514 = varint 0x82 0x04
    ];
    check(&msg, &expected);

    let msg = Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Value as i32,
        key: b"k".to_vec(),
        target_union: Some(compare::TargetUnion::Value(b"v".to_vec())),
        range_end: Vec::new(),
    };
    #[rustfmt::skip]
    let expected = [
        // 1 result EQUAL (0): absent
        0x10, 0x03,             // 2 target VALUE
        0x1a, 0x01, b'k',       // 3 key
        0x3a, 0x01, b'v',       // 7 value: LEN
    ];
    check(&msg, &expected);
}

#[test]
fn watch_response_events_at_field_11() {
    let msg = WatchResponse {
        header: Some(ResponseHeader {
            revision: 7,
            ..Default::default()
        }),
        watch_id: 1,
        events: vec![Event {
            r#type: chorus_api::mvccpb::event::EventType::Put as i32,
            kv: Some(KeyValue {
                key: b"k".to_vec(),
                mod_revision: 7,
                ..Default::default()
            }),
            prev_kv: None,
        }],
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected = [
        0x0a, 0x02, 0x18, 0x07,             // 1 header { 3 revision 7 }
        0x10, 0x01,                         // 2 watch_id 1
        0x5a, 0x07,                         // 11 events: tag 11 << 3 | 2 = 0x5a
        0x12, 0x05,                         //   2 kv (1 type PUT = 0: absent)
        0x0a, 0x01, b'k',                   //     1 key
        0x18, 0x07,                         //     3 mod_revision 7
    ];
    check(&msg, &expected);
}

#[test]
fn lease_grant_request_upper_case_fields() {
    // Proto fields `TTL` and `ID` become Rust `ttl` and `id`; numbers 1 and 2.
    let msg = LeaseGrantRequest { ttl: 60, id: 0x10 };
    check(&msg, &[0x08, 0x3c, 0x10, 0x10]);
}
