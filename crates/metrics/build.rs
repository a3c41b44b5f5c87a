//! Records the compiler's version for `etcd_server_go_version` (etcd reports the Go
//! toolchain there; chorus reports rustc's, as `rust1.85.0`).

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CHORUS_RUSTC_VERSION=rust{version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
