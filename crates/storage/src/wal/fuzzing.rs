//! Entry points for the `fuzz/` crate (feature `fuzzing` only): the segment scanner and the
//! record codecs, with the round trips they promise. Each function panics when a contract is
//! broken, which is what the fuzzer looks for.

use super::record::{self, Frame, T_ENTRY, T_HARD_STATE, T_SEGMENT, T_SNAPSHOT};
use super::segment::{self, SegName};
use super::WalError;

/// Scans `buf` as the last segment `0000000000000000-0000000000000000.wal` and checks every
/// record it accepts with [`payload_round_trip`]. Returns the number of valid records.
pub fn scan_segment(buf: &[u8]) -> Result<usize, WalError> {
    let seg = SegName {
        seq: 0,
        first_index: 0,
    };
    let end = segment::scan(buf, seg, true, |ty, payload, _| {
        payload_round_trip(ty, payload);
        Ok(())
    })?;
    assert!(end.end <= buf.len(), "append position past the segment");
    if let Some((start, stop)) = end.torn {
        assert!(
            start <= stop && stop <= buf.len(),
            "torn range out of the segment"
        );
    }
    Ok(end.records)
}

/// Decodes the frame at the start of `buf`; a valid one must re-encode to the same bytes.
pub fn frame_round_trip(buf: &[u8]) {
    if let Frame::Record { ty, payload, len } = record::decode_frame(buf, 0) {
        let mut out = Vec::with_capacity(len);
        let appended = record::append_frame(&mut out, ty, |b| b.extend_from_slice(payload));
        assert!(appended.is_ok(), "a decoded frame does not re-encode");
        assert_eq!(out, buf[..len], "frame round trip");
        payload_round_trip(ty, payload);
    }
}

/// A payload that decodes as its type must re-encode to the same bytes (the codecs are
/// canonical: reserved bytes and flags are checked on decode).
pub fn payload_round_trip(ty: u8, payload: &[u8]) {
    let mut out = Vec::new();
    match ty {
        T_SEGMENT => match record::get_segment(payload) {
            Some((record::FORMAT_VERSION, seq, first)) => record::put_segment(&mut out, seq, first),
            _ => return,
        },
        T_SNAPSHOT => match record::get_snapshot(payload) {
            Some(s) => record::put_snapshot(&mut out, s),
            None => return,
        },
        T_HARD_STATE => match record::get_hard_state(payload) {
            Some(hs) => record::put_hard_state(&mut out, &hs),
            None => return,
        },
        T_ENTRY => match record::get_entry(payload) {
            Some(e) => {
                assert_eq!(record::entry_index(payload), Some(e.index));
                record::put_entry(&mut out, &e);
            }
            None => return,
        },
        _ => return,
    }
    assert_eq!(out, payload, "payload round trip for record type {ty}");
}
