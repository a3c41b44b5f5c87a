//! Reading a bbolt file: meta pages, buckets, and cursors over a bucket's keys.
//!
//! The file is untrusted. Pages are read with `pread` into owned buffers (no mmap: a file
//! truncated under a mapping would kill the process with SIGBUS), every page id is checked
//! against the meta page's high-water mark and the file size before anything is read or
//! allocated, every element against its page, and walks are bounded in depth and in the
//! number of pages visited, so a hostile file gives a [`BoltError`], never a panic or a hang.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::BoltError;
use super::page::{
    branch_element, leaf_element, BucketHeader, Meta, PageHeader, BRANCH_ELEMENT_SIZE, BRANCH_PAGE,
    BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, LEAF_ELEMENT_SIZE, LEAF_PAGE, MAGIC, META_SIZE,
    PAGE_HEADER_SIZE, PGID_NO_FREELIST, VERSION,
};

/// Deepest B+tree accepted. bbolt trees of even 2^64 keys are far shallower.
pub const MAX_TREE_DEPTH: usize = 64;
/// Size of the SHA-256 trailer `etcdctl snapshot save` appends.
pub const SHA256_TRAILER_LEN: u64 = 32;
/// Page sizes tried for meta page 1 when meta page 0 is unreadable.
const CANDIDATE_PAGE_SIZES: [u32; 8] = [4096, 512, 1024, 2048, 8192, 16384, 32768, 65536];

enum Source {
    File(File),
    Memory(Vec<u8>),
}

/// An open bbolt file (read-only).
pub struct Db {
    source: Source,
    path: PathBuf,
    data_len: u64,
    meta: Meta,
    meta_page: u64,
    sha256_trailer: Option<[u8; 32]>,
}

/// One key of a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// The value; for a nested bucket, its raw header (and inline page).
    pub value: Vec<u8>,
    /// Whether the key names a nested bucket.
    pub is_bucket: bool,
}

