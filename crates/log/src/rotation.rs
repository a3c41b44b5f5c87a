//! `--enable-log-rotation` with `--log-rotation-config-json`: etcd's `setupLogRotation`
//! (checks and decoding of lumberjack's options, with Go's messages) and
//! [`RotatingFile`], lumberjack v2's `Logger` (rotate before a write would pass
//! `maxsize` MiB; the old file becomes `<name>-<2006-01-02T15-04-05.000><ext>`; a
//! background "mill" removes backups beyond `maxbackups` or older than `maxage` days and
//! gzips the rest when `compress`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::time::SystemTime;

use crate::gojson::{self, Json};
use crate::time::{parse_backup_stamp, Civil};

/// etcd's `DefaultLogRotationConfig`.
pub const DEFAULT_ROTATION_CONFIG_JSON: &str =
    r#"{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}"#;
/// lumberjack's `megabyte`.
const MEGABYTE: i64 = 1024 * 1024;
/// lumberjack's size when `maxsize` is 0.
const DEFAULT_MAX_SIZE_MB: i64 = 100;

/// lumberjack's options as etcd decodes them (Go `int`s and `bool`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationConfig {
    /// MiB before rotating (0: 100).
    pub max_size: i64,
    /// Days to keep backups (0: no limit).
    pub max_age: i64,
    /// Backups to keep (0: all).
    pub max_backups: i64,
    /// Backup names in local time rather than UTC.
    pub local_time: bool,
    /// gzip the backups.
    pub compress: bool,
}

/// Why the rotation flags were refused (etcd's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationConfigError {
    /// etcd's `ErrLogRotationInvalidLogOutput`.
    #[error("--log-outputs requires a single file path when --log-rotate-config-json is defined")]
    InvalidLogOutput,
    #[error("improperly formatted log rotation config: {0}")]
    Syntax(String),
    #[error("invalid log rotation config: {0}")]
    Type(String),
}

/// `default`, `stderr` and `stdout` are not files; anything else is (etcd counts
/// `systemd/journal` as one here too).
fn is_file_output(output: &str) -> bool {
    !matches!(output, "default" | "stderr" | "stdout")
}

/// etcd's check: rotation needs exactly one file among `--log-outputs`.
pub fn check_rotation_outputs(outputs: &[String]) -> Result<(), RotationConfigError> {
    let files = outputs.iter().filter(|o| is_file_output(o)).count();
    if (outputs.len() == 1 && files == 0) || files > 1 {
        return Err(RotationConfigError::InvalidLogOutput);
    }
    Ok(())
}

/// One lumberjack field: its JSON name and Go type.
#[derive(Clone, Copy)]
enum Slot {
    Filename,
    Int(&'static str),
    Bool(&'static str),
}

const SLOTS: [(&str, Slot); 6] = [
    ("filename", Slot::Filename),
    ("maxsize", Slot::Int("maxsize")),
    ("maxage", Slot::Int("maxage")),
    ("maxbackups", Slot::Int("maxbackups")),
    ("localtime", Slot::Bool("localtime")),
    ("compress", Slot::Bool("compress")),
];

fn type_error(value: String, field: &str, go_type: &str) -> RotationConfigError {
    RotationConfigError::Type(format!(
        "json: cannot unmarshal {value} into Go struct field logRotationConfig.{field} of type {go_type}"
    ))
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            max_size: DEFAULT_MAX_SIZE_MB,
            max_age: 0,
            max_backups: 0,
            local_time: false,
            compress: false,
        }
    }
}

