//! Encoders from typed rows to ClickHouse's binary input formats.
//!
//! - [`native`]: the columnar `Native` format (default): one block per batch, columns written
//!   with the server's own type names, `LowCardinality` in its dictionary form.
//! - [`rowbinary`]: `RowBinary`, row by row; needs no column names or type names in the body.
//!
//! Both take the target columns (name, type, server type text) and a [`Block`] (or rows) whose
//! values were already converted to those types, so encoding cannot fail.

pub mod native;
pub mod rowbinary;

use bytes::Bytes;

use crate::block::Block;
use crate::types::ColumnType;
use crate::value::Value;

/// A target column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Parsed type.
    pub ty: ColumnType,
    /// The type exactly as the server printed it (sent in Native blocks).
    pub type_text: String,
}

impl Column {
    /// A column named `name` of the type ClickHouse prints as `type_text`.
    ///
    /// # Errors
    /// [`UnsupportedType`](crate::types::UnsupportedType) when the encoders cannot write it.
    pub fn parse(name: &str, type_text: &str) -> Result<Self, crate::types::UnsupportedType> {
        Ok(Column {
            name: name.to_owned(),
            ty: ColumnType::parse(type_text)?,
            type_text: type_text.to_owned(),
        })
    }
}

/// Wire format of inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `Native` (columnar; the default).
    Native,
    /// `RowBinary`.
    RowBinary,
}

impl Format {
    /// The name used in `FORMAT ...`.
    pub fn as_sql(self) -> &'static str {
        match self {
            Format::Native => "Native",
            Format::RowBinary => "RowBinary",
        }
    }

    /// The format to use for these columns: Native unless a column needs a Native serialization
    /// this encoder does not produce (`LowCardinality(Nullable(..))`), then RowBinary.
    pub fn for_columns(self, columns: &[Column]) -> Format {
        let lc_nullable = |t: &ColumnType| match t {
            ColumnType::LowCardinality(inner) => inner.is_nullable(),
            _ => false,
        };
        if self == Format::Native && columns.iter().any(|c| contains(&c.ty, &lc_nullable)) {
            Format::RowBinary
        } else {
            self
        }
    }
}

fn contains(t: &ColumnType, pred: &dyn Fn(&ColumnType) -> bool) -> bool {
    if pred(t) {
        return true;
    }
    match t {
        ColumnType::Nullable(i) | ColumnType::LowCardinality(i) | ColumnType::Array(i) => {
            contains(i, pred)
        }
        ColumnType::Map(k, v) => contains(k, pred) || contains(v, pred),
        _ => false,
    }
}

/// Encodes `rows` (owned rows or references to them) for `columns` in `format`.
pub fn encode<R: AsRef<[Value]>>(format: Format, columns: &[Column], rows: &[R]) -> Bytes {
    encode_block(format, columns, &Block::from_row_refs(columns, rows))
}

/// Encodes a block for `columns` in `format`.
pub fn encode_block(format: Format, columns: &[Column], block: &Block) -> Bytes {
    match format.for_columns(columns) {
        Format::Native => native::encode(columns, block),
        Format::RowBinary => rowbinary::encode(columns, block),
    }
}

/// Writes an unsigned LEB128 integer (ClickHouse's `VarUInt`).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Writes a length-prefixed string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_matches_leb128() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        put_varint(&mut out, 0);
        assert_eq!(out, [0]);
    }

    #[test]
    fn lowcardinality_nullable_falls_back_to_rowbinary() {
        let col = |t: &str| Column {
            name: "c".into(),
            ty: ColumnType::parse(t).expect("t"),
            type_text: t.into(),
        };
        assert_eq!(
            Format::Native.for_columns(&[col("LowCardinality(String)")]),
            Format::Native
        );
        assert_eq!(
            Format::Native.for_columns(&[col("Array(LowCardinality(Nullable(String)))")]),
            Format::RowBinary
        );
    }
}
