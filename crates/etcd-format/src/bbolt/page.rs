//! bbolt's page layout (bbolt's `internal/common`): the 16-byte page header, branch and leaf
//! elements, the meta page and the bucket header. Everything is little-endian (bbolt writes
//! its structs in host order, and etcd runs on little-endian hosts).
//!
//! ```text
//! page:      id u64 | flags u16 | count u16 | overflow u32 | elements ... | keys/values
//! branch el: pos u32 | ksize u32 | pgid u64            (pos is relative to the element)
//! leaf el:   flags u32 | pos u32 | ksize u32 | vsize u32 (flags 0x01 = nested bucket)
//! meta:      magic u32 | version u32 | page_size u32 | flags u32 | root (pgid u64, seq u64)
//!            | freelist u64 | pgid u64 | txid u64 | checksum u64 (FNV-1a-64 of the rest)
//! bucket:    root pgid u64 | sequence u64 [| inline leaf page when root == 0]
//! ```

/// Page header size.
pub const PAGE_HEADER_SIZE: usize = 16;
/// Size of a branch page element.
pub const BRANCH_ELEMENT_SIZE: usize = 16;
/// Size of a leaf page element.
pub const LEAF_ELEMENT_SIZE: usize = 16;
/// Size of a bucket header (the value of a bucket's key in its parent).
pub const BUCKET_HEADER_SIZE: usize = 16;
/// Size of the meta structure that follows a meta page's header.
pub const META_SIZE: usize = 64;
/// bbolt's magic number.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only data file version bbolt writes.
pub const VERSION: u32 = 2;
/// `meta.freelist` when the freelist is not persisted (bbolt's `NoFreelistSync`).
pub const PGID_NO_FREELIST: u64 = u64::MAX;

/// Page flag: branch page.
pub const BRANCH_PAGE: u16 = 0x01;
/// Page flag: leaf page.
pub const LEAF_PAGE: u16 = 0x02;
/// Page flag: meta page.
pub const META_PAGE: u16 = 0x04;
/// Page flag: freelist page.
pub const FREELIST_PAGE: u16 = 0x10;
/// Leaf element flag: the value is a nested bucket.
pub const BUCKET_LEAF_FLAG: u32 = 0x01;

/// A page's 16-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// Page id (pgid) the page says it has.
    pub id: u64,
    /// One of the page flags.
    pub flags: u16,
    /// Number of elements (for a freelist page, 0xFFFF means the count is the first pgid).
    pub count: u16,
    /// Number of pages that follow this one as its continuation.
    pub overflow: u32,
}

impl PageHeader {
    /// Parses the header at the start of `b` (at least 16 bytes).
    pub fn parse(b: &[u8]) -> Option<PageHeader> {
        Some(PageHeader {
            id: u64_at(b, 0)?,
            flags: u16_at(b, 8)?,
            count: u16_at(b, 10)?,
            overflow: u32_at(b, 12)?,
        })
    }

    /// Writes the header into the first 16 bytes of `b`.
    pub fn write(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..10].copy_from_slice(&self.flags.to_le_bytes());
        b[10..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..16].copy_from_slice(&self.overflow.to_le_bytes());
    }
}

/// A bucket's on-disk header: its root page (0 when the bucket is inline) and sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketHeader {
    /// Root page id; 0 for an inline bucket, whose leaf page follows the header.
    pub root: u64,
    /// The bucket's `NextSequence` counter.
    pub sequence: u64,
}

impl BucketHeader {
    /// Parses the first 16 bytes of `b`.
    pub fn parse(b: &[u8]) -> Option<BucketHeader> {
        Some(BucketHeader {
            root: u64_at(b, 0)?,
            sequence: u64_at(b, 8)?,
        })
    }

    /// The 16-byte encoding.
    pub fn encode(&self) -> [u8; BUCKET_HEADER_SIZE] {
        let mut b = [0u8; BUCKET_HEADER_SIZE];
        b[0..8].copy_from_slice(&self.root.to_le_bytes());
        b[8..16].copy_from_slice(&self.sequence.to_le_bytes());
        b
    }
}

/// The meta structure of a meta page (pages 0 and 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Must be [`MAGIC`].
    pub magic: u32,
    /// Must be [`VERSION`].
    pub version: u32,
    /// Page size of the file.
    pub page_size: u32,
    /// Unused by bbolt.
    pub flags: u32,
    /// The root bucket, whose keys are the top-level bucket names.
    pub root: BucketHeader,
    /// Page id of the freelist, or [`PGID_NO_FREELIST`].
    pub freelist: u64,
    /// High-water mark: number of pages in use (every page id is below it).
    pub pgid: u64,
    /// Id of the transaction that wrote this meta.
    pub txid: u64,
    /// FNV-1a-64 of the 56 bytes before it.
    pub checksum: u64,
}

impl Meta {
    /// Parses the 64 meta bytes (after the page header).
    pub fn parse(b: &[u8]) -> Option<Meta> {
        Some(Meta {
            magic: u32_at(b, 0)?,
            version: u32_at(b, 4)?,
            page_size: u32_at(b, 8)?,
            flags: u32_at(b, 12)?,
            root: BucketHeader::parse(b.get(16..32)?)?,
            freelist: u64_at(b, 32)?,
            pgid: u64_at(b, 40)?,
            txid: u64_at(b, 48)?,
            checksum: u64_at(b, 56)?,
        })
    }

