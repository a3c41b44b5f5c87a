//! `watch`: one key or range, interactive (`-i`, commands on standard input) and the exec
//! form (`watch key -- command args`, run once per event).

use std::io::{BufRead, Write};
use std::time::Duration;

use chorus_api::etcdserverpb::{ResponseHeader, WatchResponse};
use chorus_client::{Client, Error as ClientError, WatchOptions, WatchStream};
use tokio::sync::mpsc;

use crate::cli::{self, flag, short, Flag, Flags, Kind};
use crate::ctl::Ctl;
use crate::exit::{self, ExitCode};
use crate::gofmt;
use crate::printer::Printer;

pub fn flags() -> Vec<Flag> {
    vec![
        short("interactive", 'i', Kind::Bool, "false", "Interactive mode"),
        flag(
            "prefix",
            Kind::Bool,
            "false",
            "Watch on a prefix if prefix is set",
        ),
        flag("rev", Kind::Int, "0", "Revision to start watching"),
        flag(
            "prev-kv",
            Kind::Bool,
            "false",
            "get the previous key-value pair before the event happens",
        ),
    ]
}

const BAD_ARGS_NUM: &str = "bad number of arguments";
const BAD_ARGS_CONFLICT_ENV: &str = "bad number of arguments (found conflicting environment key)";
const BAD_ARGS_SEPARATOR: &str = "bad number of arguments (found separator --, but no commands)";
const BAD_ARGS_INTERACTIVE: &str = "args[0] must be 'watch' for interactive calls";

/// The options of one watcher (`--prefix`, `--rev`, `--prev-kv`).
#[derive(Debug, Clone, Copy, Default)]
struct Opts {
    prefix: bool,
    rev: i64,
    prev_kv: bool,
}

fn watch_flags() -> Flags {
    let cmd = cli::Command::new("watch", "").flags(flags());
    Flags::for_command(&cmd)
}

/// `parseWatchArgs`: the watch's key (and range end) and the command to run per event.
fn parse_watch_args(
    os_args: &[String],
    command_args: &[String],
    env_key: &str,
    env_range: &str,
    interactive: bool,
    opts: &mut Opts,
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut raw: Vec<String> = os_args.to_vec();
    let mut watch_args: Vec<String> = command_args.to_vec();
    if let Some(idx) = raw.iter().position(|a| a == "watch") {
        raw = raw[idx + 1..].to_vec();
    }
    if interactive {
        if watch_args.first().map(String::as_str) != Some("watch") {
            *opts = Opts::default();
            return Err(BAD_ARGS_INTERACTIVE.to_owned());
        }
        watch_args.remove(0);
    }
    if !interactive {
        let exec_idx = raw.iter().position(|a| a == "--");
        if exec_idx == Some(raw.len().wrapping_sub(1)) && !raw.is_empty() {
            return Err(BAD_ARGS_SEPARATOR.to_owned());
        }
        if exec_idx.is_none() && raw.is_empty() && env_key.is_empty() {
            return Err(BAD_ARGS_NUM.to_owned());
        }
        if let Some(exec_idx) = exec_idx {
            if !env_key.is_empty() {
                let mut ridx = raw.len() as isize - 1;
                for widx in (0..watch_args.len()).rev() {
                    if ridx >= 0 && watch_args[widx] == raw[ridx as usize] {
                        ridx -= 1;
                        continue;
                    }
                    if ridx == exec_idx as isize {
                        return Err(BAD_ARGS_CONFLICT_ENV.to_owned());
                    }
                }
            }
        }
        if exec_idx.is_none() && !watch_args.is_empty() && !env_key.is_empty() {
            return Err(BAD_ARGS_CONFLICT_ENV.to_owned());
        }
    } else {
        let exec_idx = watch_args.iter().position(|a| a == "--");
        if exec_idx.is_some() && exec_idx == Some(watch_args.len() - 1) {
            *opts = Opts::default();
            return Err(BAD_ARGS_SEPARATOR.to_owned());
        }
        let mut fs = watch_flags();
        let p_args = match cli::parse_flags(&mut fs, &watch_args) {
            Ok(a) => a,
            Err(e) => {
                *opts = Opts::default();
                return Err(e);
            }
        };
        if exec_idx.is_none() && env_key.is_empty() && p_args.is_empty() {
            *opts = Opts::default();
            return Err(BAD_ARGS_NUM.to_owned());
        }
        if exec_idx.is_none() && !p_args.is_empty() && !env_key.is_empty() {
            *opts = Opts::default();
            return Err(BAD_ARGS_CONFLICT_ENV.to_owned());
        }
    }
    let args_with_sep = if interactive { watch_args.clone() } else { raw };
    let sep = args_with_sep.iter().position(|a| a == "--");
    let exec_args: Vec<String> = match sep {
        Some(i) => args_with_sep[i + 1..].to_vec(),
        None => Vec::new(),
    };
    if interactive {
        let mut fs = watch_flags();
        watch_args = cli::parse_flags(&mut fs, &args_with_sep)?;
        opts.prefix = fs.bool("prefix");
        opts.rev = fs.int("rev");
        opts.prev_kv = fs.bool("prev-kv");
    }
    if !env_key.is_empty() {
        let mut ranges = vec![env_key.to_owned()];
        if !env_range.is_empty() {
            ranges.push(env_range.to_owned());
        }
        ranges.extend(watch_args);
        watch_args = ranges;
    }
    let Some(i) = sep else {
        return Ok((watch_args, Vec::new()));
    };
    let first_exec = &args_with_sep[i + 1];
    let mut end = watch_args.len() as isize - 1;
    while end >= 0 && &watch_args[end as usize] != first_exec {
        end -= 1;
    }
    watch_args.truncate(end.max(0) as usize);
    Ok((watch_args, exec_args))
}

