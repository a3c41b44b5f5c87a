//! Errors of the bbolt reader and writer. Every variant names the file and, where there is
//! one, the page and byte offset at fault.

use std::path::PathBuf;

/// A bbolt file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BoltError {
    /// An I/O call failed.
    #[error("{file}: {op}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is shorter than two meta pages.
    #[error("{file}: {len} bytes is too short for a bbolt file (two meta pages)")]
    TooShort {
        /// The file.
        file: PathBuf,
        /// Its length.
        len: u64,
    },
    /// Neither meta page is valid.
    #[error("{file}: no valid meta page: page 0: {meta0}; page 1: {meta1}")]
    NoValidMeta {
        /// The file.
        file: PathBuf,
        /// Why meta page 0 was rejected.
        meta0: String,
        /// Why meta page 1 was rejected.
        meta1: String,
    },
    /// A page id is outside the pages the meta page declares or the file holds.
    #[error("{file}: page {pgid} (+{overflow} overflow) referenced from {from} is out of range: the high-water mark is {high_water_mark} and the file holds {file_pages} pages")]
    PageOutOfRange {
        /// The file.
        file: PathBuf,
        /// The page id.
        pgid: u64,
        /// Its overflow count (0 when unknown).
        overflow: u64,
        /// Where the reference came from.
        from: String,
        /// The meta page's high-water mark.
        high_water_mark: u64,
        /// Whole pages in the file.
        file_pages: u64,
    },
    /// A page's header names another page id than the one read.
    #[error("{file}: page {pgid} (offset {offset}) says it is page {found}")]
    PageIdMismatch {
        /// The file.
        file: PathBuf,
        /// The page read.
        pgid: u64,
        /// Its byte offset.
        offset: u64,
        /// The id in its header.
        found: u64,
    },
    /// A page has flags other than those expected there.
    #[error("{file}: page {pgid} (offset {offset}) has flags {flags:#x}, expected {expected}")]
    UnexpectedPageType {
        /// The file.
        file: PathBuf,
        /// The page (0 for an inline page).
        pgid: u64,
        /// Its byte offset (of the bucket value, for an inline page).
        offset: u64,
        /// The flags found.
        flags: u16,
        /// What was expected.
        expected: &'static str,
    },
    /// A page's element table or an element's key or value does not fit in the page.
    #[error("{file}: page {pgid} (offset {offset}) element {index}: {fault}")]
    BadElement {
        /// The file.
        file: PathBuf,
        /// The page (0 for an inline page).
        pgid: u64,
        /// The page's byte offset.
        offset: u64,
        /// The element index.
        index: usize,
        /// What is wrong.
        fault: &'static str,
    },
    /// The branch pages nest deeper than any real tree.
    #[error("{file}: page {pgid}: tree deeper than {max} levels (a cycle in the page graph?)")]
    TooDeep {
        /// The file.
        file: PathBuf,
        /// The page where the limit was hit.
        pgid: u64,
        /// The limit.
        max: usize,
    },
    /// A walk visited more pages than the file has: pages are shared or form a cycle.
    #[error("{file}: walking bucket {bucket:?} visited more than {limit} pages: the page graph has a cycle or shared pages")]
    TooManyPages {
        /// The file.
        file: PathBuf,
        /// The bucket walked.
        bucket: String,
        /// The number of pages in the file.
        limit: u64,
    },
    /// Keys of a bucket are not strictly increasing.
    #[error("{file}: bucket {bucket:?}: key at page {pgid} element {index} is not after the previous key")]
    KeysOutOfOrder {
        /// The file.
        file: PathBuf,
        /// The bucket.
        bucket: String,
        /// The page.
        pgid: u64,
        /// The element index.
        index: usize,
    },
    /// A bucket entry's value is not a valid bucket header (and inline page).
    #[error("{file}: bucket {bucket:?}: value of nested bucket {key:?} is invalid: {fault}")]
    BadBucketValue {
        /// The file.
        file: PathBuf,
        /// The parent bucket.
        bucket: String,
        /// The nested bucket's key (lossy UTF-8).
        key: String,
        /// What is wrong.
        fault: String,
    },
    /// A key exists but is a plain value where a bucket was asked for, or the reverse.
    #[error("{file}: bucket {bucket:?}: key {key:?} is {found}, not {expected}")]
    WrongKind {
        /// The file.
        file: PathBuf,
        /// The parent bucket.
        bucket: String,
        /// The key (lossy UTF-8).
        key: String,
        /// What it is.
        found: &'static str,
        /// What was asked for.
        expected: &'static str,
    },
    /// The writer was given keys out of order, or calls out of order.
    #[error("{file}: {what}")]
    Misuse {
        /// The file.
        file: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// A key or value is larger than bbolt allows.
    #[error("{file}: {what} of {len} bytes exceeds bbolt's limit of {max}")]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// Key or value.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
}