    /// The 64-byte encoding, with `checksum` as it is (see [`Meta::seal`]).
    pub fn encode(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        b[0..4].copy_from_slice(&self.magic.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.page_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..32].copy_from_slice(&self.root.encode());
        b[32..40].copy_from_slice(&self.freelist.to_le_bytes());
        b[40..48].copy_from_slice(&self.pgid.to_le_bytes());
        b[48..56].copy_from_slice(&self.txid.to_le_bytes());
        b[56..64].copy_from_slice(&self.checksum.to_le_bytes());
        b
    }

    /// The checksum bbolt computes: FNV-1a-64 over the fields before `checksum`.
    pub fn sum64(&self) -> u64 {
        fnv1a64(&self.encode()[..56])
    }

    /// Sets `checksum` to [`Meta::sum64`].
    pub fn seal(&mut self) {
        self.checksum = self.sum64();
    }
}

/// FNV-1a, 64-bit.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Little-endian u16 at `off`, `None` when out of bounds.
pub fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// Little-endian u32 at `off`, `None` when out of bounds.
pub fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Little-endian u64 at `off`, `None` when out of bounds.
pub fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// One element of a leaf page, borrowed from the page.
#[derive(Debug, Clone, Copy)]
pub struct LeafElement<'a> {
    /// [`BUCKET_LEAF_FLAG`] for a nested bucket.
    pub flags: u32,
    /// The key.
    pub key: &'a [u8],
    /// The value (for a bucket: its header and maybe its inline page).
    pub value: &'a [u8],
}

/// One element of a branch page, borrowed from the page.
#[derive(Debug, Clone, Copy)]
pub struct BranchElement<'a> {
    /// The first key of the child (or a key at most that).
    pub key: &'a [u8],
    /// The child page.
    pub pgid: u64,
}

/// Why an element could not be read: a description for the error message.
pub type ElementFault = &'static str;

/// Leaf element `i` of `page` (header included), bounds-checked against the page.
pub fn leaf_element(page: &[u8], i: usize) -> Result<LeafElement<'_>, ElementFault> {
    let el = i
        .checked_mul(LEAF_ELEMENT_SIZE)
        .and_then(|o| o.checked_add(PAGE_HEADER_SIZE))
        .ok_or("element offset overflows")?;
    let flags = u32_at(page, el).ok_or("element header past the page end")?;
    let pos = u32_at(page, el + 4).ok_or("element header past the page end")?;
    let ksize = u32_at(page, el + 8).ok_or("element header past the page end")?;
    let vsize = u32_at(page, el + 12).ok_or("element header past the page end")?;
    let kstart = el.checked_add(pos as usize).ok_or("key offset overflows")?;
    let kend = kstart
        .checked_add(ksize as usize)
        .ok_or("key size overflows")?;
    let vend = kend
        .checked_add(vsize as usize)
        .ok_or("value size overflows")?;
    if vend > page.len() {
        return Err("key or value past the page end");
    }
    Ok(LeafElement {
        flags,
        key: &page[kstart..kend],
        value: &page[kend..vend],
    })
}

/// Branch element `i` of `page` (header included), bounds-checked against the page.
pub fn branch_element(page: &[u8], i: usize) -> Result<BranchElement<'_>, ElementFault> {
    let el = i
        .checked_mul(BRANCH_ELEMENT_SIZE)
        .and_then(|o| o.checked_add(PAGE_HEADER_SIZE))
        .ok_or("element offset overflows")?;
    let pos = u32_at(page, el).ok_or("element header past the page end")?;
    let ksize = u32_at(page, el + 4).ok_or("element header past the page end")?;
    let pgid = u64_at(page, el + 8).ok_or("element header past the page end")?;
    let kstart = el.checked_add(pos as usize).ok_or("key offset overflows")?;
    let kend = kstart
        .checked_add(ksize as usize)
        .ok_or("key size overflows")?;
    if kend > page.len() {
        return Err("key past the page end");
    }
    Ok(BranchElement {
        key: &page[kstart..kend],
        pgid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn meta_round_trips_and_seals() {
        let mut m = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: 4096,
            flags: 0,
            root: BucketHeader {
                root: 3,
                sequence: 0,
            },
            freelist: 2,
            pgid: 4,
            txid: 1,
            checksum: 0,
        };
        m.seal();
        let back = Meta::parse(&m.encode()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.sum64(), back.checksum);
    }

    #[test]
    fn elements_out_of_bounds_are_faults() {
        let mut page = vec![0u8; 48];
        PageHeader {
            id: 2,
            flags: LEAF_PAGE,
            count: 1,
            overflow: 0,
        }
        .write(&mut page);
        // pos = 16 (from element at 16 -> 32), ksize 8, vsize 100: past the end.
        page[20..24].copy_from_slice(&16u32.to_le_bytes());
        page[24..28].copy_from_slice(&8u32.to_le_bytes());
        page[28..32].copy_from_slice(&100u32.to_le_bytes());
        assert!(leaf_element(&page, 0).is_err());
        page[28..32].copy_from_slice(&8u32.to_le_bytes());
        let el = leaf_element(&page, 0).unwrap();
        assert_eq!((el.key.len(), el.value.len()), (8, 8));
        assert!(leaf_element(&page, usize::MAX).is_err());
        assert!(branch_element(&page, usize::MAX / 2).is_err());
    }
}
