//! The peer port's gRPC service (`peerpb.Raft`): raft message streams and snapshots go
//! straight to the raft loop; lease forwarding, the member list and learner promotion are
//! answered by the member through [`PeerHandler`], which it implements. The service is
//! built once the member exists, so nothing here waits for or reaches back into it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chorus_api::etcdserverpb::{HashKvResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse};
use chorus_api::internalpb::Member;
use chorus_api::peerpb::raft_server::Raft;
use chorus_api::peerpb::{
    Ack, LeaseRenewRequest, LeaseRenewResponse, MembersRequest, MembersResponse, PeerHashKvRequest,
    ProbeRequest, ProbeResponse, PromoteRequest, RaftBatch, SnapshotChunk,
};
use chorus_storage::backend::BackendOptions;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tonic::{Request, Response, Status, Streaming};

use crate::error::EtcdError;
use crate::mailbox::Sender;
use crate::raft::RaftInput;
use crate::v2::stats::AppendTraffic;

/// What the member answers on the peer port.
pub trait PeerHandler: Send + Sync + 'static {
    /// Renews a lease if this member's lessor is the primary (the leader's); never
    /// forwards.
    fn renew_here(&self, id: i64) -> impl Future<Output = Result<i64, EtcdError>> + Send;
    /// A lease's time to live if this member's lessor is the primary.
    fn time_to_live_here(
        &self,
        req: LeaseTimeToLiveRequest,
    ) -> impl Future<Output = Result<LeaseTimeToLiveResponse, EtcdError>> + Send;
    /// The current members and the IDs removed for good.
    fn members(&self) -> Result<(Vec<Member>, Vec<u64>), EtcdError>;
    /// Promotes a learner if this member leads; never forwards.
    fn promote_here(&self, id: u64) -> impl Future<Output = Result<Vec<Member>, EtcdError>> + Send;
    /// This member's hash of its keys at `revision` (0: now), or with `compaction` the
    /// hash its compaction at `revision` recorded.
    fn hash_kv_here(&self, revision: i64, compaction: bool) -> Result<HashKvResponse, EtcdError>;
    /// The cluster version this member knows (`3.5.0`; none: not decided).
    fn cluster_version(&self) -> Option<String>;
}

/// What the service needs besides the handler.
#[derive(Clone)]
pub struct PeerServiceConfig {
    pub member_id: u64,
    pub cluster_id: u64,
    pub raft_tx: Sender<RaftInput>,
    /// Where snapshots from the leader are received.
    pub snap_dir: PathBuf,
    pub backend_opts: BackendOptions,
    /// Counts the append requests received.
    pub traffic: Arc<AppendTraffic>,
}

pub struct PeerService<H> {
    cfg: PeerServiceConfig,
    handler: Arc<H>,
}

impl<H: PeerHandler> PeerService<H> {
    pub fn new(cfg: PeerServiceConfig, handler: Arc<H>) -> Self {
        PeerService { cfg, handler }
    }

    fn check_cluster(&self, cluster_id: u64) -> Result<(), Status> {
        if cluster_id != self.cfg.cluster_id {
            return Err(Status::failed_precondition("cluster ID mismatch"));
        }
        Ok(())
    }

    fn check(&self, cluster_id: u64, to: u64) -> Result<(), Status> {
        if cluster_id != self.cfg.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster ID mismatch: request from cluster {cluster_id:x}, this member is in {:x}",
                self.cfg.cluster_id
            )));
        }
        if to != self.cfg.member_id {
            return Err(Status::failed_precondition(format!(
                "member ID mismatch: message for {to:x}, this member is {:x}",
                self.cfg.member_id
            )));
        }
        Ok(())
    }

    /// Hands a message to raft, waiting while its queue is full (backpressure on the
    /// peer's stream).
    async fn step(&self, m: Message) -> Result<(), Status> {
        self.cfg
            .raft_tx
            .send_when_room(RaftInput::Step(m))
            .await
            .map_err(|_| Status::unavailable("member is stopping"))
    }
}

impl<H: PeerHandler> PeerService<H> {
    /// Steps a batch's raft messages in order.
    async fn step_batch(&self, messages: Vec<Vec<u8>>) -> Result<(), Status> {
        for raw in messages {
            let m = parse_message(&raw)?;
            if m.get_msg_type() == MessageType::MsgAppend {
                self.cfg.traffic.received(raw.len());
            }
            self.step(m).await?;
        }
        Ok(())
    }

