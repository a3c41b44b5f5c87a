//! `chorus-robustness`: runs the robustness scenarios against a `chorus` binary built with
//! the `failpoints` feature and prints one line per scenario.
//!
//! ```text
//! cargo build -p chorus --features failpoints
//! cargo run -p chorus-robustness -- --profile ci
//! cargo run -p chorus-robustness -- --profile soak --duration 30m --members 3
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chorus_robustness::profile::{scenarios, Profile};
use chorus_robustness::scenario::{details, explain, line, run, Totals};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "chorus-robustness",
    about = "Linearizability and no lost writes under crashes, pauses, partitions and crash points"
)]
struct Cli {
    /// `ci`: every scenario, a few seconds each; `soak`: long runs.
    #[arg(long, value_enum, default_value = "ci")]
    profile: Profile,
    /// Traffic time per scenario (ci) or in total across scenarios (soak): 90s, 30m, 1h.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Only scenarios whose name contains this (e.g. `kill-leader`, `crash-wal`, `/1m`).
    #[arg(long)]
    scenario: Option<String>,
    /// Cluster size: 1 or 3 (default: both).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["1", "3"]))]
    members: Option<String>,
    /// Where failed scenarios leave their report directory.
    #[arg(long, default_value = "target/robustness-reports")]
    report_dir: PathBuf,
    /// The server binary (default: `chorus` next to this binary).
    #[arg(long, alias = "server")]
    chorus_bin: Option<PathBuf>,
    /// Seed of every random choice (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Repeat the scenario list until the duration is used up (soak).
    #[arg(long)]
    repeat: bool,
    /// Also keep the history of passing scenarios (under the report directory).
    #[arg(long)]
    save_history: bool,
    /// Print every injection and the proxy's counters after each scenario.
    #[arg(long, short)]
    verbose: bool,
    /// Check a saved history (JSON, as in a report directory) instead of running anything.
    #[arg(long, value_name = "HISTORY_JSON")]
    check: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "ms" => Duration::from_millis(n),
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m, h)")),
    })
}

/// `--check`: validates a saved history and prints the verdict.
fn check_file(path: &std::path::Path) -> std::process::ExitCode {
    let history: chorus_robustness::history::History = match std::fs::read(path)
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(serde_json::from_slice(&b)?))
    {
        Ok(h) => h,
        Err(e) => {
            eprintln!("chorus-robustness: {}: {e:#}", path.display());
            return std::process::ExitCode::from(2);
        }
    };
    let v = chorus_robustness::validate::validate(&history, 50_000_000);
    println!(
        "{}: operations {} checked {} unknown {} (resolved {}), linearizable: {}, acknowledged writes {} lost {}, watch events {}",
        path.display(),
        history.operations.len(),
        v.ops_checked,
        v.unknown,
        v.resolved,
        v.linearizable,
        v.acked_writes,
        v.acked_writes_lost,
        v.watch_events_checked
    );
    for line in v.violations.iter().take(20) {
        println!("  violation: {line}");
    }
    if v.ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.check {
        return check_file(path);
    }
    let binary = cli.chorus_bin.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().expect("current exe");
        me.with_file_name("chorus")
    });
    if !binary.exists() {
        eprintln!(
            "chorus-robustness: no server binary at {} (build it with `cargo build -p chorus --features failpoints`, or pass --chorus-bin)",
            binary.display()
        );
        return std::process::ExitCode::from(2);
    }
    let seed = cli.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
    });
    let members = cli
        .members
        .as_deref()
        .map(|m| m.parse::<usize>().expect("1 or 3"));
    let list = scenarios(
        cli.profile,
        members,
        seed,
        cli.duration,
        cli.scenario.as_deref(),
    );
    if list.is_empty() {
        eprintln!("chorus-robustness: no scenario matches");
        return std::process::ExitCode::from(2);
    }
    // One thread: the harness's I/O is light, the cores belong to the members, and members
    // die with the thread that spawned them (PR_SET_PDEATHSIG).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "chorus-robustness: profile {:?}, seed {seed}, {} scenarios, server {}",
        cli.profile,
        list.len(),
        binary.display()
    );
    let began = Instant::now();
    let total_budget = cli.duration.filter(|_| cli.profile == Profile::Soak);
    let mut totals = Totals::default();
    let mut failed = Vec::new();
    let mut round = 0u64;
    loop {
        for cfg in &list {
            let mut cfg = cfg.clone();
            cfg.seed = cfg.seed.wrapping_add(round * 1_000_003);
            let summary = runtime.block_on(run(&cfg, &binary, &cli.report_dir, cli.save_history));
            println!("{}", line(&summary));
            if cli.verbose {
                print!("{}", details(&summary));
            }
            if !summary.passed() {
                print!("{}", explain(&summary));
                failed.push(summary.scenario.clone());
            }
            totals.add(&summary);
        }
        round += 1;
        let more = cli.repeat && total_budget.is_some_and(|t| began.elapsed() < t);
        if !more {
            break;
        }
    }
    println!(
        "total: {} scenarios in {:.0}s; operations {} (checked for linearizability {}), faults {}, unknown outcomes {}, acknowledged writes {} lost {}, watch events checked {}",
        totals.scenarios,
        began.elapsed().as_secs_f64(),
        totals.ops,
        totals.ops_checked,
        totals.faults,
        totals.unknown,
        totals.acked_writes,
        totals.acked_lost,
        totals.watch_events
    );
    let kinds: Vec<String> = totals
        .faults_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!("faults by kind: {}", kinds.join(", "));
    for f in &failed {
        println!("FAILED: {f}");
    }
    println!(
        "{} passed, {} failed",
        totals.passed,
        totals.scenarios - totals.passed
    );
    if failed.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
