//! Record framing and payload codecs.
//!
//! Every record is a frame:
//!
//! ```text
//!  0       4      5         8       12                12+len    (next multiple of 8)
//!  +-------+------+---------+-------+------------------+---------+
//!  |  len  | type | 0  0  0 |  crc  |  payload (len)   | 0 pad   |
//!  +-------+------+---------+-------+------------------+---------+
//!   u32 LE   u8    reserved  u32 LE
//! ```
//!
//! `crc` is CRC32C over bytes `0..8` of the frame followed by the payload, so it
//! covers the length, the type and the reserved bytes as well as the data. The
//! type is never 0, so the first 8 bytes of a valid frame are never all zero: an
//! all-zero 8-byte word where a frame would start is the end of the log (the
//! preallocated, never written part of a segment).

use raft::eraftpb::{Entry, EntryType, HardState};

use super::WalSnapshot;

/// Size of the fixed frame header.
pub(crate) const HEADER_LEN: usize = 12;
/// Frames start at multiples of this.
pub(crate) const ALIGN: usize = 8;

/// Record type tags (never 0).
pub(crate) const T_SEGMENT: u8 = 1;
pub(crate) const T_METADATA: u8 = 2;
pub(crate) const T_SNAPSHOT: u8 = 3;
pub(crate) const T_HARD_STATE: u8 = 4;
pub(crate) const T_ENTRY: u8 = 5;

/// On-disk format version, stored in every segment-header record.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Fixed part of an entry payload: index, term, type, sync_log, 2 reserved, context length.
const ENTRY_FIXED: usize = 24;

#[inline]
pub(crate) fn padded(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

/// Total frame size for a payload of `payload_len` bytes.
#[inline]
pub(crate) fn frame_len(payload_len: usize) -> usize {
    padded(HEADER_LEN + payload_len)
}

/// Appends one frame to `buf`; `fill` writes the payload (and only the payload).
/// Returns `Err(len)` if the payload does not fit the 32-bit length field (nothing is appended).
#[inline]
pub(crate) fn append_frame(
    buf: &mut Vec<u8>,
    ty: u8,
    fill: impl FnOnce(&mut Vec<u8>),
) -> Result<(), usize> {
    debug_assert!(buf.len() % ALIGN == 0);
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    fill(buf);
    let len = buf.len() - start - HEADER_LEN;
    if len > u32::MAX as usize {
        buf.truncate(start);
        return Err(len);
    }
    buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[start + 4] = ty;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&buf[start..start + 8]),
        &buf[start + HEADER_LEN..],
    );
    buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    buf.resize(start + frame_len(len), 0);
    Ok(())
}

/// Why a frame failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The frame's header or payload runs past the end of the file.
    Truncated,
    /// Unknown type tag or nonzero reserved bytes.
    BadHeader,
    /// CRC does not match.
    Crc,
    /// Padding after the payload is not zero.
    BadPadding,
}

impl FrameError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            FrameError::Truncated => "truncated record",
            FrameError::BadHeader => "bad record header",
            FrameError::Crc => "crc mismatch",
            FrameError::BadPadding => "nonzero record padding",
        }
    }
}

/// Outcome of looking at the 8-byte word at an aligned offset.
pub(crate) enum Frame<'a> {
    /// All-zero word (or a zero-filled partial word at end of file): end of log.
    End,
    /// A valid frame: type, payload, total frame length.
    Record {
        ty: u8,
        payload: &'a [u8],
        len: usize,
    },
    /// Something that is neither.
    Bad(FrameError),
}

/// Decodes the frame at `pos` (a multiple of 8) of `buf`.
pub(crate) fn decode_frame(buf: &[u8], pos: usize) -> Frame<'_> {
    let rest = &buf[pos..];
    if rest.len() < ALIGN {
        return if rest.iter().all(|&b| b == 0) {
            Frame::End
        } else {
            Frame::Bad(FrameError::Truncated)
        };
    }
    let word = u64::from_le_bytes(rest[..8].try_into().unwrap());
    if word == 0 {
        return Frame::End;
    }
    let ty = rest[4];
    if !(T_SEGMENT..=T_ENTRY).contains(&ty) || rest[5..8] != [0, 0, 0] {
        return Frame::Bad(FrameError::BadHeader);
    }
    if rest.len() < HEADER_LEN {
        return Frame::Bad(FrameError::Truncated);
    }
    let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
    let total = frame_len(len);
    if total > rest.len() {
        return Frame::Bad(FrameError::Truncated);
    }
    let stored = u32::from_le_bytes(rest[8..12].try_into().unwrap());
    let payload = &rest[HEADER_LEN..HEADER_LEN + len];
    if crc32c::crc32c_append(crc32c::crc32c(&rest[..8]), payload) != stored {
        return Frame::Bad(FrameError::Crc);
    }
    if rest[HEADER_LEN + len..total].iter().any(|&b| b != 0) {
        return Frame::Bad(FrameError::BadPadding);
    }
    Frame::Record {
        ty,
        payload,
        len: total,
    }
}

// ---------------------------------------------------------------------------
// Payload codecs. All integers little endian.

/// Segment header payload: version u32 | reserved u32 | seq u64 | first_index u64.
pub(crate) fn put_segment(buf: &mut Vec<u8>, seq: u64, first_index: u64) {
    buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&first_index.to_le_bytes());
}

