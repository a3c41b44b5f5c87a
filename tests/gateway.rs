//! The `/v3/*` JSON gateway on a real chorus member, as curl users call it.

use crate::common;

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
        r#"{"error":"etcdserver: key is not provided","code":3,"message":"etcdserver: key is not provided"}"#
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
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"health":"true","reason":""}"#)
    );
    // Only metrics and health there: no keys API.
    let (code, _) = common::cluster::http_exchange(&addr, "GET", "/v2/keys/k0", "").await;
    assert_eq!(code, 404);
}

/// A chorus member and a real etcd 3.5 member side by side.
async fn pair() -> Option<(Cluster, Cluster)> {
    if !common::require_etcd() {
        return None;
    }
    let (etcd, chorus) = tokio::join!(
        Cluster::start(ServerKind::Etcd, 1),
        Cluster::start(ServerKind::Chorus, 1)
    );
    Some((etcd, chorus))
}

/// `/readyz?verbose` lists its checks in map order in etcd: compare them sorted.
fn sorted_lines(body: &str) -> String {
    let mut lines: Vec<&str> = body.lines().collect();
    lines.sort();
    lines.join("\n")
}

#[tokio::test]
async fn health_livez_and_readyz_answer_as_etcd_3_5() {
    let Some((etcd, chorus)) = pair().await else {
        return;
    };
    let requests = [
        ("GET", "/health"),
        ("GET", "/health?serializable=true"),
        ("GET", "/health?exclude=NOSPACE"),
        ("POST", "/health"),
    ];
    for (method, path) in requests {
        let (e, c) = tokio::join!(
            etcd.http(0, method, path, ""),
            chorus.http(0, method, path, "")
        );
        assert_eq!(
            (e.0, sorted_lines(&e.1)),
            (c.0, sorted_lines(&c.1)),
            "{method} {path}"
        );
    }
    // An alarm makes /health false unless excluded, and /readyz notices CORRUPT only.
    for cluster in [&etcd, &chorus] {
        let (_, ids) = cluster.ids().await;
        let body = format!(
            r#"{{"action":"ACTIVATE","memberID":"{}","alarm":"NOSPACE"}}"#,
            ids[0]
        );
        let (code, out) = cluster
            .http(0, "POST", "/v3/maintenance/alarm", &body)
            .await;
        assert_eq!(code, 200, "{out}");
    }
    for path in ["/health", "/health?exclude=NOSPACE"] {
        let (e, c) = tokio::join!(
            etcd.http(0, "GET", path, ""),
            chorus.http(0, "GET", path, "")
        );
        assert_eq!(e, c, "GET {path} with NOSPACE raised");
    }
}

/// `/livez` and `/readyz` came in etcd 3.5.11 (3.5.1, the binary here, has none): the
/// expected texts are those of etcd's `etcdhttp/health.go`.
#[tokio::test]
async fn livez_and_readyz_answer_as_etcd_writes_them() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let cases = [
        ("GET", "/livez", 200, "ok\n"),
        (
            "GET",
            "/livez?verbose",
            200,
            "[+]serializable_read ok\nok\n",
        ),
        ("GET", "/readyz", 200, "ok\n"),
        (
            "GET",
            "/readyz?verbose",
            200,
            "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n",
        ),
        (
            "GET",
            "/readyz?verbose&exclude=linearizable_read",
            200,
            "[+]data_corruption ok\n[+]serializable_read ok\nok\n",
        ),
        ("GET", "/readyz?exclude=nope", 200, "ok\n"),
        ("GET", "/livez/serializable_read", 200, "ok\n"),
        (
            "GET",
            "/readyz/data_corruption?verbose",
            200,
            "[+]data_corruption ok\nok\n",
        ),
        ("POST", "/livez", 405, "Method Not Allowed\n"),
        ("GET", "/livez/nope", 404, "404 page not found\n"),
    ];
    for (method, path, code, body) in cases {
        assert_eq!(
            cluster.http(0, method, path, "").await,
            (code, body.to_string()),
            "{method} {path}"
        );
    }
    // NOSPACE does not make a member unready; CORRUPT does.
    let (_, ids) = cluster.ids().await;
    let corrupt = format!(
        r#"{{"action":"ACTIVATE","memberID":"{}","alarm":"CORRUPT"}}"#,
        ids[0]
    );
    let (code, out) = cluster
        .http(0, "POST", "/v3/maintenance/alarm", &corrupt)
        .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(
        cluster.http(0, "GET", "/livez", "").await,
        (200, "ok\n".into())
    );
    assert_eq!(
        cluster.http(0, "GET", "/readyz", "").await,
        (
            503,
            "[-]data_corruption failed: alarm activated: CORRUPT\n[+]serializable_read ok\n[+]linearizable_read ok\n\n"
                .into()
        )
    );
    let (code, body) = cluster.http(0, "GET", "/health", "").await;
    assert_eq!(
        (code, body.as_str()),
        (503, "{\"health\":\"false\",\"reason\":\"ALARM CORRUPT\"}\n")
    );
}

