//! One function per etcdctl v3 command, grouped by topic as etcdctl's `ctlv3/command`.

pub mod auth;
pub mod check;
pub mod cluster;
pub mod concurrency;
pub mod kv;
pub mod lease;
pub mod mirror;
pub mod watch;

use crate::ctl::Ctl;
use crate::exit::{self, ExitCode};

/// Runs the command `ctl.path` names.
pub async fn run(mut ctl: Ctl) {
    let path = ctl.path.join(" ");
    match path.as_str() {
        "get" => kv::get(&mut ctl).await,
        "put" => kv::put(&mut ctl).await,
        "del" => kv::del(&mut ctl).await,
        "txn" => kv::txn(&mut ctl).await,
        "compaction" => kv::compaction(&mut ctl).await,
        "watch" => watch::watch(&mut ctl).await,
        "lease grant" => lease::grant(&mut ctl).await,
        "lease revoke" => lease::revoke(&mut ctl).await,
        "lease timetolive" => lease::time_to_live(&mut ctl).await,
        "lease list" => lease::list(&mut ctl).await,
        "lease keep-alive" => lease::keep_alive(&mut ctl).await,
        "member list" => cluster::member_list(&mut ctl).await,
        "member add" => cluster::member_add(&mut ctl).await,
        "member remove" => cluster::member_remove(&mut ctl).await,
        "member update" => cluster::member_update(&mut ctl).await,
        "member promote" => cluster::member_promote(&mut ctl).await,
        "endpoint health" => cluster::endpoint_health(&mut ctl).await,
        "endpoint status" => cluster::endpoint_status(&mut ctl).await,
        "endpoint hashkv" => cluster::endpoint_hashkv(&mut ctl).await,
        "alarm list" => cluster::alarm(&mut ctl, false).await,
        "alarm disarm" => cluster::alarm(&mut ctl, true).await,
        "defrag" => cluster::defrag(&mut ctl).await,
        "move-leader" => cluster::move_leader(&mut ctl).await,
        "snapshot save" => cluster::snapshot_save(&mut ctl).await,
        "snapshot status" => cluster::snapshot_status(&mut ctl),
        "snapshot restore" => cluster::snapshot_restore(&mut ctl),
        "version" => {
            println!("etcdctl version: {}", crate::ETCD_VERSION);
            println!("API version: {}", crate::API_VERSION);
        }
        "migrate" => exit::fail(
            ExitCode::Error,
            "migrate (v2 store to mvcc on a stopped member's data dir) is not supported by chorusctl",
        ),
        "lock" => concurrency::lock(&mut ctl).await,
        "elect" => concurrency::elect(&mut ctl).await,
        "make-mirror" => mirror::make_mirror(&mut ctl).await,
        "check perf" => check::perf(&mut ctl).await,
        "check datascale" => check::datascale(&mut ctl).await,
        p if p.starts_with("auth ") || p.starts_with("user ") || p.starts_with("role ") => {
            auth::run(&mut ctl, p).await
        }
        other => exit::fail(ExitCode::Error, &format!("unknown command {other:?}")),
    }
}
