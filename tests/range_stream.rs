//! KV.RangeStream (etcd 3.7): the chunks of a stream together are the unary Range's
//! answer at one revision, only the last carries header, `more` and `count`, and a request
//! a Range refuses is refused with the same status. etcd 3.5 has no RangeStream, so the
//! oracle here is chorus's own unary Range (compared with etcd's by the other suites).

use crate::common;

use chorus_api::etcdserverpb::kv_client::KvClient;
use chorus_api::etcdserverpb::range_request::{SortOrder, SortTarget};
use chorus_api::etcdserverpb::{RangeRequest, RangeResponse};
use chorus_client::{Client, PutOptions};
use common::{Cluster, ClusterOptions, ServerKind};
use tonic::transport::Channel;

/// Chunks aim at half of this to twice it: small enough that 300 keys take many chunks.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
const KEYS: usize = 300;

async fn cluster() -> Cluster {
    let options = ClusterOptions {
        extra_args: vec![format!("--max-request-bytes={MAX_REQUEST_BYTES}")],
        ..ClusterOptions::default()
    };
    Cluster::start_with(ServerKind::Chorus, 1, options).await
}

async fn kv(cluster: &Cluster) -> KvClient<Channel> {
    let channel = Channel::from_shared(cluster.client_url(0))
        .unwrap()
        .connect()
        .await
        .unwrap();
    KvClient::new(channel)
}

async fn fill(c: &Client, tag: &str) {
    for i in 0..KEYS {
        let value = format!("{tag}-{i}-{}", "v".repeat(100));
        c.put(format!("k/{i:04}"), value, PutOptions::default())
            .await
            .unwrap();
    }
}

fn prefix() -> RangeRequest {
    RangeRequest {
        key: b"k/".to_vec(),
        range_end: b"k0".to_vec(),
        ..Default::default()
    }
}

/// Every message of a stream.
async fn chunks(
    kv: &mut KvClient<Channel>,
    r: RangeRequest,
) -> Result<Vec<RangeResponse>, tonic::Status> {
    let mut stream = kv.range_stream(r).await?.into_inner();
    let mut out = Vec::new();
    while let Some(msg) = stream.message().await? {
        out.push(msg.range_response.expect("a range response"));
    }
    Ok(out)
}

/// The chunks as one response: their keys in order, the last one's header, more, count.
fn joined(chunks: Vec<RangeResponse>) -> RangeResponse {
    let (last, rest) = chunks.split_last().expect("at least one message");
    for c in rest {
        assert!(
            c.header.is_none() && !c.more && c.count == 0,
            "only the last has them: {c:?}"
        );
    }
    let kvs = chunks.iter().flat_map(|c| c.kvs.clone()).collect();
    RangeResponse {
        kvs,
        ..last.clone()
    }
}

fn same_answer(stream: &RangeResponse, unary: &RangeResponse) {
    let (s, u) = (
        stream.header.as_ref().unwrap(),
        unary.header.as_ref().unwrap(),
    );
    assert_eq!(s.revision, u.revision);
    assert_eq!(
        (s.cluster_id, s.member_id, s.raft_term),
        (u.cluster_id, u.member_id, u.raft_term)
    );
    assert_eq!(
        (&stream.kvs, stream.more, stream.count),
        (&unary.kvs, unary.more, unary.count)
    );
}

#[tokio::test]
async fn chunks_add_up_to_the_unary_range() {
    let cluster = cluster().await;
    fill(&cluster.client().await, "a").await;
    let mut kv = kv(&cluster).await;
    let cases = [
        prefix(),
        RangeRequest {
            limit: 25,
            ..prefix()
        },
        RangeRequest {
            limit: 1000,
            ..prefix()
        },
        RangeRequest {
            keys_only: true,
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
            key: b"k/0042".to_vec(),
            ..Default::default()
        },
        RangeRequest {
            key: b"nothing".to_vec(),
            range_end: b"nothinh".to_vec(),
            ..Default::default()
        },
    ];
    for r in cases {
        let parts = chunks(&mut kv, r.clone()).await.unwrap();
        let bound = 2 * MAX_REQUEST_BYTES + 1024;
        for p in &parts {
            assert!(
                prost::Message::encoded_len(p) <= bound,
                "a chunk over {bound} bytes"
            );
        }
        let many = r.range_end.len() > 1 && r.key == b"k/" && r.limit != 25;
        assert!(!many || parts.len() > 3, "{} chunks for {r:?}", parts.len());
        let unary = kv.range(r.clone()).await.unwrap().into_inner();
        same_answer(&joined(parts), &unary);
    }
    let counted = chunks(
        &mut kv,
        RangeRequest {
            count_only: true,
            ..prefix()
        },
    )
    .await
    .unwrap();
    assert_eq!(counted.len(), 1);
    let unary = kv
        .range(RangeRequest {
            count_only: true,
            ..prefix()
        })
        .await
        .unwrap()
        .into_inner();
    same_answer(&counted[0], &unary);
    assert_eq!(counted[0].count, KEYS as i64);
}

