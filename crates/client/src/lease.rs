//! Lease keep-alive: a sender of keep-alives and the stream of their answers.

use std::pin::Pin;
use std::task::{Context, Poll};

use chorus_api::etcdserverpb::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use futures::Stream;
use tokio::sync::mpsc;
use tonic::Streaming;

use crate::error::{Error, Result};

/// Sends keep-alives for one lease on its stream. Dropping it (and the stream) closes the
/// stream; the lease then lives until its TTL runs out.
#[derive(Clone)]
pub struct KeepAliveSender {
    id: i64,
    requests: mpsc::Sender<LeaseKeepAliveRequest>,
}

impl KeepAliveSender {
    pub(crate) fn new(id: i64, requests: mpsc::Sender<LeaseKeepAliveRequest>) -> Self {
        Self { id, requests }
    }

    /// The lease this sender keeps alive.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Sends one keep-alive; its answer arrives on the [`KeepAliveStream`].
    pub async fn keep_alive(&self) -> Result<()> {
        self.requests
            .send(LeaseKeepAliveRequest { id: self.id })
            .await
            .map_err(|_| Error::StreamClosed)
    }
}

/// Answers to keep-alives, in order. A `ttl` <= 0 means the lease no longer exists.
/// Also a [`Stream`] of `Result<LeaseKeepAliveResponse>`.
pub struct KeepAliveStream {
    responses: Streaming<LeaseKeepAliveResponse>,
}

impl KeepAliveStream {
    pub(crate) fn new(responses: Streaming<LeaseKeepAliveResponse>) -> Self {
        Self { responses }
    }

    /// The next answer; `Ok(None)` when the server closed the stream.
    pub async fn message(&mut self) -> Result<Option<LeaseKeepAliveResponse>> {
        Ok(self.responses.message().await?)
    }
}

impl Stream for KeepAliveStream {
    type Item = Result<LeaseKeepAliveResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.responses)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(Error::from)))
    }
}
