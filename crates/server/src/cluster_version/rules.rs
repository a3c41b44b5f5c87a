//! The rules etcd's leader and members follow for the cluster version, free of I/O:
//!
//! | rule                      | etcd                                                     |
//! | ---                       | ---                                                      |
//! | [`min_server_version`]    | `decideClusterVersion` (3.5) / `membersMinimalServerVersion` (3.6): unknown if any member is |
//! | [`decide`]                | `monitorVersions`: set once known, then raise, or lower by one minor |
//! | [`versions_match_target`] | `versionsMatchTarget` (3.6): every member runs the downgrade target |
//! | [`detect_downgrade`]      | `mustDetectDowngrade` with 3.4.31's `--next-cluster-version-compatible` |
//! | [`check_joinable`]        | `isCompatibleWithCluster` with the same flag             |
//!
//! One difference: while a member's version is unknown and none is set, etcd sets the
//! minimum cluster version (3.0.0) and raises it later; chorus waits until every member
//! answered, so a new cluster writes its version once (docs/compatibility.md).

use std::collections::BTreeMap;

use super::Version;

/// The oldest cluster version a member joins (etcd's `MinClusterVersion`).
pub const MIN_CLUSTER_VERSION: Version = Version::new(3, 0);

/// What a member reported (etcd's `version.Versions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    /// The version it runs as (`3.5.1`).
    pub server: String,
    /// The cluster version it knows (`3.5.0`, or `not_decided`).
    pub cluster: String,
}

/// Every member's report by ID; `None`: the member did not answer.
pub type MembersVersions = BTreeMap<u64, Option<Reported>>;

/// A member cannot run at the cluster's version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("invalid downgrade; server version is lower than determined cluster version (current-server-version: {server}, determined-cluster-version: {})", .cluster.major_minor())]
    LowerThanCluster { server: Version, cluster: Version },
    #[error("incompatible with current running cluster (cluster version {cluster}, this member runs {server})")]
    Incompatible { server: Version, cluster: Version },
}

/// The lowest server version among the members, or `None` while any member's is unknown
/// or unreadable. A member newer than `local` is logged, as etcd's leader does.
pub fn min_server_version(vers: &MembersVersions, local: Version) -> Option<Version> {
    let mut min: Option<Version> = None;
    for (id, reported) in vers {
        let reported = reported.as_ref()?;
        let Some(v) = Version::parse_semver(&reported.server) else {
            tracing::warn!(remote_member_id = %format!("{id:x}"), remote_member_version = %reported.server, "failed to parse server version of remote member");
            return None;
        };
        if local < v {
            tracing::warn!(local_member_version = %local, remote_member_id = %format!("{id:x}"), remote_member_version = %reported.server, "leader found higher-versioned member");
        }
        min = Some(min.map_or(v, |m| m.min(v)));
    }
    min
}

/// etcd's `IsValidVersionChange`: up within the major version, or down by one minor (a
/// member of the previous minor runs, which only a downgrade lets in).
pub fn is_valid_change(from: Version, to: Version) -> bool {
    to == from.allowed_downgrade() || (from.major == to.major && from < to)
}

/// The cluster version the leader proposes, if any: the members' lowest server version,
/// once every member's is known, when none is set yet or the change is valid.
pub fn decide(current: Option<Version>, min_server: Option<Version>) -> Option<Version> {
    let min = min_server?;
    match current {
        None => Some(min),
        Some(cv) if is_valid_change(cv, min) => Some(min),
        Some(_) => None,
    }
}

/// Whether every member runs `target` (major.minor): a downgrade job is done.
pub fn versions_match_target(target: Version, vers: &MembersVersions) -> bool {
    vers.iter().all(|(id, reported)| {
        let v = reported
            .as_ref()
            .and_then(|r| Version::parse_semver(&r.server));
        if v.is_some_and(|v| v != target) {
            tracing::warn!(remote_member_id = %format!("{id:x}"), current_server_version = %v.map(Version::to_semver).unwrap_or_default(), target_version = %target, "remotes server has mismatching etcd version");
        }
        v == Some(target)
    })
}