impl RotationConfig {
    /// Decodes `--log-rotation-config-json` as etcd's `json.Unmarshal` into lumberjack's
    /// `Logger` does: keys matched without regard to case, unknown keys and `null`s
    /// ignored, the first type error reported. Options not given are lumberjack's zero
    /// values (`maxsize` 0 means 100 MiB).
    pub fn from_json(s: &str) -> Result<RotationConfig, RotationConfigError> {
        let json = gojson::parse(s).map_err(|e| RotationConfigError::Syntax(e.0))?;
        let mut cfg = RotationConfig {
            max_size: 0,
            ..RotationConfig::default()
        };
        let fields = match json {
            Json::Null => return Ok(cfg),
            Json::Object(fields) => fields,
            other => {
                return Err(RotationConfigError::Type(format!(
                    "json: cannot unmarshal {} into Go value of type embed.logRotationConfig",
                    other.kind()
                )))
            }
        };
        let mut first_error = None;
        for (key, value) in &fields {
            let Some(slot) = lookup(key) else { continue };
            if let Err(e) = cfg.set(slot, value) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(cfg),
        }
    }

    fn set(&mut self, slot: Slot, value: &Json) -> Result<(), RotationConfigError> {
        match (slot, value) {
            (_, Json::Null) => Ok(()),
            (Slot::Filename, Json::String(_)) => Ok(()),
            (Slot::Filename, other) => Err(type_error(other.kind().into(), "filename", "string")),
            (Slot::Int(name), Json::Number(lit)) => {
                let n: i64 = lit
                    .parse()
                    .map_err(|_| type_error(format!("number {lit}"), name, "int"))?;
                *self.int_field(name) = n;
                Ok(())
            }
            (Slot::Int(name), other) => Err(type_error(other.kind().into(), name, "int")),
            (Slot::Bool(name), Json::Bool(b)) => {
                match name {
                    "localtime" => self.local_time = *b,
                    _ => self.compress = *b,
                }
                Ok(())
            }
            (Slot::Bool(name), other) => Err(type_error(other.kind().into(), name, "bool")),
        }
    }

    fn int_field(&mut self, name: &str) -> &mut i64 {
        match name {
            "maxsize" => &mut self.max_size,
            "maxage" => &mut self.max_age,
            _ => &mut self.max_backups,
        }
    }

    /// lumberjack's `max()`: bytes before rotating.
    fn max_bytes(&self) -> i64 {
        match self.max_size {
            0 => DEFAULT_MAX_SIZE_MB * MEGABYTE,
            n => n.saturating_mul(MEGABYTE),
        }
    }
}

/// Go's field lookup: the exact name first, then any name equal without regard to case.
fn lookup(key: &str) -> Option<Slot> {
    SLOTS
        .iter()
        .find(|(name, _)| *name == key)
        .or_else(|| {
            SLOTS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
        })
        .map(|(_, slot)| *slot)
}

/// Why a write to a rotating file failed (lumberjack's messages).
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("write length {len} exceeds maximum file size {max}")]
    TooLong { len: usize, max: i64 },
    #[error("can't make directories for new logfile: {0}")]
    Dir(std::io::Error),
    #[error("can't rename log file: {0}")]
    Rename(std::io::Error),
    #[error("can't open new logfile: {0}")]
    Open(std::io::Error),
    #[error("error getting log file info: {0}")]
    Stat(std::io::Error),
    #[error(transparent)]
    Write(std::io::Error),
}

/// lumberjack's `Logger` over one path.
pub struct RotatingFile {
    path: PathBuf,
    cfg: RotationConfig,
    file: Option<File>,
    size: i64,
    mill: Option<SyncSender<()>>,
}

impl RotatingFile {
    /// Nothing is opened until the first write, as in lumberjack.
    pub fn new(path: impl Into<PathBuf>, cfg: RotationConfig) -> RotatingFile {
        RotatingFile {
            path: path.into(),
            cfg,
            file: None,
            size: 0,
            mill: None,
        }
    }

