//! The commands. Each returns an [`Output`] with its reports:
//!
//! | command          | reports (JSON names)            | etcd's text headings              |
//! |------------------|---------------------------------|-----------------------------------|
//! | put              | `put`                           | (none)                            |
//! | range            | `range`                         | `bench with ... range` first      |
//! | txn-put          | `txn-put`                       | (none)                            |
//! | txn-mixed        | `read`, `write`                 | `Total Read Ops: N\nDetails:` ... |
//! | watch            | `watch-creation`, `put`, `events` | `Watch creation summary:` ...   |
//! | watch-latency    | `watch-latency`, `put`          | (none)                            |
//! | lease-keepalive  | `lease-keepalive`               | (none)                            |

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{bail, Context};
use chorus_client::Credentials;

use crate::cli::{Cli, Command};
use crate::conn::{ConnConfig, Conns};
use crate::driver::{self, Op, Run};
use crate::latency_log::LatencyLog;
use crate::output::{Output, RunInfo};
use crate::progress::ProgressBar;
use crate::rate::RateLimiter;
use crate::tls::TlsFlags;

mod lease;
mod put;
mod range;
mod txn;
mod watch;
mod watch_latency;

/// What every command gets: the connections, the number of workers, and whether to draw.
pub struct Ctx {
    pub conns: Conns,
    pub clients: usize,
    pub progress: bool,
    /// `--latency-log`: the driver's requests, one by one (inert without the flag).
    pub latency_log: LatencyLog,
}

impl Ctx {
    pub fn bar(&self, total: u64) -> ProgressBar {
        ProgressBar::start_if(self.progress, total)
    }

    /// `total` requests over the workers `ops` (`driver::run`), with the progress bar
    /// and the latency log.
    pub async fn drive<O: Op>(
        &self,
        ops: Vec<O>,
        total: u64,
        classes: usize,
        limiter: Option<Arc<RateLimiter>>,
    ) -> Run<O> {
        let bar = self.bar(total);
        let run = driver::run(
            ops,
            total,
            classes,
            limiter,
            bar.progress(),
            &self.latency_log,
        )
        .await;
        bar.finish();
        run
    }
}

/// etcd's benchmark `getUsernamePassword`: `--user name:password`, or `name` and the
/// password asked on the terminal (`Password: `); `--password` (chorus's addition) makes
/// `--user` the whole name. No `--user`: no authentication.
pub fn credentials(user: &str, password: &str) -> anyhow::Result<Option<Credentials>> {
    if user.is_empty() {
        return Ok(None);
    }
    if !password.is_empty() {
        return Ok(Some(Credentials::new(user, password)));
    }
    if let Some((name, password)) = user.split_once(':') {
        return Ok(Some(Credentials::new(name, password)));
    }
    match chorus_client::prompt::ask_password("Password: ") {
        Ok(password) => Ok(Some(Credentials::new(user, password))),
        Err(e) => bail!("bad user information: {user} {e}"),
    }
}

/// Connects and runs the command.
pub async fn run(cli: &Cli) -> anyhow::Result<(Output, RunInfo)> {
    let g = &cli.global;
    if g.clients == 0 {
        bail!("--clients must be at least 1");
    }
    // Created before the run: a path that cannot be written fails before any request.
    let log_file = g
        .latency_log
        .as_ref()
        .map(|path| {
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the latency log {}", path.display()))
        })
        .transpose()?;
    let config = ConnConfig {
        endpoints: g.endpoints.clone(),
        conns: g.conns,
        dial_timeout: g.dial_timeout,
        target_leader: g.target_leader,
        tls: TlsFlags {
            cacert: g.cacert.clone(),
            cert: g.cert.clone(),
            key: g.key.clone(),
            insecure_skip_verify: g.insecure_skip_tls_verify,
        },
        credentials: credentials(&g.user, &g.password)?,
    };
    // watch-latency puts on a connection of its own, as etcd's tool does.
    let extra = usize::from(matches!(cli.command, Command::WatchLatency(_)));
    let conns = config.connect(extra).await?;
    let info = RunInfo {
        endpoints: conns.endpoints.clone(),
        conns: g.conns,
        clients: g.clients,
        target_leader: g.target_leader,
    };
    let ctx = Ctx {
        conns,
        clients: g.clients,
        progress: !g.no_progress && std::io::stderr().is_terminal(),
        latency_log: match log_file {
            Some(_) => LatencyLog::enabled(),
            None => LatencyLog::default(),
        },
    };
    let output = match &cli.command {
        Command::Put(args) => put::run(&ctx, args).await?,
        Command::Range(args) => range::run(&ctx, args).await?,
        Command::TxnPut(args) => txn::run_put(&ctx, args).await?,
        Command::TxnMixed(args) => txn::run_mixed(&ctx, args).await?,
        Command::Watch(args) => watch::run(&ctx, args).await?,
        Command::WatchLatency(args) => watch_latency::run(&ctx, args).await?,
        Command::LeaseKeepalive(args) => lease::run(&ctx, args).await?,
    };
    if let (Some(file), Some(path)) = (log_file, &g.latency_log) {
        ctx.latency_log
            .write(file)
            .with_context(|| format!("cannot write the latency log {}", path.display()))?;
    }
    Ok((output, info))
}
