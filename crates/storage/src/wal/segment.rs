//! Segment files: naming, listing, file-system helpers and the scan that applies the repair rule.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::record::{self, decode_frame, Frame, FrameError, ALIGN, T_SEGMENT};
use super::WalError;

/// Records at the start of every segment: segment header, metadata, snapshot marker, hard state.
pub(crate) const HEADER_RECORDS: usize = 4;

/// Name of the lock file inside the WAL directory.
pub(crate) const LOCK_FILE: &str = "wal.lock";

/// `{seq:016x}-{first_index:016x}.wal`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegName {
    pub seq: u64,
    /// `last_index + 1` when the segment was started: the final version of every entry at or
    /// above this index lives in this segment or a later one.
    pub first_index: u64,
}

impl SegName {
    pub(crate) fn file_name(&self) -> String {
        format!("{:016x}-{:016x}.wal", self.seq, self.first_index)
    }

    pub(crate) fn parse(name: &str) -> Option<SegName> {
        let stem = name.strip_suffix(".wal")?;
        let (a, b) = stem.split_once('-')?;
        if a.len() != 16 || b.len() != 16 {
            return None;
        }
        Some(SegName {
            seq: u64::from_str_radix(a, 16).ok()?,
            first_index: u64::from_str_radix(b, 16).ok()?,
        })
    }
}

/// Lists the segments of `dir`, sorted by sequence number, and checks that they form a
/// contiguous sequence. (First indexes may decrease: raft can truncate the log below the
/// index at which the previous segment was started.)
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegName>, WalError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(WalError::io("read dir", dir, e)),
    };
    let mut segs = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| WalError::io("read dir", dir, e))?;
        if let Some(seg) = ent.file_name().to_str().and_then(SegName::parse) {
            segs.push(seg);
        }
    }
    segs.sort_by_key(|s| s.seq);
    for w in segs.windows(2) {
        if w[1].seq != w[0].seq + 1 {
            return Err(WalError::BadSegments {
                dir: dir.to_owned(),
                reason: format!(
                    "missing segment between {} and {}",
                    w[0].file_name(),
                    w[1].file_name()
                ),
            });
        }
    }
    Ok(segs)
}

/// Removes leftover `*.tmp` files (unfinished segments from the file pipeline or `create`).
pub(crate) fn remove_tmp_files(dir: &Path) -> Result<(), WalError> {
    let rd = fs::read_dir(dir).map_err(|e| WalError::io("read dir", dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| WalError::io("read dir", dir, e))?;
        let name = ent.file_name();
        if name.to_str().is_some_and(|n| n.ends_with(".tmp")) {
            let p = ent.path();
            fs::remove_file(&p).map_err(|e| WalError::io("remove", p, e))?;
        }
    }
    Ok(())
}

/// Takes an exclusive, non-blocking `flock` on `dir/wal.lock`. The lock lives as long as the
/// returned file.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| WalError::io("open lock file", &path, e))?;
    flock_exclusive(&f).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            WalError::Locked {
                dir: dir.to_owned(),
                lock: path.clone(),
            }
        } else {
            WalError::io("lock", &path, e)
        }
    })?;
    Ok(f)
}

#[cfg(unix)]
fn flock_exclusive(f: &File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: flock on a valid, owned file descriptor.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(not(unix))]
fn flock_exclusive(_f: &File) -> io::Result<()> {
    Ok(())
}

/// Allocates `size` bytes for `f` so that appends do not allocate blocks (and so that
/// fdatasync does not have to write back extent metadata on every append). Falls back to
/// `set_len` (a sparse file) when the file system does not support `fallocate`.
pub(crate) fn preallocate(f: &File, size: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        loop {
            // SAFETY: fallocate on a valid, owned file descriptor; mode 0 only allocates.
            let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, size as libc::off_t) };
            if r == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) | Some(libc::EINVAL) => break,
                _ => return Err(e),
            }
        }
    }
    if f.metadata()?.len() < size {
        f.set_len(size)?;
    }
    Ok(())
}

/// fsyncs a directory so that creates, renames and deletes in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Where a scan stopped.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Offset just past the last valid record (the append position).
    pub end: usize,
    /// Number of valid records.
    pub records: usize,
    /// A torn tail `[start, end)` in the last segment: unsynced garbage that must be zeroed
    /// before appending.
    pub torn: Option<(usize, usize)>,
    /// Why the tail was considered torn (for the log message).
    pub torn_reason: &'static str,
}

