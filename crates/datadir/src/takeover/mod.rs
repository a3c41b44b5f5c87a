//! In-place takeover of a stopped etcd 3.3–3.7 member's data dir: chorus started with
//! `--data-dir` pointing at it converts it once, before anything else starts, into a
//! chorus member with the same member ID, cluster ID, membership, data and raft log, so
//! that the normal restart applies what etcd had not applied yet and nothing etcd
//! acknowledged is lost.
//!
//! ```text
//!  <data-dir>/member/ (etcd)             checks, nothing written until all pass:
//!    snap/db        bbolt ──────────┐      detect (bbolt magic / etcd WAL record)
//!    snap/*.snap    raft snapshots  │      locks  (flock on db, fcntl OFD + flock on WAL:
//!    wal/*.wal      etcd WAL ───────┤              etcd must not hold them)
//!                                   │      read   (WAL damaged beyond a torn tail: refuse)
//!                                   ▼      version (3.3–3.7 only), plan (plan.rs)
//!  <data-dir>/member.chorus-takeover/    stage.rs: chorus backend (import.rs + etcd's
//!    snap/db, snap/*.snap, wal/,           members), raft snapshot at the consistent
//!    TAKEOVER-READY                        index, WAL with etcd's hard state and the
//!                                          later entries translated (translate.rs)
//!  swap.rs:  member ─▶ member.etcd-backup-<time>;  member.chorus-takeover ─▶ member
//!            (resumed at the next start if interrupted: the marker says what to finish)
//! ```

mod etcd_member;
mod lock;
mod plan;
mod stage;
mod swap;
mod translate;
mod v2;
mod version;

use std::path::{Path, PathBuf};

use chorus_config::Config;
use chorus_storage::backend::BackendOptions;
use chorus_storage::wal::WalOptions;

pub use translate::TranslateStats;
pub use v2::{V2Builder, V2Seed, V2SeedNode, V2Tree};
pub use version::SUPPORTED;

