//! `--enable-pprof`: `/debug/pprof/` on the client URLs (not the metrics URLs, as etcd),
//! a CPU profile that `go tool pprof` reads, `cmdline`, the index page, and clear answers
//! for Go's runtime-only profiles; compared with etcd 3.5.1 where etcd answers the same.

use crate::common;

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
    #[prost(message, repeated, tag = "4")]
    location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    function: Vec<Function>,
    #[prost(int64, tag = "14")]
    default_sample_type: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Location {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(message, repeated, tag = "4")]
    line: Vec<Line>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Line {
    #[prost(uint64, tag = "1")]
    function_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Function {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int64, tag = "2")]
    name: i64,
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

/// The function names of a sample's stack, innermost first.
fn stack(p: &Profile, s: &Sample) -> Vec<String> {
    s.location_id
        .iter()
        .flat_map(|id| &p.location.iter().find(|l| l.id == *id).unwrap().line)
        .map(|l| {
            let f = p.function.iter().find(|f| f.id == l.function_id).unwrap();
            p.string_table[f.name as usize].clone()
        })
        .collect()
}

fn name(p: &Profile, v: &Option<ValueType>) -> (String, String) {
    let v = v.clone().expect("value type");
    let s = |i: i64| p.string_table[i as usize].clone();
    (s(v.r#type), s(v.unit))
}

/// `go tool pprof -top` reads the file (Debian's golang-go; required under CI=true) and
/// names its type; returns the listing (empty without go outside CI).
fn go_tool_pprof_reads(file: &std::path::Path, ty: &str) -> String {
    if !common::require_go() {
        return String::new();
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
    assert!(text.contains(&format!("Type: {ty}")), "{text}");
    text.into_owned()
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
    go_tool_pprof_reads(&file, "cpu");

    // Not on the metrics URL: etcd registers pprof on the client URLs only.
    let metrics = get(&format!("127.0.0.1:{metrics_port}"), "/debug/pprof/").await;
    assert_eq!(metrics.status, 404);
}

/// The heap profile: the live sampled allocations by stack with Go's four values, and
/// `allocs`, the same samples shown as everything allocated since start-up.
#[tokio::test(flavor = "multi_thread")]
async fn heap_and_allocs_are_go_heap_profiles() {
    if !common::require_curl() {
        return;
    }
    let cluster =
        Cluster::start_with(ServerKind::Chorus, 1, options(&["--enable-pprof".into()])).await;
    let addr = cluster.client_addr(0);
    // 2 MiB of values kept in the member: well above the 512 KiB sampling interval.
    let value = "x".repeat(4096);
    for i in 0..512 {
        let body = format!(
            r#"{{"key":"{}","value":"{}"}}"#,
            b64(&format!("k{i}")),
            b64(&value)
        );
        let put = common::http::send(
            &addr,
            &common::HttpRequest::new("POST", "/v3/kv/put").body(&body),
        )
        .await;
        assert_eq!(put.status, 200, "{}", put.body);
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("heap.pb.gz");
    let url = format!("{}/debug/pprof/heap", cluster.client_url(0));
    assert_eq!(download(&url, &file), 200);
    let heap = decode(&file);
    let types: Vec<_> = heap
        .sample_type
        .iter()
        .map(|t| name(&heap, &Some(t.clone())))
        .collect();
    let want = [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ];
    assert_eq!(
        types,
        want.map(|(t, u)| (t.to_string(), u.to_string())),
        "Go's heap profile's sample types"
    );
    assert_eq!(
        name(&heap, &heap.period_type),
        ("space".into(), "bytes".into())
    );
    assert_eq!(heap.period, 512 * 1024);
    assert!(!heap.sample.is_empty());
    for s in &heap.sample {
        assert_eq!(s.value.len(), 4);
        assert!(
            s.value[2] <= s.value[0] && s.value[3] <= s.value[1],
            "{s:?}"
        );
    }
    let inuse: i64 = heap.sample.iter().map(|s| s.value[3]).sum();
    assert!(
        inuse > 1 << 20,
        "a running member holds more than 1 MiB: {inuse}"
    );
    // Symbolized, and cut below the allocator: chorus's own frames show.
    let named = heap.sample.iter().any(|s| {
        let st = stack(&heap, s);
        !st.is_empty() && st.iter().any(|f| f.starts_with("chorus_"))
    });
    assert!(named, "no chorus frame in any heap sample");
    assert!(heap
        .sample
        .iter()
        .all(|s| stack(&heap, s).iter().all(|f| !f.contains("heap::sampler"))));
    go_tool_pprof_reads(&file, "inuse_space");

    let file = dir.path().join("allocs.pb.gz");
    let url = format!("{}/debug/pprof/allocs", cluster.client_url(0));
    assert_eq!(download(&url, &file), 200);
    let allocs = decode(&file);
    assert_eq!(
        allocs.string_table[allocs.default_sample_type as usize],
        "alloc_space"
    );
    go_tool_pprof_reads(&file, "alloc_space");
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The goroutine-equivalent task dump in Go's three forms: counts per stack (`debug=1`),
/// every task (`debug=2`) and a pprof protobuf that `go tool pprof` reads.
#[tokio::test(flavor = "multi_thread")]
async fn goroutine_is_a_tokio_task_dump_in_gos_three_forms() {
    if !common::require_curl() {
        return;
    }
    let cluster =
        Cluster::start_with(ServerKind::Chorus, 1, options(&["--enable-pprof".into()])).await;
    let addr = cluster.client_addr(0);

    let counts = get(&addr, "/debug/pprof/goroutine?debug=1").await;
    assert_eq!(counts.status, 200, "{}", counts.body);
    assert!(counts
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let total: usize = counts
        .body
        .strip_prefix("goroutine profile: total ")
        .and_then(|rest| rest.split('\n').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", counts.body));
    assert!(
        total > 5,
        "a member runs more tasks than that: {}",
        counts.body
    );
    // The member's own tasks, waiting in tokio's primitives.
    assert!(
        counts.body.contains("\n#\tchorus_server::"),
        "{}",
        counts.body
    );
    assert!(counts.body.contains("\n#\ttokio::"), "{}", counts.body);

    let each = get(&addr, "/debug/pprof/goroutine?debug=2").await;
    assert_eq!(each.status, 200, "{}", each.body);
    let headers = each.body.lines().filter(|l| l.starts_with("task ")).count();
    assert!(headers > 5, "{}", each.body);
    assert!(each.body.starts_with("task "), "{}", each.body);
    assert!(each.body.contains(" await point"), "{}", each.body);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("goroutine.pb.gz");
    let url = format!("{}/debug/pprof/goroutine", cluster.client_url(0));
    assert_eq!(download(&url, &file), 200);
    let profile = decode(&file);
    assert_eq!(
        name(&profile, &Some(profile.sample_type[0].clone())),
        ("goroutine".into(), "count".into())
    );
    assert!(profile.sample.len() > 5);
    assert!(profile
        .sample
        .iter()
        .all(|s| s.value == [1] && !s.location_id.is_empty()));
    let top = go_tool_pprof_reads(&file, "goroutine");
    assert!(top.is_empty() || top.contains("chorus_server::"), "{top}");
}

#[tokio::test(flavor = "multi_thread")]
async fn go_runtime_profiles_are_explained_and_unknown_ones_are_404_as_in_etcd() {
    let cluster =
        Cluster::start_with(ServerKind::Chorus, 1, options(&["--enable-pprof".into()])).await;
    let addr = cluster.client_addr(0);
    for go_only in ["block", "mutex", "threadcreate", "trace"] {
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
    for path in ["/", "/heap", "/allocs", "/goroutine", "/profile"] {
        let r = get(&cluster.client_addr(0), &format!("/debug/pprof{path}")).await;
        assert_eq!(r.status, 404, "{path}");
    }
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
