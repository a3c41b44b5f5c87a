//! The command-line flags of etcd 3.5, 3.6 and 3.7: coverage per release,
//! renamed flags, the checks and messages those releases added. Messages
//! marked "etcd 3.5.1" were observed on the real binary (see
//! `etcd35_diff.rs`); the others are etcd 3.6/3.7's source texts.

use std::time::Duration;

use super::*;

#[test]
fn every_flag_of_every_release_is_defined() {
    // Every flag listed by the real etcd 3.5.1's --help.
    let text = include_str!("../testdata/etcd-3.5.1-help-stdout.txt");
    let listed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  --"))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(listed.len(), 90);
    for name in listed {
        assert!(flags::lookup(name).is_some(), "--{name} is not defined");
    }
    // Per release, with the 15 ignored legacy names; 3.4 includes the flags
    // of 3.4.25+ (TLS bounds, HTTP-only listeners) and 3.4.31+.
    let count = |r| flag_names(r).len();
    assert_eq!(count(EtcdRelease::V3_4), 105);
    assert_eq!(count(EtcdRelease::V3_5), 127);
    assert_eq!(count(EtcdRelease::V3_6), 153);
    assert_eq!(count(EtcdRelease::V3_7), 128);
    assert_eq!(gate_names(EtcdRelease::V3_5).len(), 0);
    assert_eq!(gate_names(EtcdRelease::V3_6).len(), 7);
    assert_eq!(gate_names(EtcdRelease::V3_7).len(), 9);
    // etcd 3.7 dropped every `experimental-` name.
    assert!(!flag_names(EtcdRelease::V3_7)
        .iter()
        .any(|n| n.starts_with("experimental-")));
}

#[test]
fn renamed_flags_fill_both_fields() {
    let (c, n) = run_env(
        &with_p(&["--experimental-watch-progress-notify-interval=5s"]),
        &[],
    );
    assert_eq!(c.watch_progress_notify_interval, Duration::from_secs(5));
    assert_eq!(
        c.experimental_watch_progress_notify_interval,
        Duration::from_secs(5)
    );
    assert_eq!(
        c.effective_watch_progress_notify_interval(),
        Duration::from_secs(5)
    );
    assert!(msgs(&n).contains(&"--experimental-watch-progress-notify-interval is deprecated in v3.6 and will be decommissioned in v3.7. Use '--watch-progress-notify-interval' instead."));
    let (c, n) = run_env(&with_p(&["--watch-progress-notify-interval=5s"]), &[]);
    assert_eq!(
        c.experimental_watch_progress_notify_interval,
        Duration::from_secs(5)
    );
    assert!(!msgs(&n).iter().any(|m| m.contains("deprecated")));
    for (old, new, value) in [
        (
            "experimental-compaction-batch-limit",
            "compaction-batch-limit",
            "7",
        ),
        (
            "experimental-warning-apply-duration",
            "warning-apply-duration",
            "1s",
        ),
        (
            "experimental-snapshot-catchup-entries",
            "snapshot-catchup-entries",
            "7",
        ),
        (
            "experimental-corrupt-check-time",
            "corrupt-check-time",
            "1m",
        ),
    ] {
        // etcd 3.6: cannot set --old and --new at the same time (exit 1).
        let e = err(&with_p(&[
            &format!("--{old}={value}"),
            &format!("--{new}={value}"),
        ]));
        assert_eq!(
            e,
            ConfigError::Invalid(format!(
                "cannot set --{old} and --{new} at the same time, please use --{new} only"
            ))
        );
    }
    let c = run(&with_p(&["--experimental-snapshot-catchup-entries=7"]));
    assert_eq!(
        (
            c.snapshot_catchup_entries,
            c.experimental_snapshot_catchup_entries
        ),
        (7, 7)
    );
    let c = run(&with_p(&["--compaction-batch-limit=7"]));
    assert_eq!(c.effective_compaction_batch_limit(), 7);
}

