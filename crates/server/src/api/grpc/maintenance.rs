//! `etcdserverpb.Maintenance`: Status, Hash, HashKV, Alarm, Defragment, Snapshot (the
//! backend in etcd's bbolt layout plus a SHA-256, ADR 0007), MoveLeader and Downgrade
//! (`member/downgrade.rs`).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use chorus_api::etcdserverpb::maintenance_server::{Maintenance, MaintenanceServer};
use chorus_api::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, DowngradeInfo,
    DowngradeRequest, DowngradeResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse,
    MoveLeaderRequest, MoveLeaderResponse, ResponseHeader, SnapshotRequest, SnapshotResponse,
    StatusRequest, StatusResponse,
};
use tonic::{Request, Response, Status};

use super::caller::who;
use super::health::HealthNotifier;
use crate::error::EtcdError;
use crate::member::Member;
use chorus_config::ETCD_COMPAT_VERSION;
use chorus_datadir::snapshot::CrcWriter;

pub fn service(
    member: Arc<Member>,
    health: HealthNotifier,
) -> MaintenanceServer<MaintenanceService> {
    MaintenanceServer::new(MaintenanceService::new(member, health))
}

pub struct MaintenanceService {
    member: Arc<Member>,
    health: HealthNotifier,
}

impl MaintenanceService {
    pub fn new(member: Arc<Member>, health: HealthNotifier) -> Self {
        MaintenanceService { member, health }
    }
}

type SnapshotStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

/// Exports `tx` in etcd's bbolt layout (`chorus_datadir::export`) into a file in `dir`,
/// unlinked as soon as it is open again; returns it with its size.
fn spool(tx: &redb::ReadTransaction, dir: &Path) -> std::io::Result<(File, u64)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("snapshot.{n}.tmp"));
    let spooled = chorus_datadir::export::export_backend(tx, &path)
        .map_err(std::io::Error::other)
        .and_then(|summary| Ok((File::open(&path)?, summary.file.bytes)));
    let _ = std::fs::remove_file(&path);
    spooled
}

/// etcd sends its snapshot in 32 KiB messages.
const SNAPSHOT_CHUNK: usize = 32 * 1024;

/// Sends `size` bytes of `file` in chunks counting `remaining_bytes` down, then the
/// SHA-256 of everything sent. Stops quietly when the client goes away.
fn stream_file(
    mut file: File,
    size: u64,
    header: ResponseHeader,
    out: tokio::sync::mpsc::Sender<Result<SnapshotResponse, Status>>,
) {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut sent = 0u64;
    let mut header = Some(header);
    while sent < size {
        let mut blob = vec![0u8; SNAPSHOT_CHUNK.min((size - sent) as usize)];
        if let Err(e) = file.read_exact(&mut blob) {
            let _ = out.blocking_send(Err(Status::internal(format!("snapshot: {e}"))));
            return;
        }
        digest.update(&blob);
        sent += blob.len() as u64;
        let msg = SnapshotResponse {
            header: header.take(),
            remaining_bytes: size - sent,
            blob,
            version: String::new(),
        };
        if out.blocking_send(Ok(msg)).is_err() {
            return;
        }
    }
    let _ = out.blocking_send(Ok(SnapshotResponse {
        header: header.take(),
        remaining_bytes: 0,
        blob: digest.finish().as_ref().to_vec(),
        version: String::new(),
    }));
}

impl MaintenanceService {
    /// etcd's authMaintenanceServer: only a user with the root role (once auth is on).
    async fn admin<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let who = who(&self.member, req).await?;
        Ok(self.member.check_admin(who.as_ref())?)
    }

    /// Any authenticated user (once auth is on).
    async fn authenticated<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let who = who(&self.member, req).await?;
        Ok(self.member.require_auth(who.as_ref())?)
    }
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let who = who(&self.member, &req).await?;
        let mut resp = self.member.alarm(who.as_ref(), req.into_inner()).await?;
        self.member.fill_header(&mut resp.header);
        Ok(Response::new(resp))
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        self.authenticated(&req).await?;
        let s = &self.member;
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
            // etcd 3.6's storage version follows the cluster version.
            storage_version: s
                .cluster_version()
                .map(|v| v.to_semver())
                .unwrap_or_default(),
            downgrade_info: s.cluster().downgrade.map(|d| DowngradeInfo {
                enabled: d.enabled,
                target_version: d.ver,
            }),
            ..Default::default()
        }))
    }

    async fn defragment(
        &self,
        req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.admin(&req).await?;
        let _not_serving = self.health.defragmenting();
        self.member.defragment().await?;
        Ok(Response::new(DefragmentResponse {
            header: Some(self.member.current_header()),
        }))
    }

    /// A CRC32C of the whole backend (every table), as etcd hashes its db file.
    async fn hash(&self, req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        self.admin(&req).await?;
        let kv = self.member.kv();
        let rev = kv.current_rev();
        let backend = kv.backend().clone();
        let hash = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let tx = backend.begin_read()?;
            let mut w = CrcWriter(0);
            chorus_storage::backend::Backend::dump(&tx, &mut w)?;
            chorus_metrics::HASH_SECONDS.observe_duration(started.elapsed());
            Ok::<u32, chorus_storage::backend::BackendError>(w.0)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(HashResponse {
            header: Some(self.member.header(rev)),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        req: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        self.admin(&req).await?;
        let kv = self.member.kv();
        let (hash, rev, compact) = kv
            .hash_kv(req.into_inner().revision)
            .map_err(EtcdError::from)?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.member.header(kv.current_rev())),
            hash,
            compact_revision: compact,
            hash_revision: rev,
        }))
    }

    type SnapshotStream = SnapshotStream;

    /// The backend as of now in etcd's bbolt layout, then its SHA-256 as the last
    /// message, as etcd streams its db file followed by the digest: `etcdctl`/`etcdutl
    /// snapshot status|restore` take the file, and etcd starts from it.
    async fn snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        self.admin(&req).await?;
        let header = self.member.current_header();
        let tx = self.member.backend_snapshot().await?;
        let dir = self
            .member
            .kv()
            .backend()
            .path()
            .parent()
            .map(Path::to_owned);
        let dir = dir.ok_or_else(|| Status::internal("backend file has no directory"))?;
        // Written to an unlinked file first: the read transaction ends at once, whatever
        // the client's pace, and the size is known for `remaining_bytes`.
        let started = std::time::Instant::now();
        let (file, size) = tokio::task::spawn_blocking(move || spool(&tx, &dir))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(format!("snapshot: {e}")))?;
        chorus_metrics::BACKEND_SNAPSHOT_SECONDS.observe_duration(started.elapsed());
        let (out, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || stream_file(file, size, header, out));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn move_leader(
        &self,
        req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.admin(&req).await?;
        self.member.move_leader(req.into_inner().target_id).await?;
        Ok(Response::new(MoveLeaderResponse {
            header: Some(self.member.current_header()),
        }))
    }

    async fn downgrade(
        &self,
        req: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        self.admin(&req).await?;
        let mut resp = self.member.downgrade(req.get_ref()).await?;
        resp.header = Some(self.member.current_header());
        Ok(Response::new(resp))
    }
}
