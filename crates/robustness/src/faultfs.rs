//! Disk faults from the kernel's side: a member's data directory served by `faultfs.py`
//! (a pass-through FUSE file system, next to this crate's Cargo.toml) that fails one kind
//! of I/O call on chosen files. Unlike the failpoints, the error comes back from the real
//! `fdatasync(2)`/`pwrite(2)` the server makes, through whatever layer (redb, std, the
//! WAL) sits between; the release build, without the `failpoints` feature, can be run
//! on it too.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// Debian's interpreter: `python3-fusepy` installs the module for it.
const PYTHON: &str = "/usr/bin/python3";

/// One kind of I/O failure on one kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsFault {
    pub name: &'static str,
    /// `fsync` (fsync and fdatasync), `write` or `read`.
    pub op: &'static str,
    /// A glob over the path inside the data directory.
    pub path: &'static str,
    pub errno: &'static str,
    /// Matching calls let through before the first failure are drawn from `0..=max_after`.
    pub max_after: u32,
}

/// The WAL's fdatasync (EIO), a WAL write on a full disk (ENOSPC), the backend's sync and
/// write (EIO). Once a fault strikes, every later matching call fails too: a disk that
/// went bad stays bad until the member is stopped and its directory unmounted.
pub const FS_FAULTS: &[FsFault] = &[
    FsFault {
        name: "walFsyncEIO",
        op: "fsync",
        path: "member/wal/*.wal",
        errno: "EIO",
        max_after: 40,
    },
    FsFault {
        name: "walWriteENOSPC",
        op: "write",
        path: "member/wal/*.wal",
        errno: "ENOSPC",
        max_after: 60,
    },
    FsFault {
        name: "backendFsyncEIO",
        op: "fsync",
        path: "member/snap/db",
        errno: "EIO",
        max_after: 10,
    },
    FsFault {
        name: "backendWriteEIO",
        op: "write",
        path: "member/snap/db",
        errno: "EIO",
        max_after: 40,
    },
];

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("faultfs.py")
}

/// faultfs mounted over a member's data directory, whose files meanwhile live in
/// `<data dir>.backing`. [`Mount::remove`] puts them back; dropping it unmounts lazily.
pub struct Mount {
    child: Child,
    mountpoint: PathBuf,
    backing: PathBuf,
    removed: bool,
}

impl Mount {
    /// Moves the (stopped) member's `data_dir` aside and mounts faultfs over its path,
    /// failing `fault` after `after` matching calls (counted only once the file
    /// `armed_by` exists, if one is named). faultfs's output goes to `log`.
    pub async fn over(
        data_dir: &Path,
        fault: &FsFault,
        after: u32,
        armed_by: Option<&Path>,
        log: &Path,
    ) -> Result<Mount> {
        if !Path::new("/dev/fuse").exists() {
            bail!("disk faults through FUSE need /dev/fuse");
        }
        let mut backing = data_dir.as_os_str().to_owned();
        backing.push(".backing");
        let backing = PathBuf::from(backing);
        std::fs::rename(data_dir, &backing)
            .with_context(|| format!("move {} aside", data_dir.display()))?;
        std::fs::create_dir(data_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(PYTHON)
            .arg(script())
            .arg(&backing)
            .arg(data_dir)
            .args([
                "--op",
                fault.op,
                "--path",
                fault.path,
                "--errno",
                fault.errno,
            ])
            .arg(format!("--after={after}"))
            .args(armed_by.map(|f| format!("--armed-by={}", f.display())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {PYTHON} {}", script().display()))?;
        let mut mount = Mount {
            child,
            mountpoint: data_dir.to_owned(),
            backing,
            removed: false,
        };
        mount.wait_mounted().await?;
        Ok(mount)
    }

    /// Polls /proc/self/mountinfo (a mount is not an event a process can await).
    async fn wait_mounted(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let target = self.mountpoint.canonicalize()?;
        loop {
            let info = std::fs::read_to_string("/proc/self/mountinfo")?;
            let mounted = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .any(|p| Path::new(p) == target);
            if mounted {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("faultfs exited with {status} before mounting (python3-fusepy installed? see the member's log)");
            }
            if Instant::now() >= deadline {
                bail!("faultfs did not mount {} within 10 s", target.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Unmounts (the member must have stopped) and moves the files back.
    pub async fn remove(mut self) -> Result<()> {
        self.removed = true;
        unmount(&self.mountpoint, 0)
            .with_context(|| format!("unmount {}", self.mountpoint.display()))?;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        std::fs::remove_dir(&self.mountpoint)?;
        std::fs::rename(&self.backing, &self.mountpoint)
            .with_context(|| format!("move {} back", self.backing.display()))?;
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if !self.removed {
            let _ = unmount(&self.mountpoint, libc::MNT_DETACH);
        }
    }
}

fn unmount(path: &Path, flags: libc::c_int) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: umount2 with a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
