//! Member-to-member transport over the peer URLs: a gRPC service (`peerpb.Raft`) with one
//! long-lived stream of raft messages per peer and a streaming call per snapshot.
//!
//! ```text
//!  raft thread ─send()─► per-peer queue ─► peer task ─► Raft.Stream (batches) ─► remote Step
//!  apply thread ─send_snapshot()─► dump thread ─► Raft.Snapshot chunks ─► remote: restore
//!                                   into snap/<index>.snap.db, then Step(MsgSnap)
//! ```
//! A full queue or a broken connection drops messages and reports the peer unreachable;
//! raft retries.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::mailbox::Sender;
use chorus_api::etcdserverpb::{LeaseTimeToLiveRequest, LeaseTimeToLiveResponse};
use chorus_api::peerpb::raft_client::RaftClient;
use chorus_api::peerpb::raft_server::{Raft, RaftServer};
use chorus_api::peerpb::{
    Ack, LeaseRenewRequest, LeaseRenewResponse, MembersRequest, MembersResponse, ProbeRequest,
    ProbeResponse, PromoteRequest, RaftBatch, SnapshotChunk,
};
use chorus_storage::backend::{Backend, BackendOptions};
use parking_lot::RwLock;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::config::Url;
use crate::error::EtcdError;
use crate::raft::{RaftInput, Transport};
use crate::server::{snapshot_db_path, Server};
use crate::v2::stats::AppendTraffic;

/// The member the peer service answers lease requests for (set once it exists).
type ServerHandle = Arc<std::sync::OnceLock<std::sync::Weak<Server>>>;

const QUEUE: usize = 4096;
const MAX_BATCH_BYTES: usize = 4 << 20;
const MAX_MESSAGE: usize = 256 << 20;
const CHUNK: usize = 1 << 20;

struct Peer {
    urls: Vec<String>,
    tx: mpsc::Sender<Message>,
}

pub struct PeerTransport {
    id: u64,
    cluster_id: u64,
    _stop_listeners: tokio::sync::watch::Sender<bool>,
    server: ServerHandle,
    peers: RwLock<HashMap<u64, Peer>>,
    /// Lazily connected clients for requests to a peer (lease forwarding).
    clients: parking_lot::Mutex<HashMap<u64, RaftClient<tonic::transport::Channel>>>,
    dialer: PeerDialer,
    raft_tx: Sender<RaftInput>,
    rt: tokio::runtime::Handle,
    /// Append requests sent and received (`/v2/stats/self`).
    traffic: Arc<AppendTraffic>,
}

impl PeerTransport {
    /// The append requests this member sent and received.
    pub fn traffic(&self) -> &AppendTraffic {
        &self.traffic
    }

