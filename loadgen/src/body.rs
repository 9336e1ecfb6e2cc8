//! Request bodies: the generator's points encoded for one protocol (Influx, remote_write,
//! NDJSON) or as ClickHouse `Native` inserts for the `direct` baseline. Pure, no sockets.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use chgate_gateway::catalog::TableSchema;
use chgate_gateway::convert::zero_of;
use chgate_gateway::encode::{encode, Column, Format};
use chgate_gateway::ingest::{time_value, TableRows};
use chgate_gateway::types::ColumnType;
use chgate_gateway::value::Value;

use crate::data::{push_cents, Generator, Point, FIELDS};

/// One prepared request: what to send and how many samples it carries.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Samples (rows of the `samples` table) in this request.
    pub rows: u64,
    /// What goes on the wire.
    pub kind: PayloadKind,
}

impl Payload {
    /// Body bytes on the wire (all inserts for `direct`).
    pub fn bytes(&self) -> u64 {
        match &self.kind {
            PayloadKind::Http { body, .. } => body.len() as u64,
            PayloadKind::Direct(inserts) => inserts.iter().map(|i| i.body.len() as u64).sum(),
        }
    }
}

/// The wire form of a [`Payload`].
#[derive(Debug, Clone)]
pub enum PayloadKind {
    /// An HTTP POST to the gateway.
    Http {
        /// Path and query, e.g. `/write?precision=ms`.
        path: String,
        /// `Content-Type`.
        content_type: &'static str,
        /// `Content-Encoding`, if any.
        encoding: Option<&'static str>,
        /// The body.
        body: Bytes,
    },
    /// ClickHouse inserts; the request counts as acked when all succeed.
    Direct(Vec<Insert>),
}

/// One `INSERT ... FORMAT Native` with its encoded block.
#[derive(Debug, Clone)]
pub struct Insert {
    /// `None`: any node (Distributed table); `Some(i)`: a replica of shard `i` (0-based).
    pub shard: Option<usize>,
    /// The `INSERT` statement (sent in the URL).
    pub sql: String,
    /// The Native block.
    pub body: Bytes,
}

/// Gateway protocols the load generator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Influx line protocol to `/write?precision=ms`.
    Influx,
    /// Prometheus remote_write (snappy protobuf) to `/api/v1/write`.
    RemoteWrite,
    /// NDJSON rows of the samples table to `/ingest/{db}/samples`.
    Ndjson,
    /// OTLP/HTTP JSON (`ExportMetricsServiceRequest`, gauges) to `/v1/metrics`.
    Otlp,
    /// An Arrow IPC stream of samples-table columns to `/ingest/{db}/samples`.
    Arrow,
}

/// How the `direct` baseline reaches ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirectMode {
    /// Into the Distributed tables with `insert_distributed_sync=1`.
    Distributed,
    /// Into each shard's local tables, rows split by `series_id % shards`.
    ShardLocal,
}

/// The schemas and layout the `direct` encoder needs (loaded once before a run).
#[derive(Debug, Clone)]
pub struct DirectTables {
    /// The Distributed `samples` table (its columns equal `samples_local`'s).
    pub samples: TableSchema,
    /// The Distributed `series` table.
    pub series: TableSchema,
    /// Number of shards.
    pub shards: usize,
}

/// Turns generator output into payloads.
#[derive(Debug, Clone)]
pub enum Encoder {
    /// A gateway protocol; `database` is used by NDJSON's path.
    Gateway {
        /// The protocol.
        protocol: Protocol,
        /// Database of the samples table.
        database: String,
    },
    /// Native inserts straight into ClickHouse.
    Direct {
        /// Distributed or shard-local.
        mode: DirectMode,
        /// Schemas and shard count.
        tables: Box<DirectTables>,
        /// Series whose `series` row was already sent in this run: like the gateway's series
        /// cache, each series row is written once, not with every sample.
        written: HashSet<u64>,
    },
}

impl Encoder {
    /// A direct encoder that has written no series yet.
    pub fn direct(mode: DirectMode, tables: DirectTables) -> Self {
        Encoder::Direct {
            mode,
            tables: Box::new(tables),
            written: HashSet::new(),
        }
    }

