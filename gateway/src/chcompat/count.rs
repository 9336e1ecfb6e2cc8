//! Row counting of the bodies the gateway forwards unparsed, so that with `[auth]` on their rows
//! are charged to the tenant's rate quota before the insert is sent.
//!
//! - `TSV`/`TabSeparated`: one row per newline byte not escaped by a backslash, plus an
//!   unterminated last line; `...WithNames` minus the header line.
//! - `CSV`: one row per line end (`\n`, `\r\n`, `\n\r`, `\r`) outside quoted fields, plus an
//!   unterminated last line; quotes open a field only at its start (after spaces and tabs), a
//!   doubled quote is a literal quote; `CSVWithNames` minus the header line.
//! - `Native`: the sum of the blocks' row counts; each column is skipped using the type the block
//!   names, so a truncated or inconsistent body is found here (400 naming the byte offset).
//! - `RowBinary`: rows walked value by value with the table's column types (or the types in the
//!   `RowBinaryWithNamesAndTypes` header).
//!
//! Counts never come out below what ClickHouse inserts: text lines ClickHouse would read as part of
//! a value (an Array literal spanning lines) or skip (empty lines, `input_format_allow_errors_*`)
//! are still charged.
//!
//! Main items: [`tsv`], [`csv`] with [`CsvDialect`], [`native`], [`row_binary`],
//! [`row_binary_with_names_and_types`], all answering a row count or a [`CountError`] naming the
//! byte offset. The binary counters share one cursor (`Reader`) that never reads past the body.

use crate::types::ColumnType;

/// Why a body could not be counted (answered as 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    /// The body ends inside a value.
    #[error("{format} body is truncated: {what} needs {need} byte(s) at byte offset {offset}, but the body ends at byte {len}")]
    Truncated {
        /// Format name.
        format: &'static str,
        /// What was being read (row, column, part).
        what: String,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        need: u64,
        /// Body length.
        len: usize,
    },
    /// The body is not valid for its format.
    #[error("{format} body is invalid at byte offset {offset}: {what}")]
    Invalid {
        /// Format name.
        format: &'static str,
        /// Where.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// A column type the counter cannot skip.
    #[error("{format} column `{column}` has type `{ty}`, which the gateway cannot read to count rows for the tenant's quota; send FORMAT JSONEachRow, TSV or CSV for this table")]
    UnsupportedType {
        /// Format name.
        format: &'static str,
        /// Column.
        column: String,
        /// Its type text.
        ty: String,
    },
}

/// What the binary counters' steps answer: a value, or why the body cannot be counted.
type Counted<T = ()> = Result<T, CountError>;

/// A cursor over a binary body; errors carry the format name and the current column.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    format: &'static str,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], format: &'static str) -> Self {
        Reader { b, at: 0, format }
    }

    /// The type a body's header gives `column`: parsed only when shallow (the parser
    /// recurses), and refused when a value of it could take no bytes (`FixedString(0)`:
    /// counting would not advance).
    fn column_type(&self, column: &str, text: &str) -> Counted<ColumnType> {
        let unsupported = || CountError::UnsupportedType {
            format: self.format,
            column: column.to_owned(),
            ty: text.chars().take(200).collect(),
        };
        let mut depth = 0usize;
        for b in text.bytes() {
            depth = match b {
                b'(' => depth + 1,
                b')' => depth.saturating_sub(1),
                _ => depth,
            };
            if depth > MAX_TYPE_DEPTH {
                return Err(unsupported());
            }
        }
        let ty = ColumnType::parse(text).map_err(|_| unsupported())?;
        if takes_no_bytes(&ty) {
            return Err(unsupported());
        }
        Ok(ty)
    }

    fn done(&self) -> bool {
        self.at >= self.b.len()
    }

    fn truncated(&self, what: &str, need: u64) -> CountError {
        CountError::Truncated {
            format: self.format,
            what: what.to_owned(),
            offset: self.at,
            need,
            len: self.b.len(),
        }
    }

    fn invalid(&self, what: String) -> CountError {
        CountError::Invalid {
            format: self.format,
            offset: self.at,
            what,
        }
    }

    fn take(&mut self, n: u64, what: &str) -> Counted<&'a [u8]> {
        let left = (self.b.len() - self.at) as u64;
        if n > left {
            return Err(self.truncated(what, n));
        }
        // n <= left <= usize::MAX
        let end = self.at + n as usize;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn skip_n(&mut self, count: u64, width: u64, what: &str) -> Counted {
        let n = count.checked_mul(width).ok_or_else(|| {
            self.invalid(format!("{what}: {count} values of {width} bytes overflow"))
        })?;
        self.take(n, what).map(|_| ())
    }

    fn varint(&mut self, what: &str) -> Counted<u64> {
        let (mut v, mut shift) = (0u64, 0u32);
        let start = self.at;
        loop {
            let Some(&byte) = self.b.get(self.at) else {
                self.at = start;
                return Err(self.truncated(what, (self.b.len() - start + 1) as u64));
            };
            self.at += 1;
            if shift > 63 {
                self.at = start;
                return Err(self.invalid(format!(
                    "{what}: variable-length integer longer than 10 bytes"
                )));
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn u64_le(&mut self, what: &str) -> Counted<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self, what: &str) -> Counted<&'a [u8]> {
        let n = self.varint(what)?;
        self.take(n, what)
    }
}

