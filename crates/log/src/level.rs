//! zap's levels (`--log-level`) and how `tracing`'s map onto them.

use tracing::level_filters::LevelFilter;

/// zap's levels, lowest first, as `--log-level` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ZapLevel {
    Debug,
    Info,
    Warn,
    Error,
    DPanic,
    Panic,
    Fatal,
}

/// `--log-level` named no zap level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognized level: {0:?}")]
pub struct UnknownLevel(pub String);

impl ZapLevel {
    /// zap's `Level.Set`: the lower-case names (and their upper-case forms).
    pub fn parse(s: &str) -> Result<ZapLevel, UnknownLevel> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "debug" => ZapLevel::Debug,
            "info" | "" => ZapLevel::Info,
            "warn" => ZapLevel::Warn,
            "error" => ZapLevel::Error,
            "dpanic" => ZapLevel::DPanic,
            "panic" => ZapLevel::Panic,
            "fatal" => ZapLevel::Fatal,
            _ => return Err(UnknownLevel(s.to_owned())),
        })
    }

    /// zap's `LowercaseLevelEncoder`.
    pub fn as_str(self) -> &'static str {
        match self {
            ZapLevel::Debug => "debug",
            ZapLevel::Info => "info",
            ZapLevel::Warn => "warn",
            ZapLevel::Error => "error",
            ZapLevel::DPanic => "dpanic",
            ZapLevel::Panic => "panic",
            ZapLevel::Fatal => "fatal",
        }
    }

    /// The level an event of `tracing` level `l` is written at (`TRACE` as `debug`).
    pub fn of(l: &tracing::Level) -> ZapLevel {
        match *l {
            tracing::Level::ERROR => ZapLevel::Error,
            tracing::Level::WARN => ZapLevel::Warn,
            tracing::Level::INFO => ZapLevel::Info,
            _ => ZapLevel::Debug,
        }
    }

    /// The most verbose `tracing` level written at this `--log-level`. chorus emits no
    /// event above `error`, so `dpanic`, `panic` and `fatal` keep the errors (a superset
    /// of etcd's output at those levels); `trace` events are never written unless
    /// `RUST_LOG` asks for them.
    pub fn filter(self) -> LevelFilter {
        match self {
            ZapLevel::Debug => LevelFilter::DEBUG,
            ZapLevel::Info => LevelFilter::INFO,
            ZapLevel::Warn => LevelFilter::WARN,
            _ => LevelFilter::ERROR,
        }
    }

    /// journald's `PRIORITY` for this level (etcd's `journalWriter`).
    pub fn journal_priority(self) -> u8 {
        match self {
            ZapLevel::Debug => 7,
            ZapLevel::Info => 6,
            ZapLevel::Warn => 4,
            ZapLevel::Error => 3,
            ZapLevel::DPanic | ZapLevel::Panic | ZapLevel::Fatal => 2,
        }
    }

    /// capnslog's one-letter level (`D`, `I`, `W`, `E`, `C`).
    pub fn capnslog_char(self) -> char {
        match self {
            ZapLevel::Debug => 'D',
            ZapLevel::Info => 'I',
            ZapLevel::Warn => 'W',
            ZapLevel::Error => 'E',
            _ => 'C',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_etcd_level_parses_and_prints_lower_case() {
        for name in ["debug", "info", "warn", "error", "dpanic", "panic", "fatal"] {
            assert_eq!(ZapLevel::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(ZapLevel::parse("WARN"), Ok(ZapLevel::Warn));
        assert!(ZapLevel::parse("verbose").is_err());
    }

    #[test]
    fn tracing_levels_map_to_zap_levels() {
        assert_eq!(ZapLevel::of(&tracing::Level::TRACE), ZapLevel::Debug);
        assert_eq!(ZapLevel::of(&tracing::Level::WARN), ZapLevel::Warn);
        assert_eq!(ZapLevel::Debug.filter(), LevelFilter::DEBUG);
        assert_eq!(ZapLevel::Fatal.filter(), LevelFilter::ERROR);
        assert_eq!(ZapLevel::Warn.journal_priority(), 4);
        assert_eq!(ZapLevel::Fatal.journal_priority(), 2);
    }
}
