//! `lock` and `elect`: a session lease kept alive in the background, the Lock and Election
//! services for acquiring, and clientv3's observe loop (get + watch) for `elect -l`.

use std::time::Duration;

use chorus_api::etcdserverpb::{
    range_request::{SortOrder, SortTarget},
    RangeRequest, RangeResponse,
};
use chorus_api::v3electionpb::{CampaignRequest, LeaderKey, ResignRequest};
use chorus_api::v3lockpb::{LockRequest, UnlockRequest};
use chorus_client::{prefix_range_end, Client, WatchOptions};
use tokio::sync::watch;

use crate::ctl::{unary_until, Ctl};
use crate::exit::{self, ExitCode};

fn forever() -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

/// A session: a lease kept alive until the process ends. `lost` turns true when the lease
/// can no longer be kept alive (expired or revoked).
struct Session {
    lease: i64,
    lost: watch::Receiver<bool>,
}

async fn session(client: &Client, ttl: i64) -> Session {
    let grant = unary_until(client, forever(), || client.lease_grant(ttl, 0))
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    let lease = grant.id;
    let (lost_tx, lost) = watch::channel(false);
    let client = client.clone();
    tokio::spawn(async move {
        // Bounded by the lease: ends when it is gone.
        loop {
            let opened = unary_until(&client, forever(), || async {
                let (sender, mut stream) = client.lease_keep_alive(lease).await?;
                let first = stream.message().await?;
                Ok((sender, stream, first))
            })
            .await;
            let Ok((sender, mut stream, mut next)) = opened else {
                let _ = lost_tx.send(true);
                return;
            };
            loop {
                let resp = match next.take() {
                    Some(r) => r,
                    None => match stream.message().await {
                        Ok(Some(r)) => r,
                        _ => break,
                    },
                };
                if resp.ttl <= 0 {
                    let _ = lost_tx.send(true);
                    return;
                }
                tokio::time::sleep(
                    Duration::from_secs(resp.ttl as u64 / 3).max(Duration::from_millis(500)),
                )
                .await;
                if sender.keep_alive().await.is_err() {
                    break;
                }
            }
        }
    });
    Session { lease, lost }
}

/// Resolves on SIGINT or SIGTERM.
async fn signalled() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

async fn lost(mut s: watch::Receiver<bool>) {
    let _ = s.wait_for(|l| *l).await;
}

async fn get_key(client: &Client, key: &[u8]) -> Result<RangeResponse, String> {
    unary_until(client, forever(), || {
        let mut kv = client.kv_client();
        let key = key.to_vec();
        async move {
            Ok(kv
                .range(RangeRequest {
                    key,
                    ..Default::default()
                })
                .await?
                .into_inner())
        }
    })
    .await
}

pub async fn lock(ctl: &mut Ctl) {
    if ctl.args.is_empty() {
        exit::fail(
            ExitCode::BadArgs,
            "lock takes a lock name argument and an optional command to execute",
        );
    }
    let client = ctl.client().await;
    let name = ctl.args[0].clone();
    let cmd_args = ctl.args[1..].to_vec();
    let ttl = ctl.flags.int("ttl");
    let s = session(&client, ttl).await;
    let sig = tokio::spawn(signalled());
    let (cancel_tx, mut cancel_rx) = watch::channel(false);
    tokio::spawn(async move {
        let _ = sig.await;
        let _ = cancel_tx.send(true);
    });
    let lock = unary_until(&client, forever(), || {
        let mut l = client.lock_client();
        let req = LockRequest {
            name: name.as_bytes().to_vec(),
            lease: s.lease,
        };
        async move { Ok(l.lock(req).await?.into_inner()) }
    });
    let acquired = tokio::select! {
        r = lock => r.unwrap_or_else(|e| exit::fail(ExitCode::Error, &e)),
        _ = cancel_rx.wait_for(|c| *c) => exit::fail(ExitCode::Error, "context canceled"),
    };
    let key = acquired.key.clone();
    let unlock = |client: Client, key: Vec<u8>| async move {
        unary_until(&client, forever(), || {
            let mut l = client.lock_client();
            let key = key.clone();
            async move { Ok(l.unlock(UnlockRequest { key }).await?.into_inner()) }
        })
        .await
    };
    if !cmd_args.is_empty() {
        let rev = acquired.header.as_ref().map_or(0, |h| h.revision);
        let status = tokio::process::Command::new(&cmd_args[0])
            .args(&cmd_args[1..])
            .env("ETCD_LOCK_KEY", String::from_utf8_lossy(&key).into_owned())
            .env("ETCD_LOCK_REV", rev.to_string())
            .status()
            .await;
        let unlocked = unlock(client.clone(), key).await;
        match status {
            Ok(st) if st.success() => {}
            Ok(st) => exit::fail(
                ExitCode::Error,
                &match st.code() {
                    Some(c) => format!("exit status {c}"),
                    None => "signal: killed".to_owned(),
                },
            ),
            Err(e) => exit::fail(
                ExitCode::Error,
                &format!(
                    "exec: {}: executable file not found in $PATH ({e})",
                    crate::gofmt::quote(&cmd_args[0])
                ),
            ),
        }
        if let Err(e) = unlocked {
            exit::fail(ExitCode::Error, &e);
        }
        return;
    }
    let resp = get_key(&client, &key)
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    if resp.kvs.is_empty() {
        exit::fail(ExitCode::Error, "lock lost on init");
    }
    ctl.printer.get(&resp);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    tokio::select! {
        _ = cancel_rx.wait_for(|c| *c) => {
            if let Err(e) = unlock(client.clone(), key).await {
                exit::fail(ExitCode::Error, &e);
            }
        }
        _ = lost(s.lost.clone()) => exit::fail(ExitCode::Error, "session expired"),
    }
}

