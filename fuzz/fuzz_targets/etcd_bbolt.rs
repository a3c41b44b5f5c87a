//! etcd's bbolt backend (`member/snap/db`, `etcdctl snapshot save` files) as `chorus migrate`
//! and `snapshot restore` read it. Contract: no panic, no unbounded walk, and the etcd-level
//! reader on top (revisions, leases, members, auth) fails cleanly.
#![no_main]

use chorus_etcd_format::backend::Backend;
use chorus_etcd_format::bbolt::{Bucket, Db};
use libfuzzer_sys::fuzz_target;

/// Nested buckets deeper than this are not followed.
const MAX_DEPTH: usize = 4;
/// Stop walking after this many keys in total.
const MAX_KEYS: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::from_bytes("fuzz.db", data.to_vec()) else {
        return;
    };
    let _ = db.verify_sha256_trailer();
    let mut budget = MAX_KEYS;
    walk(db.root(), 0, &mut budget);
    let _ = db.root().stats();
    read_backend(Backend::from_db(db));
});

fn walk(bucket: Bucket<'_>, depth: usize, budget: &mut usize) {
    for entry in bucket.iter() {
        let Ok(entry) = entry else { return };
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        if !entry.is_bucket {
            let _ = bucket.get(&entry.key);
        } else if depth < MAX_DEPTH {
            if let Ok(child) = bucket.open_nested(&entry.key, &entry.value) {
                walk(child, depth + 1, budget);
            }
        }
    }
}

fn read_backend(b: Backend) {
    let _ = b.meta();
    let _ = b.leases();
    let _ = b.members();
    let _ = b.cluster();
    let _ = b.auth();
    if let Ok(revs) = b.revisions() {
        for r in revs.take(MAX_KEYS) {
            if r.is_err() {
                break;
            }
        }
    }
}
