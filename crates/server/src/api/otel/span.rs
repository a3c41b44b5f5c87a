//! One server span per gRPC request (otelgrpc's `UnaryServerInterceptor` and
//! `StreamServerInterceptor`): named after the method path without its leading `/`,
//! parented by the caller's W3C `traceparent`, ended when the response body ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use http_body::{Frame, SizeHint};
use opentelemetry::propagation::{Extractor, TextMapCompositePropagator, TextMapPropagator as _};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SdkTracer, Span};

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The span of one call, until [`TracedCall::finish`] hands it to the response body.
pub struct TracedCall(Span);

/// Starts the span of a gRPC request (`peer`: the client's `ip:port`, if known).
pub fn start<B>(tracer: &SdkTracer, req: &http::Request<B>, peer: Option<&str>) -> TracedCall {
    let propagator = TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]);
    let parent = propagator.extract(&HeaderExtractor(req.headers()));
    let name = req.uri().path().trim_start_matches('/').to_string();
    let (service, method) = name.split_once('/').unwrap_or((name.as_str(), ""));
    let mut attributes = vec![
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.service", service.to_string()),
        KeyValue::new("rpc.method", method.to_string()),
    ];
    if let Some((ip, port)) = peer.and_then(|p| p.rsplit_once(':')) {
        attributes.push(KeyValue::new("net.peer.ip", ip.to_string()));
        attributes.push(KeyValue::new("net.peer.port", port.to_string()));
    }
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    TracedCall(span)
}

impl TracedCall {
    /// The response, its body carrying the span to its end. A status already in the
    /// headers (a trailers-only error) is recorded at once.
    pub fn finish(self, resp: axum::response::Response) -> axum::response::Response {
        let mut span = self.0;
        if let Some(code) = grpc_status(resp.headers()) {
            record_status(&mut span, code);
        }
        resp.map(|inner| Body::new(TracedBody { inner, span }))
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i64> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

fn record_status(span: &mut Span, code: i64) {
    span.set_attribute(KeyValue::new("rpc.grpc.status_code", code));
    if code != 0 {
        span.set_status(Status::error(format!("grpc status {code}")));
    }
}

/// A response body that ends its span when it ends (or is dropped: the client left).
struct TracedBody {
    inner: Body,
    span: Span,
}

impl http_body::Body for TracedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                record_status(&mut self.span, code);
            }
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
