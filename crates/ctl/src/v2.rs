//! The v2 commands (`ETCDCTL_API=2 chorusctl ...` or `chorusctl v2 ...`): etcdctl 3.4's
//! ctlv2 over the v2 HTTP JSON API (`/v2/keys`, `/v2/members`, `/health`).
//!
//! Global flags come before the command, the command's flags anywhere after it (urfave/cli
//! moves them to the front), each parsed as Go's `flag` package does.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use crate::exit::exit_raw;
use crate::gofmt::{self, json_str};
use crate::http::{self, path_escape, query_escape, HttpError};

const EXIT_BAD_ARGS: i32 = 1;
const EXIT_BAD_CONNECTION: i32 = 2;
const EXIT_SERVER_ERROR: i32 = 4;
const EXIT_CLUSTER_NOT_HEALTHY: i32 = 5;

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum FKind {
    Bool,
    Value,
    /// urfave/cli's `StringSliceFlag`: every occurrence adds a value (kept `\n`-joined).
    Slice,
}

/// Parses Go `flag` style arguments against `(names, kind)`; returns the values and the
/// rest of the arguments (from the first non-flag).
pub(crate) fn go_flags(
    specs: &[(&[&str], FKind)],
    args: &[String],
) -> Result<(std::collections::HashMap<String, String>, Vec<String>), String> {
    let mut values: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let Some((names, kind)) = specs.iter().find(|(names, _)| names.contains(&name)) else {
            return Err(format!("flag provided but not defined: -{name}"));
        };
        let canonical = names[0].to_owned();
        let value = match (kind, inline) {
            (_, Some(v)) => v,
            (FKind::Bool, None) => "true".to_owned(),
            (FKind::Value | FKind::Slice, None) => {
                i += 1;
                match args.get(i) {
                    Some(v) => v.clone(),
                    None => return Err(format!("flag needs an argument: -{name}")),
                }
            }
        };
        match values.get_mut(&canonical) {
            Some(all) if *kind == FKind::Slice => {
                all.push('\n');
                all.push_str(&value);
            }
            _ => {
                values.insert(canonical, value);
            }
        }
        i += 1;
    }
    Ok((values, args[i..].to_vec()))
}

/// urfave/cli's `reorderArgs`: the command's own flags (and what follows each) first, then
/// the rest; anything that is not one of its flags stays an argument.
pub(crate) fn reorder(args: &[String], specs: &[(&[&str], FKind)]) -> Vec<String> {
    let is_flag = |a: &str| {
        let name = a.trim_start_matches('-');
        let name = name.split('=').next().unwrap_or(name);
        a.starts_with('-') && specs.iter().any(|(names, _)| names.contains(&name))
    };
    let mut flags = Vec::new();
    let mut nonflags = Vec::new();
    let mut read_value = false;
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            nonflags.extend(args[i..].iter().cloned());
            break;
        }
        if read_value && !a.starts_with('-') {
            read_value = false;
            flags.push(a.clone());
            continue;
        }
        read_value = false;
        if a != "-" && is_flag(a) {
            flags.push(a.clone());
            read_value = !a.contains('=');
        } else {
            nonflags.push(a.clone());
        }
    }
    flags.extend(nonflags);
    flags
}

pub(crate) struct Global {
    output: String,
    no_sync: bool,
    endpoints: Vec<String>,
    timeout: Duration,
    total_timeout: Duration,
    /// `getTransport`'s TLS from `--ca-file/--cert-file/--key-file` (or its error, which
    /// each command reports its own way); `None`: Go's default (the system CAs).
    tls: Result<http::Tls, String>,
    /// `--username` (or `ETCDCTL_USERNAME`): `user[:password]`.
    username: String,
    /// The basic-auth header, made (and the password asked for) on first need.
    authorization: std::sync::OnceLock<Option<String>>,
}

impl Global {
    /// `newClient`'s credentials: `--username user:password`, or `user` and the password
    /// asked on the terminal (`Password: `); every request then carries basic auth.
    pub(crate) fn authorization(&self) -> Option<&str> {
        self.authorization
            .get_or_init(|| {
                if self.username.is_empty() {
                    return None;
                }
                let (user, password) = match self.username.split_once(':') {
                    Some((u, p)) => (u.to_owned(), p.to_owned()),
                    None => {
                        let password = chorus_client::prompt::ask_password("Password: ")
                            .unwrap_or_else(|e| {
                                eprintln!("{e}");
                                exit_raw(1)
                            });
                        (self.username.clone(), password)
                    }
                };
                Some(http::basic_auth(&user, &password))
            })
            .as_deref()
    }

