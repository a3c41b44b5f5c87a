//! Maintenance.Downgrade (etcd 3.5's `downgradeValidate`/`Enable`/`Cancel`): a downgrade
//! job is the cluster's agreement to run the previous minor version. Enabling and
//! cancelling go through raft (`DowngradeInfoSet`) into the backend and the membership
//! cache; Status reports the job as etcd 3.6 does.
//!
//! Every answer and check uses the cluster version the leader set through raft
//! (`cluster_version`); the only valid target is the minor version below it. The
//! leader's downgrade check (`versions.rs`, every `--downgrade-check-time`) ends the job
//! once every member runs the target.

use chorus_api::etcdserverpb::downgrade_request::DowngradeAction;
use chorus_api::etcdserverpb::{DowngradeRequest, DowngradeResponse};
use chorus_api::internalpb::internal_request::Request;
use chorus_api::internalpb::DowngradeInfoSet;

use super::Member;
use crate::cluster_version::Version;
use crate::error::EtcdError;

fn parse_target(v: &str) -> Result<Version, EtcdError> {
    Version::parse(v).ok_or(EtcdError::WrongDowngradeVersionFormat)
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

    /// The cluster version as of the leader's commit index, not a stale one.
    async fn settled_cluster_version(&self) -> Result<Version, EtcdError> {
        self.linearizable_read().await?;
        self.cluster_version()
            .ok_or(EtcdError::ClusterVersionUnavailable)
    }

    async fn downgrade_validate(&self, v: &str) -> Result<DowngradeResponse, EtcdError> {
        let target = parse_target(v)?;
        let cv = self.settled_cluster_version().await?;
        if target != cv.allowed_downgrade() {
            return Err(EtcdError::InvalidDowngradeTargetVersion);
        }
        if self.cluster().downgrading() {
            return Err(EtcdError::DowngradeInProcess);
        }
        Ok(version_response(cv))
    }

    /// Answers once applied (etcd 3.5 applies it but answers "request timed out").
    async fn downgrade_enable(&self, v: &str) -> Result<DowngradeResponse, EtcdError> {
        let resp = self.downgrade_validate(v).await?;
        let set = DowngradeInfoSet {
            enabled: true,
            ver: parse_target(v)?.to_semver(),
        };
        self.propose_as::<()>(None, Request::DowngradeInfoSet(set))
            .await?;
        Ok(resp)
    }

    pub(super) async fn downgrade_cancel(&self) -> Result<DowngradeResponse, EtcdError> {
        self.linearizable_read().await?;
        if !self.cluster().downgrading() {
            return Err(EtcdError::NoInflightDowngrade);
        }
        let set = DowngradeInfoSet::default();
        self.propose_as::<()>(None, Request::DowngradeInfoSet(set))
            .await?;
        Ok(DowngradeResponse {
            header: None,
            version: self
                .cluster_version()
                .map(Version::to_semver)
                .unwrap_or_default(),
        })
    }
}

/// The cluster version, as every Downgrade answer carries it (header filled by the
/// caller).
fn version_response(cv: Version) -> DowngradeResponse {
    DowngradeResponse {
        header: None,
        version: cv.to_semver(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_etcd_converts_them() {
        assert_eq!(parse_target("3.4"), Ok(Version::new(3, 4)));
        assert_eq!(parse_target("3.4.7"), Ok(Version::new(3, 4)));
        assert_eq!(
            parse_target("v3.4"),
            Err(EtcdError::WrongDowngradeVersionFormat)
        );
    }
}