/// `getWatchChan`'s checks and options.
fn watch_options(args: &[String], opts: Opts) -> Result<(Vec<u8>, WatchOptions), String> {
    if args.is_empty() {
        return Err(BAD_ARGS_NUM.to_owned());
    }
    let mut w = WatchOptions {
        start_revision: opts.rev,
        prev_kv: opts.prev_kv,
        ..Default::default()
    };
    if args.len() == 2 {
        if opts.prefix {
            return Err("`range_end` and `--prefix` are mutually exclusive".to_owned());
        }
        w.range_end = Some(args[1].as_bytes().to_vec());
    }
    w.prefix = opts.prefix;
    Ok((args[0].as_bytes().to_vec(), w))
}

pub async fn watch(ctl: &mut Ctl) {
    let env_key = std::env::var("ETCDCTL_WATCH_KEY").unwrap_or_default();
    let env_range = std::env::var("ETCDCTL_WATCH_RANGE_END").unwrap_or_default();
    if env_key.is_empty() && !env_range.is_empty() {
        exit::fail(
            ExitCode::BadArgs,
            &format!(
                "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={}",
                gofmt::quote(&env_range)
            ),
        );
    }
    let os_args: Vec<String> = std::env::args().collect();
    if ctl.flags.bool("interactive") {
        interactive(ctl, &os_args, &env_key, &env_range).await;
        return;
    }
    let mut opts = Opts {
        prefix: ctl.flags.bool("prefix"),
        rev: ctl.flags.int("rev"),
        prev_kv: ctl.flags.bool("prev-kv"),
    };
    let (watch_args, exec_args) =
        parse_watch_args(&os_args, &ctl.args, &env_key, &env_range, false, &mut opts)
            .unwrap_or_else(|e| exit::fail(ExitCode::BadArgs, &e));
    let client = ctl.client().await;
    let (key, wopts) =
        watch_options(&watch_args, opts).unwrap_or_else(|e| exit::fail(ExitCode::BadArgs, &e));
    print_watch(client, key, wopts, exec_args, ctl.printer, None).await;
    exit::fail(ExitCode::Interrupted, "watch is canceled by the server");
}

