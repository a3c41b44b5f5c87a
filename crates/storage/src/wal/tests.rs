use std::fs;
use std::path::{Path, PathBuf};

use raft::eraftpb::{Entry, EntryType, HardState};
use rand::{Rng, SeedableRng};

use super::record::{decode_frame, Frame};
use super::*;

fn opts(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        unsafe_no_fsync: false,
    }
}

/// For the exhaustive tests: thousands of opens, fsync would dominate.
fn fast_opts(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        unsafe_no_fsync: true,
    }
}

fn ent(index: u64, term: u64, len: usize) -> Entry {
    Entry {
        index,
        term,
        entry_type: match index % 7 {
            0 => EntryType::EntryConfChange,
            3 => EntryType::EntryConfChangeV2,
            _ => EntryType::EntryNormal,
        },
        sync_log: index % 5 == 0,
        data: (0..len)
            .map(|i| (i as u64 * 31 + index * 7 + term) as u8)
            .collect::<Vec<u8>>()
            .into(),
        context: if index % 4 == 0 {
            vec![index as u8; 3].into()
        } else {
            Default::default()
        },
        ..Default::default()
    }
}

fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

fn snap(index: u64, term: u64) -> WalSnapshot {
    WalSnapshot { index, term }
}

/// Overwrites a file in place (no truncation to zero first; avoids ext4's flush-on-truncate heuristics).
fn overwrite(path: &Path, img: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    if f.metadata().unwrap().len() != img.len() as u64 {
        f.set_len(img.len() as u64).unwrap();
    }
    f.write_all_at(img, 0).unwrap();
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

fn all_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Applies raft's append rule to a model log (entries after `base`).
fn model_append(log: &mut Vec<Entry>, base: u64, e: &Entry) {
    if e.index <= base {
        log.clear();
        return;
    }
    log.truncate((e.index - base - 1) as usize);
    assert_eq!(log.len() as u64, e.index - base - 1, "test writes a gap");
    log.push(e.clone());
}

/// (entries, hard state) after each op prefix.
#[derive(Clone)]
enum Op {
    E(Entry),
    H(HardState),
}

fn model_states(ops: &[Op]) -> Vec<(Vec<Entry>, HardState)> {
    let mut out = vec![(Vec::new(), HardState::default())];
    let (mut log, mut h) = (Vec::new(), HardState::default());
    for op in ops {
        match op {
            Op::E(e) => model_append(&mut log, 0, e),
            Op::H(x) => h = x.clone(),
        }
        out.push((log.clone(), h.clone()));
    }
    out
}

/// A log with overwrites and hard states, one record per save, spread over a few segments.
fn small_log_ops() -> Vec<Op> {
    let mut ops = Vec::new();
    let mut term = 1;
    let mut next = 1u64;
    for i in 0..24u64 {
        if i == 10 || i == 17 {
            // leader change: overwrite the last two entries
            term += 1;
            next -= 2;
        }
        ops.push(Op::E(ent(next, term, (i as usize * 13) % 40)));
        next += 1;
        if i % 3 == 2 {
            ops.push(Op::H(hs(term, 1, next - 2)));
        }
    }
    ops
}

fn write_ops(wal: &mut Wal, ops: &[Op]) {
    for op in ops {
        match op {
            Op::E(e) => wal.save(None, std::slice::from_ref(e), true).unwrap(),
            Op::H(h) => wal.save(Some(h), &[], true).unwrap(),
        }
    }
}

fn check_state(st: &ReplayState, want: &(Vec<Entry>, HardState)) -> bool {
    st.entries == want.0 && st.hard_state == want.1 && st.metadata == b"meta"
}

// ---------------------------------------------------------------------------

#[test]
fn roundtrip_across_segments() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("wal");
    assert!(!Wal::exists(&dir));
    let meta = b"node=1 cluster=7".to_vec();
    let mut wal = Wal::create(&dir, &meta, opts(1024)).unwrap();
    assert!(Wal::exists(&dir));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut want = Vec::new();
    let mut state = HardState::default();
    let mut index = 1;
    for round in 0..60 {
        let n = rng.gen_range(1..5);
        let batch: Vec<Entry> = (0..n)
            .map(|k| ent(index + k, 1 + round / 20, rng.gen_range(0..300)))
            .collect();
        index += n;
        state = hs(1 + round / 20, 1, index - 2);
        let with_hs = round % 2 == 0;
        wal.save(with_hs.then_some(&state), &batch, round % 3 != 1)
            .unwrap();
        if !with_hs {
            // keep the model in sync with what was actually saved
            state = hs(1 + (round - 1) / 20, 1, index - 2 - n);
        }
        want.extend(batch);
    }
    wal.sync().unwrap();
    assert_eq!(wal.last_index(), index - 1);
    drop(wal);
    assert!(segment_files(&dir).len() > 10, "{:?}", segment_files(&dir));

    let (mut wal, st) = Wal::open(&dir, WalSnapshot::default(), opts(1024)).unwrap();
    assert_eq!(st.metadata, meta);
    assert_eq!(st.entries, want);
    assert_eq!(st.hard_state, state);
    // Append after reopen, reopen again.
    let more: Vec<Entry> = (index..index + 10).map(|i| ent(i, 9, 100)).collect();
    wal.save(Some(&hs(9, 2, index)), &more, true).unwrap();
    drop(wal);
    want.extend(more);
    let (_wal, st) = Wal::open(&dir, WalSnapshot::default(), opts(1024)).unwrap();
    assert_eq!(st.entries, want);
    assert_eq!(st.hard_state, hs(9, 2, index));
    assert!(!all_files(&dir)
        .iter()
        .any(|f| f.ends_with(".tmp") && f != "wal.lock"));
}

