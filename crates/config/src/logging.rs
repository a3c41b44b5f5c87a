//! Logging flags: the `--log-output` / `--log-outputs` reconciliation done
//! while parsing, and the checks of etcd's `setupLogging`.

use super::config::{Config, Notice};
use super::error::ConfigError;
use super::goparse::{go_quote, go_quote_list};

/// The part of etcd's `setupLogging` that reconciles `--log-output` with `--log-outputs`.
pub(crate) fn reconcile_log_outputs(
    cfg: &mut Config,
    deprecated: Vec<String>,
    notices: &mut Vec<Notice>,
) -> Result<(), ConfigError> {
    let (len1, len2) = (deprecated.len(), cfg.log_outputs.len());
    if len1 != len2 {
        if len1 > len2 {
            notices.push(Notice::warn(
                "'--log-output' flag has been deprecated! Please use '--log-outputs'!",
            ));
            cfg.log_outputs = deprecated;
        }
        return Ok(());
    }
    if len1 > 1 {
        return Err(ConfigError::Invalid(
            "both '--log-output' and '--log-outputs' are set; only set '--log-outputs'".to_string(),
        ));
    }
    if len1 < 1 {
        return Err(ConfigError::Invalid(
            "either '--log-output' or '--log-outputs' flag must be set".to_string(),
        ));
    }
    if deprecated == cfg.log_outputs && deprecated[0] != "default" {
        return Err(ConfigError::Invalid(format!(
            "'--log-output={}' and '--log-outputs={}' are incompatible; only set --log-outputs",
            go_quote_list(&deprecated),
            go_quote_list(&cfg.log_outputs)
        )));
    }
    if deprecated != ["default"] {
        notices.push(Notice::warn(format!(
            "[WARNING] Deprecated '--log-output' flag is set to {}\nPlease use '--log-outputs' flag",
            go_quote_list(&deprecated)
        )));
    }
    Ok(())
}

impl Config {
    /// The logging half of etcd's `setupLogging` (the `--log-output` /
    /// `--log-outputs` reconciliation happens while parsing).
    pub(crate) fn validate_logging(&self, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
        self.deprecated_log_notices(notices);
        self.validate_logger()?;
        self.validate_log_rotation()?;
        match self.log_format.as_str() {
            "json" | "console" | "" => Ok(()),
            other => Err(ConfigError::Invalid(format!(
                "unknown log format: {other}, supported values json, console"
            ))),
        }
    }

    /// etcd 3.4's warnings about `--debug` and `--log-package-levels`.
    fn deprecated_log_notices(&self, notices: &mut Vec<Notice>) {
        if self.debug {
            notices.push(Notice::warn(format!(
                "[WARNING] Deprecated '--debug' flag is set to {} (use '--log-level=debug' instead",
                self.debug
            )));
            if self.log_level != "debug" {
                notices.push(Notice::warn(format!(
                    "[WARNING] Deprecated '--debug' flag is set to {} with inconsistent '--log-level={}' flag",
                    self.debug, self.log_level
                )));
            }
        }
        if !self.log_package_levels.is_empty() {
            notices.push(Notice::warn(format!(
                "[WARNING] Deprecated '--log-package-levels={}' flag is set; use '--logger=zap' flag instead",
                self.log_package_levels
            )));
        }
    }

    /// The `--logger` switch: zap (the default, as in etcd 3.5+) or capnslog (etcd
    /// 3.4's text; etcd 3.5+ refuses it, chorus keeps it), and what each allows in
    /// `--log-outputs`.
    fn validate_logger(&self) -> Result<(), ConfigError> {
        let inv = |m: String| Err(ConfigError::Invalid(m));
        match self.logger.as_str() {
            "capnslog" => {
                if !self.debug {
                    check_log_level(&self.log_level)?;
                }
                if self.log_outputs.len() != 1 {
                    return inv(format!(
                        "--logger=capnslog supports only 1 value in '--log-outputs', got {}",
                        go_quote_list(&self.log_outputs)
                    ));
                }
                let out = &self.log_outputs[0];
                if !matches!(out.as_str(), "default" | "stderr" | "stdout") {
                    return inv(format!(
                        "unknown log-output {} (only supports \"default\", \"stderr\", \"stdout\")",
                        go_quote(out)
                    ));
                }
            }
            "zap" => {
                if self.log_outputs.len() > 1 && self.log_outputs.iter().any(|v| v == "default") {
                    return inv("multi logoutput for \"default\" is not supported yet".to_string());
                }
                let journal = self.log_outputs.iter().any(|v| v == "systemd/journal");
                if journal
                    && self.log_outputs.len() > 1
                    && self.log_outputs.iter().any(|v| v != "default")
                {
                    return inv(format!(
                        "running with systemd/journal but other '--log-outputs' values ({}) are configured with 'default'; override 'default' value with something else",
                        go_quote_list(&self.log_outputs)
                    ));
                }
                check_log_level(&self.log_level)?;
            }
            other => return inv(format!("unknown logger option {}", go_quote(other))),
        }
        Ok(())
    }

    /// etcd 3.5's `setupLogRotation`: rotation needs exactly one file among the
    /// outputs, and `--log-rotation-config-json` must decode as lumberjack's options
    /// (etcd's messages, Go's JSON errors).
    fn validate_log_rotation(&self) -> Result<(), ConfigError> {
        if !self.enable_log_rotation {
            return Ok(());
        }
        chorus_log::check_rotation_outputs(&self.log_outputs)
            .and_then(|()| chorus_log::RotationConfig::from_json(&self.log_rotation_config_json))
            .map(drop)
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

fn check_log_level(level: &str) -> Result<(), ConfigError> {
    match level {
        "debug" | "info" | "warn" | "error" | "dpanic" | "panic" | "fatal" => Ok(()),
        // etcd 3.4 panics here (`panic: unknown level "x"`, exit 2).
        other => Err(ConfigError::Invalid(format!(
            "unknown level {} (--log-level only supports debug, info, warn, error, panic, or fatal)",
            go_quote(other)
        ))),
    }
}
