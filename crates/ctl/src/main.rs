//! `chorusctl`: a drop-in replacement for `etcdctl` 3.4, for chorus and etcd alike.
//!
//! ```text
//!   main ── ETCDCTL_API=2 or `v2 ...` ──> v2::run ── HTTP JSON: /v2/keys, /v2/members, /health
//!     └──── otherwise ── cli::parse(v3 tree) ──> Ctl (global flags + ETCDCTL_* variables)
//!                          │                       └─ chorus_client::Client (fail-over)
//!                          └─ commands::* ── one function per etcdctl command
//!                               └─ Printer (-w simple|json|protobuf|fields|table)
//! ```
//!
//! Output, error lines and exit codes are etcdctl 3.4.23's, byte for byte where scripts
//! read them; docs/chorusctl.md lists what differs.

mod cli;
mod commands;
mod ctl;
mod exit;
mod gofmt;
mod http;
mod printer;
mod srv;
mod tls;
mod v2;
mod v2auth;

use cli::{flag, hidden, short, Command, Kind};

/// The etcd release whose etcdctl this is.
pub const ETCD_VERSION: &str = "3.4.23";
pub const API_VERSION: &str = "3.4";

fn global_flags() -> Vec<cli::Flag> {
    vec![
        flag("endpoints", Kind::Slice, "[127.0.0.1:2379]", "gRPC endpoints"),
        flag("debug", Kind::Bool, "false", "enable client-side debug logging"),
        short(
            "write-out",
            'w',
            Kind::Str,
            "simple",
            "set the output format (fields, json, protobuf, simple, table)",
        ),
        flag("hex", Kind::Bool, "false", "print byte strings as hex encoded strings"),
        flag("dial-timeout", Kind::Duration, "2s", "dial timeout for client connections"),
        flag(
            "command-timeout",
            Kind::Duration,
            "5s",
            "timeout for short running command (excluding dial timeout)",
        ),
        flag("keepalive-time", Kind::Duration, "2s", "keepalive time for client connections"),
        flag("keepalive-timeout", Kind::Duration, "6s", "keepalive timeout for client connections"),
        flag(
            "insecure-transport",
            Kind::Bool,
            "true",
            "disable transport security for client connections",
        ),
        flag(
            "insecure-discovery",
            Kind::Bool,
            "true",
            "accept insecure SRV records describing cluster endpoints",
        ),
        flag(
            "insecure-skip-tls-verify",
            Kind::Bool,
            "false",
            "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)",
        ),
        flag("cert", Kind::Str, "", "identify secure client using this TLS certificate file"),
        flag("key", Kind::Str, "", "identify secure client using this TLS key file"),
        flag(
            "cacert",
            Kind::Str,
            "",
            "verify certificates of TLS-enabled secure servers using this CA bundle",
        ),
        flag(
            "user",
            Kind::Str,
            "",
            "username[:password] for authentication (prompt if password is not supplied)",
        ),
        flag(
            "password",
            Kind::Str,
            "",
            "password for authentication (if this option is used, --user option shouldn't include password)",
        ),
        short(
            "discovery-srv",
            'd',
            Kind::Str,
            "",
            "domain name to query for SRV records describing cluster endpoints",
        ),
        flag(
            "discovery-srv-name",
            Kind::Str,
            "",
            "service name to query when using DNS discovery",
        ),
    ]
}

