//! Writing a fresh, compact bbolt file from buckets given in key order.
//!
//! Streaming: each open bucket keeps only the leaf page being filled and one pending branch
//! page per tree level; a page is written as soon as it is full, so memory does not grow with
//! the data set. Pages are allocated in increasing order and appended, then the branch pages
//! of a finished bucket (bottom-up), then its entry goes into the parent bucket. At the end
//! come an empty freelist page and the two meta pages (written last, at pages 0 and 1).
//!
//! Small buckets (one leaf page of at most a quarter page, no nested buckets) are written
//! inline in their parent, as bbolt does.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::error::BoltError;
use super::page::{
    BucketHeader, Meta, PageHeader, BRANCH_ELEMENT_SIZE, BRANCH_PAGE, BUCKET_LEAF_FLAG,
    FREELIST_PAGE, LEAF_ELEMENT_SIZE, LEAF_PAGE, MAGIC, META_PAGE, META_SIZE, PAGE_HEADER_SIZE,
    VERSION,
};

/// The page size written.
pub const PAGE_SIZE: usize = 4096;
/// bbolt's largest key.
pub const MAX_KEY_SIZE: usize = 32768;
/// bbolt's largest value.
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;
/// Txid of the meta page in page 1 (page 0 gets one less): like a file bbolt just created
/// and committed once, so bbolt's next commit (txid + 1, even) overwrites page 0.
const TXID: u64 = 3;

/// What [`BoltWriter::finish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSummary {
    /// Pages in the file (the high-water mark).
    pub pages: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Key/value pairs written (bucket entries excluded).
    pub keys: u64,
    /// Buckets written (the root bucket excluded).
    pub buckets: u64,
}

/// Writes a bbolt file. Call [`begin_bucket`](Self::begin_bucket), [`put`](Self::put) and
/// [`end_bucket`](Self::end_bucket) with keys and bucket names in strictly increasing byte
/// order within each bucket, then [`finish`](Self::finish).
pub struct BoltWriter {
    out: BufWriter<File>,
    path: PathBuf,
    next_pgid: u64,
    /// `trees[0]` is the root bucket; the last is the bucket being written.
    trees: Vec<TreeBuilder>,
    keys: u64,
    buckets: u64,
}

