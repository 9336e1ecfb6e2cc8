//! `RowBinary`: each row's values in column order, little-endian, strings length-prefixed.

use bytes::Bytes;

use super::{put_bytes, put_varint, Column};
use crate::block::{Block, Data};
use crate::types::ColumnType;
use crate::value::Value;

/// Encodes rows as `RowBinary`.
pub fn encode_rows<R: AsRef<[Value]>>(columns: &[Column], rows: &[R]) -> Bytes {
    encode(columns, &Block::from_row_refs(columns, rows))
}

/// Encodes a block as `RowBinary`.
pub fn encode(columns: &[Column], block: &Block) -> Bytes {
    let mut out = Vec::with_capacity(block.encoded_size_hint());
    for i in 0..block.len() {
        put_row(&mut out, columns, block, i);
    }
    Bytes::from(out)
}

/// Appends row `i` of `block`.
pub fn put_row(out: &mut Vec<u8>, columns: &[Column], block: &Block, i: usize) {
    for (col, data) in columns.iter().zip(&block.data) {
        match data {
            Data::UInt(v) => {
                out.extend_from_slice(&v[i].to_le_bytes()[..super::native::uint_width(&col.ty)])
            }
            Data::Int(v) => {
                out.extend_from_slice(&v[i].to_le_bytes()[..super::native::int_width(&col.ty)])
            }
            Data::Float(v) if col.ty == ColumnType::Float32 => {
                out.extend_from_slice(&(v[i] as f32).to_le_bytes())
            }
            Data::Float(v) => out.extend_from_slice(&v[i].to_le_bytes()),
            Data::Str(s) => put_bytes(out, s.get(i)),
            Data::Lc(l) => put_bytes(out, l.get(i)),
            Data::Values(v) => put_value(out, &col.ty, &v[i]),
        }
    }
}

/// Writes a fixed-width scalar of type `ty` (shared with the Native encoder).
pub fn put_scalar(out: &mut Vec<u8>, ty: &ColumnType, v: &Value) {
    use ColumnType as T;
    let u = |v: &Value| match v {
        Value::UInt(x) => *x,
        Value::Int(x) => *x as u64,
        _ => 0,
    };
    let i = |v: &Value| match v {
        Value::Int(x) => *x,
        Value::UInt(x) => *x as i64,
        _ => 0,
    };
    match ty {
        T::UInt8 | T::Bool => out.push(u(v) as u8),
        T::UInt16 | T::Date => out.extend_from_slice(&(u(v) as u16).to_le_bytes()),
        T::UInt32 | T::DateTime => out.extend_from_slice(&(u(v) as u32).to_le_bytes()),
        T::UInt64 => out.extend_from_slice(&u(v).to_le_bytes()),
        T::Int8 | T::Enum8(_) => out.push(i(v) as i8 as u8),
        T::Int16 | T::Enum16(_) => out.extend_from_slice(&(i(v) as i16).to_le_bytes()),
        T::Int32 => out.extend_from_slice(&(i(v) as i32).to_le_bytes()),
        T::Int64 | T::DateTime64(_) => out.extend_from_slice(&i(v).to_le_bytes()),
        T::Float32 => out.extend_from_slice(&(float(v) as f32).to_le_bytes()),
        T::Float64 => out.extend_from_slice(&float(v).to_le_bytes()),
        T::Uuid => {
            // ClickHouse stores a UUID as two UInt64 halves, high half first, each little-endian.
            let x = if let Value::Uuid(x) = v { *x } else { 0 };
            out.extend_from_slice(&((x >> 64) as u64).to_le_bytes());
            out.extend_from_slice(&(x as u64).to_le_bytes());
        }
        T::Decimal(p, _) => {
            let x = if let Value::Decimal(x) = v { *x } else { 0 };
            match p {
                0..=9 => out.extend_from_slice(&(x as i32).to_le_bytes()),
                10..=18 => out.extend_from_slice(&(x as i64).to_le_bytes()),
                _ => out.extend_from_slice(&x.to_le_bytes()),
            }
        }
        T::FixedString(n) => {
            let b = if let Value::Bytes(b) = v {
                b.as_slice()
            } else {
                &[]
            };
            let mut fixed = b.to_vec();
            fixed.resize(*n, 0);
            out.extend_from_slice(&fixed);
        }
        T::String => put_bytes(out, if let Value::Bytes(b) = v { b } else { &[] }),
        T::Nullable(_) | T::LowCardinality(_) | T::Array(_) | T::Map(..) => {}
    }
}