    /// A request to the v2 API with this command's credentials.
    pub(crate) fn call<'a>(&'a self, method: &'a str, path: &'a str) -> http::Call<'a> {
        http::Call {
            method,
            path_and_query: path,
            body: None,
            content_type: "application/x-www-form-urlencoded",
            authorization: self.authorization(),
        }
    }

    /// The TLS configuration; a bad one ends the command as `mustNewClient` does.
    pub(crate) fn tls(&self) -> http::Tls {
        match &self.tls {
            Ok(t) => t.clone(),
            Err(e) => {
                eprintln!("{e}");
                exit_raw(1)
            }
        }
    }
}

pub(crate) fn fail(code: i32, msg: &str) -> ! {
    eprintln!("Error:  {msg}");
    exit_raw(code)
}

/// The v2 client's `ClusterError` text: why each endpoint failed.
pub(crate) fn cluster_error_text(errors: &[String]) -> String {
    let mut s = "client: etcd cluster is unavailable or misconfigured".to_owned();
    for (i, e) in errors.iter().enumerate() {
        s += &format!("; error #{i}: {e}\n");
    }
    s
}

/// `handleError` of a request that reached no member: the cluster error, then each cause.
fn cluster_error(code: i32, errors: &[String]) -> ! {
    let detail: String = errors
        .iter()
        .enumerate()
        .map(|(i, e)| format!("error #{i}: {e}\n"))
        .collect();
    eprintln!("Error:  {}", cluster_error_text(errors));
    eprintln!("{detail}");
    exit_raw(code)
}

fn duration(v: Option<&String>, default: Duration) -> Duration {
    match v {
        Some(s) => gofmt::parse_duration(s).unwrap_or_else(|e| {
            eprintln!("invalid value {} for flag: {e}", gofmt::quote(s));
            exit_raw(2)
        }),
        None => default,
    }
}

/// etcdctl v2's `getDomainDiscoveryFlagValue`: the endpoints of `--discovery-srv` (or
/// `ETCDCTL_DISCOVERY_SRV`) from `_etcd-client-ssl._tcp` / `_etcd-client._tcp`, http ones
/// dropped with `--insecure-discovery=false`; empty without a domain. A failed lookup
/// ends the command with etcdctl's `dns lookup errors: ...` and status 1.
fn discovered_endpoints(
    g: &std::collections::HashMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let Some(domain) = g
        .get("discovery-srv")
        .filter(|v| !v.is_empty())
        .cloned()
        .or_else(|| env("ETCDCTL_DISCOVERY_SRV"))
    else {
        return Vec::new();
    };
    // A BoolTFlag: true unless given as false; the variable only turns it on.
    let insecure = g.get("insecure-discovery").is_none_or(|v| v != "false")
        || env("ETCDCTL_INSECURE_DISCOVERY").is_some();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime
        .block_on(crate::srv::endpoints(&domain, "", insecure))
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            exit_raw(1)
        })
}

