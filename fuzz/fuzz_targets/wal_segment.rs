//! chorus's WAL: a segment image read back at startup. Contract: no panic, the scanner's
//! offsets stay inside the image, and every accepted frame and payload re-encodes to the
//! same bytes.
#![no_main]

use chorus_storage::wal::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::scan_segment(data);
    fuzzing::frame_round_trip(data);
    if let Some((&ty, payload)) = data.split_first() {
        fuzzing::payload_round_trip(ty, payload);
    }
});
