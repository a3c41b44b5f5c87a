//! A progress bar on stderr, drawn only when stderr is a terminal (so pipes, CI logs and
//! `-w json | jq` stay clean). Workers bump an atomic counter; a plain thread redraws the
//! line five times a second, so drawing costs the workers nothing.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WIDTH: u64 = 40;
const REDRAW: Duration = Duration::from_millis(200);

struct Inner {
    done: AtomicU64,
    total: u64,
    stop: AtomicBool,
}

/// Cheap to clone; every clone counts into the same bar. Inert when not on a terminal.
#[derive(Clone, Default)]
pub struct Progress {
    inner: Option<Arc<Inner>>,
}

/// Owns the drawing thread; `finish` draws the final state and ends the line.
pub struct ProgressBar {
    progress: Progress,
    thread: Option<JoinHandle<()>>,
}

impl ProgressBar {
    /// A bar to `total`, drawn if stderr is a terminal.
    pub fn start(total: u64) -> ProgressBar {
        Self::start_if(std::io::stderr().is_terminal(), total)
    }

    pub fn start_if(enabled: bool, total: u64) -> ProgressBar {
        if !enabled {
            return ProgressBar {
                progress: Progress::default(),
                thread: None,
            };
        }
        let inner = Arc::new(Inner {
            done: AtomicU64::new(0),
            total,
            stop: AtomicBool::new(false),
        });
        let drawn = inner.clone();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let start = Instant::now();
                while !drawn.stop.load(Ordering::Relaxed) {
                    draw(&drawn, start, false);
                    std::thread::sleep(REDRAW);
                }
                draw(&drawn, start, true);
            })
            .ok();
        ProgressBar {
            progress: Progress { inner: Some(inner) },
            thread,
        }
    }

    /// A handle for the workers.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(inner) = &self.progress.inner {
            inner.stop.store(true, Ordering::Relaxed);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Progress {
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        if let Some(inner) = &self.inner {
            inner.done.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counted so far (0 when inert).
    pub fn done(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.done.load(Ordering::Relaxed))
    }
}

fn draw(inner: &Inner, start: Instant, last: bool) {
    let line = render(
        inner.done.load(Ordering::Relaxed),
        inner.total,
        start.elapsed(),
    );
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{line}");
    if last {
        let _ = writeln!(err);
    }
    let _ = err.flush();
}

/// ` 123 / 1000 [=====>      ]  12.30% 1s`
pub fn render(done: u64, total: u64, elapsed: Duration) -> String {
    let shown = done.min(total);
    let filled = (shown * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let mut bar = "=".repeat(filled as usize);
    if filled < WIDTH {
        bar.push('>');
        bar.push_str(&" ".repeat((WIDTH - filled - 1) as usize));
    }
    let pct = if total == 0 {
        100.0
    } else {
        shown as f64 * 100.0 / total as f64
    };
    format!(
        "{done:>w$} / {total} [{bar}] {pct:6.2}% {}s",
        elapsed.as_secs(),
        w = total.to_string().len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_bar() {
        let s = render(25, 100, Duration::from_secs(3));
        assert_eq!(
            s,
            " 25 / 100 [==========>                             ]  25.00% 3s"
        );
        let s = render(100, 100, Duration::ZERO);
        assert!(s.contains(&format!("[{}]", "=".repeat(40))), "{s}");
        assert!(s.contains("100.00%"));
    }

    #[test]
    fn inert_when_disabled() {
        let bar = ProgressBar::start_if(false, 10);
        let p = bar.progress();
        p.inc();
        assert_eq!(p.done(), 0);
        bar.finish();
    }
}
