//! `put`: etcd's put benchmark. Key of request i: index `i % key-space-size` with
//! `--sequential-keys`, else uniform at random; one random value for all requests.

use std::sync::Arc;
use std::time::Duration;

use chorus_api::etcdserverpb::{kv_client::KvClient, CompactionRequest, PutRequest, RangeRequest};
use chorus_client::AuthChannel;
use serde_json::json;

use super::Ctx;
use crate::cli::PutArgs;
use crate::conn::Conn;
use crate::driver::Op;
use crate::keys::{random_bytes, KeyGen};
use crate::output::Output;
use crate::rate::RateLimiter;
use crate::report::Stats;

struct PutOp {
    conn: Conn,
    kv: KvClient<AuthChannel>,
    keys: KeyGen,
    value: Vec<u8>,
}

impl Op for PutOp {
    type Req = PutRequest;

    fn conn(&self) -> Option<&Conn> {
        Some(&self.conn)
    }

    fn build(&mut self, i: u64) -> (usize, PutRequest) {
        let req = PutRequest {
            key: self.keys.key(i),
            value: self.value.clone(),
            ..Default::default()
        };
        (0, req)
    }

    async fn send(&mut self, req: PutRequest) -> Result<(), tonic::Status> {
        self.kv.put(req).await.map(drop)
    }
}

/// etcd's `compactKV`: compact at (current revision - delta), every `interval`.
async fn compact_loop(mut kv: KvClient<AuthChannel>, interval: Duration, delta: i64) {
    loop {
        tokio::time::sleep(interval).await;
        let get = RangeRequest {
            key: b"foo".to_vec(),
            ..Default::default()
        };
        let revision = match kv.range(get).await {
            Ok(resp) => resp.into_inner().header.map_or(0, |h| h.revision),
            Err(e) => {
                eprintln!("compaction: get failed: {e}");
                continue;
            }
        };
        let target = (revision - delta).max(0);
        if target > 0 {
            let compact = CompactionRequest {
                revision: target,
                physical: false,
            };
            if let Err(e) = kv.compact(compact).await {
                eprintln!("compaction at {target} failed: {e}");
            }
        }
    }
}

pub async fn run(ctx: &Ctx, args: &PutArgs) -> anyhow::Result<Output> {
    let keys = KeyGen::new(args.key_size, args.key_space_size, args.sequential_keys)?;
    let value = random_bytes(args.val_size);
    let ops: Vec<PutOp> = (0..ctx.clients)
        .map(|i| PutOp {
            conn: ctx.conns.for_worker(i).clone(),
            kv: ctx.conns.for_worker(i).kv_client(),
            keys: keys.fork(),
            value: value.clone(),
        })
        .collect();
    let limiter = RateLimiter::optional(args.rate, 1).map(Arc::new);
    let compactor = (!args.compact_interval.is_zero()).then(|| {
        tokio::spawn(compact_loop(
            ctx.conns.clients[0].kv_client(),
            args.compact_interval,
            args.compact_index_delta,
        ))
    });
    let run = ctx.drive(ops, args.total, 1, limiter).await;
    if let Some(task) = compactor {
        task.abort();
    }
    let [recorder]: [_; 1] = run.recorders.try_into().expect("one class");
    let params = json!({
        "total": args.total,
        "key_size": args.key_size,
        "val_size": args.val_size,
        "rate": args.rate,
        "key_space_size": args.key_space_size,
        "sequential_keys": args.sequential_keys,
        "compact_interval_seconds": args.compact_interval.as_secs_f64(),
        "compact_index_delta": args.compact_index_delta,
    });
    Ok(Output::new("put", params).section("put", "", Stats::new(recorder, run.wall)))
}
