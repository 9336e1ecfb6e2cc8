//! Arrow IPC stream bodies into any table: each record batch column is matched to the table
//! column of the same name and every cell converted to that column's type (the same conversion
//! rules as NDJSON; timestamps become seconds with fraction, dates days).

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_ipc::reader::StreamReader;
use arrow_schema::{DataType, TimeUnit};
use serde_json::{json, Value as Json};

use crate::catalog::TableSchema;
use crate::convert::{from_json, zero_of};
use crate::encode::Column;
use crate::ingest::TableRows;
use crate::GatewayError;

fn bad(msg: String) -> GatewayError {
    GatewayError::BadRequest(msg)
}

/// One cell as JSON (`null` for a null slot).
fn cell(a: &ArrayRef, i: usize) -> Result<Json, String> {
    use arrow_array::cast::AsArray;
    use arrow_array::types as t;
    if a.is_null(i) {
        return Ok(Json::Null);
    }
    let secs = |v: i64, per_sec: f64| json!(v as f64 / per_sec);
    Ok(match a.data_type() {
        DataType::Boolean => json!(a.as_boolean().value(i)),
        DataType::Int8 => json!(a.as_primitive::<t::Int8Type>().value(i)),
        DataType::Int16 => json!(a.as_primitive::<t::Int16Type>().value(i)),
        DataType::Int32 => json!(a.as_primitive::<t::Int32Type>().value(i)),
        DataType::Int64 => json!(a.as_primitive::<t::Int64Type>().value(i)),
        DataType::UInt8 => json!(a.as_primitive::<t::UInt8Type>().value(i)),
        DataType::UInt16 => json!(a.as_primitive::<t::UInt16Type>().value(i)),
        DataType::UInt32 => json!(a.as_primitive::<t::UInt32Type>().value(i)),
        DataType::UInt64 => json!(a.as_primitive::<t::UInt64Type>().value(i)),
        DataType::Float32 => json!(a.as_primitive::<t::Float32Type>().value(i)),
        DataType::Float64 => json!(a.as_primitive::<t::Float64Type>().value(i)),
        DataType::Utf8 => json!(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => json!(a.as_string::<i64>().value(i)),
        DataType::Date32 => json!(format_date(a.as_primitive::<t::Date32Type>().value(i))),
        DataType::Timestamp(TimeUnit::Second, _) => {
            secs(a.as_primitive::<t::TimestampSecondType>().value(i), 1.0)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => secs(
            a.as_primitive::<t::TimestampMillisecondType>().value(i),
            1e3,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => secs(
            a.as_primitive::<t::TimestampMicrosecondType>().value(i),
            1e6,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            secs(a.as_primitive::<t::TimestampNanosecondType>().value(i), 1e9)
        }
        DataType::List(_) => {
            let inner = a.as_list::<i32>().value(i);
            Json::Array(
                (0..inner.len())
                    .map(|j| cell(&inner, j))
                    .collect::<Result<_, _>>()?,
            )
        }
        other => return Err(format!("Arrow type {other} is not supported")),
    })
}

fn format_date(days: i32) -> String {
    chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Decodes an Arrow IPC stream into rows for `schema`.
///
/// # Errors
/// 400 naming the batch, row and column that does not fit, or an unknown column.
pub fn rows(body: &[u8], schema: &TableSchema) -> Result<TableRows, GatewayError> {
    let reader = StreamReader::try_new(body, None)
        .map_err(|e| bad(format!("not an Arrow IPC stream: {e}")))?;
    let arrow_schema = reader.schema();
    let mut columns: Vec<Column> = Vec::new();
    for f in arrow_schema.fields() {
        match schema.column(f.name()) {
            Some(c) if !c.computed => columns.push(c.column.clone()),
            _ => {
                return Err(bad(format!(
                    "unknown column `{}` for table {}",
                    f.name(),
                    schema.full_name()
                )))
            }
        }
    }
    let extra: Vec<Column> = schema
        .columns
        .iter()
        .filter(|c| {
            !c.computed && !c.has_default && !columns.iter().any(|x| x.name == c.column.name)
        })
        .map(|c| c.column.clone())
        .collect();
    let mut out = Vec::new();
    for (b, batch) in reader.enumerate() {
        let batch: RecordBatch = batch.map_err(|e| bad(format!("Arrow batch {}: {e}", b + 1)))?;
        for i in 0..batch.num_rows() {
            let mut row = Vec::with_capacity(columns.len() + extra.len());
            for (c, col) in columns.iter().enumerate() {
                let j = cell(batch.column(c), i).map_err(|e| {
                    bad(format!(
                        "batch {} row {}: column `{}`: {e}",
                        b + 1,
                        i + 1,
                        col.name
                    ))
                })?;
                row.push(from_json(&j, &col.ty).map_err(|e| {
                    bad(format!(
                        "batch {} row {}: column `{}` ({}): {e}",
                        b + 1,
                        i + 1,
                        col.name,
                        col.type_text
                    ))
                })?);
            }
            row.extend(extra.iter().map(|c| zero_of(&c.ty)));
            out.push(row);
        }
    }
    columns.extend(extra);
    Ok(TableRows {
        columns: Arc::new(columns),
        rows: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ColumnInfo;
    use crate::types::ColumnType;
    use crate::value::Value;
    use arrow_array::{Float64Array, StringArray, TimestampMillisecondArray, UInt64Array};
    use arrow_ipc::writer::StreamWriter;
    use arrow_schema::{Field, Schema};

    fn table() -> TableSchema {
        let col = |n: &str, t: &str| ColumnInfo {
            column: Column {
                name: n.into(),
                ty: ColumnType::parse(t).expect("t"),
                type_text: t.into(),
            },
            has_default: false,
            computed: false,
        };
        TableSchema {
            database: "db".into(),
            table: "t".into(),
            columns: vec![
                col("id", "UInt64"),
                col("name", "String"),
                col("at", "DateTime64(3)"),
                col("v", "Float64"),
            ],
            engine: "MergeTree".into(),
            distributed: None,
        }
    }

    fn stream(fields: Vec<Field>, arrays: Vec<ArrayRef>) -> Vec<u8> {
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
        let mut buf = Vec::new();
        let mut w = StreamWriter::try_new(&mut buf, &schema).expect("writer");
        w.write(&batch).expect("write");
        w.finish().expect("finish");
        drop(w);
        buf
    }

    #[test]
    fn arrow_columns_map_by_name_and_convert() {
        let body = stream(
            vec![
                Field::new("id", DataType::UInt64, false),
                Field::new("name", DataType::Utf8, false),
                Field::new(
                    "at",
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                    false,
                ),
            ],
            vec![
                Arc::new(UInt64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(TimestampMillisecondArray::from(vec![1500, 2500])),
            ],
        );
        let r = rows(&body, &table()).expect("decodes");
        let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["id", "name", "at", "v"],
            "missing v without default is filled"
        );
        assert_eq!(
            r.rows[1],
            vec![
                Value::UInt(2),
                Value::str("b"),
                Value::Int(2500),
                Value::Float(0.0)
            ]
        );
    }

    #[test]
    fn unknown_column_and_bad_value_are_named() {
        let body = stream(
            vec![Field::new("zz", DataType::Float64, false)],
            vec![Arc::new(Float64Array::from(vec![1.0]))],
        );
        assert!(rows(&body, &table())
            .expect_err("unknown")
            .to_string()
            .contains("unknown column `zz`"));
        let body = stream(
            vec![Field::new("id", DataType::Float64, false)],
            vec![Arc::new(Float64Array::from(vec![1.5]))],
        );
        let e = rows(&body, &table()).expect_err("bad").to_string();
        assert!(e.contains("batch 1 row 1: column `id` (UInt64)"), "{e}");
        assert!(rows(b"garbage", &table())
            .expect_err("not arrow")
            .to_string()
            .contains("not an Arrow IPC stream"));
    }
}
