//! `etcdserverpb.Maintenance`: Status, HashKV and Alarm (GET); the rest arrive with the
//! features they need and answer `Unimplemented` until then.

use std::sync::Arc;

use chorus_api::etcdserverpb::maintenance_server::{Maintenance, MaintenanceServer};
use chorus_api::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, DowngradeRequest,
    DowngradeResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest,
    MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use tonic::{Request, Response, Status};

use chorus_api::internalpb::internal_request::Request as Internal;

use crate::apply::Applied;
use crate::config::ETCD_COMPAT_VERSION;
use crate::error::EtcdError;
use crate::server::Server;

pub fn service(server: Arc<Server>) -> MaintenanceServer<MaintenanceService> {
    MaintenanceServer::new(MaintenanceService { server })
}

pub struct MaintenanceService {
    server: Arc<Server>,
}

impl MaintenanceService {
    pub fn new(server: Arc<Server>) -> Self {
        MaintenanceService { server }
    }
}

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!("chorus: {what} is not implemented yet"))
}

struct CrcWriter(u32);

impl std::io::Write for CrcWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 = crc32c::crc32c_append(self.0, b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type SnapshotStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        match self
            .server
            .propose(Internal::Alarm(req.into_inner()))
            .await?
        {
            Applied::Alarm(mut resp) => {
                // etcd 3.4 answers alarms without a header (etcdctl prints `{}`).
                resp.header = None;
                Ok(Response::new(resp))
            }
            other => Err(Status::internal(format!(
                "unexpected apply result {other:?}"
            ))),
        }
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let s = &self.server;
        let kv = s.kv();
        let db_size = kv.backend().refresh_size() as i64;
        let is_learner = s.cluster().member(s.id).is_some_and(|m| m.is_learner);
        let status = &s.status;
        use std::sync::atomic::Ordering::Acquire;
        Ok(Response::new(StatusResponse {
            header: Some(s.header(kv.current_rev())),
            version: ETCD_COMPAT_VERSION.to_string(),
            db_size,
            leader: status.leader(),
            raft_index: status.commit.load(Acquire),
            raft_term: status.term(),
            raft_applied_index: s.applied_index(),
            errors: s.alarms().status_errors(),
            db_size_in_use: db_size,
            is_learner,
            ..Default::default()
        }))
    }

    async fn defragment(
        &self,
        _req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        Err(unimplemented("defragment"))
    }

    /// A CRC32C of the whole backend (every table), as etcd hashes its db file.
    async fn hash(&self, _req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let kv = self.server.kv();
        let rev = kv.current_rev();
        let backend = kv.backend().clone();
        let hash = tokio::task::spawn_blocking(move || {
            let tx = backend.begin_read()?;
            let mut w = CrcWriter(0);
            chorus_storage::backend::Backend::dump(&tx, &mut w)?;
            Ok::<u32, chorus_storage::backend::BackendError>(w.0)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(HashResponse {
            header: Some(self.server.header(rev)),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        req: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let kv = self.server.kv();
        let (hash, rev, compact) = kv
            .hash_kv(req.into_inner().revision)
            .map_err(EtcdError::from)?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.server.header(kv.current_rev())),
            hash,
            compact_revision: compact,
            hash_revision: rev,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _req: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(unimplemented("snapshot save"))
    }

    async fn move_leader(
        &self,
        _req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        Err(unimplemented("move-leader"))
    }

    async fn downgrade(
        &self,
        _req: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        Err(unimplemented("downgrade"))
    }
}
