//! The whole-system test harness, shared by every file in `tests/` (modules of `tests/suite.rs`) through `use crate::common;`.
//!
//! ```text
//!   Cluster::start(ServerKind::Etcd | ServerKind::Chorus, n)
//!     ├─ TempDir ── m0/data  m0.log    one data dir and one log file per member
//!     │             m1/data  m1.log
//!     ├─ Member 0 ── child process: etcd's flags only, 127.0.0.1:<free ports>
//!     ├─ Member 1 ── ...
//!     └─ client() ── chorus_client::Client over every member's client URL
//!   kill9(i) / stop(i) / restart(i) / leader() / wait_ready(i); Drop kills and reaps all
//!
//!   Etcdctl::v3(endpoints).args([..]).run() ── the real etcdctl against any cluster
//!   Normalizer ── blanks IDs, terms, ports, ... so chorus's and etcd's outputs compare
//!   Pki::for_cluster(dir) ── CA + server/client certificates; ClusterOptions.tls makes
//!                            every URL https with client-certificate auth
//!   http::send / HttpStream::open ── raw HTTP/1.0 with headers (v2 API, watches)
//! ```
//!
//! Tests that need a real binary start with `if !common::require_etcd() { return; }` (or
//! `require_etcdctl()`): without it they print a skip note and pass, except under
//! `CI=true`, where a missing binary fails the test.

// Each test file uses its own part of the harness.
#![allow(dead_code, unused_imports)]

pub mod cluster;
pub mod etcdctl;
pub mod fleet;
pub mod http;
pub mod normalize;
pub mod pki;
pub mod proxy;

use std::path::{Path, PathBuf};

pub use cluster::{Cluster, ClusterOptions, Member, ServerKind};
pub use etcdctl::{Background, Etcdctl, Output};
pub use http::{HttpRequest, HttpResponse, HttpStream};
pub use normalize::Normalizer;
pub use pki::{ClusterTls, Pki};
pub use proxy::{free_low_ports, metric, Proxy, ProxyKind};

pub use chorus_testports::{free_port, free_ports};

/// Whether `CI=true`: then a missing binary is an error, not a skip.
fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// `$var` if set, else `name` found on `PATH`.
fn find_binary(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn require(var: &str, name: &str) -> bool {
    if find_binary(var, name).is_some() {
        return true;
    }
    if in_ci() {
        panic!("{name} is required under CI=true but was not found (set {var} or PATH)");
    }
    eprintln!("skipping: {name} not found (set {var} or install it)");
    false
}

/// The real etcd server chorus is compared with: `$CHORUS_TEST_ETCD`, else etcd 3.5.1 from
/// `scripts/install-etcd35.sh` (`target/etcd-v3.5.1/etcd`), else `etcd` on `PATH`.
pub fn etcd_binary() -> Option<PathBuf> {
    if std::env::var_os("CHORUS_TEST_ETCD").is_none() {
        let v35 = workspace_root().join("target/etcd-v3.5.1/etcd");
        if v35.is_file() {
            return Some(v35);
        }
    }
    find_binary("CHORUS_TEST_ETCD", "etcd")
}

/// etcd 3.4: `$CHORUS_TEST_ETCD34`, else Debian's `/usr/bin/etcd`.
pub fn etcd34_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHORUS_TEST_ETCD34") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    Some(PathBuf::from("/usr/bin/etcd")).filter(|p| p.is_file())
}

/// Whether etcd 3.4 is here (the v2 suites); see the module doc.
pub fn require_etcd34() -> bool {
    if etcd34_binary().is_some() {
        return true;
    }
    if in_ci() {
        panic!("etcd 3.4 is required under CI=true (apt-get install etcd-server)");
    }
    eprintln!("skipping: etcd 3.4 not found (set CHORUS_TEST_ETCD34)");
    false
}

/// The workspace root (where `Cargo.lock` is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real etcdctl: `$CHORUS_TEST_ETCDCTL`, else `etcdctl` on `PATH`.
pub fn etcdctl_binary() -> Option<PathBuf> {
    find_binary("CHORUS_TEST_ETCDCTL", "etcdctl")
}

/// etcdctl 3.5.1 from `scripts/install-etcd35.sh` (`target/etcd-v3.5.1/etcdctl`), or
/// `$CHORUS_TEST_ETCDCTL35`.
pub fn etcdctl35_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHORUS_TEST_ETCDCTL35") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    Some(workspace_root().join("target/etcd-v3.5.1/etcdctl")).filter(|p| p.is_file())
}

/// Whether etcdctl 3.5.1 is here; see the module doc.
pub fn require_etcdctl35() -> bool {
    if etcdctl35_binary().is_some() {
        return true;
    }
    if in_ci() {
        panic!("etcdctl 3.5.1 is required under CI=true (scripts/install-etcd35.sh)");
    }
    eprintln!("skipping: etcdctl 3.5.1 not found (run scripts/install-etcd35.sh)");
    false
}

