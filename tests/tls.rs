//! TLS end to end with real processes: the seed guide's deployment (its systemd unit's
//! flags plus its ETCD_* environment file, https on client and peer URLs, one CA) checked
//! by the real etcdctl v2 `cluster-health` and v3 `endpoint health`/`put`/`get`;
//! client-certificate refusals (none, wrong CA, expired, revoked) on gRPC and HTTP alike;
//! a member whose peer certificate is from another CA cannot join; READY=1 on
//! $NOTIFY_SOCKET.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_ports, tail, Etcdctl, Pki};
use tokio::net::UnixDatagram;

/// A member process with its own $NOTIFY_SOCKET.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    notify: UnixDatagram,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, name: &str, args: &[String], env: &[(String, String)]) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let sock = dir.join(format!("{name}.notify"));
    let notify = UnixDatagram::bind(&sock).unwrap();
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chorus"));
    cmd.args(args)
        .env_clear()
        .env("NOTIFY_SOCKET", &sock)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    // SAFETY: prctl is async-signal-safe; the member dies with the test process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Proc {
        name: name.to_owned(),
        child: cmd.spawn().unwrap(),
        log,
        notify,
    }
}

impl Proc {
    /// Waits for READY=1 from systemd's notification protocol (sent once the member
    /// serves and has published itself to the cluster).
    async fn ready(&mut self) {
        let mut buf = [0u8; 256];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, self.notify.recv(&mut buf)).await {
                Ok(Ok(n)) if &buf[..n] == b"READY=1" => return,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => panic!("{}: notify socket: {e}", self.name),
                Err(_) => panic!(
                    "{} sent no READY=1 within 30 s; log:\n{}",
                    self.name,
                    tail(&self.log, 60)
                ),
            }
        }
    }

    /// SIGTERM, as `systemctl stop` sends: expects STOPPING=1 and a clean exit (status 0).
    async fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM: {}", std::io::Error::last_os_error());
        let mut buf = [0u8; 256];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, self.notify.recv(&mut buf)).await {
                Ok(Ok(n)) if &buf[..n] == b"STOPPING=1" => break,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => panic!("{}: notify socket: {e}", self.name),
                Err(_) => panic!("{} sent no STOPPING=1 within 30 s", self.name),
            }
        }
        // Reap it here (Drop's kill/wait then find nothing to do).
        let pid = self.child.id() as libc::pid_t;
        let waited = tokio::task::spawn_blocking(move || {
            let mut status = 0;
            // SAFETY: waitpid(2) on our own child with a valid out pointer.
            let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
            (rc, status)
        });
        let (rc, status) = tokio::time::timeout(Duration::from_secs(30), waited)
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within 30 s of SIGTERM", self.name))
            .unwrap();
        assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{} exited with wait status {status:#x}:\n{}",
            self.name,
            tail(&self.log, 40)
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `KEY="value"` lines of an environment file (comments and blank lines skipped).
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split('#').next())
        .filter_map(|l| l.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

/// The unit's ExecStart arguments (after the binary), `${VAR}` expanded from `env`.
fn exec_start_args(unit: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let start = unit.find("ExecStart=").expect("ExecStart in the unit");
    let mut joined = String::new();
    for line in unit[start + "ExecStart=".len()..].lines() {
        let line = line.trim_end();
        match line.strip_suffix('\\') {
            Some(rest) => joined.push_str(rest),
            None => {
                joined.push_str(line);
                break;
            }
        }
        joined.push(' ');
    }
    let mut args: Vec<String> = joined
        .split_whitespace()
        .map(|a| {
            let mut a = a.to_owned();
            for (k, v) in env {
                a = a.replace(&format!("${{{k}}}"), v);
            }
            a
        })
        .collect();
    args.remove(0); // the binary path, the only part of the unit that changes
    args
}

#[tokio::test]
async fn seed_unit_and_conf_bring_up_a_healthy_tls_cluster() {
    if !common::require_etcdctl() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&tmp.path().join("ssl"));
    // The guide uses one certificate (server.pem) for clients and peers.
    pki.issue("server", &["127.0.0.1", "localhost"], false);
    let conf = std::fs::read_to_string("contrib/chorus.conf").unwrap();
    let unit = std::fs::read_to_string("contrib/systemd/chorus.service").unwrap();
    let ports = free_ports(6);
    let ip = |i: usize| format!("192.168.1.25{}", i + 1);
    let mut procs = Vec::new();
    for i in 0..3 {
        // The guide's per-member edits of etcd.conf: name and address; addresses here are
        // 127.0.0.1 with run-time ports.
        let mut text: String = conf
            .lines()
            .map(|l| match l.starts_with("ETCD_INITIAL_CLUSTER=") {
                true => l.to_owned(),
                false => l
                    .replace("etcd01", &format!("etcd0{}", i + 1))
                    .replace(&ip(0), &ip(i)),
            })
            .collect::<Vec<_>>()
            .join("\n");
        for j in 0..3 {
            text = text.replace(
                &format!("{}:2380", ip(j)),
                &format!("127.0.0.1:{}", ports[2 * j + 1]),
            );
            text = text.replace(
                &format!("{}:2379", ip(j)),
                &format!("127.0.0.1:{}", ports[2 * j]),
            );
        }
        let data = tmp.path().join(format!("etcd0{}", i + 1));
        text = text.replace("/var/lib/etcd/default.etcd", &data.display().to_string());
        let env = env_file(&text);
        let unit = unit.replace("/opt/kubernetes/ssl/", &format!("{}/", pki.dir.display()));
        let args = exec_start_args(&unit, &env);
        let env: Vec<(String, String)> = env.into_iter().collect();
        procs.push(spawn(tmp.path(), &format!("etcd0{}", i + 1), &args, &env));
    }
    for p in &mut procs {
        p.ready().await;
    }
    // The unit passes every setting both ways; chorus says so and uses the flags.
    assert!(procs[0]
        .log_text()
        .contains("is shadowed by corresponding command-line flag"));
    let endpoints: Vec<String> = (0..3)
        .map(|i| format!("https://127.0.0.1:{}", ports[2 * i]))
        .collect();
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("server-key.pem"),
    );
    // The guide's own health check.
    let out = Etcdctl::v2(&endpoints)
        .args([
            "--ca-file",
            &ca,
            "--cert-file",
            &cert,
            "--key-file",
            &key,
            "cluster-health",
        ])
        .run()
        .await;
    assert!(out.ok().ends_with("cluster is healthy\n"), "{out:?}");
    assert_eq!(
        out.ok().matches("is healthy: got healthy result").count(),
        3
    );
    let v3 = |args: &[&str]| {
        Etcdctl::v3(&endpoints)
            .args(["--cacert", &ca, "--cert", &cert, "--key", &key])
            .args(args.iter().copied())
    };
    let out = v3(&["endpoint", "health"]).run().await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr.matches("is healthy").count(), 3, "{out:?}");
    assert_eq!(
        v3(&["put", "tls-key", "tls-value"]).run().await.ok(),
        "OK\n"
    );
    assert_eq!(
        v3(&["get", "tls-key"]).run().await.ok(),
        "tls-key\ntls-value\n"
    );
    // `systemctl stop` on one member: STOPPING=1, exit 0; the other two keep serving.
    procs[0].stop().await;
    let out = Etcdctl::v3(&endpoints[1..])
        .args([
            "--cacert",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "put",
            "after-stop",
            "ok",
        ])
        .run()
        .await;
    assert_eq!(out.ok(), "OK\n");
}