#[test]
fn create_refuses_existing_and_open_refuses_missing() {
    let d = tempfile::tempdir().unwrap();
    let wal = Wal::create(d.path(), b"", opts(4096)).unwrap();
    drop(wal);
    assert!(matches!(
        Wal::create(d.path(), b"", opts(4096)),
        Err(WalError::AlreadyExists(_))
    ));
    let (_w, st) = Wal::open(d.path(), WalSnapshot::default(), opts(4096)).unwrap();
    assert!(st.metadata.is_empty() && st.entries.is_empty());
    assert_eq!(st.hard_state, HardState::default());
    let e = tempfile::tempdir().unwrap();
    assert!(matches!(
        Wal::open(e.path(), WalSnapshot::default(), opts(4096)),
        Err(WalError::NotFound(_))
    ));
    assert!(matches!(
        Wal::open(&e.path().join("nope"), WalSnapshot::default(), opts(4096)),
        Err(WalError::NotFound(_))
    ));
}

#[test]
fn conflicting_entries_supersede() {
    let d = tempfile::tempdir().unwrap();
    let mut wal = Wal::create(d.path(), b"meta", opts(512)).unwrap();
    let e = |i, t| ent(i, t, 50);
    wal.save(None, &(1..=10).map(|i| e(i, 1)).collect::<Vec<_>>(), true)
        .unwrap();
    // New leader overwrites 6..: entries 6..10 of term 1 are dropped.
    wal.save(None, &(6..=8).map(|i| e(i, 2)).collect::<Vec<_>>(), true)
        .unwrap();
    // Another overwrite in the middle of term 2's entries, in a separate batch.
    wal.save(None, &[e(7, 3)], true).unwrap();
    wal.save(Some(&hs(3, 1, 5)), &[], true).unwrap();
    drop(wal);
    assert!(segment_files(d.path()).len() > 1);
    let (mut wal, st) = Wal::open(d.path(), WalSnapshot::default(), opts(512)).unwrap();
    let want: Vec<Entry> = (1..=5).map(|i| e(i, 1)).chain([e(6, 2), e(7, 3)]).collect();
    assert_eq!(st.entries, want);
    assert_eq!(st.hard_state, hs(3, 1, 5));

    // A marker at 6, then a rewrite at or below it drops everything read after it.
    wal.save_snapshot(snap(6, 2)).unwrap();
    wal.save(None, &[e(8, 3), e(9, 3)], true).unwrap();
    wal.save(None, &[e(5, 4), e(6, 4), e(7, 4)], true).unwrap();
    drop(wal);
    let (_wal, st) = Wal::open(d.path(), snap(6, 2), opts(512)).unwrap();
    assert_eq!(st.entries, vec![e(7, 4)]);
}

