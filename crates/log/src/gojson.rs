//! Just enough of Go's `encoding/json` to read `--log-rotation-config-json` as etcd does:
//! the syntax check with Go's error messages (`unexpected end of JSON input`,
//! `invalid character 'x' looking for beginning of value`, ...) and a value tree to decode.

/// A JSON value (numbers keep their literal, as Go decodes them per target type).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Go's name for the kind in an `UnmarshalTypeError`.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "bool",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }
}

/// A Go `*json.SyntaxError` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

/// Parses `s` as Go's `json.Unmarshal` checks it first (`checkValid`).
pub fn parse(s: &str) -> Result<Json, SyntaxError> {
    let mut p = Parser {
        b: s.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.space();
    match p.peek() {
        None => Ok(v),
        Some(c) => Err(p.invalid(c, "after top-level value")),
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

/// Go's `quoteChar`.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_string(),
        b'"' => "'\"'".to_string(),
        c => {
            let ch = char::from(c);
            let inner = match ch {
                '\x07' => "\\a".to_string(),
                '\x08' => "\\b".to_string(),
                '\x0c' => "\\f".to_string(),
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                '\t' => "\\t".to_string(),
                '\x0b' => "\\v".to_string(),
                '\\' => "\\\\".to_string(),
                c if c.is_control() && (c as u32) < 0x80 => format!("\\x{:02x}", c as u32),
                c if c.is_control() => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            };
            format!("'{inner}'")
        }
    }
}

const MAX_DEPTH: usize = 10_000;

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eof() -> SyntaxError {
        SyntaxError("unexpected end of JSON input".to_string())
    }

    fn invalid(&self, c: u8, context: &str) -> SyntaxError {
        SyntaxError(format!("invalid character {} {context}", quote_char(c)))
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    /// The next byte, or Go's end-of-input error.
    fn next(&mut self) -> Result<u8, SyntaxError> {
        let c = self.peek().ok_or_else(Self::eof)?;
        self.i += 1;
        Ok(c)
    }

    fn value(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(SyntaxError("exceeded max depth".to_string()));
        }
        self.space();
        let c = self.next()?;
        match c {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(Json::String),
            b'-' | b'0'..=b'9' => self.number(c),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            c => Err(self.invalid(c, "looking for beginning of value")),
        }
    }

    fn literal(&mut self, word: &'static str, v: Json) -> Result<Json, SyntaxError> {
        for expected in word.bytes().skip(1) {
            let c = self.next()?;
            if c != expected {
                let ctx = format!("in literal {word} (expecting {})", quote_char(expected));
                return Err(self.invalid(c, &ctx));
            }
        }
        Ok(v)
    }

    fn object(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        let mut fields = Vec::new();
        self.space();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.space();
            match self.next()? {
                b'"' => {}
                c => return Err(self.invalid(c, "looking for beginning of object key string")),
            }
            let key = self.string()?;
            self.space();
            match self.next()? {
                b':' => {}
                c => return Err(self.invalid(c, "after object key")),
            }
            fields.push((key, self.value(depth + 1)?));
            self.space();
            match self.next()? {
                b',' => {}
                b'}' => return Ok(Json::Object(fields)),
                c => return Err(self.invalid(c, "after object key:value pair")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        let mut items = Vec::new();
        self.space();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.space();
            match self.next()? {
                b',' => {}
                b']' => return Ok(Json::Array(items)),
                c => return Err(self.invalid(c, "after array element")),
            }
        }
    }

    /// After the opening quote: the decoded string.
    fn string(&mut self) -> Result<String, SyntaxError> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.next()? {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => self.escape(&mut out)?,
                c if c < 0x20 => return Err(self.invalid(c, "in string literal")),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), SyntaxError> {
        let c = self.next()?;
        let simple = match c {
            b'b' => Some(b'\x08'),
            b'f' => Some(b'\x0c'),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'\\' | b'/' | b'"' => Some(c),
            b'u' => None,
            c => return Err(self.invalid(c, "in string escape code")),
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        let mut code = 0u32;
        for _ in 0..4 {
            let c = self.next()?;
            let digit = char::from(c)
                .to_digit(16)
                .ok_or_else(|| self.invalid(c, "in \\u hexadecimal character escape"))?;
            code = code * 16 + digit;
        }
        let ch = char::from_u32(code).unwrap_or('\u{fffd}');
        out.extend_from_slice(ch.to_string().as_bytes());
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }

    /// A byte that must follow in a number; end of input is Go's EOF error.
    fn need_digit(&mut self, context: &str) -> Result<(), SyntaxError> {
        match self.next()? {
            b'0'..=b'9' => Ok(()),
            c => Err(self.invalid(c, context)),
        }
    }

    fn number(&mut self, first: u8) -> Result<Json, SyntaxError> {
        let start = self.i - 1;
        let lead = if first == b'-' { self.next()? } else { first };
        match lead {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            c => return Err(self.invalid(c, "in numeric literal")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.need_digit("after decimal point in numeric literal")?;
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.need_digit("in exponent of numeric literal")?;
            self.digits();
        }
        let literal = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
        Ok(Json::Number(literal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        parse(s).expect_err(s).0
    }

    #[test]
    fn syntax_errors_read_as_gos() {
        let cases = [
            ("", "unexpected end of JSON input"),
            ("{\"maxsize\":1", "unexpected end of JSON input"),
            ("x", "invalid character 'x' looking for beginning of value"),
            (
                "{,}",
                "invalid character ',' looking for beginning of object key string",
            ),
            (
                "{\"a\":1,}",
                "invalid character '}' looking for beginning of object key string",
            ),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1 \"b\"}",
                "invalid character '\"' after object key:value pair",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            ("{} x", "invalid character 'x' after top-level value"),
            ("tru", "unexpected end of JSON input"),
            (
                "trUe",
                "invalid character 'U' in literal true (expecting 'u')",
            ),
            (
                "nul1",
                "invalid character '1' in literal null (expecting 'l')",
            ),
            ("-x", "invalid character 'x' in numeric literal"),
            (
                "1.x",
                "invalid character 'x' after decimal point in numeric literal",
            ),
            ("1e+", "unexpected end of JSON input"),
            (
                "1ex",
                "invalid character 'x' in exponent of numeric literal",
            ),
            ("01", "invalid character '1' after top-level value"),
            ("\"a\\qb\"", "invalid character 'q' in string escape code"),
            (
                "\"\\u12G4\"",
                "invalid character 'G' in \\u hexadecimal character escape",
            ),
            ("\"a\nb\"", "invalid character '\\n' in string literal"),
            (
                "'a'",
                "invalid character '\\'' looking for beginning of value",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(err(input), want, "{input:?}");
        }
    }

    #[test]
    fn values_parse() {
        let v = parse(r#" {"maxsize": 100, "a": [true, null, "x\u00e9\n"], "b": -1.5e3} "#)
            .expect("valid");
        assert_eq!(
            v,
            Json::Object(vec![
                ("maxsize".into(), Json::Number("100".into())),
                (
                    "a".into(),
                    Json::Array(vec![
                        Json::Bool(true),
                        Json::Null,
                        Json::String("xé\n".into())
                    ])
                ),
                ("b".into(), Json::Number("-1.5e3".into())),
            ])
        );
    }
}
