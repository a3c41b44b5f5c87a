//! What the integration tests share: finding etcd, and spawning a server that cannot
//! outlive the test.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};

fn find_binary(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `$CHORUS_TEST_ETCD`, else `etcd` on `PATH`; `None` (skip, with a note) when there is
/// none, except under `CI=true`, where that is a failure.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = find_binary("CHORUS_TEST_ETCD", "etcd") {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("etcd is required under CI=true but was not found (set CHORUS_TEST_ETCD or PATH)");
    }
    eprintln!("skipping: etcd not found (set CHORUS_TEST_ETCD or install it)");
    None
}

/// Spawns `cmd` without our `ETCD_*` variables and tied to this process: if the test dies
/// without dropping its handle, the kernel kills the server too.
pub fn spawn_tied(cmd: &mut Command) -> std::io::Result<Child> {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCD_") {
            cmd.env_remove(name);
        }
    }
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}
