//! Line-protocol lexer/parser: splits a body into lines and parses one line into borrowed parts.
//!
//! Syntax (<https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/>):
//! `measurement[,tag=value...] field=value[,field=value...] [timestamp]`.
//! Escapes: in the measurement `\,` `\ ` `\\`; in tag keys, tag values and field keys also
//! `\=`; a backslash before any other character is kept literally. String field values are
//! double-quoted, with `\"` and `\\` escapes, and may span lines. Field values: float
//! (`1`, `-1.5`, `1e3`), integer `1i`, unsigned `1u`, boolean `t T true True TRUE f F false
//! False FALSE`, string `"..."`. NaN and infinities are not line protocol and are rejected.

use std::borrow::Cow;

/// A field value as written on the line.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// Float (no suffix).
    Float(f64),
    /// Integer (`i` suffix).
    Int(i64),
    /// Unsigned integer (`u` suffix).
    UInt(u64),
    /// Boolean.
    Bool(bool),
    /// String (unescaped).
    Str(Cow<'a, str>),
}

/// One parsed line; names and values are unescaped, borrowed from the body when they had no
/// escapes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line<'a> {
    /// Measurement name.
    pub measurement: Cow<'a, str>,
    /// Tags in line order.
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Fields in line order (at least one).
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// Timestamp as written (unit given by the request's precision).
    pub timestamp: Option<i64>,
}

/// Splits `body` into `(first_line_number, line)` pairs (1-based), honouring newlines inside
/// quoted string field values; the `\n` (and a `\r` before it) is not part of the line.
pub fn lines(body: &str) -> Lines<'_> {
    Lines {
        body,
        pos: 0,
        line_no: 1,
    }
}

/// Iterator returned by [`lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    body: &'a str,
    pos: usize,
    line_no: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.body.len() {
            return None;
        }
        let rest = &self.body.as_bytes()[self.pos..];
        let (len, newlines) = line_len(rest);
        let start = self.pos;
        let line_no = self.line_no;
        self.pos += len + 1;
        self.line_no += newlines + 1;
        let line = &self.body[start..start + len];
        Some((line_no, line.strip_suffix('\r').unwrap_or(line)))
    }
}

/// Length of the line at the start of `rest` (up to its terminating `\n` or the end) and the
/// number of newlines inside quoted strings in it.
fn line_len(rest: &[u8]) -> (usize, usize) {
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    if !rest[..end].contains(&b'"') {
        return (end, 0);
    }
    scan_quoted(rest)
}