/// Deepest type nesting accepted from a body's header.
const MAX_TYPE_DEPTH: usize = 16;

/// Whether some part of `ty` is a value of no bytes.
fn takes_no_bytes(ty: &ColumnType) -> bool {
    match ty {
        ColumnType::FixedString(0) => true,
        ColumnType::Nullable(i) | ColumnType::LowCardinality(i) | ColumnType::Array(i) => {
            takes_no_bytes(i)
        }
        ColumnType::Map(k, v) => takes_no_bytes(k) || takes_no_bytes(v),
        _ => false,
    }
}

/// Bytes of one value of a fixed-width type, in RowBinary and in Native alike.
fn fixed_width(ty: &ColumnType) -> Option<u64> {
    use ColumnType as T;
    Some(match ty {
        T::UInt8 | T::Int8 | T::Bool | T::Enum8(_) => 1,
        T::UInt16 | T::Int16 | T::Date | T::Enum16(_) => 2,
        T::UInt32 | T::Int32 | T::Float32 | T::DateTime => 4,
        T::UInt64 | T::Int64 | T::Float64 | T::DateTime64(_) => 8,
        T::Uuid => 16,
        T::Decimal(p, _) => match p {
            0..=9 => 4,
            10..=18 => 8,
            19..=38 => 16,
            _ => 32,
        },
        T::FixedString(n) => *n as u64,
        _ => return None,
    })
}

/// Skips one RowBinary value of `ty`.
fn skip_value(r: &mut Reader<'_>, ty: &ColumnType, what: &str) -> Counted {
    if let Some(w) = fixed_width(ty) {
        return r.take(w, what).map(|_| ());
    }
    match ty {
        ColumnType::String => r.string(what).map(|_| ()),
        ColumnType::Nullable(inner) => {
            // ClickHouse reads any non-zero flag as NULL.
            if r.take(1, what)?[0] == 0 {
                skip_value(r, inner, what)?;
            }
            Ok(())
        }
        ColumnType::LowCardinality(inner) => skip_value(r, inner, what),
        ColumnType::Array(inner) => {
            let n = r.varint(what)?;
            match fixed_width(inner) {
                Some(w) => r.skip_n(n, w, what),
                // Every value takes at least one byte: the loop ends with the body.
                None => (0..n).try_for_each(|_| skip_value(r, inner, what)),
            }
        }
        ColumnType::Map(k, v) => {
            let n = r.varint(what)?;
            (0..n).try_for_each(|_| {
                skip_value(r, k, what)?;
                skip_value(r, v, what)
            })
        }
        _ => Err(r.invalid(format!("{what}: no RowBinary layout for this type"))),
    }
}

/// Rows of a `RowBinary` body for columns `(name, type)` in the order the INSERT names them.
///
/// # Errors
/// [`CountError::Truncated`] when the body ends inside a row.
pub fn row_binary(body: &[u8], columns: &[(&str, &ColumnType)]) -> Result<u64, CountError> {
    let mut r = Reader::new(body, "RowBinary");
    count_row_binary(&mut r, columns)
}