/// Returns (version, seq, first_index).
pub(crate) fn get_segment(p: &[u8]) -> Option<(u32, u64, u64)> {
    if p.len() != 24 || p[4..8] != [0; 4] {
        return None;
    }
    Some((le32(p, 0), le64(p, 8), le64(p, 16)))
}

/// Snapshot marker payload: index u64 | term u64.
pub(crate) fn put_snapshot(buf: &mut Vec<u8>, s: WalSnapshot) {
    buf.extend_from_slice(&s.index.to_le_bytes());
    buf.extend_from_slice(&s.term.to_le_bytes());
}

pub(crate) fn get_snapshot(p: &[u8]) -> Option<WalSnapshot> {
    (p.len() == 16).then(|| WalSnapshot {
        index: le64(p, 0),
        term: le64(p, 8),
    })
}

/// Hard state payload: term u64 | vote u64 | commit u64.
pub(crate) fn put_hard_state(buf: &mut Vec<u8>, hs: &HardState) {
    buf.extend_from_slice(&hs.term.to_le_bytes());
    buf.extend_from_slice(&hs.vote.to_le_bytes());
    buf.extend_from_slice(&hs.commit.to_le_bytes());
}

pub(crate) fn get_hard_state(p: &[u8]) -> Option<HardState> {
    if p.len() != 24 {
        return None;
    }
    Some(HardState {
        term: le64(p, 0),
        vote: le64(p, 8),
        commit: le64(p, 16),
        ..Default::default()
    })
}

/// Entry payload:
/// index u64 | term u64 | entry_type u8 | sync_log u8 | 0 0 | context_len u32 | context | data
pub(crate) fn put_entry(buf: &mut Vec<u8>, e: &Entry) {
    buf.reserve(ENTRY_FIXED + e.context.len() + e.data.len());
    buf.extend_from_slice(&e.index.to_le_bytes());
    buf.extend_from_slice(&e.term.to_le_bytes());
    buf.extend_from_slice(&[e.entry_type as u8, e.sync_log as u8, 0, 0]);
    buf.extend_from_slice(&(e.context.len() as u32).to_le_bytes());
    buf.extend_from_slice(&e.context);
    buf.extend_from_slice(&e.data);
}

/// Index of an entry payload without decoding the rest (payload must be at least 8 bytes).
pub(crate) fn entry_index(p: &[u8]) -> Option<u64> {
    (p.len() >= ENTRY_FIXED).then(|| le64(p, 0))
}

pub(crate) fn get_entry(p: &[u8]) -> Option<Entry> {
    if p.len() < ENTRY_FIXED || p[18..20] != [0, 0] || p[17] > 1 {
        return None;
    }
    let entry_type = match p[16] {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        _ => return None,
    };
    let ctx_len = le32(p, 20) as usize;
    let rest = &p[ENTRY_FIXED..];
    if ctx_len > rest.len() {
        return None;
    }
    let copy = |b: &[u8]| {
        if b.is_empty() {
            bytes::Bytes::new()
        } else {
            bytes::Bytes::copy_from_slice(b)
        }
    };
    Some(Entry {
        index: le64(p, 0),
        term: le64(p, 8),
        entry_type,
        sync_log: p[17] == 1,
        context: copy(&rest[..ctx_len]),
        data: copy(&rest[ctx_len..]),
        ..Default::default()
    })
}

#[inline]
fn le32(p: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(p[at..at + 4].try_into().unwrap())
}

#[inline]
fn le64(p: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(p[at..at + 8].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, ty: EntryType, data: &[u8], ctx: &[u8], sync: bool) -> Entry {
        Entry {
            index,
            term,
            entry_type: ty,
            data: bytes::Bytes::copy_from_slice(data),
            context: bytes::Bytes::copy_from_slice(ctx),
            sync_log: sync,
            ..Default::default()
        }
    }

    #[test]
    fn entry_payload_roundtrip_exact() {
        let cases = [
            entry(1, 1, EntryType::EntryNormal, b"", b"", false),
            entry(u64::MAX, 7, EntryType::EntryConfChange, b"abc", b"", true),
            entry(
                42,
                u64::MAX,
                EntryType::EntryConfChangeV2,
                b"",
                b"ctx",
                false,
            ),
            entry(
                9,
                3,
                EntryType::EntryNormal,
                &[0u8; 1000],
                &[1, 2, 3, 4, 5],
                true,
            ),
        ];
        for e in cases {
            let mut buf = Vec::new();
            append_frame(&mut buf, T_ENTRY, |b| put_entry(b, &e)).unwrap();
            assert_eq!(buf.len() % ALIGN, 0);
            match decode_frame(&buf, 0) {
                Frame::Record { ty, payload, len } => {
                    assert_eq!(ty, T_ENTRY);
                    assert_eq!(len, buf.len());
                    assert_eq!(get_entry(payload).unwrap(), e);
                }
                _ => panic!("frame did not decode"),
            }
        }
    }

    #[test]
    fn frame_detects_damage() {
        let mut buf = Vec::new();
        append_frame(&mut buf, T_METADATA, |b| b.extend_from_slice(b"hello")).unwrap();
        assert_eq!(buf.len(), 24);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                assert!(
                    !matches!(decode_frame(&b, 0), Frame::Record { .. }),
                    "flip at {i} bit {bit} accepted"
                );
            }
        }
        assert!(matches!(decode_frame(&[0u8; 8], 0), Frame::End));
        assert!(matches!(decode_frame(&[0u8; 3], 0), Frame::End));
    }
}
