//! etcd's `NewTimeoutTransport` for the v2 proxy: a TCP dial bounded by
//! `--proxy-dial-timeout`, and on the connection every read bounded by
//! `--proxy-read-timeout` and every write by `--proxy-write-timeout` (0: unbounded), as
//! Go's per-call deadlines do.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// The three timeouts (`None`: no bound).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub dial: Option<Duration>,
    pub read: Option<Duration>,
    pub write: Option<Duration>,
}

/// A stream whose pending reads and writes fail with `TimedOut` after their timeout.
pub struct TimeoutIo {
    inner: TcpStream,
    timeouts: Timeouts,
    read_deadline: Option<Pin<Box<Sleep>>>,
    write_deadline: Option<Pin<Box<Sleep>>>,
}

fn expired(
    deadline: &mut Option<Pin<Box<Sleep>>>,
    timeout: Option<Duration>,
    cx: &mut Context<'_>,
) -> bool {
    let Some(t) = timeout else { return false };
    let sleep = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(t)));
    sleep.as_mut().poll(cx).is_ready()
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timeout"))
}

impl AsyncRead for TimeoutIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending if expired(&mut this.read_deadline, this.timeouts.read, cx) => {
                Poll::Ready(Err(timed_out("read")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl TimeoutIo {
    fn poll_write_op<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(r) => {
                self.write_deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending if expired(&mut self.write_deadline, self.timeouts.write, cx) => {
                Poll::Ready(Err(timed_out("write")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TimeoutIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_op(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_write_op(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connection for TimeoutIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// The connector of the proxy's HTTP client: plain TCP to `http://` member URLs.
#[derive(Clone, Copy, Debug)]
pub struct TimeoutConnector(pub Timeouts);

type Connecting = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TimeoutIo>>> + Send>>;

impl tower::Service<http::Uri> for TimeoutConnector {
    type Response = TokioIo<TimeoutIo>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let timeouts = self.0;
        Box::pin(async move {
            if uri.scheme_str() != Some("http") {
                return Err(std::io::Error::other(format!(
                    "{uri}: chorus's v2 proxy dials http:// member URLs only"
                )));
            }
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            let addr = format!("{host}:{}", uri.port_u16().unwrap_or(80));
            let dial = TcpStream::connect(addr);
            let inner = match timeouts.dial {
                Some(t) => tokio::time::timeout(t, dial)
                    .await
                    .map_err(|_| timed_out("dial"))??,
                None => dial.await?,
            };
            inner.set_nodelay(true)?;
            Ok(TokioIo::new(TimeoutIo {
                inner,
                timeouts,
                read_deadline: None,
                write_deadline: None,
            }))
        })
    }
}
