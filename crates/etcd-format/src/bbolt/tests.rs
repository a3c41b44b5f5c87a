//! Writer → reader round trips and hostile inputs.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::page::{Meta, PageHeader, BRANCH_PAGE, LEAF_PAGE, META_SIZE, PAGE_HEADER_SIZE};
use super::*;

/// A bucket's content: values and nested buckets.
#[derive(Debug, Default, Clone, PartialEq)]
struct Tree {
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    buckets: BTreeMap<Vec<u8>, Tree>,
}

fn write_tree(w: &mut BoltWriter, t: &Tree) {
    // Keys and bucket names share one key space: merge them in order.
    let mut all: Vec<(&Vec<u8>, Option<&Vec<u8>>, Option<&Tree>)> = Vec::new();
    all.extend(t.values.iter().map(|(k, v)| (k, Some(v), None)));
    all.extend(t.buckets.iter().map(|(k, b)| (k, None, Some(b))));
    all.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v, b) in all {
        match (v, b) {
            (Some(v), _) => w.put(k, v).unwrap(),
            (_, Some(b)) => {
                w.begin_bucket(k).unwrap();
                write_tree(w, b);
                w.end_bucket().unwrap();
            }
            _ => unreachable!(),
        }
    }
}

fn write_file(top: &BTreeMap<Vec<u8>, Tree>) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut w = BoltWriter::create(&path).unwrap();
    for (name, t) in top {
        w.begin_bucket(name).unwrap();
        write_tree(&mut w, t);
        w.end_bucket().unwrap();
    }
    w.finish().unwrap();
    (dir, path)
}

fn read_tree(b: &Bucket<'_>) -> Result<Tree, BoltError> {
    let mut t = Tree::default();
    for e in b.iter() {
        let e = e?;
        if e.is_bucket {
            let nested = b.open_nested(&e.key, &e.value)?;
            if nested.name().iter().filter(|&&c| c == b'/').count() > 8 {
                continue;
            }
            t.buckets.insert(e.key, read_tree(&nested)?);
        } else {
            t.values.insert(e.key, e.value);
        }
    }
    Ok(t)
}

fn read_all(db: &Db) -> Result<BTreeMap<Vec<u8>, Tree>, BoltError> {
    Ok(read_tree(&db.root())?.buckets)
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = rng.gen_range(1..=max);
    (0..len).map(|_| rng.gen()).collect()
}

fn random_tree(rng: &mut StdRng, keys: usize, depth: usize) -> Tree {
    let mut t = Tree::default();
    for _ in 0..keys {
        let k = random_bytes(rng, 40);
        let v = match rng.gen_range(0..100) {
            0..=2 => random_bytes(rng, 20_000),
            3..=5 => Vec::new(),
            _ => random_bytes(rng, 200),
        };
        if depth > 0 && rng.gen_range(0..50) == 0 {
            let n = rng.gen_range(0..30);
            t.buckets.insert(k, random_tree(rng, n, depth - 1));
        } else if !t.buckets.contains_key(&k) {
            t.values.insert(k, v);
        }
    }
    t
}

fn sample_file() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    BTreeMap<Vec<u8>, Tree>,
) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut top = BTreeMap::new();
    top.insert(b"big".to_vec(), random_tree(&mut rng, 600, 2));
    top.insert(b"empty".to_vec(), Tree::default());
    let mut small = Tree::default();
    small.values.insert(b"k".to_vec(), b"v".to_vec());
    top.insert(b"small".to_vec(), small);
    let mut large = Tree::default();
    large
        .values
        .insert(b"huge".to_vec(), vec![0xab; 3 * PAGE_SIZE + 100]);
    top.insert(b"zlarge".to_vec(), large);
    let (dir, path) = write_file(&top);
    (dir, path, top)
}

#[test]
fn random_round_trips() {
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut top = BTreeMap::new();
        for _ in 0..rng.gen_range(1..6) {
            let n = rng.gen_range(0..800);
            top.insert(random_bytes(&mut rng, 12), random_tree(&mut rng, n, 2));
        }
        let (_dir, path) = write_file(&top);
        let db = Db::open(&path).unwrap();
        assert_eq!(read_all(&db).unwrap(), top, "seed {seed}");
        for (name, t) in &top {
            let b = db.bucket(name).unwrap().unwrap();
            for (k, v) in t.values.iter().take(50) {
                assert_eq!(b.get(k).unwrap().as_ref(), Some(v));
                let first = b.iter_from(k).next().unwrap().unwrap();
                assert_eq!(&first.key, k);
            }
            let absent = random_bytes(&mut rng, 41);
            let expect_first = t
                .values
                .keys()
                .chain(t.buckets.keys())
                .filter(|k| **k >= absent)
                .min();
            let got = b
                .iter_from(&absent)
                .next()
                .transpose()
                .unwrap()
                .map(|e| e.key);
            assert_eq!(got.as_ref(), expect_first);
        }
    }
}

