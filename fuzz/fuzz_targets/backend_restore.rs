//! The backend dump stream that `Backend::restore` reads (a snapshot received from the
//! leader or restored from a file). Contract: no panic, allocation bounded by the input, and
//! a restored backend dumps to a stream that restores to the same dump.
#![no_main]

use chorus_storage::backend::{Backend, BackendOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = BackendOptions {
        cache_size: 1 << 20,
    };
    let Ok(first) = Backend::restore(&mut &data[..], &dir.path().join("a"), &opts) else {
        return;
    };
    let dump = dump(&first);
    let second = Backend::restore(&mut dump.as_slice(), &dir.path().join("b"), &opts)
        .expect("a dump of a restored backend restores");
    assert_eq!(dump, self::dump(&second), "dump, restore, dump");
});

fn dump(b: &Backend) -> Vec<u8> {
    let mut out = Vec::new();
    let tx = b.begin_read().expect("read transaction");
    Backend::dump(&tx, &mut out).expect("dump");
    out
}
