//! One member against abusive clients (issue 18's resource bounds), each abuse bounded in
//! count and time, with the member's RSS (VmRSS) before and after and a probe client's
//! put + linearizable get latency while the abuse goes on:
//!
//! ```text
//! cargo build --release -p chorus
//! cargo run --release -p chorus-robustness --example resource_bounds -- target/release/chorus
//! cargo run --release -p chorus-robustness --example resource_bounds -- target/etcd-v3.5.1/etcd watchers
//! ```
//! The binary may be etcd's (the flags are etcd's); naming steps (`idle`, `watchers`,
//! `slow-reader`, `big`, `slowloris`) runs only those, so that one is measured alone.
//! 1. idle connections: 10,000 TCP connections opened and left silent;
//! 2. watchers: 100,000 watchers on 1,000 streams (100 each) over 10 connections, then 100
//!    puts one after the other, each seen by one watcher per stream: the member's memory per
//!    watcher and the time from sending a put to each of its 1,000 events;
//! 3. a watcher that never reads: one stream watching every key, not read, under 20,000
//!    puts of 1 KiB;
//! 4. maximum-size requests: 200 puts of 1.4 MiB (just under `--max-request-bytes`);
//! 5. slowloris: 2,000 HTTP/1 connections that send one header byte a second.
//!
//! The member runs on 127.0.0.1 with ports chosen at run time and is killed at the end.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chorus_client::pb::{watch_request, WatchCreateRequest, WatchRequest, WatchResponse};
use chorus_client::{Client, ConnectOptions, GetOptions, PutOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const IDLE_CONNECTIONS: usize = 10_000;
const WATCH_CONNECTIONS: usize = 10;
const WATCH_STREAMS: usize = 1_000;
const WATCHERS_PER_STREAM: usize = 100;
const SLOW_READER_PUTS: usize = 20_000;
const BIG_PUTS: usize = 200;
const SLOWLORIS: usize = 2_000;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let bin = args
        .next()
        .context("usage: resource_bounds SERVER_BIN [STEP...]")?;
    let steps: Vec<String> = args.collect();
    let want = |step: &str| steps.is_empty() || steps.iter().any(|s| s == step);
    raise_fd_limit();
    let dir = tempfile::tempdir()?;
    let ports = chorus_testports::free_ports(2);
    let client_url = format!("http://127.0.0.1:{}", ports[0]);
    let peer_url = format!("http://127.0.0.1:{}", ports[1]);
    let mut member = Command::new(&bin)
        .args([
            format!("--data-dir={}", dir.path().join("m").display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = member.id().context("member pid")?;
    let probe = connect(&client_url).await?;
    println!(
        "| abuse | RSS before (MiB) | RSS during/after (MiB) | probe put+get during (ms) | notes |"
    );
    println!("|---|---:|---:|---:|---|");
    if want("idle") {
        idle_connections(pid, &probe, ports[0]).await?;
    }
    if want("watchers") {
        watchers(pid, &probe, &client_url).await?;
    }
    if want("slow-reader") {
        slow_reader(pid, &probe, &client_url).await?;
    }
    if want("big") {
        big_requests(pid, &probe).await?;
    }
    if want("slowloris") {
        slowloris(pid, &probe, ports[0]).await?;
    }
    alive(&mut member)?;
    member.kill().await?;
    Ok(())
}

fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

async fn connect(url: &str) -> Result<Client> {
    for _ in 0..100 {
        let opts = ConnectOptions {
            request_timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        if let Ok(c) = Client::connect(&[url.to_string()], opts).await {
            if c.status().await.is_ok() {
                return Ok(c);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the member did not come up at {url}")
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A put and a linearizable get through the probe client, in milliseconds.
async fn probe_ms(probe: &Client) -> Result<f64> {
    let started = Instant::now();
    probe.put("probe", "v", PutOptions::default()).await?;
    probe.get("probe", GetOptions::default()).await?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

fn row(what: &str, before: f64, after: f64, probe: f64, notes: &str) {
    println!("| {what} | {before:.0} | {after:.0} | {probe:.1} | {notes} |");
}

fn alive(member: &mut Child) -> Result<()> {
    if let Some(status) = member.try_wait()? {
        bail!("the member died: {status}");
    }
    Ok(())
}

async fn idle_connections(pid: u32, probe: &Client, port: u16) -> Result<()> {
    let before = rss_mib(pid);
    let mut conns = Vec::with_capacity(IDLE_CONNECTIONS);
    let mut refused = 0;
    for _ in 0..IDLE_CONNECTIONS {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(c) => conns.push(c),
            Err(_) => refused += 1,
        }
    }
    let p = probe_ms(probe).await?;
    let after = rss_mib(pid);
    row(
        &format!("{IDLE_CONNECTIONS} idle TCP connections"),
        before,
        after,
        p,
        &format!("{} open, {refused} refused", conns.len()),
    );
    Ok(())
}

async fn watchers(pid: u32, probe: &Client, url: &str) -> Result<()> {
    let before = rss_mib(pid);
    let mut clients = Vec::new();
    for _ in 0..WATCH_CONNECTIONS {
        clients.push(connect(url).await?);
    }
    let mut readers = Vec::new();
    for s in 0..WATCH_STREAMS {
        let (tx, mut stream) = watch_stream(&clients[s % WATCH_CONNECTIONS]).await?;
        // The stream's creates answered before the next stream opens: a client that lets
        // thousands of small answers pile up unread is closed by its HTTP/2 library (h2's
        // guard against floods of small DATA frames).
        let mut n = 0;
        while n < WATCHERS_PER_STREAM {
            match tokio::time::timeout(Duration::from_secs(60), stream.message()).await {
                Ok(Ok(Some(r))) => n += usize::from(r.created),
                _ => bail!("watch stream {s} ended after {n} creates"),
            }
        }
        readers.push(tokio::spawn(arrivals(tx, stream)));
    }
    let created = WATCH_STREAMS * WATCHERS_PER_STREAM;
    let during = rss_mib(pid);
    let p = probe_ms(probe).await?;
    // One put at a time, each seen by one watcher of every stream.
    let mut sent = Vec::with_capacity(WATCHERS_PER_STREAM);
    for w in 0..WATCHERS_PER_STREAM {
        sent.push(Instant::now());
        probe
            .put(format!("w/{w}"), "v", PutOptions::default())
            .await?;
    }
    let mut latencies = Vec::with_capacity(created);
    for reader in readers {
        for (w, at) in reader.await?? {
            latencies.push(at.duration_since(sent[w]).as_secs_f64() * 1000.0);
        }
    }
    let after = rss_mib(pid);
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    row(
        &format!(
            "{created} watchers on {WATCH_STREAMS} streams ({WATCH_CONNECTIONS} connections), \
             then {WATCHERS_PER_STREAM} puts ({} events)",
            latencies.len()
        ),
        before,
        during.max(after),
        p,
        &format!(
            "{:.0} bytes per watcher; put to event p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            (during - before) * 1024.0 * 1024.0 / created as f64,
            pct(0.5),
            pct(0.99),
            latencies.last().copied().unwrap_or(f64::NAN),
        ),
    );
    Ok(())
}

type WatchSender = tokio::sync::mpsc::Sender<WatchRequest>;

/// A watch stream whose watcher `w` watches key `w/{w}`, its creates sent.
async fn watch_stream(client: &Client) -> Result<(WatchSender, tonic::Streaming<WatchResponse>)> {
    let (tx, rx) = tokio::sync::mpsc::channel(WATCHERS_PER_STREAM + 1);
    for w in 0..WATCHERS_PER_STREAM {
        let req = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: format!("w/{w}").into_bytes(),
                    ..Default::default()
                },
            )),
        };
        tx.send(req).await?;
    }
    let resp = client.watch_client().watch(tokio_stream_from(rx)).await?;
    Ok((tx, resp.into_inner()))
}

/// When each of the stream's watchers saw its key's put: (w, arrival) for `w/{w}`. The
/// sender is held until then, so the stream stays open.
async fn arrivals(
    _tx: WatchSender,
    mut stream: tonic::Streaming<WatchResponse>,
) -> Result<Vec<(usize, Instant)>> {
    let mut seen = Vec::with_capacity(WATCHERS_PER_STREAM);
    while seen.len() < WATCHERS_PER_STREAM {
        let msg = tokio::time::timeout(Duration::from_secs(60), stream.message())
            .await
            .context("no event for 60 s")??
            .context("the watch stream ended")?;
        let at = Instant::now();
        for event in msg.events {
            let key = event.kv.map(|kv| kv.key).unwrap_or_default();
            let w = std::str::from_utf8(&key)
                .ok()
                .and_then(|k| k.strip_prefix("w/")?.parse().ok())
                .context("an event of another key")?;
            seen.push((w, at));
        }
    }
    Ok(seen)
}

/// A `Stream` of the receiver's requests (tonic takes any stream).
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<WatchRequest>,
) -> impl futures::Stream<Item = WatchRequest> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn slow_reader(pid: u32, probe: &Client, url: &str) -> Result<()> {
    let before = rss_mib(pid);
    let client = connect(url).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tx.send(WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: vec![0],
                range_end: vec![0],
                ..Default::default()
            },
        )),
    })
    .await?;
    // Never read.
    let _unread = client.watch_client().watch(tokio_stream_from(rx)).await?;
    let value = vec![b'x'; 1024];
    let mut worst = 0.0f64;
    for i in 0..SLOW_READER_PUTS {
        probe
            .put(format!("slow/{i}"), value.clone(), PutOptions::default())
            .await?;
        if i % 1000 == 0 {
            worst = worst.max(probe_ms(probe).await?);
        }
    }
    let after = rss_mib(pid);
    row(
        &format!("a watcher of every key that never reads, {SLOW_READER_PUTS} puts of 1 KiB"),
        before,
        after,
        worst,
        "probe: worst of 20",
    );
    drop(tx);
    Ok(())
}