impl Db {
    /// Opens `path` for reading with `pread`. A file whose size is 32 more than a multiple of
    /// 512 is an `etcdctl snapshot save` file: its last 32 bytes are a SHA-256 trailer, not
    /// bbolt data (see [`Db::sha256_trailer`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Db, BoltError> {
        let path = path.as_ref().to_path_buf();
        let io = |op, source| BoltError::Io {
            file: path.clone(),
            op,
            source,
        };
        let file = File::open(&path).map_err(|e| io("open", e))?;
        let len = file.metadata().map_err(|e| io("stat", e))?.len();
        Db::with_source(Source::File(file), path, len)
    }

    /// Reads a bbolt image held in memory; `label` names it in errors.
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Db, BoltError> {
        let len = bytes.len() as u64;
        Db::with_source(Source::Memory(bytes), label.into(), len)
    }

    fn with_source(source: Source, path: PathBuf, len: u64) -> Result<Db, BoltError> {
        let mut db = Db {
            source,
            path,
            data_len: len,
            meta: zero_meta(),
            meta_page: 0,
            sha256_trailer: None,
        };
        if len % 512 == SHA256_TRAILER_LEN && len > SHA256_TRAILER_LEN {
            let mut trailer = [0u8; 32];
            db.read_exact_at(
                len - SHA256_TRAILER_LEN,
                &mut trailer,
                "read SHA-256 trailer",
            )?;
            db.sha256_trailer = Some(trailer);
            db.data_len = len - SHA256_TRAILER_LEN;
        }
        if db.data_len < 2 * 512 {
            return Err(BoltError::TooShort {
                file: db.path.clone(),
                len,
            });
        }
        let (meta, page) = db.choose_meta()?;
        db.meta = meta;
        db.meta_page = page;
        Ok(db)
    }

    /// The meta page in force: the valid one with the highest txid.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Which meta page (0 or 1) is in force.
    pub fn meta_page(&self) -> u64 {
        self.meta_page
    }

    /// The page size.
    pub fn page_size(&self) -> u32 {
        self.meta.page_size
    }

    /// The file's path (or the label given to [`Db::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of bbolt data: the file size less any SHA-256 trailer.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// The SHA-256 trailer of a snapshot file, if the file has one.
    pub fn sha256_trailer(&self) -> Option<[u8; 32]> {
        self.sha256_trailer
    }

    /// Whether the SHA-256 trailer matches the data before it (`None`: there is no trailer).
    pub fn verify_sha256_trailer(&self) -> Result<Option<bool>, BoltError> {
        let Some(want) = self.sha256_trailer else {
            return Ok(None);
        };
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        while off < self.data_len {
            let n = (self.data_len - off).min(buf.len() as u64) as usize;
            self.read_exact_at(off, &mut buf[..n], "read for SHA-256")?;
            hasher.update(&buf[..n]);
            off += n as u64;
        }
        Ok(Some(hasher.finalize().as_slice() == want))
    }

    /// The root bucket, whose keys are the top-level buckets.
    pub fn root(&self) -> Bucket<'_> {
        Bucket {
            db: self,
            name: Vec::new(),
            root: Root::Page(self.meta.root.root),
            header: self.meta.root,
        }
    }

    /// The top-level bucket `name`, if it exists.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'_>>, BoltError> {
        self.root().bucket(name)
    }

    /// Names of the top-level buckets, in order.
    pub fn bucket_names(&self) -> Result<Vec<Vec<u8>>, BoltError> {
        self.root().bucket_names()
    }

    /// Pages in the file (whole pages of bbolt data).
    pub fn file_pages(&self) -> u64 {
        self.data_len / u64::from(self.meta.page_size)
    }

    fn read_exact_at(
        &self,
        offset: u64,
        buf: &mut [u8],
        op: &'static str,
    ) -> Result<(), BoltError> {
        match &self.source {
            Source::File(f) => f
                .read_exact_at(buf, offset)
                .map_err(|source| BoltError::Io {
                    file: self.path.clone(),
                    op,
                    source,
                }),
            Source::Memory(bytes) => {
                let end = offset
                    .checked_add(buf.len() as u64)
                    .filter(|&e| e <= bytes.len() as u64);
                let Some(end) = end else {
                    let source = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                    return Err(BoltError::Io {
                        file: self.path.clone(),
                        op,
                        source,
                    });
                };
                buf.copy_from_slice(&bytes[offset as usize..end as usize]);
                Ok(())
            }
        }
    }

    fn choose_meta(&self) -> Result<(Meta, u64), BoltError> {
        let meta0 = self.read_meta(0, None);
        let page_size = meta0.as_ref().ok().map(|m| m.page_size);
        let meta1 = match page_size {
            Some(ps) => self.read_meta(1, Some(ps)),
            None => self.find_meta1(),
        };
        match (meta0, meta1) {
            (Ok(a), Ok(b)) if b.txid > a.txid => Ok((b, 1)),
            (Ok(a), _) => Ok((a, 0)),
            (Err(_), Ok(b)) => Ok((b, 1)),
            (Err(meta0), Err(meta1)) => Err(BoltError::NoValidMeta {
                file: self.path.clone(),
                meta0,
                meta1,
            }),
        }
    }

    fn find_meta1(&self) -> Result<Meta, String> {
        let mut first_err = None;
        for ps in CANDIDATE_PAGE_SIZES {
            match self.read_meta(1, Some(ps)) {
                Ok(m) => return Ok(m),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(format!(
            "meta page 0 unreadable, so page 1 was looked for at common page sizes: {}",
            first_err.unwrap_or_default()
        ))
    }

    /// Reads and validates meta page `page` (0 or 1); for page 1 the page size locates it.
    fn read_meta(&self, page: u64, page_size: Option<u32>) -> Result<Meta, String> {
        let offset = page * u64::from(page_size.unwrap_or(0));
        let mut buf = [0u8; PAGE_HEADER_SIZE + META_SIZE];
        if offset + buf.len() as u64 > self.data_len {
            return Err(format!(
                "offset {offset} is past the end of the data ({} bytes)",
                self.data_len
            ));
        }
        self.read_exact_at(offset, &mut buf, "read meta page")
            .map_err(|e| e.to_string())?;
        let meta = Meta::parse(&buf[PAGE_HEADER_SIZE..]).ok_or("short meta")?;
        if meta.magic != MAGIC {
            return Err(format!(
                "offset {offset}: magic {:#x}, expected {MAGIC:#x}",
                meta.magic
            ));
        }
        if meta.version != VERSION {
            return Err(format!(
                "offset {offset}: version {}, expected {VERSION}",
                meta.version
            ));
        }
        if meta.checksum != meta.sum64() {
            return Err(format!(
                "offset {offset}: checksum {:#x}, computed {:#x}",
                meta.checksum,
                meta.sum64()
            ));
        }
        if page_size.is_some_and(|ps| ps != meta.page_size) {
            return Err(format!(
                "offset {offset}: page size {} differs from meta page 0's",
                meta.page_size
            ));
        }
        self.check_meta_bounds(&meta)
            .map_err(|e| format!("offset {offset}: {e}"))?;
        Ok(meta)
    }

    fn check_meta_bounds(&self, m: &Meta) -> Result<(), String> {
        let ps = m.page_size;
        if !ps.is_power_of_two() || !(512..=65536).contains(&ps) {
            return Err(format!(
                "page size {ps} is not a power of two in 512..=65536"
            ));
        }
        let file_pages = self.data_len / u64::from(ps);
        if m.pgid < 3 || m.pgid > file_pages {
            return Err(format!(
                "high-water mark {} pages, but the data holds {file_pages} pages of {ps} bytes",
                m.pgid
            ));
        }
        if m.root.root < 2 || m.root.root >= m.pgid {
            return Err(format!(
                "root bucket page {} is outside 2..{}",
                m.root.root, m.pgid
            ));
        }
        if m.freelist != PGID_NO_FREELIST && (m.freelist < 2 || m.freelist >= m.pgid) {
            return Err(format!(
                "freelist page {} is outside 2..{}",
                m.freelist, m.pgid
            ));
        }
        Ok(())
    }

    /// Reads branch or leaf page `pgid` with its overflow pages. `from` describes the reference
    /// for the error message.
    fn read_tree_page(&self, pgid: u64, from: impl Fn() -> String) -> Result<PageBuf, BoltError> {
        let ps = u64::from(self.meta.page_size);
        self.check_page_range(pgid, 0, &from)?;
        let offset = pgid * ps;
        let mut data = vec![0u8; ps as usize];
        self.read_exact_at(offset, &mut data, "read page")?;
        let header = PageHeader::parse(&data).expect("a page holds its header");
        if header.id != pgid {
            return Err(BoltError::PageIdMismatch {
                file: self.path.clone(),
                pgid,
                offset,
                found: header.id,
            });
        }
        if header.flags != BRANCH_PAGE && header.flags != LEAF_PAGE {
            let expected = "a branch (0x01) or leaf (0x02) page";
            return Err(BoltError::UnexpectedPageType {
                file: self.path.clone(),
                pgid,
                offset,
                flags: header.flags,
                expected,
            });
        }
        if header.overflow > 0 {
            let overflow = u64::from(header.overflow);
            self.check_page_range(pgid, overflow, &from)?;
            data.resize(((overflow + 1) * ps) as usize, 0);
            self.read_exact_at(offset + ps, &mut data[ps as usize..], "read overflow pages")?;
        }
        PageBuf::new(self, pgid, offset, Arc::from(data))
    }

    fn check_page_range(
        &self,
        pgid: u64,
        overflow: u64,
        from: &impl Fn() -> String,
    ) -> Result<(), BoltError> {
        let end = pgid.checked_add(overflow).and_then(|e| e.checked_add(1));
        let in_range =
            pgid >= 2 && end.is_some_and(|e| e <= self.meta.pgid && e <= self.file_pages());
        if in_range {
            return Ok(());
        }
        Err(BoltError::PageOutOfRange {
            file: self.path.clone(),
            pgid,
            overflow,
            from: from(),
            high_water_mark: self.meta.pgid,
            file_pages: self.file_pages(),
        })
    }
}

fn zero_meta() -> Meta {
    Meta {
        magic: 0,
        version: 0,
        page_size: 0,
        flags: 0,
        root: BucketHeader::default(),
        freelist: 0,
        pgid: 0,
        txid: 0,
        checksum: 0,
    }
}

/// A branch or leaf page (with its overflow), or an inline bucket's page, validated so that
/// its element table fits.
#[derive(Clone)]
struct PageBuf {
    data: Arc<[u8]>,
    pgid: u64,
    offset: u64,
    leaf: bool,
    count: usize,
}

impl PageBuf {
    fn new(db: &Db, pgid: u64, offset: u64, data: Arc<[u8]>) -> Result<PageBuf, BoltError> {
        let header = PageHeader::parse(&data).ok_or_else(|| BoltError::BadElement {
            file: db.path.clone(),
            pgid,
            offset,
            index: 0,
            fault: "page shorter than its header",
        })?;
        let leaf = header.flags == LEAF_PAGE;
        let count = usize::from(header.count);
        let el_size = if leaf {
            LEAF_ELEMENT_SIZE
        } else {
            BRANCH_ELEMENT_SIZE
        };
        if PAGE_HEADER_SIZE + count * el_size > data.len() {
            let fault = "element table runs past the page end";
            return Err(BoltError::BadElement {
                file: db.path.clone(),
                pgid,
                offset,
                index: count,
                fault,
            });
        }
        Ok(PageBuf {
            data,
            pgid,
            offset,
            leaf,
            count,
        })
    }
}

#[derive(Clone)]
enum Root {
    Page(u64),
    Inline(PageBuf),
}

/// A bucket of an open [`Db`].
#[derive(Clone)]
pub struct Bucket<'db> {
    db: &'db Db,
    name: Vec<u8>,
    root: Root,
    header: BucketHeader,
}

