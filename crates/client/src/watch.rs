//! Watch: options and the stream of [`WatchResponse`]s of one watcher.

use std::pin::Pin;
use std::task::{Context, Poll};

use chorus_api::etcdserverpb::{
    watch_create_request::FilterType, watch_request::RequestUnion, WatchCancelRequest,
    WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use futures::Stream;
use tokio::sync::mpsc;
use tonic::Streaming;

use crate::error::{Error, Result};
use crate::kv::key_range;

/// Options of a watch (`Client::watch`). Defaults: just `key`, from the next revision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchOptions {
    /// Every key starting with the key.
    pub prefix: bool,
    /// Every key >= the key.
    pub from_key: bool,
    /// Explicit exclusive end of the range.
    pub range_end: Option<Vec<u8>>,
    /// First revision to deliver, inclusive (0 = after the current one).
    pub start_revision: i64,
    /// Include the previous key-value in each event.
    pub prev_kv: bool,
    /// Ask the server for periodic empty responses while idle.
    pub progress_notify: bool,
    /// Leave out PUT events.
    pub filter_put: bool,
    /// Leave out DELETE events.
    pub filter_delete: bool,
    /// Requested watcher ID (0 = the server assigns one).
    pub watch_id: i64,
    /// Allow the server to split a large revision over several responses.
    pub fragment: bool,
}

impl WatchOptions {
    /// The stream message that creates this watcher on `key`.
    pub fn to_request(&self, key: impl Into<Vec<u8>>) -> WatchRequest {
        let (key, range_end) = key_range(
            key.into(),
            self.prefix,
            self.from_key,
            self.range_end.as_deref(),
        );
        let mut filters = Vec::new();
        if self.filter_put {
            filters.push(FilterType::Noput as i32);
        }
        if self.filter_delete {
            filters.push(FilterType::Nodelete as i32);
        }
        WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key,
                range_end,
                start_revision: self.start_revision,
                progress_notify: self.progress_notify,
                filters,
                prev_kv: self.prev_kv,
                watch_id: self.watch_id,
                fragment: self.fragment,
            })),
        }
    }
}

/// One watcher's responses, in order. Also a [`Stream`] of `Result<WatchResponse>`.
/// Dropping it closes the gRPC stream, which ends the watcher on the server.
pub struct WatchStream {
    requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
    created: WatchResponse,
}

impl WatchStream {
    pub(crate) fn new(
        requests: mpsc::Sender<WatchRequest>,
        responses: Streaming<WatchResponse>,
        created: WatchResponse,
    ) -> Self {
        Self {
            requests,
            responses,
            created,
        }
    }

    /// The watcher's ID on the server.
    pub fn watch_id(&self) -> i64 {
        self.created.watch_id
    }

    /// The server's `created` response; its header's revision is the store revision at
    /// creation.
    pub fn created(&self) -> &WatchResponse {
        &self.created
    }

    /// The next response: events, a progress notification, or the final `canceled` one.
    /// `Ok(None)` when the server closed the stream.
    pub async fn message(&mut self) -> Result<Option<WatchResponse>> {
        Ok(self.responses.message().await?)
    }

    /// Asks the server to cancel the watcher; its `canceled` response follows on the stream.
    pub async fn cancel(&mut self) -> Result<()> {
        let watch_id = self.watch_id();
        self.send(RequestUnion::CancelRequest(WatchCancelRequest { watch_id }))
            .await
    }

    /// Asks the server for a progress notification (a response without events whose
    /// header revision is a lower bound of revisions still to come).
    pub async fn request_progress(&mut self) -> Result<()> {
        self.send(RequestUnion::ProgressRequest(WatchProgressRequest {}))
            .await
    }

    async fn send(&self, request: RequestUnion) -> Result<()> {
        let request = WatchRequest {
            request_union: Some(request),
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| Error::StreamClosed)
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.responses)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(Error::from)))
    }
}
