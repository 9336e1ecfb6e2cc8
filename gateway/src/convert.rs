//! Converting loosely typed input (JSON values, text) into [`Value`]s of a column type, with
//! messages that say what was expected.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value as Json;

use crate::types::ColumnType;
use crate::value::Value;

/// Why a value does not fit its column.
pub type ConvertError = String;

fn range<T: TryFrom<i128>>(v: i128, ty: &ColumnType) -> Result<T, ConvertError> {
    T::try_from(v).map_err(|_| format!("{v} is out of range for {ty}"))
}

fn json_int(j: &Json, ty: &ColumnType) -> Result<i128, ConvertError> {
    match j {
        Json::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| format!("expected an integer for {ty}, got {n}")),
        Json::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected an integer for {ty}, got {s:?}")),
        Json::Bool(b) => Ok(i128::from(*b)),
        other => Err(format!("expected an integer for {ty}, got {other}")),
    }
}

fn json_float(j: &Json, ty: &ColumnType) -> Result<f64, ConvertError> {
    match j {
        Json::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("expected a number for {ty}")),
        Json::String(s) => {
            parse_float(s).ok_or_else(|| format!("expected a number for {ty}, got {s:?}"))
        }
        other => Err(format!("expected a number for {ty}, got {other}")),
    }
}

/// Parses a float, accepting `nan`, `inf`, `+inf`, `-inf` in any case.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

/// Seconds (with fraction) since the epoch from a number or a date-time text.
fn json_epoch_seconds(j: &Json, ty: &ColumnType) -> Result<f64, ConvertError> {
    match j {
        Json::Number(n) => n.as_f64().ok_or_else(|| format!("expected a timestamp for {ty}")),
        Json::String(s) => parse_datetime(s).ok_or_else(|| {
            format!("expected a timestamp for {ty} (unix seconds, 'YYYY-MM-DD hh:mm:ss[.fff]' or RFC 3339), got {s:?}")
        }),
        other => Err(format!("expected a timestamp for {ty}, got {other}")),
    }
}

/// Parses `YYYY-MM-DD hh:mm:ss[.fff]` (UTC), RFC 3339, or a number of seconds.
pub fn parse_datetime(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp() as f64 + f64::from(dt.timestamp_subsec_nanos()) / 1e9);
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            let utc = dt.and_utc();
            return Some(utc.timestamp() as f64 + f64::from(utc.timestamp_subsec_nanos()) / 1e9);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp() as f64)
}

fn parse_uuid(s: &str) -> Option<u128> {
    let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
    (hex.len() == 32)
        .then(|| u128::from_str_radix(&hex, 16).ok())
        .flatten()
}

fn parse_decimal(text: &str, scale: u32) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = t.strip_prefix('-').map_or((false, t), |r| (true, r));
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > scale as usize || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let digits = format!("{int}{frac:0<width$}", width = scale as usize);
    let v: i128 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