fn count_row_binary(r: &mut Reader<'_>, columns: &[(&str, &ColumnType)]) -> Counted<u64> {
    if columns.is_empty() {
        return Err(r.invalid("no columns to read rows of".into()));
    }
    let widths: Option<u64> = columns.iter().map(|(_, t)| fixed_width(t)).sum();
    if let Some(w) = widths.filter(|w| *w > 0) {
        // Only fixed-width columns: the row count is the length over the row width.
        let left = (r.b.len() - r.at) as u64;
        let (rows, rest) = (left / w, left % w);
        if rest != 0 {
            r.at += (rows * w) as usize;
            return Err(r.truncated(&format!("row {rows} ({w} bytes a row)"), w));
        }
        return Ok(rows);
    }
    let mut rows = 0u64;
    while !r.done() {
        for (name, ty) in columns {
            skip_value(r, ty, &format!("row {rows}, column `{name}` ({ty})"))?;
        }
        rows += 1;
    }
    Ok(rows)
}

/// Rows of a `RowBinaryWithNamesAndTypes` body (the types come from its header).
///
/// # Errors
/// As [`row_binary`], and [`CountError::UnsupportedType`] for a header type the gateway
/// does not know.
pub fn row_binary_with_names_and_types(body: &[u8]) -> Result<u64, CountError> {
    let mut r = Reader::new(body, "RowBinaryWithNamesAndTypes");
    if r.done() {
        return Ok(0);
    }
    let n = r.varint("the header's column count")?;
    let mut names = Vec::new();
    for i in 0..n {
        let name = r.string(&format!("the header's column name {i}"))?;
        names.push(String::from_utf8_lossy(name).into_owned());
    }
    let mut types = Vec::with_capacity(names.len());
    for name in &names {
        let text = r.string(&format!("the header's type of column `{name}`"))?;
        let text = String::from_utf8_lossy(text);
        types.push(r.column_type(name, &text)?);
    }
    let columns: Vec<(&str, &ColumnType)> = names.iter().map(String::as_str).zip(&types).collect();
    if r.done() {
        return Ok(0);
    }
    count_row_binary(&mut r, &columns)
}

/// `LowCardinality` index flags: the dictionary is shared (never sent over HTTP inserts).
const NEED_GLOBAL_DICTIONARY: u64 = 1 << 8;
/// `LowCardinality` index flags: this granule carries its own dictionary keys.
const HAS_ADDITIONAL_KEYS: u64 = 1 << 9;

/// Skips the serialization state prefixes of a Native column.
fn skip_prefix(r: &mut Reader<'_>, ty: &ColumnType, what: &str) -> Counted {
    match ty {
        ColumnType::LowCardinality(_) => {
            let version = r.u64_le(what)?;
            if version != 1 {
                r.at -= 8;
                return Err(r.invalid(format!(
                    "{what}: LowCardinality serialization version {version} (expected 1)"
                )));
            }
            Ok(())
        }
        ColumnType::Nullable(i) | ColumnType::Array(i) => skip_prefix(r, i, what),
        ColumnType::Map(k, v) => {
            skip_prefix(r, k, what)?;
            skip_prefix(r, v, what)
        }
        _ => Ok(()),
    }
}

/// Skips `n` values of a Native column of `ty`.
fn skip_column(r: &mut Reader<'_>, ty: &ColumnType, n: u64, what: &str) -> Counted {
    if let Some(w) = fixed_width(ty) {
        return r.skip_n(n, w, what);
    }
    match ty {
        ColumnType::String => (0..n).try_for_each(|_| r.string(what).map(|_| ())),
        ColumnType::Nullable(inner) => {
            r.take(n, what)?;
            skip_column(r, inner, n, what)
        }
        ColumnType::Array(inner) => {
            let m = last_offset(r, n, what)?;
            skip_column(r, inner, m, what)
        }
        ColumnType::Map(k, v) => {
            let m = last_offset(r, n, what)?;
            skip_column(r, k, m, what)?;
            skip_column(r, v, m, what)
        }
        ColumnType::LowCardinality(inner) => skip_low_cardinality(r, inner, n, what),
        _ => Err(r.invalid(format!("{what}: no Native layout for this type"))),
    }
}

/// Skips `n` cumulative UInt64 offsets; the last one is the nested column's length.
fn last_offset(r: &mut Reader<'_>, n: u64, what: &str) -> Counted<u64> {
    if n == 0 {
        return Ok(0);
    }
    r.skip_n(n - 1, 8, what)?;
    r.u64_le(what)
}

