//! The faults, one kind per scenario, each injected repeatedly during the traffic.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;

use crate::auth_churn;
use crate::cluster::Cluster;
use crate::faultfs::{self, FsFault};
use crate::membership::{self, Stress};
use crate::proxy::LinkFault;

/// What a failpoint does when it is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    /// The member dies there, as a crash would.
    Crash,
    /// The disk fails the I/O call: the point returns the error, and the member must
    /// stop by itself without acknowledging what it could not make durable.
    DiskError,
    /// A deliberately broken member (a mutant): the point breaks a guarantee once and the
    /// member goes on. The checker must catch it: such a scenario passes only when the
    /// checker reports a violation.
    Mutant,
}

/// A failpoint in the server (`fail_point!` under the `failpoints` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPoint {
    pub name: &'static str,
    pub kind: PointKind,
    /// Hits let through before the crash are drawn from `0..=max_skip`.
    pub max_skip: u32,
    /// Reached only when a follower installs a snapshot sent by the leader.
    pub needs_snapshot_install: bool,
    /// Reached only during a defragment (which the fault asks the member for).
    pub needs_defrag: bool,
}

pub const CRASH_POINTS: &[CrashPoint] = &[
    CrashPoint {
        name: "raftBeforeSave",
        kind: PointKind::Crash,
        max_skip: 40,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "raftAfterSave",
        kind: PointKind::Crash,
        max_skip: 40,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "walBeforeFdatasync",
        kind: PointKind::Crash,
        max_skip: 40,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "walAfterFdatasync",
        kind: PointKind::Crash,
        max_skip: 40,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "backendBeforeCommit",
        kind: PointKind::Crash,
        max_skip: 10,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "backendAfterCommit",
        kind: PointKind::Crash,
        max_skip: 10,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "raftBeforeSaveSnap",
        kind: PointKind::Crash,
        max_skip: 1,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "raftAfterSaveSnap",
        kind: PointKind::Crash,
        max_skip: 1,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "applyBeforeInstallSnapshot",
        kind: PointKind::Crash,
        max_skip: 0,
        needs_snapshot_install: true,
        needs_defrag: false,
    },
    CrashPoint {
        name: "applyAfterInstallSnapshot",
        kind: PointKind::Crash,
        max_skip: 0,
        needs_snapshot_install: true,
        needs_defrag: false,
    },
    CrashPoint {
        name: "compactBeforeCommitBatch",
        kind: PointKind::Crash,
        max_skip: 0,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "compactAfterCommitBatch",
        kind: PointKind::Crash,
        max_skip: 0,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "defragBeforeRename",
        kind: PointKind::Crash,
        max_skip: 0,
        needs_snapshot_install: false,
        needs_defrag: true,
    },
    CrashPoint {
        name: "defragAfterRename",
        kind: PointKind::Crash,
        max_skip: 0,
        needs_snapshot_install: false,
        needs_defrag: true,
    },
];

