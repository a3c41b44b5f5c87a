//! Cluster identity: `--initial-cluster` parsing (etcd's `types.URLsMap`),
//! member and cluster ID derivation (etcd's `membership.NewMember` /
//! `RaftCluster.genID`), and the bootstrap checks etcd runs on a fresh member
//! (`ServerConfig.VerifyBootstrap` / `VerifyJoinExisting`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::ToSocketAddrs;

use sha1::{Digest, Sha1};

use super::config::{ClusterState, Config};
use super::error::ConfigError;
use super::goparse;
use super::url::{self, parse_url_list, sort_urls, Url};

/// A parsed `--initial-cluster`: member name to its peer URLs (sorted).
/// One name may appear several times (`a=http://x:1,a=http://y:1`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitialCluster {
    members: BTreeMap<String, Vec<Url>>,
}

impl InitialCluster {
    /// etcd's `types.NewURLsMap`: split on `,`, then on the first `=`; empty
    /// items are skipped; a missing `=` means an empty URL (an error).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in s.split(',') {
            if item.is_empty() {
                continue;
            }
            let (name, value) = match item.find('=') {
                Some(i) => (&item[..i], &item[i + 1..]),
                None => (item, ""),
            };
            raw.entry(name.to_string())
                .or_default()
                .push(value.to_string());
        }
        let mut members = BTreeMap::new();
        for (name, urls) in raw {
            members.insert(name, parse_url_list(&urls)?);
        }
        Ok(InitialCluster { members })
    }

    /// Peer URLs of `name`, if it is a member.
    pub fn get(&self, name: &str) -> Option<&[Url]> {
        self.members.get(name).map(Vec::as_slice)
    }

    /// Member names (sorted).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when no member is listed.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// (name, peer URLs) pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Url])> {
        self.members.iter().map(|(n, u)| (n.as_str(), u.as_slice()))
    }

    /// etcd's `checkDuplicateURL`: the same URL used twice anywhere.
    pub fn has_duplicate_url(&self) -> bool {
        let mut seen = BTreeSet::new();
        self.members
            .values()
            .flatten()
            .any(|u| !seen.insert(u.to_string()))
    }
}

impl fmt::Display for InitialCluster {
    /// `URLsMap.String()`: sorted `name=url` pairs joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pairs: Vec<String> = self
            .members
            .iter()
            .flat_map(|(n, urls)| urls.iter().map(move |u| format!("{n}={u}")))
            .collect();
        pairs.sort();
        f.write_str(&pairs.join(","))
    }
}

/// etcd's member ID: SHA-1 over the sorted peer URLs concatenated, then the
/// cluster token; the first 8 bytes big-endian. Used when bootstrapping.
pub fn member_id<S: AsRef<str>>(peer_urls: &[S], token: &str) -> u64 {
    member_id_at(peer_urls, token, None)
}

/// etcd's `NewMember(name, urls, token, now)`: as [`member_id`], with the
/// Unix time in seconds appended when given (`member add` uses the current
/// time so that re-adding the same URLs yields a new ID).
pub fn member_id_at<S: AsRef<str>>(peer_urls: &[S], token: &str, unix_secs: Option<i64>) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(AsRef::as_ref).collect();
    urls.sort_unstable();
    let mut h = Sha1::new();
    for u in urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    if let Some(t) = unix_secs {
        h.update(t.to_string().as_bytes());
    }
    first_u64(&h.finalize())
}

/// etcd's cluster ID (`genID`): SHA-1 over the member IDs sorted ascending,
/// each as 8 big-endian bytes; the first 8 bytes big-endian.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// etcd's `types.ID.String()`: lower-case hex without padding.
pub fn format_id(id: u64) -> String {
    format!("{id:x}")
}

/// A member of the bootstrap cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member ID.
    pub id: u64,
    /// Member name.
    pub name: String,
    /// Peer URLs (sorted string forms).
    pub peer_urls: Vec<String>,
}