async fn interactive(ctl: &mut Ctl, os_args: &[String], env_key: &str, env_range: &str) {
    let client = ctl.client().await;
    let printer = ctl.printer;
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<std::io::Result<String>>();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut reader = stdin.lock();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => {
                    let _ = lines_tx.send(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "EOF",
                    )));
                    return;
                }
                Ok(_) if !line.ends_with('\n') => {
                    let _ = lines_tx.send(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "EOF",
                    )));
                    return;
                }
                Ok(_) => {
                    if lines_tx.send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = lines_tx.send(Err(e));
                    return;
                }
            }
        }
    });
    let mut progress_senders: Vec<mpsc::UnboundedSender<()>> = Vec::new();
    while let Some(line) = lines.recv().await {
        let l = match line {
            Ok(l) => l,
            Err(e) => exit::fail(
                ExitCode::InvalidInput,
                &format!("Error reading watch request line: {e}"),
            ),
        };
        let l = l.strip_suffix('\n').unwrap_or(&l).to_owned();
        let args = super::kv::argify(&l);
        if args.is_empty() {
            eprintln!("Invalid command: {l} (watch and progress supported)");
            continue;
        }
        match args[0].as_str() {
            "watch" => {
                if args.len() < 2 && env_key.is_empty() {
                    eprintln!("Invalid command {l} (command type or key is not provided)");
                    continue;
                }
                let mut opts = Opts::default();
                let (watch_args, exec_args) =
                    parse_watch_args(os_args, &args, env_key, env_range, true, &mut opts)
                        .unwrap_or_else(|e| exit::fail(ExitCode::BadArgs, &e));
                let (key, wopts) = match watch_options(&watch_args, opts) {
                    Ok(x) => x,
                    Err(e) => {
                        eprintln!("Invalid command {l} ({e})");
                        continue;
                    }
                };
                let (ptx, prx) = mpsc::unbounded_channel();
                progress_senders.push(ptx);
                tokio::spawn(print_watch(
                    client.clone(),
                    key,
                    wopts,
                    exec_args,
                    printer,
                    Some(prx),
                ));
            }
            "progress" => {
                progress_senders.retain(|tx| tx.send(()).is_ok());
            }
            _ => {
                eprintln!("Invalid command {l} (only support watch)");
                continue;
            }
        }
    }
}

