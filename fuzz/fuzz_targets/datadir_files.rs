//! chorus's own small data-dir files: the WAL metadata record (`chorus_datadir::WalMetadata`,
//! member and cluster IDs and the conf state) and raft snapshot files (`snap/*.snap`, read
//! at startup by `chorus_storage::snap::Snapshotter`).
//!
//! Input: a selector byte, then the bytes.
//! * metadata: no panic; what decodes encodes to bytes that decode to the same metadata.
//! * snapshot file: the bytes are `snap/0000000000000001-0000000000000001.snap` (with the
//!   CRC at bytes 8..12 recomputed when the selector's bit 1 is set, so that the fuzzer
//!   gets past it to the metadata). Contract: no panic, allocation bounded by the file; a
//!   snapshot that loads saves and loads to the same snapshot; a file that does not load
//!   is renamed to `.broken` and not offered again.
#![no_main]

use chorus_datadir::WalMetadata;
use chorus_storage::snap::Snapshotter;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "0000000000000001-0000000000000001.snap";

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        metadata(bytes);
    } else {
        snapshot_file(bytes, which & 2 != 0);
    }
});

fn metadata(bytes: &[u8]) {
    if let Some(m) = WalMetadata::decode(bytes) {
        assert_eq!(
            WalMetadata::decode(&m.encode()),
            Some(m),
            "metadata round trip"
        );
    }
}

fn snapshot_file(bytes: &[u8], fix_crc: bool) {
    let mut file = bytes.to_vec();
    if fix_crc && file.len() >= 24 {
        let crc = crc32c::crc32c(&file[12..]);
        file[8..12].copy_from_slice(&crc.to_le_bytes());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(NAME), &file).expect("write snapshot");
    let snaps = Snapshotter::new(dir.path());
    let Some(loaded) = snaps.load_newest().expect("load") else {
        assert!(dir.path().join(format!("{NAME}.broken")).exists());
        assert!(snaps.load_newest().expect("load again").is_none());
        return;
    };
    let other = Snapshotter::new(dir.path().join("again"));
    other.save(&loaded).expect("save a loaded snapshot");
    let again = other
        .load_newest()
        .expect("load")
        .expect("a saved snapshot loads");
    assert!(again == loaded, "snapshot file round trip");
}
