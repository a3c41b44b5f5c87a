//! `member`, `endpoint`, `alarm`, `defrag`, `move-leader`, `snapshot`.

use std::time::Instant;

use chorus_api::etcdserverpb::{
    alarm_request::AlarmAction, AlarmRequest, AlarmResponse, DefragmentRequest, MemberAddRequest,
    MemberPromoteRequest, MemberRemoveRequest, MemberUpdateRequest, MoveLeaderRequest,
    RangeRequest, SnapshotRequest, StatusRequest,
};
use chorus_client::Client;
use prost::Message;
use tokio::io::AsyncWriteExt;

use chorus_config::{Command, Config};
use chorus_datadir::snapshot::{self, SnapshotError, SnapshotFormat};

use crate::ctl::{unary_until, Ctl};
use crate::exit::{self, ExitCode};
use crate::gofmt;
use crate::printer::EpHealth;

fn member_id_arg(ctl: &Ctl) -> u64 {
    if ctl.args.len() != 1 {
        exit::fail(ExitCode::BadArgs, "member ID is not provided");
    }
    gofmt::parse_uint_hex(&ctl.args[0]).unwrap_or_else(|e| {
        exit::fail(
            ExitCode::BadArgs,
            &format!("bad member ID arg ({e}), expecting ID in Hex"),
        )
    })
}