    /// Binds the peer listeners and serves the peer protocol on them.
    pub async fn start(
        id: u64,
        cluster_id: u64,
        listen: &[Url],
        snap_dir: PathBuf,
        backend_opts: BackendOptions,
        raft_tx: Sender<RaftInput>,
        dialer: PeerDialer,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Arc<PeerTransport>, String> {
        let server: ServerHandle = Default::default();
        let traffic = Arc::new(AppendTraffic::default());
        let service = PeerService {
            id,
            cluster_id,
            traffic: traffic.clone(),
            raft_tx: raft_tx.clone(),
            snap_dir,
            backend_opts,
            server: server.clone(),
        };
        let listeners =
            crate::serve::bind_listeners("--listen-peer-urls", listen, tls.is_some()).await?;
        let svc = RaftServer::new(service)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let router = tonic::service::Routes::new(svc)
            .prepare()
            .into_axum_router();
        // The peer listeners stop when the transport is dropped.
        let (stop_listeners, stopped) = tokio::sync::watch::channel(false);
        for (url, listener) in listeners {
            tracing::info!("listening for peers on {url}");
            tokio::spawn(crate::serve::serve_listener(
                listener,
                crate::serve::RouterService(router.clone()),
                tls.clone(),
                Some((Duration::from_secs(5), Duration::from_secs(5))),
                stopped.clone(),
            ));
        }
        Ok(Arc::new(PeerTransport {
            id,
            cluster_id,
            _stop_listeners: stop_listeners,
            server,
            peers: RwLock::new(HashMap::new()),
            clients: Default::default(),
            dialer: dialer.clone(),
            raft_tx,
            rt: tokio::runtime::Handle::current(),
            traffic,
        }))
    }

    /// Starts (or re-points) the connection to a member.
    pub fn add_peer(&self, id: u64, urls: &[String]) {
        let mut peers = self.peers.write();
        if peers.get(&id).is_some_and(|p| p.urls == urls) {
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        peers.insert(
            id,
            Peer {
                urls: urls.to_vec(),
                tx,
            },
        );
        let link = Link {
            dialer: self.dialer.clone(),
            from: self.id,
            to: id,
            cluster_id: self.cluster_id,
            urls: urls.to_vec(),
            raft_tx: self.raft_tx.clone(),
        };
        self.rt.spawn(link.run(rx));
    }

    pub fn remove_peer(&self, id: u64) {
        self.peers.write().remove(&id);
        self.clients.lock().remove(&id);
    }

    /// Lets the peer service answer lease requests for this member.
    pub fn set_server(&self, server: std::sync::Weak<Server>) {
        let _ = self.server.set(server);
    }

    fn client(&self, id: u64) -> Result<RaftClient<tonic::transport::Channel>, EtcdError> {
        if let Some(c) = self.clients.lock().get(&id) {
            return Ok(c.clone());
        }
        let url = self
            .peers
            .read()
            .get(&id)
            .and_then(|p| p.urls.first().cloned())
            .ok_or_else(|| EtcdError::Unavailable(format!("no peer URL for member {id:x}")))?;
        let channel = self.dialer.lazy(&url).map_err(EtcdError::Unavailable)?;
        let client = RaftClient::new(channel);
        self.clients.lock().insert(id, client.clone());
        Ok(client)
    }

    fn forwarded(s: Status) -> EtcdError {
        match s.code() {
            tonic::Code::NotFound => EtcdError::LeaseNotFound,
            _ => EtcdError::Unavailable(s.message().to_string()),
        }
    }

    /// Forwards a keep-alive to the leader.
    pub async fn lease_renew(&self, leader: u64, id: i64) -> Result<i64, EtcdError> {
        let mut c = self.client(leader)?;
        let req = LeaseRenewRequest {
            cluster_id: self.cluster_id,
            id,
        };
        match c.lease_renew(req).await {
            Ok(r) => Ok(r.into_inner().ttl),
            Err(s) => Err(Self::forwarded(s)),
        }
    }

    /// Forwards a learner promotion to the leader.
    pub async fn promote(
        &self,
        leader: u64,
        member_id: u64,
    ) -> Result<Vec<chorus_api::internalpb::Member>, EtcdError> {
        let mut c = self.client(leader)?;
        let req = PromoteRequest {
            cluster_id: self.cluster_id,
            member_id,
        };
        match c.promote(req).await {
            Ok(r) => Ok(r.into_inner().members),
            Err(s) => Err(EtcdError::from_status(&s)),
        }
    }

    /// Forwards a time-to-live request to the leader.
    pub async fn lease_time_to_live(
        &self,
        leader: u64,
        req: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, EtcdError> {
        let mut c = self.client(leader)?;
        match c.lease_time_to_live(req).await {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(Self::forwarded(s)),
        }
    }

    /// Streams a snapshot message and the backend dump taken in `tx` to its recipient.
    pub fn send_snapshot(&self, msg: Message, tx: redb::ReadTransaction) {
        let to = msg.to;
        let Some(urls) = self.peers.read().get(&to).map(|p| p.urls.clone()) else {
            let _ = self
                .raft_tx
                .send(RaftInput::ReportSnapshot { to, ok: false });
            return;
        };
        let (from, cluster_id, raft_tx) = (self.id, self.cluster_id, self.raft_tx.clone());
        let dialer = self.dialer.clone();
        self.rt.spawn(async move {
            let ok = match send_snapshot(&dialer, from, cluster_id, &urls, msg, tx).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(to = %format!("{to:x}"), "failed to send snapshot: {e}");
                    false
                }
            };
            let _ = raft_tx.send(RaftInput::ReportSnapshot { to, ok });
        });
    }
}

impl Transport for PeerTransport {
    fn send(&self, msgs: Vec<Message>) {
        let peers = self.peers.read();
        for m in msgs {
            let to = m.to;
            match peers.get(&to) {
                Some(p) => {
                    if m.get_msg_type() == MessageType::MsgAppend {
                        self.traffic.sent(m.compute_size() as usize);
                    }
                    if p.tx.try_send(m).is_err() {
                        let _ = self.raft_tx.send(RaftInput::ReportUnreachable(to));
                    }
                }
                None => {
                    tracing::debug!(to = %format!("{to:x}"), "message to an unknown member dropped")
                }
            }
        }
    }
}

/// How this member dials its peers: plain TCP, or TLS with the peer certificate.
#[derive(Clone, Default)]
pub struct PeerDialer {
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl PeerDialer {
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        PeerDialer { tls }
    }

