//! Micro-benchmark: latency of `Wal::save` with one 300-byte entry and sync=true, next to a
//! plain `pwrite` + `fdatasync` loop on a preallocated file (the disk's floor).
//!
//! `cargo run --release -p chorus-storage --example wal_bench [dir] [n]`

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use chorus_storage::wal::{Wal, WalOptions};
use raft::eraftpb::{Entry, HardState};

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let pct = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "{name:<40} n={} p50={:?} p90={:?} p99={:?} max={:?} mean={:?}",
        v.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        v[v.len() - 1],
        mean
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let n: usize = args.next().map_or(1000, |s| s.parse().unwrap());
    let tmp = tempfile::tempdir_in(&base).unwrap();

    if std::env::var_os("PLAIN_MODES").is_some() {
        plain_modes(tmp.path(), n);
        return;
    }
    for round in 0..2 {
        // Plain loop: pwrite 300 bytes + fdatasync on a preallocated file.
        let path = tmp.path().join(format!("plain-{round}"));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        // Same preallocation as the WAL (fallocate through the WAL's segment size).
        let r = unsafe {
            use std::os::unix::io::AsRawFd;
            libc::fallocate(f.as_raw_fd(), 0, 0, 64 << 20)
        };
        assert_eq!(r, 0);
        f.sync_all().unwrap();
        let payload = [0x5au8; 300];
        let mut lat = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            f.write_all_at(&payload, (i * 300) as u64).unwrap();
            f.sync_data().unwrap();
            lat.push(t.elapsed());
        }
        stats("plain pwrite(300 B) + fdatasync", lat);

        // WAL: save one 300-byte entry with sync = true.
        let dir = tmp.path().join(format!("wal-{round}"));
        let mut wal = Wal::create(&dir, b"node=1", WalOptions::default()).unwrap();
        let mut lat = Vec::with_capacity(n);
        let mut hs = HardState {
            term: 1,
            ..Default::default()
        };
        for i in 1..=n as u64 {
            let e = Entry {
                index: i,
                term: 1,
                data: vec![0x5au8; 300].into(),
                ..Default::default()
            };
            let t = Instant::now();
            wal.save(None, std::slice::from_ref(&e), true).unwrap();
            lat.push(t.elapsed());
        }
        stats("Wal::save(1 x 300 B entry, sync)", lat);

        // WAL with a hard state in the same batch (what a raft Ready usually carries).
        let mut lat = Vec::with_capacity(n);
        for i in n as u64 + 1..=2 * n as u64 {
            let e = Entry {
                index: i,
                term: 1,
                data: vec![0x5au8; 300].into(),
                ..Default::default()
            };
            hs.commit = i - 1;
            let t = Instant::now();
            wal.save(Some(&hs), std::slice::from_ref(&e), true).unwrap();
            lat.push(t.elapsed());
        }
        stats("Wal::save(hs + 1 x 300 B entry, sync)", lat);

        // Encode-only cost (no disk): unsafe_no_fsync.
        let dir = tmp.path().join(format!("wal-nosync-{round}"));
        let mut wal = Wal::create(
            &dir,
            b"node=1",
            WalOptions {
                unsafe_no_fsync: true,
                ..Default::default()
            },
        )
        .unwrap();
        let mut lat = Vec::with_capacity(n);
        for i in 1..=n as u64 {
            let e = Entry {
                index: i,
                term: 1,
                data: vec![0x5au8; 300].into(),
                ..Default::default()
            };
            let t = Instant::now();
            wal.save(None, std::slice::from_ref(&e), true).unwrap();
            lat.push(t.elapsed());
        }
        stats("Wal::save(1 x 300 B, unsafe_no_fsync)", lat);
        println!();
    }
}

/// Compares the disk floor for three kinds of files: fallocated (unwritten extents), zero-filled
/// (written extents), and plain appends.
fn plain_modes(dir: &std::path::Path, n: usize) {
    for round in 0..3 {
        for mode in ["fallocate", "zero-filled", "append"] {
            let path = dir.join(format!("{mode}-{round}"));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            match mode {
                "fallocate" => {
                    let r = unsafe {
                        use std::os::unix::io::AsRawFd;
                        libc::fallocate(f.as_raw_fd(), 0, 0, 64 << 20)
                    };
                    assert_eq!(r, 0);
                }
                "zero-filled" => {
                    let z = vec![0u8; 1 << 20];
                    for i in 0..64 {
                        f.write_all_at(&z, i << 20).unwrap();
                    }
                }
                _ => {}
            }
            f.sync_all().unwrap();
            let payload = [0x5au8; 304];
            let mut lat = Vec::with_capacity(n);
            for i in 0..n {
                let t = Instant::now();
                f.write_all_at(&payload, (i * 304) as u64).unwrap();
                f.sync_data().unwrap();
                lat.push(t.elapsed());
            }
            stats(&format!("plain {mode}"), lat);
            drop(f);
            std::fs::remove_file(&path).unwrap();
        }
    }
}
