//! The grpc-gateway's JSON bodies (pbjson deserializers of the etcdserverpb requests).
//! Contract: no panic, and what decodes re-encodes and decodes to the same value.
#![no_main]

use chorus_api::etcdserverpb as pb;
use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => round_trip::<pb::PutRequest>(body),
        1 => round_trip::<pb::RangeRequest>(body),
        2 => round_trip::<pb::DeleteRangeRequest>(body),
        3 => round_trip::<pb::TxnRequest>(body),
        4 => round_trip::<pb::LeaseGrantRequest>(body),
        5 => round_trip::<pb::WatchRequest>(body),
        6 => round_trip::<pb::AuthenticateRequest>(body),
        _ => round_trip::<pb::CompactionRequest>(body),
    }
});

fn round_trip<T>(body: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(value) = serde_json::from_slice::<T>(body) else {
        return;
    };
    let json = serde_json::to_vec(&value).expect("a decoded request serializes");
    let again: T = serde_json::from_slice(&json).expect("re-encoded JSON decodes");
    assert_eq!(again, value, "JSON round trip");
}