    fn endpoint(&self, url: &str) -> Result<tonic::transport::Endpoint, String> {
        // TLS is done by our connector, so the endpoint itself is always plain.
        let plain = url
            .strip_prefix("https://")
            .map_or_else(|| url.to_string(), |rest| format!("http://{rest}"));
        Ok(tonic::transport::Endpoint::from_shared(plain)
            .map_err(|e| format!("{url}: {e}"))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5)))
    }

    fn connector(
        &self,
    ) -> impl tower::Service<
        http::Uri,
        Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
        Error = std::io::Error,
        Future = impl Send,
    > + Clone
           + Send {
        let cfg = self.tls.clone().expect("TLS dialer");
        tower::service_fn(move |uri: http::Uri| {
            let cfg = cfg.clone();
            async move {
                let host = uri
                    .host()
                    .unwrap_or("localhost")
                    .trim_matches(['[', ']'])
                    .to_string();
                let port = uri.port_u16().unwrap_or(2380);
                let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                let name = rustls::pki_types::ServerName::try_from(host)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let tls = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        })
    }

    /// A connected channel to one of `urls`.
    pub async fn connect(&self, urls: &[String]) -> Result<tonic::transport::Channel, String> {
        let mut last = String::from("no peer URLs");
        for url in urls {
            let endpoint = match self.endpoint(url) {
                Ok(e) => e,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let result = if self.tls.is_some() {
                endpoint.connect_with_connector(self.connector()).await
            } else {
                endpoint.connect().await
            };
            match result {
                Ok(ch) => return Ok(ch),
                Err(e) => last = format!("{url}: {e}"),
            }
        }
        Err(last)
    }

    /// A channel that connects on first use.
    pub fn lazy(&self, url: &str) -> Result<tonic::transport::Channel, String> {
        let endpoint = self.endpoint(url)?;
        Ok(if self.tls.is_some() {
            endpoint.connect_with_connector_lazy(self.connector())
        } else {
            endpoint.connect_lazy()
        })
    }
}

async fn connect(
    dialer: &PeerDialer,
    urls: &[String],
) -> Result<RaftClient<tonic::transport::Channel>, String> {
    let ch = dialer.connect(urls).await?;
    Ok(RaftClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// One direction of traffic to one peer.
struct Link {
    dialer: PeerDialer,
    from: u64,
    to: u64,
    cluster_id: u64,
    urls: Vec<String>,
    raft_tx: Sender<RaftInput>,
}

impl Link {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut backoff = Duration::from_millis(50);
        let mut pending: Option<Message> = None;
        loop {
            let mut client = match connect(&self.dialer, &self.urls).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(to = %format!("{:x}", self.to), "peer unreachable: {e}");
                    // Nothing can be delivered: drop what is queued and tell raft.
                    pending = None;
                    while rx.try_recv().is_ok() {}
                    let _ = self.raft_tx.send(RaftInput::ReportUnreachable(self.to));
                    if rx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = Duration::from_millis(50);
            let (btx, brx) = mpsc::channel::<RaftBatch>(16);
            let call = tokio::spawn(async move { client.stream(ReceiverStream::new(brx)).await });
            loop {
                let first = match pending.take() {
                    Some(m) => m,
                    None => match rx.recv().await {
                        Some(m) => m,
                        None => return,
                    },
                };
                let mut size = 0;
                let mut messages = Vec::new();
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    match m.write_to_bytes() {
                        Ok(b) => {
                            size += b.len();
                            messages.push(b);
                        }
                        Err(e) => tracing::error!("encode raft message: {e}"),
                    }
                    if size >= MAX_BATCH_BYTES {
                        break;
                    }
                    next = rx.try_recv().ok();
                }
                let batch = RaftBatch {
                    cluster_id: self.cluster_id,
                    from: self.from,
                    to: self.to,
                    messages,
                };
                if btx.send(batch).await.is_err() {
                    break;
                }
            }
            let result = call.await;
            tracing::debug!(to = %format!("{:x}", self.to), "peer stream ended: {result:?}");
            let _ = self.raft_tx.send(RaftInput::ReportUnreachable(self.to));
        }
    }
}

/// Sends backend dump bytes as chunks over a channel (runs on a blocking thread).
struct ChunkWriter {
    tx: mpsc::Sender<SnapshotChunk>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(SnapshotChunk {
                data,
                ..Default::default()
            })
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "snapshot stream closed")
            })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_chunk()
    }
}

