//! Configuration errors, classified the way etcd reports them. [`ConfigError::report`]
//! keeps etcd 3.4's plain-text layout (`error verifying flags, ...`); etcd 3.5+ logs the
//! same message as the `error` of a JSON `failed to verify flags` line.

use super::version::CHORUS_VERSION;

/// etcd's `ErrUnsetAdvertiseClientURLsFlag` text.
pub const ERR_UNSET_ADVERTISE_CLIENT_URLS: &str =
    "--advertise-client-urls is required when --listen-client-urls is set explicitly";

/// A configuration error. `Display` gives the bare message (etcd's wording);
/// [`ConfigError::report`] gives the complete text chorus should print to
/// stderr and [`ConfigError::exit_code`] the status etcd exits with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A Go `flag` package error (unknown flag, missing argument, unparsable
    /// value). etcd prints the message followed by the usage text and exits 2.
    #[error("{0}")]
    Usage(String),
    /// Rejected while verifying flags / the config file. etcd prints
    /// `error verifying flags, <msg>. See 'etcd --help'.` and exits 1.
    #[error("{0}")]
    Invalid(String),
    /// A check etcd performs while starting the server (after flag
    /// verification); etcd logs it at critical level and exits 1.
    #[error("{0}")]
    Startup(String),
    /// etcd aborts immediately with this message (`log.Fatalf`/`plog.Fatalf`) and exits 1.
    #[error("{0}")]
    Fatal(String),
    /// A flag, value or subcommand etcd accepts but chorus does not implement yet.
    #[error("chorus: {what} is not implemented yet in chorus {CHORUS_VERSION} (see docs/compatibility.md)")]
    NotImplemented {
        /// What was requested, e.g. `--cert-file` or `--initial-cluster-state=existing`.
        what: String,
    },
}

impl ConfigError {
    /// Process exit status etcd uses for this class of error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The full text to print on stderr (without trailing newline), in etcd's layout.
    pub fn report(&self) -> String {
        match self {
            ConfigError::Usage(msg) => {
                // etcd: message, then the usage text (which ends with an empty line).
                let usage = super::help::usage_text();
                format!("{msg}\n{}", usage.strip_suffix('\n').unwrap_or(&usage))
            }
            ConfigError::Invalid(msg) => {
                let mut s = format!("error verifying flags, {msg}. See 'chorus --help'.");
                if msg == ERR_UNSET_ADVERTISE_CLIENT_URLS {
                    s.push_str("\nWhen listening on specific address(es), this chorus process must advertise accessible url(s) to each connected client.");
                }
                s
            }
            other => other.to_string(),
        }
    }

    pub(crate) fn not_implemented(what: impl Into<String>) -> Self {
        ConfigError::NotImplemented { what: what.into() }
    }
}
