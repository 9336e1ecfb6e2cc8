//! `Native`: one block — column count, row count, then per column its name, type and data.
//!
//! Column data layouts (ClickHouse's `ISerialization` bulk forms): fixed-width values back to
//! back; `String` length-prefixed; `Nullable` a null map then the nested column; `Array` cumulative
//! UInt64 offsets then the flattened nested column; `Map` as `Array(Tuple(K, V))`: offsets, keys
//! column, values column; `LowCardinality(T)` a version prefix (1 = shared dictionaries with
//! additional keys), then index type flags, the dictionary (a column of T) and the indexes.

use bytes::Bytes;

use super::rowbinary::put_scalar;
use super::{put_bytes, put_varint, Column};
use crate::block::{Block, Data};
use crate::types::ColumnType;
use crate::value::Value;

/// `LowCardinality` flag: the dictionary in this block carries additional keys.
const HAS_ADDITIONAL_KEYS: u64 = 1 << 9;
/// `LowCardinality` flag: the reader must replace its dictionary.
const NEED_UPDATE_DICTIONARY: u64 = 1 << 10;
/// `LowCardinality` keys-serialization version: shared dictionaries with additional keys.
const SHARED_DICTIONARIES_WITH_ADDITIONAL_KEYS: u64 = 1;

/// Encodes a block as one Native block.
pub fn encode(columns: &[Column], block: &Block) -> Bytes {
    // Sized up front: growing a multi-megabyte buffer copies it each time.
    let header: usize = columns
        .iter()
        .map(|c| c.name.len() + c.type_text.len() + 64)
        .sum();
    let mut out = Vec::with_capacity(block.encoded_size_hint() + header + 16);
    put_varint(&mut out, columns.len() as u64);
    put_varint(&mut out, block.len() as u64);
    for (col, data) in columns.iter().zip(&block.data) {
        put_bytes(&mut out, col.name.as_bytes());
        put_bytes(&mut out, col.type_text.as_bytes());
        put_prefix(&mut out, &col.ty);
        put_data(&mut out, &col.ty, data);
    }
    Bytes::from(out)
}

/// Encodes rows (owned rows or references to them) as one Native block.
pub fn encode_rows<R: AsRef<[Value]>>(columns: &[Column], rows: &[R]) -> Bytes {
    encode(columns, &Block::from_row_refs(columns, rows))
}

/// One column's data, with its type matched once per column, not once per value.
fn put_data(out: &mut Vec<u8>, ty: &ColumnType, data: &Data) {
    match data {
        Data::UInt(v) => fixed_width(out, v.iter().map(|x| x.to_le_bytes()), uint_width(ty)),
        Data::Int(v) => fixed_width(out, v.iter().map(|x| x.to_le_bytes()), int_width(ty)),
        Data::Float(v) if *ty == ColumnType::Float32 => {
            fixed_width(out, v.iter().map(|x| (*x as f32).to_le_bytes()), 4);
        }
        Data::Float(v) => fixed_width(out, v.iter().map(|x| x.to_le_bytes()), 8),
        Data::Str(s) => {
            out.reserve(s.bytes().len() + s.len() * 2);
            for b in s.iter() {
                // Most strings here are short: a one-byte length, no varint loop.
                match u8::try_from(b.len()) {
                    Ok(0) => out.push(0),
                    Ok(n) if n < 0x80 => {
                        out.push(n);
                        out.extend_from_slice(b);
                    }
                    _ => put_bytes(out, b),
                }
            }
        }
        Data::Lc(l) => {
            if l.ids().is_empty() {
                return;
            }
            let dict = l.dictionary();
            put_dictionary_header(out, dict.len());
            for d in dict.iter() {
                put_bytes(out, d);
            }
            put_indexes(out, dict.len(), l.ids().iter().map(|&i| u64::from(i)));
        }
        Data::Values(v) => {
            let values: Vec<&Value> = v.iter().collect();
            put_column(out, ty, &values);
        }
    }
}

