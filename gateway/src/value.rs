//! Typed values, already checked against their column's type, ready to encode.
//!
//! Conversion happens when a request is decoded, so a bad value is reported with its row and
//! column while the client is still waiting, and the batch that is later encoded cannot fail.

/// One value, in the storage form of its column type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `NULL` of a `Nullable` column.
    Null,
    /// Unsigned integers, `Bool`, `Date` (days), `DateTime` (seconds), `Enum` codes stored as i64.
    UInt(u64),
    /// Signed integers, `DateTime64` ticks, `Enum` codes.
    Int(i64),
    /// `Float32` / `Float64`.
    Float(f64),
    /// `String` / `FixedString` bytes (FixedString already padded).
    Bytes(Vec<u8>),
    /// `UUID` as a 128-bit number (big-endian reading of its hex).
    Uuid(u128),
    /// `Decimal` scaled to its integer form.
    Decimal(i128),
    /// `Array(T)`.
    Array(Vec<Value>),
    /// `Map(K, V)`.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Self {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// Rough encoded size in bytes, for batch byte limits and memory accounting.
    pub fn approx_size(&self) -> usize {
        match self {
            Value::Null => 1,
            Value::UInt(_) | Value::Int(_) | Value::Float(_) => 8,
            Value::Uuid(_) | Value::Decimal(_) => 16,
            Value::Bytes(b) => b.len() + 2,
            Value::Array(v) => 8 + v.iter().map(Value::approx_size).sum::<usize>(),
            Value::Map(v) => {
                8 + v
                    .iter()
                    .map(|(k, x)| k.approx_size() + x.approx_size())
                    .sum::<usize>()
            }
        }
    }
}

/// A row: one value per column of the target column list, in order.
pub type Row = Vec<Value>;
