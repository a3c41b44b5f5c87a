//! The CPU profile: pprof-rs samples every thread's stack on SIGPROF (setitimer at
//! 100 Hz, Go's rate) while a `profile` request waits, then symbolizes the stacks and
//! encodes them as pprof's `Profile` protobuf, gzipped as Go writes it. One profile at a
//! time, as Go's `StartCPUProfile`.

use std::io::Write as _;
use std::time::Duration;

use axum::http::StatusCode;
use pprof::protos::Message as _;

/// Go's sampling rate (`runtime.SetCPUProfileRate(100)`).
const FREQUENCY_HZ: i32 = 100;
/// Go's default `seconds`.
const DEFAULT_SECONDS: u64 = 30;
/// chorus's bound on one profile (Go bounds it by the server's WriteTimeout, which etcd
/// leaves unset).
pub const MAX_SECONDS: u64 = 3600;
/// Frames inside these libraries are not unwound: unwinding from a signal that landed
/// in them can deadlock (pprof-rs's advice).
const BLOCKLIST: [&str; 4] = ["libc", "libgcc", "pthread", "vdso"];

/// `?seconds=N`: like Go, a missing, malformed or non-positive value means 30.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ProfileRequest {
    seconds: Option<String>,
}

impl ProfileRequest {
    pub fn duration(&self) -> Result<Duration, ProfileError> {
        let secs = self
            .seconds
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|s| *s > 0)
            .map_or(DEFAULT_SECONDS, |s| s as u64);
        if secs > MAX_SECONDS {
            return Err(ProfileError::TooLong(secs));
        }
        Ok(Duration::from_secs(secs))
    }
}

/// Why a profile could not be taken (the text Go's handler writes, where it has one).
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile duration of {0}s exceeds chorus's limit of {MAX_SECONDS}s")]
    TooLong(u64),
    #[error("Could not enable CPU profiling: cpu profiling already in use")]
    Busy,
    #[error("Could not enable CPU profiling: {0}")]
    Start(pprof::Error),
    #[error("Could not write the CPU profile: {0}")]
    Report(pprof::Error),
    #[error("Could not write the CPU profile: {0}")]
    Encode(#[from] std::io::Error),
}

impl ProfileError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProfileError::TooLong(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One profile at a time in the process (pprof-rs's profiler is a process-wide singleton).
static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Samples for `duration` and returns the gzipped pprof protobuf. Dropping the future
/// (the client went away) stops the profiler at once.
pub async fn capture(duration: Result<Duration, ProfileError>) -> Result<Vec<u8>, ProfileError> {
    let duration = duration?;
    let _one = RUNNING.try_lock().map_err(|_| ProfileError::Busy)?;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY_HZ)
        .blocklist(&BLOCKLIST)
        .build()
        .map_err(ProfileError::Start)?;
    tokio::time::sleep(duration).await;
    tokio::task::spawn_blocking(move || encode(&guard))
        .await
        .map_err(|e| ProfileError::Encode(std::io::Error::other(e)))?
}

fn encode(guard: &pprof::ProfilerGuard<'static>) -> Result<Vec<u8>, ProfileError> {
    let report = guard.report().build().map_err(ProfileError::Report)?;
    let profile = report.pprof().map_err(ProfileError::Report)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&profile.encode_to_vec())?;
    Ok(gz.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: Option<&str>) -> Result<Duration, ProfileError> {
        ProfileRequest {
            seconds: s.map(str::to_string),
        }
        .duration()
    }

    #[test]
    fn seconds_as_go_reads_them() {
        assert_eq!(secs(None).unwrap(), Duration::from_secs(30));
        assert_eq!(secs(Some("x")).unwrap(), Duration::from_secs(30));
        assert_eq!(secs(Some("0")).unwrap(), Duration::from_secs(30));
        assert_eq!(secs(Some("-3")).unwrap(), Duration::from_secs(30));
        assert_eq!(secs(Some("2")).unwrap(), Duration::from_secs(2));
        assert!(matches!(
            secs(Some("3601")),
            Err(ProfileError::TooLong(3601))
        ));
    }
}
