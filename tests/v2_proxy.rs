//! etcd 3.4/3.5's v2 proxy (`--proxy=on|readonly`): the same HTTP requests through a
//! chorus proxy in front of a chorus cluster and through etcd 3.4's proxy in front of an
//! etcd 3.4 cluster give the same answers (indexes aside); fail-over, the readonly
//! refusal, `<data-dir>/proxy/cluster` and the data dir deciding the mode.

use crate::common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, ClusterOptions, HttpRequest, ServerKind};
use serde_json::Value;

/// A v2 proxy process in front of `cluster`, on a port of its own.
struct V2Proxy {
    child: Option<Child>,
    binary: PathBuf,
    args: Vec<String>,
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
}

impl V2Proxy {
    fn new(cluster: &Cluster, mode: &str) -> V2Proxy {
        let port = common::free_ports(1)[0];
        let initial: Vec<String> = (0..cluster.len())
            .map(|i| {
                format!(
                    "{}={}",
                    cluster.member(i).name,
                    cluster.member(i).peer_url()
                )
            })
            .collect();
        let data_dir = cluster.dir().join(format!("proxy-{mode}"));
        let args = vec![
            format!("--proxy={mode}"),
            "--name=px".to_string(),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls=http://127.0.0.1:{port}"),
            format!("--initial-cluster={}", initial.join(",")),
            "--proxy-refresh-interval=1000".to_string(),
        ];
        V2Proxy {
            child: None,
            binary: cluster.kind.binary(),
            args,
            port,
            log: cluster.dir().join(format!("proxy-{mode}.log")),
            data_dir,
        }
    }

    /// Starts the process and waits until it knows `endpoints` member client URLs.
    async fn start(&mut self, endpoints: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.binary)
            .args(&self.args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the proxy");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(n) = self.try_endpoints().await {
                if n == endpoints {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "proxy not ready: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn try_endpoints(&self) -> Option<usize> {
        let s = tokio::net::TcpStream::connect(self.addr()).await.ok()?;
        drop(s);
        let r = self
            .send(HttpRequest::new("GET", "/v2/config/local/proxy"))
            .await;
        let v: Value = serde_json::from_str(&r.body).ok()?;
        Some(v["endpoints"].as_array()?.len())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn send(&self, req: HttpRequest) -> common::HttpResponse {
        common::http::send(&self.addr(), &req).await
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for V2Proxy {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- proxy log ---\n{}", self.log_text());
        }
    }
}

/// The JSON body without the indexes (etcd counts membership writes in the v2 index).
fn strip_indexes(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for k in ["modifiedIndex", "createdIndex", "index"] {
            o.remove(k);
        }
        for (_, x) in o.iter_mut() {
            *x = strip_indexes(x.take());
        }
    } else if let Some(a) = v.as_array_mut() {
        for x in a.iter_mut() {
            *x = strip_indexes(x.take());
        }
    }
    v
}

/// One exchange, as (status, JSON body without indexes or the raw body).
async fn exchange(p: &V2Proxy, req: HttpRequest) -> (u16, String) {
    let r = p.send(req).await;
    let body = match serde_json::from_str::<Value>(&r.body) {
        Ok(v) => strip_indexes(v).to_string(),
        Err(_) => r.body.clone(),
    };
    (r.status, body)
}

/// The requests compared through both proxies.
async fn script(p: &V2Proxy) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    let form = |m: &str, path: &str, body: &str| HttpRequest::new(m, path).form(body);
    out.push(exchange(p, form("PUT", "/v2/keys/dir/a", "value=1")).await);
    out.push(exchange(p, HttpRequest::new("GET", "/v2/keys/dir/a")).await);
    out.push(exchange(p, form("PUT", "/v2/keys/dir/a?prevExist=false", "value=2")).await);
    out.push(exchange(p, HttpRequest::new("GET", "/v2/keys/dir?recursive=true")).await);
    out.push(exchange(p, HttpRequest::new("GET", "/v2/keys/missing")).await);
    out.push(exchange(p, HttpRequest::new("DELETE", "/v2/keys/dir/a")).await);
    // A long-polling watch through the proxy gets the change (waitIndex: no race with
    // the write, which may come first).
    let first = p.send(form("PUT", "/v2/keys/w", "value=x")).await;
    let next = first.json()["node"]["modifiedIndex"]
        .as_u64()
        .expect("index")
        + 1;
    let addr = p.addr();
    let target = format!("/v2/keys/w?wait=true&waitIndex={next}");
    let watch =
        tokio::spawn(
            async move { common::http::send(&addr, &HttpRequest::new("GET", &target)).await },
        );
    out.push(exchange(p, form("PUT", "/v2/keys/w", "value=y")).await);
    let event = watch.await.expect("watch task");
    let body: Value = serde_json::from_str(&event.body).expect("watch JSON");
    out.push((event.status, strip_indexes(body).to_string()));
    out
}

