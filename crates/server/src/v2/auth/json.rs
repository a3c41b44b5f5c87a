//! Go's `encoding/json` as etcd's v2 auth handlers meet it: `json.NewDecoder(body).Decode`
//! reads the first JSON value of a body (whatever follows it is never looked at), checks its
//! whole syntax first (nesting up to 10,000 levels), then fills a struct: field names match
//! case-insensitively (Unicode simple folding, so `ROLEſ` is `roles`), unknown fields are
//! skipped, a later duplicate field decodes into what the earlier one left, `null` leaves a
//! string as it was and clears a slice or pointer, and any type mismatch fails the decode.
//! Strings are unquoted as Go does: each invalid UTF-8 byte and each lone surrogate escape
//! becomes U+FFFD.
//!
//! [`first_value`] is the syntax check (iterative, so hostile nesting cannot exhaust the
//! stack); [`Cursor`] walks a checked value for the struct decoders in `model.rs`.

/// Go's `maxNestingDepth`.
const MAX_DEPTH: usize = 10_000;

/// The body is not one JSON value (syntax error, nothing there, too deep) or does not fit
/// the struct. etcd answers every such body alike ("Invalid JSON in request body.").
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON")]
pub struct JsonError;

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end of the string starting at `b[i] == '"'`.
fn scan_string(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    i += 1;
    loop {
        match *b.get(i).ok_or(JsonError)? {
            b'"' => return Ok(i + 1),
            b'\\' => match *b.get(i + 1).ok_or(JsonError)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = b.get(i + 2..i + 6).ok_or(JsonError)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(JsonError);
                    }
                    i += 6;
                }
                _ => return Err(JsonError),
            },
            c if c < 0x20 => return Err(JsonError),
            _ => i += 1,
        }
    }
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// The end of the number starting at `b[i]` (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`).
fn scan_number(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => i = digits(b, i),
        _ => return Err(JsonError),
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return Err(JsonError);
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return Err(JsonError);
        }
        i = end;
    }
    Ok(i)
}

/// A scalar (string, number, literal) at `b[i]`: its end.
fn scan_scalar(b: &[u8], i: usize) -> Result<usize, JsonError> {
    match b.get(i) {
        Some(b'"') => scan_string(b, i),
        Some(b't') if b[i..].starts_with(b"true") => Ok(i + 4),
        Some(b'f') if b[i..].starts_with(b"false") => Ok(i + 5),
        Some(b'n') if b[i..].starts_with(b"null") => Ok(i + 4),
        Some(b'-' | b'0'..=b'9') => scan_number(b, i),
        _ => Err(JsonError),
    }
}

/// An object key and its colon at `b[i]`; returns where the value starts.
fn scan_key(b: &[u8], i: usize) -> Result<usize, JsonError> {
    if b.get(i) != Some(&b'"') {
        return Err(JsonError);
    }
    let i = skip_ws(b, scan_string(b, i)?);
    if b.get(i) != Some(&b':') {
        return Err(JsonError);
    }
    Ok(skip_ws(b, i + 1))
}

/// Checks the syntax of the first JSON value in `b` (after white space) and returns it, as
/// Go's `json.Decoder` reads it. Nothing after the value is looked at.
pub fn first_value(b: &[u8]) -> Result<&[u8], JsonError> {
    first_value_span(b).map(|r| &b[r])
}

/// Go's `json.Unmarshal`: the whole input is one value, with only white space around it.
pub fn only_value(b: &[u8]) -> Result<&[u8], JsonError> {
    let r = first_value_span(b)?;
    if skip_ws(b, r.end) == b.len() {
        Ok(&b[r])
    } else {
        Err(JsonError)
    }
}

/// Where the first JSON value of `b` is (see [`first_value`]).
fn first_value_span(b: &[u8]) -> Result<std::ops::Range<usize>, JsonError> {
    let start = skip_ws(b, 0);
    let mut i = start;
    let mut open: Vec<u8> = Vec::new();
    loop {
        // A value starts at `i`.
        match b.get(i) {
            Some(&c @ (b'{' | b'[')) => {
                if open.len() == MAX_DEPTH {
                    return Err(JsonError);
                }
                open.push(c);
                i = skip_ws(b, i + 1);
                match (c, b.get(i)) {
                    (b'{', Some(b'}')) | (b'[', Some(b']')) => {
                        open.pop();
                        i += 1;
                    }
                    (b'{', _) => {
                        i = scan_key(b, i)?;
                        continue;
                    }
                    _ => continue,
                }
            }
            _ => i = scan_scalar(b, i)?,
        }
        // A value ended at `i`: close what it completes, or go on to the next one.
        loop {
            let Some(&top) = open.last() else {
                return Ok(start..i);
            };
            i = skip_ws(b, i);
            match (top, b.get(i)) {
                (b'{', Some(b',')) => {
                    i = scan_key(b, skip_ws(b, i + 1))?;
                    break;
                }
                (b'[', Some(b',')) => {
                    i = skip_ws(b, i + 1);
                    break;
                }
                (b'{', Some(b'}')) | (b'[', Some(b']')) => {
                    open.pop();
                    i += 1;
                }
                _ => return Err(JsonError),
            }
        }
    }
}

