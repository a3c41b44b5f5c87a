//! Versions as etcd compares them: the server version a member runs as
//! (`chorus_config::ETCD_COMPAT_VERSION`) and the cluster version the leader decides from
//! every member's server version and sets through raft (`ClusterVersionSet`, etcd 3.5's
//! v2 PUT of `/0/version`). Only major.minor counts; etcd keeps no patch in a cluster
//! version.
//!
//! ```text
//!   leader, every 4 s and on becoming leader (member/versions.rs)
//!     every member's server version ─► decide() ─► ClusterVersionSet ─► raft
//!   apply, on every member: backend meta `cluster_version`, v2 `/0/version`,
//!     the membership cache (`/version`, Status, `etcd_cluster_version`)
//!   start-up and join: detect_downgrade() / check_joinable() against what the cluster set
//! ```
//! The pure rules are in [`rules`]; the member runs them.

pub mod rules;

use chorus_config::ETCD_COMPAT_VERSION;

/// How often the leader looks at the members' versions (etcd's `monitorVersionInterval`:
/// rafthttp's connection write timeout less a second).
pub const MONITOR_VERSION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(4);

/// What `/version` reports while no cluster version is set (etcd's word).
pub const NOT_DECIDED: &str = "not_decided";

/// A cluster version: major.minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: i64,
    pub minor: i64,
}

impl Version {
    pub const fn new(major: i64, minor: i64) -> Version {
        Version { major, minor }
    }

    /// etcd's `convertToClusterVersion`: a semantic version, or `major.minor`.
    pub fn parse(v: &str) -> Option<Version> {
        semver(v).or_else(|| semver(&format!("{v}.0")))
    }

    /// A semantic version only (`3.5.1`, `3.5.0-rc.1`), as go-semver's `NewVersion`.
    pub fn parse_semver(v: &str) -> Option<Version> {
        semver(v)
    }

    /// The one version a cluster may downgrade to (etcd's `AllowedDowngradeVersion`).
    pub fn allowed_downgrade(self) -> Version {
        Version {
            minor: self.minor - 1,
            ..self
        }
    }

    /// The next minor version (what `--next-cluster-version-compatible` tolerates).
    pub fn next_minor(self) -> Version {
        Version {
            minor: self.minor + 1,
            ..self
        }
    }

    /// As etcd spells a cluster version in the store and in replies (`3.5.0`).
    pub fn to_semver(self) -> String {
        format!("{}.{}.0", self.major, self.minor)
    }

    /// As etcd's `version.Cluster` prints it (`3.5`: logs, `etcd_cluster_version`).
    pub fn major_minor(self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_semver())
    }
}

/// The version this member runs as: the etcd release whose API chorus implements.
pub fn server_version() -> Version {
    Version::parse_semver(ETCD_COMPAT_VERSION).expect("ETCD_COMPAT_VERSION is a semantic version")
}

/// go-semver's `NewVersion`, keeping major and minor: `M.m.p`, each an integer, with an
/// optional `-prerelease` and `+metadata` of dot-separated alphanumerics and hyphens.
fn semver(v: &str) -> Option<Version> {
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
    Some(Version {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_etcd_converts_them() {
        let v = Version::new;
        assert_eq!(Version::parse("3.4"), Some(v(3, 4)));
        assert_eq!(Version::parse("3.4.7"), Some(v(3, 4)));
        assert_eq!(Version::parse("3.4.0-rc.1+abc"), Some(v(3, 4)));
        for bad in ["", "x", "v3.4", "3", "3.4.x", "3.4.0-r_c", "3..4"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert_eq!(Version::parse_semver("3.4"), None);
        assert_eq!(server_version(), v(3, 5));
        assert_eq!(server_version().allowed_downgrade(), v(3, 4));
        assert_eq!(v(3, 4).to_semver(), "3.4.0");
        assert_eq!(v(3, 4).major_minor(), "3.4");
        assert!(v(3, 4) < v(3, 5) && v(2, 9) < v(3, 0));
    }
}
