//! Moving etcd's files aside and chorus's into place, so that a crash at any point leaves
//! either etcd's member untouched (the staging dir, without its marker, is thrown away at
//! the next start) or a marker that says how to finish:
//!
//! ```text
//!  1. <wal-dir> ─▶ <wal-dir>.etcd-backup-<time>          (separate --wal-dir only)
//!  2. <wal-dir>.chorus-takeover ─▶ <wal-dir>              (separate --wal-dir only)
//!  3. member ─▶ member.etcd-backup-<time>
//!  4. member.chorus-takeover ─▶ member                    (the marker comes along)
//!  5. remove member/TAKEOVER-READY
//! ```
//! Each step is skipped when already done, so finishing is the same code as doing.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::stage::READY;
use super::{Paths, TakeoverError, TakeoverReport};

/// Where etcd's files go, recorded in the marker before anything moves.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Backups {
    pub member: PathBuf,
    pub wal: Option<PathBuf>,
}

impl Backups {
    pub fn new(paths: &Paths) -> Backups {
        let suffix = format!(".etcd-backup-{}", timestamp(SystemTime::now()));
        Backups {
            member: super::suffixed(&paths.member, &suffix),
            wal: paths
                .separate_wal
                .then(|| super::suffixed(&paths.wal, &suffix)),
        }
    }
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> TakeoverError + 'a {
    move |source| TakeoverError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

/// Finishes an interrupted takeover, or clears what an abandoned one left. `Some` when it
/// finished one.
pub fn resume(paths: &Paths) -> Result<Option<TakeoverReport>, TakeoverError> {
    let done_marker = paths.member.join(READY);
    if done_marker.exists() {
        std::fs::remove_file(&done_marker).map_err(io(&done_marker, "remove"))?;
        sync_dir(&paths.member)?;
    }
    let staged_wal = paths.separate_wal && paths.staging_wal.exists();
    if !paths.staging.exists() && !staged_wal {
        return Ok(None);
    }
    if !paths.staging.join(READY).exists() {
        tracing::warn!(staging = %paths.staging.display(), "etcd takeover: removing an incomplete conversion left by an earlier start");
        super::stage::remove(paths);
        return Ok(None);
    }
    tracing::warn!(staging = %paths.staging.display(), "etcd takeover: finishing a conversion an earlier start did not finish");
    let backups = complete(paths)?;
    Ok(Some(TakeoverReport {
        member_id: 0,
        cluster_id: 0,
        backups,
        resumed: true,
        index: 0,
        term: 0,
        entries: 0,
    }))
}

/// Moves etcd's files to the backups the marker names and chorus's into place.
pub fn complete(paths: &Paths) -> Result<Vec<PathBuf>, TakeoverError> {
    let marker = paths.staging.join(READY);
    let text = std::fs::read(&marker).map_err(io(&marker, "read"))?;
    let backups: Backups = serde_json::from_slice(&text).map_err(|e| TakeoverError::Io {
        path: marker.clone(),
        op: "parse",
        source: std::io::Error::other(e),
    })?;
    let mut moved = Vec::new();
    if let Some(wal_backup) = &backups.wal {
        if paths.wal.exists() && is_etcd_wal(&paths.wal) {
            rename(&paths.wal, wal_backup)?;
        }
        if paths.staging_wal.exists() {
            rename(&paths.staging_wal, &paths.wal)?;
        }
        moved.push(wal_backup.clone());
    }
    if paths.member.exists() {
        if is_skeleton(&paths.member)? {
            std::fs::remove_dir_all(&paths.member).map_err(io(&paths.member, "remove"))?;
        } else {
            rename(&paths.member, &backups.member)?;
        }
    }
    rename(&paths.staging, &paths.member)?;
    moved.insert(0, backups.member);
    let done = paths.member.join(READY);
    std::fs::remove_file(&done).map_err(io(&done, "remove"))?;
    sync_dir(&paths.member)?;
    Ok(moved)
}

fn rename(from: &Path, to: &Path) -> Result<(), TakeoverError> {
    if to.exists() {
        return Err(TakeoverError::Io {
            path: to.to_owned(),
            op: "move files to",
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        });
    }
    std::fs::rename(from, to).map_err(io(from, "rename"))?;
    for dir in [from.parent(), to.parent()].into_iter().flatten() {
        sync_dir(dir)?;
    }
    tracing::info!(from = %from.display(), to = %to.display(), "etcd takeover: moved");
    Ok(())
}

/// A member dir holding only empty directories: what a start that found no member made
/// (`member/snap`) while the takeover was between steps 3 and 4.
fn is_skeleton(dir: &Path) -> Result<bool, TakeoverError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir, "read dir"))? {
        let entry = entry.map_err(io(dir, "read dir"))?;
        let path = entry.path();
        if !path.is_dir() || !is_skeleton(&path)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `dir`'s first WAL segment starts with an etcd record (a CRC record; chorus's
/// segments start with a header record etcd's framing cannot read).
pub fn is_etcd_wal(dir: &Path) -> bool {
    use chorus_etcd_format::wal::{list_segments, WalDecoder, WalRecord};
    let Ok(segments) = list_segments(dir) else {
        return false;
    };
    let first = segments.into_iter().take(1).collect();
    matches!(
        WalDecoder::new(first).next(),
        Some(Ok((_, _, WalRecord::Crc(_))))
    )
}

pub fn sync_dir(dir: &Path) -> Result<(), TakeoverError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "fsync"))
}