#[test]
fn snapshot_markers_and_replay_from_marker() {
    let d = tempfile::tempdir().unwrap();
    let mut wal = Wal::create(d.path(), b"meta", opts(2048)).unwrap();
    let all: Vec<Entry> = (1..=50).map(|i| ent(i, 1 + i / 25, 64)).collect();
    wal.save(Some(&hs(1, 1, 20)), &all[..30], true).unwrap();
    wal.save_snapshot(snap(20, 1)).unwrap();
    wal.save(Some(&hs(2, 1, 45)), &all[30..], true).unwrap();
    wal.save_snapshot(snap(40, 2)).unwrap();
    drop(wal);

    let (_w, st) = Wal::open(d.path(), snap(20, 1), opts(2048)).unwrap();
    assert_eq!(st.entries, all[20..]);
    assert_eq!(st.hard_state, hs(2, 1, 45));
    drop(_w);
    let (_w, st) = Wal::open(d.path(), snap(40, 2), opts(2048)).unwrap();
    assert_eq!(st.entries, all[40..]);
    drop(_w);
    let (_w, st) = Wal::open(d.path(), WalSnapshot::default(), opts(2048)).unwrap();
    assert_eq!(st.entries, all);
    drop(_w);
    assert!(matches!(
        Wal::open(d.path(), snap(20, 2), opts(2048)),
        Err(WalError::SnapshotMismatch {
            index: 20,
            expected: 2,
            found: 1
        })
    ));
    assert!(matches!(
        Wal::open(d.path(), snap(30, 1), opts(2048)),
        Err(WalError::SnapshotNotFound { index: 30, .. })
    ));
    assert_eq!(
        Wal::valid_snapshot_markers(d.path()).unwrap(),
        vec![snap(0, 0), snap(20, 1), snap(40, 2)]
    );
}

#[test]
fn valid_snapshot_markers_respect_commit() {
    let d = tempfile::tempdir().unwrap();
    let mut wal = Wal::create(d.path(), b"meta", opts(4096)).unwrap();
    let all: Vec<Entry> = (1..=30).map(|i| ent(i, 1, 10)).collect();
    wal.save(Some(&hs(1, 1, 15)), &all, true).unwrap();
    wal.save_snapshot(snap(10, 1)).unwrap();
    wal.save_snapshot(snap(20, 1)).unwrap(); // beyond the commit index: not usable
    drop(wal);
    assert_eq!(
        Wal::valid_snapshot_markers(d.path()).unwrap(),
        vec![snap(0, 0), snap(10, 1)]
    );
}

#[test]
fn release_to_deletes_only_whole_old_segments() {
    let d = tempfile::tempdir().unwrap();
    let o = || opts(1024);
    let mut wal = Wal::create(d.path(), b"meta", o()).unwrap();
    let all: Vec<Entry> = (1..=100).map(|i| ent(i, 1, 90)).collect();
    for (k, c) in all.chunks(3).enumerate() {
        let last = c.last().unwrap().index;
        wal.save(Some(&hs(1, 1, last)), c, true).unwrap();
        if k == 20 {
            wal.save_snapshot(snap(last, 1)).unwrap();
            assert_eq!(last, 63);
        }
    }
    let before: Vec<SegName> = segment_files(d.path())
        .iter()
        .map(|p| SegName::parse(p.file_name().unwrap().to_str().unwrap()).unwrap())
        .collect();
    assert!(before.len() > 8);
    wal.release_to(63).unwrap();
    let after: Vec<SegName> = segment_files(d.path())
        .iter()
        .map(|p| SegName::parse(p.file_name().unwrap().to_str().unwrap()).unwrap())
        .collect();
    let removed = before.len() - after.len();
    assert!(removed > 0);
    assert_eq!(before[removed..], after[..]);
    // The first kept segment starts at or below 63 (it may contain 63) and the next one
    // starts above it: only whole segments below it were deleted.
    assert!(before[removed].first_index <= 63);
    assert!(before[removed + 1].first_index > 63);
    // Releasing again, or to a lower index, is a no-op.
    wal.release_to(63).unwrap();
    wal.release_to(10).unwrap();
    assert_eq!(segment_files(d.path()).len(), after.len());
    wal.save(None, &[ent(101, 1, 10)], true).unwrap();
    drop(wal);

    let (_w, st) = Wal::open(d.path(), snap(63, 1), o()).unwrap();
    let mut want = all[63..].to_vec();
    want.push(ent(101, 1, 10));
    assert_eq!(st.entries, want);
    assert_eq!(st.hard_state, hs(1, 1, 100));
    drop(_w);
    assert!(matches!(
        Wal::open(d.path(), WalSnapshot::default(), o()),
        Err(WalError::IndexReleased { index: 0, .. })
    ));
    assert_eq!(
        Wal::valid_snapshot_markers(d.path()).unwrap(),
        vec![snap(63, 1)]
    );
}