pub async fn member_list(ctl: &mut Ctl) {
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || {
            let mut c = client.cluster_client();
            async move {
                Ok(c.member_list(chorus_api::etcdserverpb::MemberListRequest {
                    linearizable: false,
                })
                .await?
                .into_inner())
            }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    ctl.printer.member_list(&resp);
}

/// `--peer-urls` split on commas and checked as clientv3 checks them before `MemberAdd`
/// and `MemberUpdate` (etcd's `types.NewURLs`), with Go's error text.
fn member_urls(peer_urls: &str) -> Vec<String> {
    let urls: Vec<String> = peer_urls.split(',').map(str::to_owned).collect();
    if let Err(e) = chorus_config::parse_url_list(&urls) {
        exit::fail(ExitCode::Error, &e);
    }
    urls
}

pub async fn member_add(ctl: &mut Ctl) {
    if ctl.args.is_empty() {
        exit::fail(ExitCode::BadArgs, "member name not provided");
    }
    if ctl.args.len() > 1 {
        let mut ev = "too many arguments".to_owned();
        for s in &ctl.args {
            if s.to_lowercase().starts_with("http") {
                ev += &format!(", did you mean --peer-urls={s}");
            }
        }
        exit::fail(ExitCode::BadArgs, &ev);
    }
    let name = ctl.args[0].clone();
    let peer_urls = ctl.flags.str("peer-urls");
    if peer_urls.is_empty() {
        exit::fail(ExitCode::BadArgs, "member peer urls not provided");
    }
    let urls = member_urls(&peer_urls);
    let is_learner = ctl.flags.bool("learner");
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || {
            let mut c = client.cluster_client();
            let req = MemberAddRequest {
                peer_ur_ls: urls.clone(),
                is_learner,
            };
            async move { Ok(c.member_add(req).await?.into_inner()) }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    ctl.printer.member_add(&resp);
    if ctl.printer.format == crate::printer::Format::Simple {
        let new_id = resp.member.as_ref().map_or(0, |m| m.id);
        let mut conf = Vec::new();
        for m in &resp.members {
            for u in &m.peer_ur_ls {
                let n = if m.id == new_id { &name } else { &m.name };
                conf.push(format!("{n}={u}"));
            }
        }
        println!();
        println!("ETCD_NAME={}", gofmt::quote(&name));
        println!("ETCD_INITIAL_CLUSTER={}", gofmt::quote(&conf.join(",")));
        println!(
            "ETCD_INITIAL_ADVERTISE_PEER_URLS={}",
            gofmt::quote(&peer_urls)
        );
        println!("ETCD_INITIAL_CLUSTER_STATE=\"existing\"");
    }
}

pub async fn member_remove(ctl: &mut Ctl) {
    let id = member_id_arg(ctl);
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || {
            let mut c = client.cluster_client();
            async move {
                Ok(c.member_remove(MemberRemoveRequest { id })
                    .await?
                    .into_inner())
            }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    let encoded = resp.encode_to_vec();
    ctl.printer.member_changed(
        "removed from",
        id,
        resp.header.as_ref(),
        &resp.members,
        encoded,
    );
}

pub async fn member_update(ctl: &mut Ctl) {
    let id = member_id_arg(ctl);
    let peer_urls = ctl.flags.str("peer-urls");
    if peer_urls.is_empty() {
        exit::fail(ExitCode::BadArgs, "member peer urls not provided");
    }
    let urls = member_urls(&peer_urls);
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || {
            let mut c = client.cluster_client();
            let req = MemberUpdateRequest {
                id,
                peer_ur_ls: urls.clone(),
            };
            async move { Ok(c.member_update(req).await?.into_inner()) }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    let encoded = resp.encode_to_vec();
    ctl.printer.member_changed(
        "updated in",
        id,
        resp.header.as_ref(),
        &resp.members,
        encoded,
    );
}

pub async fn member_promote(ctl: &mut Ctl) {
    let id = member_id_arg(ctl);
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || {
            let mut c = client.cluster_client();
            async move {
                Ok(c.member_promote(MemberPromoteRequest { id })
                    .await?
                    .into_inner())
            }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    let encoded = resp.encode_to_vec();
    ctl.printer.member_changed(
        "promoted in",
        id,
        resp.header.as_ref(),
        &resp.members,
        encoded,
    );
}

/// `endpointsFromCluster`: `--endpoints`, or with `--cluster` every member's client URLs.
async fn endpoints_from_cluster(ctl: &mut Ctl) -> Vec<String> {
    if !ctl.flags.bool("cluster") {
        return ctl.endpoints();
    }
    let endpoints = ctl.endpoints();
    let client = ctl.client_for(&endpoints).await;
    let resp = ctl
        .unary(&client, || client.member_list())
        .await
        .unwrap_or_else(|e| {
            exit::fail(
                ExitCode::Error,
                &format!("failed to fetch endpoints from etcd cluster member list: {e}"),
            )
        });
    resp.members
        .iter()
        .flat_map(|m| m.client_ur_ls.iter().cloned())
        .collect()
}

pub async fn endpoint_health(ctl: &mut Ctl) {
    ctl.prepare();
    let endpoints = endpoints_from_cluster(ctl).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for ep in &endpoints {
        let deadline = ctl.deadline();
        let tx = tx.clone();
        let ep = ep.clone();
        // `clientv3.New` per endpoint: one that cannot authenticate is unhealthy.
        match ctl.try_client_for(std::slice::from_ref(&ep)).await {
            Ok(client) => {
                tokio::spawn(async move {
                    let _ = tx.send(check_health(client, ep, deadline).await);
                });
            }
            Err(error) => {
                let _ = tx.send(EpHealth {
                    ep,
                    health: false,
                    took: String::new(),
                    error,
                });
            }
        }
    }
    drop(tx);
    let mut list = Vec::new();
    while let Some(h) = rx.recv().await {
        list.push(h);
    }
    let errs = list.iter().any(|h| !h.error.is_empty());
    ctl.printer.endpoint_health(&list);
    if errs {
        exit::fail(ExitCode::Error, "unhealthy cluster");
    }
}

/// etcdctl's health probe: a Get of `health`; `permission denied` is healthy too (the
/// request went through consensus).
async fn check_health(client: Client, ep: String, deadline: Instant) -> EpHealth {
    let start = Instant::now();
    let result = unary_until(&client, deadline, || {
        let mut kv = client.kv_client();
        async move {
            let req = RangeRequest {
                key: b"health".to_vec(),
                ..Default::default()
            };
            Ok(kv.range(req).await?.into_inner())
        }
    })
    .await;
    let took = gofmt::duration(start.elapsed());
    match result {
        Ok(_) => EpHealth {
            ep,
            health: true,
            took,
            error: String::new(),
        },
        Err(e) if e == "etcdserver: permission denied" => EpHealth {
            ep,
            health: true,
            took,
            error: String::new(),
        },
        Err(e) => EpHealth {
            ep,
            health: false,
            took,
            error: e,
        },
    }
}

pub async fn endpoint_status(ctl: &mut Ctl) {
    let _ = ctl.client().await;
    let mut list = Vec::new();
    let mut failed = false;
    for ep in endpoints_from_cluster(ctl).await {
        let client = ctl.client_for(std::slice::from_ref(&ep)).await;
        exit::set_passthrough(Some(&ep));
        let result = ctl
            .unary(&client, || {
                let mut m = client.maintenance_client();
                async move { Ok(m.status(StatusRequest {}).await?.into_inner()) }
            })
            .await;
        match result {
            Ok(s) => list.push((ep, s)),
            Err(e) => {
                failed = true;
                eprintln!("Failed to get the status of endpoint {ep} ({e})");
            }
        }
    }
    ctl.printer.endpoint_status(&list);
    if failed {
        exit::exit(ExitCode::Error);
    }
}

pub async fn endpoint_hashkv(ctl: &mut Ctl) {
    let _ = ctl.client().await;
    let rev = ctl.flags.int("rev");
    let mut list = Vec::new();
    let mut last_err = None;
    for ep in endpoints_from_cluster(ctl).await {
        let client = ctl.client_for(std::slice::from_ref(&ep)).await;
        exit::set_passthrough(Some(&ep));
        match ctl.unary(&client, || client.hash_kv(rev)).await {
            Ok(h) => list.push((ep, h)),
            Err(e) => {
                eprintln!("Failed to get the hash of endpoint {ep} ({e})");
                last_err = Some(e);
            }
        }
    }
    ctl.printer.endpoint_hashkv(&list);
    if let Some(e) = last_err {
        exit::fail(ExitCode::Error, &e);
    }
}

pub async fn alarm(ctl: &mut Ctl, disarm: bool) {
    if !ctl.args.is_empty() {
        let what = if disarm { "disarm" } else { "list" };
        exit::fail(
            ExitCode::BadArgs,
            &format!("alarm {what} command accepts no arguments"),
        );
    }
    let client = ctl.client().await;
    let call = |action: AlarmAction, member_id: u64, alarm: i32| {
        let client = client.clone();
        move || {
            let mut m = client.maintenance_client();
            async move {
                Ok(m.alarm(AlarmRequest {
                    action: action as i32,
                    member_id,
                    alarm,
                })
                .await?
                .into_inner())
            }
        }
    };
    let list = ctl
        .unary(&client, call(AlarmAction::Get, 0, 0))
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    if !disarm {
        ctl.printer.alarm(&list);
        return;
    }
    // clientv3's AlarmDisarm of no alarm in particular: each raised alarm in turn.
    let mut ret = AlarmResponse::default();
    for a in &list.alarms {
        let resp = ctl
            .unary(&client, call(AlarmAction::Deactivate, a.member_id, a.alarm))
            .await
            .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
        ret.alarms.extend(resp.alarms);
    }
    ctl.printer.alarm(&ret);
}

pub async fn defrag(ctl: &mut Ctl) {
    if !ctl.flags.str("data-dir").is_empty() {
        eprintln!(
            "Failed to defragment etcd data[{}] (chorusctl cannot defragment a data directory offline: chorus's backend is not bbolt)",
            ctl.flags.str("data-dir")
        );
        exit::exit(ExitCode::Error);
    }
    let _ = ctl.client().await;
    let mut failures = 0;
    for ep in endpoints_from_cluster(ctl).await {
        let client = ctl.client_for(std::slice::from_ref(&ep)).await;
        exit::set_passthrough(Some(&ep));
        let result = ctl
            .unary(&client, || {
                let mut m = client.maintenance_client();
                async move { Ok(m.defragment(DefragmentRequest {}).await?.into_inner()) }
            })
            .await;
        match result {
            Ok(_) => println!("Finished defragmenting etcd member[{ep}]"),
            Err(e) => {
                eprintln!("Failed to defragment etcd member[{ep}] ({e})");
                failures += 1;
            }
        }
    }
    if failures != 0 {
        exit::exit(ExitCode::Error);
    }
}

pub async fn move_leader(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        exit::fail(ExitCode::BadArgs, "move-leader command needs 1 argument");
    }
    let target =
        gofmt::parse_uint_hex(&ctl.args[0]).unwrap_or_else(|e| exit::fail(ExitCode::BadArgs, &e));
    let _ = ctl.client().await;
    let eps = ctl.endpoints();
    let deadline = ctl.deadline();
    let mut leader: Option<(Client, u64)> = None;
    for ep in &eps {
        let client = ctl.client_for(std::slice::from_ref(ep)).await;
        let resp = unary_until(&client, deadline, || client.status())
            .await
            .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
        let me = resp.header.as_ref().map_or(0, |h| h.member_id);
        if me == resp.leader {
            leader = Some((client, resp.leader));
            break;
        }
    }
    let Some((client, leader_id)) = leader else {
        exit::fail(
            ExitCode::BadArgs,
            &format!("no leader endpoint given at [{}]", eps.join(" ")),
        );
    };
    let resp = unary_until(&client, deadline, || {
        let mut m = client.maintenance_client();
        async move {
            Ok(m.move_leader(MoveLeaderRequest { target_id: target })
                .await?
                .into_inner())
        }
    })
    .await
    .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    let encoded = resp.encode_to_vec();
    ctl.printer
        .move_leader(leader_id, target, resp.header.as_ref(), encoded);
}

fn zap(level: &str, caller: &str, msg: &str, fields: &[(&str, String)]) {
    let mut line = format!(
        "{{\"level\":\"{level}\",\"ts\":{},\"caller\":\"{caller}\",\"msg\":{}",
        gofmt::zap_timestamp_epoch(),
        gofmt::json_str(msg)
    );
    for (k, v) in fields {
        line += &format!(",\"{k}\":{v}");
    }
    line += "}";
    eprintln!("{line}");
}

pub async fn snapshot_save(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        exit::fail(ExitCode::BadArgs, "snapshot save expects one argument");
    }
    let path = ctl.args[0].clone();
    let endpoints = {
        ctl.prepare();
        ctl.endpoints()
    };
    if endpoints.len() != 1 {
        exit::fail(
            ExitCode::Interrupted,
            &format!(
                "snapshot must be requested to one selected node, not multiple [{}]",
                endpoints.join(" ")
            ),
        );
    }
    let client = ctl
        .try_client_for(&endpoints)
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Interrupted, &e));
    let part = format!("{path}.part");
    let _ = std::fs::remove_file(&part);
    let mut file = match tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&part)
        .await
    {
        Ok(f) => f,
        Err(e) => exit::fail(
            ExitCode::Interrupted,
            &format!("could not open {part} ({})", crate::ctl::io_text(&e)),
        ),
    };
    zap(
        "info",
        "snapshot/v3_snapshot.go:119",
        "created temporary db file",
        &[("path", gofmt::json_str(&part))],
    );
    let started = Instant::now();
    let deadline = if ctl.flags.changed("command-timeout") {
        ctl.deadline()
    } else {
        Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600)
    };
    let opened = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        client.maintenance_client().snapshot(SnapshotRequest {}),
    )
    .await;
    let client_log = |level: &str, line: u32, msg: &str, extra: &str| {
        eprintln!(
            "{{\"level\":\"{level}\",\"ts\":\"{}\",\"caller\":\"clientv3/maintenance.go:{line}\",\"msg\":{}{extra}}}",
            gofmt::zap_timestamp(),
            gofmt::json_str(msg)
        );
    };
    let fetching = || {
        zap(
            "info",
            "snapshot/v3_snapshot.go:127",
            "fetching snapshot",
            &[("endpoint", gofmt::json_str(&endpoints[0]))],
        )
    };
    let give_up = |status: tonic::Status| -> ! {
        client_log(
            "warn",
            210,
            "failed to receive from snapshot stream; closing",
            &format!(
                ",\"error\":{}",
                gofmt::json_str(&exit::rpc_error(status.code(), status.message()))
            ),
        );
        let _ = std::fs::remove_file(&part);
        let err = chorus_client::Error::from(status);
        exit::fail(ExitCode::Interrupted, &exit::error_text(&err));
    };
    let mut stream = match opened {
        Ok(Ok(s)) => {
            client_log("info", 200, "opened snapshot stream; downloading", "");
            fetching();
            s.into_inner()
        }
        Ok(Err(status)) => {
            client_log("info", 200, "opened snapshot stream; downloading", "");
            fetching();
            give_up(status);
        }
        Err(_) => {
            let _ = std::fs::remove_file(&part);
            exit::fail(ExitCode::Interrupted, "context deadline exceeded");
        }
    };
    let mut size: u64 = 0;
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => {
                size += chunk.blob.len() as u64;
                if let Err(e) = file.write_all(&chunk.blob).await {
                    exit::fail(ExitCode::Interrupted, &e.to_string());
                }
            }
            Ok(None) => {
                client_log("info", 208, "completed snapshot read; closing", "");
                break;
            }
            Err(status) => give_up(status),
        }
    }
    if let Err(e) = file.sync_all().await {
        exit::fail(ExitCode::Interrupted, &e.to_string());
    }
    zap(
        "info",
        "snapshot/v3_snapshot.go:142",
        "fetched snapshot",
        &[
            ("endpoint", gofmt::json_str(&endpoints[0])),
            ("size", gofmt::json_str(&gofmt::humanize_bytes(size))),
            // zap's production encoder writes durations as seconds.
            ("took", started.elapsed().as_secs_f64().to_string()),
        ],
    );
    if let Err(e) = std::fs::rename(&part, &path) {
        exit::fail(
            ExitCode::Interrupted,
            &format!(
                "could not rename {part} to {path} ({})",
                crate::ctl::io_text(&e)
            ),
        );
    }
    zap(
        "info",
        "snapshot/v3_snapshot.go:152",
        "saved",
        &[("path", gofmt::json_str(&path))],
    );
    println!("Snapshot saved at {path}");
}

