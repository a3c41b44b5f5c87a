//! Raft snapshot files (etcd's snapshotter).
//!
//! Each snapshot is one file named `{term:016x}-{index:016x}.snap`:
//!
//! ```text
//!  0            8        12       16          24          24+M          24+M+D
//!  +------------+--------+--------+-----------+-------------+-------------+
//!  | "CHSNAP\0\1"|  crc   |   M    |     D     | metadata    | data        |
//!  +------------+--------+--------+-----------+-------------+-------------+
//!   magic+ver    u32 LE   u32 LE   u64 LE      SnapshotMetadata  Snapshot.data
//!                                              (protobuf, incl.   (raw bytes)
//!                                               ConfState)
//! ```
//!
//! `crc` is CRC32C over bytes `12..24` followed by the metadata and the data, and the file
//! length must be exactly `24 + M + D`. Files are written as `<name>.tmp`, fsynced, renamed
//! and the directory fsynced, so a `.snap` file is always complete unless the disk damaged it.
//! A file that fails the checks is renamed to `<name>.broken` when loading and the next older
//! snapshot is tried.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use protobuf::Message;
use raft::eraftpb::{Snapshot, SnapshotMetadata};

use crate::wal::WalSnapshot;

const MAGIC: &[u8; 8] = b"CHSNAP\0\x01";
const HEADER_LEN: usize = 24;
const SUFFIX: &str = ".snap";

/// Errors from [`Snapshotter`].
#[derive(thiserror::Error, Debug)]
pub enum SnapError {
    #[error("snap: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Refusing to save a snapshot with index 0.
    #[error("snap: empty snapshot (index 0)")]
    Empty,
    #[error("snap: encode snapshot metadata: {0}")]
    Encode(#[from] protobuf::ProtobufError),
}

fn io_err(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> SnapError {
    SnapError::Io {
        op,
        path: path.into(),
        source,
    }
}

/// Saves and loads raft snapshots in a directory.
#[derive(Clone, Debug)]
pub struct Snapshotter {
    dir: PathBuf,
}

/// `(term, index)` parsed from a snapshot file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SnapName {
    term: u64,
    index: u64,
}

impl SnapName {
    fn file_name(&self) -> String {
        format!("{:016x}-{:016x}{SUFFIX}", self.term, self.index)
    }

    fn parse(name: &str) -> Option<SnapName> {
        let (t, i) = name.strip_suffix(SUFFIX)?.split_once('-')?;
        if t.len() != 16 || i.len() != 16 {
            return None;
        }
        Some(SnapName {
            term: u64::from_str_radix(t, 16).ok()?,
            index: u64::from_str_radix(i, 16).ok()?,
        })
    }
}

impl Snapshotter {
    /// A snapshotter for `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Snapshotter { dir: dir.into() }
    }

    /// The snapshot directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Atomically writes `snapshot` to `<term:016x>-<index:016x>.snap`.
    pub fn save(&self, snapshot: &Snapshot) -> Result<(), SnapError> {
        let meta = snapshot.get_metadata();
        if meta.index == 0 {
            return Err(SnapError::Empty);
        }
        let name = SnapName {
            term: meta.term,
            index: meta.index,
        };
        let meta_bytes = meta.write_to_bytes()?;
        let data: &[u8] = &snapshot.data;
        let mut head = Vec::with_capacity(HEADER_LEN + meta_bytes.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&[0; 4]);
        head.extend_from_slice(&(meta_bytes.len() as u32).to_le_bytes());
        head.extend_from_slice(&(data.len() as u64).to_le_bytes());
        let crc = crc32c::crc32c_append(
            crc32c::crc32c_append(crc32c::crc32c(&head[12..24]), &meta_bytes),
            data,
        );
        head[8..12].copy_from_slice(&crc.to_le_bytes());
        head.extend_from_slice(&meta_bytes);

        fs::create_dir_all(&self.dir).map_err(|e| io_err("create dir", &self.dir, e))?;
        let path = self.dir.join(name.file_name());
        let tmp = self.dir.join(format!("{}.tmp", name.file_name()));
        let started = std::time::Instant::now();
        let res = (|| {
            let mut f = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
            f.write_all(&head).map_err(|e| io_err("write", &tmp, e))?;
            f.write_all(data).map_err(|e| io_err("write", &tmp, e))?;
            let fsync = std::time::Instant::now();
            f.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
            chorus_metrics::SNAP_FSYNC_SECONDS.observe_duration(fsync.elapsed());
            drop(f);
            fs::rename(&tmp, &path).map_err(|e| io_err("rename", &tmp, e))?;
            sync_dir(&self.dir)
        })();
        match res {
            Ok(()) => chorus_metrics::SNAP_SAVE_SECONDS.observe_duration(started.elapsed()),
            Err(_) => {
                let _ = fs::remove_file(&tmp);
            }
        }
        res
    }