#[test]
fn second_open_is_locked() {
    let d = tempfile::tempdir().unwrap();
    let wal = Wal::create(d.path(), b"meta", opts(4096)).unwrap();
    let err = Wal::open(d.path(), WalSnapshot::default(), opts(4096)).unwrap_err();
    assert!(matches!(err, WalError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("locked"), "{err}");
    drop(wal);
    let (wal, _) = Wal::open(d.path(), WalSnapshot::default(), opts(4096)).unwrap();
    assert!(matches!(
        Wal::open(d.path(), WalSnapshot::default(), opts(4096)),
        Err(WalError::Locked { .. })
    ));
    drop(wal);
}

#[test]
fn empty_save_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut wal = Wal::create(d.path(), b"meta", opts(4096)).unwrap();
    wal.save(None, &[ent(1, 1, 10)], true).unwrap();
    let seg = segment_files(d.path()).pop().unwrap();
    let img = fs::read(&seg).unwrap();
    let off = wal.offset;
    wal.save(None, &[], true).unwrap();
    wal.save(None, &[], false).unwrap();
    assert_eq!(wal.offset, off);
    assert_eq!(fs::read(&seg).unwrap(), img);
}

#[test]
fn batch_larger_than_segment() {
    let d = tempfile::tempdir().unwrap();
    let mut wal = Wal::create(d.path(), b"meta", opts(1024)).unwrap();
    let a: Vec<Entry> = (1..=3).map(|i| ent(i, 1, 100)).collect();
    let b: Vec<Entry> = (4..=20).map(|i| ent(i, 1, 1000)).collect();
    let c: Vec<Entry> = (21..=22).map(|i| ent(i, 1, 10)).collect();
    wal.save(None, &a, true).unwrap();
    wal.save(Some(&hs(1, 1, 20)), &b, true).unwrap();
    wal.save(None, &c, true).unwrap();
    drop(wal);
    // a | b (oversized, alone after its header) | c
    assert_eq!(segment_files(d.path()).len(), 3);
    let (_w, st) = Wal::open(d.path(), WalSnapshot::default(), opts(1024)).unwrap();
    assert_eq!(st.entries, [a, b, c].concat());
    assert_eq!(st.hard_state, hs(1, 1, 20));
}

#[test]
fn no_tmp_files_left_after_drop() {
    let d = tempfile::tempdir().unwrap();
    let mut wal = Wal::create(d.path(), b"meta", opts(512)).unwrap();
    for i in 1..=20 {
        wal.save(None, &[ent(i, 1, 100)], true).unwrap();
    }
    drop(wal);
    let files = all_files(d.path());
    assert!(
        files.iter().all(|f| f == "wal.lock" || f.ends_with(".wal")),
        "{files:?}"
    );
}

/// Byte offsets (start, end-of-payload, end-of-frame) of every record in a segment image.
fn frames(img: &[u8]) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Frame::Record { payload, len, .. } = decode_frame(img, pos) {
        out.push((pos, pos + record::HEADER_LEN + payload.len(), pos + len));
        pos += len;
    }
    out
}

/// Builds the small test log; returns (ops, segment paths, images, records per segment).
fn build_small_log(dir: &Path, seg_size: u64) -> (Vec<Op>, Vec<PathBuf>, Vec<Vec<u8>>) {
    let ops = small_log_ops();
    let mut wal = Wal::create(dir, b"meta", fast_opts(seg_size)).unwrap();
    write_ops(&mut wal, &ops);
    drop(wal);
    let segs = segment_files(dir);
    let imgs: Vec<Vec<u8>> = segs.iter().map(|p| fs::read(p).unwrap()).collect();
    (ops, segs, imgs)
}

