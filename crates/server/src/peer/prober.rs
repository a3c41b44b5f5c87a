//! The peer prober (etcd's rafthttp prober): each peer's `Probe` is called over a
//! connection of its own every [`PROBE_INTERVAL`], and the round trip goes into
//! `etcd_network_peer_round_trip_time_seconds{To}`. The connection is set up before the
//! first probe, so a round trip never includes a dial. An unreachable peer is retried
//! sooner (from 1 s, doubling) until it answers.
//!
//! ```text
//!   add_peer ─▶ Prober (one task per peer) ─dial─▶ Probe ─▶ round trip observed
//!                 └─ ends when the peer is removed or re-pointed (its queue is gone)
//! ```

use std::time::{Duration, Instant};

use chorus_api::peerpb::ProbeRequest;
use raft::eraftpb::Message;
use tokio::sync::mpsc;

use super::dialer::PeerDialer;
use chorus_metrics::{peer_label, PEER_RTT_SECONDS};

/// etcd records its prober's round trip every 30 s (`statusMonitoringInterval`).
const PROBE_INTERVAL: Duration = Duration::from_secs(30);
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// How long a probe may take before it counts as unanswered (etcd's rafthttp deadline).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

type RaftClient = chorus_api::peerpb::raft_client::RaftClient<tonic::transport::Channel>;

pub(super) struct Prober {
    pub dialer: PeerDialer,
    pub from: u64,
    pub to: u64,
    pub cluster_id: u64,
    pub urls: Vec<String>,
    /// The peer's message queue: gone once the peer is removed or re-pointed.
    pub alive: mpsc::WeakSender<Message>,
}

impl Prober {
    pub(super) async fn run(self) {
        let mut client = None;
        let mut retry = FIRST_RETRY;
        while self.alive.upgrade().is_some() {
            let wait = match self.probe(&mut client).await {
                Some(rtt) => {
                    if let Some(h) = PEER_RTT_SECONDS.with([&peer_label(self.to)]) {
                        h.observe_duration(rtt);
                    }
                    retry = FIRST_RETRY;
                    PROBE_INTERVAL
                }
                None => {
                    client = None;
                    retry = (retry * 2).min(PROBE_INTERVAL);
                    retry / 2
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One probe's round trip, over `client` (dialled first when there is none).
    async fn probe(&self, client: &mut Option<RaftClient>) -> Option<Duration> {
        if client.is_none() {
            *client = Some(self.dialer.raft_client(&self.urls).await.ok()?);
        }
        let c = client.as_mut()?;
        let req = ProbeRequest {
            cluster_id: self.cluster_id,
            from: self.from,
        };
        let started = Instant::now();
        let answered = tokio::time::timeout(PROBE_TIMEOUT, c.probe(req)).await;
        matches!(answered, Ok(Ok(_))).then(|| started.elapsed())
    }
}