    /// Writes one line, rotating first if it would not fit.
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), RotateError> {
        let len = line.len() as i64;
        let max = self.cfg.max_bytes();
        if len > max {
            return Err(RotateError::TooLong {
                len: line.len(),
                max,
            });
        }
        if self.file.is_none() {
            self.open_existing_or_new(len)?;
        }
        if self.size + len > max {
            self.rotate()?;
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(line).map_err(RotateError::Write)?;
        self.size += len;
        Ok(())
    }

    fn open_existing_or_new(&mut self, len: i64) -> Result<(), RotateError> {
        self.mill();
        let meta = match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.open_new(),
            Err(e) => return Err(RotateError::Stat(e)),
            Ok(m) => m,
        };
        if meta.len() as i64 + len >= self.cfg.max_bytes() {
            return self.rotate();
        }
        match OpenOptions::new().append(true).open(&self.path) {
            Ok(f) => {
                self.file = Some(f);
                self.size = meta.len() as i64;
                Ok(())
            }
            Err(_) => self.open_new(),
        }
    }

    fn rotate(&mut self) -> Result<(), RotateError> {
        self.file = None;
        self.open_new()?;
        self.mill();
        Ok(())
    }

    /// Moves the current file to its backup name and starts an empty one with its mode.
    fn open_new(&mut self) -> Result<(), RotateError> {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o744)
            .create(log_dir(&self.path))
            .map_err(RotateError::Dir)?;
        let mut mode = 0o644;
        if let Ok(meta) = std::fs::metadata(&self.path) {
            mode = meta.permissions().mode() & 0o7777;
            let backup = backup_name(&self.path, self.cfg.local_time, SystemTime::now());
            std::fs::rename(&self.path, backup).map_err(RotateError::Rename)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(mode)
            .open(&self.path)
            .map_err(RotateError::Open)?;
        self.file = Some(file);
        self.size = 0;
        Ok(())
    }

    /// Wakes the mill (started on first use); a wake-up already pending is enough.
    fn mill(&mut self) {
        let mill = self.mill.get_or_insert_with(|| {
            let (tx, rx) = sync_channel::<()>(1);
            let (path, cfg) = (self.path.clone(), self.cfg.clone());
            std::thread::Builder::new()
                .name("log-rotation-mill".into())
                .spawn(move || {
                    while rx.recv().is_ok() {
                        let _ = mill_once(&path, &cfg);
                    }
                })
                .expect("spawn the log rotation mill");
            tx
        });
        match mill.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => self.mill = None,
        }
    }

    /// Runs the mill's work now (tests; the writer runs it in the background).
    pub fn mill_now(&self) -> std::io::Result<()> {
        mill_once(&self.path, &self.cfg)
    }
}

fn log_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `name` and `.ext` of a log file name (Go's `filepath.Ext`: from the last dot).
fn prefix_and_ext(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rfind('.') {
        Some(i) => (format!("{}-", &name[..i]), name[i..].to_string()),
        None => (format!("{name}-"), String::new()),
    }
}

/// lumberjack's `backupName`: `<dir>/<prefix>-<stamp><ext>`.
pub fn backup_name(path: &Path, local: bool, now: SystemTime) -> PathBuf {
    let (prefix, ext) = prefix_and_ext(path);
    let civil = if local {
        Civil::local(now)
    } else {
        Civil::utc(now)
    };
    log_dir(path).join(format!("{prefix}{}{ext}", civil.backup_stamp()))
}

/// Backups of `path` in its directory, newest first: (name, seconds since the epoch).
fn old_log_files(path: &Path, local: bool) -> std::io::Result<Vec<(String, i64)>> {
    let (prefix, ext) = prefix_and_ext(path);
    let gz = format!("{ext}.gz");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(log_dir(path))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let stamp = rest.strip_suffix(&gz).or_else(|| rest.strip_suffix(&ext));
        if let Some(t) = stamp.and_then(|s| parse_backup_stamp(s, local)) {
            files.push((name, t));
        }
    }
    files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    Ok(files)
}

