//! The `/v3/*` JSON gateway on a real chorus member, as curl users call it.

mod common;

use common::{Cluster, ServerKind};

#[tokio::test]
async fn kv_lease_and_errors_through_the_json_gateway() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let (code, body) = cluster
        .http(0, "POST", "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#)
        .await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    // 64-bit numbers are strings, as grpc-gateway writes them.
    assert!(v["header"]["revision"].is_string());

    let (code, body) = cluster
        .http(0, "POST", "/v3beta/kv/range", r#"{"key":"Zm9v"}"#)
        .await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kvs"][0]["value"], "YmFy");
    assert_eq!(v["count"], "1");

    let (code, body) = cluster.http(0, "POST", "/v3/kv/range", "{}").await;
    assert_eq!(code, 400);
    assert_eq!(
        body,
        r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#
    );
    let (code, body) = cluster
        .http(
            0,
            "POST",
            "/v3/kv/range",
            r#"{"key":"Zm9v","revision":"99"}"#,
        )
        .await;
    assert_eq!(code, 400);
    assert!(body.contains("future revision"), "{body}");

    let (code, body) = cluster
        .http(0, "POST", "/v3/lease/grant", r#"{"TTL":"60"}"#)
        .await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["TTL"], "60");
    let id = v["ID"].as_str().unwrap().to_string();
    let (code, body) = cluster
        .http(
            0,
            "POST",
            "/v3/kv/lease/timetolive",
            &format!(r#"{{"ID":"{id}"}}"#),
        )
        .await;
    assert_eq!(code, 200, "{body}");

    let (code, _) = cluster.http(0, "POST", "/v3/nope", "{}").await;
    assert_eq!(code, 404);
    let (code, body) = cluster.http(0, "POST", "/v3/kv/range", "not json").await;
    assert_eq!(code, 400, "{body}");
}

/// The value of an unlabelled sample in a Prometheus text exposition.
fn sample(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{exposition}"))
}

/// `/metrics` on the client port and on `--listen-metrics-urls`, with etcd's names and the
/// process collector's (`etcdctl check datascale` reads `process_resident_memory_bytes`).
#[tokio::test]
async fn metrics_on_the_client_port_and_the_metrics_urls() {
    let metrics_port = common::free_port();
    let options = common::ClusterOptions {
        extra_args: vec![format!(
            "--listen-metrics-urls=http://127.0.0.1:{metrics_port}"
        )],
        ..Default::default()
    };
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    let client = cluster.client().await;
    for i in 0..5 {
        client
            .put(format!("k{i}"), "v", Default::default())
            .await
            .expect("put");
    }
    let (code, body) = cluster.http_get(0, "/metrics").await;
    assert_eq!(code, 200, "{body}");
    assert!(sample(&body, "process_resident_memory_bytes") > 1e6);
    assert!(sample(&body, "process_open_fds") > 0.0);
    assert_eq!(sample(&body, "etcd_server_has_leader"), 1.0);
    assert_eq!(sample(&body, "etcd_server_is_leader"), 1.0);
    assert_eq!(sample(&body, "etcd_server_leader_changes_seen_total"), 1.0);
    assert_eq!(sample(&body, "etcd_debugging_mvcc_current_revision"), 6.0);
    assert_eq!(sample(&body, "etcd_debugging_mvcc_keys_total"), 5.0);
    assert!(body.contains("# TYPE etcd_server_has_leader gauge\n"));

    let addr = format!("127.0.0.1:{metrics_port}");
    let (code, body) = common::cluster::http_exchange(&addr, "GET", "/metrics", "").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(sample(&body, "etcd_debugging_mvcc_current_revision"), 6.0);
    let (code, body) = common::cluster::http_exchange(&addr, "GET", "/health", "").await;
    assert_eq!((code, body.as_str()), (200, r#"{"health":"true"}"#));
    // Only metrics and health there: no keys API.
    let (code, _) = common::cluster::http_exchange(&addr, "GET", "/v2/keys/k0", "").await;
    assert_eq!(code, 404);
}
