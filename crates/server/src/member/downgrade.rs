//! Maintenance.Downgrade (etcd 3.5's `downgradeValidate`/`Enable`/`Cancel`): a downgrade
//! job is the cluster's agreement to run the previous minor version. Enabling and
//! cancelling go through raft (`DowngradeInfoSet`) into the backend and the membership
//! cache; Status reports the job as etcd 3.6 does.
//!
//! chorus's cluster version is fixed (`ETCD_CLUSTER_VERSION`), so the only valid target
//! is the minor version below it, and no member ever runs it: the job stays enabled until
//! cancelled (etcd's downgrade monitor ends it once every member runs the target).

use chorus_api::etcdserverpb::downgrade_request::DowngradeAction;
use chorus_api::etcdserverpb::{DowngradeRequest, DowngradeResponse};
use chorus_api::internalpb::internal_request::Request;
use chorus_api::internalpb::DowngradeInfoSet;
use chorus_config::ETCD_CLUSTER_VERSION;

use super::Member;
use crate::error::EtcdError;

/// A cluster version: major.minor (etcd keeps no patch in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ClusterVersion {
    major: i64,
    minor: i64,
}

impl ClusterVersion {
    /// etcd's `convertToClusterVersion`: a semantic version, or `major.minor`.
    fn parse(v: &str) -> Result<ClusterVersion, EtcdError> {
        semver(v)
            .or_else(|| semver(&format!("{v}.0")))
            .ok_or(EtcdError::WrongDowngradeVersionFormat)
    }

    /// The one version a cluster may downgrade to (etcd's `AllowedDowngradeVersion`).
    fn allowed_downgrade(self) -> ClusterVersion {
        ClusterVersion {
            minor: self.minor - 1,
            ..self
        }
    }

    /// As etcd spells a cluster version (`3.4.0`).
    fn to_semver(self) -> String {
        format!("{}.{}.0", self.major, self.minor)
    }
}

/// go-semver's `NewVersion`, keeping major and minor: `M.m.p`, each an integer, with an
/// optional `-prerelease` and `+metadata` of dot-separated alphanumerics and hyphens.
fn semver(v: &str) -> Option<ClusterVersion> {
    let (v, metadata) = v.split_once('+').unwrap_or((v, ""));
    let (v, pre) = v.split_once('-').unwrap_or((v, ""));
    let identifiers = |s: &str| {
        s.is_empty()
            || s.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
    };
    if !identifiers(pre) || !identifiers(metadata) {
        return None;
    }
    let parts: Vec<&str> = v.splitn(3, '.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return None;
    };
    patch.parse::<i64>().ok()?;
    Some(ClusterVersion {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

fn cluster_version() -> ClusterVersion {
    ClusterVersion::parse(ETCD_CLUSTER_VERSION).expect("a valid cluster version")
}

impl Member {
    /// Maintenance.Downgrade, after the caller's permission was checked.
    pub async fn downgrade(&self, r: &DowngradeRequest) -> Result<DowngradeResponse, EtcdError> {
        match DowngradeAction::try_from(r.action) {
            Ok(DowngradeAction::Validate) => self.downgrade_validate(&r.version).await,
            Ok(DowngradeAction::Enable) => self.downgrade_enable(&r.version).await,
            Ok(DowngradeAction::Cancel) => self.downgrade_cancel().await,
            Err(_) => Err(EtcdError::UnknownMethod),
        }
    }

    async fn downgrade_validate(&self, v: &str) -> Result<DowngradeResponse, EtcdError> {
        let target = ClusterVersion::parse(v)?;
        // The downgrade job as of the leader's commit index, not a stale one.
        self.linearizable_read().await?;
        if target != cluster_version().allowed_downgrade() {
            return Err(EtcdError::InvalidDowngradeTargetVersion);
        }
        if self.cluster().downgrading() {
            return Err(EtcdError::DowngradeInProcess);
        }
        Ok(version_response())
    }

    /// Answers once applied (etcd 3.5 applies it but answers "request timed out").
    async fn downgrade_enable(&self, v: &str) -> Result<DowngradeResponse, EtcdError> {
        self.downgrade_validate(v).await?;
        let set = DowngradeInfoSet {
            enabled: true,
            ver: ClusterVersion::parse(v)?.to_semver(),
        };
        self.propose_as::<()>(None, Request::DowngradeInfoSet(set))
            .await?;
        Ok(version_response())
    }

    async fn downgrade_cancel(&self) -> Result<DowngradeResponse, EtcdError> {
        self.linearizable_read().await?;
        if !self.cluster().downgrading() {
            return Err(EtcdError::NoInflightDowngrade);
        }
        let set = DowngradeInfoSet::default();
        self.propose_as::<()>(None, Request::DowngradeInfoSet(set))
            .await?;
        Ok(version_response())
    }
}

/// The cluster version, as every Downgrade answer carries it (header filled by the
/// caller).
fn version_response() -> DowngradeResponse {
    DowngradeResponse {
        header: None,
        version: cluster_version().to_semver(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: i64, minor: i64) -> ClusterVersion {
        ClusterVersion { major, minor }
    }

    #[test]
    fn versions_parse_as_etcd_converts_them() {
        assert_eq!(ClusterVersion::parse("3.4"), Ok(v(3, 4)));
        assert_eq!(ClusterVersion::parse("3.4.7"), Ok(v(3, 4)));
        assert_eq!(ClusterVersion::parse("3.4.0-rc.1+abc"), Ok(v(3, 4)));
        for bad in ["", "x", "v3.4", "3", "3.4.x", "3.4.0-r_c", "3..4"] {
            assert_eq!(
                ClusterVersion::parse(bad),
                Err(EtcdError::WrongDowngradeVersionFormat),
                "{bad}"
            );
        }
        assert_eq!(cluster_version().allowed_downgrade(), v(3, 4));
        assert_eq!(v(3, 4).to_semver(), "3.4.0");
    }
}