/// Why an etcd data dir could not be taken over. Every refusal leaves etcd's files as
/// they were.
#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    #[error("etcd takeover refused: {file} is locked ({lock}): etcd still holds the data dir; stop the etcd member first")]
    EtcdRunning { file: PathBuf, lock: &'static str },
    #[error("etcd takeover refused: the WAL is damaged beyond a torn tail: {0}")]
    Wal(chorus_etcd_format::wal::WalError),
    #[error("etcd takeover refused: {0}")]
    Snap(#[from] chorus_etcd_format::snap::SnapError),
    #[error("etcd takeover refused: the backend cannot be read: {0}")]
    Backend(#[from] chorus_etcd_format::backend::BackendError),
    #[error("etcd takeover refused: the backend cannot be imported: {0}")]
    Import(#[from] crate::import::ImportError),
    #[error("etcd takeover refused: {version} recorded in {origin} is an etcd version chorus does not take over (it reads the layouts of etcd 3.3 to 3.7)")]
    UnsupportedVersion { version: String, origin: String },
    #[error("etcd takeover refused: WAL entry {index} holds a request chorus does not know (written by an etcd newer than 3.7?)")]
    UnknownRequest { index: u64 },
    #[error("etcd takeover refused: WAL entry {index}: {what}")]
    BadEntry { index: u64, what: String },
    #[error("etcd takeover refused: {0} has no metadata record (member and cluster IDs)")]
    NoWalMetadata(PathBuf),
    #[error("etcd takeover refused: the backend {0} is missing")]
    NoBackend(PathBuf),
    #[error("etcd takeover refused: the backend's consistent index {ci} is behind the snapshot at {snapshot}, and no received snapshot backend covers it")]
    BackendBehind { ci: u64, snapshot: u64 },
    #[error("etcd takeover refused: the WAL's entries after the backend's consistent index {index} start at {first}: entries are missing")]
    LogGap { index: u64, first: u64 },
    #[error("etcd takeover refused: the term of the backend's consistent index {index} is neither in the WAL nor in the backend")]
    TermUnknown { index: u64 },
    #[error("etcd takeover refused: the raft configuration is a joint one (a membership change was in progress)")]
    JointConfig,
    #[error("etcd takeover refused: member {id:x} is in the raft configuration but not in the membership")]
    MembershipMismatch { id: u64 },
    #[error("etcd takeover: {op} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("etcd takeover: writing chorus's files: {0}")]
    Chorus(String),
    #[error("etcd takeover refused: the v2 store cannot be carried over: {0}")]
    V2Store(String),
}

/// How the chorus files are written.
#[derive(Debug, Clone, Default)]
pub struct TakeoverOptions {
    pub wal: WalOptions,
    pub backend: BackendOptions,
    /// Builds chorus's v2 store from etcd's (the server's v2 module); `None` leaves the
    /// v2 store empty.
    pub v2: Option<V2Builder>,
}

/// What a takeover did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeoverReport {
    pub member_id: u64,
    pub cluster_id: u64,
    /// Where etcd's files went (the member dir, and a separate WAL dir).
    pub backups: Vec<PathBuf>,
    /// Whether an interrupted takeover was finished (the rest is then unknown: zero).
    pub resumed: bool,
    /// The raft snapshot chorus starts from, and the entries carried after it.
    pub index: u64,
    pub term: u64,
    pub entries: u64,
}

/// Where etcd's files are and where chorus's are staged.
#[derive(Debug, Clone)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub member: PathBuf,
    pub snap: PathBuf,
    pub wal: PathBuf,
    /// `--wal-dir` outside `member/`.
    pub separate_wal: bool,
    pub staging: PathBuf,
    pub staging_wal: PathBuf,
}

impl Paths {
    pub fn of(cfg: &Config) -> Paths {
        let member = cfg.member_dir();
        let wal = cfg.wal_dir();
        let separate_wal = wal != member.join("wal");
        let staging = cfg.data_dir.join("member.chorus-takeover");
        let staging_wal = if separate_wal {
            suffixed(&wal, ".chorus-takeover")
        } else {
            staging.join("wal")
        };
        Paths {
            data_dir: cfg.data_dir.clone(),
            snap: member.join("snap"),
            member,
            wal,
            separate_wal,
            staging,
            staging_wal,
        }
    }
}

/// `dir` with `suffix` added to its last component.
fn suffixed(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

/// Converts the data dir of `cfg` if it is a stopped etcd member's (or finishes a
/// conversion that was interrupted); `None` when it is not etcd's.
pub fn take_over(
    cfg: &Config,
    opts: &TakeoverOptions,
) -> Result<Option<TakeoverReport>, TakeoverError> {
    let paths = Paths::of(cfg);
    if let Some(report) = swap::resume(&paths)? {
        return Ok(Some(report));
    }
    if !is_etcd_member(&paths) {
        return Ok(None);
    }
    convert(&paths, opts).map(Some)
}

/// Whether the member dir is etcd's: its backend is a bbolt file, or (no backend) its
/// WAL starts with an etcd record.
pub fn is_etcd_member(paths: &Paths) -> bool {
    use std::os::unix::fs::FileExt;
    let db = paths.snap.join("db");
    if let Ok(file) = std::fs::File::open(&db) {
        let mut magic = [0u8; 4];
        let bolt = chorus_etcd_format::bbolt::page::MAGIC.to_le_bytes();
        return file.read_exact_at(&mut magic, 16).is_ok() && magic == bolt;
    }
    swap::is_etcd_wal(&paths.wal)
}

/// The conversion itself: checks, plan, staged files, swap.
fn convert(paths: &Paths, opts: &TakeoverOptions) -> Result<TakeoverReport, TakeoverError> {
    let segments =
        chorus_etcd_format::wal::list_segments(&paths.wal).map_err(TakeoverError::Wal)?;
    let segment_paths: Vec<PathBuf> = segments.into_iter().map(|s| s.path).collect();
    let _locks = lock::lock_etcd_files(&paths.snap.join("db"), &segment_paths)?;
    let member = etcd_member::EtcdMember::read(&paths.snap, &paths.wal)?;
    let recorded = version::recorded(&member)?;
    let newest = version::check(&recorded)?.cloned();
    let plan = plan::plan(&member)?;
    log_found(paths, &member, &plan, newest.as_ref());
    let staged = stage::write(paths, &member, &plan, opts);
    let import = match staged {
        Ok(import) => import,
        Err(e) => {
            stage::remove(paths);
            return Err(e);
        }
    };
    log_staged(&import, &plan);
    let backups = swap::complete(paths)?;
    tracing::info!(
        member = %format!("{:x}", plan.member_id),
        cluster = %format!("{:x}", plan.cluster_id),
        backups = ?backups,
        "etcd takeover: done; etcd's files are kept in the backup, chorus starts from the converted data dir"
    );
    Ok(TakeoverReport {
        member_id: plan.member_id,
        cluster_id: plan.cluster_id,
        backups,
        resumed: false,
        index: plan.index,
        term: plan.term,
        entries: plan.entries.len() as u64,
    })
}

fn log_found(
    paths: &Paths,
    m: &etcd_member::EtcdMember,
    plan: &plan::Plan,
    version: Option<&version::Recorded>,
) {
    tracing::info!(
        data_dir = %paths.data_dir.display(),
        wal_dir = %paths.wal.display(),
        version = version.map_or("unknown (none recorded yet)", |v| v.version.as_str()),
        version_source = version.map_or("", |v| v.source.as_str()),
        member = %format!("{:x}", plan.member_id),
        cluster = %format!("{:x}", plan.cluster_id),
        backend = %m.db_path.display(),
        "etcd takeover: found a stopped etcd member's data dir; converting it"
    );
    if let Some(t) = &m.torn_tail {
        tracing::warn!(file = %t.file.display(), offset = t.offset, reason = %t.reason, "etcd takeover: the WAL ends in a torn write (as etcd would, reading stops there)");
    }
    tracing::info!(
        snapshot = m.snapshot.as_ref().map_or(0, |(f, _)| f.index),
        consistent_index = plan.index,
        term = plan.term,
        hard_state = ?(plan.hard_state.term, plan.hard_state.vote, plan.hard_state.commit),
        voters = ?plan.conf.voters,
        learners = ?plan.conf.learners,
        members = plan.members.len(),
        "etcd takeover: raft position"
    );
}

fn log_staged(import: &crate::import::ImportSummary, plan: &plan::Plan) {
    tracing::info!(
        revisions = import.revisions,
        tombstones = import.tombstones,
        revision = import.current_revision,
        compacted = ?import.finished_compact.or(import.scheduled_compact),
        leases = import.leases,
        users = import.users,
        roles = import.roles,
        auth_enabled = import.auth_enabled,
        alarms = import.alarms,
        "etcd takeover: backend imported"
    );
    tracing::info!(
        entries = plan.entries.len(),
        first = plan.entries.first().map_or(0, |e| e.index),
        last = plan.entries.last().map_or(0, |e| e.index),
        carried = ?plan.stats.carried,
        emptied = ?plan.stats.emptied,
        "etcd takeover: WAL entries past the consistent index carried over (emptied: nothing chorus keeps, e.g. the v2 store)"
    );
}
