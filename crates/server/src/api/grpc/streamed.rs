//! How a streamed Range ([`crate::range_body`]) reaches the wire: the KV handler answers
//! tonic with an empty `RangeResponse` carrying the body in its extensions, and this
//! wrapper around the KV service puts that body in place of tonic's (headers stay
//! tonic's). The KV service is only ever served wrapped ([`super::kv::service`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use chorus_api::etcdserverpb::RangeResponse;
use futures::future::{MapOk, TryFutureExt as _};
use parking_lot::Mutex;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

use crate::range_body::StreamedRange;

/// A streamed body on its way from the handler to [`StreamedRanges`] (extensions must be
/// `Clone`; the body is taken once).
#[derive(Clone)]
struct StreamedBody(Arc<Mutex<Option<StreamedRange>>>);

/// The handler's answer for a streamed Range.
pub(crate) fn response(body: StreamedRange) -> tonic::Response<RangeResponse> {
    let mut resp = tonic::Response::new(RangeResponse::default());
    resp.extensions_mut()
        .insert(StreamedBody(Arc::new(Mutex::new(Some(body)))));
    resp
}

/// The KV service, with streamed Range bodies put in place.
#[derive(Clone)]
pub struct StreamedRanges<S>(pub(crate) S);

impl<S: NamedService> NamedService for StreamedRanges<S> {
    const NAME: &'static str = S::NAME;
}

type Swap = fn(http::Response<Body>) -> http::Response<Body>;

impl<S> Service<http::Request<Body>> for StreamedRanges<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = MapOk<S::Future, Swap>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        self.0.call(req).map_ok(swap as Swap)
    }
}

fn swap(mut resp: http::Response<Body>) -> http::Response<Body> {
    let body = resp
        .extensions_mut()
        .remove::<StreamedBody>()
        .and_then(|slot| slot.0.lock().take());
    if let Some(body) = body {
        *resp.body_mut() = Body::new(body);
    }
    resp
}
