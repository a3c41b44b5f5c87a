//! The leader's version duties (etcd's `monitorVersions` and `monitorDowngrade`):
//!
//! ```text
//!   version_loop      on becoming leader and every 4 s: ask every member its server
//!                     version (peer Probe), decide (cluster_version::rules), propose
//!                     ClusterVersionSet when it changes
//!   downgrade_loop    every --downgrade-check-time: when every member runs the target of
//!                     an enabled downgrade job, cancel the job (it is done)
//! ```

use std::sync::Arc;
use std::time::Duration;

use chorus_api::internalpb::internal_request::Request;
use chorus_api::internalpb::ClusterVersionSet;

use super::Member;
use crate::cluster_version::rules::{self, MembersVersions, Reported};
use crate::cluster_version::{server_version, Version, NOT_DECIDED};
use crate::error::EtcdError;

impl Member {
    /// The cluster version set through raft (none: not decided yet).
    pub fn cluster_version(&self) -> Option<Version> {
        self.cluster.get().version
    }

    /// Every member's versions: this member's own, and each peer's probe answer (`None`
    /// when it did not answer in time or predates version reports).
    pub async fn members_versions(&self) -> MembersVersions {
        let ids: Vec<u64> = self.cluster().members.keys().copied().collect();
        let mut out = MembersVersions::new();
        for id in ids {
            let reported = match id == self.id {
                true => Some(self.own_versions()),
                false => self.peer_versions(id).await,
            };
            out.insert(id, reported);
        }
        out
    }

    fn own_versions(&self) -> Reported {
        Reported {
            server: chorus_config::ETCD_COMPAT_VERSION.to_string(),
            cluster: self
                .cluster_version()
                .map_or_else(|| NOT_DECIDED.to_string(), Version::to_semver),
        }
    }

    async fn peer_versions(&self, id: u64) -> Option<Reported> {
        let ask = self.transport.versions(id);
        let answer = tokio::time::timeout(self.limits.request_timeout, ask)
            .await
            .unwrap_or(Err(EtcdError::Timeout));
        match answer {
            Ok(r) if !r.etcd_server.is_empty() => Some(Reported {
                server: r.etcd_server,
                cluster: r.etcd_cluster,
            }),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(remote_member_id = %format!("{id:x}"), "failed to get version: {e}");
                None
            }
        }
    }

    /// On the leader: proposes the cluster version the members' versions call for. It
    /// first applies everything committed before its term (a ReadIndex round needs a
    /// commit in the term), as etcd waits for its first commit in the term: a version
    /// set under the last leader is then known, never set twice.
    pub async fn update_cluster_version_if_needed(&self) {
        if let Err(e) = self.linearizable_read().await {
            tracing::debug!("cluster version monitor: no read index yet: {e}");
            return;
        }
        let current = self.cluster_version();
        let min = rules::min_server_version(&self.members_versions().await, server_version());
        let Some(next) = rules::decide(current, min) else {
            return;
        };
        match current {
            None => {
                tracing::info!(cluster_version = %next.major_minor(), "setting up initial cluster version using v3 API")
            }
            Some(cv) => {
                tracing::info!(from = %cv.major_minor(), to = %next.major_minor(), "updating cluster version using v3 API")
            }
        }
        let set = ClusterVersionSet {
            ver: next.to_semver(),
        };
        match self
            .propose_as::<()>(None, Request::ClusterVersionSet(set))
            .await
        {
            Ok(()) => {
                tracing::info!(cluster_version = %next.major_minor(), "cluster version is updated")
            }
            Err(EtcdError::Stopped) => {
                tracing::warn!("aborting cluster version update; server is stopped")
            }
            Err(e) => tracing::warn!("failed to update cluster version: {e}"),
        }
    }

    /// On the leader: ends a downgrade job once every member runs its target.
    pub async fn cancel_downgrade_if_needed(&self) {
        let Some(job) = self.cluster().downgrade.filter(|d| d.enabled) else {
            return;
        };
        let Some(target) = Version::parse(&job.ver) else {
            return;
        };
        if !rules::versions_match_target(target, &self.members_versions().await) {
            return;
        }
        tracing::info!(cluster_version = %job.ver, "the cluster has been downgraded");
        if let Err(e) = self.downgrade_cancel().await {
            tracing::warn!("failed to cancel downgrade: {e}");
        }
    }

    /// The leader's cluster version monitor: on each leader change and every `every`.
    pub(super) async fn version_loop(self: Arc<Self>, every: Duration) {
        let mut leader = self.leader.clone();
        while !self.is_stopping() {
            tokio::select! {
                changed = leader.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(every) => {}
            }
            if self.is_leader() {
                self.update_cluster_version_if_needed().await;
            }
        }
    }

    /// The leader's downgrade check, every `every` (`--downgrade-check-time`).
    pub(super) async fn downgrade_loop(self: Arc<Self>, every: Duration) {
        self.on_leader_every(
            every,
            |m| async move { m.cancel_downgrade_if_needed().await },
        )
        .await
    }
}
