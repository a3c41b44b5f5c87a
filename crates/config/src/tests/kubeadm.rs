//! The etcd command lines kubeadm writes into its static pod manifest
//! (`cmd/kubeadm/app/phases/etcd/local.go`, `getEtcdCommand`): for an etcd
//! image older than 3.6.0 it passes `--experimental-initial-corrupt-check` and
//! `--experimental-watch-progress-notify-interval`, from 3.6.0 on
//! `--feature-gates=InitialCorruptCheck=true` and
//! `--watch-progress-notify-interval`. kubeadm sorts the arguments by name.

use std::time::Duration;

use super::*;

/// kubeadm's arguments for node `cp1` advertising `ip` (`::1` as localhost
/// for IPv6), joining `existing` members when given.
fn kubeadm_args(etcd36: bool, ip: &str, existing: &[(&str, &str)]) -> Vec<String> {
    let v6 = ip.contains(':');
    let (host, local) = if v6 {
        (format!("[{ip}]"), "[::1]".to_string())
    } else {
        (ip.to_string(), "127.0.0.1".to_string())
    };
    let pki = "/etc/kubernetes/pki/etcd";
    let mut members: Vec<String> = existing.iter().map(|(n, u)| format!("{n}={u}")).collect();
    members.push(format!("cp1=https://{host}:2380"));
    let mut args = vec![
        format!("--advertise-client-urls=https://{host}:2379"),
        format!("--cert-file={pki}/server.crt"),
        "--client-cert-auth=true".to_string(),
        "--data-dir=/var/lib/etcd".to_string(),
        format!("--initial-advertise-peer-urls=https://{host}:2380"),
        format!("--initial-cluster={}", members.join(",")),
        format!("--key-file={pki}/server.key"),
        format!("--listen-client-urls=https://{local}:2379,https://{host}:2379"),
        format!("--listen-metrics-urls=http://{local}:2381"),
        format!("--listen-peer-urls=https://{host}:2380"),
        "--name=cp1".to_string(),
        format!("--peer-cert-file={pki}/peer.crt"),
        "--peer-client-cert-auth=true".to_string(),
        format!("--peer-key-file={pki}/peer.key"),
        format!("--peer-trusted-ca-file={pki}/ca.crt"),
        "--snapshot-count=10000".to_string(),
        format!("--trusted-ca-file={pki}/ca.crt"),
    ];
    if etcd36 {
        args.push("--feature-gates=InitialCorruptCheck=true".to_string());
        args.push("--watch-progress-notify-interval=5s".to_string());
    } else {
        args.push("--experimental-initial-corrupt-check=true".to_string());
        args.push("--experimental-watch-progress-notify-interval=5s".to_string());
    }
    if !existing.is_empty() {
        args.push("--initial-cluster-state=existing".to_string());
    }
    args.sort();
    args
}

/// Parses and validates `args`: kubeadm's command line must start as it is.
fn parse_kubeadm(args: &[String]) -> (Config, Vec<Notice>) {
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match parse_full(&strs, &[]) {
        (Ok(Command::Run(c)), n) => (*c, n),
        (other, _) => panic!("kubeadm's command line was refused: {other:?}"),
    }
}

fn check(c: &Config, ip: &str) {
    assert_eq!(c.name, "cp1");
    assert_eq!(c.snapshot_count, 10_000);
    assert_eq!(c.watch_progress_notify_interval, Duration::from_secs(5));
    assert_eq!(
        c.effective_watch_progress_notify_interval(),
        Duration::from_secs(5)
    );
    assert!(c.client_tls.client_cert_auth && c.peer_tls.client_cert_auth);
    assert_eq!(
        c.client_tls.cert_file,
        "/etc/kubernetes/pki/etcd/server.crt"
    );
    assert_eq!(
        c.peer_tls.trusted_ca_file,
        "/etc/kubernetes/pki/etcd/ca.crt"
    );
    assert_eq!(c.listen_client_urls.len(), 2);
    assert_eq!(c.listen_metrics_urls.len(), 1);
    assert_eq!(c.data_dir, std::path::PathBuf::from("/var/lib/etcd"));
    let bc = c.bootstrap_cluster().expect("kubeadm's cluster bootstraps");
    assert!(bc
        .members
        .iter()
        .any(|m| m.name == "cp1" && m.peer_urls[0].contains(ip)));
}

#[test]
fn kubeadm_etcd_3_5_init_and_join() {
    for ip in ["192.168.0.10", "fd00::10"] {
        let (c, n) = parse_kubeadm(&kubeadm_args(false, ip, &[]));
        check(&c, ip);
        assert!(c.is_new_cluster());
        assert!(msgs(&n).contains(&"--experimental-watch-progress-notify-interval is deprecated in v3.6 and will be decommissioned in v3.7. Use '--watch-progress-notify-interval' instead."));
        let (c, _) = parse_kubeadm(&kubeadm_args(
            false,
            ip,
            &[("cp0", "https://192.168.0.9:2380")],
        ));
        check(&c, ip);
        assert!(!c.is_new_cluster());
    }
}

#[test]
fn kubeadm_etcd_3_6_init_and_join() {
    for ip in ["192.168.0.10", "fd00::10"] {
        let (c, n) = parse_kubeadm(&kubeadm_args(true, ip, &[]));
        check(&c, ip);
        assert!(!msgs(&n).iter().any(|m| m.contains("deprecated")), "{n:?}");
        let (c, _) = parse_kubeadm(&kubeadm_args(
            true,
            ip,
            &[("cp0", "https://192.168.0.9:2380")],
        ));
        check(&c, ip);
    }
}

#[test]
fn kubeadm_turns_on_the_initial_corruption_check() {
    for etcd36 in [false, true] {
        let (c, _) = parse_kubeadm(&kubeadm_args(etcd36, "192.168.0.10", &[]));
        let on = c.feature_gates.initial_corrupt_check || c.experimental_initial_corrupt_check;
        assert!(on, "etcd36={etcd36}");
    }
}