/// Disk failures (fsyncgate's lesson): an fdatasync of the WAL that fails (EIO), a WAL
/// write on a full disk (ENOSPC), a backend commit that fails (EIO). The member stops; a
/// restart recovers what was durable, and no acknowledged write may be missing.
pub const DISK_ERRORS: &[CrashPoint] = &[
    CrashPoint {
        name: "walFdatasyncError",
        kind: PointKind::DiskError,
        max_skip: 40,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "walWriteError",
        kind: PointKind::DiskError,
        max_skip: 40,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
    CrashPoint {
        name: "backendCommitError",
        kind: PointKind::DiskError,
        max_skip: 10,
        needs_snapshot_install: false,
        needs_defrag: false,
    },
];

/// Mutants: `applyDropPut` answers one put with success without applying it (a lost
/// acknowledged write). Proof that the checker catches what it is there to catch.
pub const MUTANTS: &[CrashPoint] = &[CrashPoint {
    name: "applyDropPut",
    kind: PointKind::Mutant,
    max_skip: 20,
    needs_snapshot_install: false,
    needs_defrag: false,
}];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillRandom,
    KillLeader,
    KillMajority,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// A member's peer traffic, both ways, into the void; then healed.
    Blackhole,
    /// A member's peer traffic delayed with jitter.
    Delay,
    /// A fraction of a member's peer traffic dropped (connections reset).
    Drop,
    /// A member's wall clock stepped an hour or two ahead or behind (libfaketime; its
    /// monotonic clock untouched, as after an NTP step), kept for the rest of the run.
    /// Lease TTLs are an hour: a lease that expires is a violation.
    ClockJump,
    /// A member removed, wiped, added back as a learner and promoted, while the
    /// [`Stress`] strikes (crate::membership).
    MemberReplace(Stress),
    /// Auth changes with a member killed among them, then every member checked to hold
    /// them (crate::auth_churn).
    AuthChurn,
    /// A member (the leader half of the time) defragments its backend under the traffic
    /// and the compactor; the copy is written while applying goes on.
    Defrag,
    Crash(CrashPoint),
    /// A member restarted on faultfs (crate::faultfs), which fails an I/O call: the
    /// member must stop by itself, then recover on the healthy disk.
    Fs(FsFault),
}

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Fault::KillRandom => "kill-random".into(),
            Fault::KillLeader => "kill-leader".into(),
            Fault::KillMajority => "kill-majority".into(),
            Fault::Pause => "pause".into(),
            Fault::Blackhole => "blackhole".into(),
            Fault::Delay => "delay".into(),
            Fault::Drop => "drop".into(),
            Fault::ClockJump => "clock-jump".into(),
            Fault::MemberReplace(s) => format!("member-replace-under-{}", s.name()),
            Fault::AuthChurn => "auth-churn-under-kill".into(),
            Fault::Defrag => "defrag".into(),
            Fault::Crash(c) => match c.kind {
                PointKind::Crash => format!("crash-{}", c.name),
                PointKind::DiskError => format!("disk-{}", c.name),
                PointKind::Mutant => format!("mutant-{}", c.name),
            },
            Fault::Fs(f) => format!("fs-{}", f.name),
        }
    }

    pub fn all() -> Vec<Fault> {
        let mut v = vec![
            Fault::KillRandom,
            Fault::KillLeader,
            Fault::KillMajority,
            Fault::Pause,
            Fault::Blackhole,
            Fault::Delay,
            Fault::Drop,
            Fault::ClockJump,
            Fault::MemberReplace(Stress::Kill),
            Fault::MemberReplace(Stress::Partition),
            Fault::AuthChurn,
            Fault::Defrag,
        ];
        v.extend(CRASH_POINTS.iter().map(|&c| Fault::Crash(c)));
        v.extend(DISK_ERRORS.iter().map(|&c| Fault::Crash(c)));
        v.extend(faultfs::FS_FAULTS.iter().map(|&f| Fault::Fs(f)));
        v.extend(MUTANTS.iter().map(|&c| Fault::Crash(c)));
        v
    }

    /// Whether the fault means something with `members` members.
    pub fn applies_to(&self, members: usize) -> bool {
        match self {
            Fault::Blackhole | Fault::Delay | Fault::Drop | Fault::MemberReplace(_) => members > 1,
            // Replication of the changes is what it checks.
            Fault::AuthChurn => members > 1,
            Fault::Crash(c) if c.needs_snapshot_install => members > 1,
            // One member: the broken answer is the only one, so it must be caught.
            Fault::Crash(c) if c.kind == PointKind::Mutant => members == 1,
            _ => true,
        }
    }
}

/// One injection, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Injection {
    pub fault: String,
    pub members: Vec<usize>,
    /// Seconds since the run began.
    pub at: f64,
    pub took: f64,
    /// False when a crash point was armed but not reached in time.
    pub triggered: bool,
    pub detail: String,
}

