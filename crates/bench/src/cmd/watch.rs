//! `watch`: many watchers fan out the events of concurrent puts.
//!
//! ```text
//!   --streams S gRPC Watch streams (stream s on connection s % conns), each with
//!   --watch-per-stream W watchers; watcher j (= s*W + w) watches key j % K of the
//!   --watched-key-total K keys.
//!
//!   1. creation: each stream creates its watchers one by one; latency = create request
//!      sent -> `created` answer.                          report "watch-creation"
//!   2. puts: --put-total puts by --clients workers (--put-rate), put i on key i % K;
//!      each records (revision, send instant).             report "put"
//!   3. events: every stream reads until it has all events its watchers are due; each
//!      event's latency = its arrival - the send instant of the put that made its
//!      revision (notify latency, put committed included); events/s = events received /
//!      (first put sent -> last event arrived).           report "events"
//! ```
//!
//! Events not delivered within `--event-timeout` of the last put answer count as errors,
//! as do events of revisions no put of this run made (another writer on the cluster).
//! etcd's tool reports only creation and events, and its event "latency" is ~0 (it times
//! nothing but the channel hand-off); its events/s compares directly with ours.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_api::etcdserverpb::{
    kv_client::KvClient, watch_client::WatchClient, watch_request::RequestUnion, PutRequest,
    WatchCreateRequest, WatchRequest, WatchResponse,
};
use chorus_client::AuthChannel;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::Ctx;
use crate::cli::WatchArgs;
use crate::conn::Conn;
use crate::driver::{self, Op};
use crate::keys::{random_bytes, KeyGen};
use crate::output::Output;
use crate::progress::Progress;
use crate::rate::RateLimiter;
use crate::report::{status_message, Recorder, Stats};

/// The plan: which key each watcher watches and how many events each stream is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Key of watcher `s * W + w`.
    pub watcher_keys: Vec<Vec<u8>>,
    /// Key of put i is `watched[i % watched.len()]`.
    pub watched: Vec<Vec<u8>>,
    /// Events each stream must receive.
    pub expected_per_stream: Vec<u64>,
    pub events_total: u64,
}

impl Plan {
    pub fn new(watched: Vec<Vec<u8>>, streams: usize, per_stream: usize, puts: u64) -> Plan {
        let k = watched.len();
        let watcher_keys: Vec<Vec<u8>> = (0..streams * per_stream)
            .map(|j| watched[j % k].clone())
            .collect();
        // Keys may repeat (random keys in a small key space): count by value, as etcd does.
        let mut puts_per_key: HashMap<&[u8], u64> = HashMap::new();
        let full_rounds = puts / k as u64;
        let remainder = (puts % k as u64) as usize;
        for (i, key) in watched.iter().enumerate() {
            *puts_per_key.entry(key).or_default() += full_rounds + u64::from(i < remainder);
        }
        let expected_per_stream: Vec<u64> = (0..streams)
            .map(|s| {
                watcher_keys[s * per_stream..(s + 1) * per_stream]
                    .iter()
                    .map(|key| puts_per_key[key.as_slice()])
                    .sum()
            })
            .collect();
        let events_total = expected_per_stream.iter().sum();
        Plan {
            watcher_keys,
            watched,
            expected_per_stream,
            events_total,
        }
    }
}

fn create_request(key: Vec<u8>) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key,
            ..Default::default()
        })),
    }
}

/// What a stream task hands back once its watchers exist.
type Created = Recorder;

/// What a stream task hands back at the end.
struct Received {
    /// (mod revision, arrival) of every event.
    arrivals: Vec<(i64, Instant)>,
    errors: Recorder,
}

