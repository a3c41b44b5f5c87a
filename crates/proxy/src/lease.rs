//! The Lease service of the proxy. Grant, revoke, time-to-live and the lease list are
//! forwarded; keep-alives are coalesced (etcd's `grpcproxy/lease.go` does it through
//! clientv3's lessor):
//!
//! ```text
//!   client streams ──keep-alive(L)──▶ KeepAliveHub ── keeper(L) ── one upstream stream ──▶ member
//!        ▲                                               │ a round: every request that arrived
//!        └──────────── the round's answer ◀──────────────┘ meanwhile shares one keep-alive
//! ```
//!
//! A keeper sends at most one keep-alive per [`MIN_ROUND_INTERVAL`] for its lease, however
//! many clients keep the same lease alive through the proxy, and answers each waiting
//! request with the member's reply. A keeper idle for [`KEEPER_IDLE`] closes its
//! upstream stream and ends. Queues: [`KEEPER_QUEUE`] waiting requests per lease,
//! [`STREAM_IN_FLIGHT`] unanswered requests per client stream.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chorus_api::etcdserverpb::{
    lease_client::LeaseClient, lease_server::Lease, LeaseGrantRequest, LeaseGrantResponse,
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest, LeaseLeasesResponse,
    LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use chorus_client::{KeepAliveSender, KeepAliveStream};
use futures::Stream;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::namespace::Namespace;
use crate::upstream::{forward, Retry, Upstream};

/// Least time between two upstream keep-alives of one lease.
pub const MIN_ROUND_INTERVAL: Duration = Duration::from_millis(500);
/// A keeper without requests for this long ends.
pub const KEEPER_IDLE: Duration = Duration::from_secs(30);
/// Requests waiting for one lease's next round.
pub const KEEPER_QUEUE: usize = 4096;
/// Unanswered keep-alives of one client stream.
pub const STREAM_IN_FLIGHT: usize = 1024;
/// Bound on one upstream keep-alive round trip.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);

type Answer = Result<LeaseKeepAliveResponse, Status>;
type Waiter = oneshot::Sender<Answer>;

/// One keeper per lease with requests.
#[derive(Default)]
pub struct KeepAliveHub {
    keepers: Mutex<HashMap<i64, mpsc::Sender<Waiter>>>,
}

impl KeepAliveHub {
    /// The answer to one keep-alive of lease `id` (the next round's).
    pub async fn keep_alive(self: &Arc<Self>, up: &Upstream, id: i64) -> Answer {
        let (tx, rx) = oneshot::channel();
        {
            let mut keepers = self.keepers.lock();
            let sent = match keepers.get(&id) {
                Some(k) => k.try_send(tx),
                None => Err(mpsc::error::TrySendError::Closed(tx)),
            };
            match sent {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(Status::resource_exhausted("too many keep-alives queued"))
                }
                Err(mpsc::error::TrySendError::Closed(tx)) => {
                    let (ktx, krx) = mpsc::channel(KEEPER_QUEUE);
                    ktx.try_send(tx).expect("a new queue has room");
                    keepers.insert(id, ktx);
                    tokio::spawn(self.clone().keeper(up.clone(), id, krx));
                }
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(Status::unavailable("keep-alive keeper stopped")))
    }

    async fn keeper(self: Arc<Self>, up: Upstream, id: i64, mut rx: mpsc::Receiver<Waiter>) {
        let mut conn: Option<(KeepAliveSender, KeepAliveStream)> = None;
        let mut last_round: Option<Instant> = None;
        loop {
            let first = match tokio::time::timeout(KEEPER_IDLE, rx.recv()).await {
                Ok(Some(w)) => w,
                _ => {
                    // Idle: leave, unless a request slipped in (checked under the lock
                    // that `keep_alive` holds while queueing).
                    let mut keepers = self.keepers.lock();
                    match rx.try_recv() {
                        Ok(w) => {
                            drop(keepers);
                            self.round(&up, id, &mut conn, &mut last_round, w, &mut rx)
                                .await;
                            continue;
                        }
                        Err(_) => {
                            keepers.remove(&id);
                            return;
                        }
                    }
                }
            };
            self.round(&up, id, &mut conn, &mut last_round, first, &mut rx)
                .await;
        }
    }