impl BoltWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<BoltWriter, BoltError> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|source| BoltError::Io {
            file: path.clone(),
            op: "create",
            source,
        })?;
        let mut w = BoltWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            next_pgid: 2,
            trees: vec![TreeBuilder::new(Vec::new())],
            keys: 0,
            buckets: 0,
        };
        // Pages 0 and 1 (the meta pages) are written last; reserve them.
        w.write_all(&[0u8; 2 * PAGE_SIZE], "write")?;
        Ok(w)
    }

    /// Opens a nested bucket `name` in the current bucket (the root at first).
    pub fn begin_bucket(&mut self, name: &[u8]) -> Result<(), BoltError> {
        self.check_key(name)?;
        self.check_order(name)?;
        self.trees.last_mut().expect("the root tree").has_buckets = true;
        self.trees.push(TreeBuilder::new(name.to_vec()));
        Ok(())
    }

    /// Writes `key` = `value` in the current bucket.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), BoltError> {
        if self.trees.len() < 2 {
            return Err(
                self.misuse("put outside a bucket: the root bucket holds only buckets".into())
            );
        }
        self.check_key(key)?;
        if value.len() > MAX_VALUE_SIZE {
            return Err(BoltError::TooLarge {
                file: self.path.clone(),
                what: "value",
                len: value.len(),
                max: MAX_VALUE_SIZE,
            });
        }
        self.check_order(key)?;
        self.keys += 1;
        self.add_leaf_item(Item {
            flags: 0,
            key: key.to_vec(),
            value: value.to_vec(),
        })
    }

    /// Closes the current bucket and records it in its parent.
    pub fn end_bucket(&mut self) -> Result<(), BoltError> {
        if self.trees.len() < 2 {
            return Err(self.misuse("end_bucket without an open bucket".into()));
        }
        let tree = self.trees.pop().expect("an open bucket");
        let (name, value) = self.finish_tree(tree, true)?;
        self.buckets += 1;
        self.add_leaf_item(Item {
            flags: BUCKET_LEAF_FLAG,
            key: name,
            value,
        })
    }

    /// Writes the root bucket, the freelist and the meta pages, and syncs the file.
    pub fn finish(mut self) -> Result<WriteSummary, BoltError> {
        if self.trees.len() != 1 {
            return Err(self.misuse(format!(
                "finish with {} bucket(s) still open",
                self.trees.len() - 1
            )));
        }
        let root = self.trees.pop().expect("the root tree");
        let (_, root_value) = self.finish_tree(root, false)?;
        let root = BucketHeader::parse(&root_value).expect("a bucket header");
        let freelist = self.write_freelist()?;
        let pages = self.next_pgid;
        for txid in [TXID - 1, TXID] {
            self.write_meta(root, freelist, pages, txid)?;
        }
        self.out.flush().map_err(|e| self.io("flush", e))?;
        let file = self.out.get_ref();
        file.sync_all().map_err(|e| BoltError::Io {
            file: self.path.clone(),
            op: "fsync",
            source: e,
        })?;
        let bytes = pages * PAGE_SIZE as u64;
        Ok(WriteSummary {
            pages,
            bytes,
            keys: self.keys,
            buckets: self.buckets,
        })
    }

    fn check_key(&self, key: &[u8]) -> Result<(), BoltError> {
        if key.is_empty() {
            return Err(self.misuse("empty key: bbolt requires non-empty keys".into()));
        }
        if key.len() > MAX_KEY_SIZE {
            return Err(BoltError::TooLarge {
                file: self.path.clone(),
                what: "key",
                len: key.len(),
                max: MAX_KEY_SIZE,
            });
        }
        Ok(())
    }

    fn check_order(&mut self, key: &[u8]) -> Result<(), BoltError> {
        let tree = self.trees.last_mut().expect("the root tree");
        if tree.last_key.as_deref().is_some_and(|last| last >= key) {
            let what = format!(
                "bucket {:?}: key {:?} is not after the previous key",
                String::from_utf8_lossy(&tree.name),
                String::from_utf8_lossy(key)
            );
            return Err(self.misuse(what));
        }
        let tree = self.trees.last_mut().expect("the root tree");
        let last = tree.last_key.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(key);
        Ok(())
    }

    /// Appends an item to the current tree's leaf, writing the leaf first when it is full.
    fn add_leaf_item(&mut self, item: Item) -> Result<(), BoltError> {
        let size = LEAF_ELEMENT_SIZE + item.key.len() + item.value.len();
        let tree = self.trees.last_mut().expect("the root tree");
        if !tree.leaf.items.is_empty() && tree.leaf.size + size > PAGE_SIZE {
            let leaf = std::mem::take(&mut tree.leaf);
            let pgid = self.write_page(LEAF_PAGE, &leaf)?;
            let key = leaf.items.into_iter().next().expect("a non-empty page").key;
            self.add_branch_item(0, key, pgid)?;
        }
        self.trees
            .last_mut()
            .expect("the root tree")
            .leaf
            .push(item, size);
        Ok(())
    }

    /// Adds a child (`key`, `pgid`) to the current tree's branch level `level` (0 = just above
    /// the leaves), writing that level's pending page first when it is full.
    fn add_branch_item(&mut self, level: usize, key: Vec<u8>, pgid: u64) -> Result<(), BoltError> {
        let size = BRANCH_ELEMENT_SIZE + key.len();
        let tree = self.trees.last_mut().expect("the root tree");
        if tree.branches.len() == level {
            tree.branches.push(PageItems::default());
        }
        let pending = &mut tree.branches[level];
        if !pending.items.is_empty() && pending.size + size > PAGE_SIZE {
            let full = std::mem::take(pending);
            let written = self.write_page(BRANCH_PAGE, &full)?;
            let first = full.items.into_iter().next().expect("a non-empty page").key;
            self.add_branch_item(level + 1, first, written)?;
        }
        let item = Item {
            flags: 0,
            key,
            value: pgid.to_le_bytes().to_vec(),
        };
        self.trees.last_mut().expect("the root tree").branches[level].push(item, size);
        Ok(())
    }

    /// Writes what remains of `tree` and returns its name and the bucket value for its parent.
    /// `may_inline` is false for the root bucket, whose root must be a page.
    fn finish_tree(
        &mut self,
        mut tree: TreeBuilder,
        may_inline: bool,
    ) -> Result<(Vec<u8>, Vec<u8>), BoltError> {
        let inline = may_inline
            && tree.branches.is_empty()
            && !tree.has_buckets
            && tree.leaf.size <= PAGE_SIZE / 4;
        if inline {
            let mut value = BucketHeader {
                root: 0,
                sequence: 0,
            }
            .encode()
            .to_vec();
            value.extend_from_slice(&encode_page(0, LEAF_PAGE, &tree.leaf, 0));
            return Ok((std::mem::take(&mut tree.name), value));
        }
        self.trees.push(tree);
        let root = self.flush_levels()?;
        let name = self.trees.pop().expect("the tree pushed").name;
        Ok((name, BucketHeader { root, sequence: 0 }.encode().to_vec()))
    }

    /// Writes the current tree's leaf and pending branch pages bottom-up; returns the root.
    fn flush_levels(&mut self) -> Result<u64, BoltError> {
        let tree = self.trees.last_mut().expect("a tree");
        let leaf = std::mem::take(&mut tree.leaf);
        if tree.branches.is_empty() {
            return self.write_page(LEAF_PAGE, &leaf);
        }
        if !leaf.items.is_empty() {
            let pgid = self.write_page(LEAF_PAGE, &leaf)?;
            let key = leaf.items.into_iter().next().expect("a non-empty page").key;
            self.add_branch_item(0, key, pgid)?;
        }
        let mut level = 0;
        loop {
            let tree = self.trees.last_mut().expect("a tree");
            let top = level + 1 == tree.branches.len();
            let pending = std::mem::take(&mut tree.branches[level]);
            // A level that wrote a page before has a level above it, so a top level with one
            // child has never written one: that child is the root.
            if top && pending.items.len() == 1 {
                return Ok(u64::from_le_bytes(
                    pending.items[0].value[..8].try_into().expect("a pgid"),
                ));
            }
            let pgid = self.write_page(BRANCH_PAGE, &pending)?;
            if top {
                return Ok(pgid);
            }
            let first = pending
                .items
                .into_iter()
                .next()
                .expect("a non-empty page")
                .key;
            self.add_branch_item(level + 1, first, pgid)?;
            level += 1;
        }
    }

    /// Allocates pages for `items` and appends them; returns the first page id.
    fn write_page(&mut self, flags: u16, items: &PageItems) -> Result<u64, BoltError> {
        let pgid = self.next_pgid;
        let buf = encode_page(pgid, flags, items, PAGE_SIZE);
        self.next_pgid += (buf.len() / PAGE_SIZE) as u64;
        self.write_all(&buf, "write page")?;
        Ok(pgid)
    }

    fn write_freelist(&mut self) -> Result<u64, BoltError> {
        let pgid = self.next_pgid;
        let mut page = vec![0u8; PAGE_SIZE];
        PageHeader {
            id: pgid,
            flags: FREELIST_PAGE,
            count: 0,
            overflow: 0,
        }
        .write(&mut page);
        self.write_all(&page, "write freelist")?;
        self.next_pgid += 1;
        Ok(pgid)
    }

    fn write_meta(
        &mut self,
        root: BucketHeader,
        freelist: u64,
        pages: u64,
        txid: u64,
    ) -> Result<(), BoltError> {
        let mut meta = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: PAGE_SIZE as u32,
            flags: 0,
            root,
            freelist,
            pgid: pages,
            txid,
            checksum: 0,
        };
        meta.seal();
        let page_id = txid % 2;
        let mut page = [0u8; PAGE_HEADER_SIZE + META_SIZE];
        PageHeader {
            id: page_id,
            flags: META_PAGE,
            count: 0,
            overflow: 0,
        }
        .write(&mut page);
        page[PAGE_HEADER_SIZE..].copy_from_slice(&meta.encode());
        self.out
            .seek(SeekFrom::Start(page_id * PAGE_SIZE as u64))
            .map_err(|e| self.io("seek", e))?;
        self.write_all(&page, "write meta page")
    }

    fn write_all(&mut self, buf: &[u8], op: &'static str) -> Result<(), BoltError> {
        self.out.write_all(buf).map_err(|source| BoltError::Io {
            file: self.path.clone(),
            op,
            source,
        })
    }

    fn io(&self, op: &'static str, source: std::io::Error) -> BoltError {
        BoltError::Io {
            file: self.path.clone(),
            op,
            source,
        }
    }

    fn misuse(&self, what: String) -> BoltError {
        BoltError::Misuse {
            file: self.path.clone(),
            what,
        }
    }
}