fn text_of(j: &Json) -> String {
    match j {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Converts a JSON value to the storage form of `ty`.
///
/// # Errors
/// A message naming the expected type and the offending input.
pub fn from_json(j: &Json, ty: &ColumnType) -> Result<Value, ConvertError> {
    use ColumnType as T;
    if j.is_null() {
        return if ty.is_nullable() {
            Ok(Value::Null)
        } else {
            Err(format!("null is not allowed for {ty}"))
        };
    }
    Ok(match ty {
        T::UInt8 => Value::UInt(range::<u8>(json_int(j, ty)?, ty)?.into()),
        T::UInt16 => Value::UInt(range::<u16>(json_int(j, ty)?, ty)?.into()),
        T::UInt32 => Value::UInt(range::<u32>(json_int(j, ty)?, ty)?.into()),
        T::UInt64 => Value::UInt(range::<u64>(json_int(j, ty)?, ty)?),
        T::Int8 => Value::Int(range::<i8>(json_int(j, ty)?, ty)?.into()),
        T::Int16 => Value::Int(range::<i16>(json_int(j, ty)?, ty)?.into()),
        T::Int32 => Value::Int(range::<i32>(json_int(j, ty)?, ty)?.into()),
        T::Int64 => Value::Int(range::<i64>(json_int(j, ty)?, ty)?),
        T::Float32 | T::Float64 => Value::Float(json_float(j, ty)?),
        T::Bool => match j {
            Json::Bool(b) => Value::UInt(u64::from(*b)),
            other => Value::UInt(range::<u8>(json_int(other, ty)?, ty)?.min(1).into()),
        },
        T::String => Value::Bytes(text_of(j).into_bytes()),
        T::FixedString(n) => {
            let mut b = text_of(j).into_bytes();
            if b.len() > *n {
                return Err(format!("{} bytes do not fit {ty}", b.len()));
            }
            b.resize(*n, 0);
            Value::Bytes(b)
        }
        T::Date => {
            let secs = json_epoch_seconds(j, ty)?;
            let days = if matches!(j, Json::Number(_)) {
                secs
            } else {
                (secs / 86_400.0).floor()
            };
            Value::UInt(range::<u16>(days as i128, ty)?.into())
        }
        T::DateTime => {
            Value::UInt(range::<u32>(json_epoch_seconds(j, ty)?.floor() as i128, ty)?.into())
        }
        T::DateTime64(p) => {
            let ticks = match (j, json_epoch_seconds(j, ty)) {
                // Integers are taken as seconds too, like the ClickHouse text formats do for plain numbers.
                (_, Ok(secs)) => (secs * 10f64.powi(*p as i32)).round() as i128,
                (_, Err(e)) => return Err(e),
            };
            Value::Int(range::<i64>(ticks, ty)?)
        }
        T::Uuid => {
            Value::Uuid(parse_uuid(&text_of(j)).ok_or_else(|| format!("expected a UUID, got {j}"))?)
        }
        T::Enum8(items) => Value::Int(enum_code(
            j,
            items.iter().map(|(n, v)| (n.as_str(), i64::from(*v))),
            ty,
        )?),
        T::Enum16(items) => Value::Int(enum_code(
            j,
            items.iter().map(|(n, v)| (n.as_str(), i64::from(*v))),
            ty,
        )?),
        T::Decimal(_, scale) => {
            Value::Decimal(parse_decimal(&text_of(j), *scale).ok_or_else(|| {
                format!("expected a decimal with at most {scale} fraction digits for {ty}, got {j}")
            })?)
        }
        T::Nullable(inner) | T::LowCardinality(inner) => from_json(j, inner)?,
        T::Array(inner) => match j {
            Json::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| from_json(x, inner).map_err(|e| format!("element {i}: {e}")))
                    .collect::<Result<_, _>>()?,
            ),
            other => return Err(format!("expected an array for {ty}, got {other}")),
        },
        T::Map(k, v) => match j {
            Json::Object(obj) => Value::Map(
                obj.iter()
                    .map(|(key, val)| {
                        let kv = from_json(&Json::String(key.clone()), k)
                            .map_err(|e| format!("key {key:?}: {e}"))?;
                        let vv = from_json(val, v).map_err(|e| format!("value of {key:?}: {e}"))?;
                        Ok((kv, vv))
                    })
                    .collect::<Result<_, ConvertError>>()?,
            ),
            other => return Err(format!("expected an object for {ty}, got {other}")),
        },
    })
}

fn enum_code<'a>(
    j: &Json,
    mut items: impl Iterator<Item = (&'a str, i64)>,
    ty: &ColumnType,
) -> Result<i64, ConvertError> {
    match j {
        Json::String(s) => items
            .find(|(n, _)| n == s)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("{s:?} is not a value of {ty}")),
        Json::Number(n) => {
            let code = n
                .as_i64()
                .ok_or_else(|| format!("{n} is not a value of {ty}"))?;
            items
                .find(|(_, v)| *v == code)
                .map(|(_, v)| v)
                .ok_or_else(|| format!("{code} is not a value of {ty}"))
        }
        other => Err(format!("expected an enum name for {ty}, got {other}")),
    }
}

