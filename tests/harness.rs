//! Proves the harness on the real etcd: clusters start, serve the client and etcdctl,
//! survive the leader's kill -9, keep data across restarts and leave no process behind.
//! Runs only where etcd (and etcdctl) are installed; under `CI=true` they must be.

use crate::common;

use std::process::Command;

use chorus_client::{Client, ConnectOptions, GetOptions, PutOptions};
use common::{Cluster, ClusterOptions, Etcdctl, Normalizer, ServerKind};

const ETCD: ServerKind = ServerKind::Etcd;

fn have_etcd_and_etcdctl() -> bool {
    common::require_etcd() && common::require_etcdctl()
}

async fn value(client: &chorus_client::Client, key: &str) -> Option<Vec<u8>> {
    let resp = client.get(key, GetOptions::default()).await.expect("get");
    resp.kvs.into_iter().next().map(|kv| kv.value)
}

#[tokio::test]
async fn one_member_serves_client_and_etcdctl() {
    if !have_etcd_and_etcdctl() {
        return;
    }
    let options = ClusterOptions {
        extra_args: vec!["--enable-v2=true".into()],
        ..Default::default()
    };
    let cluster = Cluster::start_with(ETCD, 1, options).await;
    let client = cluster.client().await;
    let endpoints = cluster.endpoints();

    client
        .put("from-client", "1", PutOptions::default())
        .await
        .unwrap();
    let out = Etcdctl::v3(&endpoints)
        .args(["get", "from-client"])
        .run()
        .await;
    assert_eq!(out.ok(), "from-client\n1\n");

    let out = Etcdctl::v3(&endpoints)
        .args(["put", "from-etcdctl", "2"])
        .run()
        .await;
    assert_eq!(out.ok(), "OK\n");
    assert_eq!(
        value(&client, "from-etcdctl").await.as_deref(),
        Some(&b"2"[..])
    );

    let out = Etcdctl::v3(&endpoints).args(["get", "missing"]).run().await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""));

    let txn = "value(\"from-etcdctl\") = \"2\"\n\nput t yes\n\nput t no\n\n";
    let out = Etcdctl::v3(&endpoints).args(["txn"]).stdin(txn).run().await;
    assert_eq!(out.ok(), "SUCCESS\n\nOK\n");
    assert_eq!(value(&client, "t").await.as_deref(), Some(&b"yes"[..]));

    let out = Etcdctl::v2(&endpoints)
        .args(["set", "/v2key", "v"])
        .run()
        .await;
    assert_eq!(out.ok(), "v\n");
    let out = Etcdctl::v2(&endpoints).args(["get", "/v2key"]).run().await;
    assert_eq!(out.ok(), "v\n");

    let (code, body) = cluster.http_get(0, "/health").await;
    assert_eq!(
        (code, body.as_str()),
        (200, "{\"health\":\"true\",\"reason\":\"\"}")
    );
}

