//! Decoding one value into a `Config` field with the JSON typing rules of
//! Go's `encoding/json` (which etcd runs on the YAML converted to JSON), and
//! the error texts it produces.

use std::path::Path;

use super::super::config::Config;
use super::super::error::ConfigError;
use super::super::flags::{set_field, FieldMut, FlagSpec, Kind};
use super::super::goparse::{self, go_quote};
use super::value::{integral, json_kind, yaml11_bool, Value};

/// Where errors point: the file, for the ` (config file "...")` suffix.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
}

impl Ctx<'_> {
    pub(crate) fn suffix(&self) -> String {
        format!(
            " (config file {})",
            go_quote(&self.path.display().to_string())
        )
    }

    /// `json: cannot unmarshal <what> into Go struct field <strct>.<key> of type <ty>`.
    pub(crate) fn type_error(&self, what: &str, strct: &str, key: &str, ty: &str) -> ConfigError {
        ConfigError::Invalid(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {what} into Go struct field {strct}.{key} of type {ty}{}",
            self.suffix()
        ))
    }

    /// A warning for a key etcd ignores without a word.
    pub(crate) fn unknown_key(&self, key: &str) -> String {
        format!(
            "unknown key {} in config file {} is ignored (as etcd does)",
            go_quote(key),
            go_quote(&self.path.display().to_string())
        )
    }
}

/// Which Go struct etcd decodes a top-level key into (only visible in errors).
pub(crate) fn go_struct(name: &str) -> &'static str {
    if name == "proxy" || name == "discovery-fallback" || name.starts_with("proxy-") {
        "configProxy"
    } else {
        "configYAML"
    }
}

/// Decode a scalar into `spec`'s field; `key` is the dotted path Go's errors
/// name, `strct` the innermost Go struct.
pub(crate) fn apply_value(
    ctx: &Ctx<'_>,
    spec: &FlagSpec,
    (strct, key): (&str, &str),
    v: &Value,
    cfg: &mut Config,
) -> Result<(), ConfigError> {
    let ty = spec.kind.go_type();
    let mismatch = |v: &Value| ctx.type_error(json_kind(v), strct, key, ty);
    let access = spec.access.expect("yaml key with a Config field");
    match spec.kind {
        Kind::Bool => {
            let b = match v {
                Value::Bool(b) => *b,
                Value::String(s) => yaml11_bool(s).ok_or_else(|| mismatch(v))?,
                _ => return Err(mismatch(v)),
            };
            if let FieldMut::Bool(f) = access(cfg) {
                *f = b;
            }
        }
        Kind::Uint | Kind::Uint64 | Kind::Uint32 | Kind::Int | Kind::Int64 | Kind::Duration => {
            let Value::Number(n) = v else {
                return Err(mismatch(v));
            };
            let bad = || ctx.type_error(&format!("number {n}"), strct, key, ty);
            let i = integral(n).ok_or_else(bad)?;
            set_integer(ctx, key, access(cfg), i).map_err(|e| e.unwrap_or_else(bad))?;
        }
        Kind::Str => {
            let Value::String(s) = v else {
                return Err(mismatch(v));
            };
            set_field(Kind::Str, access(cfg), s).expect("string field");
        }
        _ => unreachable!("apply_value on {:?}", spec.kind),
    }
    Ok(())
}

/// Store an integral JSON number; `Err(None)` is Go's range error.
fn set_integer(
    ctx: &Ctx<'_>,
    key: &str,
    field: FieldMut<'_>,
    i: i128,
) -> Result<(), Option<ConfigError>> {
    match field {
        FieldMut::U64(f) => *f = u64::try_from(i).map_err(|_| None)?,
        FieldMut::U32(f) => *f = u32::try_from(i).map_err(|_| None)?,
        FieldMut::I64(f) => *f = i64::try_from(i).map_err(|_| None)?,
        FieldMut::Dur(f) => {
            let nanos = i64::try_from(i).map_err(|_| None)?;
            *f = goparse::nanos_to_duration(nanos).ok_or_else(|| {
                Some(ConfigError::Invalid(format!(
                    "{key}: negative durations are not supported by chorus{}",
                    ctx.suffix()
                )))
            })?;
        }
        _ => unreachable!("numeric kind on non-numeric field"),
    }
    Ok(())
}

/// A `[]string` value.
pub(crate) fn string_list(
    ctx: &Ctx<'_>,
    (strct, key): (&str, &str),
    v: &Value,
) -> Result<Vec<String>, ConfigError> {
    let Value::Sequence(items) = v else {
        return Err(ctx.type_error(json_kind(v), strct, key, "[]string"));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(ctx.type_error(json_kind(other), strct, key, "string")),
        })
        .collect()
}

/// A `string` value.
pub(crate) fn string_value<'v>(
    ctx: &Ctx<'_>,
    (strct, key): (&str, &str),
    v: &'v Value,
) -> Result<&'v str, ConfigError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(ctx.type_error(json_kind(other), strct, key, "string")),
    }
}
