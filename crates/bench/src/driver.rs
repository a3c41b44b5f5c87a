//! The closed-loop driver shared by put, range, txn-put, txn-mixed and lease-keepalive:
//! `--clients` worker tasks, each with one request in flight (etcd's tool does the same:
//! a goroutine per client, `c.Do` and wait), pulling request numbers from one atomic
//! counter until `--total` are claimed.
//!
//! ```text
//!   next: AtomicU64 ──> worker k: i = next++ ; (class, req) = op.build(i)   untimed
//!                                  limiter.acquire()                        untimed
//!                                  t0 = Instant::now()                      monotonic
//!                                  op.send(req).await                       the RPC only
//!                                  recorder[class].ok(t0.elapsed()) / .error(msg)
//! ```
//!
//! The wall time runs from just before the workers start to the moment the last one is
//! done; connections are already made and checked (see `conn`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::latency_log::LatencyLog;
use crate::progress::Progress;
use crate::rate::RateLimiter;
use crate::report::{status_message, Recorder};

/// One worker's request maker and sender.
pub trait Op: Send + 'static {
    type Req: Send + Clone;

    /// The connection the worker sends on, for a new token when the server refuses its
    /// token (clientv3's retry interceptor); `None`: no retry.
    fn conn(&self) -> Option<&Conn> {
        None
    }

    /// Request number `i` and the report (class) it counts in; not timed.
    fn build(&mut self, i: u64) -> (usize, Self::Req);

    /// Sends one request and waits for its answer; this alone is timed.
    fn send(&mut self, req: Self::Req) -> impl Future<Output = Result<(), tonic::Status>> + Send;
}

/// What a run gives back: wall time, one merged recorder per class, and the workers
/// (for state they collected).
pub struct Run<O> {
    pub wall: Duration,
    pub recorders: Vec<Recorder>,
    pub ops: Vec<O>,
}

/// Runs `total` requests over the workers `ops` (one task each).
pub async fn run<O: Op>(
    ops: Vec<O>,
    total: u64,
    classes: usize,
    limiter: Option<Arc<RateLimiter>>,
    progress: Progress,
    log: &LatencyLog,
) -> Run<O> {
    assert!(!ops.is_empty(), "at least one worker");
    let workers = ops.len() as u64;
    let per_worker = (total / workers + 1) as usize;
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = ops
        .into_iter()
        .map(|mut op| {
            let next = next.clone();
            let limiter = limiter.clone();
            let progress = progress.clone();
            let mut worker_log = log.worker(start);
            tokio::spawn(async move {
                let mut recorders: Vec<Recorder> = (0..classes)
                    .map(|c| Recorder::with_capacity(if c == 0 { per_worker } else { 0 }))
                    .collect();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let (class, req) = op.build(i);
                    if let Some(limiter) = &limiter {
                        limiter.acquire().await;
                    }
                    let t0 = Instant::now();
                    let result = send(&mut op, req).await;
                    let latency = t0.elapsed();
                    match result {
                        Ok(()) => {
                            recorders[class].ok(latency);
                            worker_log.ok(t0, latency);
                        }
                        Err(status) => recorders[class].error(status_message(&status)),
                    }
                    progress.inc();
                }
                (op, recorders, worker_log)
            })
        })
        .collect();
    let mut recorders: Vec<Recorder> = (0..classes).map(|_| Recorder::default()).collect();
    let mut ops = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (op, worker, worker_log) = task.await.expect("bench worker panicked");
        log.add(worker_log);
        for (all, mine) in recorders.iter_mut().zip(worker) {
            all.merge(mine);
        }
        ops.push(op);
    }
    Run {
        wall: start.elapsed(),
        recorders,
        ops,
    }
}

/// `op.send(req)`; with credentials, a refused token is replaced (one login per
/// connection) and the request sent once more, the whole counted as one request.
async fn send<O: Op>(op: &mut O, req: O::Req) -> Result<(), tonic::Status> {
    let Some(seen) = op.conn().and_then(Conn::token_generation) else {
        return op.send(req).await;
    };
    let again = req.clone();
    match op.send(req).await {
        Err(status) if chorus_client::is_token_refused(&status) => {
            let conn = op.conn().expect("checked above").clone();
            if conn.refresh_token(seen).await.is_err() {
                return Err(status);
            }
            op.send(again).await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        calls: u64,
    }

    impl Op for Fake {
        type Req = u64;
        fn build(&mut self, i: u64) -> (usize, u64) {
            ((i % 2) as usize, i)
        }
        async fn send(&mut self, req: u64) -> Result<(), tonic::Status> {
            self.calls += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            if req % 10 == 9 {
                Err(tonic::Status::unavailable("etcdserver: no leader"))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn runs_exactly_total_requests_split_by_class() {
        let ops = (0..4).map(|_| Fake { calls: 0 }).collect();
        let run = run(
            ops,
            100,
            2,
            None,
            Progress::default(),
            &LatencyLog::default(),
        )
        .await;
        assert_eq!(run.ops.iter().map(|o| o.calls).sum::<u64>(), 100);
        // Even i: class 0 (50, none failing: i%10==9 is odd); odd i: class 1, 10 failing.
        assert_eq!(run.recorders[0].successes(), 50);
        assert_eq!(run.recorders[0].error_count(), 0);
        assert_eq!(run.recorders[1].successes(), 40);
        assert_eq!(run.recorders[1].error_count(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_run_takes_total_over_rate() {
        let ops = (0..3).map(|_| Fake { calls: 0 }).collect();
        let limiter = Arc::new(RateLimiter::new(50, 1));
        let start = tokio::time::Instant::now();
        let run = run(
            ops,
            101,
            2,
            Some(limiter),
            Progress::default(),
            &LatencyLog::default(),
        )
        .await;
        assert_eq!(run.ops.iter().map(|o| o.calls).sum::<u64>(), 101);
        // 100 intervals of 20 ms, plus the last request's 10 ms.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(2010) && elapsed <= Duration::from_millis(2030),
            "{elapsed:?}"
        );
    }
}
