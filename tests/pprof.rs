//! `--enable-pprof`: `/debug/pprof/` on the client URLs (not the metrics URLs, as etcd),
//! a CPU profile that `go tool pprof` reads, `cmdline`, the index page, and clear answers
//! for Go's runtime-only profiles; compared with etcd 3.5.1 where etcd answers the same.

mod common;

use std::io::Read as _;
use std::process::Command;

use common::{Cluster, ClusterOptions, ServerKind};

/// The parts of pprof's `perftools.profiles.Profile` this test reads (field numbers from
/// profile.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct Profile {
    #[prost(message, repeated, tag = "1")]
    sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    sample: Vec<Sample>,
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
    #[prost(int64, tag = "10")]
    duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    period: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ValueType {
    #[prost(int64, tag = "1")]
    r#type: i64,
    #[prost(int64, tag = "2")]
    unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    value: Vec<i64>,
}

fn options(args: &[String]) -> ClusterOptions {
    ClusterOptions {
        extra_args: args.to_vec(),
        ..ClusterOptions::default()
    }
}

async fn get(addr: &str, path: &str) -> common::HttpResponse {
    common::http::send(addr, &common::HttpRequest::new("GET", path)).await
}

/// `curl -o file URL`: the profile is binary.
fn download(url: &str, file: &std::path::Path) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o"])
        .arg(file)
        .args(["-w", "%{http_code}", url])
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .parse()
        .expect("status")
}

fn decode(file: &std::path::Path) -> Profile {
    let gz = std::fs::read(file).expect("read the profile");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut raw)
        .expect("the profile is gzipped, as Go writes it");
    <Profile as prost::Message>::decode(&raw[..]).expect("a pprof Profile")
}

fn name(p: &Profile, v: &Option<ValueType>) -> (String, String) {
    let v = v.clone().expect("value type");
    let s = |i: i64| p.string_table[i as usize].clone();
    (s(v.r#type), s(v.unit))
}

/// `go tool pprof -top` reads the file (Debian's golang-go; required under CI=true).
fn go_tool_pprof_reads(file: &std::path::Path) {
    if !common::require_go() {
        return;
    }
    let out = Command::new("go")
        .args(["tool", "pprof", "-top"])
        .arg(file)
        .output()
        .expect("run go tool pprof");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Type: cpu"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_profile_index_and_cmdline() {
    if !common::require_curl() {
        return;
    }
    let metrics_port = common::free_ports(1)[0];
    let args = vec![
        "--enable-pprof".to_string(),
        format!("--listen-metrics-urls=http://127.0.0.1:{metrics_port}"),
    ];
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, options(&args)).await;
    let addr = cluster.client_addr(0);
    assert!(
        cluster
            .log(0)
            .contains(r#""msg":"pprof is enabled","path":"/debug/pprof""#),
        "{}",
        cluster.log(0)
    );

    let index = get(&addr, "/debug/pprof/").await;
    assert_eq!(index.status, 200);
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(index.body.contains("profile?seconds="), "{}", index.body);

    let cmdline = get(&addr, "/debug/pprof/cmdline").await;
    assert_eq!(cmdline.status, 200);
    assert!(
        cmdline.body.contains("\0--enable-pprof\0"),
        "{:?}",
        cmdline.body
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profile.pb.gz");
    let url = format!("{}/debug/pprof/profile?seconds=1", cluster.client_url(0));
    assert_eq!(download(&url, &file), 200);
    let profile = decode(&file);
    assert_eq!(
        name(&profile, &profile.period_type),
        ("cpu".into(), "nanoseconds".into())
    );
    assert_eq!(profile.period, 10_000_000, "100 Hz, as Go samples");
    assert_eq!(profile.sample_type.len(), 2);
    assert_eq!(
        name(&profile, &Some(profile.sample_type[1].clone())),
        ("cpu".into(), "nanoseconds".into())
    );
    assert!(profile.duration_nanos >= 1_000_000_000);
    go_tool_pprof_reads(&file);

    // Not on the metrics URL: etcd registers pprof on the client URLs only.
    let metrics = get(&format!("127.0.0.1:{metrics_port}"), "/debug/pprof/").await;
    assert_eq!(metrics.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn go_runtime_profiles_are_explained_and_unknown_ones_are_404_as_in_etcd() {
    let cluster =
        Cluster::start_with(ServerKind::Chorus, 1, options(&["--enable-pprof".into()])).await;
    let addr = cluster.client_addr(0);
    for go_only in [
        "heap",
        "goroutine",
        "allocs",
        "block",
        "mutex",
        "threadcreate",
        "trace",
    ] {
        let r = get(&addr, &format!("/debug/pprof/{go_only}")).await;
        assert_eq!(r.status, 501, "{go_only}");
        assert!(r.body.contains("not available in chorus"), "{}", r.body);
    }
    let unknown = get(&addr, "/debug/pprof/nope").await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (404, "Unknown profile\n")
    );
    assert_eq!(unknown.header("x-go-pprof"), Some("1"));
    let too_long = get(&addr, "/debug/pprof/profile?seconds=100000").await;
    assert_eq!(too_long.status, 400);

    if !common::require_etcd() {
        return;
    }
    let etcd = Cluster::start_with(ServerKind::Etcd, 1, options(&["--enable-pprof".into()])).await;
    let etcd_unknown = get(&etcd.client_addr(0), "/debug/pprof/nope").await;
    assert_eq!(etcd_unknown.status, unknown.status);
    assert_eq!(etcd_unknown.body, unknown.body);
    assert_eq!(etcd_unknown.header("x-go-pprof"), Some("1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_flag_there_is_no_debug_pprof() {
    let cluster = Cluster::start(ServerKind::Chorus, 1).await;
    let r = get(&cluster.client_addr(0), "/debug/pprof/").await;
    assert_eq!(r.status, 404);
    assert!(!cluster.log(0).contains("pprof is enabled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn capnslog_writes_etcd_34s_line() {
    let args = [
        "--enable-pprof".to_string(),
        "--logger=capnslog".to_string(),
    ];
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, options(&args)).await;
    assert!(
        cluster
            .log(0)
            .contains("pprof is enabled under /debug/pprof"),
        "{}",
        cluster.log(0)
    );
}
