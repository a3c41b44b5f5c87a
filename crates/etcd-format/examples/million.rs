//! Measures writing and reading an etcd backend of N revisions (default 1,000,000): time and
//! peak RSS (VmHWM). Each mode runs in its own process so the peaks are separate:
//!
//! ```text
//! cargo run --release -p chorus-etcd-format --example million -- write /tmp/m.db [N]
//! cargo run --release -p chorus-etcd-format --example million -- read /tmp/m.db      # pread, decoded
//! cargo run --release -p chorus-etcd-format --example million -- read-raw /tmp/m.db  # pread, raw bbolt
//! cargo run --release -p chorus-etcd-format --example million -- read-mem /tmp/m.db  # whole file in memory
//! cargo run --release -p chorus-etcd-format --example million -- get /tmp/m.db [N]   # 100k point reads
//! ```

use std::time::Instant;

use chorus_api::mvccpb::KeyValue;
use chorus_etcd_format::backend::{
    Backend, BackendWriter, ClusterInfo, MetaInfo, Revision, RevisionEntry,
};
use chorus_etcd_format::bbolt::Db;

type Res = Result<(), Box<dyn std::error::Error>>;

fn main() -> Res {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: million write|read|read-raw|read-mem|get PATH [N]";
    let (mode, path) = (args.get(1).ok_or(usage)?, args.get(2).ok_or(usage)?);
    let n: i64 = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let start = Instant::now();
    let what = match mode.as_str() {
        "write" => write(path, n)?,
        "read" => read(Backend::open(path)?)?,
        "read-mem" => read(Backend::from_db(Db::from_bytes(
            path,
            std::fs::read(path)?,
        )?))?,
        "read-raw" => read_raw(&Db::open(path)?)?,
        "get" => get(&Db::open(path)?, n)?,
        _ => return Err(usage.into()),
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{mode}: {what} in {secs:.2} s, peak RSS {} MiB",
        peak_rss_kib() / 1024
    );
    Ok(())
}

/// A revision's key-value: key `key/%08d`, a 100-byte value.
fn record(i: i64) -> RevisionEntry {
    let main = i + 2;
    let key = format!("key/{i:08}").into_bytes();
    let value: Vec<u8> = (0..100)
        .map(|j| b'a' + ((i as u64 * 31 + j) % 26) as u8)
        .collect();
    let kv = KeyValue {
        key,
        create_revision: main,
        mod_revision: main,
        version: 1,
        value,
        lease: 0,
    };
    RevisionEntry {
        revision: Revision { main, sub: 0 },
        tombstone: false,
        kv,
    }
}

fn write(path: &str, n: i64) -> Result<String, Box<dyn std::error::Error>> {
    let mut w = BackendWriter::create(path)?;
    w.write_cluster(&ClusterInfo {
        cluster_version: Some("3.5.0".into()),
        downgrade: None,
    })?;
    for i in 0..n {
        w.put_revision(&record(i))?;
    }
    let meta = MetaInfo {
        consistent_index: Some(n as u64 + 10),
        term: Some(2),
        ..Default::default()
    };
    w.write_meta(&meta)?;
    let s = w.finish()?;
    Ok(format!(
        "wrote {n} revisions, {} pages, {} MiB",
        s.pages,
        s.bytes >> 20
    ))
}

fn read(b: Backend) -> Result<String, Box<dyn std::error::Error>> {
    let (mut n, mut bytes) = (0u64, 0u64);
    for r in b.revisions()? {
        let r = r?;
        n += 1;
        bytes += r.kv.value.len() as u64;
    }
    Ok(format!(
        "read and decoded {n} revisions ({} MiB of values)",
        bytes >> 20
    ))
}

fn read_raw(db: &Db) -> Result<String, Box<dyn std::error::Error>> {
    let bucket = db.bucket(b"key")?.ok_or("no key bucket")?;
    let mut cursor = bucket.iter();
    let mut n = 0u64;
    for e in &mut cursor {
        e?;
        n += 1;
    }
    Ok(format!("iterated {n} bbolt entries, {:?}", cursor.stats()))
}

fn get(db: &Db, n: i64) -> Result<String, Box<dyn std::error::Error>> {
    let bucket = db.bucket(b"key")?.ok_or("no key bucket")?;
    let mut x: u64 = 88172645463325252;
    let gets = 100_000;
    for _ in 0..gets {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % n as u64) as i64;
        let key = Revision {
            main: i + 2,
            sub: 0,
        }
        .to_key(false);
        bucket.get(&key)?.ok_or("missing revision")?;
    }
    Ok(format!("{gets} random point reads"))
}

/// VmHWM of this process, KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: 0 kB");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