    /// The next payload of about `rows` samples (whole points), drawn from `gen`.
    pub fn next(&mut self, gen: &mut Generator, rows: usize) -> Payload {
        match self {
            Encoder::Gateway { protocol, database } => match protocol {
                Protocol::Influx => influx(gen, rows),
                Protocol::RemoteWrite => remote_write(gen, rows),
                Protocol::Ndjson => ndjson(gen, rows, database),
                Protocol::Otlp => otlp(gen, rows),
                Protocol::Arrow => arrow(gen, rows, database),
            },
            Encoder::Direct {
                mode,
                tables,
                written,
            } => direct(gen, rows, *mode, tables, written),
        }
    }
}

fn influx(gen: &mut Generator, rows: usize) -> Payload {
    let mut body = Vec::with_capacity(rows * 48);
    let n = gen.render_lines(rows, &mut body);
    Payload {
        rows: n as u64,
        kind: PayloadKind::Http {
            path: "/write?precision=ms".into(),
            content_type: "text/plain; charset=utf-8",
            encoding: None,
            body: body.into(),
        },
    }
}

fn put_varint(out: &mut Vec<u8>, v: u64) {
    chgate_gateway::encode::put_varint(out, v);
}

fn put_len_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_label(out: &mut Vec<u8>, scratch: &mut Vec<u8>, name: &str, value: &str) {
    scratch.clear();
    put_len_field(scratch, 0x0a, name.as_bytes());
    put_len_field(scratch, 0x12, value.as_bytes());
    put_len_field(out, 0x0a, scratch);
}

/// Appends one `TimeSeries` per field of `p` to a `WriteRequest` being built in `out`; the
/// point's tags are encoded once and shared by its 10 series.
fn put_point_series(out: &mut Vec<u8>, p: &Point<'_>, prefix: &str, s: &mut [Vec<u8>; 4]) {
    let [series, label, sample, tags] = s;
    tags.clear();
    for (k, v) in &p.host.tags {
        put_label(tags, label, k, v);
    }
    let m = p.measurement();
    let mut name = String::with_capacity(prefix.len() + 40);
    for (i, field) in m.fields.iter().enumerate() {
        series.clear();
        name.clear();
        name.push_str(prefix);
        name.push_str(m.name);
        name.push('_');
        name.push_str(field);
        put_label(series, label, "__name__", &name);
        series.extend_from_slice(tags);
        sample.clear();
        sample.push(0x09);
        sample.extend_from_slice(&p.value(i).to_le_bytes());
        sample.push(0x10);
        put_varint(sample, p.timestamp_ms as u64);
        put_len_field(series, 0x12, sample);
        put_len_field(out, 0x0a, series);
    }
}

fn remote_write(gen: &mut Generator, rows: usize) -> Payload {
    let prefix = gen.config().prefix.clone();
    let mut raw = Vec::with_capacity(rows * 220);
    let mut scratch: [Vec<u8>; 4] = Default::default();
    let n = gen.next_points(rows, |p| {
        put_point_series(&mut raw, p, &prefix, &mut scratch)
    });
    let body = chgate_gateway::protocol::remote_write::compress(&raw);
    Payload {
        rows: n as u64,
        kind: PayloadKind::Http {
            path: "/api/v1/write".into(),
            content_type: "application/x-protobuf",
            encoding: Some("snappy"),
            body: body.into(),
        },
    }
}

fn ndjson(gen: &mut Generator, rows: usize, database: &str) -> Payload {
    let prefix = gen.config().prefix.clone();
    let mut body = Vec::with_capacity(rows * 110);
    let n = gen.next_points(rows, |p| {
        let m = p.measurement();
        let mut ts = itoa::Buffer::new();
        let secs = ts.format(p.timestamp_ms.div_euclid(1000)).to_owned();
        let ms = p.timestamp_ms.rem_euclid(1000);
        for (i, field) in m.fields.iter().enumerate() {
            body.extend_from_slice(b"{\"metric\":\"");
            body.extend_from_slice(prefix.as_bytes());
            body.extend_from_slice(m.name.as_bytes());
            body.push(b'_');
            body.extend_from_slice(field.as_bytes());
            body.extend_from_slice(b"\",\"series_id\":");
            body.extend_from_slice(itoa::Buffer::new().format(p.series_id(i)).as_bytes());
            body.extend_from_slice(b",\"timestamp\":");
            body.extend_from_slice(secs.as_bytes());
            body.extend_from_slice(format!(".{ms:03}").as_bytes());
            body.extend_from_slice(b",\"value\":");
            push_cents(&mut body, p.cents[i]);
            body.extend_from_slice(b"}\n");
        }
    });
    Payload {
        rows: n as u64,
        kind: PayloadKind::Http {
            path: format!("/ingest/{database}/samples"),
            content_type: "application/x-ndjson",
            encoding: None,
            body: body.into(),
        },
    }
}

