//! Time for token expiry, injectable so tests move it by hand instead of sleeping. Apply
//! never reads it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    /// Monotonic time since an arbitrary origin (simple-token TTLs).
    fn monotonic(&self) -> Duration;
    /// Seconds since the Unix epoch (JWT `exp`).
    fn unix_secs(&self) -> u64;
}

/// The real clocks.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn unix_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicU64,
    unix_origin: u64,
}

impl ManualClock {
    /// Starts at monotonic zero and at `unix_origin` seconds since the epoch.
    pub fn new(unix_origin: u64) -> ManualClock {
        ManualClock {
            nanos: AtomicU64::new(0),
            unix_origin,
        }
    }

    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    fn unix_secs(&self) -> u64 {
        self.unix_origin + self.monotonic().as_secs()
    }
}