/// A member runs at a cluster version no higher than its own, or, with
/// `--next-cluster-version-compatible`, one minor higher.
pub fn detect_downgrade(
    server: Version,
    cluster: Version,
    next_compatible: bool,
) -> Result<(), VersionError> {
    if server >= cluster || (next_compatible && server.next_minor() == cluster) {
        return Ok(());
    }
    Err(VersionError::LowerThanCluster { server, cluster })
}

/// A member joins a running cluster whose version is between the minimum and its own
/// (with `--next-cluster-version-compatible`, its own plus one minor).
pub fn check_joinable(
    server: Version,
    cluster: Version,
    next_compatible: bool,
) -> Result<(), VersionError> {
    let max = if next_compatible {
        server.next_minor()
    } else {
        server
    };
    if (MIN_CLUSTER_VERSION..=max).contains(&cluster) {
        return Ok(());
    }
    Err(VersionError::Incompatible { server, cluster })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V34: Version = Version::new(3, 4);
    const V35: Version = Version::new(3, 5);
    const V36: Version = Version::new(3, 6);

    fn vers(list: &[Option<&str>]) -> MembersVersions {
        list.iter()
            .enumerate()
            .map(|(i, v)| {
                let r = v.map(|s| Reported {
                    server: s.into(),
                    cluster: "not_decided".into(),
                });
                (i as u64 + 1, r)
            })
            .collect()
    }

    #[test]
    fn the_minimum_needs_every_member() {
        assert_eq!(
            min_server_version(&vers(&[Some("3.5.1"), Some("3.4.23")]), V35),
            Some(V34)
        );
        assert_eq!(min_server_version(&vers(&[Some("3.5.1"), None]), V35), None);
        assert_eq!(
            min_server_version(&vers(&[Some("3.5.1"), Some("")]), V35),
            None
        );
        assert_eq!(min_server_version(&vers(&[Some("3.6.0")]), V35), Some(V36));
        assert_eq!(min_server_version(&vers(&[]), V35), None);
    }

    #[test]
    fn the_leader_sets_once_then_raises_or_lowers_by_one() {
        assert_eq!(decide(None, None), None, "waits for every member");
        assert_eq!(decide(None, Some(V35)), Some(V35));
        assert_eq!(decide(Some(V35), Some(V35)), None);
        assert_eq!(decide(Some(V34), Some(V35)), Some(V35));
        assert_eq!(
            decide(Some(V35), Some(V34)),
            Some(V34),
            "a downgrade by one minor"
        );
        assert_eq!(decide(Some(V36), Some(V34)), None, "two minors down");
        assert_eq!(
            decide(Some(V35), Some(Version::new(4, 0))),
            None,
            "a new major"
        );
        assert_eq!(decide(Some(V35), None), None);
    }

    #[test]
    fn a_downgrade_is_done_when_every_member_runs_the_target() {
        assert!(versions_match_target(
            V34,
            &vers(&[Some("3.4.23"), Some("3.4.0")])
        ));
        assert!(!versions_match_target(
            V34,
            &vers(&[Some("3.4.23"), Some("3.5.1")])
        ));
        assert!(!versions_match_target(V34, &vers(&[Some("3.4.23"), None])));
    }

    #[test]
    fn the_next_minor_is_tolerated_only_with_the_flag() {
        assert_eq!(detect_downgrade(V35, V35, false), Ok(()));
        assert_eq!(detect_downgrade(V35, V34, false), Ok(()));
        let e = detect_downgrade(V35, V36, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid downgrade; server version is lower than determined cluster version (current-server-version: 3.5.0, determined-cluster-version: 3.6)"
        );
        assert_eq!(detect_downgrade(V35, V36, true), Ok(()));
        assert!(detect_downgrade(V35, Version::new(3, 7), true).is_err());
        assert_eq!(check_joinable(V35, V35, false), Ok(()));
        assert_eq!(check_joinable(V35, Version::new(3, 0), false), Ok(()));
        assert!(check_joinable(V35, Version::new(2, 3), true).is_err());
        assert!(check_joinable(V35, V36, false).is_err());
        assert_eq!(check_joinable(V35, V36, true), Ok(()));
        assert!(check_joinable(V35, Version::new(3, 7), true).is_err());
    }
}
