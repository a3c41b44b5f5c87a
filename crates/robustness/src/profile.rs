//! The profiles: `ci` (every scenario, a few seconds of traffic each, bounded in total) and
//! `soak` (longer runs, by hand).

use std::time::Duration;

use crate::cluster::ClusterOptions;
use crate::faults::Fault;
use crate::scenario::ScenarioConfig;
use crate::traffic::TrafficConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    Ci,
    Soak,
}

/// The scenarios of a profile (those whose name contains `filter`). `duration` overrides the traffic time per scenario for
/// `ci`, and is the total time to spread over the scenarios for `soak`.
/// Failpoints the CI profile also runs on one member.
const CI_SINGLE_MEMBER: &[&str] = &[
    "walBeforeFdatasync",
    "backendAfterCommit",
    "walFdatasyncError",
    "applyDropPut",
];

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
    for &m in &member_counts {
        for (i, fault) in faults.iter().enumerate() {
            if !fault.applies_to(m) {
                continue;
            }
            // The CI profile runs single-member clusters for a few faults only (and the mutant).
            if profile == Profile::Ci
                && members.is_none()
                && m == 1
                && !matches!(fault, Fault::KillRandom | Fault::Pause)
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
        (Profile::Ci, Some(d)) => d,
        (Profile::Ci, None) => Duration::from_secs(8),
        (Profile::Soak, Some(total)) => (total / count).max(Duration::from_secs(20)),
        (Profile::Soak, None) => Duration::from_secs(120),
    };
    out.into_iter()
        .map(|(m, fault, i)| ScenarioConfig {
            fault,
            members: m,
            duration: per,
            max_faults: match profile {
                Profile::Ci => 6,
                Profile::Soak => 1000,
            },
            traffic: TrafficConfig {
                clients: if profile == Profile::Ci { 4 } else { 6 },
                keys: 10,
                max_ops_per_client: match profile {
                    Profile::Ci => 5_000,
                    Profile::Soak => 1_000_000,
                },
                request_timeout: Duration::from_secs(2),
                random_watchers: 3,
                compact_interval: Duration::from_millis(1500),
            },
            cluster: ClusterOptions::default(),
            seed: seed.wrapping_add(i as u64 * 7919 + m as u64),
            budget: 50_000_000,
        })
        .collect()
}