/// `snapshot status <file>` of a backup in etcd's format (what `snapshot save` gets from
/// etcd, and from chorus) or in chorus's older dump format, told apart by content. For
/// etcd's files the numbers are `etcdutl snapshot status`'s.
pub fn snapshot_status(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        exit::fail(
            ExitCode::BadArgs,
            "snapshot status requires exactly one argument",
        );
    }
    ctl.check_format();
    let path = std::path::PathBuf::from(&ctl.args[0]);
    if let Err(e) = std::fs::metadata(&path) {
        exit::fail(
            ExitCode::Error,
            &format!("stat {}: {}", path.display(), crate::ctl::io_text(&e)),
        );
    }
    let format = snapshot::format_of(&path).unwrap_or_else(|e| fail_snapshot(e));
    match snapshot::status(&path) {
        Ok(st) => ctl
            .printer
            .db_status(st.hash, st.revision, st.total_keys, st.total_size),
        Err(e @ (SnapshotError::Io(..) | SnapshotError::Open(..))) => fail_snapshot(e),
        // A damaged etcd file: say what is wrong with it.
        Err(e) if format == SnapshotFormat::Etcd => fail_snapshot(e),
        // Not a backup at all, or a damaged dump.
        Err(_) => exit::fail(ExitCode::Error, "invalid database"),
    }
}

