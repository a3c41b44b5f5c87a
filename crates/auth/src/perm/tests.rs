use rand::{Rng, SeedableRng};

use super::*;

/// etcd's algorithm, literally: the raw (unmerged) intervals in an "affine" order where an
/// empty byte string is +infinity; a point is `Intersects`, a range is the interval tree's
/// `Contains` (visit the overlapping intervals by begin, require them contiguous and
/// spanning the request).
struct Naive {
    ivs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn affine_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ => a.cmp(b),
    }
}

fn lt(a: &[u8], b: &[u8]) -> bool {
    affine_cmp(a, b).is_lt()
}

impl Naive {
    fn new(perms: &[(Vec<u8>, Vec<u8>)]) -> Naive {
        let ivs = perms
            .iter()
            .filter(|(k, e)| is_valid_permission_range(k, e))
            .map(|(k, e)| {
                let end = if e.is_empty() {
                    let mut p = k.clone();
                    p.push(0);
                    p
                } else if e == &[0] {
                    Vec::new()
                } else {
                    e.clone()
                };
                (k.clone(), end)
            })
            .collect();
        Naive { ivs }
    }

    /// adt `Interval.Compare`: 0 when they overlap.
    fn overlaps(b: &[u8], e: &[u8], cb: &[u8], ce: &[u8]) -> bool {
        let left = lt(b, cb) && !lt(cb, e);
        let right = !lt(b, ce);
        !left && !right
    }

    fn point(&self, key: &[u8]) -> bool {
        let mut e = key.to_vec();
        e.push(0);
        self.ivs
            .iter()
            .any(|(cb, ce)| Self::overlaps(key, &e, cb, ce))
    }

    fn range(&self, key: &[u8], range_end: &[u8]) -> bool {
        let end: &[u8] = if range_end == [0] { &[] } else { range_end };
        let mut hit: Vec<&(Vec<u8>, Vec<u8>)> = self
            .ivs
            .iter()
            .filter(|(cb, ce)| Self::overlaps(key, end, cb, ce))
            .collect();
        hit.sort_by(|a, b| affine_cmp(&a.0, &b.0));
        let Some(first) = hit.first() else {
            return false;
        };
        let (min_begin, mut max_end) = (&first.0, &first.1);
        for (b, e) in &hit[1..] {
            if lt(max_end, b) {
                return false;
            }
            if lt(max_end, e) {
                max_end = e;
            }
        }
        !lt(max_end, end) && !lt(key, min_begin)
    }

    fn covers(&self, key: &[u8], range_end: &[u8]) -> bool {
        if range_end.is_empty() {
            self.point(key)
        } else {
            self.range(key, range_end)
        }
    }
}

fn random_key(rng: &mut impl Rng) -> Vec<u8> {
    // A small alphabet makes overlaps, touching ends and prefixes common.
    let len = rng.gen_range(1..=3);
    (0..len)
        .map(|_| [0u8, b'a', b'b', b'c'][rng.gen_range(0..4)])
        .collect()
}

fn random_range_end(rng: &mut impl Rng, key: &[u8]) -> Vec<u8> {
    match rng.gen_range(0..6) {
        0 => Vec::new(),
        1 => vec![0],
        2 => {
            // The prefix form: key with its last byte + 1.
            let mut e = key.to_vec();
            let last = e.len() - 1;
            e[last] = e[last].saturating_add(1);
            e
        }
        _ => random_key(rng),
    }
}

#[test]
fn merged_intervals_agree_with_etcds_interval_tree() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x05ee_da07);
    for round in 0..3000 {
        let n = rng.gen_range(0..6);
        let perms: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
            .map(|_| {
                let k = random_key(&mut rng);
                let e = random_range_end(&mut rng, &k);
                (k, e)
            })
            .collect();
        let naive = Naive::new(&perms);
        let set = IntervalSet::from_intervals(
            perms
                .iter()
                .filter_map(|(k, e)| Interval::of(k, e))
                .collect(),
        );
        for w in set.intervals().windows(2) {
            assert!(!w[0].end.reaches(&w[1].begin), "not merged: {set:?}");
        }
        for _ in 0..40 {
            let k = random_key(&mut rng);
            let e = random_range_end(&mut rng, &k);
            assert_eq!(
                set.covers(&k, &e),
                naive.covers(&k, &e),
                "round {round}: perms {perms:?}, request {k:?}..{e:?}, merged {set:?}"
            );
        }
    }
}

fn perm(t: PermType, key: &str, end: &str) -> Permission {
    Permission {
        perm_type: t as i32,
        key: key.as_bytes().to_vec(),
        range_end: end.as_bytes().to_vec(),
    }
}

#[test]
fn etcd_forms() {
    let perms = [
        perm(PermType::Read, "foo", ""),
        perm(PermType::Readwrite, "dir/", "dir0"),
        perm(PermType::Write, "z", "\0"),
    ];
    let u = UserPerms::build(false, vec![], &perms);
    let table: &[(&str, &str, bool, bool)] = &[
        // key, range_end, read, write
        ("foo", "", true, false),
        ("foo0", "", false, false),
        ("fo", "", false, false),
        ("dir/", "", true, true),
        ("dir/a/b", "", true, true),
        ("dir/", "dir0", true, true),
        ("dir/a", "dir/b", true, true),
        ("dir/", "dir1", false, false),
        ("dir0", "", false, false),
        ("z", "", false, true),
        ("zzz", "\0", false, true),
        ("y", "\0", false, false),
        ("z", "\0", false, true),
    ];
    for (k, e, r, w) in table {
        assert_eq!(
            u.read.covers(k.as_bytes(), e.as_bytes()),
            *r,
            "read {k}..{e}"
        );
        assert_eq!(
            u.write.covers(k.as_bytes(), e.as_bytes()),
            *w,
            "write {k}..{e}"
        );
    }
}

#[test]
fn all_keys_permission() {
    let u = UserPerms::build(false, vec![], &[perm(PermType::Read, "\0", "\0")]);
    assert!(u.read.covers(b"\0", b"\0"));
    assert!(u.read.covers(b"anything", b""));
    assert!(u.read.covers(b"a", b"b"));
    assert!(!u.write.covers(b"a", b""));
}

#[test]
fn touching_ranges_merge() {
    let u = UserPerms::build(
        false,
        vec![],
        &[
            perm(PermType::Read, "a", "b"),
            perm(PermType::Read, "b", "c"),
        ],
    );
    assert_eq!(u.read.intervals().len(), 1);
    assert!(u.read.covers(b"a", b"c"));
    assert!(!u.read.covers(b"a", b"d"));
}

#[test]
fn invalid_permission_ranges() {
    assert!(is_valid_permission_range(b"a", b""));
    assert!(is_valid_permission_range(b"a", b"\0"));
    assert!(is_valid_permission_range(b"a", b"b"));
    assert!(!is_valid_permission_range(b"", b""));
    assert!(!is_valid_permission_range(b"b", b"a"));
    assert!(!is_valid_permission_range(b"a", b"a"));
}
