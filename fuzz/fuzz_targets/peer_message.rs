//! What a member decodes from another member: the batches of the `Raft.Stream` call
//! (`peerpb.RaftBatch`, prost) and each raft message in them (`eraftpb.Message`,
//! rust-protobuf, as `peer::service` parses it), the first chunk of a `Raft.Snapshot` call,
//! a `Raft.Members` answer (the dialer asks peers for the membership), and what the
//! entries of an append carry: an `InternalRequest` (apply), a `ConfChange` or
//! `ConfChangeV2` with a `Member` in its context (apply, raft). The snapshot's data is the
//! backend dump, fuzzed by `backend_restore`.
//!
//! Input: a selector byte, then the bytes. Contract: no panic, allocation bounded by the
//! input, and every message that decodes re-encodes to bytes that decode to the same value.
#![no_main]

use chorus_api::internalpb::{InternalRequest, Member};
use chorus_api::peerpb::{MembersResponse, RaftBatch, SnapshotChunk};
use libfuzzer_sys::fuzz_target;
use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType, Message};

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Some(batch) = prost_round_trip::<RaftBatch>(bytes) {
                batch.messages.iter().for_each(|m| raft_message(m));
            }
        }
        1 => {
            if let Some(chunk) = prost_round_trip::<SnapshotChunk>(bytes) {
                raft_message(&chunk.message);
            }
        }
        2 => {
            prost_round_trip::<MembersResponse>(bytes);
        }
        _ => raft_message(bytes),
    }
});

fn raft_message(bytes: &[u8]) {
    if let Some(m) = protobuf_round_trip::<Message>(bytes) {
        m.get_entries().iter().for_each(entry);
    }
}

fn entry(e: &Entry) {
    match e.get_entry_type() {
        EntryType::EntryNormal => {
            prost_round_trip::<InternalRequest>(&e.data);
        }
        EntryType::EntryConfChange => {
            if let Some(cc) = protobuf_round_trip::<ConfChange>(&e.data) {
                prost_round_trip::<Member>(&cc.context);
            }
        }
        EntryType::EntryConfChangeV2 => {
            if let Some(cc) = protobuf_round_trip::<ConfChangeV2>(&e.data) {
                prost_round_trip::<Member>(&cc.context);
            }
        }
    }
}

fn prost_round_trip<T: prost::Message + Default + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Option<T> {
    let value = T::decode(bytes).ok()?;
    let again = T::decode(value.encode_to_vec().as_slice()).expect("re-encoded message decodes");
    assert_eq!(again, value, "prost round trip");
    Some(value)
}

/// rust-protobuf keeps unknown fields in a hash map: their order in an encoding varies, and
/// `==` tells an emptied map from none (a singular message field that occurs twice is
/// cleared, then decoded again). So the round trip compares the known fields (text format)
/// and the encoded size, which unknown fields count in.
fn protobuf_round_trip<T: protobuf::Message>(bytes: &[u8]) -> Option<T> {
    let value = T::parse_from_bytes(bytes).ok()?;
    let encoded = value.write_to_bytes().expect("a decoded message encodes");
    let again = T::parse_from_bytes(&encoded).expect("re-encoded message decodes");
    assert_eq!(
        format!("{again:?}"),
        format!("{value:?}"),
        "protobuf round trip"
    );
    let size = again.write_to_bytes().expect("encodes").len();
    assert_eq!(size, encoded.len(), "protobuf round trip: encoded size");
    Some(value)
}
