//! [`Client`]: endpoints, channels, fail-over and the typed calls.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chorus_api::etcdserverpb::{
    auth_client::AuthClient, cluster_client::ClusterClient, kv_client::KvClient,
    lease_client::LeaseClient, maintenance_client::MaintenanceClient, watch_client::WatchClient,
    CompactionRequest, CompactionResponse, DefragmentRequest, DefragmentResponse,
    DeleteRangeResponse, HashKvRequest, HashKvResponse, LeaseGrantRequest, LeaseGrantResponse,
    LeaseKeepAliveRequest, LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, MemberListRequest,
    MemberListResponse, PutResponse, RangeResponse, StatusRequest, StatusResponse, TxnRequest,
    TxnResponse, WatchRequest,
};
use chorus_api::{
    v3electionpb::election_client::ElectionClient, v3lockpb::lock_client::LockClient,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::auth::{AuthChannel, Credentials, TokenState};
use crate::error::{is_connect_error, is_transport_error, Error, Result};
use crate::kv::{txn_is_read_only, DeleteOptions, GetOptions, PutOptions};
use crate::lease::{KeepAliveSender, KeepAliveStream};
use crate::tls::{self, TlsOptions};
use crate::watch::{WatchOptions, WatchStream};

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Bound on establishing one TCP connection (etcdctl's `--dial-timeout`, default 2 s).
    pub dial_timeout: Duration,
    /// HTTP/2 PING interval on a connection with open calls. etcd's server rejects pings
    /// more often than every 5 s (`--grpc-keepalive-min-time`) with GOAWAY, so the
    /// default is 10 s, which is also grpc-go's floor for etcdctl's `--keepalive-time`.
    pub keep_alive_interval: Option<Duration>,
    /// Wait for a PING's answer before the connection counts as dead (default 6 s).
    pub keep_alive_timeout: Duration,
    /// Bound on each unary call, fail-over attempts included (default: none).
    pub request_timeout: Option<Duration>,
    /// Largest response accepted (default i32::MAX, as etcd's clientv3).
    pub max_decoding_message_size: usize,
    /// Transport security for scheme-less endpoints (`host:port`); `https://` endpoints
    /// use TLS anyway (these settings, or the system's CAs when `None`), `http://` ones
    /// never do, as etcd's clientv3 decides by scheme.
    pub tls: Option<TlsOptions>,
    /// etcd authentication: a token is fetched on connect and sent with every call, and
    /// fetched again when the server refuses it (see [`Credentials`]). As in clientv3, an
    /// empty user name or password means no authentication. `None`: no token is sent.
    pub credentials: Option<Credentials>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(2),
            keep_alive_interval: Some(Duration::from_secs(10)),
            keep_alive_timeout: Duration::from_secs(6),
            request_timeout: None,
            max_decoding_message_size: i32::MAX as usize,
            tls: None,
            credentials: None,
        }
    }
}

/// Whether a call may be sent again to another member after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads: resend after `Unavailable` from a server (`etcdserver: no leader`, ...) or
    /// any transport failure (refused, reset, broken pipe), as clientv3 does for reads.
    Immutable,
    /// Writes: resend only when the connection could not be made, so the request certainly
    /// never left; a write that failed in flight may have been applied and is not resent
    /// (clientv3's rule too).
    Mutable,
}

impl Retry {
    fn allows(self, status: &Status) -> bool {
        match self {
            Retry::Immutable => status.code() == Code::Unavailable || is_transport_error(status),
            Retry::Mutable => is_connect_error(status),
        }
    }
}

pub(crate) struct Inner {
    endpoints: Vec<String>,
    channels: Vec<Channel>,
    /// Index of the endpoint that answered last; calls start there.
    current: AtomicUsize,
    request_timeout: Option<Duration>,
    max_decoding_message_size: usize,
    /// Set when authenticating (both user name and password given).
    pub(crate) credentials: Option<Credentials>,
    /// The token every call carries; shared with the raw clients' interceptors.
    pub(crate) tokens: Arc<TokenState>,
}

/// An etcd v3 client over one or more endpoints of the same cluster. Cheap to clone; all
/// clones share the connections.
///
/// Each call goes to the current endpoint; when that member is unreachable (or, for reads,
/// answers `Unavailable`) it moves on to the next endpoint, once around the list, and the
/// endpoint that answers becomes current. Writes move on only when the connection could
/// not be made, so that a write is never applied twice.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    /// Set by `for_endpoint`: always this endpoint, no fail-over.
    pinned: Option<usize>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.endpoints)
            .field("current", &self.current_endpoint())
            .field("user", &self.user())
            .finish()
    }
}

