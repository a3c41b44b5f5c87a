//! `--feature-gates` on the command line and in the environment, and the
//! experimental flags etcd 3.6 maps onto gates. Messages: etcd 3.6/3.7's
//! `pkg/featuregate` and `embed.SetFeatureGatesFromExperimentalFlags`.

use super::*;

#[test]
fn gates_parse_merge_and_reach_the_config() {
    let c = run(&with_p(&[
        "--feature-gates=TxnModeWriteWithSharedBuffer=false",
        "--feature-gates=LeaseCheckpointPersist=false",
    ]));
    assert!(!c.feature_gates.txn_mode_write_with_shared_buffer);
    assert!(!c.feature_gates.lease_checkpoint_persist);
    // The experimental fields mirror the gates.
    assert!(!c.experimental_txn_mode_write_with_shared_buffer);
    assert!(!c.experimental_enable_lease_checkpoint_persist);
    assert!(c.experimental_enable_lease_checkpoint);
    let c = run(&with_p(&[]));
    assert_eq!(c.feature_gates, FeatureGates::default());
    assert!(c.feature_gates.lease_checkpoint && c.feature_gates.fast_lease_keep_alive);
}

#[test]
fn bad_gate_lists_are_refused_like_etcd() {
    let cases: &[(&str, &str)] = &[
        ("Foo=true", "unrecognized feature gate: Foo"),
        ("InitialCorruptCheck", "missing bool value for InitialCorruptCheck"),
        (
            "InitialCorruptCheck=on",
            "invalid value of InitialCorruptCheck=on, err: strconv.ParseBool: parsing \"on\": invalid syntax",
        ),
        ("initialCorruptCheck=true", "unrecognized feature gate: initialCorruptCheck"),
    ];
    for (value, want) in cases {
        let e = err(&with_p(&[&format!("--feature-gates={value}")]));
        assert_eq!(
            e,
            ConfigError::Usage(format!(
                "invalid value {} for flag -feature-gates: {want}",
                goparse::go_quote(value)
            )),
        );
        assert_eq!(e.exit_code(), 2);
        let e = err_env(P, &[("ETCD_FEATURE_GATES", value)]);
        assert_eq!(
            e,
            ConfigError::Invalid(format!(
                "invalid value {} for ETCD_FEATURE_GATES: {want}",
                goparse::go_quote(value)
            )),
        );
    }
    // A flag that does not exist in any release.
    assert_eq!(
        err(&["--feature-gate=InitialCorruptCheck=true"]),
        ConfigError::Usage("flag provided but not defined: -feature-gate".into())
    );
}

#[test]
fn experimental_flag_and_its_gate_together_are_refused() {
    let e = err(&with_p(&[
        "--experimental-txn-mode-write-with-shared-buffer=false",
        "--feature-gates=TxnModeWriteWithSharedBuffer=true",
    ]));
    assert_eq!(
        e,
        ConfigError::Invalid("cannot specify both flags: --experimental-txn-mode-write-with-shared-buffer=false and --feature-gates=TxnModeWriteWithSharedBuffer=true at the same time, please just use --feature-gates=TxnModeWriteWithSharedBuffer=true".into())
    );
    // etcd matches gate names as substrings of the --feature-gates value:
    // LeaseCheckpointPersist contains LeaseCheckpoint.
    let e = err(&with_p(&[
        "--experimental-enable-lease-checkpoint=true",
        "--feature-gates=LeaseCheckpointPersist=true",
    ]));
    assert_eq!(
        e,
        ConfigError::Invalid("cannot specify both flags: --experimental-enable-lease-checkpoint=true and --feature-gates=LeaseCheckpoint=true at the same time, please just use --feature-gates=LeaseCheckpoint=true".into())
    );
}

#[test]
fn experimental_flags_set_their_gates() {
    let c = run(&with_p(&[
        "--experimental-enable-lease-checkpoint=false",
        "--experimental-enable-lease-checkpoint-persist=false",
    ]));
    assert!(!c.feature_gates.lease_checkpoint && !c.feature_gates.lease_checkpoint_persist);
    // etcd 3.5's words when its flags were used, 3.6's when the gates were.
    assert_eq!(
        err(&with_p(&["--experimental-enable-lease-checkpoint=false"])),
        ConfigError::Invalid("setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint".into())
    );
    assert_eq!(
        err(&with_p(&["--feature-gates=LeaseCheckpoint=false"])),
        ConfigError::Invalid("enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint".into())
    );
    let (_, n) = run_env(
        &with_p(&["--feature-gates=LeaseCheckpointPersist=false"]),
        &[],
    );
    assert!(msgs(&n).contains(&"Detected that checkpointing is enabled without persistence. Consider enabling feature gate LeaseCheckpointPersist"));
}

#[test]
fn every_gate_is_implemented() {
    // AllAlpha turns on every alpha gate that is not set; each is implemented now.
    let c = run(&with_p(&["--feature-gates=AllAlpha=true"]));
    assert!(c.feature_gates.set_member_local_addr && c.feature_gates.priority_request);
    let c = run(&with_p(&["--feature-gates=FastLeaseKeepAlive=false"]));
    assert!(!c.feature_gates.fast_lease_keep_alive);
    let c = run(&with_p(&["--feature-gates=AllBeta=false"]));
    assert!(!c.feature_gates.fast_lease_keep_alive);
    // The corruption checks and the health flip on defrag are implemented; their gates
    // turn them on.
    let c = run(&with_p(&[
        "--feature-gates=InitialCorruptCheck=true,CompactHashCheck=true,StopGRPCServiceOnDefrag=true",
    ]));
    assert!(c.feature_gates.initial_corrupt_check && c.feature_gates.compact_hash_check);
    assert!(c.feature_gates.stop_grpc_service_on_defrag);
    let c = run(&with_p(&["--experimental-stop-grpc-service-on-defrag"]));
    assert!(c.feature_gates.stop_grpc_service_on_defrag);
    for name in NOT_IMPLEMENTED_GATES {
        assert!(GATES.iter().any(|g| g.name == *name), "{name}");
    }
}
