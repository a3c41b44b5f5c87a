//! The layer end to end: events through `tracing` into a file output.

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

fn flags<'a>(outputs: &'a [String], level: &'a str) -> LogFlags<'a> {
    LogFlags {
        logger: "zap",
        format: "json",
        level,
        outputs,
        enable_rotation: false,
        rotation_json: DEFAULT_ROTATION_CONFIG_JSON,
    }
}

/// Runs `emit` with `cfg`'s logger as the thread's default.
fn with_logger(cfg: &LogConfig, emit: impl FnOnce()) {
    let subscriber = tracing_subscriber::registry().with(cfg.layer().expect("layer"));
    tracing::subscriber::with_default(subscriber, emit);
}

fn config(path: &Path, level: &str) -> LogConfig {
    let outputs = [path.display().to_string()];
    let mut cfg = LogConfig::from_flags(&flags(&outputs, level)).expect("config");
    cfg.directives = None;
    cfg
}

fn lines(path: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    std::fs::read_to_string(path)
        .expect("log file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn events_become_zap_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etcd.log");
    let cfg = config(&path, "info");
    let urls = ["http://127.0.0.1:2379".to_string()];
    let line = line!() + 3;
    with_logger(&cfg, || {
        tracing::debug!("not at info");
        tracing::info!(
            local_member_id = %"8e9e05c52164694d",
            "advertise-client-urls" = ?Strings(&urls),
            took = %GoDuration(std::time::Duration::from_millis(1500)),
            "published local member to cluster through raft"
        );
        tracing::warn!(error = %"boom", "apply request took too long");
    });
    let got = lines(&path);
    assert_eq!(got.len(), 2, "{got:?}");
    let keys: Vec<&str> = got[0].keys().map(String::as_str).collect();
    let mut want = vec!["level", "ts", "caller", "msg"];
    want.extend(["local-member-id", "advertise-client-urls", "took"]);
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "serde_json's map is sorted");
    assert_eq!(got[0]["level"], "info");
    assert_eq!(got[0]["caller"], format!("log/tests.rs:{line}"));
    assert_eq!(got[0]["advertise-client-urls"], serde_json::json!(urls));
    assert_eq!(got[0]["took"], "1.5s");
    assert_eq!(got[1]["level"], "warn");
    assert_eq!(got[1]["error"], "boom");
    // The key order is zap's, in the text.
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap();
    let pos: Vec<usize> = want
        .iter()
        .map(|k| first.find(&format!("\"{k}\":")).expect(k))
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{first}");
    let ts = got[0]["ts"].as_str().unwrap();
    // `2026-12-06T13:09:01.387Z`, or `+0100` in place of `Z` outside UTC.
    assert!(ts.len() == 24 || ts.len() == 28, "{ts}");
    assert_eq!(&ts[10..11], "T");
    assert_eq!(&ts[19..20], ".");
}

#[test]
fn named_targets_are_zap_logger_names_and_debug_is_kept_at_debug() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etcd.log");
    let mut cfg = config(&path, "debug");
    cfg.named_targets = vec!["raft".into()];
    with_logger(&cfg, || {
        tracing::info!(target: "raft", "8e9e05c52164694d became leader at term 2");
        tracing::debug!(user_name = "bob", token = "abc.5", "authenticated a user");
        tracing::debug!(target: "h2", "a dependency's debug line");
        tracing::trace!("never at debug");
    });
    let got = lines(&path);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["logger"], "raft");
    assert_eq!(got[0]["msg"], "8e9e05c52164694d became leader at term 2");
    assert_eq!(got[1]["level"], "debug");
    assert_eq!(got[1]["user-name"], "bob");
    assert!(!got[1].contains_key("logger"));
}

#[test]
fn rust_log_directives_replace_the_level() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etcd.log");
    let mut cfg = config(&path, "info");
    cfg.directives = Some("warn,h2=debug".into());
    with_logger(&cfg, || {
        tracing::info!("filtered");
        tracing::debug!(target: "h2", "kept");
    });
    let got = lines(&path);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["msg"], "kept");
}

