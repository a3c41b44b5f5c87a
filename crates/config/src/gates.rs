//! `--feature-gates` (etcd 3.6+): etcd's server feature gates, the union of
//! etcd 3.6's and 3.7's (`server/features/etcd_features.go`), parsed with the
//! rules and messages of etcd's `pkg/featuregate` (a copy of Kubernetes'
//! `component-base/featuregate`).
//!
//! ```text
//! --feature-gates=A=true,B=false --feature-gates=AllAlpha=true
//!        │                              │
//!        ▼                              ▼
//!   GateSettings::set  ──►  `enabled` map (what was set; repeated flags merge)
//!                               │  AllAlpha / AllBeta fill the unset gates of their stage
//!                               ▼
//!   GateSettings::apply ──►  FeatureGates (one typed bool per gate; unset = default)
//! ```

use std::collections::BTreeMap;

use super::goparse::{go_quote, parse_bool};
use super::release::{EtcdRelease, R36, R37};

/// Maturity of a gate (etcd's `prerelease`). etcd 3.6/3.7 have no GA or
/// deprecated server gates, so setting a gate never warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `ALPHA`: off by default (`AllAlpha` toggles every unset one).
    Alpha,
    /// `BETA`: `AllBeta` toggles every unset one.
    Beta,
}

impl Stage {
    /// etcd's spelling (`ALPHA`, `BETA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Alpha => "ALPHA",
            Stage::Beta => "BETA",
        }
    }
}

/// The effective value of every server feature gate chorus knows.
///
/// Defaults are etcd's, except `lease_checkpoint` and `lease_checkpoint_persist`,
/// which chorus turns on (remaining lease TTLs survive leader changes and
/// restarts; see `docs/compatibility.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureGates {
    /// `StopGRPCServiceOnDefrag` (alpha, 3.6+): the gRPC health service reports
    /// NOT_SERVING while the member defragments.
    pub stop_grpc_service_on_defrag: bool,
    /// `TxnModeWriteWithSharedBuffer` (beta, 3.6+, on): etcd's write
    /// transactions read through the shared read buffer. No meaning for
    /// chorus's backend (a notice says so when it is turned off).
    pub txn_mode_write_with_shared_buffer: bool,
    /// `InitialCorruptCheck` (alpha, 3.6+): compare hashes with the peers
    /// before serving.
    pub initial_corrupt_check: bool,
    /// `CompactHashCheck` (alpha, 3.6+): the leader compares followers'
    /// compaction hashes every `--compact-hash-check-time`.
    pub compact_hash_check: bool,
    /// `LeaseCheckpoint` (alpha, 3.6+; chorus: on): the leader checkpoints
    /// remaining lease TTLs through raft.
    pub lease_checkpoint: bool,
    /// `LeaseCheckpointPersist` (alpha, 3.6+; chorus: on): checkpointed TTLs
    /// are persisted, so restarts keep them too.
    pub lease_checkpoint_persist: bool,
    /// `SetMemberLocalAddr` (alpha, 3.6+): dial peers from the first
    /// non-loopback IP of `--initial-advertise-peer-urls`.
    pub set_member_local_addr: bool,
    /// `FastLeaseKeepAlive` (beta, 3.7, on): the leader renews a lease it
    /// knows without waiting for the applied index to catch up.
    pub fast_lease_keep_alive: bool,
    /// `PriorityRequest` (alpha, 3.7): some requests (lease revokes) are
    /// applied first under overload.
    pub priority_request: bool,
}

impl Default for FeatureGates {
    fn default() -> Self {
        let mut g = FeatureGates {
            stop_grpc_service_on_defrag: false,
            txn_mode_write_with_shared_buffer: false,
            initial_corrupt_check: false,
            compact_hash_check: false,
            lease_checkpoint: false,
            lease_checkpoint_persist: false,
            set_member_local_addr: false,
            fast_lease_keep_alive: false,
            priority_request: false,
        };
        for gate in GATES {
            *(gate.access)(&mut g) = gate.chorus_default;
        }
        g
    }
}

/// One server feature gate.
pub struct Gate {
    /// etcd's name (`InitialCorruptCheck`).
    pub name: &'static str,
    /// Maturity.
    pub stage: Stage,
    /// etcd's default.
    pub etcd_default: bool,
    /// chorus's default (differs for the lease checkpoint gates).
    pub chorus_default: bool,
    /// etcd releases that know the gate (bit set, see `flags::R36`).
    pub(crate) releases: u8,
    pub(crate) access: fn(&mut FeatureGates) -> &mut bool,
}