#[test]
fn cut_last_segment_at_every_offset() {
    let d = tempfile::tempdir().unwrap();
    let seg_size = 768;
    let (ops, segs, imgs) = build_small_log(d.path(), seg_size);
    assert!(segs.len() >= 3, "want several segments, got {}", segs.len());
    let states = model_states(&ops);
    let last = segs.len() - 1;
    let img = &imgs[last];
    let fr = frames(img);
    let payload_records = fr.len() - segment::HEADER_RECORDS;
    assert!(payload_records >= 4);
    // ops stored in earlier segments
    let ops_before = ops.len() - payload_records;
    let header_end = fr[segment::HEADER_RECORDS - 1].1;
    let used = fr.last().unwrap().2;
    let mut checked = 0;
    for cut in 0..=used + 16 {
        let mut m = img.clone();
        m[cut.min(img.len())..].fill(0);
        overwrite(&segs[last], &m);
        let res = Wal::open(d.path(), WalSnapshot::default(), fast_opts(seg_size));
        // Every record whose payload is complete before the cut must be there (a record cut
        // only in trailing zero bytes is still intact, hence "at least").
        let complete = fr[segment::HEADER_RECORDS..]
            .iter()
            .filter(|f| f.1 <= cut)
            .count();
        let n = ops_before + complete;
        let (mut wal, st) = match res {
            Ok(x) => x,
            Err(err) => {
                // The header block is fsynced before the segment is renamed into place;
                // losing part of it is corruption, not a torn write.
                assert!(cut < header_end, "cut {cut}: {err}");
                assert!(matches!(err, WalError::Corrupt { .. }), "cut {cut}: {err}");
                continue;
            }
        };
        assert!(
            (n..=ops.len()).any(|k| check_state(&st, &states[k])),
            "cut {cut}: expected at least the first {n} ops"
        );
        // The repaired WAL accepts appends and replays them after the prefix.
        let next = st.entries.last().map_or(1, |e| e.index + 1);
        let extra = ent(next, 99, 33);
        wal.save(Some(&hs(99, 2, 1)), std::slice::from_ref(&extra), true)
            .unwrap();
        drop(wal);
        let (_w, st2) = Wal::open(d.path(), WalSnapshot::default(), fast_opts(seg_size)).unwrap();
        let mut want = st.entries.clone();
        want.push(extra);
        assert_eq!(st2.entries, want, "cut {cut}: append after repair");
        assert_eq!(st2.hard_state, hs(99, 2, 1));
        drop(_w);
        // The append may have cut a new segment: remove it before the next round.
        for p in segment_files(d.path()) {
            if !segs.contains(&p) {
                fs::remove_file(p).unwrap();
            }
        }
        checked += 1;
    }
    eprintln!("cut: {checked} cut points opened");
    assert!(checked > 100);
    fs::write(&segs[last], img).unwrap();
}

#[test]
fn flip_byte_at_every_offset() {
    let d = tempfile::tempdir().unwrap();
    let seg_size = 768;
    let (ops, segs, imgs) = build_small_log(d.path(), seg_size);
    assert!(segs.len() >= 3);
    let states = model_states(&ops);
    let full = &states[ops.len()];
    let last = segs.len() - 1;
    let last_frame = *frames(&imgs[last]).last().unwrap();
    let mut errors = 0;
    let mut torn = 0;
    for (si, img) in imgs.iter().enumerate() {
        for off in 0..img.len() {
            for mask in [0x01u8, 0xff] {
                let mut m = img.clone();
                m[off] ^= mask;
                overwrite(&segs[si], &m);
                match Wal::open(d.path(), WalSnapshot::default(), fast_opts(seg_size)) {
                    Err(e) => {
                        assert!(
                            !matches!(e, WalError::Io { .. } | WalError::Locked { .. }),
                            "{e}"
                        );
                        errors += 1;
                    }
                    Ok((_w, st)) => {
                        if check_state(&st, full) {
                            // The damage was in unused space and has been zeroed.
                            assert!(si == last && off >= last_frame.2, "seg {si} off {off}");
                        } else {
                            // Only the last record may be dropped, as a torn tail.
                            assert!(
                                si == last && off >= last_frame.0 && off < last_frame.2,
                                "seg {si} off {off} mask {mask:#x}: accepted damaged log"
                            );
                            assert!(
                                check_state(&st, &states[ops.len() - 1]),
                                "seg {si} off {off}: wrong data"
                            );
                            torn += 1;
                        }
                    }
                }
                overwrite(&segs[si], img);
            }
        }
    }
    eprintln!("flip: {errors} refused, {torn} torn-tail prefixes");
    assert!(errors > 2000 && torn > 0, "errors {errors} torn {torn}");
}