/// One `{"result": ...}` line of a gateway stream, with the header blanked.
fn result_shape(line: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}"));
    let result = v.get_mut("result").unwrap_or_else(|| panic!("{line}"));
    if let Some(h) = result.get_mut("header") {
        *h = serde_json::json!("<header>");
    }
    v
}

#[tokio::test]
async fn streamed_gateway_calls_answer_as_etcd_3_5() {
    let Some((etcd, chorus)) = pair().await else {
        return;
    };
    for cluster in [&etcd, &chorus] {
        let (code, out) = cluster
            .http(0, "POST", "/v3/lease/grant", r#"{"TTL":"60","ID":"4660"}"#)
            .await;
        assert_eq!(code, 200, "{out}");
    }
    // Patroni's keep-alive: one request, one line, the end.
    let body = r#"{"ID":"4660"}"#;
    let (e, c) = tokio::join!(
        etcd.http(0, "POST", "/v3/lease/keepalive", body),
        chorus.http(0, "POST", "/v3/lease/keepalive", body)
    );
    assert_eq!((e.0, c.0), (200, 200));
    let (e_lines, c_lines): (Vec<&str>, Vec<&str>) = (e.1.lines().collect(), c.1.lines().collect());
    assert_eq!(e_lines.len(), 1, "{}", e.1);
    assert_eq!(c_lines.len(), 1, "{}", c.1);
    let (e_v, c_v) = (result_shape(e_lines[0]), result_shape(c_lines[0]));
    assert_eq!(e_v["result"]["ID"], c_v["result"]["ID"]);
    assert_eq!(c_v["result"]["TTL"], "60");
    assert_eq!(e_v, c_v);
    // An unknown lease answers TTL 0 (the stream stays usable).
    let (e, c) = tokio::join!(
        etcd.http(0, "POST", "/v3/lease/keepalive", r#"{"ID":"1"}"#),
        chorus.http(0, "POST", "/v3/lease/keepalive", r#"{"ID":"1"}"#)
    );
    assert_eq!(result_shape(e.1.trim()), result_shape(c.1.trim()));
    // The snapshot as lines of blobs, the last one the SHA-256.
    let (code, out) = chorus
        .http(0, "POST", "/v3/maintenance/snapshot", "{}")
        .await;
    assert_eq!(code, 200);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "{out}");
    for l in &lines {
        let v = result_shape(l);
        assert!(v["result"]["blob"].is_string(), "{l}");
    }
    let last = result_shape(lines.last().unwrap());
    assert!(last["result"].get("remaining_bytes").is_none(), "{last}");
}

#[tokio::test]
async fn election_observe_streams_the_leader_as_etcd_does() {
    let Some((etcd, chorus)) = pair().await else {
        return;
    };
    let mut firsts = Vec::new();
    for cluster in [&etcd, &chorus] {
        let (code, out) = cluster
            .http(0, "POST", "/v3/lease/grant", r#"{"TTL":"60","ID":"4661"}"#)
            .await;
        assert_eq!(code, 200, "{out}");
        let campaign = r#"{"name":"ZWxlY3Q=","lease":"4661","value":"djE="}"#;
        let (code, out) = cluster
            .http(0, "POST", "/v3/election/campaign", campaign)
            .await;
        assert_eq!(code, 200, "{out}");
        let addr = cluster.client_addr(0);
        let req =
            common::HttpRequest::new("POST", "/v3/election/observe").json(r#"{"name":"ZWxlY3Q="}"#);
        let mut stream = common::HttpStream::open(&addr, &req).await;
        let first = stream
            .lines(1, std::time::Duration::from_secs(10))
            .await
            .expect("the leader within 10 s");
        let mut v = result_shape(first.lines().last().unwrap());
        v["result"]["kv"]["create_revision"] = serde_json::json!("<rev>");
        v["result"]["kv"]["mod_revision"] = serde_json::json!("<rev>");
        firsts.push(v);
    }
    assert_eq!(firsts[0], firsts[1]);
    assert_eq!(firsts[1]["result"]["kv"]["value"], "djE=");
}
