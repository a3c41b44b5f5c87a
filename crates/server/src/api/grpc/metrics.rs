//! The gRPC side of `/metrics` (etcd's go-grpc-prometheus interceptors and its
//! `client_requests_total`): each call on the client port is counted as it starts, its
//! messages and bytes as its bodies go by, and its code when the status arrives (in the
//! response headers of a trailers-only reply, else in the trailers). A few atomic adds per
//! call and per frame; the clock is read only with `--metrics=extensive`. The JSON
//! gateway counts its calls here too ([`Call::begin`]), as etcd's gateway calls its own
//! gRPC server.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use chorus_metrics::grpc::{self, Kind, MessageCounter, STATS};
use chorus_metrics::{CLIENT_GRPC_RECEIVED_BYTES, CLIENT_GRPC_SENT_BYTES, CLIENT_REQUESTS};
use hyper::body::{Body as HttpBody, Frame, SizeHint};

/// One gRPC call being measured (dropped unfinished: the client went away, `Canceled`).
pub(crate) struct Call {
    slot: usize,
    started: Option<Instant>,
    done: bool,
}

/// gRPC's `Canceled` and `Unknown` codes.
const CANCELED: usize = 1;
const UNKNOWN: usize = 2;

impl Call {
    /// Counts the start of the call `req` is, if it is a known method, and wraps its body
    /// to count what the client sends.
    pub(crate) fn start<B>(req: http::Request<B>) -> (http::Request<Body>, Option<Call>)
    where
        B: HttpBody<Data = bytes::Bytes> + Send + Unpin + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let slot = grpc::method_index(req.uri().path());
        let call = slot.map(|slot| Call::begin(slot, client_api_version(&req)));
        let req = req.map(|inner| Body::new(Metered::new(inner, slot, Direction::Received)));
        (req, call)
    }

    /// Counts the start of a call to the method in `slot` from a client that sent
    /// `client_api_version` (`unknown` without it).
    pub(crate) fn begin(slot: usize, client_api_version: &str) -> Call {
        STATS[slot].started.inc();
        count_client_request(client_api_version, grpc::kind(slot));
        Call {
            slot,
            started: grpc::handling_time_enabled().then(Instant::now),
            done: false,
        }
    }

    /// One message of `bytes` (encoded) received from the client.
    pub(crate) fn received(&self, bytes: usize) {
        STATS[self.slot].msg_received.inc();
        CLIENT_GRPC_RECEIVED_BYTES.add(bytes as u64);
    }

    /// One message of `bytes` (encoded) sent to the client.
    pub(crate) fn sent(&self, bytes: usize) {
        STATS[self.slot].msg_sent.inc();
        CLIENT_GRPC_SENT_BYTES.add(bytes as u64);
    }

    /// The call ended with gRPC status `code`.
    pub(crate) fn end(mut self, code: tonic::Code) {
        self.record(code as usize);
    }

    /// Wraps the response: its status is read from the headers now, or from the trailers
    /// when the body ends.
    pub(crate) fn finish(mut self, resp: axum::response::Response) -> axum::response::Response {
        if let Some(code) = status_code(resp.headers()) {
            self.record(code);
        }
        let slot = self.slot;
        resp.map(|inner| {
            let mut body = Metered::new(inner, Some(slot), Direction::Sent);
            body.call = Some(self);
            Body::new(body)
        })
    }

    fn record(&mut self, code: usize) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let stats = &STATS[self.slot];
        stats.handled(code);
        if let Some(started) = self.started {
            stats.handling_seconds.observe_duration(started.elapsed());
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.record(CANCELED);
    }
}

// Prebuilt header names: a `&str` key is parsed again on every lookup.
const CLIENT_API_VERSION: http::HeaderName = http::HeaderName::from_static("client-api-version");
const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

fn client_api_version<B>(req: &http::Request<B>) -> &str {
    req.headers()
        .get(CLIENT_API_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
}

fn count_client_request(version: &str, kind: Kind) {
    let kind = if kind == Kind::Unary {
        "unary"
    } else {
        "stream"
    };
    CLIENT_REQUESTS.add([kind, version], 1);
}

fn status_code(headers: &http::HeaderMap) -> Option<usize> {
    let v = headers.get(GRPC_STATUS)?;
    Some(v.to_str().ok()?.parse().unwrap_or(UNKNOWN))
}

#[derive(Clone, Copy)]
enum Direction {
    Received,
    Sent,
}

/// A body that counts bytes and gRPC messages (and, for a response, records the call's
/// code when its trailers or its end go by).
struct Metered<B> {
    inner: B,
    slot: Option<usize>,
    direction: Direction,
    messages: MessageCounter,
    call: Option<Call>,
}

impl<B> Metered<B> {
    fn new(inner: B, slot: Option<usize>, direction: Direction) -> Metered<B> {
        Metered {
            inner,
            slot,
            direction,
            messages: MessageCounter::default(),
            call: None,
        }
    }

    fn count(&mut self, data: &[u8]) {
        let bytes = match self.direction {
            Direction::Received => &CLIENT_GRPC_RECEIVED_BYTES,
            Direction::Sent => &CLIENT_GRPC_SENT_BYTES,
        };
        bytes.add(data.len() as u64);
        let Some(slot) = self.slot else { return };
        let n = self.messages.feed(data);
        if n > 0 {
            match self.direction {
                Direction::Received => STATS[slot].msg_received.add(n),
                Direction::Sent => STATS[slot].msg_sent.add(n),
            }
        }
    }

    fn end(&mut self, trailers: Option<&http::HeaderMap>) {
        if let Some(call) = self.call.as_mut() {
            // No status in the headers nor the trailers: gRPC reads that as `Unknown`.
            call.record(trailers.and_then(status_code).unwrap_or(UNKNOWN));
        }
    }
}

impl<B> HttpBody for Metered<B>
where
    B: HttpBody<Data = bytes::Bytes> + Unpin,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.count(data);
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.end(Some(trailers));
                }
            }
            Poll::Ready(None) => this.end(None),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
