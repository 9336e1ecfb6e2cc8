//! ClickHouse column types the gateway can encode, parsed from `system.columns.type`.

use std::fmt;

/// A column type. Anything else is refused when the table's schema is loaded, naming the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// `UInt8`.
    UInt8,
    /// `UInt16`.
    UInt16,
    /// `UInt32`.
    UInt32,
    /// `UInt64`.
    UInt64,
    /// `Int8`.
    Int8,
    /// `Int16`.
    Int16,
    /// `Int32`.
    Int32,
    /// `Int64`.
    Int64,
    /// `Float32`.
    Float32,
    /// `Float64`.
    Float64,
    /// `Bool` (encoded as UInt8).
    Bool,
    /// `String`.
    String,
    /// `FixedString(N)`.
    FixedString(usize),
    /// `Date` (days since epoch, UInt16).
    Date,
    /// `DateTime` / `DateTime('tz')` (seconds, UInt32).
    DateTime,
    /// `DateTime64(p[, 'tz'])` (ticks of 10^-p s, Int64).
    DateTime64(u32),
    /// `UUID`.
    Uuid,
    /// `Enum8('a' = 1, ...)`.
    Enum8(Vec<(String, i8)>),
    /// `Enum16(...)`.
    Enum16(Vec<(String, i16)>),
    /// `Decimal(P, S)` and `Decimal32/64/128(S)`: precision, scale.
    Decimal(u32, u32),
    /// `Nullable(T)`.
    Nullable(Box<ColumnType>),
    /// `LowCardinality(T)`: encoded as T in RowBinary; see the Native encoder for its form there.
    LowCardinality(Box<ColumnType>),
    /// `Array(T)`.
    Array(Box<ColumnType>),
    /// `Map(K, V)`.
    Map(Box<ColumnType>, Box<ColumnType>),
}

/// A type string that is not (yet) supported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported column type `{0}`")]
pub struct UnsupportedType(pub String);

impl ColumnType {
    /// Parses a type as ClickHouse prints it in `system.columns`.
    ///
    /// # Errors
    /// [`UnsupportedType`] with the whole type string.
    pub fn parse(s: &str) -> Result<Self, UnsupportedType> {
        parse_type(s.trim()).ok_or_else(|| UnsupportedType(s.to_owned()))
    }

    /// The type without `LowCardinality` wrappers (what RowBinary carries).
    pub fn unwrap_low_cardinality(&self) -> &ColumnType {
        match self {
            ColumnType::LowCardinality(t) => t.unwrap_low_cardinality(),
            t => t,
        }
    }

    /// Whether a missing value can be stored (`Nullable`).
    pub fn is_nullable(&self) -> bool {
        match self {
            ColumnType::Nullable(_) => true,
            ColumnType::LowCardinality(t) => t.is_nullable(),
            _ => false,
        }
    }
}

fn inner<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    s.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// Splits `a, b(c, d), e` at top-level commas, respecting quotes.
fn split_args(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start, mut quoted) = (Vec::new(), 0i32, 0, false);
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            b',' if !quoted && depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(s[start..].trim());
    out
}

fn parse_enum<T: std::str::FromStr>(args: &str) -> Option<Vec<(String, T)>> {
    split_args(args)
        .into_iter()
        .map(|item| {
            let (name, value) = item.rsplit_once('=')?;
            let name = name.trim().strip_prefix('\'')?.strip_suffix('\'')?;
            Some((name.replace("\\'", "'"), value.trim().parse().ok()?))
        })
        .collect()
}