/// The chorusctl binary next to the chorus binary. `cargo test --workspace` builds it
/// with the tests (crates/ctl has integration tests), and scripts/test.sh says so with
/// `CHORUS_TEST_BINARIES_BUILT=1`; otherwise (`cargo test -p chorus`) it is built here,
/// once per test run, so that it is up to date.
pub fn chorusctl_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let chorus = PathBuf::from(env!("CARGO_BIN_EXE_chorus"));
            let bin = chorus.with_file_name("chorusctl");
            if std::env::var_os("CHORUS_TEST_BINARIES_BUILT").is_none() {
                build_chorusctl(&chorus);
            }
            assert!(bin.is_file(), "{} missing after build", bin.display());
            bin
        })
        .clone()
}

/// `cargo build --bin chorusctl` for the profile and crash-point feature of this test
/// build. A plain build leaves out the dev-dependencies' features (tokio's `test-util`),
/// so it recompiles the crates that use tokio: about a minute on a clean tree.
fn build_chorusctl(chorus: &Path) {
    let release = chorus.parent().is_some_and(|d| d.ends_with("release"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = std::process::Command::new(cargo);
    // The workspace: `-p chorusctl` alone would resolve the features anew.
    cmd.args(["build", "-q", "--workspace", "--bin", "chorusctl"])
        .arg("--manifest-path")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    if cfg!(feature = "failpoints") {
        cmd.args(["--features", "chorus/failpoints"]);
    }
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build --bin chorusctl");
    assert!(status.success(), "cargo build --bin chorusctl failed");
}

/// etcd 3.5.1's server exactly (never another release from `PATH`): `$ETCD35_DIR/etcd`,
/// else `target/etcd-v3.5.1/etcd` (`scripts/install-etcd35.sh` puts it there).
pub fn etcd35_binary() -> Option<PathBuf> {
    let dir = std::env::var_os("ETCD35_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/etcd-v3.5.1"));
    Some(dir.join("etcd")).filter(|p| p.is_file())
}

/// Whether etcd 3.5.1 is installed (etcd and etcdctl); see the module doc.
pub fn require_etcd35() -> bool {
    if etcd35_binary().is_some() && etcdctl35_binary().is_some() {
        return true;
    }
    if in_ci() {
        panic!("etcd 3.5.1 is required under CI=true (scripts/install-etcd35.sh or ETCD35_DIR)");
    }
    eprintln!("skipping: etcd 3.5.1 not found (scripts/install-etcd35.sh)");
    false
}

/// Whether the real etcd server is here (for comparison tests); see the module doc.
pub fn require_etcd() -> bool {
    require("CHORUS_TEST_ETCD", "etcd")
}

/// Whether the real etcdctl is here; see the module doc.
pub fn require_etcdctl() -> bool {
    require("CHORUS_TEST_ETCDCTL", "etcdctl")
}

/// Whether `curl` is here (`$CHORUS_TEST_CURL`, else on `PATH`); see the module doc.
pub fn require_curl() -> bool {
    require("CHORUS_TEST_CURL", "curl")
}

/// Whether `go` (Debian's golang-go, for `go tool pprof`) is here (`$CHORUS_TEST_GO`, else
/// on `PATH`); see the module doc.
pub fn require_go() -> bool {
    require("CHORUS_TEST_GO", "go")
}

/// Whether `dig` (Debian's bind9-dnsutils) is here (`$CHORUS_TEST_DIG`, else on `PATH`);
/// see the module doc.
pub fn require_dig() -> bool {
    require("CHORUS_TEST_DIG", "dig")
}

/// Whether crates/robustness/faultfs.py can mount here: /dev/fuse and Debian's
/// python3-fusepy (tests/disk_faults.rs).
pub fn require_faultfs() -> bool {
    let fusepy = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import fusepy"])
        .status()
        .is_ok_and(|s| s.success());
    if fusepy && Path::new("/dev/fuse").exists() {
        return true;
    }
    if in_ci() {
        panic!("/dev/fuse and python3-fusepy are required under CI=true (scripts/install-test-deps.sh)");
    }
    eprintln!("skipping: faultfs needs /dev/fuse and python3-fusepy");
    false
}

/// Debian's `prometheus` (tests/prometheus.rs).
pub fn require_prometheus() -> bool {
    require("CHORUS_TEST_PROMETHEUS", "prometheus")
}

/// `$CHORUS_TEST_PROMETHEUS`, else `prometheus` on `PATH`.
pub fn prometheus_binary() -> Option<PathBuf> {
    find_binary("CHORUS_TEST_PROMETHEUS", "prometheus")
}

/// Debian's `chromium` and `chromium-driver` (tests/dashboard.rs drives the `/ui/` page
/// through chromedriver's WebDriver API); both must be there.
pub fn require_chromium() -> bool {
    require("CHORUS_TEST_CHROMIUM", "chromium")
        && require("CHORUS_TEST_CHROMEDRIVER", "chromedriver")
}

/// `$CHORUS_TEST_CHROMIUM`, else `chromium` on `PATH`.
pub fn chromium_binary() -> Option<PathBuf> {
    find_binary("CHORUS_TEST_CHROMIUM", "chromium")
}

/// `$CHORUS_TEST_CHROMEDRIVER`, else `chromedriver` on `PATH`.
pub fn chromedriver_binary() -> Option<PathBuf> {
    find_binary("CHORUS_TEST_CHROMEDRIVER", "chromedriver")
}

/// The last `lines` lines of a file, for failure reports.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