/// Byte width of an unsigned column type's values (`Data::UInt`).
pub(super) fn uint_width(ty: &ColumnType) -> usize {
    match ty {
        ColumnType::UInt8 | ColumnType::Bool => 1,
        ColumnType::UInt16 | ColumnType::Date => 2,
        ColumnType::UInt32 | ColumnType::DateTime => 4,
        _ => 8,
    }
}

/// Byte width of a signed column type's values (`Data::Int`).
pub(super) fn int_width(ty: &ColumnType) -> usize {
    match ty {
        ColumnType::Int8 | ColumnType::Enum8(_) => 1,
        ColumnType::Int16 | ColumnType::Enum16(_) => 2,
        ColumnType::Int32 => 4,
        _ => 8,
    }
}

/// Appends the first `width` bytes of each little-endian value (a narrower integer type's
/// encoding: two's complement truncation).
fn fixed_width<const N: usize>(
    out: &mut Vec<u8>,
    values: impl ExactSizeIterator<Item = [u8; N]>,
    width: usize,
) {
    out.reserve(values.len() * width);
    if width == N {
        for v in values {
            out.extend_from_slice(&v);
        }
    } else {
        for v in values {
            out.extend_from_slice(&v[..width.min(N)]);
        }
    }
}

/// Index width code for a dictionary of `len` keys and its byte width.
fn index_width(len: usize) -> (u64, usize) {
    match len {
        0..=0xff => (0u64, 1),
        0x100..=0xffff => (1, 2),
        0x1_0000..=0xffff_ffff => (2, 4),
        _ => (3, 8),
    }
}

fn put_dictionary_header(out: &mut Vec<u8>, len: usize) {
    let (code, _) = index_width(len);
    out.extend_from_slice(&(code | HAS_ADDITIONAL_KEYS | NEED_UPDATE_DICTIONARY).to_le_bytes());
    out.extend_from_slice(&(len as u64).to_le_bytes());
}

fn put_indexes(out: &mut Vec<u8>, dict_len: usize, indexes: impl ExactSizeIterator<Item = u64>) {
    let (_, width) = index_width(dict_len);
    out.extend_from_slice(&(indexes.len() as u64).to_le_bytes());
    fixed_width(out, indexes.map(u64::to_le_bytes), width);
}

/// State prefixes come before any column data of the column (nested ones included).
fn put_prefix(out: &mut Vec<u8>, ty: &ColumnType) {
    match ty {
        ColumnType::LowCardinality(_) => {
            out.extend_from_slice(&SHARED_DICTIONARIES_WITH_ADDITIONAL_KEYS.to_le_bytes())
        }
        ColumnType::Nullable(i) | ColumnType::Array(i) => put_prefix(out, i),
        ColumnType::Map(k, v) => {
            put_prefix(out, k);
            put_prefix(out, v);
        }
        _ => {}
    }
}

fn put_column(out: &mut Vec<u8>, ty: &ColumnType, values: &[&Value]) {
    match ty {
        ColumnType::Nullable(inner) => {
            out.extend(values.iter().map(|v| u8::from(matches!(v, Value::Null))));
            let zero = crate::convert::zero_of(inner);
            let filled: Vec<&Value> = values
                .iter()
                .map(|v| if matches!(v, Value::Null) { &zero } else { *v })
                .collect();
            put_column(out, inner, &filled);
        }
        ColumnType::Array(inner) => {
            let mut offset = 0u64;
            let mut flat = Vec::new();
            for v in values {
                if let Value::Array(items) = v {
                    offset += items.len() as u64;
                    flat.extend(items.iter());
                }
                out.extend_from_slice(&offset.to_le_bytes());
            }
            put_column(out, inner, &flat);
        }
        ColumnType::Map(k, val) => {
            let mut offset = 0u64;
            let (mut keys, mut vals) = (Vec::new(), Vec::new());
            for v in values {
                if let Value::Map(pairs) = v {
                    offset += pairs.len() as u64;
                    keys.extend(pairs.iter().map(|(a, _)| a));
                    vals.extend(pairs.iter().map(|(_, b)| b));
                }
                out.extend_from_slice(&offset.to_le_bytes());
            }
            put_column(out, k, &keys);
            put_column(out, val, &vals);
        }
        ColumnType::LowCardinality(inner) => put_low_cardinality(out, inner, values),
        scalar => {
            for v in values {
                put_scalar(out, scalar, v);
            }
        }
    }
}

