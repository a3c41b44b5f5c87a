//! `check perf` and `check datascale`: etcdctl's load checks with its workloads and verdicts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_api::etcdserverpb::{CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest};
use chorus_client::{prefix_range_end, Client};
use tokio::sync::Mutex;

use crate::ctl::{unary_until, Ctl};
use crate::exit::{self, ExitCode};

fn model(load: &str) -> &'static str {
    match load {
        "s" | "small" => "s",
        "m" | "medium" => "m",
        "l" | "large" => "l",
        "xl" | "xLarge" => "xl",
        _ => exit::fail(ExitCode::BadFeature, &format!("unknown load option {load}")),
    }
}

/// Latencies and errors of a run (etcd's pkg/report, the parts the checks read).
#[derive(Default)]
struct Stats {
    lats: Vec<f64>,
    errors: BTreeMap<String, usize>,
}

impl Stats {
    fn slowest(&self) -> f64 {
        self.lats.iter().copied().fold(0.0, f64::max)
    }
    fn stddev(&self) -> f64 {
        if self.lats.is_empty() {
            return 0.0;
        }
        let n = self.lats.len() as f64;
        let avg = self.lats.iter().sum::<f64>() / n;
        (self.lats.iter().map(|l| (l - avg).powi(2)).sum::<f64>() / n).sqrt()
    }
}

/// A random key: `prefix` + the varint of a random number in a zeroed buffer.
fn key(prefix: &str, size: usize) -> Vec<u8> {
    let mut k = vec![0u8; size];
    let n: i64 = rand::random::<i64>() & i64::MAX;
    // binary.PutVarint: zig-zag, then base-128.
    let mut ux = (n as u64) << 1;
    if n < 0 {
        ux = !ux;
    }
    let mut i = 0;
    while ux >= 0x80 && i < size {
        k[i] = (ux as u8) | 0x80;
        ux >>= 7;
        i += 1;
    }
    if i < size {
        k[i] = ux as u8;
    }
    let mut out = prefix.as_bytes().to_vec();
    out.extend_from_slice(&k);
    out
}

async fn clients(ctl: &mut Ctl, n: usize) -> Vec<Client> {
    let first = ctl.client().await;
    let endpoints = ctl.endpoints();
    let mut all = vec![first];
    for _ in 1..n {
        all.push(ctl.client_for(&endpoints).await);
    }
    all
}

async fn prefix_is_empty(client: &Client, prefix: &str, deadline: Instant) {
    let resp = unary_until(client, deadline, || {
        let mut kv = client.kv_client();
        let req = RangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: prefix_range_end(prefix.as_bytes()),
            limit: 1,
            ..Default::default()
        };
        async move { Ok(kv.range(req).await?.into_inner()) }
    })
    .await
    .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    if !resp.kvs.is_empty() {
        exit::fail(
            ExitCode::InvalidInput,
            &format!(
                "prefix {} has keys. Delete with etcdctl del --prefix {prefix} first",
                crate::gofmt::quote(prefix)
            ),
        );
    }
}

