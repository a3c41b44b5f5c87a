//! Which etcd wrote the data dir, from what etcd itself records: the storage version
//! (`meta/storageVersion`, 3.6+), the cluster version in the backend (`cluster`, 3.4+) and
//! in the v2 store of the snapshot (`/0/version`), and the newest cluster-version update in
//! the WAL. chorus takes over the layouts of etcd 3.3 to 3.7; anything that says otherwise
//! is refused.

use chorus_etcd_format::entry::{decode_entry, EntryPayload};
use chorus_etcd_format::snap::parse_v2_store;

use super::etcd_member::EtcdMember;
use super::TakeoverError;

/// The oldest and newest etcd minor versions (3.x) whose layout chorus reads.
pub const SUPPORTED: (u32, u32) = (3, 7);

/// A version etcd recorded, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub version: String,
    pub source: String,
}

/// Every version the member's files record.
pub fn recorded(m: &EtcdMember) -> Result<Vec<Recorded>, TakeoverError> {
    let mut out = Vec::new();
    let mut push = |version: &str, source: String| {
        out.push(Recorded {
            version: version.to_owned(),
            source,
        })
    };
    if let Some(v) = &m.meta.storage_version {
        push(v, "the backend's meta/storageVersion".into());
    }
    if let Some(v) = m.backend.cluster()?.cluster_version {
        push(&v, "the backend's cluster/clusterVersion".into());
    }
    if let Some((file, snap)) = &m.snapshot {
        if !snap.data.is_empty() {
            if let Some(v) = parse_v2_store(&snap.data)?.cluster_version() {
                push(v, format!("the v2 store of {}", file.path.display()));
            }
        }
    }
    if let Some((index, v)) = newest_in_wal(m) {
        push(&v, format!("WAL entry {index}"));
    }
    Ok(out)
}

/// The last cluster-version update in the WAL (a v2 PUT of `/0/version`, or 3.5's
/// ClusterVersionSet).
fn newest_in_wal(m: &EtcdMember) -> Option<(u64, String)> {
    m.entries.iter().rev().find_map(|e| {
        let v = match decode_entry(e).ok()? {
            EntryPayload::V2Request(r) if r.method == "PUT" && r.path == b"/0/version" => {
                String::from_utf8_lossy(&r.val).into_owned()
            }
            EntryPayload::Request(r) => r.cluster_version_set?.ver,
            _ => return None,
        };
        Some((e.index, v))
    })
}

/// Refuses any recorded version outside 3.3–3.7; returns the newest one.
pub fn check(recorded: &[Recorded]) -> Result<Option<&Recorded>, TakeoverError> {
    let mut newest: Option<(u32, &Recorded)> = None;
    for r in recorded {
        let minor = parse(&r.version)
            .filter(|&(major, minor)| major == 3 && (SUPPORTED.0..=SUPPORTED.1).contains(&minor));
        let Some((_, minor)) = minor else {
            return Err(TakeoverError::UnsupportedVersion {
                version: r.version.clone(),
                origin: r.source.clone(),
            });
        };
        if newest.is_none_or(|(n, _)| minor > n) {
            newest = Some((minor, r));
        }
    }
    Ok(newest.map(|(_, r)| r))
}

/// `3.5.0` → (3, 5).
fn parse(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: &str) -> Recorded {
        Recorded {
            version: v.into(),
            source: "test".into(),
        }
    }

    #[test]
    fn versions_outside_3_3_to_3_7_are_refused() {
        assert_eq!(check(&[]).unwrap(), None);
        let ok = [rec("3.4.0"), rec("3.5.0")];
        assert_eq!(check(&ok).unwrap().unwrap().version, "3.5.0");
        for bad in ["3.2.0", "3.8.0", "4.0.0", "2.3.7", "x"] {
            let err = check(&[rec("3.5.0"), rec(bad)]).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
            assert!(err.to_string().contains("3.3 to 3.7"), "{err}");
        }
    }
}
