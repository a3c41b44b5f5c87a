//! Fewer, larger socket writes: a connection's first write after each flush waits one turn
//! of the runtime.
//!
//! The apply thread finishes proposals in batches and wakes every waiting handler at once.
//! Each handler hands its response to h2 and wakes the connection task, which tokio then
//! runs at once (the woken task takes the worker's LIFO slot): h2 flushes one response per
//! `writev`, and a connection with ten requests in flight makes ten system calls where one
//! would do (measured: 48,714 `writev` for 50,000 puts at 100 connections / 1,000 clients).
//!
//! ```text
//!  handler A ─response─▶ h2 ─poll_write─▶ Coalesce: first write of this round?
//!                                            yes ─▶ wake self, Pending (h2 keeps its buffer;
//!                                                   the task goes to the back of the queue)
//!  handlers B, C, … run, their responses join h2's buffer
//!  connection task again ─poll_write─▶ Coalesce ─▶ socket: A, B, C in one writev
//!                         ─poll_flush done─▶ next write starts a new round
//! ```
//!
//! Nothing is buffered here, and nothing waits for a timer: the write is put off by one
//! scheduling turn only (the task re-queued behind the tasks already runnable), and only
//! while other requests of the same connection are still being handled ([`InFlight`]): a
//! lone request's response goes out at once (putting it off too cost a second poll of the
//! connection for nothing: p99 0.18 -> 0.26 ms for one serializable range at a time).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The number of a connection's requests whose handlers have not finished yet.
#[derive(Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts one request until the guard is dropped (its handler finished or was dropped).
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.0.clone())
    }

    fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct Coalesce<S> {
    inner: S,
    in_flight: InFlight,
    /// This round's write was already put off once.
    deferred: bool,
}

impl<S> Coalesce<S> {
    pub fn new(inner: S, in_flight: InFlight) -> Self {
        Coalesce {
            inner,
            in_flight,
            deferred: false,
        }
    }

    /// Pending once per round while other requests are being handled, after asking to be
    /// polled again.
    fn defer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.deferred || !self.in_flight.any() {
            return Poll::Ready(());
        }
        self.deferred = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.defer(cx));
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.defer(cx));
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = ready!(Pin::new(&mut this.inner).poll_flush(cx));
        this.deferred = false;
        Poll::Ready(r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    use super::*;

    /// Records writes and flushes.
    #[derive(Default)]
    struct Sink {
        writes: Vec<Vec<u8>>,
        flushes: usize,
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[derive(Default)]
    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn write(c: &mut Coalesce<Sink>, cx: &mut Context<'_>, data: &[u8]) -> Poll<usize> {
        Pin::new(c).poll_write(cx, data).map(|r| r.unwrap())
    }

    #[test]
    fn a_lone_response_is_written_at_once() {
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesce::new(Sink::default(), InFlight::default());
        assert_eq!(write(&mut c, &mut cx, b"a"), Poll::Ready(1));
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_ready());
        assert_eq!(c.inner.writes, vec![b"a".to_vec()]);
        assert_eq!(wakes.0.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn with_requests_in_flight_each_round_waits_one_turn() {
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let in_flight = InFlight::default();
        let mut c = Coalesce::new(Sink::default(), in_flight.clone());
        let guard = in_flight.enter();
        // First write of the round: put off, with a wake-up so the task runs again.
        assert_eq!(write(&mut c, &mut cx, b"a"), Poll::Pending);
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
        assert!(c.inner.writes.is_empty());
        // Polled again: every write of the round goes through, then the flush ends it.
        assert_eq!(write(&mut c, &mut cx, b"ab"), Poll::Ready(2));
        assert_eq!(write(&mut c, &mut cx, b"c"), Poll::Ready(1));
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_ready());
        assert_eq!(c.inner.writes, vec![b"ab".to_vec(), b"c".to_vec()]);
        // The next round waits again.
        assert_eq!(write(&mut c, &mut cx, b"d"), Poll::Pending);
        assert_eq!(wakes.0.load(Ordering::Relaxed), 2);
        assert_eq!(write(&mut c, &mut cx, b"d"), Poll::Ready(1));
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_ready());
        // Once nothing is in flight, a round does not wait.
        drop(guard);
        assert_eq!(write(&mut c, &mut cx, b"e"), Poll::Ready(1));
        assert_eq!(wakes.0.load(Ordering::Relaxed), 2);
        assert_eq!(c.inner.flushes, 2);
    }
}