/// The cluster a fresh member bootstraps with (`NewClusterFromURLsMap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapCluster {
    /// Cluster ID (only meaningful for `--initial-cluster-state new`; an
    /// existing cluster's ID is learned from its members).
    pub cluster_id: u64,
    /// This member's ID.
    pub local_id: u64,
    /// Members sorted by ID.
    pub members: Vec<Member>,
    /// The cluster token the IDs were derived from.
    pub token: String,
}

impl BootstrapCluster {
    /// etcd's `NewClusterFromURLsMap` + locating the local member.
    pub fn from_initial_cluster(
        ic: &InitialCluster,
        token: &str,
        local_name: &str,
    ) -> Result<Self, ConfigError> {
        let mut members: Vec<Member> = Vec::with_capacity(ic.len());
        for (name, urls) in ic.iter() {
            let peer_urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
            let id = member_id(&peer_urls, token);
            if let Some(other) = members.iter().find(|m| m.id == id) {
                return Err(ConfigError::Startup(format!(
                    "member exists with identical ID {} (members {:?} and {:?})",
                    format_id(id),
                    other.name,
                    name
                )));
            }
            if id == 0 {
                return Err(ConfigError::Startup(
                    "cannot use 0 as member id".to_string(),
                ));
            }
            members.push(Member {
                id,
                name: name.to_string(),
                peer_urls,
            });
        }
        members.sort_by_key(|m| m.id);
        let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
        let local_id = members
            .iter()
            .find(|m| m.name == local_name)
            .map(|m| m.id)
            .ok_or_else(|| {
                ConfigError::Startup(format!(
                    "couldn't find local name {} in the initial cluster configuration",
                    goparse::go_quote(local_name)
                ))
            })?;
        Ok(BootstrapCluster {
            cluster_id: cluster_id(&ids),
            local_id,
            members,
            token: token.to_string(),
        })
    }
}

impl Config {
    /// `--initial-cluster` parsed (etcd's `PeerURLsMapAndToken`, static case).
    pub fn initial_cluster_map(&self) -> Result<InitialCluster, ConfigError> {
        InitialCluster::parse(&self.initial_cluster)
            .map_err(|e| ConfigError::Startup(format!("error setting up initial cluster: {e}")))
    }

    /// The checks etcd runs when starting a member whose data directory holds
    /// no member yet, and the resulting cluster membership and IDs.
    ///
    /// For `--initial-cluster-state new` (`VerifyBootstrap`): the local name
    /// must be in `--initial-cluster`, its URLs there must equal
    /// `--initial-advertise-peer-urls` (hostnames are resolved as etcd does),
    /// and no URL may appear twice. For `existing` (`VerifyJoinExisting`):
    /// local name present, no duplicates, no discovery URL.
    ///
    /// Do not call it for a member that is already initialized: etcd ignores
    /// `--initial-cluster` then, and so must chorus.
    pub fn bootstrap_cluster(&self) -> Result<BootstrapCluster, ConfigError> {
        let ic = self.initial_cluster_map()?;
        let startup = |m: String| Err(ConfigError::Startup(m));
        let local = ic.get(&self.name);
        if local.is_none() {
            return startup(format!(
                "couldn't find local name {} in the initial cluster configuration",
                goparse::go_quote(&self.name)
            ));
        }
        match self.initial_cluster_state {
            ClusterState::New => {
                self.advertise_matches_cluster(&ic)?;
                if ic.has_duplicate_url() {
                    return startup(format!("initial cluster {ic} has duplicate url"));
                }
                if ic.to_string().is_empty() && self.discovery.is_empty() {
                    return startup("initial cluster unset and no discovery URL found".to_string());
                }
            }
            ClusterState::Existing => {
                if ic.has_duplicate_url() {
                    return startup(format!("initial cluster {ic} has duplicate url"));
                }
                if !self.discovery.is_empty() {
                    return startup(
                        "discovery URL should not be set when joining existing initial cluster"
                            .to_string(),
                    );
                }
            }
        }
        BootstrapCluster::from_initial_cluster(&ic, &self.initial_cluster_token, &self.name)
    }