pub fn run(args: Vec<String>) {
    let specs: Vec<(&[&str], FKind)> = vec![
        (&["debug"], FKind::Bool),
        (&["no-sync"], FKind::Bool),
        (&["output", "o"], FKind::Value),
        (&["discovery-srv", "D"], FKind::Value),
        (&["insecure-discovery"], FKind::Bool),
        (&["peers", "C"], FKind::Value),
        (&["endpoint"], FKind::Value),
        (&["endpoints"], FKind::Value),
        (&["cert-file"], FKind::Value),
        (&["key-file"], FKind::Value),
        (&["ca-file"], FKind::Value),
        (&["username", "u"], FKind::Value),
        (&["timeout"], FKind::Value),
        (&["total-timeout"], FKind::Value),
        (&["help", "h"], FKind::Bool),
        (&["version", "v"], FKind::Bool),
    ];
    let (g, rest) = go_flags(&specs, &args).unwrap_or_else(|e| {
        eprintln!("Incorrect Usage: {e}\n");
        exit_raw(1)
    });
    if g.contains_key("version") {
        println!("etcdctl version: {}", crate::ETCD_VERSION);
        println!("API version: 2");
        return;
    }
    let Some(cmd) = rest.first().cloned() else {
        println!("NAME:\n   etcdctl - A simple command line client for etcd.\n\nUSAGE:\n   etcdctl [global options] command [command options] [arguments...]\n\nVERSION:\n   {}\n", crate::ETCD_VERSION);
        return;
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    // urfave/cli: a flag's variable is its default; the command line wins.
    let file = |flag: &str, var: &str| {
        g.get(flag)
            .cloned()
            .or_else(|| env(var))
            .unwrap_or_default()
    };
    let files = crate::tls::TlsFiles {
        ca: file("ca-file", "ETCDCTL_CA_FILE"),
        cert: file("cert-file", "ETCDCTL_CERT_FILE"),
        key: file("key-file", "ETCDCTL_KEY_FILE"),
    };
    let tls = if files.any() {
        files
            .options()
            .and_then(|o| crate::tls::config(&o, true))
            .map(Some)
    } else {
        Ok(None)
    };
    let username = g
        .get("username")
        .filter(|v| !v.is_empty())
        .cloned()
        .or_else(|| env("ETCDCTL_USERNAME"))
        .unwrap_or_default();
    let discovered = discovered_endpoints(&g, &env);
    let peers = g
        .get("endpoints")
        .filter(|v| !v.is_empty())
        .cloned()
        .or_else(|| env("ETCDCTL_ENDPOINTS"))
        .or_else(|| g.get("endpoint").filter(|v| !v.is_empty()).cloned())
        .or_else(|| env("ETCDCTL_ENDPOINT"))
        .or_else(|| g.get("peers").filter(|v| !v.is_empty()).cloned())
        .or_else(|| env("ETCDCTL_PEERS"))
        .unwrap_or_else(|| "http://127.0.0.1:2379,http://127.0.0.1:4001".to_owned());
    // etcdctl v2's getEndpoints: what DNS found, else the flags.
    let peers = if discovered.is_empty() {
        peers
    } else {
        discovered.join(",")
    };
    let endpoints = peers
        .split(',')
        .map(|e| {
            if e.contains("://") {
                e.to_owned()
            } else if e
                .split(':')
                .next()
                .is_some_and(|h| h.starts_with(|c: char| c.is_ascii_digit()))
                && e.contains(':')
            {
                // Go's url.Parse cannot read `127.0.0.1:2379` without a scheme.
                eprintln!(
                    "parse {}: first path segment in URL cannot contain colon",
                    gofmt::quote(e)
                );
                exit_raw(1)
            } else {
                format!("http://{e}")
            }
        })
        .collect();
    let global = Global {
        output: g
            .get("output")
            .cloned()
            .unwrap_or_else(|| "simple".to_owned()),
        no_sync: g.contains_key("no-sync"),
        endpoints,
        timeout: duration(g.get("timeout"), Duration::from_secs(2)),
        total_timeout: duration(g.get("total-timeout"), Duration::from_secs(5)),
        tls,
        username,
        authorization: std::sync::OnceLock::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(command(global, &cmd, &rest[1..]));
}

fn command_specs(cmd: &str) -> Option<Vec<(&'static [&'static str], FKind)>> {
    use FKind::*;
    Some(match cmd {
        "set" => vec![
            (&["ttl"][..], Value),
            (&["swap-with-value"], Value),
            (&["swap-with-index"], Value),
        ],
        "get" => vec![(&["sort"][..], Bool), (&["quorum", "q"], Bool)],
        "mk" => vec![(&["in-order"][..], Bool), (&["ttl"], Value)],
        "mkdir" | "update" => vec![(&["ttl"][..], Value)],
        "rm" => vec![
            (&["dir"][..], Bool),
            (&["recursive", "r"], Bool),
            (&["with-value"], Value),
            (&["with-index"], Value),
        ],
        "ls" => vec![
            (&["sort"][..], Bool),
            (&["recursive", "r"], Bool),
            (&["p"], Bool),
            (&["quorum", "q"], Bool),
        ],
        "watch" => vec![
            (&["forever", "f"][..], Bool),
            (&["after-index"], Value),
            (&["recursive", "r"], Bool),
        ],
        "exec-watch" => vec![(&["after-index"][..], Value), (&["recursive", "r"], Bool)],
        "cluster-health" => vec![(&["forever", "f"][..], Bool)],
        "member" => vec![],
        _ => return None,
    })
}

async fn command(g: Global, cmd: &str, args: &[String]) {
    let Some(mut specs) = command_specs(cmd) else {
        match cmd {
            "user" | "role" | "auth" => return crate::v2auth::run(&g, cmd, args).await,
            "backup" | "setdir" | "updatedir" | "rmdir" => fail(
                1,
                &format!("the v2 command {cmd:?} is not supported by chorusctl"),
            ),
            _ => {
                eprintln!("No help topic for '{cmd}'");
                exit_raw(3)
            }
        }
    };
    specs.push((&["help", "h"], FKind::Bool));
    let reordered = reorder(args, &specs);
    let (f, pos) = go_flags(&specs, &reordered).unwrap_or_else(|e| {
        eprintln!("Incorrect Usage: {e}\n");
        exit_raw(1)
    });
    let int = |name: &str| -> i64 {
        f.get(name).map_or(0, |v| {
            gofmt::parse_int(v).unwrap_or_else(|_| {
                eprintln!(
                    "Incorrect Usage: invalid value {} for flag -{name}: parse error\n",
                    gofmt::quote(v)
                );
                exit_raw(1)
            })
        })
    };
    let flag = |name: &str| f.get(name).is_some_and(|v| v == "true" || v == "1");
    let s = |name: &str| f.get(name).cloned().unwrap_or_default();
    match cmd {
        "cluster-health" => return cluster_health(&g, flag("forever")).await,
        "member" => return member(&g, &pos).await,
        _ => {}
    }
    let mut client = V2Client::new(&g).await;
    match cmd {
        "set" | "mk" | "update" => {
            let key = pos
                .first()
                .cloned()
                .unwrap_or_else(|| fail(EXIT_BAD_ARGS, "key required"));
            let value =
                arg_or_stdin(&pos, 1).unwrap_or_else(|| fail(EXIT_BAD_ARGS, "value required"));
            let ttl = int("ttl");
            let resp = if cmd == "mk" && flag("in-order") {
                let mut form = vec![("value", value)];
                if ttl > 0 {
                    form.push(("ttl", ttl.to_string()));
                }
                client.keys("POST", &key, &[], &form).await
            } else {
                let mut params: Vec<(&str, String)> = Vec::new();
                if cmd == "set" {
                    let pv = s("swap-with-value");
                    if !pv.is_empty() {
                        params.push(("prevValue", pv));
                    }
                    let pi = int("swap-with-index");
                    if pi != 0 {
                        params.push(("prevIndex", pi.to_string()));
                    }
                } else {
                    params.push(("prevExist", (cmd == "update").to_string()));
                }
                let mut form = vec![("value", value)];
                if ttl > 0 {
                    form.push(("ttl", ttl.to_string()));
                }
                client.keys("PUT", &key, &params, &form).await
            };
            print_response(&resp, &g.output);
        }
        "mkdir" => {
            let key = pos
                .first()
                .cloned()
                .unwrap_or_else(|| fail(EXIT_BAD_ARGS, "key required"));
            let ttl = int("ttl");
            let params = vec![
                ("dir", "true".to_owned()),
                ("prevExist", "false".to_owned()),
            ];
            let mut form = Vec::new();
            if ttl > 0 {
                form.push(("ttl", ttl.to_string()));
            }
            let resp = client.keys("PUT", &key, &params, &form).await;
            if g.output != "simple" {
                print_response(&resp, &g.output);
            }
        }
        "get" => {
            let key = pos
                .first()
                .cloned()
                .unwrap_or_else(|| fail(EXIT_BAD_ARGS, "key required"));
            let resp = client
                .keys(
                    "GET",
                    &key,
                    &get_params(flag("sort"), false, flag("quorum")),
                    &[],
                )
                .await;
            if resp.node.dir {
                eprintln!("{}: is a directory", resp.node.key);
                exit_raw(1);
            }
            print_response(&resp, &g.output);
        }
        "ls" => {
            let key = pos.first().cloned().unwrap_or_else(|| "/".to_owned());
            let resp = client
                .keys(
                    "GET",
                    &key,
                    &get_params(flag("sort"), flag("recursive"), flag("quorum")),
                    &[],
                )
                .await;
            if g.output == "simple" {
                if !resp.node.dir {
                    println!("{}", resp.node.key);
                }
                fn r_print(n: &Node, slash: bool) {
                    if n.dir && slash {
                        println!("{}/", n.key);
                    } else {
                        println!("{}", n.key);
                    }
                    for c in n.nodes.iter().flatten() {
                        r_print(c, slash);
                    }
                }
                for n in resp.node.nodes.iter().flatten() {
                    r_print(n, flag("p"));
                }
            } else {
                print_response(&resp, &g.output);
            }
        }
        "rm" => {
            let key = pos
                .first()
                .cloned()
                .unwrap_or_else(|| fail(EXIT_BAD_ARGS, "key required"));
            let mut params: Vec<(&str, String)> = Vec::new();
            let pv = s("with-value");
            if !pv.is_empty() {
                params.push(("prevValue", pv));
            }
            let pi = int("with-index");
            if pi != 0 {
                params.push(("prevIndex", pi.to_string()));
            }
            if flag("dir") {
                params.push(("dir", "true".to_owned()));
            }
            if flag("recursive") {
                params.push(("recursive", "true".to_owned()));
            }
            let resp = client.keys("DELETE", &key, &params, &[]).await;
            if !resp.node.dir || g.output != "simple" {
                print_response(&resp, &g.output);
            }
        }
        "watch" => {
            let key = pos
                .first()
                .cloned()
                .unwrap_or_else(|| fail(EXIT_BAD_ARGS, "key required"));
            let recursive = flag("recursive");
            let forever = flag("forever");
            let mut index = int("after-index") as u64;
            index = if index > 0 { index + 1 } else { 0 };
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                exit_raw(0);
            });
            loop {
                let resp = client.wait(&key, index, recursive).await;
                index = resp.node.modified_index + 1;
                if resp.node.dir {
                    continue;
                }
                if recursive {
                    println!("[{}] {}", resp.action, resp.node.key);
                }
                print_response(&resp, &g.output);
                if !forever {
                    break;
                }
            }
        }
        "exec-watch" => {
            if pos.len() < 2 {
                fail(EXIT_BAD_ARGS, "key and command to exec required");
            }
            let sep = pos.iter().enumerate().any(|(i, a)| a == "--" && i != 0);
            let (key, cmd_args) = if sep {
                (pos[0].clone(), pos[2..].to_vec())
            } else {
                (pos[pos.len() - 1].clone(), pos[..pos.len() - 1].to_vec())
            };
            let mut index = int("after-index") as u64;
            index = if index > 0 { index + 1 } else { 0 };
            let recursive = flag("recursive");
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                exit_raw(0);
            });
            loop {
                let resp = client.wait(&key, index, recursive).await;
                index = resp.node.modified_index + 1;
                if resp.node.dir {
                    eprintln!("Ignored dir {} change", resp.node.key);
                    continue;
                }
                let child = std::process::Command::new(&cmd_args[0])
                    .args(&cmd_args[1..])
                    .env("ETCD_WATCH_ACTION", &resp.action)
                    .env(
                        "ETCD_WATCH_MODIFIED_INDEX",
                        resp.node.modified_index.to_string(),
                    )
                    .env("ETCD_WATCH_KEY", &resp.node.key)
                    .env("ETCD_WATCH_VALUE", &resp.node.value)
                    .spawn();
                match child {
                    Ok(mut c) => {
                        std::thread::spawn(move || {
                            let _ = c.wait();
                        });
                    }
                    Err(e) => {
                        eprint!("{e}");
                        exit_raw(1);
                    }
                }
            }
        }
        _ => unreachable!("checked by command_specs"),
    }
}

