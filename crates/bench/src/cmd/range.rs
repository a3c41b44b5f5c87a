//! `range key [end]`: etcd's range benchmark, every request the same.

use std::sync::Arc;

use chorus_api::etcdserverpb::{kv_client::KvClient, RangeRequest};
use chorus_client::AuthChannel;
use serde_json::json;

use super::Ctx;
use crate::cli::RangeArgs;
use crate::conn::Conn;
use crate::driver::Op;
use crate::output::Output;
use crate::rate::RateLimiter;
use crate::report::Stats;

struct RangeOp {
    conn: Conn,
    kv: KvClient<AuthChannel>,
    req: RangeRequest,
}

impl Op for RangeOp {
    type Req = RangeRequest;

    fn conn(&self) -> Option<&Conn> {
        Some(&self.conn)
    }

    fn build(&mut self, _: u64) -> (usize, RangeRequest) {
        (0, self.req.clone())
    }

    async fn send(&mut self, req: RangeRequest) -> Result<(), tonic::Status> {
        self.kv.range(req).await.map(drop)
    }
}

pub async fn run(ctx: &Ctx, args: &RangeArgs) -> anyhow::Result<Output> {
    let req = RangeRequest {
        key: args.key.as_bytes().to_vec(),
        range_end: args.end.as_deref().unwrap_or("").as_bytes().to_vec(),
        limit: args.limit,
        serializable: args.consistency.serializable(),
        ..Default::default()
    };
    let ops: Vec<RangeOp> = (0..ctx.clients)
        .map(|i| RangeOp {
            conn: ctx.conns.for_worker(i).clone(),
            kv: ctx.conns.for_worker(i).kv_client(),
            req: req.clone(),
        })
        .collect();
    let limiter = RateLimiter::optional(args.rate, 1).map(Arc::new);
    let run = ctx.drive(ops, args.total, 1, limiter).await;
    let [recorder]: [_; 1] = run.recorders.try_into().expect("one class");
    let params = json!({
        "key": args.key,
        "end": args.end,
        "consistency": if args.consistency.serializable() { "s" } else { "l" },
        "limit": args.limit,
        "rate": args.rate,
        "total": args.total,
    });
    let mut out = Output::new("range", params).section("range", "", Stats::new(recorder, run.wall));
    out.preamble.push(args.consistency.banner().to_owned());
    Ok(out)
}