/// Scans one segment image. `visit(type, payload, offset)` is called for every valid record
/// except the segment header, which is checked here against `seg`.
///
/// Repair rule: a damaged record, or nonzero bytes after the end-of-log word, is a torn tail
/// only if this is the last segment, the segment header block is intact, and no valid record
/// starts at any later 8-byte-aligned offset. Otherwise it is a hard error.
pub(crate) fn scan(
    buf: &[u8],
    seg: SegName,
    last: bool,
    mut visit: impl FnMut(u8, &[u8], u64) -> Result<(), WalError>,
) -> Result<ScanEnd, WalError> {
    let file = seg.file_name();
    let mut pos = 0usize;
    let mut records = 0usize;
    let stop: Option<FrameError> = loop {
        match decode_frame(buf, pos) {
            Frame::End => break None,
            Frame::Bad(e) => break Some(e),
            Frame::Record { ty, payload, len } => {
                if records == 0 {
                    check_segment_header(ty, payload, seg, &file)?;
                } else if ty == T_SEGMENT {
                    return Err(WalError::corrupt(
                        &file,
                        pos as u64,
                        "segment header record inside a segment",
                    ));
                } else {
                    visit(ty, payload, pos as u64)?;
                }
                records += 1;
                pos += len;
            }
        }
    };
    let x = pos;
    // Everything after the last nonzero byte is preallocated space.
    let nonzero_end = nonzero_end(buf);
    if stop.is_none() && nonzero_end <= x {
        if records < HEADER_RECORDS {
            return Err(WalError::corrupt(
                &file,
                x as u64,
                "incomplete segment header",
            ));
        }
        return Ok(ScanEnd {
            end: x,
            records,
            torn: None,
            torn_reason: "",
        });
    }
    let reason = stop.map_or("unexpected data after end of log", FrameError::describe);
    if !last {
        return Err(WalError::corrupt(&file, x as u64, reason));
    }
    if records < HEADER_RECORDS {
        return Err(WalError::corrupt(
            &file,
            x as u64,
            format!("{reason} in segment header"),
        ));
    }
    let mut p = x + ALIGN;
    while p < nonzero_end {
        if let Frame::Record { .. } = decode_frame(buf, p) {
            return Err(WalError::corrupt(
                &file,
                x as u64,
                format!("{reason}, followed by a valid record at offset {p}"),
            ));
        }
        p += ALIGN;
    }
    Ok(ScanEnd {
        end: x,
        records,
        torn: Some((x, record::padded(nonzero_end).min(buf.len()))),
        torn_reason: reason,
    })
}

/// Offset just past the last nonzero byte (0 if the buffer is all zero).
fn nonzero_end(buf: &[u8]) -> usize {
    let mut end = buf.len();
    while end % ALIGN != 0 {
        if buf[end - 1] != 0 {
            return end;
        }
        end -= 1;
    }
    for (i, c) in buf[..end].chunks_exact(ALIGN).enumerate().rev() {
        if u64::from_ne_bytes(c.try_into().unwrap()) != 0 {
            let j = c.iter().rposition(|&b| b != 0).unwrap();
            return i * ALIGN + j + 1;
        }
    }
    0
}

fn check_segment_header(ty: u8, payload: &[u8], seg: SegName, file: &str) -> Result<(), WalError> {
    let bad = |why: String| Err(WalError::corrupt(file, 0, why));
    if ty != T_SEGMENT {
        return bad(format!(
            "segment does not start with a segment header (type {ty})"
        ));
    }
    match record::get_segment(payload) {
        Some((record::FORMAT_VERSION, seq, first))
            if seq == seg.seq && first == seg.first_index =>
        {
            Ok(())
        }
        Some((record::FORMAT_VERSION, seq, first)) => bad(format!(
            "segment header says seq {seq} first index {first}, file name disagrees"
        )),
        Some((v, _, _)) => bad(format!("unsupported WAL format version {v}")),
        None => bad("malformed segment header".into()),
    }
}

/// Reads a whole segment file into `buf` (reusing its allocation).
pub(crate) fn read_segment(path: &Path, buf: &mut Vec<u8>) -> Result<(), WalError> {
    use std::io::Read;
    buf.clear();
    let mut f = File::open(path).map_err(|e| WalError::io("open", path, e))?;
    f.read_to_end(buf)
        .map_err(|e| WalError::io("read", path, e))?;
    Ok(())
}

pub(crate) fn seg_path(dir: &Path, seg: SegName) -> PathBuf {
    dir.join(seg.file_name())
}
