//! WAL decoding against segments framed here the way etcd's encoder frames them.

use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::proto::etcdserverpb_raft::Metadata;
use crate::proto::raftpb::{Entry, HardState};
use crate::proto::walpb;

/// etcd's encoder: rolling CRC-32C, 8-byte alignment with the padding in the length word.
struct Encoder {
    crc: u32,
    buf: Vec<u8>,
}

impl Encoder {
    fn new(prev_crc: u32) -> Encoder {
        let mut e = Encoder {
            crc: prev_crc,
            buf: Vec::new(),
        };
        e.record(CRC_TYPE, &[]);
        e.record(
            METADATA_TYPE,
            &Metadata {
                node_id: 1,
                cluster_id: 2,
            }
            .encode_to_vec(),
        );
        e
    }

    fn record(&mut self, typ: i64, data: &[u8]) {
        if typ != CRC_TYPE {
            self.crc = crc32c::crc32c_append(self.crc, data);
        }
        let rec = walpb::Record {
            r#type: typ,
            crc: self.crc,
            data: data.to_vec(),
        }
        .encode_to_vec();
        let pad = (8 - rec.len() % 8) % 8;
        let mut word = rec.len() as u64;
        if pad != 0 {
            word |= (0x80 | pad as u64) << 56;
        }
        self.buf.extend_from_slice(&word.to_le_bytes());
        self.buf.extend_from_slice(&rec);
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    fn entry(&mut self, term: u64, index: u64, data: &[u8]) {
        let e = Entry {
            term,
            index,
            r#type: 0,
            data: data.to_vec(),
        };
        self.record(ENTRY_TYPE, &e.encode_to_vec());
    }

    /// The segment with `zeros` bytes of preallocated space after it.
    fn finish(&self, zeros: usize) -> Vec<u8> {
        let mut b = self.buf.clone();
        b.extend(std::iter::repeat_n(0u8, zeros));
        b
    }
}

/// Two segments: entries 1..=5 then 6..=9 (with 8 and 9 rewritten at term 3).
fn sample() -> (Vec<u8>, Vec<u8>) {
    let mut a = Encoder::new(0);
    a.record(SNAPSHOT_TYPE, &walpb::Snapshot::default().encode_to_vec());
    for i in 1..=5 {
        a.entry(1, i, format!("entry {i}").as_bytes());
    }
    a.record(
        STATE_TYPE,
        &HardState {
            term: 1,
            vote: 1,
            commit: 5,
        }
        .encode_to_vec(),
    );
    let mut b = Encoder::new(a.crc);
    for i in 6..=9 {
        b.entry(2, i, &vec![i as u8; 700]);
    }
    b.entry(3, 8, b"rewritten 8");
    b.entry(3, 9, b"rewritten 9");
    b.record(
        STATE_TYPE,
        &HardState {
            term: 3,
            vote: 1,
            commit: 9,
        }
        .encode_to_vec(),
    );
    (a.finish(0), b.finish(4096))
}

fn write_dir(segs: &[Vec<u8>]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let index = [0u64, 6, 10, 20];
    for (i, s) in segs.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("{:016x}-{:016x}.wal", i, index[i])),
            s,
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("ignored.tmp"), b"junk").unwrap();
    dir
}

#[test]
fn reads_entries_state_and_metadata_across_segments() {
    let (a, b) = sample();
    let dir = write_dir(&[a, b]);
    let w = read_all(dir.path(), None).unwrap();
    assert_eq!(w.segments.len(), 2);
    assert_eq!(
        w.metadata,
        Some(Metadata {
            node_id: 1,
            cluster_id: 2
        })
    );
    assert_eq!(
        w.hard_state,
        Some(HardState {
            term: 3,
            vote: 1,
            commit: 9
        })
    );
    let idx: Vec<(u64, u64)> = w.entries.iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(
        idx,
        vec![
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 1),
            (5, 1),
            (6, 2),
            (7, 2),
            (8, 3),
            (9, 3)
        ]
    );
    assert_eq!(w.entries[8].data, b"rewritten 9");
    assert_eq!(w.snapshots.len(), 1);
    assert_eq!(w.torn_tail, None);
    // From a snapshot at index 0: the same; from one that is not in the WAL: an error.
    assert_eq!(read_all(dir.path(), Some((0, 0))).unwrap().entries.len(), 9);
    assert!(matches!(
        read_all(dir.path(), Some((7, 2))),
        Err(WalError::SnapshotNotFound { .. })
    ));
}

#[test]
fn torn_tail_of_last_segment_stops_reading() {
    let (a, b) = sample();
    let used = b.len() - 4096;
    for cut in [used - 1, used - 5, used - 9, used - 300, 37] {
        let dir = write_dir(&[a.clone(), b[..cut].to_vec()]);
        let w = read_all(dir.path(), None).unwrap();
        let torn = w
            .torn_tail
            .unwrap_or_else(|| panic!("cut at {cut}: no torn tail"));
        assert!(torn.offset <= cut as u64);
        assert!(w.entries.len() >= 5);
    }
    // A zeroed sector inside the last record: torn as well.
    let mut zeroed = b.clone();
    zeroed[used - 16..used].fill(0);
    let w = read_all(write_dir(&[a.clone(), zeroed]).path(), None).unwrap();
    assert!(w.torn_tail.is_some());
    assert_eq!(
        w.entries.len(),
        9,
        "the zeroed record was the last state, which is lost"
    );
    assert_eq!(
        w.hard_state,
        Some(HardState {
            term: 1,
            vote: 1,
            commit: 5
        })
    );
}

#[test]
fn damage_in_an_earlier_segment_is_an_error() {
    let (a, b) = sample();
    let err = read_all(
        write_dir(&[a[..a.len() - 3].to_vec(), b.clone()]).path(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("0000000000000000-0000000000000000.wal"),
        "{err}"
    );
    let mut flipped = a.clone();
    let n = flipped.len();
    flipped[n - 2] ^= 0x40;
    let err = read_all(write_dir(&[flipped, b.clone()]).path(), None).unwrap_err();
    assert!(
        matches!(err, WalError::CrcMismatch { .. } | WalError::Corrupt { .. }),
        "{err}"
    );
    // A flipped byte (not a zeroed sector) in the last segment is damage too.
    let mut flipped = b.clone();
    flipped[200] ^= 0x01;
    assert!(read_all(write_dir(&[a.clone(), flipped]).path(), None).is_err());
    // A missing segment.
    let dir = write_dir(&[a.clone(), b.clone()]);
    std::fs::rename(
        dir.path().join("0000000000000001-0000000000000006.wal"),
        dir.path().join("0000000000000002-0000000000000006.wal"),
    )
    .unwrap();
    assert!(matches!(
        read_all(dir.path(), None),
        Err(WalError::SequenceGap { .. })
    ));
}

#[test]
fn hostile_segments_never_panic() {
    let (a, b) = sample();
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..400 {
        let (mut x, mut y) = (a.clone(), b.clone());
        let target = if rng.gen() { &mut x } else { &mut y };
        for _ in 0..rng.gen_range(1..4) {
            let pos = rng.gen_range(0..target.len());
            target[pos] = rng.gen();
        }
        let _ = read_all(write_dir(&[x, y]).path(), None);
    }
    // A length word claiming 2^55 bytes, and one with every bit set.
    for word in [1u64 << 55, u64::MAX, 0x8700_0000_0000_0001] {
        let mut y = b.clone();
        y[..8].copy_from_slice(&word.to_le_bytes());
        let _ = read_all(write_dir(&[a.clone(), y]).path(), None)
            .map(|w| assert!(w.torn_tail.is_some()));
    }
}
