//! `--rate`: a token bucket shared by all workers (etcd's tool shares one
//! `rate.Limiter` the same way), in its GCRA form so that it does not drift.
//!
//! The state is a theoretical arrival time `tat = epoch + count / rate`, computed in exact
//! integer nanoseconds from a fixed epoch, never by adding up sleeps: a late wake-up does
//! not push later tokens back. A token is granted at `tat - (capacity - 1) / rate`, and
//! `count` grows by one. When the bucket is full (`now >= tat`, the workers were idle or
//! slower than the rate) the schedule restarts at `now`: tokens a slow server could not
//! use are not paid out later as a burst beyond the capacity.
//!
//! Capacity is `burst` (etcd's tools use 1, `watch-latency` uses the rate), but at least
//! 5 ms worth of tokens: tokio's timer has 1 ms granularity, so at rates above a few
//! hundred per second a capacity of 1 would lose a token at nearly every wake-up and the
//! achieved rate would fall well below `--rate`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Timer slack the capacity covers (see the module doc).
const SLACK: Duration = Duration::from_millis(5);

#[derive(Debug)]
pub struct RateLimiter {
    rate: u64,
    capacity: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    epoch: Instant,
    count: u64,
}

impl RateLimiter {
    /// `rate` tokens per second (> 0), `burst` tokens at most at once (>= 1).
    pub fn new(rate: u64, burst: u64) -> RateLimiter {
        assert!(rate > 0, "rate must be positive");
        let slack_tokens = (rate as u128 * SLACK.as_nanos()).div_ceil(1_000_000_000) as u64;
        RateLimiter {
            rate,
            capacity: burst.max(1).max(slack_tokens),
            state: Mutex::new(State {
                epoch: Instant::now(),
                count: 0,
            }),
        }
    }

    /// `None` for rate 0 (etcd's "no limit").
    pub fn optional(rate: u64, burst: u64) -> Option<RateLimiter> {
        (rate > 0).then(|| RateLimiter::new(rate, burst))
    }

    /// Tokens the bucket holds at most.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Time of the `count`-th token after the epoch, in exact nanoseconds.
    fn offset(&self, count: u64) -> Duration {
        let nanos = count as u128 * 1_000_000_000 / self.rate as u128;
        Duration::from_nanos(nanos as u64)
    }

    /// The instant the next token may be used; `None` for "now". Takes the token.
    fn reserve(&self, now: Instant) -> Option<Instant> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let tat = st.epoch + self.offset(st.count);
        if now >= tat {
            // Full bucket: restart the schedule here.
            st.epoch = now;
            st.count = 1;
            return None;
        }
        let earliest = st.epoch + self.offset(st.count.saturating_sub(self.capacity - 1));
        st.count += 1;
        (earliest > now).then_some(earliest)
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        if let Some(at) = self.reserve(Instant::now()) {
            tokio::time::sleep_until(at).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn take(limiter: &RateLimiter, n: usize) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            limiter.acquire().await;
        }
        start.elapsed()
    }

    fn near(got: Duration, want: Duration, slack: Duration) {
        let diff = got.abs_diff(want);
        assert!(diff <= slack, "got {got:?}, want {want:?} ± {slack:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn paces_at_the_rate() {
        // 10/s, capacity 1: the first token at once, then one every 100 ms.
        let l = RateLimiter::new(10, 1);
        assert_eq!(l.capacity(), 1);
        near(
            take(&l, 11).await,
            Duration::from_secs(1),
            Duration::from_millis(2),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_drift_with_fractional_intervals_and_ms_timer() {
        // 3/s is 333_333_333.3 ns apart: 3001 tokens end at exactly 1000 s.
        let l = RateLimiter::new(3, 1);
        near(
            take(&l, 3001).await,
            Duration::from_secs(1000),
            Duration::from_millis(2),
        );
        // 7000/s (143 µs apart, below the 1 ms timer tick): 7000 more take 1 s, not ~7 s.
        let l = RateLimiter::new(7000, 1);
        let elapsed = take(&l, 7001).await;
        near(elapsed, Duration::from_secs(1), Duration::from_millis(6));
    }

    #[tokio::test(start_paused = true)]
    async fn shared_by_many_workers() {
        let l = Arc::new(RateLimiter::new(100, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move {
                    for _ in 0..100 {
                        l.acquire().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 1000 tokens at 100/s: 9.99 s (the first one is free).
        near(
            start.elapsed(),
            Duration::from_millis(9990),
            Duration::from_millis(2),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_paid_out_beyond_capacity() {
        let l = RateLimiter::new(10, 1);
        take(&l, 5).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        // After 10 s idle, capacity 1: one token at once, then 100 ms apart again.
        near(
            take(&l, 11).await,
            Duration::from_secs(1),
            Duration::from_millis(2),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn burst_is_granted_at_once() {
        // watch-latency's limiter: rate 100, burst 100.
        let l = RateLimiter::new(100, 100);
        near(take(&l, 100).await, Duration::ZERO, Duration::ZERO);
        near(
            take(&l, 100).await,
            Duration::from_secs(1),
            Duration::from_millis(2),
        );
    }

    #[test]
    fn no_limit_for_zero() {
        assert!(RateLimiter::optional(0, 1).is_none());
        assert!(RateLimiter::optional(5, 1).is_some());
        // Capacity covers 5 ms of tokens at high rates.
        assert_eq!(RateLimiter::new(10_000, 1).capacity(), 50);
        assert_eq!(RateLimiter::new(100, 1).capacity(), 1);
    }
}