/// OTLP JSON: one `ResourceMetrics` per point (resource attributes = the host's tags) with one
/// gauge per field. Names and tag values are `[A-Za-z0-9_.-]`, so no JSON escaping is needed.
fn otlp(gen: &mut Generator, rows: usize) -> Payload {
    let prefix = gen.config().prefix.clone();
    let mut body = Vec::with_capacity(rows * 150);
    body.extend_from_slice(b"{\"resourceMetrics\":[");
    let mut first = true;
    let n = gen.next_points(rows, |p| {
        if !std::mem::take(&mut first) {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"resource\":{\"attributes\":[");
        for (i, (k, v)) in p.host.tags.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            let attr = format!("{{\"key\":\"{k}\",\"value\":{{\"stringValue\":\"{v}\"}}}}");
            body.extend_from_slice(attr.as_bytes());
        }
        body.extend_from_slice(b"]},\"scopeMetrics\":[{\"metrics\":[");
        let m = p.measurement();
        let ns = itoa::Buffer::new()
            .format(i128::from(p.timestamp_ms) * 1_000_000)
            .to_owned();
        for (i, field) in m.fields.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            let head = format!(
                "{{\"name\":\"{prefix}{}_{field}\",\"gauge\":{{\"dataPoints\":[{{\"asDouble\":",
                m.name
            );
            body.extend_from_slice(head.as_bytes());
            push_cents(&mut body, p.cents[i]);
            body.extend_from_slice(b",\"timeUnixNano\":\"");
            body.extend_from_slice(ns.as_bytes());
            body.extend_from_slice(b"\"}]}}");
        }
        body.extend_from_slice(b"]}]}");
    });
    body.extend_from_slice(b"]}");
    Payload {
        rows: n as u64,
        kind: PayloadKind::Http {
            path: "/v1/metrics".into(),
            content_type: "application/json",
            encoding: None,
            body: body.into(),
        },
    }
}

/// Arrow IPC stream, one record batch: `metric` Utf8, `series_id` UInt64, `timestamp`
/// Timestamp(ms), `value` Float64 — the columns of the `samples` table.
fn arrow(gen: &mut Generator, rows: usize, database: &str) -> Payload {
    use arrow_array::TimestampMillisecondArray;
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let prefix = gen.config().prefix.clone();
    let (mut metric, mut ids, mut ts, mut values) = (
        Vec::with_capacity(rows + FIELDS),
        Vec::with_capacity(rows + FIELDS),
        Vec::with_capacity(rows + FIELDS),
        Vec::with_capacity(rows + FIELDS),
    );
    let n = gen.next_points(rows, |p| {
        let m = p.measurement();
        for (i, field) in m.fields.iter().enumerate() {
            metric.push(format!("{prefix}{}_{field}", m.name));
            ids.push(p.series_id(i));
            ts.push(p.timestamp_ms);
            values.push(p.value(i));
        }
    });
    let schema = Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Utf8, false),
        Field::new("series_id", DataType::UInt64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("value", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(metric)),
        Arc::new(UInt64Array::from(ids)),
        Arc::new(TimestampMillisecondArray::from(ts)),
        Arc::new(Float64Array::from(values)),
    ];
    // The four arrays have the same length and match the schema, and writing into a Vec does
    // no I/O: none of these steps can fail; an empty body would be rejected by the gateway.
    let mut body = Vec::new();
    if let Ok(batch) = RecordBatch::try_new(schema.clone(), columns) {
        if let Ok(mut w) = arrow_ipc::writer::StreamWriter::try_new(&mut body, &schema) {
            let _ = w.write(&batch).and_then(|()| w.finish());
        }
    }
    Payload {
        rows: n as u64,
        kind: PayloadKind::Http {
            path: format!("/ingest/{database}/samples"),
            content_type: "application/vnd.apache.arrow.stream",
            encoding: None,
            body: body.into(),
        },
    }
}