/// Skips `n` values of a Native `LowCardinality(inner)` column: granules of index flags,
/// optional dictionary keys and indexes.
fn skip_low_cardinality(r: &mut Reader<'_>, inner: &ColumnType, n: u64, what: &str) -> Counted {
    // The dictionary of LowCardinality(Nullable(T)) is written as T.
    let dict_ty = match inner {
        ColumnType::Nullable(t) => t.as_ref(),
        t => t,
    };
    let mut left = n;
    while left > 0 {
        let at = r.at;
        let flags = r.u64_le(what)?;
        if flags & NEED_GLOBAL_DICTIONARY != 0 {
            r.at = at;
            return Err(r.invalid(format!("{what}: LowCardinality with a global dictionary")));
        }
        let width = match flags & 0xff {
            0 => 1,
            1 => 2,
            2 => 4,
            3 => 8,
            other => {
                r.at = at;
                return Err(r.invalid(format!("{what}: LowCardinality index type {other}")));
            }
        };
        if flags & HAS_ADDITIONAL_KEYS != 0 {
            let keys = r.u64_le(what)?;
            skip_column(r, dict_ty, keys, what)?;
        }
        let at = r.at;
        let rows = r.u64_le(what)?;
        if rows == 0 || rows > left {
            r.at = at;
            return Err(r.invalid(format!(
                "{what}: LowCardinality granule of {rows} rows where {left} remain"
            )));
        }
        r.skip_n(rows, width, what)?;
        left -= rows;
    }
    Ok(())
}

/// Rows of a `Native` body: the sum of its blocks' row counts, every column skipped with the
/// type its block header names.
///
/// # Errors
/// [`CountError::Truncated`], [`CountError::Invalid`], and [`CountError::UnsupportedType`]
/// for a column type the gateway does not know.
pub fn native(body: &[u8]) -> Result<u64, CountError> {
    let mut r = Reader::new(body, "Native");
    let mut total = 0u64;
    let mut block = 0u64;
    while !r.done() {
        let columns = r.varint(&format!("block {block}'s column count"))?;
        let rows = r.varint(&format!("block {block}'s row count"))?;
        for c in 0..columns {
            let name = r.string(&format!("block {block}, column {c}'s name"))?;
            let name = String::from_utf8_lossy(name).into_owned();
            let text = r.string(&format!("block {block}, column `{name}`'s type"))?;
            let text = String::from_utf8_lossy(text).into_owned();
            let ty = r.column_type(&name, &text)?;
            let what = format!("block {block}, column `{name}` ({text}, {rows} rows)");
            skip_prefix(&mut r, &ty, &what)?;
            skip_column(&mut r, &ty, rows, &what)?;
        }
        total = total.saturating_add(rows);
        block += 1;
    }
    Ok(total)
}

/// Rows of a `TSV` body, less `header_rows` (`TSVWithNames`: 1).
pub fn tsv(body: &[u8], header_rows: u64) -> u64 {
    let (mut rows, mut i, mut line_end) = (0u64, 0usize, 0usize);
    while let Some(j) = body
        .get(i..)
        .and_then(|rest| memchr::memchr2(b'\\', b'\n', rest))
    {
        let at = i + j;
        if body[at] == b'\\' {
            // The escaped byte, whatever it is (`\` + a newline byte is a newline in a value).
            i = at + 2;
        } else {
            rows += 1;
            i = at + 1;
            line_end = i;
        }
    }
    (rows + u64::from(line_end < body.len())).saturating_sub(header_rows)
}

/// How a CSV body is quoted and delimited (ClickHouse's `format_csv_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    /// `format_csv_delimiter` (default `,`).
    pub delimiter: u8,
    /// `format_csv_allow_single_quotes`.
    pub single_quotes: bool,
    /// `format_csv_allow_double_quotes` (default on).
    pub double_quotes: bool,
}

impl Default for CsvDialect {
    fn default() -> Self {
        CsvDialect {
            delimiter: b',',
            single_quotes: false,
            double_quotes: true,
        }
    }
}