fn get_params(sorted: bool, recursive: bool, quorum: bool) -> Vec<(&'static str, String)> {
    vec![
        ("quorum", quorum.to_string()),
        ("recursive", recursive.to_string()),
        ("sorted", sorted.to_string()),
    ]
}

fn arg_or_stdin(args: &[String], i: usize) -> Option<String> {
    if let Some(a) = args.get(i) {
        return Some(a.clone());
    }
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).ok()?;
    (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
}

/// A v2 node as the client library decodes (and `-o json` re-encodes) it.
#[derive(Debug, Clone, Default)]
struct Node {
    key: String,
    dir: bool,
    value: String,
    nodes: Option<Vec<Node>>,
    created_index: u64,
    modified_index: u64,
    expiration: Option<String>,
    ttl: i64,
}

impl Node {
    fn from_json(v: &Value) -> Node {
        Node {
            key: v["key"].as_str().unwrap_or("").to_owned(),
            dir: v["dir"].as_bool().unwrap_or(false),
            value: v["value"].as_str().unwrap_or("").to_owned(),
            nodes: v["nodes"]
                .as_array()
                .map(|a| a.iter().map(Node::from_json).collect()),
            created_index: v["createdIndex"].as_u64().unwrap_or(0),
            modified_index: v["modifiedIndex"].as_u64().unwrap_or(0),
            expiration: v["expiration"].as_str().map(str::to_owned),
            ttl: v["ttl"].as_i64().unwrap_or(0),
        }
    }

