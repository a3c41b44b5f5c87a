//! The members behind the proxy: one lazily connected channel per `--endpoints` entry
//! (from `chorus_client::Client`), the endpoint calls go to first, and fail-over.
//!
//! A call goes to the current endpoint; when that member cannot be reached (or, for
//! reads, answers `Unavailable`) it moves on to the next one, once around the list, and
//! the endpoint that answered becomes current. Writes move on only when the connection
//! could not be made, so a write is never applied twice (clientv3's rule, which etcd's
//! grpc-proxy inherits). When every member is down the caller gets the last
//! `Unavailable` at once: connections to a closed port are refused immediately.
//!
//! The caller's credentials travel as they came: the `token` metadata (etcd's auth
//! token), `authorization`, and `hasleader` (clientv3's require-leader flag).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chorus_api::etcdserverpb::{watch_client::WatchClient, WatchRequest, WatchResponse};
use chorus_client::AuthChannel as Channel;
use chorus_client::Client;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Status, Streaming};

/// Metadata keys copied from the client's call to the member's.
pub const FORWARDED_METADATA: [&str; 3] = ["token", "authorization", "hasleader"];

/// Whether a failed call may be sent to another member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads and streams: after `Unavailable` or any transport failure.
    Read,
    /// Writes: only when the connection could not be made.
    Write,
}

impl Retry {
    fn allows(self, status: &Status) -> bool {
        let err = chorus_client::Error::from(status.clone());
        match self {
            Retry::Read => status.code() == tonic::Code::Unavailable || err.is_transport_error(),
            Retry::Write => err.is_connect_error(),
        }
    }
}

/// The cluster as the proxy sees it. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    client: Client,
    current: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn new(client: Client) -> Upstream {
        Upstream {
            client,
            current: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The client over every endpoint (its own fail-over), for calls without metadata.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn endpoints(&self) -> &[String] {
        self.client.endpoints()
    }

    fn channel(&self, index: usize) -> Channel {
        self.client
            .for_endpoint(index)
            .expect("index below the endpoint count")
            .channel()
    }

    /// Runs `call` on the current endpoint's channel and, as `retry` allows, on the
    /// others in turn (each at most once).
    pub async fn call<T, F, Fut>(&self, retry: Retry, mut call: F) -> Result<T, Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let count = self.endpoints().len();
        let first = self.current.load(Ordering::Relaxed) % count;
        let mut attempt = 0;
        loop {
            let i = (first + attempt) % count;
            match call(self.channel(i)).await {
                Ok(response) => {
                    if i != first {
                        self.current.store(i, Ordering::Relaxed);
                    }
                    return Ok(response.into_inner());
                }
                Err(status) if attempt + 1 < count && retry.allows(&status) => {
                    tracing::debug!(
                        endpoint = %self.endpoints()[i],
                        error = %status.message(),
                        "failing over to the next endpoint"
                    );
                    attempt += 1;
                }
                Err(status) => {
                    if retry.allows(&status) {
                        // Every member failed: start from the next one next time.
                        self.current.store((i + 1) % count, Ordering::Relaxed);
                    }
                    return Err(status);
                }
            }
        }
    }
}

/// `message` as a request carrying the caller's forwarded metadata.
pub fn forward<M>(metadata: &MetadataMap, message: M) -> Request<M> {
    let mut request = Request::new(message);
    copy_metadata(metadata, request.metadata_mut());
    request
}

/// Copies the forwarded keys (every value of each) from `from` to `to`.
pub fn copy_metadata(from: &MetadataMap, to: &mut MetadataMap) {
    for key in FORWARDED_METADATA {
        for value in from.get_all(key) {
            to.append(key, value.clone());
        }
    }
}

/// The caller's auth token, when it sent one (part of cache keys).
pub fn token(metadata: &MetadataMap) -> &[u8] {
    metadata
        .get("token")
        .map(|v| v.as_bytes())
        .unwrap_or_default()
}

impl Upstream {
    /// Opens a watch stream with `create` as its first request, failing over like a read.
    /// The sender keeps the request side open (dropping it ends the member's watchers).
    pub async fn open_watch(
        &self,
        metadata: &MetadataMap,
        create: WatchRequest,
    ) -> Result<(mpsc::Sender<WatchRequest>, Streaming<WatchResponse>), Status> {
        self.call(Retry::Read, |ch| {
            let (tx, rx) = mpsc::channel(16);
            let sent = tx.try_send(create.clone());
            let request = forward(metadata, ReceiverStream::new(rx));
            async move {
                sent.map_err(|_| Status::internal("watch request channel closed"))?;
                let response = WatchClient::new(ch)
                    .max_decoding_message_size(usize::MAX)
                    .watch(request)
                    .await?;
                Ok(response.map(|stream| (tx, stream)))
            }
        })
        .await
    }
}
