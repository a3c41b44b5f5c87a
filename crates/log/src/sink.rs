//! Where lines go: `--log-outputs` as etcd reads it (`default` and `stderr` are stderr,
//! `stdout`, `systemd/journal`, anything else a file appended to, or rotated when
//! `--enable-log-rotation`). Every line is one `write` under the sink's lock, so lines
//! from different threads never interleave.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::journal::{go_errno, JournalSink, JournalUnavailable};
use crate::level::ZapLevel;
use crate::rotation::{RotatingFile, RotationConfig};

/// One `--log-outputs` value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Output {
    Stderr,
    Stdout,
    Journal,
    File(PathBuf),
}

impl Output {
    /// etcd's reading of a `--log-outputs` value.
    pub fn parse(value: &str) -> Output {
        match value {
            "default" | "stderr" => Output::Stderr,
            "stdout" => Output::Stdout,
            "systemd/journal" => Output::Journal,
            path => Output::File(PathBuf::from(path)),
        }
    }
}

/// A file output could not be opened (zap's message).
#[derive(Debug, thiserror::Error)]
#[error("couldn't open sink {path:?}: open {path}: {}", go_errno(.source))]
pub struct OpenError {
    pub path: String,
    pub source: std::io::Error,
}

/// An open output.
pub enum Sink {
    Stderr,
    Stdout,
    File(Mutex<File>),
    Rotating(Mutex<RotatingFile>),
    Journal(JournalSink),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Stderr => "Sink::Stderr",
            Sink::Stdout => "Sink::Stdout",
            Sink::File(_) => "Sink::File",
            Sink::Rotating(_) => "Sink::Rotating",
            Sink::Journal(_) => "Sink::Journal",
        })
    }
}

/// Why the outputs could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Journal(#[from] JournalUnavailable),
}

fn open_append(path: &Path) -> Result<File, OpenError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| OpenError {
            path: path.display().to_string(),
            source,
        })
}

/// The name zap's `MergeOutputPaths` sorts an output by (`rotate:/...` for the file
/// lumberjack rotates).
fn zap_path(out: &Output, rotated: bool) -> String {
    match out {
        Output::Stderr => "stderr".to_string(),
        Output::Stdout => "stdout".to_string(),
        Output::Journal => String::new(),
        Output::File(p) if rotated => format!("rotate:/{}", p.display()),
        Output::File(p) => p.display().to_string(),
    }
}

/// Opens `outputs`, each once and in zap's order (`MergeOutputPaths` sorts them: an
/// absolute file path gets each line before stderr does): files at once (a rotated file
/// at its first line, as lumberjack does), the journal at `journal_socket`.
pub fn open_sinks(
    outputs: &[Output],
    rotation: Option<&RotationConfig>,
    journal_socket: &Path,
) -> Result<Vec<Sink>, SinkError> {
    let mut unique: Vec<&Output> = outputs.iter().collect();
    unique.sort_by_key(|o| zap_path(o, rotation.is_some()));
    unique.dedup();
    let mut sinks = Vec::with_capacity(unique.len());
    for out in unique {
        sinks.push(match (out, rotation) {
            (Output::Stderr, _) => Sink::Stderr,
            (Output::Stdout, _) => Sink::Stdout,
            (Output::Journal, _) => Sink::Journal(JournalSink::connect(journal_socket)?),
            (Output::File(path), Some(cfg)) => {
                Sink::Rotating(Mutex::new(RotatingFile::new(path, cfg.clone())))
            }
            (Output::File(path), None) => Sink::File(Mutex::new(open_append(path)?)),
        });
    }
    Ok(sinks)
}

impl Sink {
    /// Writes one line (errors are dropped, as a logger has nowhere to report them).
    pub fn write(&self, line: &str, level: ZapLevel, package: &str) {
        let bytes = line.as_bytes();
        let _ = match self {
            Sink::Stderr => std::io::stderr().lock().write_all(bytes),
            Sink::Stdout => std::io::stdout().lock().write_all(bytes),
            Sink::File(f) => f.lock().map_or(Ok(()), |mut f| f.write_all(bytes)),
            Sink::Rotating(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_line(bytes);
                }
                Ok(())
            }
            Sink::Journal(j) => {
                j.write(level.journal_priority(), line, package);
                Ok(())
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_read_as_etcds() {
        assert_eq!(Output::parse("default"), Output::Stderr);
        assert_eq!(Output::parse("stderr"), Output::Stderr);
        assert_eq!(Output::parse("stdout"), Output::Stdout);
        assert_eq!(Output::parse("systemd/journal"), Output::Journal);
        assert_eq!(Output::parse("a.log"), Output::File("a.log".into()));
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_refused_with_zaps_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/x.log");
        let err = open_sinks(
            &[Output::File(path.clone())],
            None,
            Path::new("/nonexistent"),
        )
        .unwrap_err();
        let p = path.display();
        assert_eq!(
            err.to_string(),
            format!("couldn't open sink \"{p}\": open {p}: no such file or directory")
        );
    }

    #[test]
    fn outputs_are_written_in_zaps_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let outs = [Output::Stdout, Output::Stderr, Output::File(path)];
        let sinks = open_sinks(&outs, None, Path::new("/nonexistent")).unwrap();
        let kinds: Vec<String> = sinks.iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(kinds, ["Sink::File", "Sink::Stderr", "Sink::Stdout"]);
    }

    #[test]
    fn files_are_appended_to_and_duplicates_merged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "old\n").unwrap();
        let outs = [Output::File(path.clone()), Output::File(path.clone())];
        let sinks = open_sinks(&outs, None, Path::new("/nonexistent")).unwrap();
        assert_eq!(sinks.len(), 1);
        sinks[0].write("new\n", ZapLevel::Info, "x");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
    }
}