    /// The newest snapshot that passes its checks, or `None` if there is none. Corrupt files
    /// are renamed to `*.broken` on the way.
    pub fn load_newest(&self) -> Result<Option<Snapshot>, SnapError> {
        self.load_matching(|_| true)
    }

    /// Like [`Snapshotter::load_newest`], but only considers snapshots whose (index, term) is
    /// among `markers` (e.g. from [`crate::wal::Wal::valid_snapshot_markers`]).
    pub fn load_newest_available(
        &self,
        markers: &[WalSnapshot],
    ) -> Result<Option<Snapshot>, SnapError> {
        self.load_matching(|n| {
            markers
                .iter()
                .any(|m| m.index == n.index && m.term == n.term)
        })
    }

    /// Deletes all but the newest `keep` snapshot files.
    pub fn purge(&self, keep: usize) -> Result<(), SnapError> {
        let names = self.names()?;
        let mut removed = false;
        for n in names.iter().skip(keep) {
            let p = self.dir.join(n.file_name());
            fs::remove_file(&p).map_err(|e| io_err("remove", &p, e))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn load_matching(
        &self,
        want: impl Fn(&SnapName) -> bool,
    ) -> Result<Option<Snapshot>, SnapError> {
        self.remove_tmp_files()?;
        for name in self.names()? {
            if !want(&name) {
                continue;
            }
            let path = self.dir.join(name.file_name());
            let mut buf = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut buf))
                .map_err(|e| io_err("read", &path, e))?;
            match decode(buf, name) {
                Ok(s) => return Ok(Some(s)),
                Err(reason) => {
                    let broken = self.dir.join(format!("{}.broken", name.file_name()));
                    tracing::warn!(
                        file = %path.display(),
                        reason,
                        "snap: corrupt snapshot file, renaming to .broken"
                    );
                    fs::rename(&path, &broken).map_err(|e| io_err("rename", &path, e))?;
                }
            }
        }
        Ok(None)
    }

    /// Snapshot names, newest (highest index, then term) first.
    fn names(&self) -> Result<Vec<SnapName>, SnapError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read dir", &self.dir, e)),
        };
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| io_err("read dir", &self.dir, e))?;
            if let Some(n) = ent.file_name().to_str().and_then(SnapName::parse) {
                names.push(n);
            }
        }
        names.sort_unstable_by_key(|n| std::cmp::Reverse((n.index, n.term)));
        Ok(names)
    }

    /// Removes `*.snap.tmp` left by a save that crashed. Called when loading (at startup).
    fn remove_tmp_files(&self) -> Result<(), SnapError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("read dir", &self.dir, e)),
        };
        for ent in rd.flatten() {
            if ent
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".snap.tmp"))
            {
                let p = ent.path();
                fs::remove_file(&p).map_err(|e| io_err("remove", &p, e))?;
            }
        }
        Ok(())
    }
}

/// Checks and decodes a snapshot file image.
fn decode(buf: Vec<u8>, name: SnapName) -> Result<Snapshot, &'static str> {
    if buf.len() < HEADER_LEN {
        return Err("file too short");
    }
    if &buf[..8] != MAGIC {
        return Err("bad magic");
    }
    let crc = u32::from_le_bytes(buf[8..12].try_into().unwrap());
    let m = u32::from_le_bytes(buf[12..16].try_into().unwrap()) as u64;
    let d = u64::from_le_bytes(buf[16..24].try_into().unwrap());
    if (HEADER_LEN as u64)
        .checked_add(m)
        .and_then(|x| x.checked_add(d))
        != Some(buf.len() as u64)
    {
        return Err("length mismatch");
    }
    if crc32c::crc32c(&buf[12..]) != crc {
        return Err("crc mismatch");
    }
    let meta_end = HEADER_LEN + m as usize;
    let meta = SnapshotMetadata::parse_from_bytes(&buf[HEADER_LEN..meta_end])
        .map_err(|_| "bad metadata")?;
    if meta.index != name.index || meta.term != name.term {
        return Err("metadata does not match file name");
    }
    let mut s = Snapshot::default();
    s.set_metadata(meta);
    s.data = bytes::Bytes::from(buf).slice(meta_end..);
    Ok(s)
}