/// libfaketime (Debian's `faketime` package).
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The environment that runs a member with its wall clock `hours` off.
fn clock_skew(hours: i32) -> Vec<(String, String)> {
    [
        ("LD_PRELOAD", FAKETIME_LIB.to_string()),
        ("FAKETIME", format!("{hours:+}h")),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
        ("FAKETIME_NO_CACHE", "1".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .to_vec()
}

fn pick_member(cluster: &Cluster, rng: &mut StdRng) -> usize {
    rng.gen_range(0..cluster.len())
}

/// Injects `fault` once and recovers from it (the member restarted, resumed or healed,
/// and ready again).
pub async fn inject(
    fault: Fault,
    cluster: &mut Cluster,
    rng: &mut StdRng,
    start: Instant,
) -> Result<Injection> {
    let began = Instant::now();
    let mut triggered = true;
    let mut detail = String::new();
    let members: Vec<usize> = match fault {
        Fault::KillRandom | Fault::KillLeader => {
            let m = if fault == Fault::KillLeader {
                cluster
                    .leader(Duration::from_secs(10))
                    .await
                    .context("no leader")?
            } else {
                pick_member(cluster, rng)
            };
            cluster.kill(m).await;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..800))).await;
            cluster.spawn(m, None)?;
            cluster.wait_ready(m).await?;
            vec![m]
        }
        Fault::KillMajority => {
            let mut all: Vec<usize> = (0..cluster.len()).collect();
            all.shuffle(rng);
            let doomed: Vec<usize> = all[..cluster.len() / 2 + 1].to_vec();
            for &m in &doomed {
                cluster.kill(m).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..800))).await;
            for &m in &doomed {
                cluster.spawn(m, None)?;
            }
            for &m in &doomed {
                cluster.wait_ready(m).await?;
            }
            doomed
        }
        Fault::ClockJump => {
            let m = if rng.gen_bool(0.5) {
                cluster.leader(Duration::from_secs(10)).await.unwrap_or(0)
            } else {
                pick_member(cluster, rng)
            };
            if !std::path::Path::new(FAKETIME_LIB).exists() {
                anyhow::bail!("clock-jump needs {FAKETIME_LIB} (Debian's faketime; scripts/install-test-deps.sh installs it)");
            }
            let hours = [-2, -1, 1, 2][rng.gen_range(0..4)];
            cluster.kill(m).await;
            cluster.members[m].env = clock_skew(hours);
            cluster.spawn(m, None)?;
            cluster.wait_ready(m).await?;
            detail = format!("wall clock {hours:+}h");
            vec![m]
        }
        Fault::MemberReplace(stress) => {
            let m = if rng.gen_bool(0.5) {
                cluster.leader(Duration::from_secs(10)).await.unwrap_or(0)
            } else {
                pick_member(cluster, rng)
            };
            detail = membership::replace(cluster, m, stress, rng).await?;
            vec![m]
        }
        Fault::Defrag => {
            let m = if rng.gen_bool(0.5) {
                cluster.leader(Duration::from_secs(10)).await.unwrap_or(0)
            } else {
                pick_member(cluster, rng)
            };
            let called = Instant::now();
            let answered = defragment(cluster, m).await.is_some();
            detail = format!(
                "defragment {} in {:.2} s",
                if answered { "answered" } else { "failed" },
                called.elapsed().as_secs_f64()
            );
            triggered = answered;
            vec![m]
        }
        Fault::AuthChurn => {
            detail = auth_churn::churn(cluster, rng).await?;
            (0..cluster.len()).collect()
        }
        Fault::Pause => {
            let m = if rng.gen_bool(0.5) {
                cluster.leader(Duration::from_secs(10)).await.unwrap_or(0)
            } else {
                pick_member(cluster, rng)
            };
            cluster.pause(m)?;
            let hold = Duration::from_millis(rng.gen_range(500..2500));
            detail = format!("paused m{m} {hold:?}");
            tokio::time::sleep(hold).await;
            cluster.resume(m)?;
            cluster.wait_ready(m).await?;
            vec![m]
        }
        Fault::Blackhole | Fault::Delay | Fault::Drop => {
            let m = if rng.gen_bool(0.5) {
                cluster.leader(Duration::from_secs(10)).await.unwrap_or(0)
            } else {
                pick_member(cluster, rng)
            };
            let link = match fault {
                Fault::Blackhole => LinkFault {
                    blackhole: true,
                    ..Default::default()
                },
                Fault::Delay => {
                    let delay = Duration::from_millis(rng.gen_range(50..400));
                    LinkFault {
                        delay,
                        jitter: delay / 2,
                        ..Default::default()
                    }
                }
                _ => LinkFault {
                    drop: rng.gen_range(0.05..0.4),
                    ..Default::default()
                },
            };
            // Mostly both ways; sometimes one direction only.
            let direction = rng.gen_range(0..4);
            for other in (0..cluster.len()).filter(|&o| o != m) {
                if direction != 1 {
                    cluster.proxy.set(m, other, link);
                }
                if direction != 2 {
                    cluster.proxy.set(other, m, link);
                }
            }
            let hold = Duration::from_millis(rng.gen_range(1500..4000));
            detail = format!(
                "{link:?} {} for {hold:?}",
                ["both ways", "inbound only", "outbound only", "both ways"][direction]
            );
            tokio::time::sleep(hold).await;
            let during = cluster.leader(Duration::from_secs(2)).await;
            cluster.proxy.heal();
            cluster.wait_ready(m).await?;
            detail.push_str(&format!("; leader during: {during:?}"));
            vec![m]
        }
        Fault::Fs(f) => {
            let m = pick_member(cluster, rng);
            (detail, triggered) = fs_fault(cluster, m, &f, rng).await?;
            vec![m]
        }
        Fault::Crash(point) => {
            let m = if point.needs_snapshot_install {
                // A follower, cut off long enough to need the leader's snapshot.
                let leader = cluster
                    .leader(Duration::from_secs(10))
                    .await
                    .context("no leader")?;
                (leader + 1 + rng.gen_range(0..cluster.len() - 1)) % cluster.len()
            } else {
                pick_member(cluster, rng)
            };
            let skip = rng.gen_range(0..=point.max_skip);
            let action = match point.kind {
                PointKind::Crash => "panic",
                PointKind::DiskError => "return",
                PointKind::Mutant => "1*return->off",
            };
            let spec = if skip == 0 {
                format!("{}={action}", point.name)
            } else {
                format!("{}={skip}*off->{action}", point.name)
            };
            detail = format!("FAILPOINTS={spec}");
            let others_at = if point.needs_snapshot_install {
                max_raft_index(cluster, m).await
            } else {
                0
            };
            cluster.kill(m).await;
            if point.needs_snapshot_install {
                cluster.proxy.isolate(
                    m,
                    LinkFault {
                        blackhole: true,
                        ..Default::default()
                    },
                );
            }
            cluster.spawn(m, Some(&spec))?;
            if point.needs_snapshot_install {
                // Let the others move on past the catch-up entries, then heal.
                let behind =
                    cluster.options.snapshot_catchup_entries + cluster.options.snapshot_count;
                wait_for_progress(cluster, m, others_at + behind, Duration::from_secs(15)).await;
                cluster.proxy.heal();
            }
            if point.kind == PointKind::Mutant {
                // The mutant goes on serving with its broken answer out.
                cluster.wait_ready(m).await?;
                return Ok(Injection {
                    fault: fault.name(),
                    members: vec![m],
                    at: began.duration_since(start).as_secs_f64(),
                    took: began.elapsed().as_secs_f64(),
                    triggered,
                    detail,
                });
            }
            if point.needs_defrag {
                cluster.wait_ready(m).await?;
                // The member dies inside the call: its answer is an error.
                let _ = defragment(cluster, m).await;
            }
            match cluster.wait_exit(m, Duration::from_secs(15)).await {
                Some(status) => detail.push_str(&format!("; exited with {status}")),
                None => {
                    triggered = false;
                    detail.push_str("; not reached");
                    cluster.kill(m).await;
                }
            }
            cluster.spawn(m, None)?;
            cluster.wait_ready(m).await?;
            vec![m]
        }
    };
    Ok(Injection {
        fault: fault.name(),
        members,
        at: began.duration_since(start).as_secs_f64(),
        took: began.elapsed().as_secs_f64(),
        triggered,
        detail,
    })
}