#[test]
fn corruption_error_names_file_and_offset() {
    let d = tempfile::tempdir().unwrap();
    let (_ops, segs, imgs) = build_small_log(d.path(), 768);
    // A crc mismatch in the first segment (not the last).
    let fr = frames(&imgs[0]);
    let (start, pend, _) = fr[segment::HEADER_RECORDS + 1];
    let mut m = imgs[0].clone();
    m[pend - 1] ^= 0x10;
    fs::write(&segs[0], &m).unwrap();
    let err = Wal::open(d.path(), WalSnapshot::default(), fast_opts(768)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("wal: crc mismatch in 0000000000000000-0000000000000000.wal at offset {start}")
    );
    fs::write(&segs[0], &imgs[0]).unwrap();

    // In the last segment but followed by a valid record.
    let last = segs.len() - 1;
    let fr = frames(&imgs[last]);
    let (start, pend, _) = fr[segment::HEADER_RECORDS];
    let (next, _, _) = fr[segment::HEADER_RECORDS + 1];
    let mut m = imgs[last].clone();
    m[pend - 1] ^= 0x10;
    fs::write(&segs[last], &m).unwrap();
    let err = Wal::open(d.path(), WalSnapshot::default(), fast_opts(768)).unwrap_err();
    let name = segs[last].file_name().unwrap().to_str().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "wal: crc mismatch, followed by a valid record at offset {next} in {name} at offset {start}"
        )
    );
}

#[test]
fn torn_garbage_is_zeroed_before_appending() {
    let d = tempfile::tempdir().unwrap();
    let mut wal = Wal::create(d.path(), b"meta", opts(4096)).unwrap();
    let a: Vec<Entry> = (1..=3).map(|i| ent(i, 1, 200)).collect();
    wal.save(None, &a, true).unwrap();
    let end = wal.offset as usize;
    drop(wal);
    // Simulate a torn write of entries 4..=5: the first page of the write never made it, the
    // rest holds the tail of entry 5's record (not a whole valid record).
    let seg = segment_files(d.path()).pop().unwrap();
    let mut buf = Vec::new();
    for i in 4..=5 {
        record::append_frame(&mut buf, record::T_ENTRY, |b| {
            record::put_entry(b, &ent(i, 1, 200))
        })
        .unwrap();
    }
    let mut img = fs::read(&seg).unwrap();
    let half = buf.len() / 2 + 4;
    img[end + half..end + buf.len()].copy_from_slice(&buf[half..]);
    fs::write(&seg, &img).unwrap();

    let (mut wal, st) = Wal::open(d.path(), WalSnapshot::default(), opts(4096)).unwrap();
    assert_eq!(st.entries, a);
    let img = fs::read(&seg).unwrap();
    assert!(
        img[end..].iter().all(|&b| b == 0),
        "torn bytes were not zeroed"
    );
    wal.save(None, &[ent(4, 2, 5)], true).unwrap();
    drop(wal);
    let (_w, st) = Wal::open(d.path(), WalSnapshot::default(), opts(4096)).unwrap();
    assert_eq!(st.entries, [a, vec![ent(4, 2, 5)]].concat());
}

#[test]
fn missing_middle_segment_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let (_ops, segs, _imgs) = build_small_log(d.path(), 768);
    fs::remove_file(&segs[1]).unwrap();
    let err = Wal::open(d.path(), WalSnapshot::default(), fast_opts(768)).unwrap_err();
    assert!(matches!(err, WalError::BadSegments { .. }), "{err}");
    assert!(err.to_string().contains("missing segment"), "{err}");
}

