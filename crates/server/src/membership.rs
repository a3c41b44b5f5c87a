//! The cluster's members as this member knows them: the backend's `members` table
//! (`chorus_storage::members`), cached for request handlers and the transport. The apply
//! thread replaces the cache after every membership change. The cluster version and the
//! downgrade job (etcd keeps them in its `RaftCluster` too) ride along.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chorus_api::internalpb::{DowngradeInfoSet, Member};
use chorus_storage::backend::{Backend, BackendError};
use parking_lot::RwLock;

use crate::cluster_version::Version;

#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub cluster_id: u64,
    pub members: BTreeMap<u64, Member>,
    /// The downgrade job last enabled or cancelled (none: never).
    pub downgrade: Option<DowngradeInfoSet>,
    /// The cluster version set through raft (none: not decided yet).
    pub version: Option<Version>,
}

impl Cluster {
    pub fn load(backend: &Backend, cluster_id: u64) -> Result<Cluster, BackendError> {
        Ok(Cluster {
            cluster_id,
            members: chorus_storage::members::load(backend)?,
            downgrade: chorus_storage::members::downgrade(backend)?,
            version: load_version(backend)?,
        })
    }

    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    pub fn url_in_use(&self, urls: &[String], except: Option<u64>) -> bool {
        self.members
            .values()
            .filter(|m| Some(m.id) != except)
            .any(|m| m.peer_urls.iter().any(|u| urls.contains(u)))
    }

    pub fn voters(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| !m.is_learner)
    }

    /// Whether a downgrade job is in progress.
    pub fn downgrading(&self) -> bool {
        self.downgrade.as_ref().is_some_and(|d| d.enabled)
    }

    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .values()
            .flat_map(|m| m.client_urls.iter().cloned())
            .collect()
    }
}

/// The cluster version the backend holds; one that does not parse is corruption.
fn load_version(backend: &Backend) -> Result<Option<Version>, BackendError> {
    let Some(v) = chorus_storage::members::cluster_version(backend)? else {
        return Ok(None);
    };
    Version::parse_semver(&v)
        .map(Some)
        .ok_or_else(|| BackendError::Corrupt {
            what: format!("cluster version {v:?}"),
        })
}

/// The membership shared by the apply thread (which replaces it) and everything that
/// reads it, with this member's learner flag kept beside it for the per-request check.
pub struct SharedCluster {
    member_id: u64,
    cluster: RwLock<Cluster>,
    learner: AtomicBool,
}

impl SharedCluster {
    pub fn new(member_id: u64, cluster: Cluster) -> SharedCluster {
        let learner = cluster.member(member_id).is_some_and(|m| m.is_learner);
        SharedCluster {
            member_id,
            cluster: RwLock::new(cluster),
            learner: AtomicBool::new(learner),
        }
    }

    pub fn get(&self) -> Cluster {
        self.cluster.read().clone()
    }

    /// Replaces the membership (the apply thread, after a change or a snapshot).
    pub fn set(&self, cluster: Cluster) {
        let learner = cluster.member(self.member_id).is_some_and(|m| m.is_learner);
        self.learner.store(learner, Ordering::Release);
        *self.cluster.write() = cluster;
    }

    /// Whether this member is a learner (etcd refuses most client requests on one).
    pub fn is_learner(&self) -> bool {
        self.learner.load(Ordering::Acquire)
    }
}
