//! Times opening a chorus backend with and without redb's integrity check (every page's
//! checksum), for the start-up cost of `Backend::open_verified`:
//!
//! ```text
//! cargo run --release -p chorus-storage --example open_timing -- <data-dir>/member/snap/db
//! ```

use std::time::Instant;

use chorus_storage::backend::{Backend, BackendOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: open_timing DB")?;
    let path = std::path::Path::new(&path);
    let opts = BackendOptions::default();
    for (what, verify) in [("plain", false), ("verified", true), ("plain", false)] {
        let started = Instant::now();
        let backend = if verify {
            Backend::open_verified(path, &opts)?
        } else {
            Backend::open(path, &opts)?
        };
        let took = started.elapsed();
        println!(
            "{what} open of {} MiB: {:.3} s",
            std::fs::metadata(path)?.len() >> 20,
            took.as_secs_f64()
        );
        drop(backend);
    }
    Ok(())
}