impl<'db> Bucket<'db> {
    /// The bucket's path from the root, `/`-separated (empty for the root bucket).
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The bucket's header (root page 0 when inline).
    pub fn header(&self) -> BucketHeader {
        self.header
    }

    /// All keys in order.
    pub fn iter(&self) -> Cursor<'db> {
        Cursor::new(self.clone(), None)
    }

    /// Keys from the first one `>= start`, in order.
    pub fn iter_from(&self, start: &[u8]) -> Cursor<'db> {
        Cursor::new(self.clone(), Some(start.to_vec()))
    }

    /// The entry for `key`, value or nested bucket.
    pub fn get_entry(&self, key: &[u8]) -> Result<Option<Entry>, BoltError> {
        match self.iter_from(key).next() {
            Some(Ok(e)) if e.key == key => Ok(Some(e)),
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        }
    }

    /// The value of `key`; an error if `key` is a nested bucket.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BoltError> {
        match self.get_entry(key)? {
            Some(e) if e.is_bucket => Err(self.wrong_kind(key, "a bucket", "a value")),
            Some(e) => Ok(Some(e.value)),
            None => Ok(None),
        }
    }

    /// The nested bucket `name`; an error if `name` is a plain value.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'db>>, BoltError> {
        match self.get_entry(name)? {
            Some(e) if e.is_bucket => self.open_nested(&e.key, &e.value).map(Some),
            Some(_) => Err(self.wrong_kind(name, "a value", "a bucket")),
            None => Ok(None),
        }
    }

    /// Walks every page of the bucket (not of nested buckets), checking every key.
    pub fn stats(&self) -> Result<WalkStats, BoltError> {
        let mut cursor = self.iter();
        for e in &mut cursor {
            e?;
        }
        Ok(cursor.stats())
    }

    /// Names of the nested buckets, in order.
    pub fn bucket_names(&self) -> Result<Vec<Vec<u8>>, BoltError> {
        let mut names = Vec::new();
        for e in self.iter() {
            let e = e?;
            if e.is_bucket {
                names.push(e.key);
            }
        }
        Ok(names)
    }

    /// Opens the nested bucket whose entry in this bucket is (`key`, `value`).
    pub fn open_nested(&self, key: &[u8], value: &[u8]) -> Result<Bucket<'db>, BoltError> {
        let bad = |fault: String| BoltError::BadBucketValue {
            file: self.db.path.clone(),
            bucket: lossy(&self.name),
            key: lossy(key),
            fault,
        };
        let header = BucketHeader::parse(value).ok_or_else(|| {
            bad(format!(
                "{} bytes, shorter than a bucket header",
                value.len()
            ))
        })?;
        let mut name = self.name.clone();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(key);
        if header.root != 0 {
            return Ok(Bucket {
                db: self.db,
                name,
                root: Root::Page(header.root),
                header,
            });
        }
        let page = &value[BUCKET_HEADER_SIZE..];
        let flags = PageHeader::parse(page).map(|h| h.flags);
        if flags != Some(LEAF_PAGE) {
            return Err(bad(format!(
                "inline page has flags {flags:?}, expected a leaf (0x02)"
            )));
        }
        let page = PageBuf::new(self.db, 0, 0, Arc::from(page)).map_err(|e| bad(e.to_string()))?;
        Ok(Bucket {
            db: self.db,
            name,
            root: Root::Inline(page),
            header,
        })
    }

    fn wrong_kind(&self, key: &[u8], found: &'static str, expected: &'static str) -> BoltError {
        BoltError::WrongKind {
            file: self.db.path.clone(),
            bucket: lossy(&self.name),
            key: lossy(key),
            found,
            expected,
        }
    }
}