fn hex4(b: &[u8]) -> u32 {
    b.iter()
        .fold(0, |v, &c| v * 16 + (c as char).to_digit(16).unwrap_or(0))
}

/// Go's `unquote` of a checked string literal (quotes included).
fn unquote(lit: &[u8]) -> String {
    let body = &lit[1..lit.len() - 1];
    let mut out = String::with_capacity(body.len());
    let mut raw_start = 0;
    let mut i = 0;
    let flush = |out: &mut String, raw: &[u8]| {
        for chunk in raw.utf8_chunks() {
            out.push_str(chunk.valid());
            out.extend(chunk.invalid().iter().map(|_| char::REPLACEMENT_CHARACTER));
        }
    };
    while i < body.len() {
        if body[i] != b'\\' {
            i += 1;
            continue;
        }
        flush(&mut out, &body[raw_start..i]);
        let (c, used) = match body[i + 1] {
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => unicode_escape(&body[i..]),
            other => (other as char, 2),
        };
        out.push(c);
        i += used;
        raw_start = i;
    }
    flush(&mut out, &body[raw_start..]);
    out
}

/// `\uXXXX` (and a following `\uYYYY` when the two make a surrogate pair) at the start of
/// `s`: the character and the bytes used. A lone surrogate is U+FFFD, as in Go.
fn unicode_escape(s: &[u8]) -> (char, usize) {
    let hi = hex4(&s[2..6]);
    if !(0xD800..0xE000).contains(&hi) {
        return (char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER), 6);
    }
    if (0xD800..0xDC00).contains(&hi) && s.len() >= 12 && s[6] == b'\\' && s[7] == b'u' {
        let lo = hex4(&s[8..12]);
        if (0xDC00..0xE000).contains(&lo) {
            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return (char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER), 12);
        }
    }
    (char::REPLACEMENT_CHARACTER, 6)
}

/// Whether JSON object key `key` selects the Go struct field whose JSON name is `name`
/// (ASCII lower case): Go's case folding, in which `ſ` (U+017F) folds to `s` and the Kelvin
/// sign (U+212A) to `k`.
pub fn field_matches(key: &str, name: &str) -> bool {
    let folded = key.chars().map(|c| match c {
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    });
    folded.eq(name.chars())
}

