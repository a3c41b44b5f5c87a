//! Member-to-member transport over the peer URLs: a gRPC service (`peerpb.Raft`) with one
//! long-lived stream of raft messages per peer and a streaming call per snapshot, plus
//! the requests a follower forwards to the leader (lease keep-alive and time-to-live,
//! learner promotion).
//!
//! ```text
//!  raft thread ─send()─► per-peer queue ─► Link task ─► Raft.Stream (batches) ─► remote Step
//!  apply thread ─send_snapshot()─► dump thread ─► Raft.Snapshot chunks ─► remote: restore
//!                                   into snap/<index>.snap.db, then Step(MsgSnap)
//!  member ─lease_renew / promote ─► leader's PeerService ─► its PeerHandler (the member)
//!  prober (one per peer) ─► Raft.Probe every 30 s ─► peer_round_trip_time_seconds
//! ```
//! A full queue or a broken connection drops messages and reports the peer unreachable;
//! raft retries. The outgoing side ([`PeerTransport`]) exists before the member (raft
//! needs it); the serving side ([`serve`]) is started once the member can answer.

mod dialer;
mod link;
mod prober;
mod service;
mod snapshot;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_api::etcdserverpb::{LeaseTimeToLiveRequest, LeaseTimeToLiveResponse};
use chorus_api::peerpb::raft_client::RaftClient;
use chorus_api::peerpb::raft_server::RaftServer;
use chorus_api::peerpb::{LeaseRenewRequest, PromoteRequest};
use parking_lot::{Mutex, RwLock};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::mpsc;
use tonic::Status;

pub use dialer::{AskMembersError, DialError, PeerDialer};
pub use service::{PeerHandler, PeerService, PeerServiceConfig};
pub use snapshot::SendSnapshotError;

use crate::error::EtcdError;
use crate::mailbox::Sender;
use crate::net::{ListenerOptions, RouterService};
use crate::raft::{RaftInput, Transport};
use crate::v2::stats::AppendTraffic;

/// Messages queued per peer before raft hears the peer is unreachable.
const QUEUE: usize = 4096;

/// How often an idle peer connection is pinged (HTTP/2 PING), from both ends; the
/// default for how long an answer may take (etcd's rafthttp deadlines, 5 s).
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

struct Peer {
    urls: Vec<String>,
    tx: mpsc::Sender<Message>,
}

/// The outgoing side: one [`link::Link`] per peer, and clients for forwarded requests.
pub struct PeerTransport {
    id: u64,
    cluster_id: u64,
    peers: RwLock<HashMap<u64, Peer>>,
    /// Lazily connected clients for requests to a peer (lease forwarding).
    clients: Mutex<HashMap<u64, RaftClient<tonic::transport::Channel>>>,
    dialer: PeerDialer,
    raft_tx: Sender<RaftInput>,
    rt: tokio::runtime::Handle,
    /// Append requests sent and received (`/v2/stats/self`).
    traffic: Arc<AppendTraffic>,
}

impl PeerTransport {
    pub fn new(
        id: u64,
        cluster_id: u64,
        dialer: PeerDialer,
        raft_tx: Sender<RaftInput>,
    ) -> Arc<PeerTransport> {
        Arc::new(PeerTransport {
            id,
            cluster_id,
            peers: RwLock::new(HashMap::new()),
            clients: Default::default(),
            dialer,
            raft_tx,
            rt: tokio::runtime::Handle::current(),
            traffic: Arc::new(AppendTraffic::default()),
        })
    }

    /// The append requests this member sent and received.
    pub fn traffic(&self) -> &Arc<AppendTraffic> {
        &self.traffic
    }

