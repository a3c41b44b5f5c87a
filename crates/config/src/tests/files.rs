//! Config-file keys of etcd 3.5, 3.6 and 3.7 (their `json` tags), nested
//! sections, and the same renamed/gated rules as the command line.

use std::time::Duration;

use super::*;

fn load(yaml: &str) -> (Result<Command, ConfigError>, Vec<Notice>, String) {
    let f = write_config(yaml);
    let p = f.path().to_str().unwrap().to_string();
    let (r, n) = parse_full(&["--config-file", &p], &[]);
    (r, n, p)
}

fn load_ok(yaml: &str) -> (Config, Vec<Notice>) {
    match load(yaml) {
        (Ok(Command::Run(c)), n, _) => (*c, n),
        (other, _, _) => panic!("expected Run for {yaml:?}, got {other:?}"),
    }
}

fn load_err(yaml: &str) -> (ConfigError, String) {
    match load(yaml) {
        (Err(e), _, p) => (e, p),
        (other, _, _) => panic!("expected an error for {yaml:?}, got {other:?}"),
    }
}

const BASE: &str = "listen-client-urls: http://127.0.0.1:23791\n\
                    advertise-client-urls: http://127.0.0.1:23791\n";

#[test]
fn new_keys_are_read() {
    let (c, n) = load_ok(&format!(
        "{BASE}feature-gates: TxnModeWriteWithSharedBuffer=false\n\
         watch-progress-notify-interval: 5000000000\n\
         experimental-snapshot-catch-up-entries: 7\n\
         warning-apply-duration: 200000000\n\
         tls-min-version: TLS1.3\n\
         v2-deprecation: not-yet\n\
         peer-transport-security:\n  allowed-cn: [member]\n  client-cert-file: ''\n\
         socket-options:\n  reuse-port: false\n"
    ));
    assert!(!c.feature_gates.txn_mode_write_with_shared_buffer);
    assert_eq!(c.watch_progress_notify_interval, Duration::from_secs(5));
    assert_eq!(
        c.experimental_watch_progress_notify_interval,
        Duration::from_secs(5)
    );
    assert_eq!(
        (
            c.experimental_snapshot_catchup_entries,
            c.snapshot_catchup_entries
        ),
        (7, 7)
    );
    assert_eq!(
        c.experimental_warning_apply_duration,
        Duration::from_millis(200)
    );
    assert_eq!(c.tls_min_version, "TLS1.3");
    assert_eq!(c.peer_tls.allowed_cn, "member");
    for key in [
        "feature-gates",
        "socket-options",
        "peer-cert-allowed-cn",
        "socket-reuse-port",
    ] {
        assert!(c.flags_explicitly_set.contains(key), "{key}");
    }
    // etcd 3.6 warns about deprecated keys of a file too.
    assert!(msgs(&n).contains(&"--experimental-snapshot-catchup-entries is deprecated in v3.6 and will be decommissioned in v3.7. Use '--snapshot-catchup-entries' instead."));
}

#[test]
fn renamed_and_gated_keys_conflict_as_on_the_command_line() {
    let (e, _) = load_err(&format!(
        "{BASE}experimental-corrupt-check-time: 1\ncorrupt-check-time: 1\n"
    ));
    assert_eq!(e, ConfigError::Invalid("cannot set --experimental-corrupt-check-time and --corrupt-check-time at the same time, please use --corrupt-check-time only".into()));
    let (e, _) = load_err(&format!(
        "{BASE}experimental-peer-skip-client-san-verification: true\npeer-transport-security:\n  skip-client-san-verification: true\n"
    ));
    assert_eq!(e, ConfigError::Invalid("cannot set --experimental-peer-skip-client-san-verification and --peer-skip-client-san-verification at the same time, please use --peer-skip-client-san-verification only".into()));
    // The file's raw feature-gates value is what etcd searches.
    let (e, _) = load_err(&format!(
        "{BASE}experimental-initial-corrupt-check: true\nfeature-gates: InitialCorruptCheck=false\n"
    ));
    assert_eq!(e, ConfigError::Invalid("cannot specify both flags: --experimental-initial-corrupt-check=true and --feature-gates=InitialCorruptCheck=false at the same time, please just use --feature-gates=InitialCorruptCheck=false".into()));
    let (e, _) = load_err(&format!("{BASE}feature-gates: Nope=true\n"));
    assert_eq!(
        e,
        ConfigError::Invalid("unrecognized feature gate: Nope".into())
    );
    let (c, _) = load_ok(&format!("{BASE}experimental-initial-corrupt-check: true\n"));
    assert!(c.experimental_initial_corrupt_check);
}

#[test]
fn nested_sections() {
    let (c, _) = load_ok(&format!(
        "{BASE}discovery-config:\n  token: t\n  client:\n    endpoints: [http://127.0.0.1:1]\n    secure:\n      insecure-transport: false\n"
    ));
    // v3 discovery from the file; the default initial cluster was dropped.
    assert_eq!(c.discovery_cfg.token, "t");
    assert_eq!(c.discovery_cfg.endpoints, ["http://127.0.0.1:1"]);
    assert!(!c.discovery_cfg.insecure_transport);
    assert!(c.initial_cluster.is_empty());
    let (c, n) = load_ok(&format!(
        "{BASE}socket-options:\n  Reuse-Port: false\n  bogus: 1\ndiscovery-config:\n  client:\n    dial-timeout: 2000000000\n"
    ));
    assert!(!c.socket_opts.reuse_port);
    assert_eq!(c.discovery_cfg.dial_timeout, Duration::from_secs(2));
    assert!(msgs(&n)[0].starts_with("unknown key \"socket-options.bogus\""));
    let type_errors = [
        ("socket-options: yes\n", "string into Go struct field configYAML.socket-options of type transport.SocketOpts"),
        ("socket-options:\n  reuse-port: 1\n", "number into Go struct field SocketOpts.socket-options.reuse-port of type bool"),
        ("discovery-config:\n  client:\n    dial-timeout: 2s\n", "string into Go struct field ConfigSpec.discovery-config.client.dial-timeout of type time.Duration"),
        ("discovery-config:\n  client:\n    endpoints: a\n", "string into Go struct field ConfigSpec.discovery-config.client.endpoints of type []string"),
        ("peer-transport-security:\n  allowed-hostname: h\n", "string into Go struct field securityConfig.peer-transport-security.allowed-hostname of type []string"),
        ("feature-gates: [a]\n", "array into Go struct field configYAML.feature-gates of type string"),
        ("max-learners: \"1\"\n", "string into Go struct field configYAML.max-learners of type int"),
    ];
    for (yaml, what) in type_errors {
        let (e, p) = load_err(yaml);
        assert_eq!(
            e,
            ConfigError::Invalid(format!("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {what} (config file \"{p}\")")),
            "{yaml}"
        );
    }
}

#[test]
fn file_values_checked_after_decoding() {
    let (e, _) = load_err(&format!("{BASE}v2-deprecation: later\n"));
    assert_eq!(
        e,
        ConfigError::Invalid("Unknown V2DeprecationEnum: later".into())
    );
    let (e, _) = load_err(&format!("{BASE}listen-client-http-urls: foo\n"));
    assert_eq!(e, ConfigError::Fatal("unexpected error setting up listen-client-http-urls: URL scheme must be http, https, unix, or unixs: foo".into()));
    // etcd turns a zero certificate validity from a file into 1.
    let (c, _) = load_ok(&format!("{BASE}self-signed-cert-validity: 0\n"));
    assert_eq!(c.self_signed_cert_validity, 1);
}