/// Restarts member `m` on faultfs failing `f`, waits for it to stop by itself, then
/// restarts it on its own directory. Returns the injection's detail and whether the
/// fault struck (the member stopped).
async fn fs_fault(
    cluster: &mut Cluster,
    m: usize,
    f: &FsFault,
    rng: &mut StdRng,
) -> Result<(String, bool)> {
    let after = rng.gen_range(0..=f.max_after);
    let mut detail = format!("{} {} fails with {} after {after}", f.op, f.path, f.errno);
    cluster.kill(m).await;
    let member = &cluster.members[m];
    let mount = faultfs::Mount::over(&member.data_dir, f, after, None, &member.log_path).await?;
    cluster.spawn(m, None)?;
    let spawned = Instant::now();
    let exit = cluster.wait_exit(m, Duration::from_secs(20)).await;
    match exit {
        Some(status) => detail.push_str(&format!(
            "; exited with {status} {:.1} s after its start",
            spawned.elapsed().as_secs_f64()
        )),
        None => {
            detail.push_str("; still running after 20 s");
            cluster.kill(m).await;
        }
    }
    mount.remove().await?;
    cluster.spawn(m, None)?;
    cluster.wait_ready(m).await?;
    Ok((detail, exit.is_some()))
}

/// Asks member `i` to defragment its backend.
async fn defragment(cluster: &Cluster, i: usize) -> Option<()> {
    let c = chorus_client::Client::connect(
        &[cluster.members[i].client_url()],
        chorus_client::ConnectOptions {
            request_timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        },
    )
    .await
    .ok()?;
    c.defragment().await.ok().map(drop)
}

async fn raft_index(cluster: &Cluster, i: usize) -> Option<u64> {
    let c = chorus_client::Client::connect(
        &[cluster.members[i].client_url()],
        chorus_client::ConnectOptions {
            request_timeout: Some(Duration::from_millis(500)),
            ..Default::default()
        },
    )
    .await
    .ok()?;
    c.status().await.ok().map(|s| s.raft_index)
}

/// The highest raft index among the members other than `m`.
async fn max_raft_index(cluster: &Cluster, m: usize) -> u64 {
    let mut max = 0;
    for i in (0..cluster.len()).filter(|&i| i != m) {
        max = max.max(raft_index(cluster, i).await.unwrap_or(0));
    }
    max
}

/// Waits (bounded) until another member's raft index reaches `index`, so that the
/// leader must send the cut-off member `m` a snapshot.
async fn wait_for_progress(cluster: &Cluster, m: usize, index: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if max_raft_index(cluster, m).await >= index {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