    /// Restores the snapshot whose first chunk is `first`, then steps its message.
    async fn receive_snapshot(
        &self,
        first: SnapshotChunk,
        stream: &mut Streaming<SnapshotChunk>,
    ) -> Result<(), Status> {
        let msg = parse_message(&first.message)?;
        let index = msg.get_snapshot().get_metadata().index;
        let path = chorus_datadir::layout::received_snapshot_path(&self.cfg.snap_dir, index);
        let opts = self.cfg.backend_opts.clone();
        super::snapshot::receive(first.data, stream, path, opts).await?;
        tracing::info!(index, "received snapshot");
        self.step(msg).await
    }
}

fn parse_message(raw: &[u8]) -> Result<Message, Status> {
    Message::parse_from_bytes(raw)
        .map_err(|e| Status::invalid_argument(format!("raft message: {e}")))
}

#[tonic::async_trait]
impl<H: PeerHandler> Raft for PeerService<H> {
    async fn stream(&self, req: Request<Streaming<RaftBatch>>) -> Result<Response<Ack>, Status> {
        let mut stream = req.into_inner();
        let mut received = chorus_metrics::PeerSeries::new(&chorus_metrics::PEER_RECEIVED_BYTES);
        // The sender, once a batch named it: a failure after that is its receive failure.
        let mut from = None;
        let result = async {
            while let Some(batch) = stream.message().await? {
                self.check(batch.cluster_id, batch.to)?;
                from = Some(batch.from);
                let bytes: usize = batch.messages.iter().map(Vec::len).sum();
                received.add(batch.from, bytes as u64);
                self.step_batch(batch.messages).await?;
            }
            Ok::<_, Status>(Response::new(Ack {}))
        }
        .await;
        if let (Err(_), Some(from)) = (&result, from) {
            let label = chorus_metrics::peer_label(from);
            chorus_metrics::PEER_RECEIVED_FAILURES.add([&label], 1);
        }
        result
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
        let (inflight, started) = (
            chorus_metrics::SNAPSHOT_RECEIVE.start(first.from),
            Instant::now(),
        );
        match self.receive_snapshot(first, &mut stream).await {
            Ok(()) => inflight.succeeded(started.elapsed()),
            Err(e) => {
                inflight.failed();
                return Err(e);
            }
        }
        Ok(Response::new(Ack {}))
    }

    async fn lease_renew(
        &self,
        req: Request<LeaseRenewRequest>,
    ) -> Result<Response<LeaseRenewResponse>, Status> {
        let req = req.into_inner();
        self.check_cluster(req.cluster_id)?;
        let ttl = self.handler.renew_here(req.id).await?;
        Ok(Response::new(LeaseRenewResponse { ttl }))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let resp = self.handler.time_to_live_here(req.into_inner()).await?;
        Ok(Response::new(resp))
    }

    async fn members(
        &self,
        _req: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let (members, removed) = self.handler.members()?;
        Ok(Response::new(MembersResponse {
            cluster_id: self.cfg.cluster_id,
            members,
            removed,
            cluster_version: self.handler.cluster_version().unwrap_or_default(),
        }))
    }

    async fn promote(
        &self,
        req: Request<PromoteRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let req = req.into_inner();
        self.check_cluster(req.cluster_id)?;
        let members = self.handler.promote_here(req.member_id).await?;
        Ok(Response::new(MembersResponse {
            cluster_id: self.cfg.cluster_id,
            members,
            removed: Vec::new(),
            cluster_version: self.handler.cluster_version().unwrap_or_default(),
        }))
    }

    async fn hash_kv(
        &self,
        req: Request<PeerHashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let req = req.into_inner();
        self.check_cluster(req.cluster_id)?;
        let handler = self.handler.clone();
        let resp =
            tokio::task::spawn_blocking(move || handler.hash_kv_here(req.revision, req.compaction))
                .await
                .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(resp))
    }

    async fn probe(&self, req: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        let req = req.into_inner();
        if req.cluster_id != 0 && req.cluster_id != self.cfg.cluster_id {
            return Err(Status::failed_precondition("cluster ID mismatch"));
        }
        Ok(Response::new(ProbeResponse {
            cluster_id: self.cfg.cluster_id,
            member_id: self.cfg.member_id,
            version: chorus_config::CHORUS_VERSION.to_string(),
            etcd_server: chorus_config::ETCD_COMPAT_VERSION.to_string(),
            etcd_cluster: self
                .handler
                .cluster_version()
                .unwrap_or_else(|| crate::cluster_version::NOT_DECIDED.to_string()),
        }))
    }
}