    /// etcd's `advertiseMatchesCluster`.
    fn advertise_matches_cluster(&self, ic: &InitialCluster) -> Result<(), ConfigError> {
        let mut urls: Vec<Url> = ic.get(&self.name).unwrap_or(&[]).to_vec();
        sort_urls(&mut urls);
        let mut apurls: Vec<String> = self
            .initial_advertise_peer_urls
            .iter()
            .map(|u| u.to_string())
            .collect();
        apurls.sort();
        let url_strs: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
        let err = match urls_equal(&apurls, &url_strs) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let ap_set: BTreeSet<String> = apurls.iter().cloned().collect();
        let init_set: BTreeSet<String> = url_strs.iter().cloned().collect();
        let missing: Vec<String> = init_set
            .iter()
            .filter(|u| !ap_set.contains(*u))
            .map(|u| format!("{}={u}", self.name))
            .collect();
        if !missing.is_empty() {
            return Err(ConfigError::Startup(format!(
                "--initial-cluster has {} but missing from --initial-advertise-peer-urls={} ({err})",
                missing.join(","),
                apurls.join(",")
            )));
        }
        let mut own = InitialCluster::default();
        own.members
            .insert(self.name.clone(), self.initial_advertise_peer_urls.clone());
        let missing: Vec<&String> = ap_set.iter().filter(|u| !init_set.contains(*u)).collect();
        if !missing.is_empty() {
            let m: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Err(ConfigError::Startup(format!(
                "--initial-advertise-peer-urls has {} but missing from --initial-cluster={own}",
                m.join(",")
            )));
        }
        Err(ConfigError::Startup(format!(
            "failed to resolve {} to match --initial-cluster={own} ({err})",
            apurls.join(",")
        )))
    }
}

/// etcd's `netutil.URLStringsEqual`: equal as strings, or after resolving
/// DNS names (not `localhost`, not IPs) to their first address.
fn urls_equal(a: &[String], b: &[String]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!(
            "len({}) != len({})",
            goparse::go_quote_list(a),
            goparse::go_quote_list(b)
        ));
    }
    let parse = |v: &[String]| -> Result<Vec<Url>, String> {
        v.iter()
            .map(|s| Url::parse_go(s).map_err(|_| format!("failed to parse string to URL: {s:?}")))
            .collect()
    };
    let (mut ua, mut ub) = (parse(a)?, parse(b)?);
    sort_urls(&mut ua);
    sort_urls(&mut ub);
    if ua == ub {
        return Ok(());
    }
    for list in [&mut ua, &mut ub] {
        for u in list.iter_mut() {
            if let Some(resolved) = resolve_url(u)? {
                u.host = resolved;
            }
        }
        sort_urls(list);
    }
    for (x, y) in ua.iter().zip(&ub) {
        if x != y {
            return Err(format!(
                "resolved urls: {} != {}",
                goparse::go_quote(&x.to_string()),
                goparse::go_quote(&y.to_string())
            ));
        }
    }
    Ok(())
}