#[tokio::test]
async fn client_certificates_are_checked_on_grpc_and_http() {
    if !common::require_etcdctl() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&tmp.path().join("ssl"));
    pki.issue("server", &["127.0.0.1"], false);
    pki.issue("alice", &[], false);
    pki.issue("old", &[], true);
    let revoked = pki.issue("revoked", &[], false);
    std::fs::write(pki.path("crl.pem"), pki.ca.crl(&[revoked.serial]).unwrap()).unwrap();
    let mut other = Pki::new(&tmp.path().join("other"));
    other.issue("mallory", &[], false);
    let ports = free_ports(2);
    let (c, p) = (
        format!("https://127.0.0.1:{}", ports[0]),
        format!("http://127.0.0.1:{}", ports[1]),
    );
    let args: Vec<String> = vec![
        format!("--data-dir={}", tmp.path().join("data").display()),
        format!("--listen-client-urls={c}"),
        format!("--advertise-client-urls={c}"),
        format!("--listen-peer-urls={p}"),
        format!("--initial-advertise-peer-urls={p}"),
        format!("--initial-cluster=default={p}"),
        format!("--cert-file={}", pki.path("server.pem")),
        format!("--key-file={}", pki.path("server-key.pem")),
        format!("--trusted-ca-file={}", pki.path("ca.pem")),
        format!("--client-crl-file={}", pki.path("crl.pem")),
        "--client-cert-auth".into(),
    ];
    let mut m = spawn(tmp.path(), "m", &args, &[]);
    m.ready().await;
    let ca = pki.path("ca.pem");
    let v3 = |cert: Option<(String, String)>| {
        let mut e = Etcdctl::v3(&[&c]).args([
            "--cacert",
            &ca,
            "--dial-timeout",
            "2s",
            "--command-timeout",
            "3s",
        ]);
        if let Some((cert, key)) = cert {
            e = e.args(["--cert", &cert, "--key", &key]);
        }
        e.args(["put", "k", "v"])
    };
    let v2 = |cert: Option<(String, String)>| {
        let mut e = Etcdctl::v2(&[&c]).args(["--ca-file", &ca, "--timeout", "3s"]);
        if let Some((cert, key)) = cert {
            e = e.args(["--cert-file", &cert, "--key-file", &key]);
        }
        e.args(["set", "/k", "v"])
    };
    let pair = |pki: &Pki, n: &str| {
        Some((
            pki.path(&format!("{n}.pem")),
            pki.path(&format!("{n}-key.pem")),
        ))
    };
    assert_eq!(v3(pair(&pki, "alice")).run().await.ok(), "OK\n");
    assert_eq!(v2(pair(&pki, "alice")).run().await.ok(), "v\n");
    for (who, cert) in [
        ("no certificate", None),
        ("another CA", pair(&other, "mallory")),
        ("expired", pair(&pki, "old")),
        ("revoked", pair(&pki, "revoked")),
    ] {
        let out = v3(cert.clone()).run().await;
        assert_ne!(out.code, 0, "gRPC with {who} was accepted: {out:?}");
        let out = v2(cert).run().await;
        assert_ne!(out.code, 0, "HTTP with {who} was accepted: {out:?}");
    }
    assert!(m.log_text().contains("TLS handshake refused"));
}