fn insert_sql(schema: &TableSchema, table: &str, rows: &TableRows) -> String {
    let cols: Vec<String> = rows
        .columns
        .iter()
        .map(|c| chgate_gateway::quote_ident(&c.name))
        .collect();
    format!(
        "INSERT INTO {}.{} ({}) FORMAT Native",
        chgate_gateway::quote_ident(&schema.database),
        chgate_gateway::quote_ident(table),
        cols.join(", ")
    )
}

/// Splits `rows` by `series_id % shards` (all rows in shard 0 when there is no such column).
fn split(rows: TableRows, shards: usize) -> Vec<TableRows> {
    let idx = rows.columns.iter().position(|c| c.name == "series_id");
    let mut out: Vec<TableRows> = (0..shards)
        .map(|_| TableRows {
            columns: rows.columns.clone(),
            rows: Vec::new(),
        })
        .collect();
    for row in rows.rows {
        let shard = match idx.map(|i| &row[i]) {
            Some(Value::UInt(id)) => (*id % shards as u64) as usize,
            _ => 0,
        };
        out[shard].rows.push(row);
    }
    out
}

/// The columns of `schema` a mapping fills: `known` names plus any writable column without a
/// DEFAULT (the same rule as the gateway's `ingest::samples_rows`).
fn mapped(schema: &TableSchema, known: &[&str]) -> Arc<Vec<Column>> {
    Arc::new(
        schema
            .columns
            .iter()
            .filter(|c| !c.computed && (known.contains(&c.column.name.as_str()) || !c.has_default))
            .map(|c| c.column.clone())
            .collect(),
    )
}

/// Rows for `samples` and `series` straight from the points (no intermediate `Sample`s, one
/// allocation per row): the same values the gateway derives from the same data. A series row
/// is made only for series not in `seen` (which then records them).
fn direct_rows(
    gen: &mut Generator,
    rows: usize,
    t: &DirectTables,
    seen: &mut HashSet<u64>,
) -> (TableRows, TableRows) {
    let s_cols = mapped(
        &t.samples,
        &["tenant", "metric", "series_id", "timestamp", "value"],
    );
    let r_cols = mapped(
        &t.series,
        &[
            "tenant",
            "metric",
            "series_id",
            "label_names",
            "label_values",
            "last_seen",
        ],
    );
    let prefix = gen.config().prefix.clone();
    let mut sample_rows = Vec::with_capacity(rows + FIELDS);
    let mut series_rows = Vec::new();
    let mut now_ms = None;
    gen.next_points(rows, |p| {
        let now = *now_ms.get_or_insert(p.timestamp_ms);
        let m = p.measurement();
        for (i, field) in m.fields.iter().enumerate() {
            let metric = format!("{prefix}{}_{field}", m.name).into_bytes();
            let id = p.series_id(i);
            let value = |name: &str, ty: &ColumnType| match name {
                "tenant" => Value::Bytes(Vec::new()),
                "metric" => Value::Bytes(metric.clone()),
                "series_id" => Value::UInt(id),
                "timestamp" => time_value(ty, p.timestamp_ms),
                "value" => Value::Float(p.value(i)),
                "label_names" => {
                    Value::Array(p.host.tags.iter().map(|(k, _)| Value::str(k)).collect())
                }
                "label_values" => {
                    Value::Array(p.host.tags.iter().map(|(_, v)| Value::str(v)).collect())
                }
                "last_seen" => time_value(ty, now),
                _ => zero_of(ty),
            };
            sample_rows.push(s_cols.iter().map(|c| value(&c.name, &c.ty)).collect());
            if seen.insert(id) {
                series_rows.push(r_cols.iter().map(|c| value(&c.name, &c.ty)).collect());
            }
        }
    });
    let table = |columns, rows| TableRows { columns, rows };
    (table(s_cols, sample_rows), table(r_cols, series_rows))
}

