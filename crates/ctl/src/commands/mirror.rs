//! `make-mirror`: copies a key range to another cluster, then keeps it in sync from the
//! watch (each source revision applied as one transaction at the destination).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chorus_api::etcdserverpb::{
    request_op, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use chorus_client::{prefix_range_end, ConnectOptions, WatchOptions};

use crate::ctl::{unary_until, Ctl};
use crate::exit::{self, ExitCode};

fn forever() -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

pub async fn make_mirror(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        exit::fail(
            ExitCode::BadArgs,
            "make-mirror takes one destination argument",
        );
    }
    let prefix = ctl.flags.str("prefix");
    let mut dest_prefix = ctl.flags.str("dest-prefix");
    let no_dest_prefix = ctl.flags.bool("no-dest-prefix");
    let files = crate::tls::TlsFiles {
        ca: ctl.flags.str("dest-cacert"),
        cert: ctl.flags.str("dest-cert"),
        key: ctl.flags.str("dest-key"),
    };
    let dest_tls = crate::ctl::client_tls(&files, ctl.flags.bool("dest-insecure-transport"), false)
        .unwrap_or_else(|e| exit::fail(ExitCode::BadArgs, &e));
    let dest_opts = ConnectOptions {
        dial_timeout: ctl.flags.duration("dial-timeout"),
        tls: dest_tls,
        ..ConnectOptions::default()
    };
    let dest = chorus_client::Client::connect(&[ctl.args[0].clone()], dest_opts)
        .await
        .unwrap_or_else(|e| {
            exit::fail(ExitCode::BadConnection, &crate::ctl::client_error_text(&e))
        });
    let src = ctl.client().await;

    let total = Arc::new(AtomicI64::new(0));
    {
        let total = total.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                println!("{}", total.load(Ordering::Relaxed));
            }
        });
    }
    // SyncBase: the current revision, then the range at it in pages of 1000.
    let rev = unary_until(&src, forever(), || {
        let mut kv = src.kv_client();
        async move {
            Ok(kv
                .range(RangeRequest {
                    key: b"foo".to_vec(),
                    ..Default::default()
                })
                .await?
                .into_inner())
        }
    })
    .await
    .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e))
    .header
    .map_or(0, |h| h.revision);
    if no_dest_prefix && !dest_prefix.is_empty() {
        exit::fail(
            ExitCode::BadArgs,
            "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one",
        );
    }
    if !no_dest_prefix && dest_prefix.is_empty() {
        dest_prefix = prefix.clone();
    }
    let modify = |key: &[u8]| -> Vec<u8> {
        let k = String::from_utf8_lossy(key);
        k.replacen(prefix.as_str(), dest_prefix.as_str(), 1)
            .into_bytes()
    };
    let (mut key, range_end) = if prefix.is_empty() {
        (vec![0u8], vec![0u8])
    } else {
        (
            prefix.as_bytes().to_vec(),
            prefix_range_end(prefix.as_bytes()),
        )
    };
    loop {
        let page = unary_until(&src, forever(), || {
            let mut kv = src.kv_client();
            let req = RangeRequest {
                key: key.clone(),
                range_end: range_end.clone(),
                limit: 1000,
                revision: rev,
                ..Default::default()
            };
            async move { Ok(kv.range(req).await?.into_inner()) }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
        for kv in &page.kvs {
            let put = PutRequest {
                key: modify(&kv.key),
                value: kv.value.clone(),
                ..Default::default()
            };
            unary_until(&dest, forever(), || {
                let mut c = dest.kv_client();
                let put = put.clone();
                async move { Ok(c.put(put).await?.into_inner()) }
            })
            .await
            .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
            total.fetch_add(1, Ordering::Relaxed);
        }
        if !page.more || page.kvs.is_empty() {
            break;
        }
        key = page.kvs.last().expect("a page").key.clone();
        key.push(0);
    }
    // SyncUpdates: the watch from the next revision.
    let mut stream = src
        .watch(
            prefix.as_bytes().to_vec(),
            WatchOptions {
                prefix: true,
                start_revision: rev + 1,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &exit::error_text(&e)));
    let commit = |ops: Vec<RequestOp>| {
        let dest = dest.clone();
        async move {
            let txn = TxnRequest {
                success: ops,
                ..Default::default()
            };
            unary_until(&dest, forever(), || {
                let mut c = dest.kv_client();
                let txn = txn.clone();
                async move { Ok(c.txn(txn).await?.into_inner()) }
            })
            .await
        }
    };
    loop {
        let wr = match stream.message().await {
            Ok(Some(wr)) => wr,
            Ok(None) => exit::fail(ExitCode::Error, "<nil>"),
            Err(e) => exit::fail(ExitCode::Error, &exit::error_text(&e)),
        };
        if wr.compact_revision != 0 {
            exit::fail(
                ExitCode::Error,
                "etcdserver: mvcc: required revision has been compacted",
            );
        }
        let mut last_rev = 0;
        let mut ops = Vec::new();
        for ev in &wr.events {
            let kv = ev.kv.clone().unwrap_or_default();
            if last_rev != 0 && kv.mod_revision > last_rev {
                if let Err(e) = commit(std::mem::take(&mut ops)).await {
                    exit::fail(ExitCode::Error, &e);
                }
            }
            last_rev = kv.mod_revision;
            let request = if ev.r#type == 1 {
                request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                    key: modify(&kv.key),
                    ..Default::default()
                })
            } else {
                request_op::Request::RequestPut(PutRequest {
                    key: modify(&kv.key),
                    value: kv.value.clone(),
                    ..Default::default()
                })
            };
            ops.push(RequestOp {
                request: Some(request),
            });
            total.fetch_add(1, Ordering::Relaxed);
        }
        if !ops.is_empty() {
            if let Err(e) = commit(ops).await {
                exit::fail(ExitCode::Error, &e);
            }
        }
    }
}