fn parse_type(s: &str) -> Option<ColumnType> {
    use ColumnType as T;
    let simple = match s {
        "UInt8" => Some(T::UInt8),
        "UInt16" => Some(T::UInt16),
        "UInt32" => Some(T::UInt32),
        "UInt64" => Some(T::UInt64),
        "Int8" => Some(T::Int8),
        "Int16" => Some(T::Int16),
        "Int32" => Some(T::Int32),
        "Int64" => Some(T::Int64),
        "Float32" => Some(T::Float32),
        "Float64" => Some(T::Float64),
        "Bool" => Some(T::Bool),
        "String" => Some(T::String),
        "Date" => Some(T::Date),
        "DateTime" => Some(T::DateTime),
        "UUID" => Some(T::Uuid),
        _ => None,
    };
    if simple.is_some() {
        return simple;
    }
    if inner(s, "DateTime").is_some() {
        return Some(T::DateTime);
    }
    if let Some(a) = inner(s, "DateTime64") {
        return Some(T::DateTime64(split_args(a).first()?.parse().ok()?));
    }
    if let Some(a) = inner(s, "FixedString") {
        return Some(T::FixedString(a.trim().parse().ok()?));
    }
    if let Some(a) = inner(s, "Nullable") {
        return Some(T::Nullable(Box::new(parse_type(a.trim())?)));
    }
    if let Some(a) = inner(s, "LowCardinality") {
        return Some(T::LowCardinality(Box::new(parse_type(a.trim())?)));
    }
    if let Some(a) = inner(s, "Array") {
        return Some(T::Array(Box::new(parse_type(a.trim())?)));
    }
    if let Some(a) = inner(s, "Map") {
        let args = split_args(a);
        let [k, v] = args.as_slice() else { return None };
        return Some(T::Map(Box::new(parse_type(k)?), Box::new(parse_type(v)?)));
    }
    if let Some(a) = inner(s, "Enum8") {
        return Some(T::Enum8(parse_enum(a)?));
    }
    if let Some(a) = inner(s, "Enum16") {
        return Some(T::Enum16(parse_enum(a)?));
    }
    if let Some(a) = inner(s, "Decimal") {
        let args = split_args(a);
        let [p, sc] = args.as_slice() else {
            return None;
        };
        return Some(T::Decimal(p.parse().ok()?, sc.parse().ok()?));
    }
    for (name, precision) in [("Decimal32", 9), ("Decimal64", 18), ("Decimal128", 38)] {
        if let Some(a) = inner(s, name) {
            return Some(T::Decimal(precision, a.trim().parse().ok()?));
        }
    }
    None
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ColumnType as T;
        match self {
            T::UInt8 => f.write_str("UInt8"),
            T::UInt16 => f.write_str("UInt16"),
            T::UInt32 => f.write_str("UInt32"),
            T::UInt64 => f.write_str("UInt64"),
            T::Int8 => f.write_str("Int8"),
            T::Int16 => f.write_str("Int16"),
            T::Int32 => f.write_str("Int32"),
            T::Int64 => f.write_str("Int64"),
            T::Float32 => f.write_str("Float32"),
            T::Float64 => f.write_str("Float64"),
            T::Bool => f.write_str("Bool"),
            T::String => f.write_str("String"),
            T::FixedString(n) => write!(f, "FixedString({n})"),
            T::Date => f.write_str("Date"),
            T::DateTime => f.write_str("DateTime"),
            T::DateTime64(p) => write!(f, "DateTime64({p})"),
            T::Uuid => f.write_str("UUID"),
            T::Enum8(v) => write_enum(f, "Enum8", v),
            T::Enum16(v) => write_enum(f, "Enum16", v),
            T::Decimal(p, s) => write!(f, "Decimal({p}, {s})"),
            T::Nullable(t) => write!(f, "Nullable({t})"),
            T::LowCardinality(t) => write!(f, "LowCardinality({t})"),
            T::Array(t) => write!(f, "Array({t})"),
            T::Map(k, v) => write!(f, "Map({k}, {v})"),
        }
    }
}

fn write_enum<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    v: &[(String, T)],
) -> fmt::Result {
    let items: Vec<String> = v
        .iter()
        .map(|(n, x)| format!("'{}' = {x}", n.replace('\'', "\\'")))
        .collect();
    write!(f, "{name}({})", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_system_columns_prints() {
        use ColumnType as T;
        let cases = [
            ("UInt64", T::UInt64),
            ("DateTime('UTC')", T::DateTime),
            ("DateTime64(3, 'UTC')", T::DateTime64(3)),
            (
                "LowCardinality(String)",
                T::LowCardinality(Box::new(T::String)),
            ),
            (
                "Array(LowCardinality(String))",
                T::Array(Box::new(T::LowCardinality(Box::new(T::String)))),
            ),
            ("Nullable(Float64)", T::Nullable(Box::new(T::Float64))),
            (
                "Map(String, UInt64)",
                T::Map(Box::new(T::String), Box::new(T::UInt64)),
            ),
            ("Decimal(18, 4)", T::Decimal(18, 4)),
            ("Decimal64(4)", T::Decimal(18, 4)),
            (
                "Enum8('a' = 1, 'b,c' = -2)",
                T::Enum8(vec![("a".into(), 1), ("b,c".into(), -2)]),
            ),
            ("FixedString(16)", T::FixedString(16)),
        ];
        for (text, want) in cases {
            assert_eq!(ColumnType::parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn unknown_types_are_refused_by_name() {
        let err = ColumnType::parse("AggregateFunction(sum, UInt64)").expect_err("unsupported");
        assert!(err.to_string().contains("AggregateFunction(sum, UInt64)"));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "Array(Nullable(Int32))",
            "Map(String, Array(Float64))",
            "DateTime64(6)",
            "Enum16('x' = 300)",
        ] {
            let t = ColumnType::parse(text).expect("parses");
            assert_eq!(ColumnType::parse(&t.to_string()), Ok(t.clone()), "{text}");
        }
    }
}