#[tokio::test]
async fn three_members_replicate() {
    if !have_etcd_and_etcdctl() {
        return;
    }
    let cluster = Cluster::start(ETCD, 3).await;
    let client = cluster.client().await;
    client.put("k", "v", PutOptions::default()).await.unwrap();
    // A linearizable read on each member sees the write.
    for i in 0..3 {
        let member = cluster.member_client(i).await;
        assert_eq!(
            value(&member, "k").await.as_deref(),
            Some(&b"v"[..]),
            "member {i}"
        );
    }

    let members = client.member_list().await.unwrap().members;
    let mut names: Vec<_> = members.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["m0", "m1", "m2"]);

    // etcdctl's view, with the run-specific parts blanked.
    let norm = cluster.normalizer().await.ports();
    let out = Etcdctl::v3(&cluster.endpoints())
        .args(["member", "list"])
        .run()
        .await;
    let mut lines: Vec<String> = norm.apply(out.ok()).lines().map(str::to_owned).collect();
    lines.sort();
    let expected: Vec<String> = (0..3)
        .map(|i| {
            format!(
                "<member-{i}>, started, m{i}, http://127.0.0.1:<port>, http://127.0.0.1:<port>, false"
            )
        })
        .collect();
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn kill9_leader_then_new_leader_takes_writes() {
    if !common::require_etcd() {
        return;
    }
    let mut cluster = Cluster::start(ETCD, 3).await;
    let client = cluster.client().await;
    client
        .put("before", "1", PutOptions::default())
        .await
        .unwrap();

    let old = cluster.leader().await;
    cluster.kill9(old);
    let new = cluster.leader().await;
    assert_ne!(new, old);

    // The client's endpoint list still holds the dead member; calls fail over.
    client
        .put("after", "2", PutOptions::default())
        .await
        .unwrap();
    assert_eq!(value(&client, "before").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(value(&client, "after").await.as_deref(), Some(&b"2"[..]));
    let status = cluster.status(new).await.unwrap();
    assert_eq!(status.leader, status.header.unwrap().member_id);
}

#[tokio::test]
async fn restart_keeps_data() {
    if !common::require_etcd() {
        return;
    }
    // One member, graceful stop.
    let mut single = Cluster::start(ETCD, 1).await;
    let client = single.client().await;
    client
        .put("durable", "yes", PutOptions::default())
        .await
        .unwrap();
    single.stop(0).await;
    single.restart(0).await;
    assert_eq!(
        value(&client, "durable").await.as_deref(),
        Some(&b"yes"[..])
    );

    // Three members, kill -9 of a follower, writes while it is down.
    let mut cluster = Cluster::start(ETCD, 3).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    // A client whose current endpoint is the follower, connected before the kill.
    let mut endpoints = cluster.endpoints();
    endpoints.rotate_left(follower);
    let client = Client::connect(&endpoints, ConnectOptions::default())
        .await
        .unwrap();
    client.put("a", "1", PutOptions::default()).await.unwrap();
    cluster.kill9(follower);
    // Reads fail over at once, even from the connection the kill broke.
    assert_eq!(value(&client, "a").await.as_deref(), Some(&b"1"[..]));
    assert_ne!(client.current_endpoint(), cluster.client_url(follower));
    let leader_client = cluster.member_client(leader).await;
    leader_client
        .put("b", "2", PutOptions::default())
        .await
        .unwrap();
    cluster.restart(follower).await;
    let member = cluster.member_client(follower).await;
    assert_eq!(value(&member, "a").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(value(&member, "b").await.as_deref(), Some(&b"2"[..]));
}

/// `pgrep -f pattern` exit code 1 means "no process matched".
fn pgrep(pattern: &str) -> String {
    let out = Command::new("pgrep")
        .args(["-a", "-f", pattern])
        .output()
        .expect("pgrep");
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{out:?}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn drop_leaves_no_process() {
    if !common::require_etcd() {
        return;
    }
    let cluster = Cluster::start(ETCD, 3).await;
    // Every member's command line names the cluster's unique temporary directory.
    let dir = cluster.dir().display().to_string();
    let pids = cluster.pids();
    assert_eq!(pids.len(), 3);
    let running = pgrep(&dir);
    for pid in &pids {
        assert!(
            running.lines().any(|l| l.starts_with(&format!("{pid} "))),
            "{running}"
        );
    }
    drop(cluster);
    assert_eq!(pgrep(&dir), "");
}

#[tokio::test]
async fn normalized_outputs_of_two_clusters_compare_equal() {
    if !have_etcd_and_etcdctl() {
        return;
    }
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let cluster = Cluster::start(ETCD, 1).await;
        let endpoints = cluster.endpoints();
        Etcdctl::v3(&endpoints)
            .args(["put", "k", "v"])
            .run()
            .await
            .ok();
        let norm = cluster
            .normalizer()
            .await
            .ports()
            .raft_terms()
            .raft_indexes()
            .db_sizes()
            .durations()
            .tables();
        let mut text = String::new();
        for args in [
            &["endpoint", "status"][..],
            &["endpoint", "status", "-w", "table"],
            &["endpoint", "status", "-w", "json"],
            &["get", "k", "-w", "json"],
            &["member", "list", "-w", "fields"],
        ] {
            text += &norm.apply(Etcdctl::v3(&endpoints).args(args).run().await.ok());
        }
        // `endpoint health` writes its verdict to stderr.
        let health = Etcdctl::v3(&endpoints)
            .args(["endpoint", "health"])
            .run()
            .await;
        assert!(health.success());
        text += &norm.apply(&health.stderr);
        outputs.push(text);
    }
    assert_eq!(outputs[0], outputs[1]);
    let line = format!(
        "127.0.0.1:<port>, <member-0>, {}, <size>, true, false, <term>, <index>, <index>, \n",
        chorus_config::ETCD_COMPAT_VERSION
    );
    assert!(outputs[0].contains(&line), "{}", outputs[0]);
    assert!(outputs[0].contains("is healthy: successfully committed proposal: took = <duration>"));
}

#[test]
fn normalizer_blanks_only_what_is_asked() {
    let id: u64 = 0x2e12_59d4_15f2_a040;
    let text = format!(
        "{id:x}, started, a, http://127.0.0.1:23800\n{{\"member_id\":{id},\"revision\":7,\"raft_term\":2}}\ntook = 1.39ms, 20 kB\n"
    );
    let bare = Normalizer::new().apply(&text);
    assert_eq!(bare, text);
    let ids = Normalizer::new().member_ids(&[id]).apply(&text);
    assert_eq!(
        ids,
        "<member-0>, started, a, http://127.0.0.1:23800\n{\"member_id\":<member-0>,\"revision\":7,\"raft_term\":2}\ntook = 1.39ms, 20 kB\n"
    );
    let all = Normalizer::new()
        .member_ids(&[id])
        .ports()
        .revisions()
        .raft_terms()
        .durations()
        .db_sizes()
        .apply(&text);
    assert_eq!(
        all,
        "<member-0>, started, a, http://127.0.0.1:<port>\n{\"member_id\":<member-0>,\"revision\":<rev>,\"raft_term\":<term>}\ntook = <duration>, <size>\n"
    );
    let table = "+----+-----+\n| ID | X   |\n+----+-----+\n| abc|   1 |\n+----+-----+\n";
    assert_eq!(
        Normalizer::new().tables().apply(table),
        "+-+-+\n| ID | X |\n+-+-+\n| abc | 1 |\n+-+-+\n"
    );
    let leading_zero = Normalizer::new()
        .member_ids(&[0xabc])
        .apply("abc 0000000000000abc 2748");
    assert_eq!(leading_zero, "<member-0> <member-0> <member-0>");
    let logs = Normalizer::new()
        .client_logs()
        .apply("{\"level\":\"warn\",\"msg\":\"retrying\"}\nError: boom\n");
    assert_eq!(logs, "Error: boom\n");
}