#[test]
fn deprecated_flags_warn_in_etcds_words() {
    let (_, n) = run_env(&with_p(&["--enable-v2=true", "--max-snapshots=5"]), &[]);
    let m = msgs(&n);
    assert!(m.contains(&"--enable-v2 is deprecated in 3.5 and will be decommissioned in 3.6."));
    assert!(m.contains(&"--max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8."));
    // Given through the environment counts as given (etcd's fs.Visit).
    let (_, n) = run_env(P, &[("ETCD_EXPERIMENTAL_MEMORY_MLOCK", "false")]);
    assert!(msgs(&n).contains(&"--experimental-memory-mlock is deprecated in v3.6 and will be decommissioned in v3.7. Use '--memory-mlock' instead."));
}

#[test]
fn warning_unary_request_duration_pair() {
    let c = run(&with_p(&[]));
    assert_eq!(c.warning_unary_request_duration, Duration::from_millis(300));
    assert_eq!(
        err(&with_p(&[
            "--experimental-warning-unary-request-duration=1s",
            "--warning-unary-request-duration=2s",
        ])),
        ConfigError::Invalid("both --experimental-warning-unary-request-duration and --warning-unary-request-duration flags are set. Use only --warning-unary-request-duration".into())
    );
    // The old name sets the new field, with etcd's warning.
    let (r, n) = parse_full(
        &with_p(&["--experimental-warning-unary-request-duration=1s"]),
        &[],
    );
    let Ok(Command::Run(c)) = r else {
        panic!("refused: {r:?}")
    };
    assert_eq!(c.warning_unary_request_duration, Duration::from_secs(1));
    assert!(msgs(&n).contains(&"--experimental-warning-unary-request-duration is deprecated, and will be decommissioned in v3.7. Use --warning-unary-request-duration instead."));
}