/// Creates the watchers of one stream, hands their creation latencies over, waits for
/// the go (the events' progress handle), then reads until `expected` events arrived, the
/// stream fails, or `stop`.
async fn stream_task(
    mut client: WatchClient<AuthChannel>,
    keys: Vec<Vec<u8>>,
    expected: u64,
    create_timeout: Duration,
    created_tx: oneshot::Sender<Created>,
    mut go: watch::Receiver<Option<Progress>>,
    mut stop: watch::Receiver<bool>,
    creation_progress: Progress,
) -> Received {
    let mut creation = Recorder::with_capacity(keys.len());
    let (tx, rx) = mpsc::channel::<WatchRequest>(keys.len().max(1));
    let mut rx = Some(rx);
    let mut responses: Option<Streaming<WatchResponse>> = None;
    let mut failed = None;
    for key in keys.iter() {
        let t0 = Instant::now();
        let attempt = async {
            tx.send(create_request(key.clone()))
                .await
                .map_err(|_| "watch request stream closed".to_owned())?;
            if responses.is_none() {
                let stream = client
                    .watch(ReceiverStream::new(rx.take().expect("first watcher")))
                    .await
                    .map_err(|s| status_message(&s))?;
                responses = Some(stream.into_inner());
            }
            let stream = responses.as_mut().expect("stream open");
            match stream.message().await {
                Ok(Some(r)) if r.created && !r.canceled => Ok(()),
                Ok(Some(r)) if r.canceled => Err(format!("watch canceled: {}", r.cancel_reason)),
                Ok(Some(_)) => Err("unexpected watch response before created".to_owned()),
                Ok(None) => Err("watch stream closed by the server".to_owned()),
                Err(s) => Err(status_message(&s)),
            }
        };
        match tokio::time::timeout(create_timeout, attempt).await {
            Ok(Ok(())) => creation.ok(t0.elapsed()),
            Ok(Err(message)) => {
                failed = Some(message);
                break;
            }
            Err(_) => {
                failed = Some(format!("watch not created within {create_timeout:?}"));
                break;
            }
        }
        creation_progress.inc();
    }
    let mut errors = Recorder::default();
    if let Some(message) = failed {
        // This stream is unusable: every watcher not created counts, and its events will
        // count as not delivered.
        let missing = keys.len() - creation.successes();
        creation.errors(message.clone(), missing as u64);
        let _ = created_tx.send(creation);
        return Received {
            arrivals: Vec::new(),
            errors,
        };
    }
    let _ = created_tx.send(creation);
    let progress = match go.wait_for(Option::is_some).await {
        Ok(p) => p.clone().expect("some"),
        Err(_) => Progress::default(),
    };
    let mut stream = responses.expect("stream open");
    let mut arrivals = Vec::with_capacity(expected as usize);
    let mut received = 0u64;
    while received < expected {
        tokio::select! {
            biased;
            msg = stream.message() => match msg {
                Ok(Some(r)) => {
                    let now = Instant::now();
                    if r.canceled {
                        errors.error(format!("watch canceled: {}", r.cancel_reason));
                    }
                    for event in &r.events {
                        arrivals.push((event.kv.as_ref().map_or(0, |kv| kv.mod_revision), now));
                    }
                    received += r.events.len() as u64;
                    progress.add(r.events.len() as u64);
                }
                Ok(None) => {
                    errors.error("watch stream closed by the server");
                    break;
                }
                Err(s) => {
                    errors.error(status_message(&s));
                    break;
                }
            },
            _ = stop.changed() => break,
        }
    }
    // Closing the request side and dropping the stream ends the watchers.
    drop(tx);
    Received { arrivals, errors }
}

struct WatchPutOp {
    conn: Conn,
    kv: KvClient<AuthChannel>,
    watched: Arc<Vec<Vec<u8>>>,
    value: Vec<u8>,
    /// (revision, send instant) of each successful put.
    sent: Vec<(i64, Instant)>,
}

impl Op for WatchPutOp {
    type Req = PutRequest;

    fn conn(&self) -> Option<&Conn> {
        Some(&self.conn)
    }

    fn build(&mut self, i: u64) -> (usize, PutRequest) {
        let key = self.watched[(i % self.watched.len() as u64) as usize].clone();
        let req = PutRequest {
            key,
            value: self.value.clone(),
            ..Default::default()
        };
        (0, req)
    }

    async fn send(&mut self, req: PutRequest) -> Result<(), tonic::Status> {
        let t0 = Instant::now();
        let resp = self.kv.put(req).await?.into_inner();
        self.sent.push((resp.header.map_or(0, |h| h.revision), t0));
        Ok(())
    }
}

