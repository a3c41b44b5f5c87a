//! The v2 API wired to a real member: writes go through raft (`InternalRequest::v2`),
//! reads and watches use the member's own store, stats come from the raft status.

use std::sync::Arc;
use std::time::SystemTime;

use futures::future::BoxFuture;
use futures::FutureExt;
use parking_lot::RwLock;

use super::http::{MemberError, MemberInfo, V2Backend, V2Headers};
use crate::error::EtcdError;
use crate::member::Member;
use crate::v2::stats::{raft_state_name, FollowerStats, LeaderStats, SelfStats};
use crate::v2::{Event, V2Error, V2Request, V2Store};

/// The v2 handlers' view of this member.
pub struct MemberBackend {
    pub member: Arc<Member>,
}

fn v2_error(e: EtcdError) -> V2Error {
    V2Error::raft_internal(e.to_string())
}

fn info(m: &chorus_api::internalpb::Member) -> MemberInfo {
    MemberInfo {
        id: m.id,
        name: m.name.clone(),
        peer_urls: m.peer_urls.clone(),
        client_urls: m.client_urls.clone(),
    }
}

/// etcd's v2 members handler maps membership errors to 404/409/410, the rest to 500.
fn member_error(e: EtcdError) -> MemberError {
    match e {
        EtcdError::MemberNotFound => MemberError::NotFound,
        EtcdError::PeerUrlExist => MemberError::PeerUrlExists,
        EtcdError::MemberExist => MemberError::IdExists,
        other => MemberError::Other(other.to_string()),
    }
}

/// A removal or update that found no member `id`: etcd's membership store remembers
/// removed IDs (`membership: ID removed`), which its v2 handlers tell apart from unknown
/// ones; chorus's reconfiguration answers "member not found" for both, as etcd's v3 API
/// does, so the removed IDs are looked up here.
async fn not_found_or_removed(member: &Member, id: u64, e: EtcdError) -> MemberError {
    if matches!(e, EtcdError::MemberNotFound) {
        let removed = member
            .backend_snapshot()
            .await
            .ok()
            .and_then(|tx| chorus_storage::members::is_removed_in(&tx, id).ok());
        if removed == Some(true) {
            return MemberError::Removed;
        }
    }
    member_error(e)
}

fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl V2Backend for MemberBackend {
    fn store(&self) -> Arc<RwLock<V2Store>> {
        self.member.v2_store().clone()
    }

    fn propose(&self, req: V2Request) -> BoxFuture<'static, Result<Event, V2Error>> {
        let member = self.member.clone();
        async move {
            match member.v2(req).await {
                Ok(Ok(Some(event))) => Ok(event),
                Ok(Ok(None)) => Err(V2Error::raft_internal("request has no result")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(v2_error(e)),
            }
        }
        .boxed()
    }

    fn linearizable(&self) -> BoxFuture<'static, Result<(), V2Error>> {
        let member = self.member.clone();
        async move { member.linearizable_read().await.map_err(v2_error) }.boxed()
    }

    fn headers(&self) -> V2Headers {
        let s = &self.member;
        V2Headers {
            cluster_id: s.cluster_id,
            raft_index: s.status.commit.load(std::sync::atomic::Ordering::Acquire),
            raft_term: s.status.term(),
        }
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn members(&self) -> Vec<MemberInfo> {
        self.member.cluster().members.values().map(info).collect()
    }

    fn leader(&self) -> Option<MemberInfo> {
        let id = self.member.status.leader();
        self.member.cluster().member(id).map(info)
    }

    fn add_member(
        &self,
        peer_urls: Vec<String>,
    ) -> BoxFuture<'static, Result<MemberInfo, MemberError>> {
        let member = self.member.clone();
        async move {
            let (m, _) = member
                .member_add(None, &peer_urls, false)
                .await
                .map_err(member_error)?;
            Ok(info(&m))
        }
        .boxed()
    }

    fn remove_member(&self, id: u64) -> BoxFuture<'static, Result<(), MemberError>> {
        let member = self.member.clone();
        async move {
            match member.member_remove(None, id).await {
                Ok(_) => Ok(()),
                Err(e) => Err(not_found_or_removed(&member, id, e).await),
            }
        }
        .boxed()
    }

    fn update_member(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> BoxFuture<'static, Result<(), MemberError>> {
        let member = self.member.clone();
        async move {
            match member.member_update(None, id, &peer_urls).await {
                Ok(_) => Ok(()),
                Err(e) => Err(not_found_or_removed(&member, id, e).await),
            }
        }
        .boxed()
    }

    fn stats_self(&self) -> SelfStats {
        let s = &self.member;
        let leader = s.status.leader();
        let state = if s.is_leader() {
            raft::StateRole::Leader
        } else {
            raft::StateRole::Follower
        };
        let (since, started) = s.leader_since();
        let traffic = s.transport().traffic().stats();
        SelfStats {
            name: s.name.clone(),
            id: format!("{:x}", s.id),
            state: raft_state_name(state).to_string(),
            start_time: unix_nanos(s.started_at),
            leader: format!("{leader:x}"),
            leader_uptime: since.elapsed().as_nanos() as i64,
            leader_start_time: unix_nanos(started),
            recv_append_request_cnt: traffic.recv_append_request_cnt,
            recv_pkg_rate: traffic.recv_pkg_rate,
            recv_bandwidth_rate: traffic.recv_bandwidth_rate,
            send_append_request_cnt: traffic.send_append_request_cnt,
            send_pkg_rate: traffic.send_pkg_rate,
            send_bandwidth_rate: traffic.send_bandwidth_rate,
        }
    }

    fn stats_leader(&self) -> Option<LeaderStats> {
        let s = &self.member;
        if !s.is_leader() {
            return None;
        }
        // etcd lists every other member, as its transport added them.
        let followers = s
            .cluster()
            .members
            .keys()
            .filter(|&&id| id != s.id)
            .map(|id| (format!("{id:x}"), FollowerStats::unmeasured()))
            .collect();
        Some(LeaderStats {
            leader: format!("{:x}", s.id),
            followers,
        })
    }
}