/// A position in a checked JSON value (see [`first_value`]): the struct decoders walk it.
/// Every method assumes valid syntax and reports only type mismatches.
pub struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(checked: &'a [u8]) -> Cursor<'a> {
        Cursor { b: checked, i: 0 }
    }

    fn peek(&mut self) -> u8 {
        self.i = skip_ws(self.b, self.i);
        self.b.get(self.i).copied().unwrap_or(0)
    }

    /// Consumes a `null` if one is next.
    pub fn null(&mut self) -> bool {
        let is_null = self.peek() == b'n';
        if is_null {
            self.i += 4;
        }
        is_null
    }

    /// The string next; anything else is a type mismatch.
    pub fn string(&mut self) -> Result<String, JsonError> {
        if self.peek() != b'"' {
            return Err(JsonError);
        }
        let end = scan_string(self.b, self.i)?;
        let s = unquote(&self.b[self.i..end]);
        self.i = end;
        Ok(s)
    }

    /// Skips the value next (iteratively: strings are scanned, brackets counted).
    pub fn skip(&mut self) -> Result<(), JsonError> {
        let mut depth = 0usize;
        loop {
            match self.peek() {
                b'"' => self.i = scan_string(self.b, self.i)?,
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                    continue;
                }
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    self.i += 1;
                }
                b',' | b':' => {
                    self.i += 1;
                    continue;
                }
                _ => self.i = scan_scalar(self.b, self.i)?,
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }

    /// Calls `field` with each key of the object next (the cursor then at its value, which
    /// `field` must consume); anything else is a type mismatch.
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Cursor<'a>, &str) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        if self.peek() != b'{' {
            return Err(JsonError);
        }
        self.i += 1;
        loop {
            match self.peek() {
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                b',' => self.i += 1,
                _ => {
                    let key = self.string()?;
                    self.peek();
                    self.i += 1; // ':'
                    field(self, &key)?;
                }
            }
        }
    }

    /// Calls `element` with the index of each element of the array next; anything else is
    /// a type mismatch. Returns the number of elements.
    pub fn array(
        &mut self,
        mut element: impl FnMut(&mut Cursor<'a>, usize) -> Result<(), JsonError>,
    ) -> Result<usize, JsonError> {
        if self.peek() != b'[' {
            return Err(JsonError);
        }
        self.i += 1;
        let mut n = 0;
        loop {
            match self.peek() {
                b']' => {
                    self.i += 1;
                    return Ok(n);
                }
                b',' => self.i += 1,
                _ => {
                    element(self, n)?;
                    n += 1;
                }
            }
        }
    }

    /// Go decoding into a `string` field: a string replaces it, `null` leaves it.
    pub fn into_string(&mut self, s: &mut String) -> Result<(), JsonError> {
        if !self.null() {
            *s = self.string()?;
        }
        Ok(())
    }

    /// Go decoding into a `[]string` field: `null` makes it nil; an array is decoded into the
    /// slice that is there (a `null` element keeps what that element held, as in Go, whose
    /// slice keeps its backing array), then cut to the array's length.
    pub fn into_strings(&mut self, v: &mut Option<Vec<String>>) -> Result<(), JsonError> {
        if self.null() {
            *v = None;
            return Ok(());
        }
        let list = v.get_or_insert_with(Vec::new);
        let n = self.array(|c, i| {
            if i == list.len() {
                list.push(String::new());
            }
            c.into_string(&mut list[i])
        })?;
        list.truncate(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(s: &str) -> Result<&str, JsonError> {
        first_value(s.as_bytes()).map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn reads_the_first_value_only() {
        assert_eq!(first(" {\"a\":1} trailing {"), Ok("{\"a\":1}"));
        assert_eq!(
            first("[1, 2.5e-3, true, null]x"),
            Ok("[1, 2.5e-3, true, null]")
        );
        assert_eq!(first("\"s\"\"t\""), Ok("\"s\""));
        assert_eq!(first("{\"x\":1e999}"), Ok("{\"x\":1e999}"));
        // Go ends a top-level number at the first byte that cannot continue it.
        assert_eq!(first("01"), Ok("0"));
        for bad in [
            "",
            "  ",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{a:1}",
            "[1,]",
            "{\"a\":1,}",
            "[01]",
            "1.",
            "-",
            "tru",
            "\"\\x\"",
            "\"\t\"",
            "{\"a\":1 \"b\":2}",
            "\"\\u12g4\"",
        ] {
            assert_eq!(first(bad), Err(JsonError), "{bad:?}");
        }
    }

    #[test]
    fn nesting_is_bounded_not_recursive() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(first(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(first(&deep), Err(JsonError));
        // Far deeper than any stack would take recursively: refused, not overflowed.
        assert_eq!(first(&"[{\"a\":".repeat(1_000_000)), Err(JsonError));
        let mut c = Cursor::new(ok.as_bytes());
        c.skip().unwrap();
    }

    #[test]
    fn unquotes_like_go() {
        let s = |lit: &[u8]| Cursor::new(lit).string().unwrap();
        assert_eq!(s(br#""a\"\\\/\b\f\n\r\t""#), "a\"\\/\u{8}\u{c}\n\r\t");
        assert_eq!(s(br#""\u00e9\ud83d\ude00""#), "é😀");
        assert_eq!(s(br#""\ud800x\udc00""#), "\u{fffd}x\u{fffd}");
        assert_eq!(s(b"\"a\xffb\xe2\x82\""), "a\u{fffd}b\u{fffd}\u{fffd}");
    }

    #[test]
    fn folds_field_names_like_go() {
        assert!(field_matches("ROLEſ", "roles"));
        assert!(field_matches("\u{212A}v", "kv"));
        assert!(field_matches("User", "user"));
        assert!(!field_matches("users", "user"));
        assert!(!field_matches("usér", "user"));
    }

    #[test]
    fn slices_decode_into_what_is_there() {
        let mut v = Some(vec!["a".to_string(), "b".to_string()]);
        Cursor::new(b"[null]").into_strings(&mut v).unwrap();
        assert_eq!(v, Some(vec!["a".to_string()]));
        Cursor::new(b"[]").into_strings(&mut v).unwrap();
        assert_eq!(v, Some(vec![]));
        Cursor::new(b"null").into_strings(&mut v).unwrap();
        assert_eq!(v, None);
        assert_eq!(Cursor::new(b"\"x\"").into_strings(&mut v), Err(JsonError));
        assert_eq!(Cursor::new(b"[1]").into_strings(&mut v), Err(JsonError));
    }
}