pub async fn run(ctx: &Ctx, args: &WatchArgs) -> anyhow::Result<Output> {
    if args.streams == 0 || args.watch_per_stream == 0 || args.watched_key_total == 0 {
        anyhow::bail!("--streams, --watch-per-stream and --watched-key-total must be positive");
    }
    let mut keys = KeyGen::new(args.key_size, args.key_space_size, args.sequential_keys)?;
    let watched: Vec<Vec<u8>> = (0..args.watched_key_total as u64)
        .map(|i| keys.key(i))
        .collect();
    let plan = Plan::new(watched, args.streams, args.watch_per_stream, args.put_total);
    let watchers = args.streams * args.watch_per_stream;

    // 1. Watchers.
    let (go_tx, go_rx) = watch::channel(None::<Progress>);
    let (stop_tx, stop_rx) = watch::channel(false);
    let creation_bar = ctx.bar(watchers as u64);
    let creation_start = Instant::now();
    let mut created_rxs = Vec::with_capacity(args.streams);
    let mut tasks = Vec::with_capacity(args.streams);
    for s in 0..args.streams {
        let (created_tx, created_rx) = oneshot::channel();
        created_rxs.push(created_rx);
        let keys =
            plan.watcher_keys[s * args.watch_per_stream..(s + 1) * args.watch_per_stream].to_vec();
        tasks.push(tokio::spawn(stream_task(
            ctx.conns.for_worker(s).watch_client(),
            keys,
            plan.expected_per_stream[s],
            args.event_timeout,
            created_tx,
            go_rx.clone(),
            stop_rx.clone(),
            creation_bar.progress(),
        )));
    }
    let mut creation = Recorder::with_capacity(watchers);
    for rx in created_rxs {
        if let Ok(r) = rx.await {
            creation.merge(r);
        }
    }
    let creation_wall = creation_start.elapsed();
    creation_bar.finish();

    // 2. Puts, while 3. the streams collect events.
    let events_bar = ctx.bar(plan.events_total);
    let _ = go_tx.send(Some(events_bar.progress()));
    let watched = Arc::new(plan.watched.clone());
    let value = random_bytes(args.val_size);
    let ops: Vec<WatchPutOp> = (0..ctx.clients)
        .map(|i| WatchPutOp {
            conn: ctx.conns.for_worker(i).clone(),
            kv: ctx.conns.for_worker(i).kv_client(),
            watched: watched.clone(),
            value: value.clone(),
            sent: Vec::with_capacity((args.put_total / ctx.clients as u64 + 1) as usize),
        })
        .collect();
    let limiter = RateLimiter::optional(args.put_rate, 1).map(Arc::new);
    let puts_start = Instant::now();
    let puts = driver::run(
        ops,
        args.put_total,
        1,
        limiter,
        Progress::default(),
        &ctx.latency_log,
    )
    .await;
    let timer = {
        let timeout = args.event_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let _ = stop_tx.send(true);
        })
    };
    let mut received = Vec::with_capacity(tasks.len());
    for task in tasks {
        received.push(task.await.expect("watch stream task panicked"));
    }
    timer.abort();
    events_bar.finish();

    // Notify latencies.
    let sent: HashMap<i64, Instant> = puts
        .ops
        .iter()
        .flat_map(|op| op.sent.iter().copied())
        .collect();
    let mut events = Recorder::with_capacity(plan.events_total as usize);
    let mut last_arrival = None::<Instant>;
    let mut events_received = 0u64;
    let mut foreign = 0u64;
    for r in received {
        events_received += r.arrivals.len() as u64;
        for (revision, arrival) in r.arrivals {
            last_arrival = Some(last_arrival.map_or(arrival, |l| l.max(arrival)));
            match sent.get(&revision) {
                Some(t0) => events.ok(arrival.saturating_duration_since(*t0)),
                None => foreign += 1,
            }
        }
        events.merge(r.errors);
    }
    events.errors(
        "event of a revision no put of this run made (another writer?)",
        foreign,
    );
    let missing = plan.events_total.saturating_sub(events_received);
    events.errors(
        format!(
            "event not delivered within {:?} of the last put",
            args.event_timeout
        ),
        missing,
    );
    let events_wall = last_arrival.map_or_else(
        || puts_start.elapsed(),
        |l| l.saturating_duration_since(puts_start),
    );

    let [put_recorder]: [_; 1] = puts.recorders.try_into().expect("one class");
    let params = json!({
        "streams": args.streams,
        "watch_per_stream": args.watch_per_stream,
        "watched_key_total": args.watched_key_total,
        "put_rate": args.put_rate,
        "put_total": args.put_total,
        "key_size": args.key_size,
        "val_size": args.val_size,
        "key_space_size": args.key_space_size,
        "sequential_keys": args.sequential_keys,
        "event_timeout_seconds": args.event_timeout.as_secs_f64(),
    });
    let mut out = Output::new("watch", params)
        .section(
            "watch-creation",
            "Watch creation summary:",
            Stats::new(creation, creation_wall),
        )
        .section("put", "\nPut summary:", Stats::new(put_recorder, puts.wall))
        .section(
            "events",
            "\nWatch events received summary:",
            Stats::new(events, events_wall),
        );
    out.extra.insert("watchers".into(), json!(watchers));
    out.extra
        .insert("events_expected".into(), json!(plan.events_total));
    out.extra
        .insert("events_received".into(), json!(events_received));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_counts_events_per_stream() {
        // One key, 10 streams x 100 watchers, 1000 puts: 1M events, 100k per stream.
        let p = Plan::new(vec![b"k".to_vec()], 10, 100, 1000);
        assert_eq!(p.events_total, 1_000_000);
        assert!(p.expected_per_stream.iter().all(|&e| e == 100_000));

        // Keys a, b, c; 2 streams x 2 watchers watch a, b | c, a; 4 puts: a, b, c, a.
        let keys = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        let p = Plan::new(keys, 2, 2, 4);
        assert_eq!(
            p.watcher_keys,
            [b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"a".to_vec()]
        );
        // Stream 0: a (2 puts) + b (1); stream 1: c (1) + a (2).
        assert_eq!(p.expected_per_stream, [3, 3]);
        assert_eq!(p.events_total, 6);

        // Duplicate keys (random keys in a key space of 1) count by value.
        let p = Plan::new(vec![b"x".to_vec(), b"x".to_vec()], 1, 2, 3);
        assert_eq!(p.expected_per_stream, [6]);
    }
}