/// Exits with a snapshot error in etcd's words (Go's texts for I/O errors).
fn fail_snapshot(e: SnapshotError) -> ! {
    let text = match &e {
        SnapshotError::Open(path, io) => {
            format!("open {}: {}", path.display(), crate::ctl::io_text(io))
        }
        SnapshotError::Io(path, io) => format!("{}: {}", path.display(), crate::ctl::io_text(io)),
        other => other.to_string(),
    };
    exit::fail(ExitCode::Error, &text)
}

/// `snapshot restore <file>`: a new member's data directory from a backup in etcd's
/// format (checked as `etcdutl snapshot restore` checks it, with its error texts) or in
/// chorus's dump format, for the cluster the flags describe (etcdctl 3.4's and etcdutl
/// 3.5's flags; chorus's own defaults: `--data-dir` defaults to `<name>.chorus`).
pub fn snapshot_restore(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        exit::fail(
            ExitCode::BadArgs,
            "snapshot restore requires exactly one argument",
        );
    }
    let path = std::path::PathBuf::from(&ctl.args[0]);
    let cfg = restore_config(ctl);
    if cfg.data_dir.exists() {
        exit::fail(
            ExitCode::Error,
            &format!(
                "data-dir {} exists",
                gofmt::quote(&cfg.data_dir.display().to_string())
            ),
        );
    }
    let boot = cfg
        .bootstrap_cluster()
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e.to_string()));
    let dirs = [
        ("path", path.display().to_string()),
        ("wal-dir", cfg.wal_dir().display().to_string()),
        ("data-dir", cfg.data_dir.display().to_string()),
        ("snap-dir", cfg.snap_dir().display().to_string()),
    ];
    let dir_fields: Vec<(&str, String)> =
        dirs.iter().map(|(k, v)| (*k, gofmt::json_str(v))).collect();
    zap(
        "info",
        "snapshot/v3_snapshot.go:296",
        "restoring snapshot",
        &dir_fields,
    );
    let skip = ctl.flags.bool("skip-hash-check");
    if let Err(e) = snapshot::restore(&path, &cfg, skip) {
        fail_snapshot(e);
    }
    log_added_members(&boot);
    zap(
        "info",
        "snapshot/v3_snapshot.go:309",
        "restored snapshot",
        &dir_fields,
    );
}

