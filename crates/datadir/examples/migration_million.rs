//! Measures bringing 1,000,000 keys from etcd to chorus and back, against etcd's own tools
//! on the same file: time and peak RSS of each step, each in a process of its own (peak RSS
//! from `wait4`'s `ru_maxrss`, or `/proc/<pid>/status` VmHWM for servers).
//!
//! ```text
//! cargo build --release -p chorus -p chorusctl -p chorus-datadir --example migration_million
//! target/release/examples/migration_million all /tmp/million [N]
//! ```
//! Steps of `all`: write an etcd snapshot of N keys (bbolt + SHA-256, as `snapshot save`
//! writes); restore it with `chorusctl`, `etcdutl` 3.5 and `etcdctl` 3.4; export the chorus
//! backend to etcd's layout offline (what Maintenance.Snapshot runs) and, for ADR 0007,
//! chorus's member-to-member dump and rebuild of the same backend; then `snapshot save`
//! from a running chorus and a running etcd 3.5 with the data, with each server's RSS
//! before and its peak after. Binaries: `$CHORUS_BIN_DIR` (default `target/release`),
//! `$ETCD35_DIR` (default `target/etcd-v3.5.1`), etcd 3.4 from `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_api::mvccpb::KeyValue;
use chorus_etcd_format::backend::{
    append_sha256_trailer, BackendWriter, ClusterInfo, MetaInfo, Revision, RevisionEntry,
};
use chorus_storage::backend::{Backend, BackendOptions};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: migration_million all DIR [N] | gen FILE N | export DB OUT | dump DB OUT";
    let mode = args.get(1).ok_or(usage)?;
    let (a, b) = (args.get(2).ok_or(usage)?, args.get(3));
    match mode.as_str() {
        "all" => all(
            Path::new(a),
            b.map(|n| n.parse()).transpose()?.unwrap_or(1_000_000),
        ),
        "gen" => gen(Path::new(a), b.ok_or(usage)?.parse()?),
        "export" => export(Path::new(a), Path::new(b.ok_or(usage)?)),
        "dump" => dump_restore(Path::new(a), Path::new(b.ok_or(usage)?)),
        _ => Err(usage.into()),
    }
}

/// Key `key/%08d`, a 100-byte value, one revision each (ADR 0004's data shape).
fn record(i: i64) -> RevisionEntry {
    let main = i + 2;
    let value = (0..100)
        .map(|j| b'a' + ((i as u64 * 31 + j) % 26) as u8)
        .collect();
    RevisionEntry {
        revision: Revision { main, sub: 0 },
        tombstone: false,
        kv: KeyValue {
            key: format!("key/{i:08}").into_bytes(),
            create_revision: main,
            mod_revision: main,
            version: 1,
            value,
            lease: 0,
        },
    }
}

fn gen(file: &Path, n: i64) -> Res {
    let mut w = BackendWriter::create(file)?;
    w.write_cluster(&ClusterInfo {
        cluster_version: Some("3.5.0".into()),
        downgrade: None,
    })?;
    for i in 0..n {
        w.put_revision(&record(i))?;
    }
    w.write_meta(&MetaInfo {
        consistent_index: Some(n as u64 + 10),
        term: Some(2),
        ..Default::default()
    })?;
    w.finish()?;
    append_sha256_trailer(file)?;
    Ok(())
}

/// The offline export Maintenance.Snapshot runs, from a chorus backend file.
fn export(db: &Path, out: &Path) -> Res {
    let backend = Backend::open(db, &BackendOptions::default())?;
    let s = chorus_datadir::export::export_backend(&backend.begin_read()?, out)?;
    println!(
        "exported {} revisions, {} MiB",
        s.revisions,
        s.file.bytes >> 20
    );
    Ok(())
}

/// chorus's member-to-member transfer (ADR 0001) of the same backend: dump, then rebuild.
fn dump_restore(db: &Path, out: &Path) -> Res {
    let backend = Backend::open(db, &BackendOptions::default())?;
    let file = out.with_extension("dump");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&file)?);
    Backend::dump(&backend.begin_read()?, &mut w)?;
    drop(w);
    let mut r = std::io::BufReader::new(std::fs::File::open(&file)?);
    Backend::restore(&mut r, out, &BackendOptions::default())?;
    println!("dump {} MiB", std::fs::metadata(&file)?.len() >> 20);
    Ok(())
}

struct Bins {
    chorus: PathBuf,
    chorusctl: PathBuf,
    me: PathBuf,
    etcd35: PathBuf,
}

impl Bins {
    fn find() -> Res<Bins> {
        let chorus_dir =
            PathBuf::from(std::env::var("CHORUS_BIN_DIR").unwrap_or("target/release".into()));
        let etcd35 =
            PathBuf::from(std::env::var("ETCD35_DIR").unwrap_or("target/etcd-v3.5.1".into()));
        Ok(Bins {
            chorus: chorus_dir.join("chorus"),
            chorusctl: chorus_dir.join("chorusctl"),
            me: std::env::current_exe()?,
            etcd35,
        })
    }
}

