//! Command line: etcd's `tools/benchmark` flags (global ones may come before or after the
//! command, as with cobra's persistent flags).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::conn::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "chorus-bench",
    version,
    about = "A low-level benchmark tool for etcd's v3 gRPC API (chorus and etcd alike)",
    long_about = "A low-level benchmark tool for etcd's v3 gRPC API, after etcd's tools/benchmark: \
                  same commands, flags and report layout. Works against chorus and etcd alike."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WriteOut {
    /// etcd's text report.
    Simple,
    /// One JSON object (schema chorus-bench/v1, see README).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    /// Linearizable.
    #[value(name = "l")]
    L,
    /// Serializable.
    #[value(name = "s")]
    S,
}

impl Consistency {
    pub fn serializable(self) -> bool {
        self == Consistency::S
    }

    pub fn banner(self) -> &'static str {
        match self {
            Consistency::L => "bench with linearizable range",
            Consistency::S => "bench with serializable range",
        }
    }
}

#[derive(Debug, Args)]
pub struct Global {
    /// gRPC endpoints (comma-separated host:port or http://host:port).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// Total number of gRPC connections.
    #[arg(long, global = true, default_value_t = 1)]
    pub conns: usize,
    /// Total number of gRPC clients (concurrent workers; they share the connections
    /// round-robin).
    #[arg(long, global = true, default_value_t = 1)]
    pub clients: usize,
    /// Dial timeout for client connections (Go duration: 2s, 500ms, ...).
    #[arg(long, global = true, default_value = "2s", value_parser = parse_duration)]
    pub dial_timeout: Duration,
    /// Connect only to the leader node (found with Maintenance.Status).
    #[arg(long, global = true)]
    pub target_leader: bool,
    /// Verify certificates of HTTPS-enabled servers using this CA bundle (default: the
    /// system's bundle). Any TLS flag makes scheme-less endpoints use TLS.
    #[arg(long, global = true)]
    pub cacert: Option<PathBuf>,
    /// Identify HTTPS client using this SSL certificate file.
    #[arg(long, global = true)]
    pub cert: Option<PathBuf>,
    /// Identify HTTPS client using this SSL key file.
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// Skip server certificate verification (encryption without authentication).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// Provide username[:password] and prompt if password is not supplied (etcd's
    /// `--user`; the password is asked on the terminal as `Password: `).
    #[arg(long, global = true, default_value = "")]
    pub user: String,
    /// Password for authentication, for passwords with a colon; with it `--user` is the
    /// whole user name (not in etcd's tool; etcdctl's `--password`).
    #[arg(long, global = true, default_value = "")]
    pub password: String,
    /// Output format of the report.
    #[arg(short = 'w', long, global = true, value_enum, default_value = "simple")]
    pub write_out: WriteOut,
    /// Use full floating point precision in the text report.
    #[arg(long, global = true)]
    pub precise: bool,
    /// Never draw the progress bar (it is drawn on stderr only when that is a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Write every successful request's start (Unix time, s) and latency (s) to this
    /// file, one request per line, when the run ends (not in etcd's tool).
    #[arg(long, global = true)]
    pub latency_log: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark put.
    Put(PutArgs),
    /// Benchmark range.
    Range(RangeArgs),
    /// Benchmark txn-put.
    TxnPut(TxnPutArgs),
    /// Benchmark a mixed load of txn-put & txn-range.
    TxnMixed(TxnMixedArgs),
    /// Benchmark watch: watchers fan out events of concurrent puts.
    Watch(WatchArgs),
    /// Benchmark watch latency: put, then wait for every watcher to see it.
    WatchLatency(WatchLatencyArgs),
    /// Benchmark lease keepalive.
    LeaseKeepalive(LeaseKeepaliveArgs),
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// Key size of put request.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of put request.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum puts per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of put requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Use sequential keys.
    #[arg(long)]
    pub sequential_keys: bool,
    /// Interval to compact database (e.g. 5m); 0 never.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub compact_interval: Duration,
    /// Delta between current revision and compact revision.
    #[arg(long, default_value_t = 1000)]
    pub compact_index_delta: i64,
}

