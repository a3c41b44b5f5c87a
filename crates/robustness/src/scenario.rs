//! One scenario: a cluster, traffic, one kind of fault repeated, then the checks; and the
//! report directory when a check fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::watch;

use crate::cluster::{Cluster, ClusterOptions};
use crate::faults::{inject, Fault, Injection, PointKind};
use crate::history::{History, KeyRange, Request, Response, Watcher};
use crate::proxy::ProxyCounts;
use crate::traffic::{self, key, key_space, Recorder, TrafficConfig, WatchPlan};
use crate::validate::{sub_history, validate, Validation};

#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    pub fault: Fault,
    pub members: usize,
    /// Traffic time; faults are injected during it.
    pub duration: Duration,
    pub max_faults: usize,
    pub traffic: TrafficConfig,
    pub cluster: ClusterOptions,
    pub seed: u64,
    /// Linearizability search budget (steps).
    pub budget: u64,
}

impl ScenarioConfig {
    pub fn name(&self) -> String {
        format!("{}/{}m", self.fault.name(), self.members)
    }
}

/// What a scenario did and found.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub ops: usize,
    pub faults: usize,
    /// Crash points armed but not reached in time.
    pub faults_not_triggered: usize,
    pub unknown_outcomes: usize,
    pub validation: Validation,
    pub hashes: Vec<(usize, i64, u32)>,
    /// Errors of the harness itself (a member that would not come back...).
    pub errors: Vec<String>,
    pub injections: Vec<Injection>,
    /// What the peer-link proxy saw.
    pub proxy: ProxyCounts,
    pub seconds: f64,
    pub report_dir: Option<PathBuf>,
    /// The fault is a mutant: the checker must report a violation.
    pub expects_violation: bool,
    /// Against a real etcd: violations of a bug etcd has fixed since (not counted).
    pub known_etcd_bugs: Vec<String>,
}

impl Summary {
    /// A scenario with a mutant passes when the checker caught it; any other when the
    /// checker found nothing.
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.validation.ok() != self.expects_violation
    }

    pub fn verdict(&self) -> &str {
        if !self.errors.is_empty() {
            "error"
        } else if self.expects_violation {
            if self.validation.ok() {
                "MUTANT NOT CAUGHT"
            } else {
                "ok (mutant caught)"
            }
        } else if self.validation.ok() {
            "ok"
        } else if self.validation.linearizable == "ok" {
            "violations"
        } else {
            &self.validation.linearizable
        }
    }
}

/// etcd before 3.4.24 and 3.5.8 could send a requested progress notification ahead of
/// events still queued on the stream (etcd-io/etcd#15220, fixed by #15237): the checker
/// finds it in etcd 3.4.23 and 3.5.1. Those violations are set aside, the rest counts.
fn take_known_etcd_bugs(v: &mut Validation) -> Vec<String> {
    let (known, rest) = std::mem::take(&mut v.violations)
        .into_iter()
        .partition(|line| line.contains("progress notification"));
    v.violations = rest;
    known
}

