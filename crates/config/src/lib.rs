//! Server configuration: the flags, `ETCD_*` environment variables and YAML
//! config file of etcd 3.4, 3.5, 3.6 and 3.7, defaults, validation and
//! cluster identity.
//!
//! chorus accepts the union of those releases' flags (a command line written
//! for any of them parses), with one typed [`Config`] field per flag. Where
//! the releases disagree, chorus follows etcd 3.5 (and prints etcd 3.5.1's
//! `--help`), and uses 3.6's rules for what 3.6 added: renamed
//! `--experimental-*` flags, `--feature-gates`, their conflicts and
//! deprecation warnings.
//!
//! The entry point is [`Config::parse`], which mirrors what `etcd` does
//! between `main()` and starting the server:
//!
//! ```text
//!  argv ──► Go `flag` parsing (cmdline.rs, flag table in flags.rs)
//!            │  --help / --version stop here
//!            ▼
//!  --config-file / ETCD_CONFIG_FILE? ──yes──► YAML file (file/), flags and env ignored
//!            │ no
//!            ▼
//!  ETCD_* for flags not on the command line (ETCD_VERSION excepted)
//!            ▼
//!  renamed / gated flags settled, deprecation warnings (migrate.rs, gates.rs)
//!            ▼
//!  validation with etcd's messages (validate.rs, logging.rs), then chorus's
//!  refusal of what it does not implement yet (support.rs)
//!            ▼
//!  defaulting of --data-dir (${name}.chorus) and --initial-cluster from --name
//! ```
//!
//! Checks that etcd performs only when bootstrapping a fresh member (local name
//! present in `--initial-cluster`, advertised peer URLs matching, duplicate
//! URLs) are in [`Config::bootstrap_cluster`], because etcd skips them when the
//! data directory already holds a member.
//!
//! # Deliberate differences from etcd
//!
//! - Default data dir is `${name}.chorus`; `--enable-v2` defaults to `true`;
//!   lease checkpoints (`--experimental-enable-lease-checkpoint[-persist]`,
//!   gates `LeaseCheckpoint[Persist]`) default to on; `--logger=capnslog`
//!   (etcd 3.4's default; 3.5+ refuses it) is still accepted.
//! - Flags in [`NOT_IMPLEMENTED`] and gates in [`NOT_IMPLEMENTED_GATES`] (and
//!   the `gateway` / `grpc-proxy` subcommands) are accepted by the parser but
//!   rejected by validation when set to a non-default value; flags that mean
//!   nothing to chorus (bbolt tuning) are accepted with a [`Notice`].
//! - Flags removed by a later release (`--enable-v2` in 3.6,
//!   `--experimental-*` in 3.7) are accepted, with the deprecation warning of
//!   the release that deprecated them; `--discovery-fallback` keeps 3.5's
//!   default (`proxy`) instead of 3.6's (`exit`).
//! - An unknown `--log-level` is an error (etcd panics, exit 2); several
//!   `--v2-deprecation` stages keep the furthest (etcd panics later).
//! - Negative durations (`--grpc-keepalive-interval=-1s`) are rejected.
//! - An environment variable shadowed by a flag is a warning (etcd 3.4+
//!   exits).
//! - Config file: unknown keys produce a warning (etcd ignores them silently);
//!   decoding errors name the file; the YAML parser is YAML 1.2 (the YAML 1.1
//!   words `yes`/`no`/`on`/`off` are still accepted for boolean keys, but
//!   `010` is decimal and `name: yes` is the string "yes"); a bad
//!   `advertise-client-urls` is reported under its own name (etcd says
//!   `advertise-peer-urls`); an unknown `v2-deprecation` is an error.
//! - Advertise/initial-cluster URL matching resolves DNS names once instead of
//!   retrying for 30 s; the peer TLS error names the configured host:port,
//!   not the bound address.
//! - The default host (for `0.0.0.0` listeners with default advertise URLs)
//!   comes from `/proc/net/route` and is only looked up when needed.
//! - Log lines etcd prints on every start regardless of flags (`Running:`,
//!   `it isn't recommended to use default name`, `Running http and grpc server
//!   on single port`) are not reproduced.