#[test]
fn console_and_capnslog_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etcd.log");
    let outputs = [path.display().to_string()];
    for (logger, format) in [("zap", "console"), ("capnslog", "json")] {
        let f = LogFlags {
            logger,
            format,
            ..flags(&outputs, "info")
        };
        with_logger(&LogConfig::from_flags(&f).unwrap(), || {
            tracing::info!(
                address = "127.0.0.1:2379",
                "serving client traffic securely"
            );
        });
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let got: Vec<&str> = text.lines().collect();
    let console: Vec<&str> = got[0].split('\t').collect();
    assert_eq!(console.len(), 5, "{}", got[0]);
    assert_eq!(console[1], "info");
    assert!(console[2].starts_with("log/tests.rs:"));
    assert_eq!(console[3], "serving client traffic securely");
    assert_eq!(console[4], "{\"address\": \"127.0.0.1:2379\"}");
    assert!(
        got[1].ends_with(" I | log: serving client traffic securely address=127.0.0.1:2379"),
        "{}",
        got[1]
    );
}

#[test]
fn flags_are_checked_as_etcd_does() {
    let outputs = ["stderr".to_string()];
    let bad_level = LogConfig::from_flags(&flags(&outputs, "verbose")).unwrap_err();
    assert!(matches!(bad_level, LogError::Level(_)));
    let f = LogFlags {
        format: "text",
        ..flags(&outputs, "info")
    };
    assert_eq!(
        LogConfig::from_flags(&f).unwrap_err().to_string(),
        "unknown log format: text, supported values json, console"
    );
    let f = LogFlags {
        enable_rotation: true,
        ..flags(&outputs, "info")
    };
    assert_eq!(
        LogConfig::from_flags(&f).unwrap_err().to_string(),
        "--log-outputs requires a single file path when --log-rotate-config-json is defined"
    );
    let none: [String; 0] = [];
    let cfg = LogConfig::from_flags(&flags(&none, "info")).unwrap();
    assert_eq!(cfg.outputs, [Output::Stderr]);
}

#[test]
fn a_rotated_output_rotates_through_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etcd.log");
    let outputs = [path.display().to_string(), "stdout".to_string()];
    let f = LogFlags {
        enable_rotation: true,
        rotation_json: r#"{"maxsize": 1, "maxbackups": 1}"#,
        ..flags(&outputs, "info")
    };
    let mut cfg = LogConfig::from_flags(&f).unwrap();
    cfg.outputs.retain(|o| matches!(o, Output::File(_)));
    let filler = "x".repeat(64 * 1024);
    with_logger(&cfg, || {
        for i in 0..40 {
            tracing::info!(i, filler = %filler, "filling the log");
        }
    });
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    assert!(names
        .iter()
        .any(|n| n.starts_with("etcd-") && n.ends_with(".log")));
    assert!(std::fs::metadata(&path).unwrap().len() <= 1024 * 1024);
}

#[test]
fn a_missing_journal_fails_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = ["systemd/journal".to_string()];
    let mut cfg = LogConfig::from_flags(&flags(&outputs, "info")).unwrap();
    cfg.journal_socket = dir.path().join("socket");
    let err = cfg
        .layer::<tracing_subscriber::Registry>()
        .map(drop)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("can't find journal (dial unixgram "),
        "{err}"
    );
}

#[test]
fn the_journal_gets_json_lines_with_priorities() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("socket");
    let journald = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    let outputs = ["systemd/journal".to_string()];
    let mut cfg = LogConfig::from_flags(&flags(&outputs, "info")).unwrap();
    cfg.journal_socket = socket;
    with_logger(&cfg, || tracing::warn!(term = 2u64, "a warning"));
    let mut buf = vec![0u8; 8192];
    let n = journald.recv(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("PRIORITY=4\nMESSAGE\n"), "{text}");
    assert!(
        text.contains("\"msg\":\"a warning\",\"term\":2}\n\nPACKAGE=log\n"),
        "{text}"
    );
}