async fn send_snapshot(
    dialer: &PeerDialer,
    from: u64,
    cluster_id: u64,
    urls: &[String],
    msg: Message,
    tx: redb::ReadTransaction,
) -> Result<(), String> {
    let mut client = connect(dialer, urls).await?;
    let (ctx, crx) = mpsc::channel::<SnapshotChunk>(4);
    ctx.send(SnapshotChunk {
        cluster_id,
        from,
        to: msg.to,
        message: msg.write_to_bytes().map_err(|e| e.to_string())?,
        data: Vec::new(),
    })
    .await
    .map_err(|e| e.to_string())?;
    let producer = tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter {
            tx: ctx,
            buf: Vec::with_capacity(CHUNK),
        };
        Backend::dump(&tx, &mut w).map_err(|e| e.to_string())?;
        w.flush().map_err(|e| e.to_string())
    });
    let call = client.snapshot(ReceiverStream::new(crx)).await;
    let produced = producer.await.map_err(|e| e.to_string())?;
    call.map_err(|s| s.message().to_string())?;
    produced
}

#[derive(Clone)]
struct PeerService {
    id: u64,
    cluster_id: u64,
    /// Counts the append requests received.
    traffic: Arc<AppendTraffic>,
    raft_tx: Sender<RaftInput>,
    snap_dir: PathBuf,
    backend_opts: BackendOptions,
    server: ServerHandle,
}

impl PeerService {
    fn server(&self) -> Result<Arc<Server>, Status> {
        self.server
            .get()
            .and_then(|w| w.upgrade())
            .ok_or_else(|| Status::unavailable("member is starting or stopping"))
    }

    /// Lease requests are answered only by the leader's lessor.
    fn leader(&self) -> Result<Arc<Server>, Status> {
        let server = self.server()?;
        if !server.lessor.lock().is_primary() {
            return Err(Status::failed_precondition("etcdserver: not leader"));
        }
        Ok(server)
    }

    fn check(&self, cluster_id: u64, to: u64) -> Result<(), Status> {
        if cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster ID mismatch: request from cluster {cluster_id:x}, this member is in {:x}",
                self.cluster_id
            )));
        }
        if to != self.id {
            return Err(Status::failed_precondition(format!(
                "member ID mismatch: message for {to:x}, this member is {:x}",
                self.id
            )));
        }
        Ok(())
    }
}

/// Reads the dump from chunks arriving on a channel (runs on a blocking thread).
struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: std::io::Cursor<Vec<u8>>,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.cur.read(out)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(data) => self.cur = std::io::Cursor::new(data),
                None => return Ok(0),
            }
        }
    }
}

#[tonic::async_trait]
impl Raft for PeerService {
    async fn stream(&self, req: Request<Streaming<RaftBatch>>) -> Result<Response<Ack>, Status> {
        let mut stream = req.into_inner();
        while let Some(batch) = stream.message().await? {
            self.check(batch.cluster_id, batch.to)?;
            for raw in batch.messages {
                let m = Message::parse_from_bytes(&raw)
                    .map_err(|e| Status::invalid_argument(format!("raft message: {e}")))?;
                if m.get_msg_type() == MessageType::MsgAppend {
                    self.traffic.received(raw.len());
                }
                if self.raft_tx.send(RaftInput::Step(m)).is_err() {
                    return Err(Status::unavailable("member is stopping"));
                }
            }
        }
        Ok(Response::new(Ack {}))
    }