/// etcdctl 3.4's v3 command tree.
fn v3_tree() -> Command {
    let b = Kind::Bool;
    let s = Kind::Str;
    let i = Kind::Int;
    let get = Command::new(
        "get [options] <key> [range_end]",
        "Gets the key or a range of keys",
    )
    .flags(vec![
        flag("consistency", s, "l", "Linearizable(l) or Serializable(s)"),
        flag(
            "order",
            s,
            "",
            "Order of results; ASCEND or DESCEND (ASCEND by default)",
        ),
        flag(
            "sort-by",
            s,
            "",
            "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION",
        ),
        flag("limit", i, "0", "Maximum number of results"),
        flag("prefix", b, "false", "Get keys with matching prefix"),
        flag(
            "from-key",
            b,
            "false",
            "Get keys that are greater than or equal to the given key using byte compare",
        ),
        flag("rev", i, "0", "Specify the kv revision"),
        flag("keys-only", b, "false", "Get only the keys"),
        flag(
            "print-value-only",
            b,
            "false",
            "Only write values when using the \"simple\" output format",
        ),
        // etcdctl 3.7's; hidden so that the help stays etcdctl 3.4's.
        hidden(flag("stream", b, "false", "Use the RangeStream RPC")),
    ]);
    let put = Command::new(
        "put [options] <key> <value> (<value> can also be given from stdin)",
        "Puts the given key into the store",
    )
    .long(commands::kv::PUT_LONG)
    .flags(vec![
        flag(
            "lease",
            s,
            "0",
            "lease ID (in hexadecimal) to attach to the key",
        ),
        flag(
            "prev-kv",
            b,
            "false",
            "return the previous key-value pair before modification",
        ),
        flag(
            "ignore-value",
            b,
            "false",
            "updates the key using its current value",
        ),
        flag(
            "ignore-lease",
            b,
            "false",
            "updates the key using its current lease",
        ),
    ]);
    let del = Command::new(
        "del [options] <key> [range_end]",
        "Removes the specified key or range of keys [key, range_end)",
    )
    .flags(vec![
        flag("prefix", b, "false", "delete keys with matching prefix"),
        flag("prev-kv", b, "false", "return deleted key-value pairs"),
        flag(
            "from-key",
            b,
            "false",
            "delete keys that are greater than or equal to the given key using byte compare",
        ),
    ]);
    let txn = Command::new(
        "txn [options]",
        "Txn processes all the requests in one transaction",
    )
    .flags(vec![short(
        "interactive",
        'i',
        b,
        "false",
        "Input transaction in interactive mode",
    )]);
    let compaction = Command::new(
        "compaction [options] <revision>",
        "Compacts the event history in etcd",
    )
    .flags(vec![flag(
        "physical",
        b,
        "false",
        "'true' to wait for compaction to physically remove all old revisions",
    )]);
    let alarm = Command::group(
        "alarm <subcommand>",
        "Alarm related commands",
        vec![
            Command::new("disarm", "Disarms all alarms"),
            Command::new("list", "Lists all alarms"),
        ],
    );
    let defrag = Command::new(
        "defrag",
        "Defragments the storage of the etcd members with given endpoints",
    )
    .persistent(vec![flag(
        "cluster",
        b,
        "false",
        "use all endpoints from the cluster member list",
    )])
    .flags(vec![flag(
        "data-dir",
        s,
        "",
        "Optional. If present, defragments a data directory not in use by etcd.",
    )]);
    let endpoint = Command::group(
        "endpoint <subcommand>",
        "Endpoint related commands",
        vec![
            Command::new("health", "Checks the healthiness of endpoints specified in `--endpoints` flag"),
            Command::new("status", "Prints out the status of endpoints specified in `--endpoints` flag")
                .long("When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\nThe items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.\n"),
            Command::new("hashkv", "Prints the KV history hash for each endpoint in --endpoints")
                .persistent(vec![flag("rev", i, "0", "maximum revision to hash (default: all revisions)")]),
        ],
    )
    .persistent(vec![flag("cluster", b, "false", "use all endpoints from the cluster member list")]);
    let move_leader = Command::new(
        "move-leader <transferee-member-id>",
        "Transfers leadership to another etcd cluster member.",
    );
    let watch = Command::new(
        "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
        "Watches events stream on keys or prefixes",
    )
    .flags(commands::watch::flags());
    let version = Command::new("version", "Prints the version of etcdctl");
    let lease = Command::group(
        "lease <subcommand>",
        "Lease related commands",
        vec![
            Command::new("grant <ttl>", "Creates leases"),
            Command::new("revoke <leaseID>", "Revokes leases"),
            Command::new("timetolive <leaseID> [options]", "Get lease information").flags(vec![
                flag("keys", b, "false", "Get keys attached to this lease"),
            ]),
            Command::new("list", "List all active leases"),
            Command::new(
                "keep-alive [options] <leaseID>",
                "Keeps leases alive (renew)",
            )
            .flags(vec![flag(
                "once",
                b,
                "false",
                "Resets the keep-alive time to its original value and exits immediately",
            )]),
        ],
    );
    let member = Command::group(
        "member <subcommand>",
        "Membership related commands",
        vec![
            Command::new("add <memberName> [options]", "Adds a member into the cluster").flags(vec![
                flag("peer-urls", s, "", "comma separated peer URLs for the new member."),
                flag("learner", b, "false", "indicates if the new member is raft learner"),
            ]),
            Command::new("remove <memberID>", "Removes a member from the cluster"),
            Command::new("update <memberID> [options]", "Updates a member in the cluster")
                .flags(vec![flag("peer-urls", s, "", "comma separated peer URLs for the updated member.")]),
            Command::new("list", "Lists all members in the cluster").long("When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.\nThe items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.\n"),
            Command::new("promote <memberID>", "Promotes a non-voting member in the cluster")
                .long("Promotes a non-voting learner member to a voting one in the cluster.\n"),
        ],
    );
    let snapshot = Command::group(
        "snapshot <subcommand>",
        "Manages etcd node snapshots",
        vec![
            Command::new("save <filename>", "Stores an etcd node backend snapshot to a given file"),
            Command::new("restore <filename> [options]", "Restores an etcd member snapshot to an etcd directory").flags(vec![
                flag("data-dir", s, "", "Path to the data directory"),
                flag("wal-dir", s, "", "Path to the WAL directory (use --data-dir if none given)"),
                flag("initial-cluster", s, "default=http://localhost:2380", "Initial cluster configuration for restore bootstrap"),
                flag("initial-cluster-token", s, "etcd-cluster", "Initial cluster token for the etcd cluster during restore bootstrap"),
                flag("initial-advertise-peer-urls", s, "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster"),
                flag("name", s, "default", "Human-readable name for this member"),
                flag("skip-hash-check", b, "false", "Ignore snapshot integrity hash value (required if copied from data directory)"),
            ]),
            Command::new("status <filename>", "Gets backend snapshot status of a given file").long("When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\nThe items in the lists are hash, revision, total keys, total size.\n"),
        ],
    );
    let make_mirror = Command::new("make-mirror [options] <destination>", "Makes a mirror at the destination etcd cluster").flags(vec![
        flag("prefix", s, "", "Key-value prefix to mirror"),
        flag("dest-prefix", s, "", "destination prefix to mirror a prefix to a different prefix in the destination cluster"),
        flag("no-dest-prefix", b, "false", "mirror key-values to the root of the destination cluster"),
        flag("dest-cert", s, "", "Identify secure client using this TLS certificate file for the destination cluster"),
        flag("dest-key", s, "", "Identify secure client using this TLS key file"),
        flag("dest-cacert", s, "", "Verify certificates of TLS enabled secure servers using this CA bundle"),
        flag("dest-insecure-transport", b, "true", "Disable transport security for client connections"),
    ]);
    let migrate = Command::new("migrate", "Migrates keys in a v2 store to a mvcc store");
    let lock = Command::new(
        "lock <lockname> [exec-command arg1 arg2 ...]",
        "Acquires a named lock",
    )
    .flags(vec![flag("ttl", i, "10", "timeout for session")]);
    let elect = Command::new(
        "elect <election-name> [proposal]",
        "Observes and participates in leader election",
    )
    .flags(vec![short("listen", 'l', b, "false", "observation mode")]);
    let auth = Command::group(
        "auth <enable or disable>",
        "Enable or disable authentication",
        vec![
            Command::new("enable", "Enables authentication"),
            Command::new("disable", "Disables authentication"),
        ],
    );
    let user = Command::group(
        "user <subcommand>",
        "User related commands",
        vec![
            Command::new(
                "add <user name or user:password> [options]",
                "Adds a new user",
            )
            .flags(vec![
                flag(
                    "interactive",
                    b,
                    "true",
                    "Read password from stdin instead of interactive terminal",
                ),
                flag(
                    "new-user-password",
                    s,
                    "",
                    "Supply password from the command line flag",
                ),
                flag(
                    "no-password",
                    b,
                    "false",
                    "Create a user without password (CN based auth only)",
                ),
            ]),
            Command::new("delete <user name>", "Deletes a user"),
            Command::new(
                "get <user name> [options]",
                "Gets detailed information of a user",
            )
            .flags(vec![flag(
                "detail",
                b,
                "false",
                "Show permissions of roles granted to the user",
            )]),
            Command::new("list", "Lists all users"),
            Command::new("passwd <user name> [options]", "Changes password of user").flags(vec![
                flag(
                    "interactive",
                    b,
                    "true",
                    "If true, read password from stdin instead of interactive terminal",
                ),
            ]),
            Command::new(
                "grant-role <user name> <role name>",
                "Grants a role to a user",
            ),
            Command::new(
                "revoke-role <user name> <role name>",
                "Revokes a role from a user",
            ),
        ],
    );
    let role = Command::group(
        "role <subcommand>",
        "Role related commands",
        vec![
            Command::new("add <role name>", "Adds a new role"),
            Command::new("delete <role name>", "Deletes a role"),
            Command::new("get <role name>", "Gets detailed information of a role"),
            Command::new("list", "Lists all roles"),
            Command::new(
                "grant-permission [options] <role name> <permission type> <key> [endkey]",
                "Grants a key to a role",
            )
            .flags(vec![
                flag("prefix", b, "false", "grant a prefix permission"),
                flag("from-key", b, "false", "grant a permission of keys that are greater than or equal to the given key using byte compare"),
            ]),
            Command::new("revoke-permission <role name> <key> [endkey]", "Revokes a key from a role").flags(vec![
                flag("prefix", b, "false", "revoke a prefix permission"),
                flag("from-key", b, "false", "revoke a permission of keys that are greater than or equal to the given key using byte compare"),
            ]),
        ],
    );
    let check = Command::group(
        "check <subcommand>",
        "commands for checking properties of the etcd cluster",
        vec![
            Command::new("perf [options]", "Check the performance of the etcd cluster").flags(vec![
                flag("load", s, "s", "The performance check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)"),
                flag("prefix", s, "/etcdctl-check-perf/", "The prefix for writing the performance check's keys."),
                flag("auto-compact", b, "false", "Compact storage with last revision after test is finished."),
                flag("auto-defrag", b, "false", "Defragment storage after test is finished."),
            ]),
            Command::new(
                "datascale [options]",
                "Check the memory usage of holding data for different workloads on a given server endpoint.",
            )
            .long("If no endpoint is provided, localhost will be used. If multiple endpoints are provided, first endpoint will be used.")
            .flags(vec![
                flag("load", s, "s", "The datascale check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)"),
                flag("prefix", s, "/etcdctl-check-datascale/", "The prefix for writing the datascale check's keys."),
                flag("auto-compact", b, "false", "Compact storage with last revision after test is finished."),
                flag("auto-defrag", b, "false", "Defragment storage after test is finished."),
            ]),
        ],
    );
    let mut root = Command::group(
        "etcdctl",
        "A simple command line client for etcd3.",
        vec![
            get,
            put,
            del,
            txn,
            compaction,
            alarm,
            defrag,
            endpoint,
            move_leader,
            watch,
            version,
            lease,
            member,
            snapshot,
            make_mirror,
            migrate,
            lock,
            elect,
            auth,
            user,
            role,
            check,
        ],
    )
    .persistent(global_flags());
    root.name = "etcdctl";
    root
}

fn main() {
    let api = std::env::var("ETCDCTL_API").unwrap_or_default();
    // etcdctl unsets it so that it is not taken for a flag's variable.
    std::env::remove_var("ETCDCTL_API");
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("v2") {
        args.remove(0);
        v2::run(args);
        return;
    }
    match api.as_str() {
        "" | "3" => {}
        "2" => {
            v2::run(args);
            return;
        }
        other => {
            eprintln!("unsupported API version {other}");
            exit::exit(exit::ExitCode::Error);
        }
    }
    let root = v3_tree();
    let parsed = cli::parse(&root, &args);
    let ctl = ctl::Ctl::new(parsed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(commands::run(ctl));
    exit::exit(exit::ExitCode::Success);
}
