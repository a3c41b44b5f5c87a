//! `chorus --version` text, in the layout of `etcd --version`.

/// chorus release version (the crate version).
pub const CHORUS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The etcd API version chorus speaks (etcd's `version.APIVersion`).
pub const API_VERSION: &str = "3.5";

/// The etcd release chorus reports itself as (`/version`, `Maintenance.Status`,
/// `etcd_server_version`): the one place to change it. The cluster version is the one
/// the leader decides from every member's version of this (chorus_server's
/// `cluster_version`). Configuration follows etcd
/// 3.4 to 3.7 and `--help` is etcd 3.5.1's (see `help.rs`).
pub const ETCD_COMPAT_VERSION: &str = "3.5.1";

/// Git commit chorus was built from: `CHORUS_GIT_SHA` at build time, like
/// etcd's `-ldflags` injected `GitSHA`.
pub fn git_sha() -> &'static str {
    option_env!("CHORUS_GIT_SHA").unwrap_or("Not provided (set CHORUS_GIT_SHA at build time)")
}

/// Rust compiler version, recorded by `build.rs`.
pub fn rust_version() -> &'static str {
    option_env!("CHORUS_RUSTC_VERSION").unwrap_or("unknown")
}

/// `GOOS/GOARCH`-style platform string (`linux/amd64`, `linux/arm64`, ...).
pub fn os_arch() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    };
    format!("{}/{}", std::env::consts::OS, arch)
}

/// The lines `chorus --version` prints (etcd prints `etcd Version`, `Git SHA`,
/// `Go Version`, `Go OS/Arch`; chorus adds the API version it implements).
pub fn version_lines() -> Vec<String> {
    vec![
        format!("chorus Version: {CHORUS_VERSION}"),
        format!("Git SHA: {}", git_sha()),
        format!("Rust Version: {}", rust_version()),
        format!("OS/Arch: {}", os_arch()),
        format!("API version: {API_VERSION}"),
    ]
}

/// Full `--version` output (each line newline-terminated), for stdout, exit 0.
pub fn version_text() -> String {
    let mut s = version_lines().join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text_layout() {
        let t = version_text();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("chorus Version: {CHORUS_VERSION}"));
        assert!(lines[1].starts_with("Git SHA: "));
        assert!(lines[2].starts_with("Rust Version: "));
        assert!(lines[3].starts_with("OS/Arch: "));
        assert_eq!(lines[4], "API version: 3.5");
        assert!(t.ends_with('\n'));
    }
}
