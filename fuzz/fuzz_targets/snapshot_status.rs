//! Backup files as `chorusctl snapshot status` (`chorus_datadir::snapshot::status`) reads
//! them: told apart by content (etcd's bbolt file or chorus's dump), checked against their
//! SHA-256, restored into a scratch backend, counted and opened as a key-value store
//! (which rebuilds the revision index from the restored records).
//!
//! Input: the backup's content; the target pads it with zeros to a multiple of 512 bytes
//! and appends its SHA-256, as a backup is written, so the fuzzer gets past the hash.
//! Contract: no panic, allocation bounded by the file, and a backup whose status is read
//! reads the same status again.
#![no_main]

use chorus_datadir::snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = data.to_vec();
    file.resize(data.len().next_multiple_of(512), 0);
    let digest = ring::digest::digest(&ring::digest::SHA256, &file);
    file.extend_from_slice(digest.as_ref());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("backup.db");
    std::fs::write(&path, &file).expect("write backup");
    if let Ok(status) = snapshot::status(&path) {
        let again = snapshot::status(&path).expect("a readable backup reads again");
        assert_eq!(again, status, "status is deterministic");
    }
});
