//! `watch-latency`: `--clients` watchers (one Watch stream each, on the connections
//! round-robin) on one random key; puts on a connection of their own at `--put-rate`
//! (bucket of `--put-rate` tokens, as etcd's tool), one at a time: put, then wait until
//! every watcher has the event. A sample per (put, watcher): event arrival - put sent.
//!
//! etcd's tool times from the put's *answer* to the moment a goroutine reads the event
//! from its channel (near 0 when the event came before the answer); we time from the
//! put's send, so the number includes the commit and is never clamped. Report
//! "watch-latency"; the puts alone are report "put".

use std::time::{Duration, Instant};

use chorus_api::etcdserverpb::{
    watch_client::WatchClient, watch_request::RequestUnion, PutRequest, WatchCreateRequest,
    WatchRequest,
};
use chorus_client::AuthChannel;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::Ctx;
use crate::cli::WatchLatencyArgs;
use crate::keys::random_bytes;
use crate::output::Output;
use crate::rate::RateLimiter;
use crate::report::{status_message, Recorder, Stats};

/// (watcher, mod revision, arrival).
type Arrival = (usize, i64, Instant);

/// Opens watcher `index` on `key`; returns once created. Then forwards every event's
/// arrival until the stream ends or `stop`.
async fn open_watcher(
    index: usize,
    mut client: WatchClient<AuthChannel>,
    key: Vec<u8>,
    timeout: Duration,
    arrivals: mpsc::UnboundedSender<Arrival>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key,
            ..Default::default()
        })),
    })
    .expect("an empty channel takes one request");
    let open = async {
        let mut stream = client.watch(ReceiverStream::new(rx)).await?.into_inner();
        match stream.message().await? {
            Some(r) if r.created && !r.canceled => Ok(stream),
            Some(r) => Err(tonic::Status::aborted(format!(
                "watch not created: {}",
                r.cancel_reason
            ))),
            None => Err(tonic::Status::unavailable("watch stream closed")),
        }
    };
    let mut stream = tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| anyhow::anyhow!("watcher {index}: not created within {timeout:?}"))?
        .map_err(|s| anyhow::anyhow!("watcher {index}: {}", status_message(&s)))?;
    Ok(tokio::spawn(async move {
        let _requests = tx;
        loop {
            tokio::select! {
                biased;
                msg = stream.message() => match msg {
                    Ok(Some(r)) => {
                        let now = Instant::now();
                        for event in &r.events {
                            let rev = event.kv.as_ref().map_or(0, |kv| kv.mod_revision);
                            let _ = arrivals.send((index, rev, now));
                        }
                    }
                    _ => break,
                },
                _ = stop.changed() => break,
            }
        }
    }))
}

pub async fn run(ctx: &Ctx, args: &WatchLatencyArgs) -> anyhow::Result<Output> {
    let key = random_bytes(args.key_size);
    let value = random_bytes(args.val_size);
    let watchers = ctx.clients;
    let (arrivals_tx, mut arrivals) = mpsc::unbounded_channel::<Arrival>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::with_capacity(watchers);
    for i in 0..watchers {
        tasks.push(
            open_watcher(
                i,
                ctx.conns.for_worker(i).watch_client(),
                key.clone(),
                args.event_timeout,
                arrivals_tx.clone(),
                stop_rx.clone(),
            )
            .await?,
        );
    }
    drop(arrivals_tx);
    let mut kv = ctx.conns.extra[0].kv_client();
    let limiter = RateLimiter::optional(args.put_rate, args.put_rate);
    let mut puts = Recorder::with_capacity(args.total as usize);
    let mut latencies = Recorder::with_capacity(args.total as usize * watchers);
    let bar = ctx.bar(args.total);
    let progress = bar.progress();
    let start = Instant::now();
    for _ in 0..args.total {
        if let Some(limiter) = &limiter {
            limiter.acquire().await;
        }
        let req = PutRequest {
            key: key.clone(),
            value: value.clone(),
            ..Default::default()
        };
        let t0 = Instant::now();
        let result = kv.put(req).await;
        let put_latency = t0.elapsed();
        let revision = match result {
            Ok(resp) => {
                puts.ok(put_latency);
                resp.into_inner().header.map_or(0, |h| h.revision)
            }
            Err(status) => {
                puts.error(status_message(&status));
                progress.inc();
                continue;
            }
        };
        let mut seen = 0;
        let deadline = tokio::time::Instant::now() + args.event_timeout;
        while seen < watchers {
            match tokio::time::timeout_at(deadline, arrivals.recv()).await {
                Ok(Some((_, rev, at))) if rev == revision => {
                    latencies.ok(at.saturating_duration_since(t0));
                    seen += 1;
                }
                // A late event of an earlier put that timed out.
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        latencies.errors(
            format!(
                "event not delivered within {:?} of the put",
                args.event_timeout
            ),
            (watchers - seen) as u64,
        );
        progress.inc();
    }
    let wall = start.elapsed();
    bar.finish();
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let params = json!({
        "total": args.total,
        "put_rate": args.put_rate,
        "key_size": args.key_size,
        "val_size": args.val_size,
        "watchers": watchers,
        "event_timeout_seconds": args.event_timeout.as_secs_f64(),
    });
    let mut out = Output::new("watch-latency", params)
        .section("watch-latency", "", Stats::new(latencies, wall))
        .section("put", "\nPut summary:", Stats::new(puts, wall));
    out.extra.insert("watchers".into(), json!(watchers));
    Ok(out)
}