fn put_low_cardinality(out: &mut Vec<u8>, inner: &ColumnType, values: &[&Value]) {
    if values.is_empty() {
        return;
    }
    let mut dict: Vec<&Value> = Vec::new();
    let mut lookup: ahash::AHashMap<std::borrow::Cow<'_, [u8]>, u64> = ahash::AHashMap::new();
    let mut indexes = Vec::with_capacity(values.len());
    for v in values {
        // Strings are their own key (no copy); other types key on their encoded bytes.
        let key = match (inner, v) {
            (ColumnType::String, Value::Bytes(b)) => std::borrow::Cow::Borrowed(b.as_slice()),
            _ => {
                let mut k = Vec::new();
                put_scalar(&mut k, inner, v);
                std::borrow::Cow::Owned(k)
            }
        };
        let next = dict.len() as u64;
        let idx = *lookup.entry(key).or_insert_with(|| {
            dict.push(v);
            next
        });
        indexes.push(idx);
    }
    put_dictionary_header(out, dict.len());
    put_column(out, inner, &dict);
    put_indexes(out, dict.len(), indexes.into_iter());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Row;

    fn col(name: &str, t: &str) -> Column {
        Column::parse(name, t).expect("type")
    }

    #[test]
    fn block_header_and_columns() {
        let cols = [col("x", "UInt8"), col("s", "Nullable(String)")];
        let rows = vec![
            vec![Value::UInt(1), Value::Null],
            vec![Value::UInt(2), Value::str("a")],
        ];
        let b = encode_rows(&cols, &rows);
        let mut want = vec![2, 2, 1, b'x', 5];
        want.extend_from_slice(b"UInt8");
        want.extend_from_slice(&[1, 2, 1, b's', 16]);
        want.extend_from_slice(b"Nullable(String)");
        want.extend_from_slice(&[1, 0, 0, 1, b'a']);
        assert_eq!(b.as_ref(), want.as_slice());
    }

    #[test]
    fn arrays_write_cumulative_offsets() {
        let rows = vec![
            vec![Value::Array(vec![Value::UInt(1), Value::UInt(2)])],
            vec![Value::Array(vec![])],
            vec![Value::Array(vec![Value::UInt(3)])],
        ];
        let b = encode_rows(&[col("a", "Array(UInt8)")], &rows);
        let body = &b[2 + 2 + 13..];
        let offsets: Vec<u64> = body[..24]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        assert_eq!(offsets, [2, 2, 3]);
        assert_eq!(&body[24..], [1, 2, 3]);
    }

    #[test]
    fn low_cardinality_dictionary_and_indexes() {
        let rows: Vec<Row> = ["a", "b", "a"]
            .iter()
            .map(|s| vec![Value::str(s)])
            .collect();
        let b = encode_rows(&[col("l", "LowCardinality(String)")], &rows);
        let body = &b[2 + 2 + 23..];
        assert_eq!(&body[..8], 1u64.to_le_bytes());
        assert_eq!(
            &body[8..16],
            (HAS_ADDITIONAL_KEYS | NEED_UPDATE_DICTIONARY).to_le_bytes()
        );
        assert_eq!(&body[16..24], 2u64.to_le_bytes());
        assert_eq!(&body[24..28], [1, b'a', 1, b'b']);
        assert_eq!(&body[28..36], 3u64.to_le_bytes());
        assert_eq!(&body[36..], [0, 1, 0]);
    }
}
