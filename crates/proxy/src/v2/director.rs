//! etcd's httpproxy director: the members' client URLs, shuffled at each refresh; an
//! endpoint that fails a request is left out for `--proxy-failure-wait`, then retried.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::seq::SliceRandom as _;

/// etcd's default `--proxy-refresh-interval`; at or above it, an empty endpoint list is
/// refreshed every second instead.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_millis(30_000);

/// One member client URL.
#[derive(Debug)]
pub struct Endpoint {
    pub url: String,
    available: AtomicBool,
}

/// The endpoints requests are sent to.
pub struct Director {
    endpoints: Mutex<Vec<Arc<Endpoint>>>,
    failure_wait: Duration,
}

impl Director {
    pub fn new(failure_wait: Duration) -> Arc<Director> {
        Arc::new(Director {
            endpoints: Mutex::new(Vec::new()),
            failure_wait,
        })
    }

    /// Replaces the endpoints (all available again), shuffled so that clients do not all
    /// stick to one member.
    pub fn refresh(&self, urls: Vec<String>) {
        let mut eps: Vec<Arc<Endpoint>> = urls
            .into_iter()
            .map(|url| {
                Arc::new(Endpoint {
                    url,
                    available: AtomicBool::new(true),
                })
            })
            .collect();
        eps.shuffle(&mut rand::thread_rng());
        *self.endpoints.lock() = eps;
    }

    /// The endpoints not marked unavailable, in the current order.
    pub fn available(&self) -> Vec<Arc<Endpoint>> {
        self.endpoints
            .lock()
            .iter()
            .filter(|e| e.available.load(Ordering::Acquire))
            .cloned()
            .collect()
    }

    /// Every endpoint's URL (`/v2/config/local/proxy` lists the available ones).
    pub fn urls(&self) -> Vec<String> {
        self.available().iter().map(|e| e.url.clone()).collect()
    }

    /// A request to `ep` failed: leave it out for the failure wait.
    pub fn failed(&self, ep: &Arc<Endpoint>) {
        if !ep.available.swap(false, Ordering::AcqRel) {
            return;
        }
        tracing::info!(endpoint = %ep.url, "marked endpoint unavailable");
        let ep = ep.clone();
        let wait = self.failure_wait;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            ep.available.store(true, Ordering::Release);
            tracing::info!(endpoint = %ep.url, "marked endpoint available, to retest connectivity");
        });
    }

    /// How long to wait before the next refresh (etcd's rule for an empty list).
    pub fn next_refresh(&self, interval: Duration) -> Duration {
        if interval >= DEFAULT_REFRESH_INTERVAL && self.available().is_empty() {
            Duration::from_secs(1)
        } else {
            interval
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failed_endpoint_comes_back_after_the_failure_wait() {
        let d = Director::new(Duration::from_secs(5));
        d.refresh(vec!["http://a".into(), "http://b".into()]);
        let a = d
            .available()
            .into_iter()
            .find(|e| e.url == "http://a")
            .unwrap();
        d.failed(&a);
        assert_eq!(d.urls(), ["http://b"]);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(d.available().len(), 2);
    }

    #[test]
    fn an_empty_list_is_refreshed_every_second() {
        let d = Director::new(Duration::from_secs(5));
        assert_eq!(
            d.next_refresh(DEFAULT_REFRESH_INTERVAL),
            Duration::from_secs(1)
        );
        assert_eq!(
            d.next_refresh(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        d.refresh(vec!["http://a".into()]);
        assert_eq!(
            d.next_refresh(DEFAULT_REFRESH_INTERVAL),
            DEFAULT_REFRESH_INTERVAL
        );
    }
}
