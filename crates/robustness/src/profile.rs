//! The profiles: `ci` (every scenario, a few seconds of traffic each, bounded in total) and
//! `soak` (longer runs, by hand).

use std::time::Duration;

use crate::cluster::ClusterOptions;
use crate::faultfs::FS_FAULTS;
use crate::faults::Fault;
use crate::membership::Stress;
use crate::scenario::ScenarioConfig;
use crate::traffic::TrafficConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    Ci,
    Soak,
    /// A few scenarios against a real etcd (`--chorus-bin` names etcd's binary).
    Etcd,
}

/// Failpoints the CI profile also runs on one member.
const CI_SINGLE_MEMBER: &[&str] = &[
    "walBeforeFdatasync",
    "backendAfterCommit",
    "walFdatasyncError",
    "defragAfterRename",
    "applyDropPut",
];

/// The `etcd` profile: faults that need no failpoint, run against a real etcd to show that
/// the checker finds etcd's histories linearizable (it does not only agree with chorus),
/// and how etcd meets the same disk faults (faultfs).
const ETCD_SCENARIOS: &[(usize, Fault)] = &[
    (3, Fault::KillRandom),
    (3, Fault::KillLeader),
    (3, Fault::Blackhole),
    (3, Fault::MemberReplace(Stress::Kill)),
    (3, Fault::MemberReplace(Stress::Partition)),
    (3, Fault::AuthChurn),
    (3, Fault::Defrag),
    (1, Fault::Pause),
    (3, Fault::Fs(FS_FAULTS[0])),
    (3, Fault::Fs(FS_FAULTS[1])),
    (3, Fault::Fs(FS_FAULTS[2])),
    (3, Fault::Fs(FS_FAULTS[3])),
];

/// The scenarios of a profile (those whose name contains `filter`). `duration` overrides the traffic time per scenario for
/// `ci` and `etcd`, and is the total time to spread over the scenarios for `soak`.
pub fn scenarios(
    profile: Profile,
    members: Option<usize>,
    seed: u64,
    duration: Option<Duration>,
    filter: Option<&str>,
) -> Vec<ScenarioConfig> {
    let mut out = Vec::new();
    let member_counts: Vec<usize> = match members {
        Some(m) => vec![m],
        None => vec![3, 1],
    };
    let faults = Fault::all();
    if profile == Profile::Etcd {
        out.extend(ETCD_SCENARIOS.iter().map(|&(m, f)| (m, f, 0)));
    }
    for &m in member_counts.iter().filter(|_| profile != Profile::Etcd) {
        for (i, fault) in faults.iter().enumerate() {
            if !fault.applies_to(m) {
                continue;
            }
            // The CI profile runs single-member clusters for a few faults only (and the mutant).
            if profile == Profile::Ci
                && members.is_none()
                && m == 1
                && !matches!(fault, Fault::KillRandom | Fault::Pause | Fault::Defrag)
                && !matches!(fault, Fault::Crash(c) if CI_SINGLE_MEMBER.contains(&c.name))
            {
                continue;
            }
            out.push((m, *fault, i));
        }
    }
    if let Some(filter) = filter {
        out.retain(|(m, fault, _)| format!("{}/{m}m", fault.name()).contains(filter));
    }
    let count = out.len().max(1) as u32;
    let per = match (profile, duration) {
        (Profile::Ci | Profile::Etcd, Some(d)) => d,
        (Profile::Ci | Profile::Etcd, None) => Duration::from_secs(7),
        (Profile::Soak, Some(total)) => (total / count).max(Duration::from_secs(20)),
        (Profile::Soak, None) => Duration::from_secs(120),
    };
    out.into_iter()
        .map(|(m, fault, i)| ScenarioConfig {
            fault,
            members: m,
            duration: per,
            max_faults: match profile {
                Profile::Ci | Profile::Etcd => 6,
                Profile::Soak => 1000,
            },
            traffic: TrafficConfig {
                clients: if profile == Profile::Soak { 6 } else { 4 },
                keys: 10,
                max_ops_per_client: match profile {
                    Profile::Ci | Profile::Etcd => 5_000,
                    Profile::Soak => 1_000_000,
                },
                request_timeout: Duration::from_secs(2),
                random_watchers: 3,
                compact_interval: Duration::from_millis(1500),
            },
            cluster: ClusterOptions {
                etcd: profile == Profile::Etcd,
                ..ClusterOptions::default()
            },
            seed: seed.wrapping_add(i as u64 * 7919 + m as u64),
            budget: 50_000_000,
        })
        .collect()
}