/// Deletes the check's keys, then compacts and defragments if asked.
async fn clean_up(ctl: &Ctl, client: &Client, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let resp = unary_until(client, deadline, || {
        let mut kv = client.kv_client();
        let req = DeleteRangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: prefix_range_end(prefix.as_bytes()),
            ..Default::default()
        };
        async move { Ok(kv.delete_range(req).await?.into_inner()) }
    })
    .await
    .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    if ctl.flags.bool("auto-compact") {
        let rev = resp.header.as_ref().map_or(0, |h| h.revision);
        println!("Compacting with revision {rev}");
        unary_until(client, Instant::now() + Duration::from_secs(30), || {
            let mut kv = client.kv_client();
            async move {
                Ok(kv
                    .compact(CompactionRequest {
                        revision: rev,
                        physical: true,
                    })
                    .await?
                    .into_inner())
            }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
        println!("Compacted with revision {rev}");
    }
    if ctl.flags.bool("auto-defrag") {
        for (i, ep) in client.endpoints().iter().enumerate() {
            println!("Defragmenting {}", crate::gofmt::quote(ep));
            let one = client.for_endpoint(i).expect("endpoint");
            unary_until(&one, Instant::now() + Duration::from_secs(30), || {
                let mut m = one.maintenance_client();
                async move {
                    Ok(m.defragment(chorus_api::etcdserverpb::DefragmentRequest {})
                        .await?
                        .into_inner())
                }
            })
            .await
            .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
            println!("Defragmented {}", crate::gofmt::quote(ep));
        }
    }
}

/// Runs puts from `clients` workers; `next` hands out the keys (None: stop).
async fn run_load(
    clients: Vec<Client>,
    value: Vec<u8>,
    next: Arc<Mutex<Box<dyn FnMut() -> Option<(Vec<u8>, Instant)> + Send>>>,
    progress: Option<Arc<std::sync::atomic::AtomicUsize>>,
) -> Stats {
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mut tasks = Vec::new();
    for c in clients {
        let next = next.clone();
        let stats = stats.clone();
        let value = value.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let mut kv = c.kv_client();
            loop {
                let key = {
                    let mut n = next.lock().await;
                    (n)()
                };
                let Some((key, due)) = key else { return };
                tokio::time::sleep_until(due.into()).await;
                let start = Instant::now();
                let r = kv
                    .put(PutRequest {
                        key,
                        value: value.clone(),
                        ..Default::default()
                    })
                    .await;
                let took = start.elapsed().as_secs_f64();
                let mut s = stats.lock().await;
                match r {
                    Ok(_) => s.lats.push(took),
                    Err(status) => {
                        let text = crate::exit::error_text(&chorus_client::Error::from(status));
                        *s.errors.entry(text).or_default() += 1;
                    }
                }
                if let Some(p) = &progress {
                    p.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut guard = stats.lock().await;
    std::mem::take(&mut *guard)
}

pub async fn perf(ctl: &mut Ctl) {
    let (limit, n_clients, duration) = match model(&ctl.flags.str("load")) {
        "s" => (150u32, 50usize, 60u64),
        "m" => (1000, 200, 60),
        "l" => (8000, 500, 60),
        _ => (15000, 1000, 60),
    };
    let prefix = ctl.flags.str("prefix");
    let clients = clients(ctl, n_clients).await;
    prefix_is_empty(
        &clients[0],
        &prefix,
        Instant::now() + Duration::from_secs(duration),
    )
    .await;
    // The rate limiter: one put every 1/limit seconds for `duration` seconds.
    let start = Instant::now();
    let end = start + Duration::from_secs(duration);
    let interval = Duration::from_secs_f64(1.0 / f64::from(limit));
    let mut issued: u64 = 0;
    let kp = prefix.clone();
    let next: Box<dyn FnMut() -> Option<(Vec<u8>, Instant)> + Send> = Box::new(move || {
        let due = start + interval * (issued as u32);
        if due >= end {
            return None;
        }
        issued += 1;
        Some((key(&kp, 256), due))
    });
    let bar = tokio::spawn(async move {
        for i in 1..=duration {
            tokio::time::sleep(Duration::from_secs(1)).await;
            print!("\r{i} / {duration}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
        println!();
    });
    let stats = run_load(
        clients.clone(),
        vec![0u8; 1024],
        Arc::new(Mutex::new(next)),
        None,
    )
    .await;
    let total = start.elapsed().as_secs_f64();
    let _ = bar.await;
    clean_up(ctl, &clients[0], &prefix).await;
    let rps = stats.lats.len() as f64 / total;
    let mut ok = true;
    if !stats.errors.is_empty() {
        println!("FAIL: too many errors");
        for (k, v) in &stats.errors {
            println!("FAIL: ERROR({k}) -> {v}");
        }
        ok = false;
    }
    if rps / f64::from(limit) <= 0.9 {
        println!("FAIL: Throughput too low: {} writes/s", rps as i64 + 1);
        ok = false;
    } else {
        println!("PASS: Throughput is {} writes/s", rps as i64 + 1);
    }
    let slowest = stats.slowest();
    if slowest > 0.5 {
        println!("Slowest request took too long: {slowest:.6}s");
        ok = false;
    } else {
        println!("PASS: Slowest request took {slowest:.6}s");
    }
    let stddev = stats.stddev();
    if stddev > 0.1 {
        println!("Stddev too high: {stddev:.6}s");
        ok = false;
    } else {
        println!("PASS: Stddev is {stddev:.6}s");
    }
    if ok {
        println!("PASS");
    } else {
        println!("FAIL");
        exit::exit(ExitCode::Error);
    }
}

/// `process_resident_memory_bytes` from `<endpoint>/metrics` (0 when it cannot be read,
/// after printing why, as etcdctl does).
async fn resident_memory(endpoint: &str, tls: &crate::http::Tls) -> f64 {
    let host = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    };
    let resp = match crate::http::request(
        &host,
        "GET",
        "/metrics",
        None,
        Duration::from_secs(5),
        Some(Duration::from_secs(30)),
        tls,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            println!("fetch error: {}", e.text);
            return 0.0;
        }
    };
    let body = String::from_utf8_lossy(&resp.body);
    let key = "process_resident_memory_bytes";
    let Some(line) = body.lines().find(|l| l.starts_with(key)) else {
        println!("could not find: {key}");
        return 0.0;
    };
    let value = line[key.len()..].trim();
    match value.parse::<f64>() {
        Ok(v) => v,
        Err(_) => {
            println!(
                "parse error: strconv.ParseFloat: parsing {}: invalid syntax",
                crate::gofmt::quote(value)
            );
            0.0
        }
    }
}

pub async fn datascale(ctl: &mut Ctl) {
    let (limit, kv_size, n_clients) = match model(&ctl.flags.str("load")) {
        "s" => (10_000usize, 1024usize, 50usize),
        "m" => (100_000, 1024, 200),
        "l" => (1_000_000, 1024, 500),
        _ => (3_000_000, 1024, 1000),
    };
    let prefix = ctl.flags.str("prefix");
    let clients = clients(ctl, n_clients).await;
    let eps = ctl.endpoints();
    let tls = ctl.http_tls();
    prefix_is_empty(
        &clients[0],
        &prefix,
        Instant::now() + Duration::from_secs(3600),
    )
    .await;
    let before = resident_memory(&eps[0], &tls).await;
    if before == 0.0 {
        println!("FAIL: Could not read process_resident_memory_bytes before the put operations.");
        exit::exit(ExitCode::Error);
    }
    println!(
        "Start data scale check for work load [{limit} key-value pairs, {kv_size} bytes per key-value, {n_clients} concurrent clients]."
    );
    let mut left = limit;
    let kp = prefix.clone();
    let next: Box<dyn FnMut() -> Option<(Vec<u8>, Instant)> + Send> = Box::new(move || {
        if left == 0 {
            return None;
        }
        left -= 1;
        Some((key(&kp, 512), Instant::now()))
    });
    let stats = run_load(
        clients.clone(),
        vec![0u8; 512],
        Arc::new(Mutex::new(next)),
        None,
    )
    .await;
    println!("{limit} / {limit}");
    let after = resident_memory(&eps[0], &tls).await;
    if after == 0.0 {
        println!("FAIL: Could not read process_resident_memory_bytes after the put operations.");
        exit::exit(ExitCode::Error);
    }
    clean_up(ctl, &clients[0], &prefix).await;
    let mb = (after - before) / (1024.0 * 1024.0);
    if !stats.errors.is_empty() {
        println!("FAIL: too many errors");
        for (k, v) in &stats.errors {
            println!("FAIL: ERROR({k}) -> {v}");
        }
        exit::exit(ExitCode::Error);
    }
    println!("PASS: Approximate system memory used : {mb:.2} MB.");
}
