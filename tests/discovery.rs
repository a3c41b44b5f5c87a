//! Cluster discovery: a 3-member chorus cluster bootstraps from DNS SRV records served by
//! another chorus cluster (`--dns-listen-addr`), from etcd's v2 discovery protocol on
//! another cluster's v2 keys API (chorus, and etcd 3.4 for comparison), and from etcd
//! 3.6's v3 discovery on another chorus cluster; chorusctl finds client endpoints by SRV.
//! Bad input ends the member with etcd's message and a non-zero exit.
//!
//! Lookups go to the DNS member through `CHORUS_DNS_RESOLVER=127.0.0.1:PORT` (a port
//! below 32768, `common::free_low_ports`); processes are the harness's.

use crate::common;

use std::time::{Duration, Instant};

use chorus_client::{GetOptions, PutOptions};
use chorus_discovery::{Resolver, RESOLVER_ENV};
use common::{Cluster, ClusterOptions, Pki, ServerKind};

/// Bound on the DNS member reflecting a written record (polled: no event to await).
const SETTLE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(25);

/// A one-member chorus cluster serving DNS for `domain` from its own keys; its port.
async fn dns_cluster(domain: &str) -> (Cluster, u16) {
    let port = common::free_low_ports(1)[0];
    let options = ClusterOptions {
        extra_args: vec![
            format!("--dns-listen-addr=127.0.0.1:{port}"),
            format!("--dns-domain={domain}"),
        ],
        ..Default::default()
    };
    let dns = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    // Until its index has loaded the keys the DNS answers SERVFAIL to everything; a record
    // of its own that resolves says the names a test expects to miss now answer NXDOMAIN.
    publish_srv(&dns, port, "ready", domain, &[1]).await;
    (dns, port)
}

/// `/skydns/local/example/_tcp/_etcd-server/m0` for `_etcd-server._tcp.example.local`.
fn skydns_key(service: &str, domain: &str, id: &str) -> String {
    let mut labels: Vec<&str> = domain.split('.').collect();
    labels.reverse();
    format!("/skydns/{}/_tcp/_{service}/{id}", labels.join("/"))
}