#[test]
fn many_keys_make_a_multi_level_tree() {
    let mut t = Tree::default();
    for i in 0..40_000u64 {
        t.values.insert(
            format!("key-{i:010}").into_bytes(),
            i.to_be_bytes().to_vec(),
        );
    }
    let top = BTreeMap::from([(b"key".to_vec(), t.clone())]);
    let (_dir, path) = write_file(&top);
    let db = Db::open(&path).unwrap();
    let b = db.bucket(b"key").unwrap().unwrap();
    let root = Db::open(&path).unwrap();
    let root_page = b.header().root;
    assert_ne!(root_page, 0);
    // Depth: follow first children from the root down to a leaf.
    let bytes = std::fs::read(&path).unwrap();
    let mut depth = 1;
    let mut pgid = root_page;
    loop {
        let page = &bytes[pgid as usize * PAGE_SIZE..];
        let h = PageHeader::parse(page).unwrap();
        if h.flags == LEAF_PAGE {
            break;
        }
        assert_eq!(h.flags, BRANCH_PAGE);
        pgid = super::page::branch_element(page, 0).unwrap().pgid;
        depth += 1;
    }
    assert!(depth >= 3, "depth {depth}");
    assert_eq!(b.stats().unwrap().depth, depth);
    assert_eq!(read_all(&root).unwrap(), top);
    assert_eq!(
        b.get(b"key-0000012345").unwrap(),
        Some(12345u64.to_be_bytes().to_vec())
    );
    assert_eq!(b.get(b"key-00000123450").unwrap(), None);
}

#[test]
fn small_buckets_are_inline_and_large_values_overflow() {
    let (_dir, path, top) = sample_file();
    let db = Db::open(&path).unwrap();
    assert_eq!(
        db.bucket_names().unwrap(),
        vec![
            b"big".to_vec(),
            b"empty".to_vec(),
            b"small".to_vec(),
            b"zlarge".to_vec()
        ]
    );
    assert_eq!(db.bucket(b"small").unwrap().unwrap().header().root, 0);
    assert_eq!(db.bucket(b"empty").unwrap().unwrap().header().root, 0);
    assert_ne!(db.bucket(b"zlarge").unwrap().unwrap().header().root, 0);
    let large = db.bucket(b"zlarge").unwrap().unwrap().stats().unwrap();
    assert_eq!(
        (large.depth, large.leaf_pages, large.overflow_pages),
        (1, 1, 3)
    );
    assert_eq!(read_all(&db).unwrap(), top);
    assert_eq!(db.meta().page_size, 4096);
    assert_eq!(db.meta_page(), 1);
    assert!(matches!(
        db.bucket(b"small").unwrap().unwrap().bucket(b"k"),
        Err(BoltError::WrongKind { .. })
    ));
}

#[test]
fn writer_rejects_misuse() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BoltWriter::create(dir.path().join("db")).unwrap();
    assert!(w.put(b"a", b"b").is_err());
    w.begin_bucket(b"b").unwrap();
    w.put(b"k2", b"").unwrap();
    assert!(matches!(w.put(b"k1", b""), Err(BoltError::Misuse { .. })));
    assert!(w.put(b"k2", b"").is_err());
    assert!(w.put(b"", b"").is_err());
    assert!(w.put(&vec![1; MAX_KEY_SIZE + 1], b"").is_err());
    w.end_bucket().unwrap();
    assert!(w.begin_bucket(b"a").is_err());
    assert!(w.end_bucket().is_err());
    w.finish().unwrap();
}

#[test]
fn sha256_trailer_is_detected_and_checked() {
    use sha2::Digest as _;
    let (_dir, path, top) = sample_file();
    let mut bytes = std::fs::read(&path).unwrap();
    let sum = sha2::Sha256::digest(&bytes);
    bytes.extend_from_slice(&sum);
    let db = Db::from_bytes("snap", bytes.clone()).unwrap();
    assert_eq!(db.verify_sha256_trailer().unwrap(), Some(true));
    assert_eq!(read_all(&db).unwrap(), top);
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    let db = Db::from_bytes("snap", bytes).unwrap();
    assert_eq!(db.verify_sha256_trailer().unwrap(), Some(false));
}

/// Opens and walks everything; must not panic. Returns whether it all read.
fn try_everything(label: &str, bytes: Vec<u8>) -> bool {
    let Ok(db) = Db::from_bytes(label, bytes) else {
        return false;
    };
    let ok = read_all(&db).is_ok();
    for name in [b"big".as_slice(), b"small", b"zlarge", b"nope"] {
        if let Ok(Some(b)) = db.bucket(name) {
            let _ = b.get(b"k");
            let _ = b.iter_from(b"\x80").take(3).count();
        }
    }
    ok
}