/// Runs one scenario end to end. Failures of the harness (a member that does not come
/// back) are reported in `errors`; a failed check writes the report under `report_root`.
pub async fn run(
    cfg: &ScenarioConfig,
    binary: &Path,
    report_root: &Path,
    save_history: bool,
) -> Summary {
    let began = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("robust-")
        .tempdir()
        .expect("temp dir");
    let mut errors = Vec::new();
    let mut injections = Vec::new();
    let mut hashes = Vec::new();
    let mut history = History::default();
    let mut proxy = ProxyCounts::default();
    match run_inner(
        cfg,
        binary,
        dir.path(),
        &mut injections,
        &mut hashes,
        &mut history,
        &mut proxy,
    )
    .await
    {
        Ok(()) => {}
        Err(e) => errors.push(format!("{e:#}")),
    }
    // Saved before the checks, so that a history that is slow to check can be studied
    // with `--check` while (or after) it runs.
    let mut saved_history = None;
    if save_history {
        let dir = report_root.join("histories");
        let path = dir.join(format!(
            "{}-{}.json",
            cfg.name().replace('/', "-"),
            cfg.seed
        ));
        let saved = std::fs::create_dir_all(&dir)
            .map_err(anyhow::Error::from)
            .and_then(|()| Ok(std::fs::write(&path, serde_json::to_vec(&history)?)?));
        match saved {
            Ok(()) => saved_history = Some(path),
            Err(e) => errors.push(format!("saving the history: {e:#}")),
        }
    }
    let mut validation = validate(&history, cfg.budget);
    let known_etcd_bugs = if cfg.cluster.etcd {
        take_known_etcd_bugs(&mut validation)
    } else {
        Vec::new()
    };
    // Writes only: a failed read is simply left out of the checks.
    let unknown_outcomes = history
        .operations
        .iter()
        .filter(|o| o.response.is_none() && o.request.is_write())
        .count();
    let mut summary = Summary {
        scenario: cfg.name(),
        seed: cfg.seed,
        ops: history.operations.len(),
        faults: injections.iter().filter(|i| i.triggered).count(),
        faults_not_triggered: injections.iter().filter(|i| !i.triggered).count(),
        unknown_outcomes,
        validation,
        hashes,
        errors,
        injections,
        proxy,
        seconds: 0.0,
        report_dir: None,
        expects_violation: matches!(cfg.fault, Fault::Crash(c) if c.kind == PointKind::Mutant),
        known_etcd_bugs,
    };
    if summary.faults == 0 {
        summary
            .errors
            .push("no fault took effect (is the server built with --features failpoints?)".into());
    }
    summary.seconds = began.elapsed().as_secs_f64();
    if let Some(path) = &saved_history {
        let path = path.with_extension("summary.json");
        if let Err(e) = std::fs::write(
            &path,
            serde_json::to_vec_pretty(&summary).unwrap_or_default(),
        ) {
            summary.errors.push(format!("saving the summary: {e}"));
        }
    }
    if !summary.passed() {
        match write_report(report_root, dir.path(), &history, &summary) {
            Ok(p) => summary.report_dir = Some(p),
            Err(e) => summary.errors.push(format!("writing the report: {e:#}")),
        }
    }
    summary
}

async fn run_inner(
    cfg: &ScenarioConfig,
    binary: &Path,
    dir: &Path,
    injections: &mut Vec<Injection>,
    hashes: &mut Vec<(usize, i64, u32)>,
    history: &mut History,
    proxy: &mut ProxyCounts,
) -> Result<()> {
    let mut cluster = Cluster::start(binary, cfg.members, cfg.cluster.clone(), dir)
        .await
        .context("starting the cluster")?;
    let result = drive(cfg, &mut cluster, injections, hashes, history).await;
    *proxy = cluster.proxy.counts();
    cluster.shutdown().await;
    result
}

