//! Traffic: clients with one request in flight each, watchers that resume where they
//! stopped, and a compactor. Everything is recorded; every loop is bounded by a stop signal
//! and a count.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chorus_client::pb::{
    compare::{CompareResult, CompareTarget, TargetUnion},
    request_op, response_op, Compare as PbCompare, DeleteRangeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};
use chorus_client::{
    Client, ConnectOptions, Error as ClientError, GetOptions, PutOptions, WatchOptions,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tonic::Code;

use crate::history::{
    Compare, EtcdError, Event, KeyRange, Kv, Operation, Request, Response, TxnOp, TxnOpResult,
    WatchResponse, WatchSession, Watcher,
};

/// Every key the traffic touches starts with this.
pub const PREFIX: &str = "/robust/";

/// The whole key space of the traffic.
pub fn key_space() -> KeyRange {
    KeyRange::prefix(PREFIX)
}

pub fn key(i: usize) -> String {
    format!("{PREFIX}k{i:02}")
}

/// Lease TTL: far longer than a run, so no lease expires by itself (expiry is not in the
/// model; revoke is).
const LEASE_TTL: i64 = 3600;

#[derive(Debug, Clone)]
pub struct TrafficConfig {
    pub clients: usize,
    pub keys: usize,
    /// Bound on each client's requests.
    pub max_ops_per_client: usize,
    pub request_timeout: Duration,
    pub random_watchers: usize,
    pub compact_interval: Duration,
}

/// Shared recording of operations, timed from one start instant.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Operation>>>,
    next_id: Arc<AtomicUsize>,
}