/// Opens the watcher (on any reachable member), retrying while none can be reached.
async fn open(
    client: &Client,
    key: &[u8],
    opts: &WatchOptions,
) -> Result<WatchStream, ClientError> {
    loop {
        match client.watch(key.to_vec(), opts.clone()).await {
            Err(e) if e.is_transport_error() || e.is_connect_error() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// `printWatchCh`: prints every response until the server cancels the watch; resumes on
/// another member (from the next revision) when the connection breaks, as clientv3 does.
async fn print_watch(
    client: Client,
    key: Vec<u8>,
    mut opts: WatchOptions,
    exec_args: Vec<String>,
    printer: Printer,
    mut progress: Option<mpsc::UnboundedReceiver<()>>,
) {
    let mut stream = match open(&client, &key, &opts).await {
        Ok(s) => s,
        Err(ClientError::WatchCanceled {
            reason,
            compact_revision,
        }) => {
            refused(reason, compact_revision, &printer, &exec_args);
            return;
        }
        Err(e) => exit::fail(ExitCode::BadArgs, &exit::error_text(&e)),
    };
    let mut next_rev = stream
        .created()
        .header
        .as_ref()
        .map_or(0, |h| h.revision + 1);
    loop {
        let msg = match progress.as_mut() {
            Some(p) => tokio::select! {
                m = stream.message() => m,
                Some(()) = p.recv() => {
                    let _ = stream.request_progress().await;
                    continue;
                }
            },
            None => stream.message().await,
        };
        match msg {
            Ok(Some(resp)) => {
                if resp.created {
                    continue;
                }
                if let Some(h) = &resp.header {
                    if !resp.events.is_empty() || resp.header.is_some() {
                        next_rev = next_rev.max(h.revision + 1);
                    }
                }
                handle(&resp, &printer, &exec_args);
                if resp.canceled {
                    return;
                }
            }
            Ok(None) | Err(_) => {
                // The member went away: watch again from where this stream stopped.
                if opts.start_revision == 0 || next_rev > opts.start_revision {
                    opts.start_revision = next_rev;
                }
                stream = match open(&client, &key, &opts).await {
                    Ok(s) => s,
                    Err(ClientError::WatchCanceled {
                        reason,
                        compact_revision,
                    }) => {
                        refused(reason, compact_revision, &printer, &exec_args);
                        return;
                    }
                    Err(e) => exit::fail(ExitCode::BadArgs, &exit::error_text(&e)),
                };
            }
        }
    }
}

/// A watcher cancelled as it was created. With a reason (`permission denied`, say)
/// clientv3 closes the watch with that reason as its error (`addSubstream`); without
/// one it is an ordinary cancelled response.
fn refused(reason: String, compact_revision: i64, printer: &Printer, exec_args: &[String]) {
    if !reason.is_empty() {
        let _ = std::io::stdout().flush();
        eprintln!("watch was canceled ({reason})");
        return;
    }
    let resp = WatchResponse {
        header: Some(ResponseHeader::default()),
        canceled: true,
        compact_revision,
        ..Default::default()
    };
    handle(&resp, printer, exec_args);
}

/// One response: the cancel note, the progress note, the events, the per-event command.
fn handle(resp: &WatchResponse, printer: &Printer, exec_args: &[String]) {
    if resp.canceled {
        let err = if resp.compact_revision != 0 {
            "etcdserver: mvcc: required revision has been compacted".to_owned()
        } else if !resp.cancel_reason.is_empty() {
            let status = tonic::Status::failed_precondition(resp.cancel_reason.clone());
            exit::error_text(&ClientError::from(status))
        } else {
            "etcdserver: mvcc: required revision is a future revision".to_owned()
        };
        let _ = std::io::stdout().flush();
        eprintln!("watch was canceled ({err})");
    }
    let revision = resp.header.as_ref().map_or(0, |h| h.revision);
    if resp.events.is_empty()
        && !resp.canceled
        && !resp.created
        && resp.compact_revision == 0
        && revision != 0
    {
        println!("progress notify: {revision}");
    }
    printer.watch(resp);
    let _ = std::io::stdout().flush();
    if exec_args.is_empty() {
        return;
    }
    for ev in &resp.events {
        let kv = ev.kv.clone().unwrap_or_default();
        let ty = if ev.r#type == 1 { "DELETE" } else { "PUT" };
        let status = std::process::Command::new(&exec_args[0])
            .args(&exec_args[1..])
            .env("ETCD_WATCH_REVISION", revision.to_string())
            .env("ETCD_WATCH_EVENT_TYPE", gofmt::quote(ty))
            .env("ETCD_WATCH_KEY", gofmt::quote_bytes(&kv.key))
            .env("ETCD_WATCH_VALUE", gofmt::quote_bytes(&kv.value))
            .status();
        let err = match status {
            Ok(s) if s.success() => None,
            Ok(s) => Some(match s.code() {
                Some(c) => format!("exit status {c}"),
                None => "signal: killed".to_owned(),
            }),
            Err(e) => Some(format!(
                "exec: {}: {}",
                gofmt::quote(&exec_args[0]),
                if e.kind() == std::io::ErrorKind::NotFound {
                    "executable file not found in $PATH".to_owned()
                } else {
                    e.to_string()
                }
            )),
        };
        if let Some(err) = err {
            let quoted: Vec<String> = exec_args.iter().map(|a| gofmt::quote(a)).collect();
            eprintln!("command [{}] error ({err})", quoted.join(" "));
            exit::exit(ExitCode::Error);
        }
    }
}
