//! Lenient JSON field readers for the OTLP JSON encoding (protobuf JSON mapping).
//!
//! OTLP/JSON (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>) writes 64-bit
//! integers as strings (`"1700000000000000000"`), enums as integers, and non-finite doubles as
//! `"NaN"`, `"Infinity"`, `"-Infinity"`; `null` means the default. These readers accept both the
//! string and the number form so any conforming sender decodes.

use serde::de::{Deserialize, Deserializer, Error};
use serde_json::Value;

/// `null` or missing → `T::default()`.
pub fn nd<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn to_u64<E: Error>(v: &Value) -> Result<u64, E> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| E::custom(format!("expected an unsigned 64-bit integer, got {v}")))
}

fn to_i64<E: Error>(v: &Value) -> Result<i64, E> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| E::custom(format!("expected a 64-bit integer, got {v}")))
}

fn to_f64<E: Error>(v: &Value) -> Result<f64, E> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
    .ok_or_else(|| E::custom(format!("expected a number, got {v}")))
}

/// A `fixed64`/`uint64` field.
pub fn u64_<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Option::<Value>::deserialize(d)?.map_or(Ok(0), |v| to_u64(&v))
}

/// An optional `int64`/`sfixed64` field (`oneof` member).
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<Value>::deserialize(d)?
        .map(|v| to_i64(&v))
        .transpose()
}

/// A `double` field.
pub fn f64_<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Option::<Value>::deserialize(d)?.map_or(Ok(0.0), |v| to_f64(&v))
}

/// An optional `double` field (`oneof` member or proto3 `optional`).
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<Value>::deserialize(d)?
        .map(|v| to_f64(&v))
        .transpose()
}

/// A `repeated fixed64` field.
pub fn vec_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    let values: Vec<Value> = nd(d)?;
    values.iter().map(to_u64).collect()
}

/// A `repeated double` field.
pub fn vec_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let values: Vec<Value> = nd(d)?;
    values.iter().map(to_f64).collect()
}

/// `AggregationTemporality`: the integer, or its name as some encoders write it.
pub fn temporality<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(0),
        Some(Value::String(s)) => Ok(match s.as_str() {
            "AGGREGATION_TEMPORALITY_DELTA" => 1,
            "AGGREGATION_TEMPORALITY_CUMULATIVE" => 2,
            _ => 0,
        }),
        Some(v) => to_i64(&v).map(|i| i32::try_from(i).unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(default, deserialize_with = "u64_")]
        a: u64,
        #[serde(default, deserialize_with = "opt_f64")]
        b: Option<f64>,
        #[serde(default, deserialize_with = "vec_u64")]
        c: Vec<u64>,
        #[serde(default, deserialize_with = "temporality")]
        d: i32,
    }

    #[test]
    fn numbers_as_strings_or_numbers() {
        let t: T = serde_json::from_str(r#"{"a":"18446744073709551615","b":"NaN","c":["1",2],"d":"AGGREGATION_TEMPORALITY_DELTA"}"#)
            .expect("parses");
        assert_eq!(t.a, u64::MAX);
        assert!(t.b.is_some_and(f64::is_nan));
        assert_eq!(t.c, [1, 2]);
        assert_eq!(t.d, 1);
        let t: T = serde_json::from_str(r#"{"a":null,"c":null,"d":2}"#).expect("parses");
        assert_eq!((t.a, t.b, t.c.len(), t.d), (0, None, 0, 2));
        let err = serde_json::from_str::<T>(r#"{"a":"x"}"#).expect_err("bad");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
