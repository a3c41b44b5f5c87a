//! [`LocalBackend`]: the v2 API over a store in this process, with no raft: proposals are
//! applied at once. For tests, and for trying the API against etcd with `curl`; membership
//! changes are refused (they need raft).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::FutureExt;
use parking_lot::{Mutex, RwLock};

use super::http::{MemberError, MemberInfo, V2Backend, V2Headers};
use crate::v2::error::V2Error;
use crate::v2::request::{apply, sync_request, V2Request};
use crate::v2::stats::{LeaderStats, SelfStats};
use crate::v2::store::{Event, V2Store};

pub struct LocalBackend {
    store: Arc<RwLock<V2Store>>,
    /// `None`: the system clock.
    clock: Mutex<Option<SystemTime>>,
    member: MemberInfo,
    cluster_id: u64,
    raft_index: AtomicU64,
}

impl LocalBackend {
    /// A single member `member` of cluster `cluster_id`, with an empty store.
    pub fn new(cluster_id: u64, member: MemberInfo) -> LocalBackend {
        LocalBackend {
            store: Arc::new(RwLock::new(V2Store::new())),
            clock: Mutex::new(None),
            member,
            cluster_id,
            raft_index: AtomicU64::new(1),
        }
    }

    /// Makes the three writes a fresh etcd member makes under `/0` when it bootstraps (its
    /// raft attributes, its published attributes, the cluster version), so that indexes
    /// line up with a fresh etcd's: the first user change is index 4.
    pub fn bootstrap_like_etcd(&self) {
        let mut s = self.store.write();
        let m = chorus_api::internalpb::Member {
            id: self.member.id,
            name: self.member.name.clone(),
            peer_urls: self.member.peer_urls.clone(),
            client_urls: self.member.client_urls.clone(),
            is_learner: false,
        };
        crate::v2::members::add(&mut s, &m);
        crate::v2::members::publish(&mut s, &m);
        crate::v2::members::set_version(
            &mut s,
            &crate::cluster_version::server_version().to_semver(),
        );
    }

    /// Stops the clock at `t` (tests).
    pub fn set_now(&self, t: SystemTime) {
        *self.clock.lock() = Some(t);
    }

    /// Moves a stopped clock forward.
    pub fn advance(&self, d: Duration) {
        let mut c = self.clock.lock();
        *c = Some(c.unwrap_or_else(SystemTime::now) + d);
    }

    /// What the leader's periodic SYNC does: expires the keys due at `now()`.
    pub fn expire_now(&self) -> Vec<Event> {
        let req = sync_request(self.now());
        self.raft_index.fetch_add(1, Ordering::Relaxed);
        self.store.write().delete_expired_keys(req.time)
    }
}

impl V2Backend for LocalBackend {
    fn store(&self) -> Arc<RwLock<V2Store>> {
        self.store.clone()
    }

    fn propose(&self, req: V2Request) -> BoxFuture<'static, Result<Event, V2Error>> {
        self.raft_index.fetch_add(1, Ordering::Relaxed);
        let r = apply(&mut self.store.write(), &req)
            .and_then(|e| e.ok_or_else(|| V2Error::raft_internal("request has no result")));
        async move { r }.boxed()
    }

    fn linearizable(&self) -> BoxFuture<'static, Result<(), V2Error>> {
        async { Ok(()) }.boxed()
    }

    fn headers(&self) -> V2Headers {
        V2Headers {
            cluster_id: self.cluster_id,
            raft_index: self.raft_index.load(Ordering::Relaxed),
            raft_term: 1,
        }
    }

    fn now(&self) -> SystemTime {
        self.clock.lock().unwrap_or_else(SystemTime::now)
    }

    fn members(&self) -> Vec<MemberInfo> {
        vec![self.member.clone()]
    }

    fn leader(&self) -> Option<MemberInfo> {
        Some(self.member.clone())
    }

    fn add_member(&self, _: Vec<String>) -> BoxFuture<'static, Result<MemberInfo, MemberError>> {
        async { Err(MemberError::Other("membership changes need raft".into())) }.boxed()
    }

    fn remove_member(&self, id: u64) -> BoxFuture<'static, Result<(), MemberError>> {
        let known = id == self.member.id;
        async move {
            if known {
                Err(MemberError::Other("membership changes need raft".into()))
            } else {
                Err(MemberError::NotFound)
            }
        }
        .boxed()
    }

    fn update_member(
        &self,
        id: u64,
        _: Vec<String>,
    ) -> BoxFuture<'static, Result<(), MemberError>> {
        self.remove_member(id)
    }

    fn stats_self(&self) -> SelfStats {
        let id = format!("{:x}", self.member.id);
        SelfStats {
            name: self.member.name.clone(),
            id: id.clone(),
            state: "StateLeader".into(),
            leader: id,
            ..Default::default()
        }
    }

    fn stats_leader(&self) -> Option<LeaderStats> {
        Some(LeaderStats {
            leader: format!("{:x}", self.member.id),
            followers: Default::default(),
        })
    }
}
