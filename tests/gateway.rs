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
