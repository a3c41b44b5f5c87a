//! A big plain Range is written to the client as its records are read
//! (src/range_body.rs): the answer must be the one the whole-built path gives, for every
//! shape that takes the streamed path, and a refusal must come before any byte. The
//! oracle is chorus's own whole-built answer (a revision filter that keeps everything
//! sends a range down that path), itself compared with etcd's by the other suites.

use crate::common;

use chorus_api::etcdserverpb::kv_client::KvClient;
use chorus_api::etcdserverpb::range_request::{SortOrder, SortTarget};
use chorus_api::etcdserverpb::{
    request_op, PutRequest, RangeRequest, RangeResponse, RequestOp, TxnRequest,
};
use chorus_client::AuthChannel;
use common::etcdctl::Etcdctl;
use common::{Cluster, ServerKind};

type Kv = KvClient<AuthChannel>;

/// More than the streamed path's threshold (1,000 records).
const KEYS: usize = 2_500;

/// A KV client of member 0 (the range's caller).
async fn kv(cluster: &Cluster) -> Kv {
    cluster.member_client(0).await.kv_client()
}

/// Puts `k/{i:05}` for `i` in `keys`, 100 to a txn; values vary in size.
async fn fill(kv: &mut Kv, keys: impl Iterator<Item = usize>, tag: &str) {
    let keys: Vec<usize> = keys.collect();
    for part in keys.chunks(100) {
        let success = part
            .iter()
            .map(|i| RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: format!("k/{i:05}").into_bytes(),
                    value: format!("{tag}-{i}-{}", "v".repeat(i % 400)).into_bytes(),
                    ..Default::default()
                })),
            })
            .collect();
        let txn = TxnRequest {
            success,
            ..Default::default()
        };
        kv.txn(txn).await.unwrap();
    }
}

fn prefix() -> RangeRequest {
    RangeRequest {
        key: b"k/".to_vec(),
        range_end: b"k0".to_vec(),
        ..Default::default()
    }
}

/// The same request down the whole-built path.
fn whole(r: &RangeRequest) -> RangeRequest {
    RangeRequest {
        max_mod_revision: i64::MAX,
        ..r.clone()
    }
}

async fn both(
    kv: &mut Kv,
    r: &RangeRequest,
) -> (
    Result<RangeResponse, tonic::Status>,
    Result<RangeResponse, tonic::Status>,
) {
    let streamed = kv.range(r.clone()).await.map(|r| r.into_inner());
    let built = kv.range(whole(r)).await.map(|r| r.into_inner());
    (streamed, built)
}

#[tokio::test]
async fn a_streamed_range_answers_as_the_whole_built_one() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let mut kv = kv(&cluster).await;
    fill(&mut kv, 0..KEYS, "a").await;
    let before_rewrite = kv.range(prefix()).await.unwrap().into_inner();
    let old = before_rewrite.header.unwrap().revision;
    fill(&mut kv, (0..KEYS).step_by(3), "b").await;
    let cases = [
        prefix(),
        RangeRequest {
            limit: 1_500,
            ..prefix()
        },
        RangeRequest {
            limit: KEYS as i64,
            ..prefix()
        },
        // Under the threshold: built from the same records, never streamed.
        RangeRequest {
            limit: 999,
            ..prefix()
        },
        RangeRequest {
            revision: old,
            ..prefix()
        },
        RangeRequest {
            serializable: true,
            ..prefix()
        },
        RangeRequest {
            sort_order: SortOrder::Ascend as i32,
            sort_target: SortTarget::Key as i32,
            ..prefix()
        },
        RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        },
    ];
    for r in cases {
        let (streamed, built) = both(&mut kv, &r).await;
        let (streamed, built) = (streamed.unwrap(), built.unwrap());
        assert_eq!(streamed, built, "{r:?}");
        assert!(
            streamed.kvs.len() >= 999,
            "{} keys for {r:?}",
            streamed.kvs.len()
        );
    }
    let at_old = kv
        .range(RangeRequest {
            revision: old,
            ..prefix()
        })
        .await
        .unwrap();
    assert!(at_old
        .into_inner()
        .kvs
        .iter()
        .all(|kv| kv.value.starts_with(b"a-")));
}

/// A refused range is refused before its first byte, with the status the whole-built
/// path gives (etcd's strings).
#[tokio::test]
async fn a_refused_big_range_fails_as_a_built_one() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let mut kv = kv(&cluster).await;
    fill(&mut kv, 0..KEYS, "a").await;
    fill(&mut kv, 0..KEYS, "b").await;
    let c = cluster.client().await;
    let rev = c.status().await.unwrap().header.unwrap().revision;
    c.compact(rev - 1, true).await.unwrap();
    for r in [
        RangeRequest {
            revision: rev - 2,
            ..prefix()
        },
        RangeRequest {
            revision: rev + 100,
            ..prefix()
        },
    ] {
        let (streamed, built) = both(&mut kv, &r).await;
        let (streamed, built) = (streamed.unwrap_err(), built.unwrap_err());
        assert_eq!(
            (streamed.code(), streamed.message()),
            (built.code(), built.message())
        );
    }
}

/// etcdctl prints a streamed answer exactly as a built one, as JSON and as text, and a
/// user without permission on part of the range is refused.
#[tokio::test]
async fn etcdctl_reads_a_streamed_range_and_permissions_hold() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let mut kv = kv(&cluster).await;
    fill(&mut kv, 0..KEYS, "a").await;
    let ep = [cluster.client_url(0)];
    let ctl = |args: &[&str]| Etcdctl::v3(&ep).args(args.iter().copied());
    // etcdctl 3.4 has no --max-mod-rev: the oracle is the built answer over gRPC.
    let built = kv.range(whole(&prefix())).await.unwrap().into_inner();
    let json = ctl(&["get", "k/", "--prefix", "-w", "json"]).run().await;
    let printed: RangeResponse = serde_json::from_str(json.ok()).expect("etcdctl's JSON");
    assert_eq!(
        (&printed.kvs, printed.count, printed.more),
        (&built.kvs, built.count, built.more)
    );
    let simple = ctl(&["get", "k/", "--prefix"]).run().await;
    let lines: String = built
        .kvs
        .iter()
        .map(|kv| format!("{}\n{}\n", utf8(&kv.key), utf8(&kv.value)))
        .collect();
    assert_eq!(simple.ok(), lines);
    for args in [
        &["user", "add", "root", "--new-user-password=rootpw"][..],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "alice", "--new-user-password=alicepw"],
        &["role", "add", "half"],
        &["role", "grant-permission", "half", "read", "k/", "k/01000"],
        &["user", "grant-role", "alice", "half"],
        &["auth", "enable"],
    ] {
        ctl(args).run().await.ok();
    }
    let alice = |args: &[&str]| ctl(args).arg("--user=alice:alicepw");
    let half = alice(&["get", "k/", "k/01000", "-w", "json"]).run().await;
    assert!(half.ok().contains("\"count\":1000"), "{}", half.stdout);
    let denied = alice(&["get", "k/", "--prefix"]).run().await;
    assert!(
        denied.stderr.contains("etcdserver: permission denied"),
        "{denied:#?}"
    );
}

fn utf8(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}
