//! The cluster version the leader decided (etcd's `RaftCluster.SetVersion`): kept in the
//! backend's `meta` table, mirrored in the v2 store at `/0/version` (one v2 index, as in
//! etcd) and in the batch's copy of the membership, which `/version`, Status and
//! `etcd_cluster_version` read.

use chorus_api::internalpb::ClusterVersionSet;
use chorus_storage::members;
use parking_lot::RwLock;

use super::chain::Batch;
use super::error::ApplyError;
use super::result::{Applied, ApplyResult};
use crate::cluster_version::{rules, server_version, Version};
use crate::error::EtcdError;
use crate::membership::SharedCluster;
use crate::v2::V2Store;

pub fn set_cluster_version(
    b: &mut Batch<'_, '_, '_>,
    shared: &SharedCluster,
    v2: &RwLock<V2Store>,
    set: ClusterVersionSet,
) -> Result<ApplyResult, ApplyError> {
    let Some(version) = Version::parse_semver(&set.ver) else {
        tracing::warn!(version = %set.ver, "ignored a cluster version that is not a semantic version");
        return Ok(Err(EtcdError::Internal(format!(
            "invalid cluster version {:?}",
            set.ver
        ))));
    };
    let cluster = b.effects.cluster(|| shared.get());
    log_change(cluster.version, version);
    cluster.version = Some(version);
    members::set_cluster_version(b.tx, &version.to_semver())?;
    crate::v2::members::set_version(&mut v2.write(), &version.to_semver());
    b.effects.v2_changed = true;
    if let Err(e) = rules::detect_downgrade(server_version(), version, true) {
        tracing::error!("{e}");
    }
    log_capabilities(version);
    Ok(Ok(Applied::Done))
}

fn log_change(from: Option<Version>, to: Version) {
    match from {
        Some(from) => tracing::info!(
            from = %from.major_minor(),
            to = %to.major_minor(),
            "updated cluster version"
        ),
        None => tracing::info!(
            cluster_version = %to.major_minor(),
            "set initial cluster version"
        ),
    }
}

/// The line etcd writes whenever its cluster version is set or recovered
/// (`api.UpdateCapability`), which scripts wait for.
pub fn log_capabilities(version: Version) {
    tracing::info!(
        cluster_version = %version.major_minor(),
        "enabled capabilities for version"
    );
}