/// etcd 3.4 serves the v2 API only with `--enable-v2`.
async fn v2_cluster(kind: ServerKind) -> Cluster {
    let options = ClusterOptions {
        extra_args: vec!["--enable-v2".to_string()],
        ..ClusterOptions::default()
    };
    Cluster::start_with(kind, 3, options).await
}

async fn compare_one(kind: ServerKind) -> (Vec<(u16, String)>, Vec<String>) {
    let cluster = v2_cluster(kind).await;
    let mut proxy = V2Proxy::new(&cluster, "on");
    proxy.start(3).await;
    let answers = script(&proxy).await;
    let file = std::fs::read_to_string(proxy.data_dir.join("proxy/cluster")).expect("cluster file");
    let file: Value = serde_json::from_str(&file).expect("cluster file JSON");
    let peers: Vec<String> = file["PeerURLs"]
        .as_array()
        .expect("PeerURLs")
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    let mut expected: Vec<String> = (0..3).map(|i| cluster.member(i).peer_url()).collect();
    expected.sort();
    assert_eq!(peers, expected, "{kind:?}");
    (answers, peers)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_requests_give_the_same_answers_as_etcd_34s_proxy() {
    if !common::require_etcd34() {
        return;
    }
    let (chorus, _) = compare_one(ServerKind::Chorus).await;
    let (etcd, _) = compare_one(ServerKind::Etcd34).await;
    assert_eq!(chorus, etcd);
    assert_eq!(chorus[0].0, 201);
    assert_eq!(chorus[2].0, 412);
}

/// Readonly refuses anything but GET with an empty 501; a dead member is failed over;
/// with every member gone the proxy answers etcd's 502 then 503.
async fn readonly_and_failover(kind: ServerKind) -> Vec<(u16, String)> {
    let mut cluster = v2_cluster(kind).await;
    let mut proxy = V2Proxy::new(&cluster, "readonly");
    proxy.start(3).await;
    let mut out = Vec::new();
    for m in ["PUT", "POST", "DELETE", "OPTIONS"] {
        let r = proxy
            .send(HttpRequest::new(m, "/v2/keys/k").form("value=1"))
            .await;
        out.push((r.status, r.body));
    }
    cluster.kill9(0);
    for _ in 0..6 {
        out.push(exchange(&proxy, HttpRequest::new("GET", "/v2/keys/")).await);
    }
    cluster.kill9(1);
    cluster.kill9(2);
    let mut last = (0, String::new());
    for _ in 0..4 {
        last = exchange(&proxy, HttpRequest::new("GET", "/v2/keys/")).await;
        if last.0 == 503 {
            break;
        }
        assert_eq!(last.0, 502, "{kind:?}: {last:?}");
    }
    out.push(last);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn readonly_refusal_and_failover_as_etcd_34() {
    if !common::require_etcd34() {
        return;
    }
    let chorus = readonly_and_failover(ServerKind::Chorus).await;
    let etcd = readonly_and_failover(ServerKind::Etcd34).await;
    assert_eq!(chorus, etcd);
    assert_eq!(chorus[0], (501, String::new()));
    assert_eq!(
        chorus.last().unwrap(),
        &(
            503,
            r#"{"message":"httpproxy: zero endpoints currently available"}"#.to_string()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_data_dir_stays_a_proxy() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let mut proxy = V2Proxy::new(&cluster, "on");
    proxy.start(1).await;
    proxy.stop();
    // `--proxy=off` on a data dir that holds proxy/: a proxy again, from the cluster file
    // (the --initial-cluster given now is wrong on purpose).
    proxy.args[0] = "--proxy=off".to_string();
    proxy.args[4] = "--initial-cluster=px=http://127.0.0.1:1".to_string();
    // (without --proxy, etcd requires advertised client URLs with explicit listen ones)
    let own = format!("--advertise-client-urls=http://{}", proxy.addr());
    proxy.args.push(own);
    proxy.start(1).await;
    assert!(proxy
        .log_text()
        .contains("proxy using peer URLS from cluster file"));
    let r = proxy
        .send(HttpRequest::new("PUT", "/v2/keys/k").form("value=v"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let metrics = proxy.send(HttpRequest::new("GET", "/metrics")).await;
    assert!(
        metrics
            .body
            .contains(r#"etcd_proxy_handled_total{method="PUT",code="201"} 1"#),
        "{}",
        metrics.body
    );
}