    fn to_json(&self) -> String {
        let mut s = format!("{{\"key\":{}", json_str(&self.key));
        if self.dir {
            s += ",\"dir\":true";
        }
        s += &format!(",\"value\":{}", json_str(&self.value));
        match &self.nodes {
            Some(n) => {
                s += &format!(
                    ",\"nodes\":[{}]",
                    n.iter().map(Node::to_json).collect::<Vec<_>>().join(",")
                )
            }
            None => s += ",\"nodes\":null",
        }
        s += &format!(
            ",\"createdIndex\":{},\"modifiedIndex\":{}",
            self.created_index, self.modified_index
        );
        if let Some(e) = &self.expiration {
            s += &format!(",\"expiration\":{}", json_str(e));
        }
        if self.ttl != 0 {
            s += &format!(",\"ttl\":{}", self.ttl);
        }
        s + "}"
    }
}

#[derive(Debug, Clone, Default)]
struct Response {
    action: String,
    node: Node,
    prev_node: Option<Node>,
    index: u64,
}

fn print_response(r: &Response, format: &str) {
    match format {
        "simple" => {
            if r.action != "delete" {
                println!("{}", r.node.value);
            } else {
                println!(
                    "PrevNode.Value: {}",
                    r.prev_node.as_ref().map_or("", |n| n.value.as_str())
                );
            }
        }
        "extended" => {
            println!("Key: {}", r.node.key);
            println!("Created-Index: {}", r.node.created_index);
            println!("Modified-Index: {}", r.node.modified_index);
            if let Some(p) = &r.prev_node {
                println!("PrevNode.Value: {}", p.value);
            }
            println!("TTL: {}", r.node.ttl);
            println!("Index: {}", r.index);
            if r.action != "delete" {
                println!();
                println!("{}", r.node.value);
            }
        }
        "json" => {
            let prev = r
                .prev_node
                .as_ref()
                .map_or_else(|| "null".to_owned(), Node::to_json);
            println!(
                "{{\"action\":{},\"node\":{},\"prevNode\":{prev}}}",
                json_str(&r.action),
                r.node.to_json()
            );
        }
        other => eprintln!("Unsupported output format: {other}"),
    }
}