impl Gate {
    /// The gate's value in `gates`.
    pub fn get(&self, gates: &FeatureGates) -> bool {
        let mut g = *gates;
        *(self.access)(&mut g)
    }
}

macro_rules! gate {
    ($name:literal, $stage:ident, $etcd:literal, $chorus:literal, $rel:expr, $field:ident) => {
        Gate {
            name: $name,
            stage: Stage::$stage,
            etcd_default: $etcd,
            chorus_default: $chorus,
            releases: $rel,
            access: |g| &mut g.$field,
        }
    };
}

/// Every gate, in the order of etcd's `DefaultEtcdServerFeatureGates`.
pub static GATES: &[Gate] = &[
    gate!(
        "StopGRPCServiceOnDefrag",
        Alpha,
        false,
        false,
        R36 | R37,
        stop_grpc_service_on_defrag
    ),
    gate!(
        "InitialCorruptCheck",
        Alpha,
        false,
        false,
        R36 | R37,
        initial_corrupt_check
    ),
    gate!(
        "CompactHashCheck",
        Alpha,
        false,
        false,
        R36 | R37,
        compact_hash_check
    ),
    gate!(
        "TxnModeWriteWithSharedBuffer",
        Beta,
        true,
        true,
        R36 | R37,
        txn_mode_write_with_shared_buffer
    ),
    gate!(
        "LeaseCheckpoint",
        Alpha,
        false,
        true,
        R36 | R37,
        lease_checkpoint
    ),
    gate!(
        "LeaseCheckpointPersist",
        Alpha,
        false,
        true,
        R36 | R37,
        lease_checkpoint_persist
    ),
    gate!(
        "SetMemberLocalAddr",
        Alpha,
        false,
        false,
        R36 | R37,
        set_member_local_addr
    ),
    gate!(
        "FastLeaseKeepAlive",
        Beta,
        true,
        true,
        R37,
        fast_lease_keep_alive
    ),
    gate!(
        "PriorityRequest",
        Alpha,
        false,
        false,
        R37,
        priority_request
    ),
];

/// etcd's generic gates: `AllAlpha` / `AllBeta` set every gate of their
/// stage that is not set explicitly.
const ALL_ALPHA: &str = "AllAlpha";
const ALL_BETA: &str = "AllBeta";

/// The server feature gates `release` knows (none before 3.6).
pub fn gate_names(release: EtcdRelease) -> Vec<&'static str> {
    GATES
        .iter()
        .filter(|g| g.releases & release.bit() != 0)
        .map(|g| g.name)
        .collect()
}

/// A gate by name.
pub fn lookup(name: &str) -> Option<&'static Gate> {
    GATES.iter().find(|g| g.name == name)
}

/// What `--feature-gates` set so far: etcd's `enabled` map, which repeated
/// flags extend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GateSettings {
    enabled: BTreeMap<String, bool>,
}

impl GateSettings {
    /// `featureGate.Set`: `key=value,...`; empty items are skipped. The error
    /// is etcd's text; on error nothing changes.
    pub(crate) fn set(&mut self, value: &str) -> Result<(), String> {
        let mut m = BTreeMap::new();
        for item in value.split(',') {
            if item.is_empty() {
                continue;
            }
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => return Err(format!("missing bool value for {}", item.trim())),
            };
            let b = parse_bool(v).ok_or_else(|| {
                format!(
                    "invalid value of {k}={v}, err: strconv.ParseBool: parsing {}: invalid syntax",
                    go_quote(v)
                )
            })?;
            m.insert(k.to_string(), b);
        }
        self.set_from_map(&m)
    }

    /// `featureGate.SetFromMap` (etcd walks a Go map; chorus walks the names
    /// in order, so with several unknown gates the first one is named).
    pub(crate) fn set_from_map(&mut self, m: &BTreeMap<String, bool>) -> Result<(), String> {
        let mut enabled = self.enabled.clone();
        for (k, &v) in m {
            let stage = match k.as_str() {
                ALL_ALPHA => Some(Stage::Alpha),
                ALL_BETA => Some(Stage::Beta),
                _ if lookup(k).is_some() => None,
                _ => return Err(format!("unrecognized feature gate: {k}")),
            };
            enabled.insert(k.clone(), v);
            if let Some(stage) = stage {
                for g in GATES.iter().filter(|g| g.stage == stage) {
                    enabled.entry(g.name.to_string()).or_insert(v);
                }
            }
        }
        self.enabled = enabled;
        Ok(())
    }

    /// `featureGate.String()`: the set gates as sorted `key=value` pairs.
    pub(crate) fn text(&self) -> String {
        let pairs: Vec<String> = self
            .enabled
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join(",")
    }

    /// Writes every set gate into `gates` (unset gates keep their value).
    pub(crate) fn apply(&self, gates: &mut FeatureGates) {
        for g in GATES {
            if let Some(&v) = self.enabled.get(g.name) {
                *(g.access)(gates) = v;
            }
        }
    }
}