async fn big_requests(pid: u32, probe: &Client) -> Result<()> {
    let before = rss_mib(pid);
    let value = vec![b'b'; 1_400_000];
    let mut peak = before;
    for i in 0..BIG_PUTS {
        probe
            .put(
                format!("big/{}", i % 10),
                value.clone(),
                PutOptions::default(),
            )
            .await?;
        peak = peak.max(rss_mib(pid));
    }
    let p = probe_ms(probe).await?;
    row(
        &format!("{BIG_PUTS} puts of 1.4 MiB on 10 keys"),
        before,
        peak,
        p,
        "RSS: peak sampled after each put",
    );
    Ok(())
}

async fn slowloris(pid: u32, probe: &Client, port: u16) -> Result<()> {
    let before = rss_mib(pid);
    let mut conns = Vec::new();
    for _ in 0..SLOWLORIS {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)).await {
            let _ = c.write_all(b"GET /v2/keys/a HTTP/1.1\r\nHost: x\r\n").await;
            conns.push(c);
        }
    }
    let mut worst = 0.0f64;
    let mut closed = 0;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        closed = 0;
        for c in conns.iter_mut() {
            if c.write_all(b"X").await.is_err() {
                closed += 1;
            }
        }
        worst = worst.max(probe_ms(probe).await?);
    }
    let after = rss_mib(pid);
    row(
        &format!("{SLOWLORIS} HTTP/1 connections sending a header byte a second, 15 s"),
        before,
        after,
        worst,
        &format!("{closed} closed by the member by then"),
    );
    Ok(())
}