#[derive(Debug, Args)]
pub struct RangeArgs {
    /// Key to read.
    #[arg(id = "range_key", value_name = "KEY")]
    pub key: String,
    /// Range end (exclusive); without it, the key alone.
    #[arg(value_name = "END")]
    pub end: Option<String>,
    /// Linearizable(l) or Serializable(s).
    #[arg(long, value_enum, default_value = "l")]
    pub consistency: Consistency,
    /// Maximum keys per range response (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Maximum range requests per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of range requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
}

#[derive(Debug, Args)]
pub struct TxnPutArgs {
    /// Key size of txn put.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of txn put.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Number of puts per txn.
    #[arg(long, default_value_t = 1)]
    pub txn_ops: u64,
    /// Maximum txns per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of txn requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
}

#[derive(Debug, Args)]
pub struct TxnMixedArgs {
    /// Key size of mixed txn.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of mixed txn.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum txns per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of txn requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Range end of the reads; by default the whole key space (limited by --limit).
    #[arg(long, default_value = "")]
    pub end_key: String,
    /// Read operation range result limit.
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Linearizable(l) or Serializable(s).
    #[arg(long, value_enum, default_value = "l")]
    pub consistency: Consistency,
    /// Read/write ops ratio.
    #[arg(long, default_value_t = 1.0)]
    pub rw_ratio: f64,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Total watch streams.
    #[arg(long, default_value_t = 10)]
    pub streams: usize,
    /// Total watchers per stream.
    #[arg(long, default_value_t = 100)]
    pub watch_per_stream: usize,
    /// Total number of keys to be watched.
    #[arg(long, default_value_t = 1)]
    pub watched_key_total: usize,
    /// Number of keys to put per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub put_rate: u64,
    /// Number of put requests.
    #[arg(long, default_value_t = 1000)]
    pub put_total: u64,
    /// Key size of watch request.
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Value size of the puts (etcd's tool puts "data", 4 bytes).
    #[arg(long, default_value_t = 4)]
    pub val_size: usize,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Use sequential keys.
    #[arg(long)]
    pub sequential_keys: bool,
    /// Give up on events not delivered this long after the last put.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub event_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct WatchLatencyArgs {
    /// Total number of put requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Number of keys to put per second.
    #[arg(long, default_value_t = 100)]
    pub put_rate: u64,
    /// Key size of watch response.
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Value size of watch response.
    #[arg(long, default_value_t = 32)]
    pub val_size: usize,
    /// Give up on a put whose events are not all delivered within this time.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub event_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct LeaseKeepaliveArgs {
    /// Total number of lease keepalive requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_etcd_style_command_lines() {
        let cli = Cli::try_parse_from([
            "chorus-bench",
            "--endpoints=127.0.0.1:1,127.0.0.1:2",
            "--conns=10",
            "put",
            "--clients=100",
            "--key-size=16",
            "--sequential-keys",
            "--compact-interval=5m",
            "-w",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.global.endpoints, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(cli.global.conns, 10);
        assert_eq!(cli.global.clients, 100);
        assert_eq!(cli.global.write_out, WriteOut::Json);
        let Command::Put(put) = cli.command else {
            panic!("not put")
        };
        assert_eq!(put.key_size, 16);
        assert_eq!(put.val_size, 8);
        assert_eq!(put.total, 10000);
        assert!(put.sequential_keys);
        assert_eq!(put.compact_interval, Duration::from_secs(300));

        let cli = Cli::try_parse_from(["chorus-bench", "range", "foo", "fop", "--consistency=s"])
            .unwrap();
        let Command::Range(r) = cli.command else {
            panic!("not range")
        };
        assert_eq!((r.key.as_str(), r.end.as_deref()), ("foo", Some("fop")));
        assert!(r.consistency.serializable());
        assert!(Cli::try_parse_from(["chorus-bench", "range"]).is_err());
        assert!(Cli::try_parse_from(["chorus-bench", "range", "k", "--consistency=x"]).is_err());

        let cli = Cli::try_parse_from(["chorus-bench", "watch"]).unwrap();
        let Command::Watch(w) = cli.command else {
            panic!("not watch")
        };
        assert_eq!(
            (w.streams, w.watch_per_stream, w.put_total),
            (10, 100, 1000)
        );
    }
}
