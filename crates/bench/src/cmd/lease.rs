//! `lease-keepalive`: each worker grants a lease (TTL 100 s, before the clock starts) and
//! then sends keep-alives as clientv3's `KeepAliveOnce` does, which etcd's tool uses: a
//! new LeaseKeepAlive stream per request, one request, one answer, stream cancelled.

use std::time::Duration;

use chorus_api::etcdserverpb::{
    lease_client::LeaseClient, LeaseGrantRequest, LeaseKeepAliveRequest,
};
use chorus_client::AuthChannel;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Ctx;
use crate::cli::LeaseKeepaliveArgs;
use crate::conn::Conn;
use crate::driver::Op;
use crate::output::Output;
use crate::report::Stats;

const LEASE_TTL: i64 = 100;

struct KeepAliveOp {
    conn: Conn,
    lease: LeaseClient<AuthChannel>,
    id: i64,
}

impl Op for KeepAliveOp {
    type Req = ();

    fn conn(&self) -> Option<&Conn> {
        Some(&self.conn)
    }

    fn build(&mut self, _: u64) -> (usize, ()) {
        (0, ())
    }

    async fn send(&mut self, _: ()) -> Result<(), tonic::Status> {
        let (tx, rx) = mpsc::channel(1);
        tx.try_send(LeaseKeepAliveRequest { id: self.id })
            .expect("an empty channel takes one request");
        let mut responses = self
            .lease
            .lease_keep_alive(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let resp = responses.message().await?;
        // Dropping the request sender and the response stream cancels the stream.
        drop(tx);
        match resp {
            Some(r) if r.ttl > 0 => Ok(()),
            Some(_) => Err(tonic::Status::not_found(
                "etcdserver: requested lease not found",
            )),
            None => Err(tonic::Status::unavailable(
                "keep-alive stream closed without an answer",
            )),
        }
    }
}

pub async fn run(ctx: &Ctx, args: &LeaseKeepaliveArgs) -> anyhow::Result<Output> {
    let mut ops = Vec::with_capacity(ctx.clients);
    for i in 0..ctx.clients {
        let mut lease = ctx.conns.for_worker(i).lease_client();
        let grant = tokio::time::timeout(
            Duration::from_secs(30),
            lease.lease_grant(LeaseGrantRequest {
                ttl: LEASE_TTL,
                id: 0,
            }),
        )
        .await
        .map_err(|_| anyhow::anyhow!("lease grant: no answer in 30 s"))?
        .map_err(|s| anyhow::anyhow!("lease grant: {}", s.message()))?
        .into_inner();
        ops.push(KeepAliveOp {
            conn: ctx.conns.for_worker(i).clone(),
            lease,
            id: grant.id,
        });
    }
    let run = ctx.drive(ops, args.total, 1, None).await;
    // Not part of the measurement: leave no lease behind (they would live 100 s).
    for mut op in run.ops {
        let _ = op
            .lease
            .lease_revoke(chorus_api::etcdserverpb::LeaseRevokeRequest { id: op.id })
            .await;
    }
    let [recorder]: [_; 1] = run.recorders.try_into().expect("one class");
    let params = json!({ "total": args.total, "lease_ttl": LEASE_TTL });
    Ok(Output::new("lease-keepalive", params).section(
        "lease-keepalive",
        "",
        Stats::new(recorder, run.wall),
    ))
}
