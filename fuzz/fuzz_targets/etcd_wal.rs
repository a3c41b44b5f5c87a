//! etcd's WAL as `chorus migrate` reads it from a user's disk: the bytes are the only
//! segment. Contract: no panic, allocation bounded by the segment's size.
#![no_main]

use chorus_etcd_format::wal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let seg = dir.path().join("0000000000000000-0000000000000000.wal");
    std::fs::write(&seg, data).expect("write segment");
    if let Ok(contents) = wal::read_all(dir.path(), None) {
        assert_eq!(contents.segments.len(), 1);
    }
});