/// Runs `cmd` to completion: wall time and the child's peak RSS (MiB).
fn measure(what: &str, cmd: &mut Command) -> Res<(f64, u64)> {
    let start = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on the PID of a child we spawned and have not reaped.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    if pid < 0 || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{what} failed ({status:#x})").into());
    }
    let rss = usage.ru_maxrss as u64 / 1024;
    println!("| {what} | {secs:.2} s | {rss} MiB |");
    Ok((secs, rss))
}

/// Two free ports below 32768 (client, peer), chosen once: the restored members' peer URL.
fn ports() -> (u16, u16) {
    static PORTS: std::sync::OnceLock<(u16, u16)> = std::sync::OnceLock::new();
    *PORTS.get_or_init(|| {
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        let base = 20_000 + (std::process::id() % 6_000) as u16 * 2;
        (base..32_000)
            .step_by(2)
            .find(|&p| free(p) && free(p + 1))
            .map(|p| (p, p + 1))
            .expect("free ports below 32000")
    })
}

fn peer_url() -> String {
    format!("http://127.0.0.1:{}", ports().1)
}

fn restore_args(cmd: &mut Command, file: &Path, dir: &Path) {
    cmd.args(["snapshot", "restore"])
        .arg(file)
        .arg("--data-dir")
        .arg(dir);
    cmd.arg("--name=m0")
        .arg(format!("--initial-cluster=m0={}", peer_url()))
        .arg(format!("--initial-advertise-peer-urls={}", peer_url()));
}

fn all(dir: &Path, n: i64) -> Res {
    let bins = Bins::find()?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let file = dir.join("etcd-snapshot.db");
    println!("| step ({n} keys) | time | peak RSS |\n| --- | --- | --- |");
    measure(
        "write the etcd snapshot (etcd-format)",
        Command::new(&bins.me)
            .arg("gen")
            .arg(&file)
            .arg(n.to_string()),
    )?;
    println!(
        "<!-- snapshot file: {} MiB -->",
        std::fs::metadata(&file)?.len() >> 20
    );
    let chorus_dir = dir.join("chorus");
    let mut c = Command::new(&bins.chorusctl);
    restore_args(&mut c, &file, &chorus_dir);
    measure("chorusctl snapshot restore (import)", &mut c)?;
    let mut c = Command::new(bins.etcd35.join("etcdutl"));
    restore_args(&mut c, &file, &dir.join("etcd35"));
    measure("etcdutl 3.5.1 snapshot restore", &mut c)?;
    let mut c = Command::new("etcdctl");
    restore_args(&mut c, &file, &dir.join("etcd34"));
    measure("etcdctl 3.4.23 snapshot restore", c.env("ETCDCTL_API", "3"))?;
    let db = chorus_dir.join("member/snap/db");
    let out = dir.join("exported.db");
    measure(
        "export to etcd's layout (offline)",
        Command::new(&bins.me).arg("export").arg(&db).arg(&out),
    )?;
    let rebuilt = dir.join("rebuilt.db");
    measure(
        "chorus dump + rebuild (member transfer, ADR 0001)",
        Command::new(&bins.me).arg("dump").arg(&db).arg(&rebuilt),
    )?;
    live_snapshots(dir, &bins)?;
    Ok(())
}

/// VmRSS and VmHWM of a process, MiB.
fn rss_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `snapshot save` from a running chorus and a running etcd 3.5 serving the restored data:
/// the save's time, each server's RSS before it and its peak after.
fn live_snapshots(dir: &Path, bins: &Bins) -> Res {
    let etcdctl = bins.etcd35.join("etcdctl");
    for (name, server, data) in [
        ("chorus", bins.chorus.clone(), dir.join("chorus")),
        ("etcd 3.5.1", bins.etcd35.join("etcd"), dir.join("etcd35")),
    ] {
        let port = ports().0;
        let mut child = start_server(&server, &data, port)?;
        let ep = format!("http://127.0.0.1:{port}");
        wait_ready(&etcdctl, &ep)?;
        let (before, hwm_before) = rss_of(child.id());
        let out = dir.join(format!("{}-save.db", name.replace(' ', "-")));
        let mut save = Command::new(&etcdctl);
        save.arg(format!("--endpoints={ep}"))
            .args(["snapshot", "save"])
            .arg(&out);
        let (secs, _) = measure(&format!("snapshot save from {name} (client)"), &mut save)?;
        let (_, peak) = rss_of(child.id());
        println!(
            "| {name} server during the save: RSS {before} MiB before (peak so far {hwm_before} MiB), peak {peak} MiB after | {secs:.2} s | |"
        );
        child.kill()?;
        child.wait()?;
    }
    Ok(())
}

fn start_server(server: &Path, data: &Path, port: u16) -> Res<Child> {
    let client = format!("http://127.0.0.1:{port}");
    let peer = peer_url();
    Ok(Command::new(server)
        .arg("--name=m0")
        .arg(format!("--initial-cluster=m0={peer}"))
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--listen-client-urls={client}"))
        .arg(format!("--advertise-client-urls={client}"))
        .arg(format!("--listen-peer-urls={peer}"))
        .arg(format!("--initial-advertise-peer-urls={peer}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

fn wait_ready(etcdctl: &Path, ep: &str) -> Res {
    for _ in 0..600 {
        let ok = Command::new(etcdctl)
            .args([&format!("--endpoints={ep}"), "endpoint", "health"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success();
        if ok {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{ep} not healthy within 60 s").into())
}
