//! `lease grant|revoke|timetolive|list|keep-alive`.

use std::time::{Duration, Instant};

use crate::ctl::Ctl;
use crate::exit::{self, ExitCode};
use crate::gofmt;
use crate::printer::Format;

/// `leaseFromArgs`: a lease ID in hex.
fn lease_from_arg(arg: &str) -> i64 {
    gofmt::parse_int_base(arg, 16).unwrap_or_else(|e| {
        exit::fail(
            ExitCode::BadArgs,
            &format!("bad lease ID arg ({e}), expecting ID in Hex"),
        )
    })
}

/// No timeout (etcdctl uses `context.TODO()` for these calls).
fn forever() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

pub async fn grant(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        exit::fail(ExitCode::BadArgs, "lease grant command needs TTL argument");
    }
    let ttl = gofmt::parse_int_base(&ctl.args[0], 10)
        .unwrap_or_else(|e| exit::fail(ExitCode::BadArgs, &format!("bad TTL ({e})")));
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || client.lease_grant(ttl, 0))
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &format!("failed to grant lease ({e})")));
    ctl.printer.grant(&resp);
}

pub async fn revoke(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        exit::fail(ExitCode::BadArgs, "lease revoke command needs 1 argument");
    }
    let id = lease_from_arg(&ctl.args[0]);
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || client.lease_revoke(id))
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &format!("failed to revoke lease ({e})")));
    ctl.printer.revoke(id, &resp);
}

pub async fn time_to_live(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        exit::fail(
            ExitCode::BadArgs,
            "lease timetolive command needs lease ID as argument",
        );
    }
    let keys = ctl.flags.bool("keys");
    let id = lease_from_arg(&ctl.args[0]);
    let client = ctl.client().await;
    let resp = crate::ctl::unary_until(&client, forever(), || client.lease_time_to_live(id, keys))
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::BadConnection, &e));
    ctl.printer.time_to_live(&resp, keys);
}

pub async fn list(ctl: &mut Ctl) {
    let client = ctl.client().await;
    let resp = crate::ctl::unary_until(&client, forever(), || client.leases())
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::BadConnection, &e));
    ctl.printer.leases(&resp);
}

pub async fn keep_alive(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        exit::fail(
            ExitCode::BadArgs,
            "lease keep-alive command needs lease ID as argument",
        );
    }
    let id = lease_from_arg(&ctl.args[0]);
    let once = ctl.flags.bool("once");
    let client = ctl.client().await;
    let open = || async {
        crate::ctl::unary_until(&client, forever(), || async {
            let (sender, mut stream) = client.lease_keep_alive(id).await?;
            let first = stream.message().await?;
            Ok((sender, stream, first))
        })
        .await
    };
    let (mut sender, mut stream, mut first) = open()
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::BadConnection, &e));
    if once {
        match first {
            Some(resp) if resp.ttl > 0 => {
                ctl.printer.keep_alive(&resp);
                return;
            }
            _ => exit::fail(
                ExitCode::BadConnection,
                "etcdserver: requested lease not found",
            ),
        }
    }
    // Bounded by the lease: the loop ends when the lease expires or is revoked.
    loop {
        let resp = match first.take() {
            Some(r) => r,
            None => match stream.message().await {
                Ok(Some(r)) => r,
                _ => {
                    // The member went away: keep the lease alive through another one.
                    match open().await {
                        Ok((s, st, f)) => {
                            sender = s;
                            stream = st;
                            first = f;
                            continue;
                        }
                        Err(e) => exit::fail(ExitCode::BadConnection, &e),
                    }
                }
            },
        };
        if resp.ttl <= 0 {
            break;
        }
        ctl.printer.keep_alive(&resp);
        let next = Duration::from_secs(resp.ttl as u64) / 3;
        tokio::time::sleep(next.max(Duration::from_millis(500))).await;
        if sender.keep_alive().await.is_err() {
            first = None;
        }
    }
    if ctl.printer.format == Format::Simple {
        println!("lease {id:016x} expired or revoked.");
    }
}