/// UTC as `20261206T132514Z`.
fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_times() {
        let at = |s| UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(timestamp(at(0)), "19700101T000000Z");
        assert_eq!(timestamp(at(951_782_400)), "20000229T000000Z");
        assert_eq!(timestamp(at(1_796_563_514)), "20261206T132514Z");
    }
}

#[cfg(test)]
mod resume_tests {
    use super::*;

    fn paths(root: &Path) -> Paths {
        let member = root.join("member");
        Paths {
            data_dir: root.to_owned(),
            snap: member.join("snap"),
            wal: member.join("wal"),
            member,
            separate_wal: false,
            staging: root.join("member.chorus-takeover"),
            staging_wal: root.join("member.chorus-takeover/wal"),
        }
    }

    /// etcd's member dir and a complete staging dir with its marker.
    fn staged(root: &Path) -> Paths {
        let p = paths(root);
        std::fs::create_dir_all(p.member.join("snap")).unwrap();
        std::fs::write(p.member.join("snap/db"), b"etcd's db").unwrap();
        std::fs::create_dir_all(p.staging.join("snap")).unwrap();
        std::fs::write(p.staging.join("snap/db"), b"chorus's db").unwrap();
        let marker = serde_json::to_vec(&Backups::new(&p)).unwrap();
        std::fs::write(p.staging.join(READY), marker).unwrap();
        p
    }

    fn backups(root: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".etcd-backup-"))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_staged_takeover_is_finished_wherever_it_stopped() {
        // Stopped before any move, and after etcd's member dir moved (with the empty
        // member/snap a later start creates).
        for moved in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let p = staged(dir.path());
            if moved {
                let b = serde_json::from_slice::<Backups>(
                    &std::fs::read(p.staging.join(READY)).unwrap(),
                )
                .unwrap();
                std::fs::rename(&p.member, &b.member).unwrap();
                std::fs::create_dir_all(p.member.join("snap")).unwrap();
            }
            let report = resume(&p).unwrap().expect("a finished takeover");
            assert!(report.resumed);
            assert_eq!(
                std::fs::read(p.member.join("snap/db")).unwrap(),
                b"chorus's db"
            );
            assert!(!p.member.join(READY).exists() && !p.staging.exists());
            let b = backups(dir.path());
            assert_eq!(b.len(), 1, "{b:?}");
            assert_eq!(std::fs::read(b[0].join("snap/db")).unwrap(), b"etcd's db");
            assert!(resume(&p).unwrap().is_none(), "nothing left to finish");
        }
    }

    #[test]
    fn an_unfinished_staging_dir_is_thrown_away() {
        let dir = tempfile::tempdir().unwrap();
        let p = staged(dir.path());
        std::fs::remove_file(p.staging.join(READY)).unwrap();
        assert!(resume(&p).unwrap().is_none());
        assert!(!p.staging.exists());
        assert_eq!(
            std::fs::read(p.member.join("snap/db")).unwrap(),
            b"etcd's db"
        );
        assert!(backups(dir.path()).is_empty());
    }
}