/// An endpoint as given -> (whether it uses TLS, `host:port`). `tls` says whether a
/// scheme-less endpoint does.
fn split_endpoint(endpoint: &str, tls: bool) -> Result<(bool, String)> {
    let invalid = |reason: &str| Error::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let (tls, rest) = match endpoint.split_once("://") {
        Some(("http", rest)) => (false, rest),
        Some(("https", rest)) => (true, rest),
        Some((scheme, _)) => return Err(invalid(&format!("unsupported scheme {scheme:?}"))),
        None => (tls, endpoint),
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(invalid("expected host:port"));
    }
    Ok((tls, rest.to_owned()))
}

impl Client {
    /// Prepares one channel per endpoint. Connections are made on first use, so without
    /// credentials this succeeds while members are down and the first call reports an
    /// unreachable cluster. With [`ConnectOptions::credentials`] it authenticates first, as
    /// clientv3's `New` does: within `dial_timeout` ([`Error::Timeout`] if no member
    /// answers), failing with the server's error for wrong credentials; a server without
    /// authentication enabled is no error.
    pub async fn connect(endpoints: &[impl AsRef<str>], opts: ConnectOptions) -> Result<Client> {
        let dial_timeout = opts.dial_timeout;
        let client = Self::connect_lazy(endpoints, opts)?;
        if client.inner.credentials.is_some() {
            client.authenticate_within(dial_timeout).await?;
        }
        Ok(client)
    }

    /// [`Client::connect`] without any I/O: with credentials, no token is fetched yet.
    /// Call [`Client::authenticate`], or let the first call find out: the server refuses
    /// it (`etcdserver: user name is empty`), the client authenticates and sends it again.
    pub fn connect_lazy(endpoints: &[impl AsRef<str>], opts: ConnectOptions) -> Result<Client> {
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let mut urls = Vec::with_capacity(endpoints.len());
        let mut channels = Vec::with_capacity(endpoints.len());
        // One rustls configuration for every TLS endpoint, made on first need.
        let default_tls = TlsOptions::default();
        let tls_opts = opts.tls.as_ref().unwrap_or(&default_tls);
        let mut tls_config = None;
        for endpoint in endpoints {
            let endpoint = endpoint.as_ref();
            let (use_tls, authority) = split_endpoint(endpoint, opts.tls.is_some())?;
            let invalid = |e: tonic::transport::Error| Error::InvalidEndpoint {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            };
            let mut ep = Endpoint::from_shared(format!("http://{authority}"))
                .map_err(invalid)?
                .connect_timeout(opts.dial_timeout)
                .keep_alive_timeout(opts.keep_alive_timeout)
                .tcp_nodelay(true);
            if let Some(interval) = opts.keep_alive_interval {
                ep = ep.http2_keep_alive_interval(interval);
            }
            if !use_tls {
                channels.push(ep.connect_lazy());
                urls.push(format!("http://{authority}"));
                continue;
            }
            let config = match &tls_config {
                Some(c) => Arc::clone(c),
                None => tls_config
                    .insert(tls_opts.client_config(&[tls::ALPN_H2])?)
                    .clone(),
            };
            let origin = format!("https://{authority}");
            let ep = ep.origin(origin.parse().map_err(|e: http::uri::InvalidUri| {
                Error::InvalidEndpoint {
                    endpoint: endpoint.to_owned(),
                    reason: e.to_string(),
                }
            })?);
            let connector = tls::TlsConnect::new(config, tls_opts.server_name_for(&authority)?);
            channels.push(ep.connect_with_connector_lazy(connector));
            urls.push(origin);
        }
        Ok(Client {
            inner: Arc::new(Inner {
                endpoints: urls,
                channels,
                current: AtomicUsize::new(0),
                request_timeout: opts.request_timeout,
                max_decoding_message_size: opts.max_decoding_message_size,
                credentials: opts.credentials.filter(Credentials::usable),
                tokens: Arc::default(),
            }),
            pinned: None,
        })
    }

    /// The endpoints as dialled (`http://host:port` or `https://host:port`).
    pub fn endpoints(&self) -> &[String] {
        &self.inner.endpoints
    }

    /// The endpoint the next call goes to first.
    pub fn current_endpoint(&self) -> &str {
        &self.inner.endpoints[self.current_index()]
    }