/// Lossy UTF-8 for error messages.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Shape of the part of a bucket's tree a cursor walked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkStats {
    /// Levels of pages, 1 for a bucket whose root is a leaf.
    pub depth: usize,
    /// Branch pages read.
    pub branch_pages: u64,
    /// Leaf pages read (an inline bucket's page included).
    pub leaf_pages: u64,
    /// Overflow pages of those pages.
    pub overflow_pages: u64,
}

/// An iterator over a bucket's entries in key order. After an error it ends.
pub struct Cursor<'db> {
    bucket: Bucket<'db>,
    start: Option<Vec<u8>>,
    started: bool,
    failed: bool,
    stack: Vec<Frame>,
    prev_key: Option<Vec<u8>>,
    visited: u64,
    stats: WalkStats,
}

struct Frame {
    page: PageBuf,
    /// Next element to visit.
    index: usize,
}

impl<'db> Cursor<'db> {
    fn new(bucket: Bucket<'db>, start: Option<Vec<u8>>) -> Cursor<'db> {
        Cursor {
            bucket,
            start,
            started: false,
            failed: false,
            stack: Vec::new(),
            prev_key: None,
            visited: 0,
            stats: WalkStats::default(),
        }
    }

    /// What the walk has read so far.
    pub fn stats(&self) -> WalkStats {
        self.stats
    }

    fn count_page(&mut self, page: &PageBuf) {
        let s = &mut self.stats;
        s.depth = s.depth.max(self.stack.len() + 1);
        if page.leaf {
            s.leaf_pages += 1;
        } else {
            s.branch_pages += 1;
        }
        let ps = self.bucket.db.meta.page_size as usize;
        if page.pgid != 0 && page.data.len() > ps {
            s.overflow_pages += (page.data.len() / ps - 1) as u64;
        }
    }

    fn db(&self) -> &'db Db {
        self.bucket.db
    }