#[test]
fn truncated_files_are_errors() {
    let (_dir, path, _) = sample_file();
    let bytes = std::fs::read(&path).unwrap();
    let mut offsets: Vec<usize> = (0..bytes.len()).step_by(509).collect();
    offsets.extend([0, 1, 15, 16, 80, 4095, 4096, 8191, 8192, bytes.len() - 1]);
    for off in offsets {
        assert!(
            !try_everything("truncated", bytes[..off].to_vec()),
            "truncated at {off} read fine"
        );
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let (_dir, path, _) = sample_file();
    let bytes = std::fs::read(&path).unwrap();
    let mut rng = StdRng::seed_from_u64(99);
    let pages = bytes.len() / PAGE_SIZE;
    let mut positions: Vec<usize> = Vec::new();
    for p in 0..pages {
        // Headers and the element tables are where the pointers are.
        positions.extend((0..64).map(|i| p * PAGE_SIZE + i));
    }
    positions.extend((0..1500).map(|_| rng.gen_range(0..bytes.len())));
    for pos in positions {
        let mut b = bytes.clone();
        b[pos] ^= 1 << rng.gen_range(0..8);
        try_everything("flipped", b);
        let mut b = bytes.clone();
        b[pos] = 0xff;
        try_everything("flipped", b);
    }
}

/// Rewrites meta page `page` of `bytes` with `f` applied, re-sealing the checksum.
fn patch_meta(bytes: &mut [u8], page: usize, f: impl Fn(&mut Meta)) {
    let off = page * PAGE_SIZE + PAGE_HEADER_SIZE;
    let mut m = Meta::parse(&bytes[off..off + META_SIZE]).unwrap();
    f(&mut m);
    m.seal();
    bytes[off..off + META_SIZE].copy_from_slice(&m.encode());
}

#[test]
fn hostile_meta_pages_are_rejected() {
    let (_dir, path, top) = sample_file();
    let bytes = std::fs::read(&path).unwrap();
    type Patch = fn(&mut Meta);
    let patches: [Patch; 6] = [
        |m| m.root.root = u64::MAX,
        |m| m.root.root = 1,
        |m| m.pgid = u64::MAX,
        |m| m.freelist = 1 << 40,
        |m| m.page_size = 3000,
        |m| m.page_size = 1 << 30,
    ];
    for patch in patches {
        let mut b = bytes.clone();
        patch_meta(&mut b, 0, patch);
        patch_meta(&mut b, 1, patch);
        assert!(matches!(
            Db::from_bytes("meta", b.clone()),
            Err(BoltError::NoValidMeta { .. })
        ));
        // With one good meta page left, that one is used.
        patch_meta(&mut b, 0, |_| {});
        let mut good = bytes.clone();
        good[PAGE_SIZE..2 * PAGE_SIZE].copy_from_slice(&b[PAGE_SIZE..2 * PAGE_SIZE]);
        let db = Db::from_bytes("meta", good).unwrap();
        assert_eq!(db.meta_page(), 0);
        assert_eq!(read_all(&db).unwrap(), top);
    }
}

/// The page id of bucket `name`'s root in the sample file.
fn bucket_root(bytes: &[u8], name: &[u8]) -> u64 {
    let db = Db::from_bytes("x", bytes.to_vec()).unwrap();
    let root = db.bucket(name).unwrap().unwrap().header().root;
    root
}

#[test]
fn page_graph_cycles_and_bad_counts_are_errors() {
    let (_dir, path, _) = sample_file();
    let bytes = std::fs::read(&path).unwrap();
    let root = bucket_root(&bytes, b"big") as usize;
    let page = &bytes[root * PAGE_SIZE..(root + 1) * PAGE_SIZE];
    assert_eq!(PageHeader::parse(page).unwrap().flags, BRANCH_PAGE);
    let el = PAGE_HEADER_SIZE;

    // The root's first child is the root itself: a cycle.
    let mut b = bytes.clone();
    b[root * PAGE_SIZE + el + 8..root * PAGE_SIZE + el + 16]
        .copy_from_slice(&(root as u64).to_le_bytes());
    let db = Db::from_bytes("cycle", b).unwrap();
    let err = db
        .bucket(b"big")
        .unwrap()
        .unwrap()
        .iter()
        .find_map(Result::err)
        .unwrap();
    assert!(
        matches!(
            err,
            BoltError::TooDeep { .. } | BoltError::TooManyPages { .. }
        ),
        "{err}"
    );

    for (what, off, value) in [
        (
            "child out of range",
            el + 8,
            u64::MAX.to_le_bytes().to_vec(),
        ),
        ("child is a meta page", el + 8, 1u64.to_le_bytes().to_vec()),
        ("huge count", 10, 0xffffu16.to_le_bytes().to_vec()),
        ("huge overflow", 12, u32::MAX.to_le_bytes().to_vec()),
        ("key past the page", el + 4, 5000u32.to_le_bytes().to_vec()),
        ("wrong id", 0, 12345u64.to_le_bytes().to_vec()),
        ("freelist flag", 8, 0x10u16.to_le_bytes().to_vec()),
    ] {
        let mut b = bytes.clone();
        let at = root * PAGE_SIZE + off;
        b[at..at + value.len()].copy_from_slice(&value);
        let db = Db::from_bytes(what, b).unwrap();
        let bucket = db.bucket(b"big").unwrap().unwrap();
        let err = bucket.iter().find_map(Result::err);
        let msg = err
            .unwrap_or_else(|| panic!("{what}: no error"))
            .to_string();
        assert!(msg.contains(what), "{what}: {msg}");
    }
}