    /// A client bound to endpoint `index` only (no fail-over), sharing this client's
    /// connection: for per-member calls such as `status()` of each member.
    pub fn for_endpoint(&self, index: usize) -> Option<Client> {
        (index < self.inner.endpoints.len()).then(|| Client {
            inner: self.inner.clone(),
            pinned: Some(index),
        })
    }

    /// Makes the next endpoint current (after the current one failed outside
    /// [`Client`]'s own calls, e.g. through a raw client). No-op on a pinned client.
    pub fn advance(&self) {
        if self.pinned.is_none() {
            let n = self.inner.endpoints.len();
            let _ = self
                .inner
                .current
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some((c + 1) % n));
        }
    }

    fn current_index(&self) -> usize {
        self.pinned
            .unwrap_or_else(|| self.inner.current.load(Ordering::Relaxed))
    }

    /// The channel to the current endpoint, for the raw clients; its calls carry the
    /// client's token.
    pub fn channel(&self) -> AuthChannel {
        self.authed(self.inner.channels[self.current_index()].clone())
    }

    // The raw tonic clients below send the token but are not retried on a refused token
    // by themselves: wrap their calls in `with_token_retry` for that.

    pub fn kv_client(&self) -> KvClient<AuthChannel> {
        KvClient::new(self.channel())
            .max_decoding_message_size(self.inner.max_decoding_message_size)
    }

    pub fn watch_client(&self) -> WatchClient<AuthChannel> {
        WatchClient::new(self.channel())
            .max_decoding_message_size(self.inner.max_decoding_message_size)
    }

    pub fn lease_client(&self) -> LeaseClient<AuthChannel> {
        LeaseClient::new(self.channel())
    }

    pub fn cluster_client(&self) -> ClusterClient<AuthChannel> {
        ClusterClient::new(self.channel())
    }

    pub fn maintenance_client(&self) -> MaintenanceClient<AuthChannel> {
        MaintenanceClient::new(self.channel())
            .max_decoding_message_size(self.inner.max_decoding_message_size)
    }

    pub fn auth_client(&self) -> AuthClient<AuthChannel> {
        AuthClient::new(self.channel())
    }

    pub fn lock_client(&self) -> LockClient<AuthChannel> {
        LockClient::new(self.channel())
    }

    pub fn election_client(&self) -> ElectionClient<AuthChannel> {
        ElectionClient::new(self.channel())
    }

    /// Runs `call` (see [`Client::attempts`]) under the request timeout; a refused token is
    /// replaced and the call made once more.
    async fn call<T, F, Fut>(&self, retry: Retry, mut call: F) -> Result<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.with_timeout(async {
            let seen = self.inner.tokens.generation();
            match self.attempts(retry, &mut call).await {
                Err(e) if self.is_token_error(&e) => {
                    self.refresh_token(seen).await?;
                    self.attempts(retry, &mut call).await
                }
                other => other,
            }
        })
        .await
    }

    /// `fut` bounded by `ConnectOptions::request_timeout`.
    pub(crate) async fn with_timeout<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match self.inner.request_timeout {
            Some(limit) => tokio::time::timeout(limit, fut)
                .await
                .map_err(|_| Error::Timeout(limit))?,
            None => fut.await,
        }
    }

    /// Runs `call` against the current endpoint and, while `retry` allows, the others in
    /// turn (each at most once). The endpoint that answers becomes current. `call` gets
    /// the raw channel: wrap it with `authed` for calls that carry the token.
    pub(crate) async fn attempts<T, F, Fut>(&self, retry: Retry, mut call: F) -> Result<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let (first, count) = match self.pinned {
            Some(i) => (i, 1),
            None => (self.current_index(), self.inner.channels.len()),
        };
        let mut attempt = 0;
        loop {
            let i = (first + attempt) % self.inner.channels.len();
            match call(self.inner.channels[i].clone()).await {
                Ok(response) => {
                    if self.pinned.is_none() && i != first {
                        self.inner.current.store(i, Ordering::Relaxed);
                    }
                    return Ok(response.into_inner());
                }
                Err(status) if attempt + 1 < count && retry.allows(&status) => {
                    tracing::debug!(
                        endpoint = %self.inner.endpoints[i],
                        error = %status.message(),
                        "failing over to the next endpoint"
                    );
                    attempt += 1;
                }
                Err(status) => return Err(Error::from(status)),
            }
        }
    }

    fn kv(&self, channel: Channel) -> KvClient<AuthChannel> {
        KvClient::new(self.authed(channel))
            .max_decoding_message_size(self.inner.max_decoding_message_size)
    }

    /// Range read: `key` alone, or the range the options describe.
    pub async fn get(&self, key: impl Into<Vec<u8>>, opts: GetOptions) -> Result<RangeResponse> {
        let flags = [opts.prefix, opts.from_key, opts.range_end.is_some()];
        if flags.iter().filter(|&&f| f).count() > 1 {
            return Err(Error::InvalidArgs(
                "at most one of prefix, from_key and range_end".into(),
            ));
        }
        let req = opts.to_request(key);
        self.call(Retry::Immutable, |ch| {
            let req = req.clone();
            async move { self.kv(ch).range(req).await }
        })
        .await
    }

    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        opts: PutOptions,
    ) -> Result<PutResponse> {
        let req = opts.to_request(key, value);
        self.call(Retry::Mutable, |ch| {
            let req = req.clone();
            async move { self.kv(ch).put(req).await }
        })
        .await
    }

    pub async fn delete(
        &self,
        key: impl Into<Vec<u8>>,
        opts: DeleteOptions,
    ) -> Result<DeleteRangeResponse> {
        let flags = [opts.prefix, opts.from_key, opts.range_end.is_some()];
        if flags.iter().filter(|&&f| f).count() > 1 {
            return Err(Error::InvalidArgs(
                "at most one of prefix, from_key and range_end".into(),
            ));
        }
        let req = opts.to_request(key);
        self.call(Retry::Mutable, |ch| {
            let req = req.clone();
            async move { self.kv(ch).delete_range(req).await }
        })
        .await
    }

    /// A transaction (see [`crate::Txn`]). Read-only transactions fail over like reads.
    pub async fn txn(&self, txn: impl Into<TxnRequest>) -> Result<TxnResponse> {
        let req = txn.into();
        let retry = if txn_is_read_only(&req) {
            Retry::Immutable
        } else {
            Retry::Mutable
        };
        self.call(retry, |ch| {
            let req = req.clone();
            async move { self.kv(ch).txn(req).await }
        })
        .await
    }

    /// Discards history below `revision`; `physical` waits until the backend has done so.
    pub async fn compact(&self, revision: i64, physical: bool) -> Result<CompactionResponse> {
        let req = CompactionRequest { revision, physical };
        self.call(Retry::Mutable, |ch| async move {
            self.kv(ch).compact(req).await
        })
        .await
    }

    /// Maintenance.Status of the member answering (use `for_endpoint` to pick one).
    pub async fn status(&self) -> Result<StatusResponse> {
        self.call(Retry::Immutable, |ch| async move {
            MaintenanceClient::new(self.authed(ch))
                .status(StatusRequest {})
                .await
        })
        .await
    }

    /// Maintenance.Defragment of the member answering (use `for_endpoint` to pick one).
    pub async fn defragment(&self) -> Result<DefragmentResponse> {
        self.call(Retry::Immutable, |ch| async move {
            MaintenanceClient::new(self.authed(ch))
                .defragment(DefragmentRequest {})
                .await
        })
        .await
    }

    /// Hash of the MVCC key space up to `revision` (0 = current).
    pub async fn hash_kv(&self, revision: i64) -> Result<HashKvResponse> {
        self.call(Retry::Immutable, |ch| async move {
            MaintenanceClient::new(self.authed(ch))
                .hash_kv(HashKvRequest { revision })
                .await
        })
        .await
    }

    pub async fn member_list(&self) -> Result<MemberListResponse> {
        self.call(Retry::Immutable, |ch| async move {
            ClusterClient::new(self.authed(ch))
                .member_list(MemberListRequest::default())
                .await
        })
        .await
    }

    /// Grants a lease of `ttl` seconds; `id` 0 lets the server choose the ID.
    pub async fn lease_grant(&self, ttl: i64, id: i64) -> Result<LeaseGrantResponse> {
        let req = LeaseGrantRequest { ttl, id };
        self.call(Retry::Mutable, |ch| async move {
            LeaseClient::new(self.authed(ch)).lease_grant(req).await
        })
        .await
    }

    /// Revokes a lease, deleting its keys.
    pub async fn lease_revoke(&self, id: i64) -> Result<LeaseRevokeResponse> {
        self.call(Retry::Mutable, |ch| async move {
            LeaseClient::new(self.authed(ch))
                .lease_revoke(LeaseRevokeRequest { id })
                .await
        })
        .await
    }

    /// Remaining TTL of a lease (`ttl` -1 when it does not exist); `keys` lists its keys.
    pub async fn lease_time_to_live(&self, id: i64, keys: bool) -> Result<LeaseTimeToLiveResponse> {
        self.call(Retry::Immutable, |ch| async move {
            LeaseClient::new(self.authed(ch))
                .lease_time_to_live(LeaseTimeToLiveRequest { id, keys })
                .await
        })
        .await
    }

    /// Every live lease.
    pub async fn leases(&self) -> Result<LeaseLeasesResponse> {
        self.call(Retry::Immutable, |ch| async move {
            LeaseClient::new(self.authed(ch))
                .lease_leases(LeaseLeasesRequest {})
                .await
        })
        .await
    }

    /// Opens a keep-alive stream for lease `id` and sends its first keep-alive, whose
    /// answer is the stream's first message. Send more with the returned sender.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<(KeepAliveSender, KeepAliveStream)> {
        let (sender, responses) = self
            .call(Retry::Immutable, |ch| async move {
                let (tx, rx) = mpsc::channel(4);
                tx.send(LeaseKeepAliveRequest { id })
                    .await
                    .map_err(|_| Status::internal("keep-alive request channel closed"))?;
                let response = LeaseClient::new(self.authed(ch))
                    .lease_keep_alive(ReceiverStream::new(rx))
                    .await?;
                Ok(response.map(|stream| (tx, stream)))
            })
            .await?;
        Ok((
            KeepAliveSender::new(id, sender),
            KeepAliveStream::new(responses),
        ))
    }

    /// Watches `key` (or the range the options describe). Returns once the server has
    /// confirmed the watcher; events follow on the stream. The watch stays on the member
    /// it was created on: if that member goes away the stream ends with an error, and the
    /// caller watches again from the last revision it saw + 1.
    ///
    /// The server checks the token when the watcher is created and refuses a stale one by
    /// cancelling it (`etcdserver: invalid auth token`; etcd 3.5 says `etcdserver:
    /// permission denied` for that too): a client with credentials then gets a new token
    /// and tries once more, where clientv3 fetches a new token for every stream.
    pub async fn watch(&self, key: impl Into<Vec<u8>>, opts: WatchOptions) -> Result<WatchStream> {
        let create = opts.to_request(key);
        let seen = self.inner.tokens.generation();
        match self.watch_once(&create).await {
            Err(e) if self.is_watch_token_error(&e) => {
                self.refresh_token(seen).await?;
                self.watch_once(&create).await
            }
            other => other,
        }
    }

    /// A watcher refused for its token. etcd words the reason as a gRPC error (`rpc error:
    /// code = Unauthenticated desc = etcdserver: invalid auth token`).
    fn is_watch_token_error(&self, err: &Error) -> bool {
        let Error::WatchCanceled { reason, .. } = err else {
            return false;
        };
        let message = reason
            .strip_prefix("rpc error: code = ")
            .and_then(|rest| rest.split_once(" desc = "))
            .map_or(reason.as_str(), |(_, desc)| desc);
        self.inner.credentials.is_some()
            && (message == crate::messages::PERMISSION_DENIED
                || crate::auth::is_token_refused(&Status::unauthenticated(message)))
    }

    async fn watch_once(&self, create: &WatchRequest) -> Result<WatchStream> {
        let max = self.inner.max_decoding_message_size;
        let (requests, responses, created) = self
            .call(Retry::Immutable, |ch| {
                let create = create.clone();
                async move {
                    let (tx, rx) = mpsc::channel(16);
                    tx.send(create)
                        .await
                        .map_err(|_| Status::internal("watch request channel closed"))?;
                    let mut stream = WatchClient::new(self.authed(ch))
                        .max_decoding_message_size(max)
                        .watch(ReceiverStream::new(rx))
                        .await?
                        .into_inner();
                    let created = stream
                        .message()
                        .await?
                        .ok_or_else(|| Status::unavailable("watch stream closed before created"))?;
                    Ok(tonic::Response::new((tx, stream, created)))
                }
            })
            .await?;
        if created.canceled || !created.created {
            return Err(Error::WatchCanceled {
                reason: created.cancel_reason,
                compact_revision: created.compact_revision,
            });
        }
        Ok(WatchStream::new(requests, responses, created))
    }
}