    /// One upstream keep-alive answering `first` and everything queued until it is sent.
    async fn round(
        &self,
        up: &Upstream,
        id: i64,
        conn: &mut Option<(KeepAliveSender, KeepAliveStream)>,
        last_round: &mut Option<Instant>,
        first: Waiter,
        rx: &mut mpsc::Receiver<Waiter>,
    ) {
        if let Some(last) = *last_round {
            tokio::time::sleep_until(last + MIN_ROUND_INTERVAL).await;
        }
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        *last_round = Some(Instant::now());
        let answer = match tokio::time::timeout(ROUND_TIMEOUT, upstream_round(up, id, conn)).await {
            Ok(a) => a,
            Err(_) => Err(Status::unavailable("lease keep-alive timed out")),
        };
        if answer.is_err() {
            *conn = None;
        }
        for w in waiters {
            let _ = w.send(answer.clone());
        }
    }
}

/// Sends one keep-alive on the lease's stream (opened or reopened as needed, failing
/// over between members) and reads its answer.
async fn upstream_round(
    up: &Upstream,
    id: i64,
    conn: &mut Option<(KeepAliveSender, KeepAliveStream)>,
) -> Answer {
    let to_status = |e: chorus_client::Error| match e.status() {
        Some(s) => s.clone(),
        None => Status::unavailable(e.to_string()),
    };
    if let Some((sender, stream)) = conn.as_mut() {
        if sender.keep_alive().await.is_ok() {
            if let Ok(Some(resp)) = stream.message().await {
                return Ok(resp);
            }
        }
        *conn = None;
    }
    // A new stream's first answer is the answer to this round.
    let (sender, mut stream) = up.client().lease_keep_alive(id).await.map_err(to_status)?;
    let resp = stream
        .message()
        .await
        .map_err(to_status)?
        .ok_or_else(|| Status::unavailable("keep-alive stream closed"))?;
    *conn = Some((sender, stream));
    Ok(resp)
}

/// The Lease service of the proxy.
pub struct LeaseProxy {
    pub up: Upstream,
    pub ns: Namespace,
    pub hub: Arc<KeepAliveHub>,
}

type KeepAliveOut = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseProxy {
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req);
                async move {
                    LeaseClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .lease_grant(r)
                        .await
                }
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let resp = self
            .up
            .call(Retry::Write, |ch| {
                let r = forward(&md, req);
                async move {
                    LeaseClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .lease_revoke(r)
                        .await
                }
            })
            .await?;
        Ok(Response::new(resp))
    }

    type LeaseKeepAliveStream = KeepAliveOut;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_IN_FLIGHT);
        let (hub, up) = (self.hub.clone(), self.up.clone());
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(STREAM_IN_FLIGHT));
            while let Ok(Some(req)) = inbound.message().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (hub, up, tx) = (hub.clone(), up.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    let answer = hub.keep_alive(&up, req.id).await;
                    let _ = tx.send(answer).await;
                });
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let mut resp = self
            .up
            .call(Retry::Read, |ch| {
                let r = forward(&md, req);
                async move {
                    LeaseClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .lease_time_to_live(r)
                        .await
                }
            })
            .await?;
        self.ns.lease_keys(&mut resp.keys);
        Ok(Response::new(resp))
    }

    async fn lease_leases(
        &self,
        request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let resp = self
            .up
            .call(Retry::Read, |ch| {
                let r = forward(&md, req);
                async move {
                    LeaseClient::new(ch)
                        .max_decoding_message_size(usize::MAX)
                        .lease_leases(r)
                        .await
                }
            })
            .await?;
        Ok(Response::new(resp))
    }
}
