//! Snapshot transfer: the leader streams its backend (chorus's dump format) in chunks
//! after a first chunk carrying the raft `MsgSnap`; the follower restores the chunks into
//! `snap/<index>.snap.db` as they arrive and only then steps the message into raft.
//!
//! ```text
//!  leader:   backend read txn ─dump─▶ ChunkWriter (blocking thread) ─▶ Raft.Snapshot stream
//!  follower: Raft.Snapshot stream ─▶ ChunkReader (blocking thread) ─restore─▶ <index>.snap.db
//! ```

use std::io::{Read, Write};
use std::path::PathBuf;

use chorus_api::peerpb::SnapshotChunk;
use chorus_storage::backend::{Backend, BackendError, BackendOptions};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::dialer::{DialError, PeerDialer};

/// Bytes of dump per chunk.
const CHUNK: usize = 1 << 20;

/// Why a snapshot could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendSnapshotError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error("encode raft message: {0}")]
    Encode(#[from] protobuf::ProtobufError),
    #[error("snapshot stream closed")]
    Closed,
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("snapshot dump stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{}", .0.message())]
    Refused(tonic::Status),
}

/// Who sends to whom, for the first chunk.
pub(super) struct Envelope {
    pub from: u64,
    pub cluster_id: u64,
}

/// Streams `msg` and the backend dump taken in `tx` to one of `urls`.
pub(super) async fn send(
    dialer: &PeerDialer,
    envelope: Envelope,
    urls: &[String],
    msg: Message,
    tx: redb::ReadTransaction,
) -> Result<(), SendSnapshotError> {
    let mut client = dialer.raft_client(urls).await?;
    let (ctx, crx) = mpsc::channel::<SnapshotChunk>(4);
    let first = SnapshotChunk {
        cluster_id: envelope.cluster_id,
        from: envelope.from,
        to: msg.to,
        message: msg.write_to_bytes()?,
        data: Vec::new(),
    };
    ctx.send(first)
        .await
        .map_err(|_| SendSnapshotError::Closed)?;
    let producer = tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter {
            tx: ctx,
            buf: Vec::with_capacity(CHUNK),
        };
        let started = std::time::Instant::now();
        Backend::dump(&tx, &mut w)?;
        w.flush().map_err(BackendError::from)?;
        chorus_metrics::BACKEND_SNAPSHOT_SECONDS.observe_duration(started.elapsed());
        Ok::<(), BackendError>(())
    });
    let call = client.snapshot(ReceiverStream::new(crx)).await;
    let produced = producer.await?;
    call.map_err(SendSnapshotError::Refused)?;
    Ok(produced?)
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

/// Restores the dump arriving as `first` and then the rest of `stream` into `path`.
pub(super) async fn receive(
    first: Vec<u8>,
    stream: &mut tonic::Streaming<SnapshotChunk>,
    path: PathBuf,
    opts: BackendOptions,
) -> Result<(), tonic::Status> {
    let started = std::time::Instant::now();
    let (dtx, drx) = mpsc::channel::<Vec<u8>>(4);
    let restore_path = path.clone();
    let restore = tokio::task::spawn_blocking(move || {
        let mut reader = ChunkReader {
            rx: drx,
            cur: std::io::Cursor::new(Vec::new()),
        };
        Backend::restore(&mut reader, &restore_path, &opts).map(drop)
    });
    if !first.is_empty() && dtx.send(first).await.is_err() {
        return Err(tonic::Status::internal("snapshot restore stopped"));
    }
    while let Some(chunk) = stream.message().await? {
        if dtx.send(chunk.data).await.is_err() {
            break;
        }
    }
    drop(dtx);
    restore
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .map_err(|e| {
            tonic::Status::internal(format!("restore snapshot {}: {e}", path.display()))
        })?;
    chorus_metrics::SNAP_DB_SAVE_SECONDS.observe_duration(started.elapsed());
    Ok(())
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