    async fn snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Ack>, Status> {
        let mut stream = req.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        self.check(first.cluster_id, first.to)?;
        let msg = Message::parse_from_bytes(&first.message)
            .map_err(|e| Status::invalid_argument(format!("raft message: {e}")))?;
        let index = msg.get_snapshot().get_metadata().index;
        let path = snapshot_db_path(&self.snap_dir, index);
        let (dtx, drx) = mpsc::channel::<Vec<u8>>(4);
        let opts = self.backend_opts.clone();
        let restore_path = path.clone();
        let restore = tokio::task::spawn_blocking(move || {
            let mut reader = ChunkReader {
                rx: drx,
                cur: std::io::Cursor::new(Vec::new()),
            };
            Backend::restore(&mut reader, &restore_path, &opts).map(drop)
        });
        if !first.data.is_empty() && dtx.send(first.data).await.is_err() {
            return Err(Status::internal("snapshot restore stopped"));
        }
        while let Some(chunk) = stream.message().await? {
            if dtx.send(chunk.data).await.is_err() {
                break;
            }
        }
        drop(dtx);
        restore
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(format!("restore snapshot {}: {e}", path.display())))?;
        tracing::info!(index, "received snapshot");
        self.raft_tx
            .send(RaftInput::Step(msg))
            .map_err(|_| Status::unavailable("member is stopping"))?;
        Ok(Response::new(Ack {}))
    }

    async fn lease_renew(
        &self,
        req: Request<LeaseRenewRequest>,
    ) -> Result<Response<LeaseRenewResponse>, Status> {
        let req = req.into_inner();
        if req.cluster_id != self.cluster_id {
            return Err(Status::failed_precondition("cluster ID mismatch"));
        }
        let server = self.leader()?;
        // The follower that forwards this may have applied the grant before the leader
        // did: answer only once everything committed is applied here (as the local path).
        server.wait_applied_commit().await?;
        let ttl = server.lessor.lock().renew(req.id)?;
        Ok(Response::new(LeaseRenewResponse { ttl }))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = req.into_inner();
        let server = self.leader()?;
        server.wait_applied_commit().await?;
        let info = server
            .lessor
            .lock()
            .time_to_live(req.id, req.keys)
            .ok_or(EtcdError::LeaseNotFound)?;
        Ok(Response::new(LeaseTimeToLiveResponse {
            header: None,
            id: req.id,
            ttl: info.remaining,
            granted_ttl: info.granted,
            keys: info.keys,
        }))
    }

    async fn members(
        &self,
        _req: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let server = self.server()?;
        let cluster = server.cluster();
        let removed = crate::membership::removed_ids(server.kv().backend())
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(MembersResponse {
            cluster_id: self.cluster_id,
            members: cluster.members.values().cloned().collect(),
            removed,
        }))
    }

    async fn promote(
        &self,
        req: Request<PromoteRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let req = req.into_inner();
        if req.cluster_id != self.cluster_id {
            return Err(Status::failed_precondition("cluster ID mismatch"));
        }
        let server = self.server()?;
        if !server.is_leader() {
            // Never forward twice: the caller retries against the new leader.
            return Err(EtcdError::NotLeader.into());
        }
        let members = server.member_promote(req.member_id).await?;
        Ok(Response::new(MembersResponse {
            cluster_id: self.cluster_id,
            members,
            removed: Vec::new(),
        }))
    }

    async fn probe(&self, req: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        let req = req.into_inner();
        if req.cluster_id != 0 && req.cluster_id != self.cluster_id {
            return Err(Status::failed_precondition("cluster ID mismatch"));
        }
        Ok(Response::new(ProbeResponse {
            cluster_id: self.cluster_id,
            member_id: self.id,
            version: crate::config::CHORUS_VERSION.to_string(),
        }))
    }
}
