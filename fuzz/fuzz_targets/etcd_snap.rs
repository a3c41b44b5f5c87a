//! etcd's `.snap` files and the v2 store JSON inside them. Contract: no panic, a clear error
//! for anything that is not a snapshot.
#![no_main]

use chorus_etcd_format::snap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("0000000000000001-0000000000000001.snap");
    std::fs::write(&path, data).expect("write snap");
    if let Ok(s) = snap::read_snap_file(&path) {
        check_store(&s.data);
    }
    check_store(data);
});

fn check_store(data: &[u8]) {
    if let Ok(store) = snap::parse_v2_store(data) {
        let _ = store.cluster_version();
        let _ = store.membership();
    }
}