/// Slow path of [`line_len`]: a `"` right after `=` in the field section opens a string that
/// may span lines. A string that spans lines must close right before `,`, a space or the end
/// of the line; otherwise (and when it never closes) the quote is taken as a typo and the line
/// ends at its first newline, so one bad line cannot swallow the good lines after it.
fn scan_quoted(rest: &[u8]) -> (usize, usize) {
    let first_newline = || {
        (
            rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len()),
            0,
        )
    };
    let (mut in_fields, mut quoted, mut newlines, mut string_newlines) = (false, false, 0, 0);
    let mut i = 0;
    while i < rest.len() {
        let b = rest[i];
        if quoted {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    quoted = false;
                    let next = rest.get(i + 1).copied();
                    let closes_field =
                        matches!(next, None | Some(b',' | b' ' | b'\t' | b'\r' | b'\n'));
                    if string_newlines > 0 && !closes_field {
                        return first_newline();
                    }
                    newlines += string_newlines;
                }
                b'\n' => string_newlines += 1,
                _ => {}
            }
        } else {
            match b {
                b'\\' => i += 1,
                b'\n' => return (i, newlines),
                b' ' => in_fields = true,
                b'"' if in_fields && i > 0 && rest[i - 1] == b'=' => {
                    quoted = true;
                    string_newlines = 0;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if quoted && string_newlines > 0 {
        return first_newline();
    }
    (rest.len(), newlines)
}

/// `true` for lines that carry no data: empty, whitespace only, or a `#` comment.
pub fn is_blank(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

/// Parses one line (without its newline) into `out`, reusing its vectors.
///
/// # Errors
/// A message saying what is wrong and where (byte column, 1-based).
pub fn parse_line<'a>(line: &'a str, out: &mut Line<'a>) -> Result<(), String> {
    out.tags.clear();
    out.fields.clear();
    out.timestamp = None;
    let mut p = Cursor { s: line, pos: 0 };
    p.skip_spaces();
    let measurement = p.name(Part::Measurement)?;
    if measurement.is_empty() {
        return Err(p.err("missing measurement name"));
    }
    out.measurement = measurement;
    while p.eat(b',') {
        let key = p.name(Part::TagKey)?;
        if key.is_empty() {
            return Err(p.err("empty tag key"));
        }
        if !p.eat(b'=') {
            return Err(p.err(&format!("tag {key:?} has no `=value`")));
        }
        let value = p.name(Part::TagValue)?;
        if value.is_empty() {
            return Err(p.err(&format!("tag {key:?} has an empty value")));
        }
        out.tags.push((key, value));
    }
    if !p.skip_spaces() {
        return Err(p.err("expected a space and then the fields after measurement and tags"));
    }
    parse_fields(&mut p, out)?;
    let had_space = p.skip_spaces();
    if p.at_end() {
        return Ok(());
    }
    if !had_space {
        return Err(p.err("expected `,` or a space after a field value"));
    }
    out.timestamp = Some(p.timestamp()?);
    p.skip_spaces();
    if !p.at_end() {
        return Err(p.err("unexpected text after the timestamp"));
    }
    Ok(())
}

fn parse_fields<'a>(p: &mut Cursor<'a>, out: &mut Line<'a>) -> Result<(), String> {
    loop {
        let key = p.name(Part::FieldKey)?;
        if key.is_empty() {
            return Err(p.err("missing field key (a line needs at least one field=value)"));
        }
        if !p.eat(b'=') {
            return Err(p.err(&format!("field {key:?} has no `=value`")));
        }
        let value = p.field_value(&key)?;
        out.fields.push((key, value));
        if !p.eat(b',') {
            return Ok(());
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Measurement,
    TagKey,
    TagValue,
    FieldKey,
}

impl Part {
    fn ends_at(self, b: u8) -> bool {
        match self {
            Part::Measurement => b == b',' || b == b' ',
            Part::TagKey | Part::TagValue | Part::FieldKey => b == b',' || b == b' ' || b == b'=',
        }
    }
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.pos += usize::from(hit);
        hit
    }

    /// Skips spaces and tabs; `true` when at least one was skipped.
    fn skip_spaces(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn err(&self, what: &str) -> String {
        format!("{what} (column {})", self.pos + 1)
    }

    /// A measurement, tag key/value or field key, unescaped.
    fn name(&mut self, part: Part) -> Result<Cow<'a, str>, String> {
        let start = self.pos;
        let bytes = self.bytes();
        let mut escaped = false;
        while let Some(&b) = bytes.get(self.pos) {
            if b == b'\\' {
                if self.pos + 1 >= bytes.len() {
                    return Err(self.err("a name may not end with a backslash"));
                }
                escaped = true;
                self.pos += 2;
                continue;
            }
            if part.ends_at(b) || b == b'\t' {
                break;
            }
            self.pos += 1;
        }
        let raw = &self.s[start..self.pos];
        Ok(if escaped {
            Cow::Owned(unescape_name(raw, part))
        } else {
            Cow::Borrowed(raw)
        })
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        let bytes = self.bytes();
        while let Some(&b) = bytes.get(self.pos) {
            if b == b',' || b == b' ' || b == b'\t' {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn field_value(&mut self, key: &str) -> Result<FieldValue<'a>, String> {
        if self.peek() == Some(b'"') {
            return self.string_value(key);
        }
        let start = self.pos;
        let token = self.token();
        parse_scalar(token).ok_or_else(|| {
            self.pos = start;
            self.err(&format!(
                "field {key:?} has invalid value {token:?} (expected a float, 1i, 1u, true/false or \"string\")"
            ))
        })
    }

    fn string_value(&mut self, key: &str) -> Result<FieldValue<'a>, String> {
        let start = self.pos;
        self.pos += 1;
        let bytes = self.bytes();
        let mut escaped = false;
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'\\' => {
                    escaped = true;
                    self.pos += 2;
                }
                b'"' => {
                    let raw = &self.s[start + 1..self.pos];
                    self.pos += 1;
                    return Ok(FieldValue::Str(if escaped {
                        Cow::Owned(unescape_string(raw))
                    } else {
                        Cow::Borrowed(raw)
                    }));
                }
                _ => self.pos += 1,
            }
        }
        self.pos = start;
        Err(self.err(&format!(
            "string value of field {key:?} has no closing quote"
        )))
    }

    fn timestamp(&mut self) -> Result<i64, String> {
        let start = self.pos;
        let token = self.token();
        parse_i64(token.as_bytes()).ok_or_else(|| {
            self.pos = start;
            self.err(&format!(
                "invalid timestamp {token:?} (expected an integer)"
            ))
        })
    }
}

/// `-?digits` → i64 in one pass; `None` on anything else or overflow.
fn parse_i64(b: &[u8]) -> Option<i64> {
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        v = v.checked_mul(10)?;
        v = if negative {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// Parses a non-string field value; `None` when it is not valid line protocol.
fn parse_scalar(token: &str) -> Option<FieldValue<'static>> {
    let b = token.as_bytes();
    let (&last, body) = b.split_last()?;
    match last {
        b'i' => parse_i64(body).map(FieldValue::Int),
        b'u' if is_digits(body) => token[..body.len()].parse().ok().map(FieldValue::UInt),
        _ => match token {
            "t" | "T" | "true" | "True" | "TRUE" => Some(FieldValue::Bool(true)),
            "f" | "F" | "false" | "False" | "FALSE" => Some(FieldValue::Bool(false)),
            _ if is_float(b) => token.parse().ok().map(FieldValue::Float),
            _ => None,
        },
    }
}

fn is_digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// `[-+]?(digits[.digits?]|.digits)([eE][-+]?digits)?` — what Influx accepts; excludes the
/// `inf`/`nan` spellings Rust's float parser would take.
fn is_float(b: &[u8]) -> bool {
    let b = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let (mantissa, exponent) = match b.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mut parts = mantissa.splitn(2, |&c| c == b'.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next().unwrap_or_default();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e
            .strip_prefix(b"-")
            .or_else(|| e.strip_prefix(b"+"))
            .unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn unescape_name(raw: &str, part: Part) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(n @ (',' | ' ' | '\\')) => out.push(n),
            Some('=') if part != Part::Measurement => out.push('='),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn unescape_string(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(n @ ('"' | '\\')) => out.push(n),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Writes one line of line protocol with every name and string escaped, so that
/// [`parse_line`] gives back exactly these parts. Floats are written in Rust's shortest
/// round-trip form (must be finite).
pub fn write_line(
    out: &mut String,
    measurement: &str,
    tags: &[(String, String)],
    fields: &[(String, FieldValue<'_>)],
    timestamp: Option<i64>,
) {
    escape_into(out, measurement, &[',', ' ']);
    for (k, v) in tags {
        out.push(',');
        escape_into(out, k, &[',', ' ', '=']);
        out.push('=');
        escape_into(out, v, &[',', ' ', '=']);
    }
    for (i, (k, v)) in fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape_into(out, k, &[',', ' ', '=']);
        out.push('=');
        write_value(out, v);
    }
    if let Some(ts) = timestamp {
        out.push(' ');
        out.push_str(&ts.to_string());
    }
}

fn write_value(out: &mut String, v: &FieldValue<'_>) {
    match v {
        FieldValue::Float(f) => out.push_str(&format!("{f:?}")),
        FieldValue::Int(i) => out.push_str(&format!("{i}i")),
        FieldValue::UInt(u) => out.push_str(&format!("{u}u")),
        FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        FieldValue::Str(s) => {
            out.push('"');
            escape_into(out, s, &['"']);
            out.push('"');
        }
    }
}

/// Escapes `special` characters and every backslash (so a literal backslash survives even
/// before a special character or at the end of a name).
fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Line<'_>, String> {
        let mut out = Line::default();
        parse_line(line, &mut out).map(|()| out)
    }

    #[test]
    fn full_line() {
        let l = parse(r#"m\ 1\,x,t\=k=v\,1 a=1.5,b=-2i,c=3u,d=T,e="q\"\\z" -17"#).expect("ok");
        assert_eq!(l.measurement, "m 1,x");
        assert_eq!(l.tags, vec![("t=k".into(), "v,1".into())]);
        assert_eq!(l.fields[0], ("a".into(), FieldValue::Float(1.5)));
        assert_eq!(l.fields[1], ("b".into(), FieldValue::Int(-2)));
        assert_eq!(l.fields[2], ("c".into(), FieldValue::UInt(3)));
        assert_eq!(l.fields[3], ("d".into(), FieldValue::Bool(true)));
        assert_eq!(l.fields[4], ("e".into(), FieldValue::Str(r#"q"\z"#.into())));
        assert_eq!(l.timestamp, Some(-17));
    }

    #[test]
    fn floats_accepted_and_rejected() {
        for ok in ["1", "-1", "1.", ".5", "1e3", "1.5E-3", "+2", "-0.0"] {
            assert!(
                matches!(parse_scalar(ok), Some(FieldValue::Float(_))),
                "{ok}"
            );
        }
        for bad in [
            "nan", "inf", "-inf", "1.2.3", "e3", "1e", "", "-", "0x10", "1_0", "1ii",
        ] {
            assert_eq!(parse_scalar(bad), None, "{bad}");
        }
        assert_eq!(parse_scalar("99999999999999999999i"), None);
        assert_eq!(parse_scalar("-1u"), None);
        assert_eq!(
            parse_scalar("-9223372036854775808i"),
            Some(FieldValue::Int(i64::MIN))
        );
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-"), None);
    }

    #[test]
    fn errors_say_what_and_where() {
        let cases = [
            ("m", "expected a space"),
            ("m f", "has no `=value`"),
            ("m f=", "invalid value"),
            ("m,t f=1", "tag \"t\" has no `=value`"),
            ("m,t= f=1", "empty value"),
            (",t=1 f=1", "missing measurement"),
            ("m f=1 12x", "invalid timestamp"),
            ("m f=1 1 2", "after the timestamp"),
            ("m f=\"abc", "no closing quote"),
            ("m f=1i2", "invalid value"),
            ("m\\", "end with a backslash"),
            ("m  ", "missing field key"),
        ];
        for (line, want) in cases {
            let err = parse(line).expect_err(line);
            assert!(err.contains(want), "{line:?}: {err}");
            assert!(err.contains("column"), "{err}");
        }
    }

    #[test]
    fn splits_lines_with_quoted_newlines() {
        let body = "a f=1\nb s=\"x\ny\\\"\nz\",g=1 5\r\n\nc,t=\"q f=1\n";
        let got: Vec<_> = lines(body).collect();
        assert_eq!(
            got,
            vec![
                (1, "a f=1"),
                (2, "b s=\"x\ny\\\"\nz\",g=1 5"),
                (5, ""),
                (6, "c,t=\"q f=1")
            ]
        );
        let unterminated: Vec<_> = lines("a s=\"x\nb f=1\n").collect();
        assert_eq!(unterminated, vec![(1, "a s=\"x"), (2, "b f=1")]);
    }

    #[test]
    fn write_then_parse_round_trips() {
        let mut s = String::new();
        let tags = vec![("a b".to_string(), "c=d,\\".to_string())];
        let fields = vec![
            ("f\\".to_string(), FieldValue::Str("x\"y\\".into())),
            ("g".to_string(), FieldValue::Float(0.1)),
        ];
        write_line(&mut s, "m,e", &tags, &fields, Some(3));
        let l = parse(&s).expect("parses");
        assert_eq!(l.measurement, "m,e");
        assert_eq!(l.tags[0].0, "a b");
        assert_eq!(l.tags[0].1, "c=d,\\");
        assert_eq!(l.fields[0].0, "f\\");
        assert_eq!(l.fields[0].1, FieldValue::Str("x\"y\\".into()));
        assert_eq!(l.fields[1].1, FieldValue::Float(0.1));
    }
}