/// The v2 keys client: endpoints (synchronised from `/v2/members` unless `--no-sync`),
/// tried in turn.
pub(crate) struct V2Client<'g> {
    pub(crate) g: &'g Global,
    pub(crate) endpoints: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) total: Duration,
    pub(crate) tls: http::Tls,
}

impl<'g> V2Client<'g> {
    /// `mustNewClient`: the credentials (asked for if need be), then the member sync.
    pub(crate) async fn new(g: &'g Global) -> V2Client<'g> {
        g.authorization();
        let mut c = V2Client {
            g,
            endpoints: g.endpoints.clone(),
            timeout: g.timeout,
            total: g.total_timeout,
            tls: g.tls(),
        };
        if !g.no_sync {
            // A failed sync ends the command only when no member could be connected to
            // (`isConnectionError`); otherwise the given endpoints are used as they are.
            let members = match try_members(g).await {
                Ok(m) => m,
                Err(errors) if errors.iter().all(|e| e.connection) => {
                    let texts: Vec<String> = errors.into_iter().map(|e| e.text).collect();
                    cluster_error(EXIT_BAD_CONNECTION, &texts)
                }
                Err(_) => Vec::new(),
            };
            let urls: Vec<String> = members
                .iter()
                .flat_map(|m| m.client_urls.iter().cloned())
                .collect();
            if !urls.is_empty() {
                c.endpoints = urls;
            }
        }
        c
    }

    async fn keys(
        &mut self,
        method: &str,
        key: &str,
        params: &[(&str, String)],
        form: &[(&str, String)],
    ) -> Response {
        let mut sorted: Vec<&(&str, String)> = params.iter().collect();
        sorted.sort_by_key(|(k, _)| *k);
        let query: Vec<String> = sorted
            .iter()
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .collect();
        let mut path = format!("/v2/keys{}", path_escape(&clean_key(key)));
        if !query.is_empty() {
            path += &format!("?{}", query.join("&"));
        }
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .collect();
        let body = body.join("&");
        let deadline = tokio::time::Instant::now() + self.total;
        let mut errors = Vec::new();
        for ep in self.endpoints.clone() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let per = left.min(self.timeout.max(Duration::from_millis(1)));
            let call = http::Call {
                body: (method != "GET").then_some(body.as_str()),
                ..self.g.call(method, &path)
            };
            match http::request_as(&ep, &call, per, Some(left), &self.tls).await {
                Ok(resp) => return decode(resp),
                Err(e) => errors.push(e.text),
            }
        }
        cluster_error(EXIT_SERVER_ERROR, &errors)
    }