/// lumberjack's `millRunOnce`: remove what `maxbackups` and `maxage` exclude, then gzip
/// the remaining backups when `compress`.
fn mill_once(path: &Path, cfg: &RotationConfig) -> std::io::Result<()> {
    if cfg.max_backups == 0 && cfg.max_age == 0 && !cfg.compress {
        return Ok(());
    }
    let mut files = old_log_files(path, cfg.local_time)?;
    let mut remove = Vec::new();
    if cfg.max_backups > 0 && (cfg.max_backups as usize) < files.len() {
        let mut preserved = std::collections::HashSet::new();
        let mut remaining = Vec::new();
        for f in files {
            preserved.insert(f.0.trim_end_matches(".gz").to_string());
            if preserved.len() as i64 > cfg.max_backups {
                remove.push(f);
            } else {
                remaining.push(f);
            }
        }
        files = remaining;
    }
    if cfg.max_age > 0 {
        let now = Civil::utc(SystemTime::now()).unix_seconds();
        let cutoff = now - cfg.max_age.saturating_mul(86_400);
        let (old, keep): (Vec<_>, Vec<_>) = files.into_iter().partition(|f| f.1 < cutoff);
        remove.extend(old);
        files = keep;
    }
    let dir = log_dir(path);
    let mut result = Ok(());
    for (name, _) in &remove {
        if let Err(e) = std::fs::remove_file(dir.join(name)) {
            result = result.and(Err(e));
        }
    }
    if cfg.compress {
        for (name, _) in files.iter().filter(|f| !f.0.ends_with(".gz")) {
            let src = dir.join(name);
            if let Err(e) = compress_file(&src, &dir.join(format!("{name}.gz"))) {
                result = result.and(Err(e));
            }
        }
    }
    result
}