async fn drive(
    cfg: &ScenarioConfig,
    cluster: &mut Cluster,
    injections: &mut Vec<Injection>,
    hashes: &mut Vec<(usize, i64, u32)>,
    history: &mut History,
) -> Result<()> {
    let start = Instant::now();
    let rec = Recorder::new(start);
    let endpoints = cluster.endpoints();
    let n = cluster.len();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (until_tx, until_rx) = watch::channel(0i64);
    let compacted = Arc::new(AtomicI64::new(0));

    // Watchers: two reference watchers on different members, and random ones.
    let mut watcher_records = Vec::new();
    let mut watcher_tasks = Vec::new();
    let mut reference_progress = Vec::new();
    let n_ref = 2;
    for w in 0..n_ref + cfg.traffic.random_watchers {
        let reference = w < n_ref;
        let range = if reference || rng.gen_bool(0.5) {
            key_space()
        } else {
            KeyRange::single(key(rng.gen_range(0..cfg.traffic.keys)))
        };
        let record = Arc::new(Mutex::new(Watcher {
            id: w,
            range: range.clone(),
            reference,
            sessions: Vec::new(),
        }));
        watcher_records.push(record.clone());
        let members: Vec<usize> = if reference {
            (0..n).map(|i| (i + w) % n).collect()
        } else {
            (0..n).collect()
        };
        let progress = reference.then(|| Arc::new(AtomicI64::new(0)));
        if let Some(p) = &progress {
            reference_progress.push(p.clone());
        }
        let plan = WatchPlan {
            id: w,
            range,
            reference,
            members,
        };
        watcher_tasks.push((plan, progress, record, rng.gen::<u64>()));
    }
    let progress: traffic::Progress = Arc::new(reference_progress);
    let mut tasks = tokio::task::JoinSet::new();
    for (plan, own, record, seed) in watcher_tasks {
        tasks.spawn(traffic::watcher_loop(
            plan,
            endpoints.clone(),
            rec.clone(),
            seed,
            own,
            progress[0].clone(),
            compacted.clone(),
            record,
            until_rx.clone(),
            Duration::from_secs(20),
        ));
    }
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..cfg.traffic.clients {
        clients.spawn(traffic::client_loop(
            c,
            endpoints.clone(),
            cfg.traffic.clone(),
            rec.clone(),
            rng.gen(),
            stop_rx.clone(),
        ));
    }
    clients.spawn(traffic::compactor_loop(
        endpoints.clone(),
        cfg.traffic.clone(),
        rec.clone(),
        progress.clone(),
        compacted.clone(),
        stop_rx.clone(),
    ));

    // Faults, while the traffic runs.
    let traffic_end = start + cfg.duration;
    let mut fault_error = None;
    tokio::time::sleep(Duration::from_millis(700).min(cfg.duration / 4)).await;
    while Instant::now() + Duration::from_millis(500) < traffic_end
        && injections.len() < cfg.max_faults
    {
        match inject(cfg.fault, cluster, &mut rng, start).await {
            Ok(i) => injections.push(i),
            Err(e) => {
                fault_error = Some(e.context(format!("injecting {}", cfg.fault.name())));
                break;
            }
        }
        let gap = Duration::from_millis(rng.gen_range(200..1000));
        tokio::time::sleep(gap).await;
    }
    if let Some(left) = traffic_end.checked_duration_since(Instant::now()) {
        tokio::time::sleep(left).await;
    }
    let _ = stop_tx.send(true);
    // Clients end within their request timeout.
    let bound = cfg.traffic.request_timeout * 3 + Duration::from_secs(5);
    let _ = tokio::time::timeout(bound, async {
        while clients.join_next().await.is_some() {}
    })
    .await;
    clients.abort_all();

    // Heal everything and read the final state.
    let recovered = cluster
        .recover_all()
        .await
        .context("recovering the cluster after the faults");
    let final_client = traffic::client_for(&endpoints, 0, Duration::from_secs(5)).await;
    let mut final_read = None;
    for _ in 0..20 {
        let request = Request::Range {
            range: key_space(),
            revision: 0,
            serializable: false,
        };
        if let Ok(Response::Range { revision, kvs }) =
            traffic::execute(&final_client, &request).await
        {
            final_read = Some((revision, kvs));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut hash_errors = Vec::new();
    if let Some((rev, _)) = &final_read {
        let _ = until_tx.send(*rev);
        // Every member's HashKV at the final revision, once it has applied it.
        for i in 0..n {
            let c = traffic::client_for(&endpoints[i..=i], 0, Duration::from_secs(2)).await;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let applied = c
                    .get(
                        key(0),
                        chorus_client::GetOptions {
                            serializable: true,
                            ..Default::default()
                        },
                    )
                    .await
                    .map(|r| r.header.map_or(0, |h| h.revision))
                    .unwrap_or(0);
                if applied >= *rev || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            match c.hash_kv(*rev).await {
                Ok(h) => hashes.push((i, *rev, h.hash)),
                Err(e) => hash_errors.push(format!("member {i}: {e}")),
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();

    history.operations = rec.take();
    history.watchers = watcher_records
        .iter()
        .map(|w| w.lock().expect("watcher").clone())
        .collect();
    history.final_read = final_read;

    if let Some(e) = fault_error {
        return Err(e);
    }
    recovered?;
    if history.final_read.is_none() {
        anyhow::bail!("no final read succeeded");
    }
    let first = hashes.first().map(|h| h.2);
    if hashes.len() != n || hashes.iter().any(|h| Some(h.2) != first) {
        anyhow::bail!("members' HashKV at the final revision differ or are missing: {hashes:?} {hash_errors:?}");
    }
    Ok(())
}

/// Writes the report directory: members' logs and data dirs, the history, the failing
/// sub-history and the summary.
fn write_report(
    root: &Path,
    cluster_dir: &Path,
    history: &History,
    summary: &Summary,
) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = root.join(format!("{}-{stamp}", summary.scenario.replace('/', "-")));
    std::fs::create_dir_all(&dir)?;
    copy_dir(cluster_dir, &dir.join("members"))?;
    std::fs::write(
        dir.join("history.json"),
        serde_json::to_vec_pretty(history)?,
    )?;
    let failing = sub_history(history, &summary.validation.failing_ops);
    std::fs::write(
        dir.join("failing-sub-history.json"),
        serde_json::to_vec_pretty(&failing)?,
    )?;
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_vec_pretty(summary)?,
    )?;
    Ok(dir)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let ty = entry.file_type()?;
        if ty.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if ty.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Counts, for the closing lines.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub scenarios: usize,
    pub passed: usize,
    pub ops: usize,
    pub ops_checked: usize,
    pub faults: usize,
    pub unknown: usize,
    pub acked_writes: usize,
    pub acked_lost: usize,
    pub watch_events: usize,
    /// Faults that took effect, per kind (`kill-leader`, `crash-walAfterFdatasync`...).
    pub faults_by_kind: std::collections::BTreeMap<String, usize>,
}

impl Totals {
    pub fn add(&mut self, s: &Summary) {
        self.scenarios += 1;
        self.passed += usize::from(s.passed());
        self.ops += s.ops;
        self.ops_checked += s.validation.ops_checked;
        self.faults += s.faults;
        self.unknown += s.unknown_outcomes;
        self.acked_writes += s.validation.acked_writes;
        self.acked_lost += s.validation.acked_writes_lost;
        self.watch_events += s.validation.watch_events_checked;
        for i in s.injections.iter().filter(|i| i.triggered) {
            *self.faults_by_kind.entry(i.fault.clone()).or_default() += 1;
        }
    }
}

/// The one-line result of a scenario.
pub fn line(s: &Summary) -> String {
    format!(
        "{:<36} ops {:>6}  checked {:>6}  faults {:>3}{}  unknown {:>4} (resolved {:>4})  watch events {:>7}  acked writes {:>5} lost {}  {:>5.1}s  {}",
        s.scenario,
        s.ops,
        s.validation.ops_checked,
        s.faults,
        if s.faults_not_triggered > 0 { format!(" (+{} not reached)", s.faults_not_triggered) } else { String::new() },
        s.unknown_outcomes,
        s.validation.resolved,
        s.validation.watch_events_checked,
        s.validation.acked_writes,
        s.validation.acked_writes_lost,
        s.seconds,
        s.verdict(),
    ) + &if s.known_etcd_bugs.is_empty() {
        String::new()
    } else {
        format!(
            " ({} progress notifications ahead of their events: etcd-io/etcd#15220, fixed in etcd 3.4.24 and 3.5.8)",
            s.known_etcd_bugs.len()
        )
    }
}

/// The injections and the proxy's counters, for `--verbose`.
pub fn details(s: &Summary) -> String {
    let mut out = String::new();
    for i in &s.injections {
        out.push_str(&format!(
            "    {:>6.1}s {} on {:?} ({:.1}s){}: {}\n",
            i.at,
            i.fault,
            i.members,
            i.took,
            if i.triggered { "" } else { " NOT REACHED" },
            i.detail
        ));
    }
    let p = &s.proxy;
    out.push_str(&format!(
        "    proxy: {} connections ({} of unknown source), {} chunks blackholed, {} delayed, {} resets; unknown writes {} of which resolved {}\n",
        p.connections, p.unknown_sources, p.chunks_blackholed, p.chunks_delayed, p.resets, s.unknown_outcomes, s.validation.resolved
    ));
    out
}

/// Prints the details of a failed scenario.
pub fn explain(s: &Summary) -> String {
    let mut out = String::new();
    for e in &s.errors {
        out.push_str(&format!("    error: {e}\n"));
    }
    for v in s.validation.violations.iter().take(20) {
        out.push_str(&format!("    violation: {v}\n"));
    }
    if s.validation.violations.len() > 20 {
        out.push_str(&format!(
            "    ... {} more\n",
            s.validation.violations.len() - 20
        ));
    }
    if let Some(d) = &s.report_dir {
        out.push_str(&format!("    report: {}\n", d.display()));
    }
    out
}