/// The new member's configuration from `snapshot restore`'s flags.
fn restore_config(ctl: &Ctl) -> Config {
    let name = ctl.flags.str("name");
    let mut args = vec![
        format!("--name={name}"),
        format!("--initial-cluster={}", ctl.flags.str("initial-cluster")),
        format!(
            "--initial-cluster-token={}",
            ctl.flags.str("initial-cluster-token")
        ),
        format!(
            "--initial-advertise-peer-urls={}",
            ctl.flags.str("initial-advertise-peer-urls")
        ),
    ];
    for dir in ["data-dir", "wal-dir"] {
        let value = ctl.flags.str(dir);
        if !value.is_empty() {
            args.push(format!("--{dir}={value}"));
        }
    }
    match Config::parse(&args, &[], &mut Vec::new()) {
        Ok(Command::Run(cfg)) => *cfg,
        Ok(_) => exit::fail(ExitCode::Error, "unexpected restore configuration"),
        Err(e) => exit::fail(ExitCode::Error, &e.to_string()),
    }
}

/// etcd's "added member" lines for the new cluster's members.
fn log_added_members(boot: &chorus_config::BootstrapCluster) {
    for m in &boot.members {
        let urls: Vec<String> = m.peer_urls.iter().map(|u| gofmt::json_str(u)).collect();
        zap(
            "info",
            "membership/cluster.go:392",
            "added member",
            &[
                (
                    "cluster-id",
                    gofmt::json_str(&format!("{:x}", boot.cluster_id)),
                ),
                ("local-member-id", gofmt::json_str("0")),
                ("added-peer-id", gofmt::json_str(&format!("{:x}", m.id))),
                ("added-peer-peer-urls", format!("[{}]", urls.join(","))),
            ],
        );
    }
}
