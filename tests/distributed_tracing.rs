//! `--enable-distributed-tracing` (3.5: `--experimental-enable-distributed-tracing`):
//! spans for the gRPC requests etcdctl makes, received by a tiny OTLP/gRPC collector in
//! the test, compared with what etcd 3.5.1 sends to the same collector.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, ClusterOptions, Etcdctl, ServerKind};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use tokio::sync::watch;

/// One received span: name, kind, attributes and its resource's attributes.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    name: String,
    kind: i32,
    attributes: BTreeMap<String, String>,
    resource: BTreeMap<String, String>,
}

fn text(kv: &[KeyValue]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

/// The collector: every span it is sent, in a watch channel.
struct Collector(watch::Sender<Vec<ReceivedSpan>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = Vec::new();
        for rs in req.into_inner().resource_spans {
            let resource = text(rs.resource.as_ref().map_or(&[][..], |r| &r.attributes));
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                got.push(ReceivedSpan {
                    name: span.name,
                    kind: span.kind,
                    attributes: text(&span.attributes),
                    resource: resource.clone(),
                });
            }
        }
        self.0.send_modify(|all| all.extend(got));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Starts the collector on a free port; returns its address and the spans it receives.
async fn collector() -> (String, watch::Receiver<Vec<ReceivedSpan>>) {
    let port = common::free_ports(1)[0];
    let addr = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("bind the collector");
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, rx)
}

/// Runs `put` and `get` with etcdctl against a member sending spans to a fresh
/// collector; returns the spans of the two calls.
async fn spans_of(kind: ServerKind, flags: &[&str]) -> (ReceivedSpan, ReceivedSpan) {
    let (addr, mut rx) = collector().await;
    let mut args: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    args.push(format!(
        "{}={addr}",
        flags[0]
            .replace("enable-", "")
            .replace("tracing", "tracing-address")
    ));
    let options = ClusterOptions {
        extra_args: args,
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(kind, 1, options).await;
    let eps = cluster.endpoints();
    let put = Etcdctl::v3(&eps).args(["put", "k", "v"]).run().await;
    assert!(put.success(), "{put:?}");
    let get = Etcdctl::v3(&eps).args(["get", "k"]).run().await;
    assert!(get.success(), "{get:?}");
    let find = |all: &[ReceivedSpan], name: &str| all.iter().find(|s| s.name == name).cloned();
    // The batch exporter sends every 5 s.
    let waited = tokio::time::timeout(
        Duration::from_secs(30),
        rx.wait_for(|all| {
            find(all, "etcdserverpb.KV/Put").is_some()
                && find(all, "etcdserverpb.KV/Range").is_some()
        }),
    )
    .await
    .map(|r| r.map(|all| all.clone()));
    let Ok(Ok(both)) = waited else {
        panic!("{kind:?}: no spans for Put and Range: {:?}", rx.borrow());
    };
    (
        find(&both, "etcdserverpb.KV/Put").unwrap(),
        find(&both, "etcdserverpb.KV/Range").unwrap(),
    )
}

const FLAGS_36: [&str; 4] = [
    "--enable-distributed-tracing",
    "--distributed-tracing-sampling-rate=1000000",
    "--distributed-tracing-service-name=chorus-test",
    "--distributed-tracing-instance-id=m0",
];

/// etcd 3.5.1's flags: it has no sampling-rate flag (3.5.6 added it) and samples every
/// request; chorus gets the rate that does the same, [`SAMPLE_ALL_35`].
const FLAGS_35: [&str; 3] = [
    "--experimental-enable-distributed-tracing",
    "--experimental-distributed-tracing-service-name=chorus-test",
    "--experimental-distributed-tracing-instance-id=m0",
];
const SAMPLE_ALL_35: &str = "--experimental-distributed-tracing-sampling-rate=1000000";

#[tokio::test(flavor = "multi_thread")]
async fn etcdctl_requests_become_server_spans() {
    if !common::require_etcdctl() {
        return;
    }
    let (put, range) = spans_of(ServerKind::Chorus, &FLAGS_36).await;
    assert_eq!(put.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(put.attributes["rpc.system"], "grpc");
    assert_eq!(put.attributes["rpc.service"], "etcdserverpb.KV");
    assert_eq!(put.attributes["rpc.method"], "Put");
    assert_eq!(put.attributes["rpc.grpc.status_code"], "0");
    assert_eq!(put.attributes["net.peer.ip"], "127.0.0.1");
    assert_eq!(range.attributes["rpc.method"], "Range");
    assert_eq!(put.resource["service.name"], "chorus-test");
    assert_eq!(put.resource["service.instance.id"], "m0");
}

/// etcd 3.5.1 with the same flags (its 3.5 names) and chorus with those names: the same
/// span names, kinds, rpc.* attributes and resource.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_spans_as_etcd_35() {
    if !common::require_etcd35() {
        return;
    }
    let rpc = |s: &ReceivedSpan| -> BTreeMap<String, String> {
        s.attributes
            .iter()
            .filter(|(k, _)| k.starts_with("rpc.") && *k != "rpc.grpc.status_code")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let chorus_flags: Vec<&str> = FLAGS_35.iter().copied().chain([SAMPLE_ALL_35]).collect();
    let (c_put, c_range) = spans_of(ServerKind::Chorus, &chorus_flags).await;
    let (e_put, e_range) = spans_of(ServerKind::Etcd35, &FLAGS_35).await;
    for (c, e) in [(&c_put, &e_put), (&c_range, &e_range)] {
        assert_eq!((&c.name, c.kind), (&e.name, e.kind));
        assert_eq!(rpc(c), rpc(e), "etcd's: {e:?}");
        assert_eq!(
            c.resource.get("service.name"),
            e.resource.get("service.name")
        );
        assert_eq!(
            c.resource.get("service.instance.id"),
            e.resource.get("service.instance.id")
        );
    }
}