/// lumberjack's `compressLogFile`: gzip `src` into `dst` (same mode), then remove `src`.
fn compress_file(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut input = File::open(src)?;
    let mode = input.metadata()?.permissions().mode() & 0o7777;
    let out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(dst)?;
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let done = std::io::copy(&mut input, &mut gz).and_then(|_| gz.finish().map(drop));
    if let Err(e) = done {
        let _ = std::fs::remove_file(dst);
        return Err(e);
    }
    std::fs::remove_file(src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn outputs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rotation_needs_exactly_one_file_output() {
        assert!(check_rotation_outputs(&outputs(&["a.log"])).is_ok());
        assert!(check_rotation_outputs(&outputs(&["a.log", "stderr"])).is_ok());
        // etcd lets two non-file outputs through (zap then has no file to rotate).
        assert!(check_rotation_outputs(&outputs(&["stderr", "stdout"])).is_ok());
        for bad in [&["stderr"][..], &["default"], &["a.log", "b.log"]] {
            assert_eq!(
                check_rotation_outputs(&outputs(bad)),
                Err(RotationConfigError::InvalidLogOutput),
                "{bad:?}"
            );
        }
        assert_eq!(
            RotationConfigError::InvalidLogOutput.to_string(),
            "--log-outputs requires a single file path when --log-rotate-config-json is defined"
        );
    }

    #[test]
    fn etcds_default_config_decodes() {
        let cfg = RotationConfig::from_json(DEFAULT_ROTATION_CONFIG_JSON).unwrap();
        assert_eq!(cfg, RotationConfig::default());
        assert_eq!(cfg.max_bytes(), 100 * MEGABYTE);
    }

    #[test]
    fn options_decode_as_go_does() {
        let cfg = RotationConfig::from_json(
            r#"{"MaxSize": 1, "maxbackups": 3, "maxage": null, "LocalTime": true, "compress": true, "other": [1]}"#,
        )
        .unwrap();
        let want = RotationConfig {
            max_size: 1,
            max_age: 0,
            max_backups: 3,
            local_time: true,
            compress: true,
        };
        assert_eq!(cfg, want);
        // Not given: lumberjack's zero value, which it reads as 100 MiB.
        let empty = RotationConfig::from_json("{}").unwrap();
        assert_eq!((empty.max_size, empty.max_bytes()), (0, 100 * MEGABYTE));
    }

    #[test]
    fn errors_are_etcds() {
        let cases = [
            (
                r#"{"maxsize":"a"}"#,
                "invalid log rotation config: json: cannot unmarshal string into Go struct field logRotationConfig.maxsize of type int",
            ),
            (
                r#"{"maxage":1.5}"#,
                "invalid log rotation config: json: cannot unmarshal number 1.5 into Go struct field logRotationConfig.maxage of type int",
            ),
            (
                r#"{"compress":1, "maxsize":"a"}"#,
                "invalid log rotation config: json: cannot unmarshal number into Go struct field logRotationConfig.compress of type bool",
            ),
            (
                r#"{"filename":false}"#,
                "invalid log rotation config: json: cannot unmarshal bool into Go struct field logRotationConfig.filename of type string",
            ),
            (
                "[]",
                "invalid log rotation config: json: cannot unmarshal array into Go value of type embed.logRotationConfig",
            ),
            (
                r#"{"maxsize":1"#,
                "improperly formatted log rotation config: unexpected end of JSON input",
            ),
            (
                "{maxsize:1}",
                "improperly formatted log rotation config: invalid character 'm' looking for beginning of object key string",
            ),
        ];
        for (json, want) in cases {
            let got = RotationConfig::from_json(json).expect_err(json);
            assert_eq!(got.to_string(), want, "{json}");
        }
    }

    #[test]
    fn backup_names_are_lumberjacks() {
        let t = UNIX_EPOCH + Duration::new(1_764_074_320, 350_999_000);
        assert_eq!(
            backup_name(Path::new("/var/log/etcd.log"), false, t),
            PathBuf::from("/var/log/etcd-2025-11-25T12-38-40.350.log")
        );
        assert_eq!(
            backup_name(Path::new("chorus"), false, t),
            PathBuf::from("./chorus-2025-11-25T12-38-40.350")
        );
    }

    fn small() -> RotationConfig {
        RotationConfig {
            max_size: 1,
            ..RotationConfig::default()
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_that_would_pass_maxsize_rotates_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chorus.log");
        let mut f = RotatingFile::new(&path, small());
        let line = vec![b'x'; 600 * 1024];
        f.write_line(&line).unwrap();
        f.write_line(&line).unwrap();
        let files = names(dir.path());
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[0].starts_with("chorus-") && files[0].ends_with(".log"));
        assert_eq!(files[1], "chorus.log");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 600 * 1024);
        let too_long = vec![b'x'; 2 * 1024 * 1024];
        assert_eq!(
            f.write_line(&too_long).unwrap_err().to_string(),
            "write length 2097152 exceeds maximum file size 1048576"
        );
    }

    #[test]
    fn an_existing_file_is_appended_to_until_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chorus.log");
        std::fs::write(&path, "old\n").unwrap();
        RotatingFile::new(&path, small())
            .write_line(b"new\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
    }

    #[test]
    fn the_mill_keeps_maxbackups_and_compresses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        for stamp in [
            "2025-01-01T00-00-00.000",
            "2025-01-02T00-00-00.000",
            "2025-01-03T00-00-00.000",
        ] {
            std::fs::write(dir.path().join(format!("m-{stamp}.log")), stamp).unwrap();
        }
        std::fs::write(dir.path().join("other.log"), "x").unwrap();
        let cfg = RotationConfig {
            max_backups: 2,
            compress: true,
            ..small()
        };
        RotatingFile::new(&path, cfg).mill_now().unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "m-2025-01-02T00-00-00.000.log.gz",
                "m-2025-01-03T00-00-00.000.log.gz",
                "other.log"
            ]
        );
        let gz = File::open(dir.path().join("m-2025-01-03T00-00-00.000.log.gz")).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut text).unwrap();
        assert_eq!(text, "2025-01-03T00-00-00.000");
    }

    #[test]
    fn the_mill_removes_backups_older_than_maxage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        let recent = backup_name(&path, false, SystemTime::now());
        std::fs::write(&recent, "").unwrap();
        std::fs::write(dir.path().join("m-2001-01-01T00-00-00.000.log"), "").unwrap();
        let cfg = RotationConfig {
            max_age: 1,
            ..small()
        };
        RotatingFile::new(&path, cfg).mill_now().unwrap();
        let recent_name = recent.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(names(dir.path()), [recent_name]);
    }
}