    /// Pushes the root page and, when seeking, descends to the first key `>= start`.
    fn seek(&mut self) -> Result<(), BoltError> {
        let root = match &self.bucket.root {
            Root::Inline(page) => page.clone(),
            Root::Page(pgid) => {
                let name = lossy(&self.bucket.name);
                self.visit(*pgid, move || format!("the header of bucket {name:?}"))?
            }
        };
        self.count_page(&root);
        self.stack.push(Frame {
            page: root,
            index: 0,
        });
        let Some(start) = self.start.take() else {
            return Ok(());
        };
        loop {
            if self.stack.last().expect("a frame was pushed").page.leaf {
                let i = self.leaf_lower_bound(&start)?;
                self.stack.last_mut().expect("a frame was pushed").index = i;
                return Ok(());
            }
            let i = self.branch_search(&start)?;
            let frame = self.stack.last_mut().expect("a frame was pushed");
            frame.index = i;
            self.descend()?;
        }
    }

    /// In the top (leaf) frame, the index of the first key `>= key`.
    fn leaf_lower_bound(&self, key: &[u8]) -> Result<usize, BoltError> {
        let page = &self.stack.last().expect("a frame").page;
        let (mut lo, mut hi) = (0, page.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let el = leaf_element(&page.data, mid).map_err(|f| self.bad_element(page, mid, f))?;
            if el.key < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// In the top (branch) frame, the child to follow for `key`: the last element whose key
    /// is `<= key`, or the first.
    fn branch_search(&self, key: &[u8]) -> Result<usize, BoltError> {
        let page = &self.stack.last().expect("a frame").page;
        let (mut lo, mut hi) = (0, page.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let el = branch_element(&page.data, mid).map_err(|f| self.bad_element(page, mid, f))?;
            if el.key <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.saturating_sub(1))
    }

    /// Follows the top (branch) frame's element at its index and pushes the child.
    fn descend(&mut self) -> Result<(), BoltError> {
        let frame = self.stack.last_mut().expect("a frame");
        let i = frame.index;
        frame.index += 1;
        let page = frame.page.clone();
        let el = branch_element(&page.data, i).map_err(|f| self.bad_element(&page, i, f))?;
        if self.stack.len() >= MAX_TREE_DEPTH {
            return Err(BoltError::TooDeep {
                file: self.db().path.clone(),
                pgid: page.pgid,
                max: MAX_TREE_DEPTH,
            });
        }
        let child = self.visit(el.pgid, || format!("branch page {} element {i}", page.pgid))?;
        self.count_page(&child);
        self.stack.push(Frame {
            page: child,
            index: 0,
        });
        Ok(())
    }

    /// Reads a page of this walk, counting it against the file's page count.
    fn visit(&mut self, pgid: u64, from: impl Fn() -> String) -> Result<PageBuf, BoltError> {
        self.visited += 1;
        if self.visited > self.db().meta.pgid {
            return Err(BoltError::TooManyPages {
                file: self.db().path.clone(),
                bucket: lossy(&self.bucket.name),
                limit: self.db().meta.pgid,
            });
        }
        self.db().read_tree_page(pgid, from)
    }

    fn bad_element(&self, page: &PageBuf, index: usize, fault: &'static str) -> BoltError {
        BoltError::BadElement {
            file: self.db().path.clone(),
            pgid: page.pgid,
            offset: page.offset,
            index,
            fault,
        }
    }

    fn step(&mut self) -> Result<Option<Entry>, BoltError> {
        if !self.started {
            self.started = true;
            self.seek()?;
        }
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            if frame.index >= frame.page.count {
                self.stack.pop();
                continue;
            }
            if !frame.page.leaf {
                self.descend()?;
                continue;
            }
            let i = frame.index;
            frame.index += 1;
            let page = frame.page.clone();
            let el = leaf_element(&page.data, i).map_err(|f| self.bad_element(&page, i, f))?;
            self.check_order(&page, i, el.key)?;
            let is_bucket = el.flags & BUCKET_LEAF_FLAG != 0;
            return Ok(Some(Entry {
                key: el.key.to_vec(),
                value: el.value.to_vec(),
                is_bucket,
            }));
        }
    }

    fn check_order(&mut self, page: &PageBuf, index: usize, key: &[u8]) -> Result<(), BoltError> {
        match &mut self.prev_key {
            Some(prev) if prev.as_slice() >= key => Err(BoltError::KeysOutOfOrder {
                file: self.bucket.db.path.clone(),
                bucket: lossy(&self.bucket.name),
                pgid: page.pgid,
                index,
            }),
            Some(prev) => {
                prev.clear();
                prev.extend_from_slice(key);
                Ok(())
            }
            None => {
                self.prev_key = Some(key.to_vec());
                Ok(())
            }
        }
    }
}

impl Iterator for Cursor<'_> {
    type Item = Result<Entry, BoltError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
