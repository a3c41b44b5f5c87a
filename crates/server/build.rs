//! Records the compiler version for `chorus --version`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CHORUS_GIT_SHA");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    if let Ok(out) = Command::new(rustc).arg("--version").output() {
        if out.status.success() {
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            // "rustc 1.85.0 (4d91de4e4 2025-02-17)" -> "1.85.0 (4d91de4e4 2025-02-17)"
            let v = v.strip_prefix("rustc ").unwrap_or(&v).to_string();
            println!("cargo:rustc-env=CHORUS_RUSTC_VERSION={v}");
        }
    }
}
