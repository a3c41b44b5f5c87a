//! JSON compatibility with etcd's grpc-gateway (`/v3/*`): grpc-gateway v1's default marshaler
//! (`JSONPb{OrigName: true}`) writes proto field names, 64-bit integers as strings, bytes as
//! standard base64, enums by name, and leaves out default values; it reads proto or
//! lowerCamelCase names and skips unknown fields.

use chorus_api::etcdserverpb::{
    compare, request_op, AlarmMember, AlarmType, Compare, LeaseGrantResponse, Member, PutRequest,
    RangeResponse, ResponseHeader, TxnRequest,
};
use chorus_api::mvccpb::{event::EventType, Event, KeyValue};
use serde_json::json;

fn header() -> ResponseHeader {
    ResponseHeader {
        cluster_id: 14841639068965178418,
        member_id: 10276657743932975437,
        revision: 5,
        raft_term: 2,
    }
}

#[test]
fn range_response_json() {
    let resp = RangeResponse {
        header: Some(header()),
        kvs: vec![KeyValue {
            key: b"foo".to_vec(),
            create_revision: 2,
            mod_revision: 5,
            version: 4,
            value: b"bar".to_vec(),
            lease: 0,
        }],
        more: false,
        count: 1,
    };
    assert_eq!(
        serde_json::to_string(&resp).unwrap(),
        concat!(
            r#"{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","#,
            r#""revision":"5","raft_term":"2"},"#,
            r#""kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"5","version":"4","#,
            r#""value":"YmFy"}],"#,
            r#""count":"1"}"#,
        )
    );
    let back: RangeResponse = serde_json::from_str(&serde_json::to_string(&resp).unwrap()).unwrap();
    assert_eq!(back, resp);
}

#[test]
fn empty_messages_are_empty_objects() {
    assert_eq!(
        serde_json::to_string(&RangeResponse::default()).unwrap(),
        "{}"
    );
    let resp = RangeResponse {
        header: Some(ResponseHeader::default()),
        ..Default::default()
    };
    assert_eq!(serde_json::to_string(&resp).unwrap(), r#"{"header":{}}"#);
}

#[test]
fn put_request_from_json() {
    let req: PutRequest = serde_json::from_str(r#"{"key":"Zm9v","value":"YmFy"}"#).unwrap();
    assert_eq!(
        req,
        PutRequest {
            key: b"foo".to_vec(),
            value: b"bar".to_vec(),
            ..Default::default()
        }
    );
}

#[test]
fn put_request_accepts_camel_case_numbers_and_unknown_fields() {
    let req: PutRequest = serde_json::from_str(
        r#"{"key":"Zm9v","prevKv":true,"ignore_lease":true,"lease":7,"no_such_field":[1]}"#,
    )
    .unwrap();
    assert_eq!(
        req,
        PutRequest {
            key: b"foo".to_vec(),
            lease: 7,
            prev_kv: true,
            ignore_lease: true,
            ..Default::default()
        }
    );
    let req: PutRequest = serde_json::from_str(r#"{"lease":"7"}"#).unwrap();
    assert_eq!(req.lease, 7);
}

#[test]
fn txn_request_from_gateway_example() {
    // The transaction body from etcd's gateway documentation.
    let req: TxnRequest = serde_json::from_str(
        r#"{"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],
            "success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}]}"#,
    )
    .unwrap();
    assert_eq!(
        req,
        TxnRequest {
            compare: vec![Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Create as i32,
                key: b"foo".to_vec(),
                target_union: Some(compare::TargetUnion::CreateRevision(2)),
                range_end: Vec::new(),
            }],
            success: vec![chorus_api::etcdserverpb::RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: b"foo".to_vec(),
                    value: b"bar".to_vec(),
                    ..Default::default()
                })),
            }],
            failure: Vec::new(),
        }
    );
}

#[test]
fn oneof_member_with_default_value_is_written() {
    let cmp = Compare {
        target: compare::CompareTarget::Mod as i32,
        key: b"foo".to_vec(),
        target_union: Some(compare::TargetUnion::ModRevision(0)),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&cmp).unwrap(),
        json!({"target": "MOD", "key": "Zm9v", "mod_revision": "0"})
    );
}

#[test]
fn upper_and_camel_case_proto_names_are_kept() {
    let resp = LeaseGrantResponse {
        header: None,
        id: 7587,
        ttl: 60,
        error: String::new(),
    };
    assert_eq!(
        serde_json::to_string(&resp).unwrap(),
        r#"{"ID":"7587","TTL":"60"}"#
    );

    let member = Member {
        id: 1,
        name: "n1".into(),
        peer_ur_ls: vec!["http://a:2380".into()],
        client_ur_ls: vec![],
        is_learner: true,
    };
    assert_eq!(
        serde_json::to_string(&member).unwrap(),
        r#"{"ID":"1","name":"n1","peerURLs":["http://a:2380"],"isLearner":true}"#
    );
}

#[test]
fn enums_by_name() {
    let alarm = AlarmMember {
        member_id: 1,
        alarm: AlarmType::Nospace as i32,
    };
    assert_eq!(
        serde_json::to_string(&alarm).unwrap(),
        r#"{"memberID":"1","alarm":"NOSPACE"}"#
    );
    let ev = Event {
        r#type: EventType::Delete as i32,
        kv: Some(KeyValue {
            key: b"k".to_vec(),
            ..Default::default()
        }),
        prev_kv: None,
    };
    assert_eq!(
        serde_json::to_string(&ev).unwrap(),
        r#"{"type":"DELETE","kv":{"key":"aw=="}}"#
    );
    // Enum values are also accepted as numbers on input.
    let back: AlarmMember = serde_json::from_str(r#"{"memberID":"1","alarm":1}"#).unwrap();
    assert_eq!(back, alarm);
}