mod cluster;
mod cmdline;
mod config;
mod default_host;
mod defaults;
mod error;
mod file;
mod flags;
mod gates;
mod goparse;
mod help;
mod local_addr;
mod logging;
mod migrate;
mod release;
mod support;
pub mod url;
mod validate;
mod version;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use cluster::{
    cluster_id, format_id, member_id, member_id_at, BootstrapCluster, InitialCluster, Member,
};
pub use config::proxy_subcommand;
pub use config::{
    AutoCompaction, ClusterState, Command, Config, DiscoveryConfig, DiscoveryFallback, Notice,
    NoticeLevel, ProxyMode, ProxySubcommand, SocketOpts, TlsInfo, V2Deprecation,
    BCRYPT_DEFAULT_COST, BCRYPT_MAX_COST, BCRYPT_MIN_COST, DATA_DIR_SUFFIX, DEFAULT_CLIENT_URL,
    DEFAULT_INITIAL_CLUSTER_TOKEN, DEFAULT_NAME, DEFAULT_PEER_URL, DEFAULT_QUOTA_BYTES,
    DEFAULT_SNAPSHOT_COUNT, MAX_ELECTION_MS, MAX_QUOTA_BYTES, RECOMMENDED_MAX_REQUEST_BYTES,
};
pub use default_host::detect_default_host;
pub use defaults::{DEFAULT_LOG_ROTATION_CONFIG, DEFAULT_WARNING_UNARY_REQUEST_DURATION};
pub use error::{ConfigError, ERR_UNSET_ADVERTISE_CLIENT_URLS};
pub use flags::flag_names;
pub use gates::{gate_names, known_features, FeatureGates, Gate, Stage, GATES};
pub use help::{flags_text, help_text, usage_text};
pub use release::EtcdRelease;
pub use support::{NOT_IMPLEMENTED, NOT_IMPLEMENTED_GATES};
pub use url::{join_urls, parse_url_csv, parse_url_list, sort_urls, Url};
pub use version::{
    git_sha, os_arch, rust_version, version_lines, version_text, API_VERSION, CHORUS_VERSION,
    ETCD_COMPAT_VERSION,
};

impl Config {
    /// Parse a command line and environment exactly as etcd 3.4 does
    /// (see the module docs). `args` excludes the program name; `env` is the
    /// process environment in `environ` order (e.g. `std::env::vars()`).
    ///
    /// Log-worthy events etcd would log while parsing (environment variables
    /// used, unrecognized `ETCD_*` variables, ignored legacy flags, deprecation
    /// warnings, default data dir) are appended to `notices`, in order, even
    /// when an error is returned.
    pub fn parse<I, S>(
        args: I,
        env: &[(String, String)],
        notices: &mut Vec<Notice>,
    ) -> Result<Command, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Self::parse_with_host(args, env, notices, &|| detect_default_host())
    }

    /// [`Config::parse`] with an injectable default-host detector (etcd's
    /// `netutil.GetDefaultHost`, used to replace `0.0.0.0` in default
    /// advertise URLs).
    pub fn parse_with_host<I, S>(
        args: I,
        env: &[(String, String)],
        notices: &mut Vec<Notice>,
        default_host: &dyn Fn() -> Result<String, String>,
    ) -> Result<Command, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.into().to_string_lossy().into_owned())
            .collect();
        cmdline::parse_command_line(&args, env, notices, default_host)
    }

    /// [`Config::parse`] on the real process arguments and environment.
    pub fn from_process(notices: &mut Vec<Notice>) -> Result<Command, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        Self::parse(std::env::args_os().skip(1), &env, notices)
    }

    /// Load a YAML config file the way `etcd --config-file` does (without
    /// the data-dir / initial-cluster defaulting that [`Config::parse`] adds).
    pub fn from_file(path: &Path, notices: &mut Vec<Notice>) -> Result<Config, ConfigError> {
        file::load(path, notices)
    }
}
