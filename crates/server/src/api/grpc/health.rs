//! `grpc.health.v1.Health` as etcd registers grpc-go's health server: one service, `""`
//! (all of etcd's), SERVING from the start. Its only change is etcd's `healthNotifier`:
//! NOT_SERVING while Maintenance.Defragment runs, when
//! `--experimental-stop-grpc-service-on-defrag` (3.6: `StopGRPCServiceOnDefrag`) is on.
//! Any other service name is unknown, as grpc-go answers it: Check fails with NOT_FOUND,
//! Watch reports SERVICE_UNKNOWN and stays open.
//!
//! Like etcd, each gRPC server (one per client listener) has its own health service, and
//! a defragmentation flips the one of the listener it was asked on.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// etcd's `allGRPCServices`: the empty name stands for every etcd service.
const ALL_SERVICES: &str = "";

/// Changes a Watch may fall behind by before it skips to the current status.
const WATCH_BACKLOG: usize = 16;

/// etcd's `healthNotifier`: what Maintenance tells the health service. Every change
/// reaches every Watch in order (none is lost between two reads of a slow client).
#[derive(Clone)]
pub struct HealthNotifier {
    current: Arc<Mutex<ServingStatus>>,
    changes: broadcast::Sender<ServingStatus>,
    stop_on_defrag: bool,
}

impl HealthNotifier {
    /// SERVING; `stop_on_defrag`: NOT_SERVING while defragmenting.
    pub fn new(stop_on_defrag: bool) -> HealthNotifier {
        HealthNotifier {
            current: Arc::new(Mutex::new(ServingStatus::Serving)),
            changes: broadcast::channel(WATCH_BACKLOG).0,
            stop_on_defrag,
        }
    }

    /// The health service reporting this notifier's status.
    pub fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService {
            current: self.current.clone(),
            changes: Mutex::new(self.changes.subscribe()),
        })
    }

    /// NOT_SERVING (when the gate is on) until the guard is dropped, even by a
    /// defragmentation whose client went away.
    pub fn defragmenting(&self) -> DefragGuard {
        if self.stop_on_defrag {
            tracing::warn!(
                service = ALL_SERVICES,
                status = "NOT_SERVING",
                reason = "defrag is active",
                "grpc service status changed"
            );
            self.set(ServingStatus::NotServing);
        }
        DefragGuard(self.clone())
    }

    fn set(&self, status: ServingStatus) {
        let mut current = self.current.lock();
        if std::mem::replace(&mut *current, status) != status {
            // No receiver (no Watch) is not an error.
            let _ = self.changes.send(status);
        }
    }
}

/// Restores SERVING when the defragmentation ends (etcd's `defragFinished`).
pub struct DefragGuard(HealthNotifier);

impl Drop for DefragGuard {
    fn drop(&mut self) {
        if self.0.stop_on_defrag {
            tracing::info!(
                service = ALL_SERVICES,
                status = "SERVING",
                "grpc service status changed"
            );
        }
        self.0.set(ServingStatus::Serving);
    }
}

pub struct HealthService {
    current: Arc<Mutex<ServingStatus>>,
    /// Kept only to subscribe Watches (`resubscribe`).
    changes: Mutex<broadcast::Receiver<ServingStatus>>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

impl HealthService {
    /// The current status and the changes after it.
    fn subscribe(&self) -> (ServingStatus, broadcast::Receiver<ServingStatus>) {
        let current = self.current.lock();
        (*current, self.changes.lock().resubscribe())
    }

    /// The current status, then every change; SERVICE_UNKNOWN (once) for any name but
    /// `""`. Ends when the server drops its notifier.
    fn statuses(&self, known: bool) -> WatchStream {
        let (first, rx) = self.subscribe();
        let current = self.current.clone();
        let state = (rx, Some(first), None);
        let stream = futures::stream::unfold(state, move |(mut rx, mut next, last)| {
            let current = current.clone();
            async move {
                loop {
                    let now = match next.take() {
                        Some(_) if !known => ServingStatus::ServiceUnknown,
                        Some(status) => status,
                        None => match rx.recv().await {
                            Ok(_) if !known => continue,
                            Ok(status) => status,
                            Err(broadcast::error::RecvError::Lagged(_)) => *current.lock(),
                            Err(broadcast::error::RecvError::Closed) => return None,
                        },
                    };
                    if last != Some(now) {
                        return Some((Ok(response(now)), (rx, None, Some(now))));
                    }
                }
            }
        });
        Box::pin(stream)
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        if req.get_ref().service != ALL_SERVICES {
            return Err(Status::not_found("unknown service"));
        }
        Ok(Response::new(response(*self.current.lock())))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let known = req.get_ref().service == ALL_SERVICES;
        Ok(Response::new(self.statuses(known)))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn status_of(msg: Option<Result<HealthCheckResponse, Status>>) -> ServingStatus {
        let msg = msg.expect("a message").expect("not an error");
        ServingStatus::try_from(msg.status).expect("a known status")
    }

    fn health(notifier: &HealthNotifier) -> HealthService {
        HealthService {
            current: notifier.current.clone(),
            changes: Mutex::new(notifier.changes.subscribe()),
        }
    }

    #[tokio::test]
    async fn defrag_flips_the_status_only_with_the_gate() {
        for gate in [false, true] {
            let notifier = HealthNotifier::new(gate);
            let svc = health(&notifier);
            let mut watch = svc.statuses(true);
            assert_eq!(status_of(watch.next().await), ServingStatus::Serving);
            // Both changes are queued before the watcher reads either.
            drop(notifier.defragmenting());
            if gate {
                assert_eq!(status_of(watch.next().await), ServingStatus::NotServing);
                assert_eq!(status_of(watch.next().await), ServingStatus::Serving);
            }
            drop((notifier, svc));
            assert!(watch.next().await.is_none(), "ends with the notifier");
        }
    }

    #[tokio::test]
    async fn unknown_services_are_reported_as_grpc_go_does() {
        let notifier = HealthNotifier::new(true);
        let svc = health(&notifier);
        let req = || {
            Request::new(HealthCheckRequest {
                service: "etcdserverpb.KV".into(),
            })
        };
        let err = svc.check(req()).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (tonic::Code::NotFound, "unknown service")
        );
        let mut watch = svc.watch(req()).await.unwrap().into_inner();
        assert_eq!(status_of(watch.next().await), ServingStatus::ServiceUnknown);
        drop(notifier.defragmenting());
        drop((notifier, svc));
        assert!(watch.next().await.is_none(), "no change is reported for it");
    }
}