fn direct(
    gen: &mut Generator,
    rows: usize,
    mode: DirectMode,
    t: &DirectTables,
    seen: &mut HashSet<u64>,
) -> Payload {
    let (s_rows, r_rows) = direct_rows(gen, rows, t, seen);
    let n = s_rows.rows.len() as u64;
    let block = |rows: &TableRows| encode(Format::Native, &rows.columns, &rows.rows);
    let inserts = match mode {
        DirectMode::Distributed => vec![
            Insert {
                shard: None,
                sql: insert_sql(&t.samples, &t.samples.table, &s_rows),
                body: block(&s_rows),
            },
            Insert {
                shard: None,
                sql: insert_sql(&t.series, &t.series.table, &r_rows),
                body: block(&r_rows),
            },
        ],
        DirectMode::ShardLocal => {
            let mut out = Vec::new();
            let shards = t.shards.max(1);
            for (schema, rows) in [(&t.samples, s_rows), (&t.series, r_rows)] {
                let local = format!("{}_local", schema.table);
                for (shard, part) in split(rows, shards).into_iter().enumerate() {
                    if !part.rows.is_empty() {
                        out.push(Insert {
                            shard: Some(shard),
                            sql: insert_sql(schema, &local, &part),
                            body: block(&part),
                        });
                    }
                }
            }
            out
        }
    };
    Payload {
        rows: n,
        kind: PayloadKind::Direct(inserts),
    }
}

#[cfg(test)]
mod tests {
    use chgate_gateway::protocol::remote_write;

    use super::*;
    use crate::data::DataConfig;

    fn gen() -> Generator {
        Generator::new(DataConfig {
            hosts: 4,
            prefix: "lg_x_".into(),
            ..DataConfig::default()
        })
        .expect("valid")
    }

    #[test]
    fn remote_write_body_decodes_to_the_generated_samples() {
        let p = remote_write(&mut gen(), 500);
        let PayloadKind::Http { body, .. } = &p.kind else {
            panic!("http")
        };
        let decoded = remote_write::decode(body).expect("decodes");
        assert_eq!(decoded.len() as u64, p.rows);
        assert_eq!(decoded, gen().next_samples(500));
    }

    #[test]
    fn otlp_json_body_decodes_to_the_generated_samples() {
        let p = otlp(&mut gen(), 200);
        let PayloadKind::Http { body, .. } = &p.kind else {
            panic!("http")
        };
        let decoded = chgate_gateway::protocol::otlp::decode_json(body).expect("decodes");
        assert_eq!(decoded.len() as u64, p.rows);
        assert_eq!(decoded, gen().next_samples(200));
    }

    #[test]
    fn arrow_stream_converts_to_the_same_rows_as_direct() {
        let t = tables();
        let p = arrow(&mut gen(), 300, "db");
        let PayloadKind::Http { body, path, .. } = &p.kind else {
            panic!("http")
        };
        assert_eq!(path, "/ingest/db/samples");
        let got = chgate_gateway::arrow::rows(body, &t.samples).expect("arrow rows");
        let (want, _) = direct_rows(&mut gen(), 300, &t, &mut HashSet::new());
        assert_eq!(got.rows.len(), want.rows.len());
        for (i, c) in want.columns.iter().enumerate() {
            let j = got
                .columns
                .iter()
                .position(|g| g.name == c.name)
                .expect("column");
            let col = |rows: &[Vec<Value>], k: usize| -> Vec<Value> {
                rows.iter().map(|r| r[k].clone()).collect()
            };
            assert_eq!(col(&got.rows, j), col(&want.rows, i), "{}", c.name);
        }
    }