/// Writes after the first chunk are not seen by the later ones: the stream is the store
/// at the revision its first chunk pinned.
#[tokio::test]
async fn one_revision_despite_concurrent_puts() {
    let cluster = cluster().await;
    let c = cluster.client().await;
    fill(&c, "old").await;
    let mut kv = kv(&cluster).await;
    let mut stream = kv.range_stream(prefix()).await.unwrap().into_inner();
    let first = stream
        .message()
        .await
        .unwrap()
        .unwrap()
        .range_response
        .unwrap();
    fill(&c, "new").await;
    c.put("k/9999", "added", PutOptions::default())
        .await
        .unwrap();
    let mut parts = vec![first];
    while let Some(msg) = stream.message().await.unwrap() {
        parts.push(msg.range_response.unwrap());
    }
    let streamed = joined(parts);
    let pinned = streamed.header.as_ref().unwrap().revision;
    let then = RangeRequest {
        revision: pinned,
        ..prefix()
    };
    let unary = kv.range(then).await.unwrap().into_inner();
    assert_eq!((&streamed.kvs, streamed.count), (&unary.kvs, unary.count));
    assert_eq!(streamed.kvs.len(), KEYS);
    assert!(streamed.kvs.iter().all(|kv| kv.value.starts_with(b"old-")));
}

/// A request Range refuses is refused the same way; what chunks cannot do (another order,
/// revision filters) is etcd's Unimplemented.
#[tokio::test]
async fn refusals_match_range() {
    let cluster = cluster().await;
    let c = cluster.client().await;
    fill(&c, "a").await;
    let rev = c.status().await.unwrap().header.unwrap().revision;
    c.compact(rev - 10, true).await.unwrap();
    let mut kv = kv(&cluster).await;
    for r in [
        RangeRequest {
            revision: rev - 20,
            ..prefix()
        },
        RangeRequest {
            revision: rev + 100,
            ..prefix()
        },
        RangeRequest {
            key: Vec::new(),
            ..prefix()
        },
    ] {
        let unary = kv.range(r.clone()).await.unwrap_err();
        let streamed = chunks(&mut kv, r).await.unwrap_err();
        assert_eq!(
            (streamed.code(), streamed.message()),
            (unary.code(), unary.message())
        );
    }
    let unsupported = [
        (
            RangeRequest {
                sort_order: SortOrder::Descend as i32,
                ..prefix()
            },
            "RangeStream does not support custom sort orders",
        ),
        (
            RangeRequest {
                min_mod_revision: 3,
                ..prefix()
            },
            "RangeStream does not support revision filters",
        ),
    ];
    for (r, message) in unsupported {
        let e = chunks(&mut kv, r).await.unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (tonic::Code::Unimplemented, message)
        );
    }
}

/// `chorusctl get --stream` (etcdctl 3.7's flag) prints what `get` prints, in every
/// output format, although its answer came in many chunks.
#[tokio::test]
async fn chorusctl_get_stream_prints_what_get_prints() {
    let cluster = cluster().await;
    fill(&cluster.client().await, "c").await;
    let url = cluster.client_url(0);
    let get = |extra: &[&str]| {
        let out = std::process::Command::new(common::chorusctl_binary())
            .args(["--endpoints", &url, "get", "k/", "--prefix"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{extra:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // Each format's mark of the last key or of the count of 300.
    for (format, mark) in [
        ("simple", "k/0299"),
        ("json", "\"count\":300"),
        ("fields", "\"Count\" : 300"),
    ] {
        let unary = get(&["-w", format]);
        assert!(unary.contains(mark), "{format}: {unary}");
        assert_eq!(get(&["-w", format, "--stream"]), unary, "{format}");
    }
    assert_eq!(
        get(&["--stream", "--limit", "7", "--keys-only"]),
        get(&["--limit", "7", "--keys-only"])
    );
}