    /// Starts (or re-points) the connection to a member.
    pub fn add_peer(&self, id: u64, urls: &[String]) {
        let mut peers = self.peers.write();
        if peers.get(&id).is_some_and(|p| p.urls == urls) {
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let urls = urls.to_vec();
        let prober = prober::Prober {
            dialer: self.dialer.clone(),
            from: self.id,
            to: id,
            cluster_id: self.cluster_id,
            urls: urls.clone(),
            alive: tx.downgrade(),
        };
        self.rt.spawn(prober.run());
        peers.insert(
            id,
            Peer {
                urls: urls.clone(),
                tx,
            },
        );
        let link = link::Link {
            dialer: self.dialer.clone(),
            from: self.id,
            to: id,
            cluster_id: self.cluster_id,
            urls,
            raft_tx: self.raft_tx.clone(),
        };
        self.rt.spawn(link.run(rx));
    }

    pub fn remove_peer(&self, id: u64) {
        self.peers.write().remove(&id);
        self.clients.lock().remove(&id);
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
        let channel = self
            .dialer
            .lazy(&url)
            .map_err(|e| EtcdError::Unavailable(e.to_string()))?;
        let client = RaftClient::new(channel);
        self.clients.lock().insert(id, client.clone());
        Ok(client)
    }

    /// A lease request the leader answered with an error.
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

    /// A peer's hash of its keys at `revision` (or of its compaction there), as the
    /// corruption checks ask for it.
    pub async fn hash_kv(
        &self,
        peer: u64,
        revision: i64,
        compaction: bool,
    ) -> Result<chorus_api::etcdserverpb::HashKvResponse, EtcdError> {
        let mut c = self.client(peer)?;
        let req = chorus_api::peerpb::PeerHashKvRequest {
            cluster_id: self.cluster_id,
            revision,
            compaction,
        };
        match c.hash_kv(req).await {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(EtcdError::from_status(&s)),
        }
    }

    /// What a peer answers on its probe: the etcd server version it runs as and the
    /// cluster version it knows (etcd's peer `/version`).
    pub async fn versions(
        &self,
        peer: u64,
    ) -> Result<chorus_api::peerpb::ProbeResponse, EtcdError> {
        let mut c = self.client(peer)?;
        let req = chorus_api::peerpb::ProbeRequest {
            cluster_id: self.cluster_id,
            from: self.id,
        };
        match c.probe(req).await {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(EtcdError::from_status(&s)),
        }
    }

    /// Streams a snapshot message and the backend dump taken in `tx` to its recipient;
    /// raft hears how it went.
    pub fn send_snapshot(&self, msg: Message, tx: redb::ReadTransaction) {
        let to = msg.to;
        let Some(urls) = self.peers.read().get(&to).map(|p| p.urls.clone()) else {
            let _ = self
                .raft_tx
                .send(RaftInput::ReportSnapshot { to, ok: false });
            return;
        };
        let envelope = snapshot::Envelope {
            from: self.id,
            cluster_id: self.cluster_id,
        };
        let (raft_tx, dialer) = (self.raft_tx.clone(), self.dialer.clone());
        self.rt.spawn(async move {
            let (inflight, started) = (chorus_metrics::SNAPSHOT_SEND.start(to), Instant::now());
            let ok = match snapshot::send(&dialer, envelope, &urls, msg, tx).await {
                Ok(()) => {
                    inflight.succeeded(started.elapsed());
                    true
                }
                Err(e) => {
                    inflight.failed();
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
                    let heartbeat = m.get_msg_type() == MessageType::MsgHeartbeat;
                    if p.tx.try_send(m).is_err() {
                        count_send_failure(to, heartbeat);
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

/// A message the peer's queue had no room for (etcd: a failed send, and for a heartbeat
/// a sign of an overloaded leader).
fn count_send_failure(to: u64, heartbeat: bool) {
    chorus_metrics::PEER_SENT_FAILURES.add([&chorus_metrics::peer_label(to)], 1);
    if heartbeat {
        chorus_metrics::HEARTBEAT_SEND_FAILURES.inc();
    }
}

/// Serves the peer protocol on every bound peer listener until `opts.shutdown`.
pub fn serve<H: PeerHandler>(
    listeners: Vec<(chorus_config::Url, crate::net::Listener)>,
    service: PeerService<H>,
    opts: ListenerOptions,
) -> Vec<tokio::task::JoinHandle<()>> {
    let svc = RaftServer::new(service)
        .max_decoding_message_size(dialer::MAX_MESSAGE)
        .max_encoding_message_size(dialer::MAX_MESSAGE);
    let router = tonic::service::Routes::new(svc)
        .prepare()
        .into_axum_router();
    let opts = ListenerOptions {
        keepalive: opts.keepalive.or(Some((PING_INTERVAL, PING_INTERVAL))),
        ..opts
    };
    listeners
        .into_iter()
        .map(|(url, listener)| {
            tracing::info!("listening for peers on {url}");
            let service = RouterService(router.clone());
            tokio::spawn(crate::net::serve_listener(listener, service, opts.clone()))
        })
        .collect()
}