#[test]
fn new_values_are_checked_with_etcds_messages() {
    let usage: &[(&[&str], &str)] = &[
        // etcd 3.5.1
        (&["--v2-deprecation=bad"], "invalid value \"bad\" for flag -v2-deprecation: invalid value \"bad\""),
        (&["--socket-reuse-port=maybe"], "invalid boolean value \"maybe\" for -socket-reuse-port: parse error"),
        (&["--raft-read-timeout=5"], "invalid value \"5\" for flag -raft-read-timeout: parse error"),
        (&["--self-signed-cert-validity=-1"], "invalid value \"-1\" for flag -self-signed-cert-validity: parse error"),
        // etcd 3.6 / 3.7
        (&["--max-learners=x"], "invalid value \"x\" for flag -max-learners: parse error"),
        (&["--listen-client-http-urls=foo"], "invalid value \"foo\" for flag -listen-client-http-urls: URL scheme must be http, https, unix, or unixs: foo"),
        (&["--discovery-dial-timeout=1"], "invalid value \"1\" for flag -discovery-dial-timeout: parse error"),
    ];
    for (args, want) in usage {
        let e = err(args);
        assert_eq!(e, ConfigError::Usage(want.to_string()), "{args:?}");
        assert_eq!(e.exit_code(), 2);
    }
    let invalid: &[(&[&str], &str)] = &[
        (&["--tls-min-version=TLS1.1"], "unexpected TLS version \"TLS1.1\" (must be one of: TLS1.2, TLS1.3)"),
        (&["--tls-max-version=1.3"], "unexpected TLS version \"1.3\" (must be one of: TLS1.2, TLS1.3)"),
        (&["--tls-min-version=TLS1.3", "--tls-max-version=TLS1.2"], "min version (TLS1.3) is greater than max version (TLS1.2)"),
        (&["--tls-min-version=TLS1.3", "--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], "cipher suites cannot be configured when only TLS1.3 is enabled"),
        (&["--compact-hash-check-time=0s"], "--compact-hash-check-time must be >0 (set to 0s)"),
        (&["--experimental-compact-hash-check-time=0"], "--experimental-compact-hash-check-time must be >0 (set to 0s)"),
        (&["--log-format=text"], "unknown log format: text, supported values json, console"),
        (&["--enable-log-rotation"], "--log-outputs requires a single file path when --log-rotate-config-json is defined"),
        (&["--enable-log-rotation", "--log-outputs=a.log,b.log"], "--log-outputs requires a single file path when --log-rotate-config-json is defined"),
        (&["--enable-log-rotation", "--log-outputs=a.log", "--log-rotation-config-json={\"maxsize\":\"a\"}"], "invalid log rotation config: json: cannot unmarshal string into Go struct field logRotationConfig.maxsize of type int"),
        (&["--enable-log-rotation", "--log-outputs=a.log", "--log-rotation-config-json={\"maxsize\":1"], "improperly formatted log rotation config: unexpected end of JSON input"),
        (&["--enable-distributed-tracing", "--distributed-tracing-sampling-rate=-1"], "distributed tracing configurition is not valid: (tracing sampling rate must be positive)"),
        (&["--experimental-enable-distributed-tracing", "--experimental-distributed-tracing-sampling-rate=1000001"], "distributed tracing configurition is not valid: (tracing sampling rate must be less than 1000000)"),
    ];
    for (args, want) in invalid {
        let e = err(&with_p(args));
        assert_eq!(e, ConfigError::Invalid(want.to_string()), "{args:?}");
        assert_eq!(e.exit_code(), 1);
    }
}

#[test]
fn v3_discovery_is_checked() {
    let no_ic = &P[..P.len() - 2];
    let with = |extra: &[&str]| {
        let mut v = no_ic.to_vec();
        v.extend_from_slice(extra);
        err(&v)
    };
    let inv = |m: &str| ConfigError::Invalid(m.to_string());
    assert_eq!(
        with(&["--discovery-endpoints=http://127.0.0.1:1", "--initial-cluster=a=http://127.0.0.1:2"]),
        inv("multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\", \"discovery-endpoints\" or \"discovery-srv\"")
    );
    assert_eq!(
        with(&["--discovery-endpoints=http://127.0.0.1:1"]),
        inv("both --discovery-token and --discovery-endpoints must be set")
    );
    assert_eq!(
        with(&[
            "--discovery-endpoints=http://127.0.0.1:1,",
            "--discovery-token=t"
        ]),
        inv("--discovery-endpoints must not contain empty endpoints")
    );
    assert_eq!(
        with(&["--discovery-proxy=http://p:1", "--discovery-token=t", "--discovery-endpoints=http://127.0.0.1:1"]),
        inv("both v2 discovery settings (discovery, discovery-proxy) and v3 discovery settings (discovery-token, discovery-endpoints, discovery-cert, discovery-key, discovery-cacert, discovery-user, discovery-password) are set")
    );
    // Valid; the default initial cluster was dropped.
    let mut v = no_ic.to_vec();
    v.extend_from_slice(&[
        "--discovery-token=t",
        "--discovery-endpoints=http://127.0.0.1:1",
    ]);
    let c = run(&v);
    assert_eq!(c.discovery_cfg.token, "t");
    assert!(c.initial_cluster.is_empty());
}

#[test]
fn etcd_version_variable_and_raft_timeouts() {
    let (c, n) = run_env(
        &with_p(&["--raft-read-timeout=1s"]),
        &[("ETCD_VERSION", "3.5.1")],
    );
    assert_eq!(c.raft_read_timeout, Duration::from_secs(5));
    let m = msgs(&n);
    assert!(m.contains(&"cannot set special environment variable ETCD_VERSION=3.5.1"));
    assert!(m.contains(&"raft-read-timeout increased to minimum value: 5s"));
    assert!(!m
        .iter()
        .any(|m| m.contains("unrecognized environment variable ETCD_VERSION")));
    let c = run(&with_p(&["--raft-write-timeout=6s"]));
    assert_eq!(c.raft_write_timeout, Duration::from_secs(6));
}

#[test]
fn accepted_with_a_notice() {
    let (c, n) = run_env(
        &with_p(&[
            "--backend-bbolt-freelist-type=array",
            "--experimental-txn-mode-write-with-shared-buffer=false",
            "--peer-skip-client-san-verification",
        ]),
        &[],
    );
    let m = msgs(&n);
    assert!(m.contains(
        &"--backend-bbolt-freelist-type=array has no effect: chorus's backend is redb, not bbolt"
    ));
    assert!(m.contains(&"--experimental-txn-mode-write-with-shared-buffer=false has no effect: chorus's write transactions have no shared read buffer to opt out of"));
    assert!(m
        .iter()
        .any(|m| m.starts_with("--peer-skip-client-san-verification has no effect")));
    assert!(!c.feature_gates.txn_mode_write_with_shared_buffer);
    assert!(
        c.peer_tls.skip_client_san_verification && c.experimental_peer_skip_client_san_verification
    );
    // An out-of-range bcrypt cost falls back to etcd's default with etcd's notice.
    let c = Config {
        bcrypt_cost: 3,
        ..Config::default()
    };
    let mut n = Vec::new();
    c.no_effect_notices(&mut n);
    assert_eq!(msgs(&n), ["use default bcrypt cost instead of the invalid given cost (min-cost 4, max-cost 31, default-cost 10, given-cost 3)"]);
    assert_eq!(c.effective_bcrypt_cost(), 10);
    assert_eq!(
        Config {
            bcrypt_cost: 12,
            ..Config::default()
        }
        .effective_bcrypt_cost(),
        12
    );
}

#[test]
fn once_refused_and_renamed_flags_are_accepted() {
    // The v2 keys API over the v3 store (etcd 3.4, 3.5) is implemented.
    let c = run(&with_p(&["--experimental-enable-v2v3=/v2/"]));
    assert_eq!(c.experimental_enable_v2v3, "/v2/");
    assert!(run(&with_p(&["--enable-pprof"])).enable_pprof);
    // The 3.5 name of an implemented flag sets the 3.6 field.
    assert!(run(&with_p(&["--experimental-memory-mlock"])).memory_mlock);
    let c = run(&with_p(&["--experimental-downgrade-check-time=2s"]));
    assert_eq!(c.downgrade_check_time, std::time::Duration::from_secs(2));
    assert!(run(&with_p(&["--next-cluster-version-compatible"])).next_cluster_version_compatible);
    // Allowed CNs are implemented, several too (etcd 3.5.x's comma-separated list);
    // so are the listener and HTTP policy flags.
    let c = run(&with_p(&["--peer-cert-allowed-cn=member"]));
    assert_eq!(c.peer_tls.allowed_cn, "member");
    assert_eq!(c.peer_tls.allowed_cns, ["member"]);
    let c = run(&with_p(&["--peer-cert-allowed-cn=a,b"]));
    assert_eq!(c.peer_tls.allowed_cns, ["a", "b"]);
    run(&with_p(&[
        "--max-concurrent-streams=100",
        "--socket-reuse-address",
        "--socket-reuse-port",
        "--cors=http://a.example:1",
        "--host-whitelist=a.example",
        "--self-signed-cert-validity=2",
    ]));
    // Defaults given explicitly are fine.
    run(&with_p(&[
        "--socket-reuse-port=false",
        "--feature-gates=InitialCorruptCheck=false,TxnModeWriteWithSharedBuffer=true",
        "--v2-deprecation=not-yet",
        "--log-format=json",
        "--max-learners=1",
    ]));
}

#[test]
fn flags_explicitly_set_are_recorded() {
    let (c, _) = run_env(&with_p(&["--pre-vote"]), &[("ETCD_SNAPSHOT_COUNT", "7")]);
    for f in ["pre-vote", "snapshot-count", "listen-client-urls"] {
        assert!(c.flags_explicitly_set.contains(f), "{f}");
    }
    assert!(!c.flags_explicitly_set.contains("name"));
}