fn float(v: &Value) -> f64 {
    match v {
        Value::Float(f) => *f,
        Value::Int(i) => *i as f64,
        Value::UInt(u) => *u as f64,
        _ => 0.0,
    }
}

fn put_value(out: &mut Vec<u8>, ty: &ColumnType, v: &Value) {
    match ty {
        ColumnType::Nullable(inner) => {
            if matches!(v, Value::Null) {
                out.push(1);
            } else {
                out.push(0);
                put_value(out, inner, v);
            }
        }
        ColumnType::LowCardinality(inner) => put_value(out, inner, v),
        ColumnType::Array(inner) => {
            let items = if let Value::Array(items) = v {
                items.as_slice()
            } else {
                &[]
            };
            put_varint(out, items.len() as u64);
            for item in items {
                put_value(out, inner, item);
            }
        }
        ColumnType::Map(k, val) => {
            let pairs = if let Value::Map(p) = v {
                p.as_slice()
            } else {
                &[]
            };
            put_varint(out, pairs.len() as u64);
            for (key, value) in pairs {
                put_value(out, k, key);
                put_value(out, val, value);
            }
        }
        scalar => put_scalar(out, scalar, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Row;

    fn col(name: &str, t: &str) -> Column {
        Column::parse(name, t).expect("type")
    }

    #[test]
    fn encodes_scalars_strings_nullable_and_arrays() {
        let cols = [
            col("a", "UInt16"),
            col("s", "String"),
            col("n", "Nullable(Int8)"),
            col("arr", "Array(UInt8)"),
        ];
        let rows = vec![vec![
            Value::UInt(258),
            Value::str("hi"),
            Value::Null,
            Value::Array(vec![Value::UInt(7)]),
        ]];
        let b = encode_rows(&cols, &rows);
        assert_eq!(b.as_ref(), [2, 1, 2, b'h', b'i', 1, 1, 7]);
    }

    /// A minimal RowBinary reader for the property test (independent of the encoder's code).
    fn read_varint(b: &[u8], at: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[*at];
            *at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }

    fn read_str(b: &[u8], at: &mut usize) -> String {
        let n = read_varint(b, at) as usize;
        let s = String::from_utf8(b[*at..*at + n].to_vec()).expect("utf8");
        *at += n;
        s
    }

    proptest::proptest! {
        /// Whatever rows go in, a RowBinary reader gets the same values back, and nothing is left over.
        #[test]
        fn rowbinary_round_trips(rows in proptest::collection::vec(
            (proptest::prelude::any::<u64>(), ".{0,40}", proptest::option::of(proptest::prelude::any::<i32>()),
             proptest::collection::vec(".{0,8}", 0..5)),
            0..50,
        )) {
            let cols = [col("a", "UInt64"), col("s", "String"), col("n", "Nullable(Int32)"), col("arr", "Array(String)")];
            let values: Vec<Row> = rows.iter().map(|(a, s, n, arr)| vec![
                Value::UInt(*a),
                Value::str(s),
                n.map_or(Value::Null, |x| Value::Int(i64::from(x))),
                Value::Array(arr.iter().map(|x| Value::str(x)).collect()),
            ]).collect();
            let b = encode_rows(&cols, &values);
            let mut at = 0;
            for (a, s, n, arr) in &rows {
                let got_a = u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
                at += 8;
                proptest::prop_assert_eq!(got_a, *a);
                proptest::prop_assert_eq!(&read_str(&b, &mut at), s);
                let null = b[at] == 1;
                at += 1;
                proptest::prop_assert_eq!(null, n.is_none());
                if let Some(x) = n {
                    proptest::prop_assert_eq!(i32::from_le_bytes(b[at..at + 4].try_into().expect("4")), *x);
                    at += 4;
                }
                let len = read_varint(&b, &mut at) as usize;
                proptest::prop_assert_eq!(len, arr.len());
                for x in arr {
                    proptest::prop_assert_eq!(&read_str(&b, &mut at), x);
                }
            }
            proptest::prop_assert_eq!(at, b.len());
        }
    }

    #[test]
    fn uuid_halves_high_first() {
        let b = encode_rows(&[col("u", "UUID")], &[vec![Value::Uuid((1u128 << 64) | 2)]]);
        assert_eq!(&b[..8], 1u64.to_le_bytes());
        assert_eq!(&b[8..], 2u64.to_le_bytes());
    }
}
