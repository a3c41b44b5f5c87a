//! `txn-put` (etcd's: `--txn-ops` puts per txn, keys `(i * txn-ops + j) % key-space-size`)
//! and `txn-mixed` (etcd's: each txn one read with probability rw/(1+rw), else one put to
//! key `i % key-space-size`; reads and writes reported apart).

use std::sync::Arc;

use chorus_api::etcdserverpb::{
    kv_client::KvClient, request_op::Request, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use chorus_client::AuthChannel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::Ctx;
use crate::cli::{TxnMixedArgs, TxnPutArgs};
use crate::conn::Conn;
use crate::driver::Op;
use crate::keys::{encode_key, random_bytes, KeyGen};
use crate::output::Output;
use crate::rate::RateLimiter;
use crate::report::Stats;

fn put_op(key: Vec<u8>, value: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key,
            value,
            ..Default::default()
        })),
    }
}

struct TxnPutOp {
    conn: Conn,
    kv: KvClient<AuthChannel>,
    ops_per_txn: u64,
    key_size: usize,
    key_space: u64,
    value: Vec<u8>,
}

impl Op for TxnPutOp {
    type Req = TxnRequest;

    fn conn(&self) -> Option<&Conn> {
        Some(&self.conn)
    }

    fn build(&mut self, i: u64) -> (usize, TxnRequest) {
        let success = (0..self.ops_per_txn)
            .map(|j| {
                let index = (i * self.ops_per_txn + j) % self.key_space;
                put_op(encode_key(self.key_size, index), self.value.clone())
            })
            .collect();
        (
            0,
            TxnRequest {
                success,
                ..Default::default()
            },
        )
    }

    async fn send(&mut self, req: TxnRequest) -> Result<(), tonic::Status> {
        self.kv.txn(req).await.map(drop)
    }
}

pub async fn run_put(ctx: &Ctx, args: &TxnPutArgs) -> anyhow::Result<Output> {
    // Validates key size against key space.
    KeyGen::new(args.key_size, args.key_space_size, true)?;
    if args.txn_ops == 0 {
        anyhow::bail!("--txn-ops must be at least 1");
    }
    let value = random_bytes(args.val_size);
    let ops: Vec<TxnPutOp> = (0..ctx.clients)
        .map(|i| TxnPutOp {
            conn: ctx.conns.for_worker(i).clone(),
            kv: ctx.conns.for_worker(i).kv_client(),
            ops_per_txn: args.txn_ops,
            key_size: args.key_size,
            key_space: args.key_space_size,
            value: value.clone(),
        })
        .collect();
    let limiter = RateLimiter::optional(args.rate, 1).map(Arc::new);
    let run = ctx.drive(ops, args.total, 1, limiter).await;
    let [recorder]: [_; 1] = run.recorders.try_into().expect("one class");
    let params = json!({
        "total": args.total,
        "key_size": args.key_size,
        "val_size": args.val_size,
        "txn_ops": args.txn_ops,
        "rate": args.rate,
        "key_space_size": args.key_space_size,
    });
    Ok(Output::new("txn-put", params).section("txn-put", "", Stats::new(recorder, run.wall)))
}

const READ: usize = 0;
const WRITE: usize = 1;

struct MixedOp {
    conn: Conn,
    kv: KvClient<AuthChannel>,
    rng: StdRng,
    read_probability: f64,
    read: RangeRequest,
    key_size: usize,
    key_space: u64,
    value: Vec<u8>,
}

impl Op for MixedOp {
    type Req = TxnRequest;

    fn conn(&self) -> Option<&Conn> {
        Some(&self.conn)
    }

    fn build(&mut self, i: u64) -> (usize, TxnRequest) {
        let (class, op) = if self.rng.gen::<f64>() < self.read_probability {
            (
                READ,
                RequestOp {
                    request: Some(Request::RequestRange(self.read.clone())),
                },
            )
        } else {
            let key = encode_key(self.key_size, i % self.key_space);
            (WRITE, put_op(key, self.value.clone()))
        };
        (
            class,
            TxnRequest {
                success: vec![op],
                ..Default::default()
            },
        )
    }

    async fn send(&mut self, req: TxnRequest) -> Result<(), tonic::Status> {
        self.kv.txn(req).await.map(drop)
    }
}

pub async fn run_mixed(ctx: &Ctx, args: &TxnMixedArgs) -> anyhow::Result<Output> {
    KeyGen::new(args.key_size, args.key_space_size, true)?;
    if !(args.rw_ratio >= 0.0 && args.rw_ratio.is_finite()) {
        anyhow::bail!("--rw-ratio must be a non-negative number");
    }
    // clientv3's OpGet("", WithPrefix()) reads from "\0" to "\0": the whole key space.
    let read = RangeRequest {
        key: vec![0],
        range_end: if args.end_key.is_empty() {
            vec![0]
        } else {
            args.end_key.as_bytes().to_vec()
        },
        limit: args.limit,
        serializable: args.consistency.serializable(),
        ..Default::default()
    };
    let value = random_bytes(args.val_size);
    let read_probability = args.rw_ratio / (1.0 + args.rw_ratio);
    let ops: Vec<MixedOp> = (0..ctx.clients)
        .map(|i| MixedOp {
            conn: ctx.conns.for_worker(i).clone(),
            kv: ctx.conns.for_worker(i).kv_client(),
            rng: StdRng::from_entropy(),
            read_probability,
            read: read.clone(),
            key_size: args.key_size,
            key_space: args.key_space_size,
            value: value.clone(),
        })
        .collect();
    let limiter = RateLimiter::optional(args.rate, 1).map(Arc::new);
    let run = ctx.drive(ops, args.total, 2, limiter).await;
    let [reads, writes]: [_; 2] = run.recorders.try_into().expect("two classes");
    let read_ops = reads.successes() as u64 + reads.error_count();
    let write_ops = writes.successes() as u64 + writes.error_count();
    let params = json!({
        "total": args.total,
        "key_size": args.key_size,
        "val_size": args.val_size,
        "rate": args.rate,
        "end_key": args.end_key,
        "limit": args.limit,
        "key_space_size": args.key_space_size,
        "consistency": if args.consistency.serializable() { "s" } else { "l" },
        "rw_ratio": args.rw_ratio,
    });
    let mut out = Output::new("txn-mixed", params)
        .section(
            "read",
            format!("Total Read Ops: {read_ops}\nDetails:"),
            Stats::new(reads, run.wall),
        )
        .section(
            "write",
            format!("\nTotal Write Ops: {write_ops}\nDetails:"),
            Stats::new(writes, run.wall),
        );
    out.preamble.push(args.consistency.banner().to_owned());
    out.extra.insert("read_ops".into(), json!(read_ops));
    out.extra.insert("write_ops".into(), json!(write_ops));
    Ok(out)
}
