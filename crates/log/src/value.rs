//! An event's fields as zap encodes them: strings quoted with zap's escaping, integers
//! and booleans bare, floats as Go's `strconv 'f' -1` (`NaN`, `+Inf` and `-Inf` quoted),
//! string lists as JSON arrays ([`Strings`]).
//!
//! Field names: etcd's use dashes (`local-member-id`). A `tracing` field name may be a
//! string literal (`"local-member-id" = %id`), and identifiers are renamed: every `_`
//! becomes `-` (`local_member_id = %id` is written `"local-member-id"`).

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
    Strings(Vec<String>),
}

/// A list of strings written as a JSON array, as `zap.Strings` does:
/// `tracing::info!(listen_peer_urls = ?chorus_log::Strings(&urls), "...")`.
/// Other subscribers see its `Debug` form, a Rust list.
pub struct Strings<'a, T: fmt::Display>(pub &'a [T]);

thread_local! {
    /// Set by [`Strings`]'s `Debug` while the visitor formats it: how the visitor learns
    /// that a `dyn Debug` value is a list (the content of a value cannot forge this).
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

impl<T: fmt::Display> fmt::Debug for Strings<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.debug_list().entries(items.iter()).finish()?;
        CAPTURED.with(|c| *c.borrow_mut() = Some(items));
        Ok(())
    }
}

/// The message and fields of one event, in the order they were given.
#[derive(Debug, Default)]
pub struct Fields {
    pub message: String,
    pub fields: Vec<(String, Value)>,
}

/// etcd's dashed names from Rust identifiers (`local_member_id` -> `local-member-id`).
pub fn field_name(name: &str) -> String {
    name.replace('_', "-")
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::Str(s)) => self.message = s,
            (name, value) => self.fields.push((field_name(name), value)),
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push(field, Value::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.push(field, Value::U128(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Str(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        CAPTURED.with(|c| c.borrow_mut().take());
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        match CAPTURED.with(|c| c.borrow_mut().take()) {
            Some(list) => self.push(field, Value::Strings(list)),
            None => self.push(field, Value::Str(s)),
        }
    }
}

/// Appends `s` as a JSON string with zap's escaping: `\\`, `"`, `\n`, `\r`, `\t`, other
/// control bytes as `\u00XX`; everything else (including `<`, `>`, `&` and non-ASCII)
/// as it is.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u00{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.AppendFloat(f, 'f', -1, 64)`: the shortest decimal that round-trips,
/// never in exponent form; zap quotes the non-finite values.
fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "\"+Inf\"" } else { "\"-Inf\"" });
    } else {
        let _ = write!(out, "{v}");
    }
}

impl Value {
    /// Appends the value as zap's JSON encoder would; `spaced` is the console encoder's
    /// variant (`["a", "b"]`).
    pub fn push_json(&self, out: &mut String, spaced: bool) {
        match self {
            Value::Str(s) => push_json_str(out, s),
            Value::I64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::U64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::I128(v) => {
                let _ = write!(out, "{v}");
            }
            Value::U128(v) => {
                let _ = write!(out, "{v}");
            }
            Value::F64(v) => push_float(out, *v),
            Value::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
            Value::Strings(list) => {
                out.push('[');
                for (i, s) in list.iter().enumerate() {
                    if i > 0 {
                        out.push_str(if spaced { ", " } else { "," });
                    }
                    push_json_str(out, s);
                }
                out.push(']');
            }
        }
    }

    /// The value as plain text (capnslog lines): strings unquoted, lists as Go's `%v`.
    pub fn push_text(&self, out: &mut String) {
        match self {
            Value::Str(s) => out.push_str(s),
            Value::Strings(list) => {
                out.push('[');
                out.push_str(&list.join(" "));
                out.push(']');
            }
            other => other.push_json(out, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: Value) -> String {
        let mut s = String::new();
        v.push_json(&mut s, false);
        s
    }

    #[test]
    fn strings_are_escaped_as_zap_does() {
        let v = Value::Str("a\"b\\c\nd\re\tf\u{1}g<h>&é\u{2028}".into());
        assert_eq!(
            json(v),
            r#""a\"b\\c\nd\re\tf\u0001g<h>&é"#.to_owned() + "\u{2028}\""
        );
    }

    #[test]
    fn numbers_and_booleans_are_bare() {
        assert_eq!(json(Value::I64(-3)), "-3");
        assert_eq!(json(Value::U64(u64::MAX)), "18446744073709551615");
        assert_eq!(
            json(Value::U128(1 << 100)),
            "1267650600228229401496703205376"
        );
        assert_eq!(json(Value::Bool(true)), "true");
        assert_eq!(json(Value::F64(0.1)), "0.1");
        assert_eq!(json(Value::F64(1.0)), "1");
        assert_eq!(json(Value::F64(1e21)), "1000000000000000000000");
        assert_eq!(json(Value::F64(-2.5e-7)), "-0.00000025");
        assert_eq!(json(Value::F64(f64::NAN)), "\"NaN\"");
        assert_eq!(json(Value::F64(f64::INFINITY)), "\"+Inf\"");
        assert_eq!(json(Value::F64(f64::NEG_INFINITY)), "\"-Inf\"");
    }

    #[test]
    fn string_lists_are_arrays() {
        let v = Value::Strings(vec!["http://a:1".into(), "x\"y".into()]);
        assert_eq!(json(v.clone()), r#"["http://a:1","x\"y"]"#);
        let mut spaced = String::new();
        v.push_json(&mut spaced, true);
        assert_eq!(spaced, r#"["http://a:1", "x\"y"]"#);
        assert_eq!(json(Value::Strings(vec![])), "[]");
    }

    /// The fields of one event, through a real subscriber.
    fn fields_of(emit: impl FnOnce()) -> Fields {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt as _;
        struct Grab(Arc<Mutex<Fields>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Grab {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                event.record(&mut *self.0.lock().unwrap());
            }
        }
        let got = Arc::new(Mutex::new(Fields::default()));
        let subscriber = tracing_subscriber::registry().with(Grab(got.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        let mut f = got.lock().unwrap();
        std::mem::take(&mut *f)
    }

    #[test]
    fn fields_keep_their_types_order_and_dashed_names() {
        let urls = ["http://127.0.0.1:1".to_string()];
        let f = fields_of(|| {
            tracing::info!(
                local_member_id = %"8e9e",
                "cluster-id" = "cdf8",
                term = 2u64,
                delta = -1i64,
                ratio = 0.5,
                leader = true,
                urls = ?Strings(&urls),
                text = %"[\"x\"]",
                "a message {}", 1
            )
        });
        assert_eq!(f.message, "a message 1");
        let want = vec![
            ("local-member-id".to_string(), Value::Str("8e9e".into())),
            ("cluster-id".into(), Value::Str("cdf8".into())),
            ("term".into(), Value::U64(2)),
            ("delta".into(), Value::I64(-1)),
            ("ratio".into(), Value::F64(0.5)),
            ("leader".into(), Value::Bool(true)),
            ("urls".into(), Value::Strings(urls.to_vec())),
            // A plain value whose text looks like a list stays a string.
            ("text".into(), Value::Str("[\"x\"]".into())),
        ];
        assert_eq!(f.fields, want);
        assert_eq!(format!("{:?}", Strings(&urls)), "[\"http://127.0.0.1:1\"]");
    }

    #[test]
    fn identifiers_get_dashes() {
        assert_eq!(field_name("local_member_id"), "local-member-id");
        assert_eq!(field_name("user-name"), "user-name");
    }
}