pub async fn elect(ctl: &mut Ctl) {
    if ctl.args.len() != 1 && ctl.args.len() != 2 {
        exit::fail(
            ExitCode::BadArgs,
            "elect takes one election name argument and an optional proposal argument",
        );
    }
    let client = ctl.client().await;
    let listen = ctl.flags.bool("listen");
    if ctl.args.len() == 1 {
        if !listen {
            exit::fail(ExitCode::BadArgs, "no proposal argument but -l not set");
        }
        let _s = session(&client, 60).await;
        let name = ctl.args[0].clone();
        let printer = ctl.printer;
        tokio::select! {
            _ = signalled() => {}
            r = observe(&client, &name, printer) => {
                if let Err(e) = r {
                    exit::fail(ExitCode::Error, &e);
                }
                exit::fail(ExitCode::Error, "elect: observer lost");
            }
        }
        return;
    }
    if listen {
        exit::fail(ExitCode::BadArgs, "proposal given but -l is set");
    }
    let s = session(&client, 60).await;
    let name = ctl.args[0].clone();
    let value = ctl.args[1].clone();
    let sig = tokio::spawn(signalled());
    let (cancel_tx, mut cancel_rx) = watch::channel(false);
    tokio::spawn(async move {
        let _ = sig.await;
        let _ = cancel_tx.send(true);
    });
    let campaign = unary_until(&client, forever(), || {
        let mut e = client.election_client();
        let req = CampaignRequest {
            name: name.as_bytes().to_vec(),
            lease: s.lease,
            value: value.as_bytes().to_vec(),
        };
        async move { Ok(e.campaign(req).await?.into_inner()) }
    });
    let won = tokio::select! {
        r = campaign => r.unwrap_or_else(|e| exit::fail(ExitCode::Error, &e)),
        _ = cancel_rx.wait_for(|c| *c) => exit::fail(ExitCode::Error, "context canceled"),
    };
    let leader: LeaderKey = won.leader.unwrap_or_default();
    let resp = get_key(&client, &leader.key)
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    ctl.printer.get(&resp);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    tokio::select! {
        _ = cancel_rx.wait_for(|c| *c) => {}
        _ = lost(s.lost.clone()) => exit::fail(ExitCode::Error, "elect: session expired"),
    }
    let resigned = unary_until(&client, forever(), || {
        let mut e = client.election_client();
        let leader = leader.clone();
        async move {
            Ok(e.resign(ResignRequest {
                leader: Some(leader),
            })
            .await?
            .into_inner())
        }
    })
    .await;
    if let Err(e) = resigned {
        exit::fail(ExitCode::Error, &e);
    }
}

/// clientv3's `Election.Observe`: prints the leader's key-value now and on every change.
async fn observe(
    client: &Client,
    name: &str,
    printer: crate::printer::Printer,
) -> Result<(), String> {
    let prefix = format!("{name}/").into_bytes();
    loop {
        let resp = unary_until(client, forever(), || {
            let mut kv = client.kv_client();
            let req = RangeRequest {
                key: prefix.clone(),
                range_end: prefix_range_end(&prefix),
                limit: 1,
                sort_order: SortOrder::Ascend as i32,
                sort_target: SortTarget::Create as i32,
                ..Default::default()
            };
            async move { Ok(kv.range(req).await?.into_inner()) }
        })
        .await?;
        let (hdr, kv) = if resp.kvs.is_empty() {
            let rev = resp.header.as_ref().map_or(0, |h| h.revision);
            let mut stream = client
                .watch(
                    prefix.clone(),
                    WatchOptions {
                        prefix: true,
                        start_revision: rev,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| crate::exit::error_text(&e))?;
            let mut found = None;
            while found.is_none() {
                let Some(wr) = stream
                    .message()
                    .await
                    .map_err(|e| crate::exit::error_text(&e))?
                else {
                    return Ok(());
                };
                if let Some(ev) = wr.events.iter().find(|e| e.r#type == 0) {
                    let kv = ev.kv.clone().unwrap_or_default();
                    let mut hdr = wr.header.unwrap_or_default();
                    hdr.revision = kv.mod_revision;
                    found = Some((hdr, kv));
                }
            }
            found.expect("found")
        } else {
            (resp.header.unwrap_or_default(), resp.kvs[0].clone())
        };
        printer.get(&RangeResponse {
            header: Some(hdr),
            kvs: vec![kv.clone()],
            ..Default::default()
        });
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let mut stream = client
            .watch(
                kv.key.clone(),
                WatchOptions {
                    start_revision: hdr.revision + 1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| crate::exit::error_text(&e))?;
        let mut last = resp.clone();
        'deleted: loop {
            let Some(wr) = stream
                .message()
                .await
                .map_err(|e| crate::exit::error_text(&e))?
            else {
                return Ok(());
            };
            for ev in &wr.events {
                if ev.r#type == 1 {
                    break 'deleted;
                }
                last.header = wr.header;
                last.kvs = vec![ev.kv.clone().unwrap_or_default()];
                printer.get(&last);
                let _ = std::io::Write::flush(&mut std::io::stdout());
            }
        }
    }
}
