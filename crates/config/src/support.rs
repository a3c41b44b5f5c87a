//! What chorus does with each flag beyond parsing it: the flags and feature
//! gates it accepts but does not implement yet (refused when set to anything
//! but the default, never silently ignored), and the notices for flags that
//! have no meaning for chorus.

use super::config::{Config, Notice, BCRYPT_DEFAULT_COST, BCRYPT_MAX_COST, BCRYPT_MIN_COST};
use super::error::ConfigError;
use super::flags;
use super::gates::{self, FeatureGates};

/// Flags chorus accepts (so existing etcd command lines still parse) but does
/// not implement yet. [`Config::validate`] rejects a non-default value for any
/// of them with [`ConfigError::NotImplemented`]. Remove a name here when the
/// feature lands (for a renamed flag, remove both names).
/// (None now; `--experimental-enable-v2v3`, the last, is implemented. The check stays
/// for the next flag.)
pub const NOT_IMPLEMENTED: &[&str] = &[];

/// Feature gates chorus accepts but does not implement yet: refused when
/// set to anything but chorus's default. (None now; the check stays for the
/// next gate etcd adds.)
pub const NOT_IMPLEMENTED_GATES: &[&str] = &[];

impl Config {
    /// The first [`NOT_IMPLEMENTED`] flag or [`NOT_IMPLEMENTED_GATES`] gate set
    /// to a non-default value, named as it was given (a flag given on the
    /// command line or in the file is named before a gate, a gate before a
    /// flag that only mirrors it).
    pub(crate) fn check_not_implemented(&self) -> Result<(), ConfigError> {
        let defaults = Config::flag_defaults();
        let differs: Vec<&str> = NOT_IMPLEMENTED
            .iter()
            .copied()
            .filter(|n| flags::lookup(n).is_some_and(|s| !flags::field_equal(s, self, &defaults)))
            .collect();
        let given = differs
            .iter()
            .find(|n| self.flags_explicitly_set.contains(**n));
        if let Some(name) = given {
            return Err(ConfigError::not_implemented(format!("--{name}")));
        }
        if let Some(gate) = self.first_unimplemented_gate(&defaults.feature_gates) {
            return Err(ConfigError::not_implemented(gate));
        }
        if let Some(name) = differs.first() {
            return Err(ConfigError::not_implemented(format!("--{name}")));
        }
        Ok(())
    }

    fn first_unimplemented_gate(&self, defaults: &FeatureGates) -> Option<String> {
        NOT_IMPLEMENTED_GATES.iter().find_map(|name| {
            let gate = gates::lookup(name).expect("gate table");
            let v = gate.get(&self.feature_gates);
            (v != gate.get(defaults)).then(|| format!("--feature-gates={name}={v}"))
        })
    }

    /// Notices for flags that are accepted but mean nothing to chorus.
    pub(crate) fn no_effect_notices(&self, notices: &mut Vec<Notice>) {
        let redb = "has no effect: chorus's backend is redb, not bbolt";
        for (flag, value, default) in [
            (
                "experimental-backend-bbolt-freelist-type",
                &self.experimental_backend_bbolt_freelist_type,
                "array",
            ),
            (
                "backend-bbolt-freelist-type",
                &self.backend_bbolt_freelist_type,
                "map",
            ),
        ] {
            if !value.is_empty() && value != default {
                notices.push(Notice::warn(format!("--{flag}={value} {redb}")));
            }
        }
        if !self.feature_gates.txn_mode_write_with_shared_buffer {
            let flag = "experimental-txn-mode-write-with-shared-buffer";
            let given = if self.flags_explicitly_set.contains(flag) {
                format!("--{flag}=false")
            } else {
                "--feature-gates=TxnModeWriteWithSharedBuffer=false".to_string()
            };
            notices.push(Notice::warn(format!(
                "{given} has no effect: chorus's write transactions have no shared read buffer to opt out of"
            )));
        }
        if self.peer_tls.skip_client_san_verification {
            notices.push(Notice::warn(
                "--peer-skip-client-san-verification has no effect: chorus never checks a peer client certificate's SANs against the connection's address",
            ));
        }
        if !(u64::from(BCRYPT_MIN_COST)..=u64::from(BCRYPT_MAX_COST)).contains(&self.bcrypt_cost) {
            notices.push(Notice::warn(format!(
                "use default bcrypt cost instead of the invalid given cost (min-cost {BCRYPT_MIN_COST}, max-cost {BCRYPT_MAX_COST}, default-cost {BCRYPT_DEFAULT_COST}, given-cost {})",
                self.bcrypt_cost
            )));
        }
    }
}
