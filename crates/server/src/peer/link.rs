//! The message pump: one task per peer drains that peer's queue into a long-lived
//! `Raft.Stream` call, in batches. A broken connection drops what is queued and reports
//! the peer unreachable to raft, which retries.

use std::time::Duration;

use chorus_api::peerpb::RaftBatch;
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::dialer::PeerDialer;
use chorus_metrics::{peer_label, PeerSeries, ACTIVE_PEERS, DISCONNECTED_PEERS, PEER_SENT_BYTES};

type RaftClient = chorus_api::peerpb::raft_client::RaftClient<tonic::transport::Channel>;
use crate::mailbox::Sender;
use crate::raft::RaftInput;

/// A batch is sent once it holds this many bytes (or the queue is empty).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// One direction of traffic to one peer.
pub(super) struct Link {
    pub dialer: PeerDialer,
    pub from: u64,
    pub to: u64,
    pub cluster_id: u64,
    pub urls: Vec<String>,
    pub raft_tx: Sender<RaftInput>,
}
impl Link {
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut backoff = Duration::from_millis(50);
        let mut failure = DialFailure::default();
        loop {
            let client = match self.dialer.raft_client(&self.urls).await {
                Ok(c) => c,
                Err(e) => {
                    failure.report(self.to, &e);
                    // Nothing can be delivered: drop what is queued and tell raft.
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
            failure = DialFailure::default();
            let peers = [peer_label(self.from), peer_label(self.to)];
            let peers = [peers[0].as_str(), peers[1].as_str()];
            ACTIVE_PEERS.add(peers, 1);
            let pumped = self.pump(client, &mut rx).await;
            ACTIVE_PEERS.add(peers, -1);
            if pumped.is_none() {
                return;
            }
            DISCONNECTED_PEERS.add(peers, 1);
            let _ = self.raft_tx.send(RaftInput::ReportUnreachable(self.to));
        }
    }

    /// Streams batches over one connection until it breaks (`Some`) or the queue is
    /// closed because the peer was removed (`None`).
    async fn pump(&self, mut client: RaftClient, rx: &mut mpsc::Receiver<Message>) -> Option<()> {
        let (btx, brx) = mpsc::channel::<RaftBatch>(16);
        let call = tokio::spawn(async move { client.stream(ReceiverStream::new(brx)).await });
        let mut sent = PeerSeries::new(&PEER_SENT_BYTES);
        loop {
            let first = rx.recv().await?;
            let batch = self.batch(first, rx);
            sent.add(
                self.to,
                batch.messages.iter().map(Vec::len).sum::<usize>() as u64,
            );
            if btx.send(batch).await.is_err() {
                break;
            }
        }
        let result = call.await;
        tracing::debug!(to = %format!("{:x}", self.to), "peer stream ended: {result:?}");
        Some(())
    }

    /// `first` and whatever else is queued, up to [`MAX_BATCH_BYTES`].
    fn batch(&self, first: Message, rx: &mut mpsc::Receiver<Message>) -> RaftBatch {
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
        RaftBatch {
            cluster_id: self.cluster_id,
            from: self.from,
            to: self.to,
            messages,
        }
    }
}

/// The last reason a peer could not be dialled: logged as a warning when it changes (a
/// certificate that does not match, a refused connection, ...), not on every retry.
#[derive(Default)]
struct DialFailure {
    last: Option<String>,
}

impl DialFailure {
    fn report(&mut self, to: u64, e: &super::dialer::DialError) {
        let reason = chorus_client::with_causes(e.to_string(), std::error::Error::source(e));
        if self.last.as_deref() == Some(reason.as_str()) {
            tracing::debug!(remote_peer_id = %format!("{to:x}"), error = %reason, "peer unreachable");
            return;
        }
        tracing::warn!(remote_peer_id = %format!("{to:x}"), error = %reason, "failed to dial remote peer");
        self.last = Some(reason);
    }
}