#[tokio::test]
async fn a_peer_with_a_certificate_from_another_ca_cannot_join() {
    if !common::require_etcdctl() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut pki = Pki::new(&tmp.path().join("ssl"));
    pki.issue("peer", &["127.0.0.1"], false);
    let mut rogue = Pki::new(&tmp.path().join("rogue"));
    rogue.issue("peer", &["127.0.0.1"], false);
    let ports = free_ports(6);
    let cluster = (0..3)
        .map(|i| format!("m{i}=https://127.0.0.1:{}", ports[2 * i + 1]))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Vec::new();
    for i in 0..3 {
        let certs = if i == 2 { &rogue } else { &pki };
        let c = format!("http://127.0.0.1:{}", ports[2 * i]);
        let p = format!("https://127.0.0.1:{}", ports[2 * i + 1]);
        let args: Vec<String> = vec![
            format!("--name=m{i}"),
            format!("--data-dir={}", tmp.path().join(format!("m{i}")).display()),
            format!("--listen-client-urls={c}"),
            format!("--advertise-client-urls={c}"),
            format!("--listen-peer-urls={p}"),
            format!("--initial-advertise-peer-urls={p}"),
            format!("--initial-cluster={cluster}"),
            format!("--peer-cert-file={}", certs.path("peer.pem")),
            format!("--peer-key-file={}", certs.path("peer-key.pem")),
            // Every member trusts the real CA only.
            format!("--peer-trusted-ca-file={}", pki.path("ca.pem")),
            "--heartbeat-interval=50".into(),
            "--election-timeout=500".into(),
        ];
        procs.push(spawn(tmp.path(), &format!("m{i}"), &args, &[]));
    }
    procs[0].ready().await;
    procs[1].ready().await;
    // The two good members refuse the rogue one's handshakes...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(procs[0].log_text().contains("TLS handshake refused")
        || procs[1].log_text().contains("TLS handshake refused"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refused handshake logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...so it never learns of a leader, while the others serve writes.
    let good = format!("127.0.0.1:{}", ports[0]);
    assert_eq!(
        Etcdctl::v3(&[&good])
            .args(["put", "k", "v"])
            .run()
            .await
            .ok(),
        "OK\n"
    );
    let out = Etcdctl::v3(&[format!("127.0.0.1:{}", ports[4])])
        .args(["endpoint", "status", "-w", "json"])
        .run()
        .await;
    assert!(
        !out.stdout.contains("\"leader\""),
        "the rogue member knows a leader: {out:?}"
    );
}

/// Why a call failed in TLS, from the error's chain of causes (tokio-rustls puts the
/// rustls error inside an `io::Error`).
fn tls_cause(err: &chorus_client::Error) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = err
        .status()
        .map(|s| s as &(dyn std::error::Error + 'static));
    for _ in 0..16 {
        let e = cur?;
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(format!("{r:?}"));
        }
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// chorus_client over TLS against a member with `--client-cert-auth`: the harness's own
/// TLS client brings the member up; a good certificate works; no certificate, a foreign
/// CA's, an expired one and an untrusted server are refused, as transport errors.
#[tokio::test]
async fn chorus_client_tls_with_client_certificates() {
    use chorus_client::{Client, ConnectOptions, GetOptions, TlsOptions};
    use common::{Cluster, ClusterOptions, ServerKind};

    let tmp = tempfile::tempdir().unwrap();
    let (mut pki, tls) = Pki::for_cluster(&tmp.path().join("ssl"));
    pki.issue("old", &[], true);
    let mut other = Pki::named(&tmp.path().join("other"), "another CA");
    other.issue("mallory", &[], false);
    let options = ClusterOptions {
        tls: Some(tls.clone()),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(ServerKind::Chorus, 1, options).await;
    let url = cluster.client_url(0);
    assert!(url.starts_with("https://"), "{url}");
    let c = cluster.client().await;
    c.put("k", "v", Default::default()).await.unwrap();
    assert_eq!(
        c.get("k", GetOptions::default()).await.unwrap().kvs[0].value,
        b"v"
    );
    // Scheme-less endpoints use TLS when options are given.
    let bare = format!("127.0.0.1:{}", cluster.member(0).client_port);
    let c = Client::connect(&[&bare], cluster.connect_options())
        .await
        .unwrap();
    assert_eq!(c.endpoints(), std::slice::from_ref(&url));
    c.get("k", GetOptions::default()).await.unwrap();

    let attempt = |tls: TlsOptions| {
        let url = url.clone();
        async move {
            let opts = ConnectOptions {
                tls: Some(tls),
                request_timeout: Some(Duration::from_secs(10)),
                ..ConnectOptions::default()
            };
            let c = Client::connect(&[url], opts).await.unwrap();
            c.get("k", GetOptions::default()).await
        }
    };
    let with = |ca: &str, pair: Option<(String, String)>| {
        let (cert, key) = match &pair {
            Some((c, k)) => (Some(Path::new(c)), Some(Path::new(k))),
            None => (None, None),
        };
        TlsOptions::from_files(Some(Path::new(ca)), cert, key).unwrap()
    };
    let ca = pki.path("ca.pem");
    // Accepted without checking the server, still with the client certificate.
    let skip = TlsOptions {
        ca_pem: None,
        insecure_skip_verify: true,
        ..tls.client_options()
    };
    attempt(skip).await.unwrap();
    // Refused by the server (its log says why; the client sees the connection closed)...
    for (who, opts, why) in [
        (
            "no certificate",
            with(&ca, None),
            "peer sent no certificates",
        ),
        (
            "another CA's certificate",
            with(&ca, Some(other.pair("mallory"))),
            "UnknownIssuer",
        ),
        (
            "an expired certificate",
            with(&ca, Some(pki.pair("old"))),
            "certificate expired",
        ),
    ] {
        let before = cluster.log(0).matches("TLS handshake refused").count();
        let err = attempt(opts).await.expect_err(who);
        assert!(err.is_transport_error(), "{who}: {err:?}");
        // The client may see the connection closed before the server has written its
        // log line: wait for the line, within a bound.
        let logged = |log: &str| {
            log.lines()
                .filter(|l| l.contains("TLS handshake refused"))
                .skip(before)
                .any(|l| l.contains(why))
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !logged(&cluster.log(0)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            logged(&cluster.log(0)),
            "{who}: no refusal for {why:?} logged:\n{}",
            cluster.log(0)
        );
    }
    // ...or by the client: a server certificate from a CA it does not trust.
    let err = attempt(with(&other.path("ca.pem"), Some(pki.pair("client"))))
        .await
        .expect_err("untrusted server");
    assert!(err.is_connect_error(), "{err:?}");
    let found = tls_cause(&err);
    assert!(
        found
            .as_deref()
            .is_some_and(|f| f.contains("UnknownIssuer")),
        "expected UnknownIssuer, got {found:?} in {err:?}"
    );
}