#[test]
fn reopen_after_interrupted_cut() {
    // A cut truncates the old tail to its used length before the next segment is renamed in.
    // If the process dies in between, the truncated file is the tail: it must reopen, be
    // preallocated again, and accept appends. Leftover pipeline files are removed.
    let d = tempfile::tempdir().unwrap();
    let mut wal = Wal::create(d.path(), b"meta", opts(4096)).unwrap();
    let a: Vec<Entry> = (1..=5).map(|i| ent(i, 1, 100)).collect();
    wal.save(Some(&hs(1, 1, 3)), &a, true).unwrap();
    let used = wal.offset;
    drop(wal);
    let seg = segment_files(d.path()).pop().unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(used)
        .unwrap();
    fs::write(d.path().join("7.tmp"), b"half-prepared segment").unwrap();

    let (mut wal, st) = Wal::open(d.path(), WalSnapshot::default(), opts(4096)).unwrap();
    assert_eq!(st.entries, a);
    assert_eq!(fs::metadata(&seg).unwrap().len(), 4096);
    assert!(!d.path().join("7.tmp").exists());
    wal.save(None, &[ent(6, 1, 10)], true).unwrap();
    drop(wal);
    let (_w, st) = Wal::open(d.path(), WalSnapshot::default(), opts(4096)).unwrap();
    assert_eq!(st.entries.len(), 6);
}

#[test]
fn wal_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Wal>();
    assert_send::<WalError>();
}

/// Where the first hole (unwritten or unallocated range) at or after `from` starts.
#[cfg(target_os = "linux")]
fn next_hole(f: &File, from: u64) -> u64 {
    use std::os::unix::io::AsRawFd;
    // SAFETY: lseek on a valid, owned descriptor.
    let r = unsafe { libc::lseek(f.as_raw_fd(), from as libc::off_t, libc::SEEK_HOLE) };
    assert!(r >= 0, "{}", std::io::Error::last_os_error());
    r as u64
}

#[cfg(target_os = "linux")]
#[test]
fn zeros_are_written_ahead_of_the_log_end_and_replay_is_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("wal");
    let size = 8 * ZERO_AHEAD;
    let mut wal = Wal::create(&dir, b"m", opts(size)).unwrap();
    let mut want = Vec::new();
    // About 2.5 MiB of entries in 4 KiB batches: zeroing crosses several chunk boundaries.
    let mut index = 1;
    while wal.offset < 5 * ZERO_AHEAD / 2 {
        let batch: Vec<Entry> = (index..index + 4).map(|i| ent(i, 1, 1000)).collect();
        index += 4;
        wal.save(Some(&hs(1, 1, index - 5)), &batch, true).unwrap();
        want.extend(batch);
        // Past the log end there is written data for at least half a chunk (ext4 and XFS
        // report fallocate's unwritten extents as holes; a file system that does not leaves
        // no hole before the end of the segment at all).
        let hole = next_hole(&wal.tail, wal.offset.next_multiple_of(4096));
        assert!(
            hole >= (wal.offset + ZERO_AHEAD / 2).min(size),
            "log end {} but hole at {hole}",
            wal.offset
        );
        assert!(wal.zeroed_to <= size);
    }
    drop(wal);
    let (_wal, st) = Wal::open(&dir, WalSnapshot::default(), opts(size)).unwrap();
    assert_eq!(st.entries, want);
    assert_eq!(st.hard_state, hs(1, 1, index - 5));
}

/// What `f` logs at warn level and above, as text.
fn warnings_of(f: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || out.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buf.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn an_fdatasync_over_a_second_is_logged_as_etcd_logs_it() {
    let slow = warnings_of(|| warn_if_slow_sync(std::time::Duration::from_millis(1500)));
    assert!(slow.contains("slow fdatasync"), "{slow}");
    assert!(slow.contains("took=1.5s"), "{slow}");
    assert!(slow.contains("expected_duration=1s"), "{slow}");
    let fast = warnings_of(|| warn_if_slow_sync(std::time::Duration::from_millis(999)));
    assert!(fast.is_empty(), "{fast}");
}