/// A key with its value (leaf) or little-endian child pgid (branch).
struct Item {
    flags: u32,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// The items of one page being filled, and the page's encoded size.
struct PageItems {
    items: Vec<Item>,
    size: usize,
}

impl Default for PageItems {
    fn default() -> PageItems {
        PageItems {
            items: Vec::new(),
            size: PAGE_HEADER_SIZE,
        }
    }
}

impl PageItems {
    fn push(&mut self, item: Item, size: usize) {
        self.items.push(item);
        self.size += size;
    }
}

/// One bucket being written.
struct TreeBuilder {
    name: Vec<u8>,
    last_key: Option<Vec<u8>>,
    has_buckets: bool,
    leaf: PageItems,
    /// Pending branch pages, level 0 just above the leaves.
    branches: Vec<PageItems>,
}

impl TreeBuilder {
    fn new(name: Vec<u8>) -> TreeBuilder {
        TreeBuilder {
            name,
            last_key: None,
            has_buckets: false,
            leaf: PageItems::default(),
            branches: Vec::new(),
        }
    }
}

/// Encodes a leaf or branch page; pads to a multiple of `page_size` unless it is 0 (inline).
fn encode_page(pgid: u64, flags: u16, items: &PageItems, page_size: usize) -> Vec<u8> {
    let el_size = if flags == LEAF_PAGE {
        LEAF_ELEMENT_SIZE
    } else {
        BRANCH_ELEMENT_SIZE
    };
    let len = if page_size == 0 {
        items.size
    } else {
        items.size.div_ceil(page_size) * page_size
    };
    let mut buf = vec![0u8; len];
    let overflow = len
        .checked_div(page_size)
        .map_or(0, |pages| (pages - 1) as u32);
    let count = u16::try_from(items.items.len()).expect("a page holds at most 4096/16 elements");
    PageHeader {
        id: pgid,
        flags,
        count,
        overflow,
    }
    .write(&mut buf);
    let mut data = PAGE_HEADER_SIZE + items.items.len() * el_size;
    for (i, item) in items.items.iter().enumerate() {
        let el = PAGE_HEADER_SIZE + i * el_size;
        let pos = (data - el) as u32;
        let e = &mut buf[el..el + el_size];
        if flags == LEAF_PAGE {
            e[0..4].copy_from_slice(&item.flags.to_le_bytes());
            e[4..8].copy_from_slice(&pos.to_le_bytes());
            e[8..12].copy_from_slice(&(item.key.len() as u32).to_le_bytes());
            e[12..16].copy_from_slice(&(item.value.len() as u32).to_le_bytes());
        } else {
            e[0..4].copy_from_slice(&pos.to_le_bytes());
            e[4..8].copy_from_slice(&(item.key.len() as u32).to_le_bytes());
            e[8..16].copy_from_slice(&item.value[..8]);
        }
        buf[data..data + item.key.len()].copy_from_slice(&item.key);
        data += item.key.len();
        if flags == LEAF_PAGE {
            buf[data..data + item.value.len()].copy_from_slice(&item.value);
            data += item.value.len();
        }
    }
    buf
}