/// etcd's `resolveURL` (single attempt; etcd retries for up to 30 s).
fn resolve_url(u: &Url) -> Result<Option<String>, String> {
    if u.is_unix() {
        return Ok(None);
    }
    let (host, _) = url::split_host_port(&u.host)?;
    if host == "localhost" || url::is_ip(host) {
        return Ok(None);
    }
    let addr = u
        .host
        .to_socket_addrs()
        .map_err(|e| format!("failed to resolve {:?} ({e})", u.to_string()))?
        .next()
        .ok_or_else(|| format!("failed to resolve {:?} (no addresses)", u.to_string()))?;
    Ok(Some(addr.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values observed on real etcd 3.4.23 (`etcdctl member list -w json`).
    #[test]
    fn default_member_and_cluster_id_match_real_etcd() {
        let id = member_id(&["http://localhost:2380"], "etcd-cluster");
        assert_eq!(format_id(id), "8e9e05c52164694d");
        assert_eq!(id, 10276657743932975437);
        assert_eq!(format_id(cluster_id(&[id])), "cdf818194e3a8c32");
    }

    #[test]
    fn three_member_ids_match_real_etcd() {
        // etcd --name {a,b,c} --initial-cluster a=http://127.0.0.1:32480,b=...:32481,c=...:32482
        // (default token "etcd-cluster").
        let ic = InitialCluster::parse(
            "a=http://127.0.0.1:32480,b=http://127.0.0.1:32481,c=http://127.0.0.1:32482",
        )
        .unwrap();
        let bc = BootstrapCluster::from_initial_cluster(&ic, "etcd-cluster", "a").unwrap();
        let got: Vec<(String, String)> = bc
            .members
            .iter()
            .map(|m| (m.name.clone(), format_id(m.id)))
            .collect();
        assert_eq!(
            got,
            vec![
                ("b".to_string(), "4da201a5e2340ef6".to_string()),
                ("a".to_string(), "8343c6e5086ae8c5".to_string()),
                ("c".to_string(), "b3c63d175304d723".to_string()),
            ]
        );
        assert_eq!(format_id(bc.local_id), "8343c6e5086ae8c5");
        assert_eq!(format_id(bc.cluster_id), "e02862eea05410f3");
    }

    #[test]
    fn multi_url_member_ids_match_real_etcd() {
        // infra1 has two peer URLs, listed in the reverse of sorted order on
        // --initial-advertise-peer-urls; token "chorus-test-3".
        let ic = InitialCluster::parse(
            "infra0=http://127.0.0.1:32380,infra1=http://127.0.0.1:32391,infra1=http://127.0.0.1:32381,infra2=http://127.0.0.1:32382",
        )
        .unwrap();
        let bc = BootstrapCluster::from_initial_cluster(&ic, "chorus-test-3", "infra1").unwrap();
        let got: Vec<(&str, String)> = bc
            .members
            .iter()
            .map(|m| (m.name.as_str(), format_id(m.id)))
            .collect();
        assert_eq!(
            got,
            vec![
                ("infra0", "10e7ca12f5e0320d".to_string()),
                ("infra2", "29df83f14c096cbe".to_string()),
                ("infra1", "44be63f2ca0ccfdc".to_string()),
            ]
        );
        assert_eq!(
            bc.members[2].peer_urls,
            vec!["http://127.0.0.1:32381", "http://127.0.0.1:32391"]
        );
        assert_eq!(format_id(bc.cluster_id), "9f0fa3b8659fed8b");
        assert_eq!(bc.cluster_id, 11461559589055491467);
    }

    #[test]
    fn member_id_with_time_differs() {
        let a = member_id_at(&["http://a:1"], "t", None);
        let b = member_id_at(&["http://a:1"], "t", Some(1_700_000_000));
        assert_ne!(a, b);
    }

    #[test]
    fn urls_map_parsing_matches_etcd() {
        let ic = InitialCluster::parse("b=http://h:2,a=http://h:1,,a=http://h:0").unwrap();
        assert_eq!(ic.to_string(), "a=http://h:0,a=http://h:1,b=http://h:2");
        assert_eq!(ic.len(), 2);
        assert_eq!(
            InitialCluster::parse("default").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: "
        );
        assert_eq!(
            InitialCluster::parse("default=foo").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: foo"
        );
        assert!(InitialCluster::parse("").unwrap().is_empty());
        let dup = InitialCluster::parse("a=http://h:1,b=http://h:1").unwrap();
        assert!(dup.has_duplicate_url());
    }
}