fn sync_dir(dir: &Path) -> Result<(), SnapError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync dir", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::ConfState;

    fn snapshot(index: u64, term: u64, data: &[u8]) -> Snapshot {
        let cs = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            voters_outgoing: vec![1, 2],
            learners_next: vec![5],
            auto_leave: true,
            ..Default::default()
        };
        let meta = SnapshotMetadata {
            index,
            term,
            conf_state: protobuf::SingularPtrField::some(cs),
            ..Default::default()
        };
        Snapshot {
            metadata: protobuf::SingularPtrField::some(meta),
            data: bytes::Bytes::copy_from_slice(data),
            ..Default::default()
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn save_and_load_newest() {
        let d = tempfile::tempdir().unwrap();
        let s = Snapshotter::new(d.path().join("snap"));
        assert!(s.load_newest().unwrap().is_none());
        let a = snapshot(10, 1, b"state at 10");
        let b = snapshot(20, 2, &[7u8; 5000]);
        s.save(&a).unwrap();
        s.save(&b).unwrap();
        assert_eq!(
            files(s.dir()),
            vec![
                "0000000000000001-000000000000000a.snap",
                "0000000000000002-0000000000000014.snap"
            ]
        );
        assert_eq!(s.load_newest().unwrap().unwrap(), b);
        assert!(matches!(
            s.save(&snapshot(0, 0, b"")),
            Err(SnapError::Empty)
        ));
        // Empty data round-trips too.
        let c = snapshot(30, 2, b"");
        s.save(&c).unwrap();
        assert_eq!(s.load_newest().unwrap().unwrap(), c);
    }

    #[test]
    fn corrupt_newest_falls_back_to_older() {
        let d = tempfile::tempdir().unwrap();
        let s = Snapshotter::new(d.path());
        let a = snapshot(10, 1, b"older");
        let b = snapshot(20, 1, b"newer");
        s.save(&a).unwrap();
        s.save(&b).unwrap();
        let newest = d.path().join("0000000000000001-0000000000000014.snap");
        let mut img = fs::read(&newest).unwrap();
        let n = img.len();
        img[n - 1] ^= 0x40;
        fs::write(&newest, &img).unwrap();
        assert_eq!(s.load_newest().unwrap().unwrap(), a);
        assert_eq!(
            files(d.path()),
            vec![
                "0000000000000001-000000000000000a.snap",
                "0000000000000001-0000000000000014.snap.broken"
            ]
        );
    }

    #[test]
    fn every_byte_flip_and_truncation_is_rejected() {
        let d = tempfile::tempdir().unwrap();
        let s = Snapshotter::new(d.path());
        let a = snapshot(5, 1, b"fallback");
        let b = snapshot(9, 3, b"some snapshot data");
        s.save(&a).unwrap();
        s.save(&b).unwrap();
        let path = d.path().join("0000000000000003-0000000000000009.snap");
        let broken = d
            .path()
            .join("0000000000000003-0000000000000009.snap.broken");
        let img = fs::read(&path).unwrap();
        let mut cases: Vec<Vec<u8>> = (0..img.len())
            .map(|i| {
                let mut m = img.clone();
                m[i] ^= 0x01;
                m
            })
            .collect();
        cases.extend((0..img.len()).map(|n| img[..n].to_vec()));
        for m in cases {
            fs::write(&path, &m).unwrap();
            assert_eq!(s.load_newest().unwrap().unwrap(), a);
            assert!(broken.exists());
            fs::remove_file(&broken).unwrap();
        }
    }

    #[test]
    fn load_newest_available_only_known_markers() {
        let d = tempfile::tempdir().unwrap();
        let s = Snapshotter::new(d.path());
        let a = snapshot(10, 1, b"a");
        let b = snapshot(20, 2, b"b");
        let c = snapshot(30, 2, b"c");
        for x in [&a, &b, &c] {
            s.save(x).unwrap();
        }
        let m = |index, term| WalSnapshot { index, term };
        assert_eq!(
            s.load_newest_available(&[m(0, 0), m(10, 1), m(20, 2)])
                .unwrap()
                .unwrap(),
            b
        );
        // Term must match as well.
        assert_eq!(
            s.load_newest_available(&[m(10, 1), m(20, 1)])
                .unwrap()
                .unwrap(),
            a
        );
        assert!(s.load_newest_available(&[m(40, 2)]).unwrap().is_none());
        assert!(s.load_newest_available(&[]).unwrap().is_none());
    }

    #[test]
    fn purge_keeps_newest() {
        let d = tempfile::tempdir().unwrap();
        let s = Snapshotter::new(d.path());
        for i in 1..=5u64 {
            s.save(&snapshot(i * 10, 1, b"x")).unwrap();
        }
        fs::write(d.path().join("unrelated.txt"), b"keep me").unwrap();
        s.purge(2).unwrap();
        assert_eq!(
            files(d.path()),
            vec![
                "0000000000000001-0000000000000028.snap",
                "0000000000000001-0000000000000032.snap",
                "unrelated.txt"
            ]
        );
        assert_eq!(s.load_newest().unwrap().unwrap().get_metadata().index, 50);
        s.purge(0).unwrap();
        assert!(s.load_newest().unwrap().is_none());
    }

    #[test]
    fn stale_tmp_files_are_ignored_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let s = Snapshotter::new(d.path());
        s.save(&snapshot(3, 1, b"ok")).unwrap();
        fs::write(
            d.path().join("0000000000000001-0000000000000009.snap.tmp"),
            b"half",
        )
        .unwrap();
        assert_eq!(s.load_newest().unwrap().unwrap().get_metadata().index, 3);
        assert_eq!(
            files(d.path()),
            vec!["0000000000000001-0000000000000003.snap"]
        );
    }
}