    #[test]
    fn ndjson_rows_parse_with_the_gateway_parser_and_carry_series_ids() {
        let p = ndjson(&mut gen(), 100, "metrics");
        let PayloadKind::Http { body, path, .. } = &p.kind else {
            panic!("http")
        };
        assert_eq!(path, "/ingest/metrics/samples");
        let objs = chgate_gateway::ingest::parse_ndjson(body).expect("ndjson");
        assert_eq!(objs.len() as u64, p.rows);
        let samples = gen().next_samples(100);
        let s = &samples[3];
        let o = &objs[3];
        assert_eq!(o["metric"], s.metric.as_str());
        let id = chgate_gateway::protocol::series::series_id(&s.metric, &s.labels);
        assert_eq!(o["series_id"].as_u64(), Some(id));
        assert_eq!(o["value"].as_f64(), Some(s.value));
        let ts = o["timestamp"].as_f64().expect("number");
        assert!((ts * 1000.0 - s.timestamp_ms as f64).abs() < 1.0);
    }

    fn schema(table: &str, cols: &[(&str, &str)]) -> TableSchema {
        TableSchema::from_columns("db", table, "Distributed", cols).expect("supported types")
    }

    fn tables() -> DirectTables {
        DirectTables {
            samples: schema(
                "samples",
                &[
                    ("tenant", "String"),
                    ("metric", "String"),
                    ("series_id", "UInt64"),
                    ("timestamp", "DateTime"),
                    ("value", "Float64"),
                ],
            ),
            series: schema(
                "series",
                &[
                    ("metric", "String"),
                    ("series_id", "UInt64"),
                    ("label_names", "Array(String)"),
                    ("label_values", "Array(String)"),
                    ("last_seen", "DateTime"),
                ],
            ),
            shards: 2,
        }
    }

    #[test]
    fn direct_shard_local_splits_by_series_id_into_local_tables() {
        let p = direct(
            &mut gen(),
            400,
            DirectMode::ShardLocal,
            &tables(),
            &mut HashSet::new(),
        );
        assert_eq!(p.rows, 400);
        let PayloadKind::Direct(inserts) = &p.kind else {
            panic!("direct")
        };
        assert!(inserts.iter().any(|i| i.shard == Some(0)));
        assert!(inserts.iter().any(|i| i.shard == Some(1)));
        assert!(inserts
            .iter()
            .all(|i| i.sql.contains("_local") && i.sql.ends_with("FORMAT Native")));
        let d = direct(
            &mut gen(),
            400,
            DirectMode::Distributed,
            &tables(),
            &mut HashSet::new(),
        );
        let PayloadKind::Direct(inserts) = &d.kind else {
            panic!("direct")
        };
        assert_eq!(inserts.len(), 2);
        assert!(inserts[0].sql.starts_with("INSERT INTO `db`.`samples` ("));
    }

    #[test]
    fn direct_rows_equal_what_the_gateway_derives_from_the_same_samples() {
        let t = tables();
        let (s, r) = direct_rows(&mut gen(), 300, &t, &mut HashSet::new());
        let samples = gen().next_samples(300);
        let now = samples[0].timestamp_ms;
        let (gs, gr) =
            chgate_gateway::ingest::samples_rows(&samples, "", &t.samples, &t.series, now);
        assert_eq!((s.columns, s.rows), (gs.columns, gs.rows));
        assert_eq!((r.columns, r.rows), (gr.columns, gr.rows));
    }

    #[test]
    fn series_rows_are_written_once_per_run() {
        let t = tables();
        let mut g = gen();
        let mut seen = HashSet::new();
        // 4 hosts x 9 measurements x 10 fields = 360 series; 720 rows = two ticks.
        let (_, first) = direct_rows(&mut g, 360, &t, &mut seen);
        let (s, second) = direct_rows(&mut g, 360, &t, &mut seen);
        assert_eq!(
            (first.rows.len(), s.rows.len(), second.rows.len()),
            (360, 360, 0)
        );
    }

    #[test]
    fn split_uses_series_id_modulo_shards() {
        let rows = TableRows {
            columns: std::sync::Arc::new(vec![Column {
                name: "series_id".into(),
                ty: ColumnType::UInt64,
                type_text: "UInt64".into(),
            }]),
            rows: (0..10u64).map(|i| vec![Value::UInt(i)]).collect(),
        };
        let parts = split(rows, 3);
        assert_eq!(parts[0].rows.len(), 4);
        assert_eq!(parts[1].rows[0], vec![Value::UInt(1)]);
    }
}