/// Writes one SRV record per port (target `localhost`) and waits until the DNS answers
/// with all of them.
async fn publish_srv(dns: &Cluster, dns_port: u16, service: &str, domain: &str, ports: &[u16]) {
    let c = dns.client().await;
    for (i, port) in ports.iter().enumerate() {
        let value = format!(r#"{{"host":"localhost","port":{port}}}"#);
        let key = skydns_key(service, domain, &format!("m{i}"));
        c.put(key, value, PutOptions::default()).await.unwrap();
    }
    let resolver = Resolver::at(&format!("127.0.0.1:{dns_port}")).unwrap();
    let deadline = Instant::now() + SETTLE;
    loop {
        let found = resolver.lookup_srv(service, "tcp", domain).await;
        if found.is_ok_and(|v| v.len() == ports.len()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "SRV records of {service} not served"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Replaces the flag `--name=...` of member `i` (or adds it).
fn set_flag(cluster: &mut Cluster, i: usize, name: &str, value: Option<&str>) {
    let prefix = format!("--{name}=");
    let args = &mut cluster.member_mut(i).args;
    args.retain(|a| !a.starts_with(&prefix));
    if let Some(v) = value {
        args.push(format!("{prefix}{v}"));
    }
}

/// A 3-member cluster laid out (not started) without `--initial-cluster`.
fn discovering_cluster(flags: &[(&str, &str)], env: &[(&str, String)]) -> Cluster {
    discovering_cluster_with(ClusterOptions::default(), flags, env)
}

fn discovering_cluster_with(
    options: ClusterOptions,
    flags: &[(&str, &str)],
    env: &[(&str, String)],
) -> Cluster {
    let mut c = Cluster::create(ServerKind::Chorus, 3, options);
    for i in 0..3 {
        set_flag(&mut c, i, "initial-cluster", None);
        for (name, value) in flags {
            set_flag(&mut c, i, name, Some(value));
        }
        c.member_mut(i).env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
    }
    c
}

/// Every member lists the three members by name, and each answers as a member of one
/// cluster with a leader.
async fn assert_three_members(c: &mut Cluster) {
    c.start_all().await;
    let (cluster_id, ids) = c.ids().await;
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| *id != 0) && cluster_id != 0);
    let client = c.client().await;
    let deadline = Instant::now() + SETTLE;
    loop {
        let list = client.member_list().await.unwrap();
        let mut names: Vec<String> = list.members.iter().map(|m| m.name.clone()).collect();
        names.sort();
        if names == ["m0", "m1", "m2"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members never published: {names:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    client.put("k", "v", PutOptions::default()).await.unwrap();
    for i in 0..3 {
        let got = c
            .member_client(i)
            .await
            .get("k", GetOptions::default())
            .await
            .unwrap();
        assert_eq!(got.kvs.len(), 1);
    }
}

/// Member `i` exits by itself with a failure and logs each of `wants`.
async fn fails_with(c: &mut Cluster, i: usize, wants: &[&str]) {
    let log = failed_start(c, i).await;
    for want in wants {
        assert!(log.contains(want), "{want}:\n{log}");
    }
}

/// Member `i` exits by itself with a failure; its log.
async fn failed_start(c: &mut Cluster, i: usize) -> String {
    c.spawn(i);
    let status = c.wait_exit(i).await;
    assert!(
        !status.success(),
        "member {i} should have failed:\n{}",
        c.log(i)
    );
    c.log(i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_bootstraps_through_the_dns_of_another_chorus_cluster() {
    let domain = "example.local";
    let (dns, dns_port) = dns_cluster(domain).await;
    let resolver_env = [(RESOLVER_ENV, format!("127.0.0.1:{dns_port}"))];
    let mut c = discovering_cluster(&[("discovery-srv", domain)], &resolver_env);
    let peers: Vec<u16> = (0..3).map(|i| c.member(i).peer_port).collect();
    for (i, port) in peers.iter().enumerate() {
        let url = format!("http://localhost:{port}");
        set_flag(&mut c, i, "initial-advertise-peer-urls", Some(&url));
    }
    publish_srv(&dns, dns_port, "etcd-server", domain, &peers).await;
    assert_three_members(&mut c).await;
    let log = c.log(0);
    assert!(
        log.contains("got bootstrap from DNS for etcd-server"),
        "{log}"
    );

    // chorusctl finds the client endpoints as etcdctl does.
    let clients: Vec<u16> = (0..3).map(|i| c.member(i).client_port).collect();
    publish_srv(&dns, dns_port, "etcd-client", domain, &clients).await;
    let out = chorusctl(&["--discovery-srv", domain, "member", "list"], dns_port).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let out = chorusctl(&["--discovery-srv", "nowhere.local", "get", "k"], dns_port).await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        err.trim(),
        format!("Error: dns lookup errors: lookup _etcd-client-ssl._tcp.nowhere.local on 127.0.0.1:{dns_port}: server misbehaving and lookup _etcd-client._tcp.nowhere.local on 127.0.0.1:{dns_port}: server misbehaving")
    );

    // etcdctl v2's form: the same records, the error without "Error: ".
    let out = chorusctl_api(
        &["--discovery-srv", domain, "member", "list"],
        dns_port,
        "2",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let out = chorusctl_api(
        &["--discovery-srv", "nowhere.local", "ls", "/"],
        dns_port,
        "2",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("dns lookup errors: lookup _etcd-client-ssl._tcp.nowhere.local on 127.0.0.1:{dns_port}: server misbehaving and lookup _etcd-client._tcp.nowhere.local on 127.0.0.1:{dns_port}: server misbehaving")
    );
}

async fn chorusctl(args: &[&str], dns_port: u16) -> std::process::Output {
    chorusctl_api(args, dns_port, "3").await
}

async fn chorusctl_api(args: &[&str], dns_port: u16, api: &str) -> std::process::Output {
    tokio::process::Command::new(common::chorusctl_binary())
        .args(args)
        .env(RESOLVER_ENV, format!("127.0.0.1:{dns_port}"))
        .env("ETCDCTL_API", api)
        .env_remove("ETCDCTL_ENDPOINTS")
        .env_remove("ETCDCTL_DISCOVERY_SRV")
        .output()
        .await
        .expect("run chorusctl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_discovery_errors_are_etcds() {
    let domain = "errors.local";
    let (dns, dns_port) = dns_cluster(domain).await;
    let at = format!("127.0.0.1:{dns_port}");
    let resolver_env = [(RESOLVER_ENV, at.clone())];
    let mut c = discovering_cluster(&[("discovery-srv", domain)], &resolver_env);
    let log = failed_start(&mut c, 0).await;
    let want = format!("error setting up initial cluster: error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.{domain} on {at}: no such host; error querying DNS SRV records for _etcd-server lookup _etcd-server._tcp.{domain} on {at}: no such host");
    assert!(log.contains(&want), "{log}");

    // Records that do not include this member.
    publish_srv(&dns, dns_port, "etcd-server", domain, &[1, 2]).await;
    let log = failed_start(&mut c, 0).await;
    assert!(
        log.contains(
            "error setting up initial cluster: cannot find local etcd member \"m0\" in SRV records"
        ),
        "{log}"
    );

    // A resolver that is not there: Go's wording, no hang.
    c.member_mut(1).env = vec![(RESOLVER_ENV.into(), "127.0.0.1:1".into())];
    let log = failed_start(&mut c, 1).await;
    assert!(log.contains("error setting up initial cluster: error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.errors.local on 127.0.0.1:1: read udp"), "{log}");
    c.member_mut(2).env = vec![(RESOLVER_ENV.into(), "localhost".into())];
    let log = failed_start(&mut c, 2).await;
    assert!(
        log.contains(
            r#"error setting up initial cluster: CHORUS_DNS_RESOLVER="localhost" must be "ip:port""#
        ),
        "{log}"
    );
}

/// The v2 discovery URL of `token` on member 0 of `service`.
fn v2_url(service: &Cluster, token: &str) -> String {
    format!("{}/v2/keys/_etcd/registry/{token}", service.client_url(0))
}

async fn v2_bootstrap_through(kind: ServerKind) {
    let options = ClusterOptions {
        extra_args: vec!["--enable-v2=true".into()],
        ..Default::default()
    };
    let service = Cluster::start_with(kind, 1, options).await;
    let size = "/v2/keys/_etcd/registry/tok/_config/size";
    let (code, body) = service.http(0, "PUT", size, "value=3").await;
    assert!(code == 200 || code == 201, "{code} {body}");
    let url = v2_url(&service, "tok");
    let mut c = discovering_cluster(&[("discovery", &url), ("discovery-fallback", "exit")], &[]);
    assert_three_members(&mut c).await;

    // A fourth member finds the cluster full.
    let mut late = discovering_cluster(&[("discovery", &url)], &[]);
    let full = "failed to join discovery cluster (discovery: cluster is full)";
    fails_with(
        &mut late,
        0,
        &[full, "chorus has no v2 proxy to fall back to"],
    )
    .await;

    // No size, a bad size, a URL that cannot work.
    set_flag(&mut late, 1, "discovery", Some(&v2_url(&service, "nosize")));
    let log = failed_start(&mut late, 1).await;
    assert!(
        log.contains(
            "failed to join discovery cluster (100: Key not found (/_etcd/registry/nosize) ["
        ),
        "{log}"
    );
    let (code, _) = service
        .http(
            0,
            "PUT",
            "/v2/keys/_etcd/registry/bad/_config/size",
            "value=abc",
        )
        .await;
    assert!(code == 200 || code == 201);
    set_flag(&mut late, 2, "discovery", Some(&v2_url(&service, "bad")));
    fails_with(
        &mut late,
        2,
        &["failed to join discovery cluster (discovery: size key is bad)"],
    )
    .await;
    set_flag(&mut late, 2, "discovery", Some("foo"));
    let log = failed_start(&mut late, 2).await;
    assert!(
        log.contains("failed to join discovery cluster (unsupported protocol scheme \"\")")
            || log
                .contains(r#"failed to join discovery cluster (unsupported protocol scheme \"\")"#),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_bootstraps_through_v2_discovery_on_chorus() {
    v2_bootstrap_through(ServerKind::Chorus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_bootstraps_through_v2_discovery_on_etcd_3_4() {
    if !common::require_etcd34() {
        return;
    }
    v2_bootstrap_through(ServerKind::Etcd34).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_bootstraps_through_v3_discovery_on_chorus() {
    let service = Cluster::start(ServerKind::Chorus, 1).await;
    let sc = service.client().await;
    sc.put(
        "/_etcd/registry/tok/_config/size",
        "3",
        PutOptions::default(),
    )
    .await
    .unwrap();
    let ep = service.client_url(0);
    let flags = [
        ("discovery-token", "tok"),
        ("discovery-endpoints", ep.as_str()),
    ];
    let mut c = discovering_cluster(&flags, &[]);
    assert_three_members(&mut c).await;
    let regs = sc
        .get(
            "/_etcd/registry/tok/members/",
            GetOptions {
                prefix: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(regs.kvs.len(), 3);

    let mut late = discovering_cluster(&flags, &[]);
    fails_with(
        &mut late,
        0,
        &["failed to join discovery cluster (discovery: cluster is full)"],
    )
    .await;
    set_flag(&mut late, 1, "discovery-token", Some("nosize"));
    fails_with(
        &mut late,
        1,
        &["failed to join discovery cluster (discovery: size key not found)"],
    )
    .await;
    sc.put(
        "/_etcd/registry/zero/_config/size",
        "0",
        PutOptions::default(),
    )
    .await
    .unwrap();
    set_flag(&mut late, 1, "discovery-token", Some("zero"));
    fails_with(
        &mut late,
        1,
        &["failed to join discovery cluster (discovery: size key is bad)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_discovery_service_ends_the_member_after_the_retries() {
    let port = common::free_ports(1)[0];
    let ep = format!("http://127.0.0.1:{port}");
    let flags = [
        ("discovery-token", "tok"),
        ("discovery-endpoints", ep.as_str()),
    ];
    let mut c = discovering_cluster(&flags, &[]);
    let log = failed_start(&mut c, 0).await;
    assert!(
        log.contains("retry connecting to discovery service"),
        "{log}"
    );
    assert!(
        log.contains("failed to join discovery cluster (discovery: too many retries)"),
        "{log}"
    );
}

/// A TLS cluster whose members advertise `https://localhost:<peer port>` and find each
/// other through `_etcd-server-ssl._tcp.<domain>`; the peer certificate is valid for
/// `hosts`.
async fn tls_srv_cluster(domain: &str, hosts: &[&str]) -> (Cluster, Cluster, tempfile::TempDir) {
    let (dns, dns_port) = dns_cluster(domain).await;
    let dir = tempfile::tempdir().unwrap();
    let (_pki, tls) = Pki::for_cluster_with_hosts(dir.path(), hosts);
    let options = ClusterOptions {
        tls: Some(tls),
        ..Default::default()
    };
    let resolver_env = [(RESOLVER_ENV, format!("127.0.0.1:{dns_port}"))];
    let mut c = discovering_cluster_with(options, &[("discovery-srv", domain)], &resolver_env);
    let peers: Vec<u16> = (0..3).map(|i| c.member(i).peer_port).collect();
    for (i, port) in peers.iter().enumerate() {
        let url = format!("https://localhost:{port}");
        set_flag(&mut c, i, "initial-advertise-peer-urls", Some(&url));
    }
    publish_srv(&dns, dns_port, "etcd-server-ssl", domain, &peers).await;
    (dns, c, dir)
}

/// `_etcd-server-ssl` records give https peers: a TLS cluster bootstraps from them (the
/// peer CA given, certificates are checked against the records' host names as etcd does;
/// etcd sends the domain as the server name only when there is no peer CA). A certificate
/// valid for neither host is refused, and the member says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_bootstraps_from_ssl_srv_records() {
    let domain = "secure.local";
    let (_dns, mut c, _pki) = tls_srv_cluster(domain, &["127.0.0.1", "localhost"]).await;
    assert_three_members(&mut c).await;
    // etcd's line names the record set the cluster came from.
    let log = c.log(0);
    assert!(
        log.contains(r#""service-name":"etcd-server-ssl","server-name":"m0","discovery-srv":"secure.local","found-cluster":"m0=https://localhost:"#),
        "{log}"
    );

    // The same records, certificates for another name: no peer connection succeeds.
    let domain = "wrongname.local";
    let (_dns, mut c, _pki) = tls_srv_cluster(domain, &["elsewhere.local"]).await;
    for i in 0..3 {
        c.spawn(i);
    }
    let deadline = Instant::now() + SETTLE;
    loop {
        let log = c.log(0);
        if log.contains("failed to dial remote peer")
            && log.contains("certificate not valid for name")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no certificate name error in m0's log:\n{log}"
        );
        tokio::time::sleep(POLL).await;
    }
    let log = c.log(0);
    assert!(!log.contains("became leader"), "{log}");
}