/// Rows of a `CSV` body, less `header_rows` (`CSVWithNames`: 1).
pub fn csv(body: &[u8], dialect: CsvDialect, header_rows: u64) -> u64 {
    let n = body.len();
    let (mut rows, mut i, mut line_end, mut field_start) = (0u64, 0usize, 0usize, true);
    while i < n {
        let c = body[i];
        if field_start {
            if (c == b' ' || c == b'\t') && c != dialect.delimiter {
                i += 1;
                continue;
            }
            field_start = false;
            if (c == b'"' && dialect.double_quotes) || (c == b'\'' && dialect.single_quotes) {
                i += 1;
                // To the closing quote; a doubled quote is a literal one.
                loop {
                    match memchr::memchr(c, &body[i..]) {
                        None => {
                            i = n;
                            break;
                        }
                        Some(j) => {
                            i += j + 1;
                            if body.get(i) == Some(&c) {
                                i += 1;
                            } else {
                                break;
                            }
                        }
                    }
                }
                continue;
            }
        }
        if c == dialect.delimiter {
            field_start = true;
            i += 1;
        } else if c == b'\n' || c == b'\r' {
            rows += 1;
            field_start = true;
            i += 1;
            let pair = if c == b'\n' { b'\r' } else { b'\n' };
            if body.get(i) == Some(&pair) {
                i += 1;
            }
            line_end = i;
        } else {
            i += 1;
        }
    }
    (rows + u64::from(line_end < n)).saturating_sub(header_rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{native, rowbinary, Column};
    use crate::value::{Row, Value};
    use proptest::prelude::*;

    fn col(name: &str, t: &str) -> Column {
        Column::parse(name, t).expect("type")
    }

    fn pairs(cols: &[Column]) -> Vec<(&str, &ColumnType)> {
        cols.iter().map(|c| (c.name.as_str(), &c.ty)).collect()
    }

    #[test]
    fn tsv_counts_records_not_escaped_newlines() {
        let cases: [(&[u8], u64, u64, &str); 8] = [
            (b"", 0, 0, "empty"),
            (b"1\ta\n2\tb\n", 0, 2, "two lines"),
            (b"1\ta\n2\tb", 0, 2, "unterminated last line"),
            // `\` + newline byte is a newline inside the value; `\\` then newline ends the row.
            (b"1\ta\\\nb\n2\tc\\\\\n3\td\n", 0, 3, "escaped newline byte"),
            (b"1\ta\\nb\n", 0, 1, "the \\n escape"),
            (b"k\tv\n1\ta\n2\tb\n", 1, 2, "WithNames header"),
            (b"k\tv\n", 1, 0, "header only"),
            (b"1\t\\", 0, 1, "a dangling backslash is still a row"),
        ];
        for (body, header, want, why) in cases {
            assert_eq!(tsv(body, header), want, "{why}");
        }
    }

    #[test]
    fn csv_counts_records_outside_quotes() {
        let d = CsvDialect::default();
        let single = CsvDialect {
            single_quotes: true,
            ..d
        };
        let semi = CsvDialect {
            delimiter: b';',
            ..d
        };
        let cases: [(&[u8], CsvDialect, u64, u64, &str); 13] = [
            (b"", d, 0, 0, "empty"),
            (b"1,a\n2,b\n", d, 0, 2, "two lines"),
            (b"1,a\r\n2,b", d, 0, 2, "CRLF, no trailing newline"),
            (
                b"1,\"a\nb\"\n2,\"x\"\"\ny\"\n",
                d,
                0,
                2,
                "quoted newlines, doubled quote",
            ),
            (
                b"1, \t\"a\nb\"\n",
                d,
                0,
                1,
                "spaces before the opening quote",
            ),
            (
                b"1,a\"b\nc\n",
                d,
                0,
                2,
                "a quote inside an unquoted field is literal",
            ),
            (b"k,v\n1,\"a\nb\"\n", d, 1, 1, "CSVWithNames"),
            (
                b"1,'a\nb'\n",
                d,
                0,
                2,
                "single quotes are not quotes by default",
            ),
            (b"1,'a\nb'\n", single, 0, 1, "single quotes when allowed"),
            (
                b"1;\"a\nb\"\n2;c\n",
                semi,
                0,
                2,
                "the quote opens the field after `;`",
            ),
            (
                b"1,\"a\nb\"\n",
                semi,
                0,
                2,
                "with `;` this quote is inside a field",
            ),
            (
                b"1,\"never closed\n2,b\n",
                d,
                0,
                1,
                "an open quote swallows the rest",
            ),
            (b"1,a\n\r2,b\r3,c", d, 0, 3, "LF CR and a lone CR end lines"),
        ];
        for (body, dialect, header, want, why) in cases {
            assert_eq!(csv(body, dialect, header), want, "{why}");
        }
    }

    #[test]
    fn rowbinary_walks_rows_and_names_the_truncation_offset() {
        let cols = [col("k", "UInt64"), col("v", "String")];
        let rows: Vec<Row> = (0..3)
            .map(|i| vec![Value::UInt(i), Value::str("abc")])
            .collect();
        let body = rowbinary::encode_rows(&cols, &rows);
        assert_eq!(row_binary(&body, &pairs(&cols)), Ok(3));
        assert_eq!(row_binary(b"", &pairs(&cols)), Ok(0));
        // Row 2's string says 3 bytes (after its length at 2 * 12 + 8); only 2 are there.
        let err = row_binary(&body[..body.len() - 1], &pairs(&cols)).expect_err("truncated");
        assert_eq!(
            err,
            CountError::Truncated {
                format: "RowBinary",
                what: "row 2, column `v` (String)".into(),
                offset: 33,
                need: 3,
                len: 35,
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("byte offset 33") && text.contains("column `v`"),
            "{text}"
        );
        // Fixed-width rows: counted by length; a partial row is named.
        let fixed = [col("a", "UInt32"), col("b", "Float64")];
        assert_eq!(row_binary(&[0u8; 36], &pairs(&fixed)), Ok(3));
        let err = row_binary(&[0u8; 40], &pairs(&fixed)).expect_err("partial row");
        assert!(err.to_string().contains("byte offset 36"), "{err}");
    }

    fn mixed_columns() -> Vec<Column> {
        vec![
            col("k", "UInt64"),
            col("s", "String"),
            col("n", "Nullable(Int32)"),
            col("arr", "Array(String)"),
            col("lc", "LowCardinality(String)"),
            col("m", "Map(String, UInt16)"),
            col("f", "FixedString(3)"),
            col("d", "Decimal(18, 2)"),
            col("na", "Array(Nullable(UInt8))"),
        ]
    }

    type Generated = (
        u64,
        String,
        Option<i32>,
        Vec<String>,
        u8,
        Vec<(String, u16)>,
        Vec<Option<u8>>,
    );

    fn to_row((k, s, n, arr, lc, m, na): &Generated) -> Row {
        vec![
            Value::UInt(*k),
            Value::str(s),
            n.map_or(Value::Null, |x| Value::Int(i64::from(x))),
            Value::Array(arr.iter().map(|x| Value::str(x)).collect()),
            Value::str(&format!("lc{}", lc % 7)),
            Value::Map(
                m.iter()
                    .map(|(a, b)| (Value::str(a), Value::UInt(u64::from(*b))))
                    .collect(),
            ),
            Value::Bytes(b"abc".to_vec()),
            Value::Decimal(i128::from(*k as i32)),
            Value::Array(
                na.iter()
                    .map(|x| x.map_or(Value::Null, |v| Value::UInt(u64::from(v))))
                    .collect(),
            ),
        ]
    }

    fn generated() -> impl Strategy<Value = Vec<Generated>> {
        proptest::collection::vec(
            (
                any::<u64>(),
                ".{0,20}",
                proptest::option::of(any::<i32>()),
                proptest::collection::vec(".{0,6}", 0..4),
                any::<u8>(),
                proptest::collection::vec((".{0,4}", any::<u16>()), 0..3),
                proptest::collection::vec(proptest::option::of(any::<u8>()), 0..4),
            ),
            0..40,
        )
    }

    proptest! {
        /// Whatever rows the gateway's own encoder writes, the counter finds exactly them, and
        /// any cut inside the last row is reported as truncated.
        #[test]
        fn rowbinary_round_trips(rows in generated(), cut in 1usize..64) {
            let cols = mixed_columns();
            let values: Vec<Row> = rows.iter().map(to_row).collect();
            let body = rowbinary::encode_rows(&cols, &values);
            prop_assert_eq!(row_binary(&body, &pairs(&cols)), Ok(rows.len() as u64));
            if let Some(last) = values.last() {
                let last_len = rowbinary::encode_rows(&cols, std::slice::from_ref(last)).len();
                let cut = cut.min(last_len - 1).max(1);
                let short = &body[..body.len() - cut];
                let is_truncated = matches!(row_binary(short, &pairs(&cols)), Err(CountError::Truncated { .. }));
                prop_assert!(is_truncated);
            }
            // With its header, the types come from the body.
            let mut with_header = Vec::new();
            crate::encode::put_varint(&mut with_header, cols.len() as u64);
            for c in &cols {
                crate::encode::put_bytes(&mut with_header, c.name.as_bytes());
            }
            for c in &cols {
                crate::encode::put_bytes(&mut with_header, c.type_text.as_bytes());
            }
            with_header.extend_from_slice(&body);
            prop_assert_eq!(row_binary_with_names_and_types(&with_header), Ok(rows.len() as u64));
        }

        /// Native bodies of several blocks: the sum of their rows; a body cut short anywhere
        /// inside a block is an error, never a smaller count.
        #[test]
        fn native_round_trips(a in generated(), b in generated(), cut in 1usize..4096) {
            let cols = mixed_columns();
            let mut body = Vec::new();
            for block in [&a, &b] {
                let values: Vec<Row> = block.iter().map(to_row).collect();
                body.extend_from_slice(&native::encode_rows(&cols, &values));
            }
            prop_assert_eq!(native(&body), Ok((a.len() + b.len()) as u64));
            let last_block = native::encode_rows(&cols, &b.iter().map(to_row).collect::<Vec<_>>()).len();
            let cut = cut.min(last_block - 1).max(1);
            prop_assert!(native(&body[..body.len() - cut]).is_err());
        }
    }

    proptest! {
        /// Arbitrary bytes are counted or refused, never a panic or a hang.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = native(&body);
            let _ = row_binary_with_names_and_types(&body);
            let cols = mixed_columns();
            let _ = row_binary(&body, &pairs(&cols));
            let _ = tsv(&body, 1);
            let _ = csv(&body, CsvDialect::default(), 1);
        }
    }

    #[test]
    fn header_types_that_cannot_be_walked_are_refused() {
        // Zero-byte values (no progress) and deep nesting (the type parser recurses).
        let deep = format!("{}UInt8{}", "Array(".repeat(40), ")".repeat(40));
        for ty in [
            "Map(FixedString(0), FixedString(0))",
            "FixedString(0)",
            deep.as_str(),
        ] {
            let mut body = vec![1];
            crate::encode::put_bytes(&mut body, b"c");
            crate::encode::put_bytes(&mut body, ty.as_bytes());
            body.extend_from_slice(&[1, 0, 0, 0]);
            let err = row_binary_with_names_and_types(&body).expect_err(ty);
            assert!(
                matches!(err, CountError::UnsupportedType { ref column, .. } if column == "c"),
                "{err}"
            );
            let mut block = vec![1, 1];
            block.extend_from_slice(&body[1..]);
            assert!(
                matches!(native(&block), Err(CountError::UnsupportedType { .. })),
                "{ty}"
            );
        }
    }

    #[test]
    fn native_names_unsupported_types_and_bad_structure() {
        let mut body = vec![1, 1];
        crate::encode::put_bytes(&mut body, b"pt");
        crate::encode::put_bytes(&mut body, b"Tuple(UInt8, String)");
        body.extend_from_slice(&[1, 1, b'a']);
        let err = native(&body).expect_err("tuple");
        assert_eq!(
            err,
            CountError::UnsupportedType {
                format: "Native",
                column: "pt".into(),
                ty: "Tuple(UInt8, String)".into()
            }
        );
        // A block that claims more rows than its column holds.
        let mut body = vec![1, 3];
        crate::encode::put_bytes(&mut body, b"x");
        crate::encode::put_bytes(&mut body, b"UInt32");
        body.extend_from_slice(&[0; 8]);
        let err = native(&body).expect_err("short column");
        assert!(
            err.to_string()
                .contains("needs 12 byte(s) at byte offset 11")
                && err.to_string().contains("`x`"),
            "{err}"
        );
        // An array whose last offset points past the body.
        let mut body = vec![1, 1];
        crate::encode::put_bytes(&mut body, b"a");
        crate::encode::put_bytes(&mut body, b"Array(UInt64)");
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(native(&body).is_err());
        assert_eq!(native(b""), Ok(0));
    }
}