/// The value a missing column takes when it has no server-side default we can rely on.
pub fn zero_of(ty: &ColumnType) -> Value {
    use ColumnType as T;
    match ty {
        T::Nullable(_) => Value::Null,
        T::LowCardinality(t) => zero_of(t),
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::DateTime64(_) => Value::Int(0),
        T::Enum8(items) => Value::Int(items.first().map_or(0, |(_, v)| i64::from(*v))),
        T::Enum16(items) => Value::Int(items.first().map_or(0, |(_, v)| i64::from(*v))),
        T::Float32 | T::Float64 => Value::Float(0.0),
        T::String => Value::Bytes(Vec::new()),
        T::FixedString(n) => Value::Bytes(vec![0; *n]),
        T::Uuid => Value::Uuid(0),
        T::Decimal(..) => Value::Decimal(0),
        T::Array(_) => Value::Array(Vec::new()),
        T::Map(..) => Value::Map(Vec::new()),
        T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 | T::Bool | T::Date | T::DateTime => {
            Value::UInt(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> ColumnType {
        ColumnType::parse(s).expect("type")
    }

    #[test]
    fn integers_check_their_range() {
        assert_eq!(from_json(&json!(255), &t("UInt8")), Ok(Value::UInt(255)));
        assert!(from_json(&json!(256), &t("UInt8"))
            .expect_err("range")
            .contains("out of range for UInt8"));
        assert_eq!(from_json(&json!("-5"), &t("Int16")), Ok(Value::Int(-5)));
        assert!(from_json(&json!(-1), &t("UInt64")).is_err());
    }

    #[test]
    fn times_accept_numbers_and_text() {
        assert_eq!(
            from_json(&json!("1970-01-02 00:00:00"), &t("DateTime")),
            Ok(Value::UInt(86_400))
        );
        assert_eq!(
            from_json(&json!(1.5), &t("DateTime64(3)")),
            Ok(Value::Int(1500))
        );
        assert_eq!(
            from_json(
                &json!("1970-01-01T00:00:01.25Z"),
                &t("DateTime64(3, 'UTC')")
            ),
            Ok(Value::Int(1250))
        );
        assert_eq!(
            from_json(&json!("1970-01-11"), &t("Date")),
            Ok(Value::UInt(10))
        );
        assert!(from_json(&json!("yesterday"), &t("DateTime")).is_err());
    }

    #[test]
    fn nullable_enum_decimal_uuid_map() {
        assert_eq!(
            from_json(&json!(null), &t("Nullable(String)")),
            Ok(Value::Null)
        );
        assert!(from_json(&json!(null), &t("String"))
            .expect_err("null")
            .contains("null is not allowed"));
        assert_eq!(
            from_json(&json!("b"), &t("Enum8('a' = 1, 'b' = 2)")),
            Ok(Value::Int(2))
        );
        assert!(from_json(&json!("c"), &t("Enum8('a' = 1)")).is_err());
        assert_eq!(
            from_json(&json!("12.5"), &t("Decimal(9, 2)")),
            Ok(Value::Decimal(1250))
        );
        assert_eq!(
            from_json(&json!(-0.5), &t("Decimal(9, 2)")),
            Ok(Value::Decimal(-50))
        );
        assert!(from_json(&json!("1.234"), &t("Decimal(9, 2)")).is_err());
        let u = from_json(&json!("00000000-0000-0000-0000-000000000001"), &t("UUID"));
        assert_eq!(u, Ok(Value::Uuid(1)));
        let m = from_json(&json!({"a": 1}), &t("Map(String, UInt8)"));
        assert_eq!(m, Ok(Value::Map(vec![(Value::str("a"), Value::UInt(1))])));
    }

    #[test]
    fn array_errors_name_the_element() {
        let err = from_json(&json!([1, "x"]), &t("Array(UInt8)")).expect_err("bad element");
        assert!(err.starts_with("element 1:"), "{err}");
    }
}