/// The gate list etcd's `--feature-gates` usage prints
/// (`KnownFeatures`): `Name=true|false (STAGE - default=...)`, sorted.
pub fn known_features() -> Vec<String> {
    let mut v: Vec<String> = [(ALL_ALPHA, Stage::Alpha), (ALL_BETA, Stage::Beta)]
        .iter()
        .map(|(n, s)| format!("{n}=true|false ({} - default=false)", s.as_str()))
        .chain(GATES.iter().map(|g| {
            format!(
                "{}=true|false ({} - default={})",
                g.name,
                g.stage.as_str(),
                g.etcd_default
            )
        }))
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> Result<FeatureGates, String> {
        let mut st = GateSettings::default();
        st.set(s)?;
        let mut g = FeatureGates::default();
        st.apply(&mut g);
        Ok(g)
    }

    #[test]
    fn parses_like_etcd() {
        let g = set("InitialCorruptCheck=true, CompactHashCheck = 1,,").unwrap();
        assert!(g.initial_corrupt_check && g.compact_hash_check);
        assert_eq!(
            set("Foo=true"),
            Err("unrecognized feature gate: Foo".into())
        );
        assert_eq!(
            set("InitialCorruptCheck"),
            Err("missing bool value for InitialCorruptCheck".into())
        );
        assert_eq!(
            set("InitialCorruptCheck=yes"),
            Err("invalid value of InitialCorruptCheck=yes, err: strconv.ParseBool: parsing \"yes\": invalid syntax".into())
        );
        // Names are case-sensitive, as in etcd.
        assert_eq!(
            set("initialcorruptcheck=true"),
            Err("unrecognized feature gate: initialcorruptcheck".into())
        );
    }

    #[test]
    fn all_alpha_and_all_beta_fill_only_unset_gates() {
        let g = set("AllAlpha=true,InitialCorruptCheck=false").unwrap();
        assert!(!g.initial_corrupt_check);
        assert!(g.compact_hash_check && g.priority_request && g.set_member_local_addr);
        let g = set("AllBeta=false").unwrap();
        assert!(!g.txn_mode_write_with_shared_buffer && !g.fast_lease_keep_alive);
        let mut st = GateSettings::default();
        st.set("CompactHashCheck=true").unwrap();
        st.set("AllAlpha=false").unwrap();
        assert_eq!(
            st.text(),
            "AllAlpha=false,CompactHashCheck=true,InitialCorruptCheck=false,LeaseCheckpoint=false,LeaseCheckpointPersist=false,PriorityRequest=false,SetMemberLocalAddr=false,StopGRPCServiceOnDefrag=false"
        );
    }

    #[test]
    fn a_failed_set_changes_nothing() {
        let mut st = GateSettings::default();
        st.set("CompactHashCheck=true").unwrap();
        assert!(st.set("InitialCorruptCheck=true,Nope=true").is_err());
        assert_eq!(st.text(), "CompactHashCheck=true");
    }

    #[test]
    fn defaults_are_etcds_except_lease_checkpoints() {
        let g = FeatureGates::default();
        for gate in GATES {
            let differs = gate.etcd_default != gate.get(&g);
            assert_eq!(
                differs,
                gate.name.starts_with("LeaseCheckpoint"),
                "{}",
                gate.name
            );
        }
        assert_eq!(known_features().len(), GATES.len() + 2);
        assert_eq!(
            known_features()[0],
            "AllAlpha=true|false (ALPHA - default=false)"
        );
    }
}