impl Recorder {
    pub fn new(start: Instant) -> Self {
        Recorder {
            start,
            ops: Default::default(),
            next_id: Default::default(),
        }
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn record(&self, client: usize, call: u64, request: Request, outcome: Outcome) {
        let ret = self.now();
        let (response, error) = match outcome {
            Outcome::Ok(r) => (Some(r), None),
            Outcome::Definite(e, text) => (Some(Response::Error(e)), Some(text)),
            Outcome::Unknown(text) => (None, Some(text)),
            Outcome::NotSent => return,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.ops.lock().expect("recorder").push(Operation {
            id,
            client,
            call,
            ret,
            request,
            response,
            error,
        });
    }

    pub fn take(&self) -> Vec<Operation> {
        let mut ops = std::mem::take(&mut *self.ops.lock().expect("recorder"));
        ops.sort_by_key(|o| o.id);
        ops
    }

    pub fn len(&self) -> usize {
        self.ops.lock().expect("recorder").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

enum Outcome {
    Ok(Response),
    /// An error the state machine answered (the model predicts it).
    Definite(EtcdError, String),
    /// Timeout, lost connection, no leader...: may or may not have taken effect.
    Unknown(String),
    /// The connection could not be made: the request never left.
    NotSent,
}

fn classify(request: &Request, err: &ClientError) -> Outcome {
    let text = err.to_string();
    let message = err.message().unwrap_or("");
    let definite = match (err.code(), message) {
        (Some(Code::NotFound), m) if m.contains("requested lease not found") => {
            Some(EtcdError::LeaseNotFound)
        }
        (Some(Code::OutOfRange), m) if m.contains("compacted") => Some(EtcdError::Compacted),
        (Some(Code::OutOfRange), m) if m.contains("future revision") => Some(EtcdError::FutureRev),
        _ => None,
    };
    if let Some(e) = definite {
        return Outcome::Definite(e, text);
    }
    if err.is_connect_error() && request.is_write() {
        return Outcome::NotSent;
    }
    Outcome::Unknown(text)
}

fn kv_of(kv: &chorus_client::mvccpb::KeyValue) -> Kv {
    Kv {
        key: String::from_utf8_lossy(&kv.key).into_owned(),
        value: String::from_utf8_lossy(&kv.value).into_owned(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}

fn header_rev(h: &Option<chorus_client::pb::ResponseHeader>) -> i64 {
    h.as_ref().map_or(0, |h| h.revision)
}

fn txn_op(op: &TxnOp) -> RequestOp {
    let request = match op {
        TxnOp::Get { key } => request_op::Request::RequestRange(RangeRequest {
            key: key.clone().into_bytes(),
            ..Default::default()
        }),
        TxnOp::Put { key, value, lease } => request_op::Request::RequestPut(PutRequest {
            key: key.clone().into_bytes(),
            value: value.clone().into_bytes(),
            lease: *lease,
            ..Default::default()
        }),
        TxnOp::Delete { key } => request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.clone().into_bytes(),
            ..Default::default()
        }),
    };
    RequestOp {
        request: Some(request),
    }
}

/// Sends one request and shapes the answer.
pub async fn execute(client: &Client, request: &Request) -> Result<Response, ClientError> {
    Ok(match request {
        Request::Range {
            range,
            revision,
            serializable,
        } => {
            let resp = client
                .get(
                    range.key.clone(),
                    GetOptions {
                        range_end: range.end.clone().map(String::into_bytes),
                        revision: *revision,
                        serializable: *serializable,
                        ..Default::default()
                    },
                )
                .await?;
            Response::Range {
                revision: header_rev(&resp.header),
                kvs: resp.kvs.iter().map(kv_of).collect(),
            }
        }
        Request::Put { key, value, lease } => {
            let resp = client
                .put(
                    key.clone(),
                    value.clone(),
                    PutOptions {
                        lease: *lease,
                        ..Default::default()
                    },
                )
                .await?;
            Response::Put {
                revision: header_rev(&resp.header),
            }
        }
        Request::Delete { key } => {
            let resp = client.delete(key.clone(), Default::default()).await?;
            Response::Delete {
                revision: header_rev(&resp.header),
                deleted: resp.deleted,
            }
        }
        Request::Txn {
            compare,
            success,
            failure,
        } => {
            let req = TxnRequest {
                compare: compare
                    .iter()
                    .map(|c| PbCompare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Mod as i32,
                        key: c.key.clone().into_bytes(),
                        target_union: Some(TargetUnion::ModRevision(c.mod_revision)),
                        ..Default::default()
                    })
                    .collect(),
                success: success.iter().map(txn_op).collect(),
                failure: failure.iter().map(txn_op).collect(),
            };
            let resp = client.txn(req).await?;
            let results = resp
                .responses
                .iter()
                .map(|r| match &r.response {
                    Some(response_op::Response::ResponseRange(r)) => TxnOpResult::Get {
                        kvs: r.kvs.iter().map(kv_of).collect(),
                    },
                    Some(response_op::Response::ResponsePut(_)) => TxnOpResult::Put,
                    Some(response_op::Response::ResponseDeleteRange(d)) => {
                        TxnOpResult::Delete { deleted: d.deleted }
                    }
                    _ => TxnOpResult::Put,
                })
                .collect();
            Response::Txn {
                revision: header_rev(&resp.header),
                succeeded: resp.succeeded,
                results: Some(results),
            }
        }
        Request::LeaseGrant { id } => {
            let resp = client.lease_grant(LEASE_TTL, *id).await?;
            Response::LeaseGrant {
                revision: header_rev(&resp.header),
            }
        }
        Request::LeaseRevoke { id } => {
            let resp = client.lease_revoke(*id).await?;
            Response::LeaseRevoke {
                revision: header_rev(&resp.header),
            }
        }
        Request::Compact { revision } => {
            let resp = client.compact(*revision, false).await?;
            Response::Compact {
                revision: header_rev(&resp.header),
            }
        }
    })
}

/// Records `request` sent through `client`.
pub async fn run_op(
    rec: &Recorder,
    client: &Client,
    id: usize,
    request: Request,
) -> Option<Response> {
    let call = rec.now();
    let outcome = match execute(client, &request).await {
        Ok(r) => Outcome::Ok(r),
        Err(e) => classify(&request, &e),
    };
    let response = match &outcome {
        Outcome::Ok(r) => Some(r.clone()),
        _ => None,
    };
    rec.record(id, call, request, outcome);
    response
}

/// A client over every endpoint, starting at `first` (so clients spread over members).
pub async fn client_for(endpoints: &[String], first: usize, timeout: Duration) -> Client {
    let mut eps: Vec<String> = endpoints.to_vec();
    eps.rotate_left(first % endpoints.len());
    Client::connect(
        &eps,
        ConnectOptions {
            request_timeout: Some(timeout),
            dial_timeout: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .await
    .expect("client")
}

/// One traffic client: until `stop` or its op bound.
pub async fn client_loop(
    id: usize,
    endpoints: Vec<String>,
    cfg: TrafficConfig,
    rec: Recorder,
    seed: u64,
    stop: watch::Receiver<bool>,
) {
    let client = client_for(&endpoints, id, cfg.request_timeout).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seq = 0u64;
    let mut leases: Vec<i64> = Vec::new();
    let mut lease_seq = 0i64;
    let mut mod_revs: Vec<i64> = vec![0; cfg.keys];
    let mut seen_revision = 1i64;
    for _ in 0..cfg.max_ops_per_client {
        if *stop.borrow() {
            break;
        }
        seq += 1;
        let value = format!("c{id}-{seq}");
        let k = rng.gen_range(0..cfg.keys);
        let roll = rng.gen_range(0..100);
        let request = match roll {
            0..=19 => Request::Range {
                range: KeyRange::single(key(k)),
                revision: 0,
                serializable: false,
            },
            20..=26 => Request::Range {
                range: key_space(),
                revision: 0,
                serializable: false,
            },
            27..=33 => Request::Range {
                range: if rng.gen_bool(0.5) {
                    key_space()
                } else {
                    KeyRange::single(key(k))
                },
                revision: 0,
                serializable: true,
            },
            34..=36 => Request::Range {
                range: key_space(),
                revision: rng.gen_range(1..=seen_revision),
                serializable: false,
            },
            37..=56 => Request::Put {
                key: key(k),
                value,
                lease: 0,
            },
            57..=62 => Request::Delete { key: key(k) },
            63..=74 => Request::Txn {
                compare: vec![Compare {
                    key: key(k),
                    mod_revision: mod_revs[k],
                }],
                success: vec![TxnOp::Put {
                    key: key(k),
                    value,
                    lease: 0,
                }],
                failure: vec![TxnOp::Get { key: key(k) }],
            },
            75..=80 => {
                let k2 = (k + 1 + rng.gen_range(0..cfg.keys - 1)) % cfg.keys;
                let mut success = vec![
                    TxnOp::Put {
                        key: key(k),
                        value: value.clone(),
                        lease: 0,
                    },
                    TxnOp::Put {
                        key: key(k2),
                        value: format!("{value}b"),
                        lease: 0,
                    },
                ];
                if rng.gen_bool(0.3) {
                    let k3 = (0..cfg.keys).find(|&x| x != k && x != k2).unwrap_or(k);
                    success.push(TxnOp::Delete { key: key(k3) });
                }
                Request::Txn {
                    compare: Vec::new(),
                    success,
                    failure: Vec::new(),
                }
            }
            81..=88 => match leases.last() {
                Some(&lease) => Request::Put {
                    key: key(k),
                    value,
                    lease,
                },
                None => {
                    lease_seq += 1;
                    Request::LeaseGrant {
                        id: ((id as i64 + 1) << 32) | lease_seq,
                    }
                }
            },
            89..=93 => {
                lease_seq += 1;
                Request::LeaseGrant {
                    id: ((id as i64 + 1) << 32) | lease_seq,
                }
            }
            _ => match leases.first() {
                Some(&lease) => Request::LeaseRevoke { id: lease },
                None => Request::Range {
                    range: KeyRange::single(key(k)),
                    revision: 0,
                    serializable: false,
                },
            },
        };
        // Outcomes feed the next requests' choices (CAS revisions, leases).
        if let Request::LeaseRevoke { id } = request {
            leases.retain(|&l| l != id);
        }
        let granted = match request {
            Request::LeaseGrant { id } => Some(id),
            _ => None,
        };
        // The stop signal is looked at between requests only: a request in flight is
        // bounded by the request timeout and its outcome belongs in the history.
        let response = run_op(&rec, &client, id, request.clone()).await;
        if response.is_none() {
            // As a real client would: do not spin against a member that is down.
            tokio::time::sleep(Duration::from_millis(rng.gen_range(20..100))).await;
        }
        if let Some(r) = &response {
            if let Some(rev) = r.revision() {
                seen_revision = seen_revision.max(rev);
            }
        }
        match (&request, &response) {
            (_, Some(Response::Range { kvs, .. })) => {
                for kv in kvs {
                    if let Some(i) = kv
                        .key
                        .strip_prefix(PREFIX)
                        .and_then(|s| s.strip_prefix('k'))
                        .and_then(|s| s.parse::<usize>().ok())
                    {
                        if i < mod_revs.len() {
                            mod_revs[i] = kv.mod_revision;
                        }
                    }
                }
                if let Request::Range { range, .. } = &request {
                    if range.end.is_none() && kvs.is_empty() {
                        mod_revs[k] = 0;
                    }
                }
            }
            (Request::Put { .. }, Some(Response::Put { revision })) => mod_revs[k] = *revision,
            (
                Request::Txn { .. },
                Some(Response::Txn {
                    succeeded: true,
                    revision,
                    ..
                }),
            ) => mod_revs[k] = *revision,
            (
                Request::Txn { .. },
                Some(Response::Txn {
                    results: Some(results),
                    ..
                }),
            ) => {
                if let Some(TxnOpResult::Get { kvs }) = results.first() {
                    mod_revs[k] = kvs.first().map_or(0, |kv| kv.mod_revision);
                }
            }
            (Request::Delete { .. }, Some(Response::Delete { .. })) => mod_revs[k] = 0,
            _ => {}
        }
        if let (Some(id), Some(Response::LeaseGrant { .. })) = (granted, &response) {
            leases.push(id);
            if leases.len() > 3 {
                leases.remove(0);
            }
        }
    }
}

/// Progress of the reference watchers: the revision up to which each has everything.
pub type Progress = Arc<Vec<Arc<AtomicI64>>>;

/// Compacts now and then, never past what the reference watchers have (so the reference
/// history stays complete) and always a little behind it.
pub async fn compactor_loop(
    endpoints: Vec<String>,
    cfg: TrafficConfig,
    rec: Recorder,
    progress: Progress,
    compacted: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) {
    let client = client_for(&endpoints, 0, cfg.request_timeout).await;
    let id = usize::MAX;
    for _ in 0..10_000 {
        tokio::select! {
            _ = tokio::time::sleep(cfg.compact_interval) => {}
            _ = stop.changed() => return,
        }
        let safe = progress
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        let target = safe - 20;
        if target > compacted.load(Ordering::Acquire) + 1 {
            let r = run_op(&rec, &client, id, Request::Compact { revision: target }).await;
            if matches!(r, Some(Response::Compact { .. })) {
                compacted.fetch_max(target, Ordering::AcqRel);
            }
        }
    }
}

/// A watcher's parameters.
pub struct WatchPlan {
    pub id: usize,
    pub range: KeyRange,
    pub reference: bool,
    /// Members to use, in turn.
    pub members: Vec<usize>,
}

/// Runs one watcher until `stop` is set and then until it has everything up to the
/// revision `until` publishes (0 = not yet known), bounded by `drain_timeout` after the
/// stop. Random watchers also end sessions on purpose and resume.
pub async fn watcher_loop(
    plan: WatchPlan,
    endpoints: Vec<String>,
    rec: Recorder,
    seed: u64,
    progress: Option<Arc<AtomicI64>>,
    known: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
    out: Arc<Mutex<Watcher>>,
    mut until: watch::Receiver<i64>,
    drain_timeout: Duration,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut next: i64 = if plan.reference { 1 } else { 0 };
    let mut drain_deadline: Option<Instant> = None;
    let first = rng.gen_range(0..plan.members.len());
    for turn in first..first + 100_000 {
        let target = *until.borrow();
        if target > 0 {
            let deadline = *drain_deadline.get_or_insert_with(|| Instant::now() + drain_timeout);
            if (next > target && next > 0) || Instant::now() >= deadline {
                return;
            }
        }
        if !plan.reference && next == 0 && target == 0 && rng.gen_bool(0.5) {
            // Start at an older revision that is not compacted.
            let low = compacted.load(Ordering::Acquire) + 1;
            let high = known.load(Ordering::Acquire).max(low);
            next = rng.gen_range(low..=high).max(1);
        }
        let member = plan.members[turn % plan.members.len()];
        let client = match Client::connect(
            &[endpoints[member].clone()],
            ConnectOptions {
                dial_timeout: Duration::from_millis(500),
                ..Default::default()
            },
        )
        .await
        {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let opts = WatchOptions {
            range_end: plan.range.end.clone().map(String::into_bytes),
            start_revision: next.max(0),
            progress_notify: true,
            ..Default::default()
        };
        let mut session = WatchSession {
            member,
            start_revision: next.max(0),
            created_revision: 0,
            responses: Vec::new(),
            ended_by: None,
        };
        let created = tokio::time::timeout(
            Duration::from_secs(3),
            client.watch(plan.range.key.clone(), opts),
        )
        .await;
        let mut stream = match created {
            Ok(Ok(s)) => s,
            Ok(Err(ClientError::WatchCanceled {
                reason,
                compact_revision,
            })) => {
                session.responses.push(WatchResponse {
                    time: rec.now(),
                    revision: 0,
                    events: Vec::new(),
                    progress_notify: false,
                    canceled: true,
                    compact_revision,
                });
                session.ended_by = Some(reason);
                if compact_revision > 0 {
                    next = compact_revision;
                }
                out.lock().expect("watcher").sessions.push(session);
                continue;
            }
            Ok(Err(_)) | Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        session.created_revision = header_rev(&stream.created().header);
        if next == 0 {
            next = session.created_revision + 1;
        }
        let session_end = if plan.reference || target > 0 {
            None
        } else {
            Some(Instant::now() + Duration::from_millis(rng.gen_range(300..2500)))
        };
        let mut last_progress_request = Instant::now();
        loop {
            let target = *until.borrow();
            if target > 0 {
                let deadline =
                    *drain_deadline.get_or_insert_with(|| Instant::now() + drain_timeout);
                if next > target || Instant::now() >= deadline {
                    break;
                }
            }
            if session_end.is_some_and(|e| Instant::now() >= e) {
                break;
            }
            if last_progress_request.elapsed() >= Duration::from_millis(500) {
                last_progress_request = Instant::now();
                let asked =
                    tokio::time::timeout(Duration::from_millis(200), stream.request_progress())
                        .await;
                if matches!(asked, Ok(Err(_))) {
                    session.ended_by = Some("progress request failed".into());
                    break;
                }
            }
            let msg = tokio::select! {
                m = tokio::time::timeout(Duration::from_millis(500), stream.message()) => m,
                _ = until.changed() => continue,
            };
            let msg = match msg {
                Err(_) => continue,
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) => {
                    session.ended_by = Some("stream closed".into());
                    break;
                }
                Ok(Err(e)) => {
                    session.ended_by = Some(e.to_string());
                    break;
                }
            };
            let events: Vec<Event> = msg
                .events
                .iter()
                .map(|e| Event {
                    delete: e.r#type == 1,
                    kv: e.kv.as_ref().map(kv_of).unwrap_or(Kv {
                        key: String::new(),
                        value: String::new(),
                        create_revision: 0,
                        mod_revision: 0,
                        version: 0,
                        lease: 0,
                    }),
                })
                .collect();
            let revision = header_rev(&msg.header);
            let progress_notify = events.is_empty() && !msg.created && !msg.canceled;
            if let Some(last) = events.last() {
                next = next.max(last.kv.mod_revision + 1);
            }
            if progress_notify {
                next = next.max(revision + 1);
            }
            if let Some(p) = &progress {
                p.store(next - 1, Ordering::Release);
            }
            let canceled = msg.canceled;
            session.responses.push(WatchResponse {
                time: rec.now(),
                revision,
                events,
                progress_notify,
                canceled,
                compact_revision: msg.compact_revision,
            });
            if canceled {
                session.ended_by = Some(format!("canceled: {}", msg.cancel_reason));
                if msg.compact_revision > 0 {
                    next = next.max(msg.compact_revision);
                }
                break;
            }
        }
        out.lock().expect("watcher").sessions.push(session);
    }
}