    /// One long-poll wait; an empty answer (the server's poll timeout) is retried.
    async fn wait(&mut self, key: &str, index: u64, recursive: bool) -> Response {
        let path = format!(
            "/v2/keys{}?recursive={recursive}&wait=true&waitIndex={index}",
            path_escape(&clean_key(key))
        );
        // Bounded only by the user (watch runs until interrupted); every round waits for
        // the server's answer.
        loop {
            let mut errors = Vec::new();
            for ep in self.endpoints.clone() {
                let call = self.g.call("GET", &path);
                match http::request_as(&ep, &call, self.timeout, None, &self.tls).await {
                    Ok(resp) if resp.body.is_empty() => {
                        errors.clear();
                        break;
                    }
                    Ok(resp) => return decode(resp),
                    Err(e) => errors.push(e.text),
                }
            }
            if !errors.is_empty() {
                cluster_error(EXIT_SERVER_ERROR, &errors);
            }
        }
    }
}

/// `path.Join("/", key)`.
pub(crate) fn clean_key(key: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in key.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn decode(resp: http::Response) -> Response {
    let index = resp
        .header("x-etcd-index")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    if resp.status != 200 && resp.status != 201 {
        let code = v["errorCode"].as_u64().unwrap_or(0);
        let msg = v["message"].as_str().unwrap_or("");
        let cause = v["cause"].as_str().unwrap_or("");
        let idx = v["index"].as_u64().unwrap_or(0);
        if v.is_null() {
            fail(
                EXIT_SERVER_ERROR,
                &format!("unexpected response status {}", resp.status),
            );
        }
        fail(
            EXIT_SERVER_ERROR,
            &format!("{code}: {msg} ({cause}) [{idx}]"),
        );
    }
    Response {
        action: v["action"].as_str().unwrap_or("").to_owned(),
        node: Node::from_json(&v["node"]),
        prev_node: v
            .get("prevNode")
            .filter(|n| !n.is_null())
            .map(Node::from_json),
        index,
    }
}

struct Member {
    id: String,
    name: String,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
}

fn member_from(v: &Value) -> Member {
    let urls = |k: &str| -> Vec<String> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Member {
        id: v["id"].as_str().unwrap_or("").to_owned(),
        name: v["name"].as_str().unwrap_or("").to_owned(),
        peer_urls: urls("peerURLs"),
        client_urls: urls("clientURLs"),
    }
}

/// GET `path` on the endpoints in turn; a member that answers wins. `Err`: why each
/// endpoint failed.
async fn try_get_any(g: &Global, path: &str) -> Result<(String, http::Response), Vec<HttpError>> {
    let deadline = tokio::time::Instant::now() + g.total_timeout;
    let tls = g.tls();
    let mut errors = Vec::new();
    for ep in &g.endpoints {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let call = g.call("GET", path);
        match http::request_as(ep, &call, left.min(g.timeout), Some(left), &tls).await {
            Ok(r) => return Ok((ep.clone(), r)),
            Err(e) => errors.push(e),
        }
    }
    Err(errors)
}

fn members_of(resp: &http::Response) -> Vec<Member> {
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    v["members"]
        .as_array()
        .map(|a| a.iter().map(member_from).collect())
        .unwrap_or_default()
}

async fn try_members(g: &Global) -> Result<Vec<Member>, Vec<HttpError>> {
    try_get_any(g, "/v2/members")
        .await
        .map(|(_, resp)| members_of(&resp))
}

/// `mustNewClient` then a members API call: a cluster that cannot be connected to is
/// exit 2; any other failure prints the cluster error and exits 1.
async fn must_get(g: &Global, path: &str) -> http::Response {
    match try_get_any(g, path).await {
        Ok((_, resp)) => resp,
        Err(errors) => {
            let texts: Vec<String> = errors.iter().map(|e| e.text.clone()).collect();
            if errors.iter().all(|e| e.connection) {
                cluster_error(EXIT_BAD_CONNECTION, &texts)
            }
            eprintln!("{}", cluster_error_text(&texts));
            exit_raw(1)
        }
    }
}

async fn member(g: &Global, args: &[String]) {
    match args.first().map(String::as_str) {
        Some("list") => {
            if args.len() != 1 {
                eprintln!("No arguments accepted");
                exit_raw(1);
            }
            let ms = members_of(&must_get(g, "/v2/members").await);
            let leader = must_get(g, "/v2/members/leader").await;
            let leader: Value = serde_json::from_slice(&leader.body).unwrap_or(Value::Null);
            let leader_id = leader["id"].as_str().unwrap_or("").to_owned();
            for m in ms {
                if m.name.is_empty() {
                    println!("{}[unstarted]: peerURLs={}", m.id, m.peer_urls.join(","));
                } else {
                    println!(
                        "{}: name={} peerURLs={} clientURLs={} isLeader={}",
                        m.id,
                        m.name,
                        m.peer_urls.join(","),
                        m.client_urls.join(","),
                        m.id == leader_id
                    );
                }
            }
        }
        Some(other @ ("add" | "remove" | "update")) => fail(
            1,
            &format!(
                "v2 member {other} is not supported by chorusctl (use the v3 `member {other}`)"
            ),
        ),
        _ => {
            println!("NAME:\n   etcdctl member - member add, remove and list subcommands\n");
        }
    }
}

async fn cluster_health(g: &Global, forever: bool) {
    if forever {
        tokio::spawn(async {
            let _ = tokio::signal::ctrl_c().await;
            exit_raw(0);
        });
    }
    let tls = match &g.tls {
        Ok(t) => t.clone(),
        Err(e) => fail(EXIT_SERVER_ERROR, e),
    };
    let deadline = tokio::time::Instant::now() + g.total_timeout;
    let mut list = None;
    let mut errors = Vec::new();
    for ep in &g.endpoints {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let call = g.call("GET", "/v2/members");
        match http::request_as(ep, &call, left.min(g.timeout), Some(left), &tls).await {
            Ok(r) => {
                let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                list = Some(
                    v["members"]
                        .as_array()
                        .map(|a| a.iter().map(member_from).collect::<Vec<_>>())
                        .unwrap_or_default(),
                );
                break;
            }
            Err(e) => errors.push(e.text),
        }
    }
    let Some(ms) = list else {
        println!("cluster may be unhealthy: failed to list members");
        cluster_error(EXIT_SERVER_ERROR, &errors);
    };
    // Bounded unless --forever, which runs until interrupted.
    loop {
        let mut healthy = 0;
        for m in &ms {
            if m.client_urls.is_empty() {
                println!(
                    "member {} is unreachable: no available published client urls",
                    m.id
                );
                continue;
            }
            let mut checked = false;
            for url in &m.client_urls {
                let resp = match http::request(
                    url,
                    "GET",
                    "/health",
                    None,
                    Duration::from_secs(30),
                    None,
                    &tls,
                )
                .await
                {
                    Ok(r) => r,
                    Err(HttpError { text: e, .. }) => {
                        println!(
                            "failed to check the health of member {} on {url}: Get {url}/health: {e}",
                            m.id
                        );
                        continue;
                    }
                };
                let v: Value = match serde_json::from_slice(&resp.body) {
                    Ok(v) => v,
                    Err(e) => {
                        println!(
                            "failed to check the health of member {} on {url}: {e}",
                            m.id
                        );
                        continue;
                    }
                };
                checked = true;
                let ok =
                    v["health"].as_str() == Some("true") || v["health"].as_bool() == Some(true);
                if ok {
                    println!("member {} is healthy: got healthy result from {url}", m.id);
                    healthy += 1;
                } else {
                    println!(
                        "member {} is unhealthy: got unhealthy result from {url}",
                        m.id
                    );
                }
                break;
            }
            if !checked {
                println!(
                    "member {} is unreachable: [{}] are all unreachable",
                    m.id,
                    m.client_urls.join(" ")
                );
            }
        }
        if healthy == ms.len() {
            println!("cluster is healthy");
        } else if healthy == 0 {
            println!("cluster is unavailable");
        } else {
            println!("cluster is degraded");
        }
        if !forever {
            exit_raw(if healthy == ms.len() {
                0
            } else {
                EXIT_CLUSTER_NOT_HEALTHY
            });
        }
        println!("\nnext check after 10 second...\n");
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}
