//! ClickHouse HTTP compatibility, so existing ClickHouse clients can point at the gateway:
//! `POST /?query=INSERT INTO db.t [(cols)] FORMAT X` (query in the URL or at the start of the body).
//!
//! - `JSONEachRow` rows are decoded, checked against the table's schema and batched like NDJSON.
//! - `RowBinary`, `Native`, `TSV`/`TabSeparated`, `CSV` (and their `WithNames...` variants) are
//!   passed through byte for byte as one insert (Distributed, synchronous), with the gateway's
//!   retries; they are not re-batched. With `[auth]` on, their rows are first counted ([`count`])
//!   and charged to the tenant's rate quota (429 before anything is sent); without it the body
//!   is not looked at.
//! - Read-only metadata queries that client libraries send (`SELECT`, `DESCRIBE`, `SHOW`,
//!   `EXISTS`, `WITH`) are forwarded with `readonly=1`. Anything else gets 400: the gateway only
//!   ingests.
//!
//! The row counters for tenant quotas live in [`count`]; this module parses the statement, picks
//! the counter by format and forwards.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::server::App;
use crate::{metrics, GatewayError};

pub mod count;

/// A parsed `INSERT ... FORMAT` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertQuery {
    /// Database, when named.
    pub database: Option<String>,
    /// Table.
    pub table: String,
    /// Column list, when given.
    pub columns: Option<Vec<String>>,
    /// Input format.
    pub format: String,
}

fn ident(s: &str) -> String {
    s.trim().trim_matches('`').trim_matches('"').to_owned()
}

/// Parses `INSERT INTO [db.]t [(a, b)] FORMAT Name`; returns the statement and the byte offset
/// where inline data starts (after the format name and one newline/space).
pub fn parse_insert(q: &str) -> Option<(InsertQuery, usize)> {
    let lower = q.to_ascii_lowercase();
    let start = lower.find(|c: char| !c.is_whitespace())?;
    let rest = lower[start..].strip_prefix("insert")?.trim_start();
    let into_at = lower.len() - rest.len();
    let after_into = lower[into_at..].strip_prefix("into")?;
    let mut pos = lower.len() - after_into.len();
    if let Some(t) = lower[pos..].trim_start().strip_prefix("table ") {
        pos = lower.len() - t.len();
    }
    let fmt_at = pos
        + lower[pos..]
            .find(" format ")
            .or_else(|| lower[pos..].find("\nformat "))?;
    let target = q[pos..fmt_at].trim();
    let (name, columns) = match target.find('(') {
        Some(i) => {
            let cols = target[i + 1..].trim_end().strip_suffix(')')?;
            (
                target[..i].trim(),
                Some(
                    cols.split(',')
                        .map(ident)
                        .filter(|c| !c.is_empty())
                        .collect(),
                ),
            )
        }
        None => (target, None),
    };
    let (database, table) = match name.split_once('.') {
        Some((d, t)) => (Some(ident(d)), ident(t)),
        None => (None, ident(name)),
    };
    let after = &q[fmt_at + 8..];
    let fmt_len = after
        .find(|c: char| c.is_whitespace())
        .unwrap_or(after.len());
    let format = after[..fmt_len].trim().to_owned();
    let mut data_at = fmt_at + 8 + fmt_len;
    if let Some(c) = q[data_at..].chars().next().filter(|c| c.is_whitespace()) {
        data_at += c.len_utf8();
    }
    (!table.is_empty() && !format.is_empty()).then_some((
        InsertQuery {
            database,
            table,
            columns,
            format,
        },
        data_at,
    ))
}

/// Whether `q` is a read-only statement we forward.
pub fn is_read_only(q: &str) -> bool {
    let first = q
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "SELECT" | "DESCRIBE" | "DESC" | "SHOW" | "EXISTS" | "WITH"
    )
}

/// URL parameters never forwarded (credentials, the query itself).
const DROP_PARAMS: &[&str] = &["query", "user", "password", "readonly"];

/// `POST /`.
pub async fn handle_post(
    State(app): State<Arc<App>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = handle(app, params, headers, body).await;
    let resp = result.unwrap_or_else(IntoResponse::into_response);
    metrics::REQUESTS
        .get_or_create(&vec![
            ("protocol", "clickhouse".into()),
            ("status", resp.status().as_u16().to_string()),
        ])
        .inc();
    resp
}

/// `GET /` (read-only queries, and the bare ping ClickHouse clients send).
pub async fn handle_get(
    State(app): State<Arc<App>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !params.contains_key("query") {
        return (StatusCode::OK, "Ok.\n").into_response();
    }
    handle_post(State(app), Query(params), headers, Body::empty()).await
}

async fn handle(
    app: Arc<App>,
    params: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let (raw, _adm) = app.read_body(&headers, body, None).await?;
    let (query, data): (String, Bytes) = match params.get("query") {
        Some(q) => (q.clone(), raw),
        None => {
            let text = String::from_utf8_lossy(&raw);
            match parse_insert(&text) {
                Some((_, at)) => (text[..at].to_owned(), raw.slice(at..)),
                None => (text.into_owned(), Bytes::new()),
            }
        }
    };
    let database = params
        .get("database")
        .cloned()
        .or_else(|| {
            headers
                .get("X-ClickHouse-Database")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "default".into());
    let forwarded: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| !DROP_PARAMS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some((insert, _)) = parse_insert(&query) {
        let db = insert.database.clone().unwrap_or(database);
        return insert_rows(&app, &insert, &db, &query, data, &forwarded).await;
    }
    if is_read_only(&query) {
        let mut settings = forwarded.clone();
        settings.push(("readonly", "1"));
        let text = app
            .client()?
            .query_with(&query, &settings)
            .await
            .map_err(|e| GatewayError::ClickHouse(Arc::new(e)))?;
        return Ok((StatusCode::OK, text).into_response());
    }
    Err(GatewayError::BadRequest(
        "the gateway only ingests: send INSERT INTO db.table [(columns)] FORMAT JSONEachRow|RowBinary|Native|TSV|CSV, \
         or a read-only SELECT/DESCRIBE/SHOW/EXISTS"
            .into(),
    ))
}

async fn insert_rows(
    app: &App,
    insert: &InsertQuery,
    db: &str,
    query: &str,
    data: Bytes,
    forwarded: &[(&str, &str)],
) -> Result<Response, GatewayError> {
    match insert.format.to_ascii_lowercase().as_str() {
        "jsoneachrow" => {
            let n = app.ingest_ndjson(db, &insert.table, &data).await?;
            metrics::ROWS.get_or_create(&metrics::proto("clickhouse")).inc_by(n as u64);
            Ok(StatusCode::OK.into_response())
        }
        "rowbinary" | "native" | "tsv" | "tabseparated" | "csv" | "csvwithnames" | "tsvwithnames" | "tabseparatedwithnames"
        | "rowbinarywithnamesandtypes" => {
            let schema = app.schema(db, &insert.table, false).await?;
            let mut settings = forwarded.to_vec();
            if crate::auth::current().is_some() {
                // A tenant's rows are charged before anything is sent (429: nothing forwarded).
                refuse_inline_rows(query)?;
                let (rows, pinned) = count_forwarded(insert, &schema, &data, forwarded)?;
                settings.extend(pinned);
                crate::auth::charge(usize::try_from(rows).unwrap_or(usize::MAX))?;
            }
            if schema.distributed.is_some() {
                settings.push(("insert_distributed_sync", "1"));
            }
            let full = if insert.database.is_some() { query.to_owned() } else { with_database(query, db) };
            app.batcher.writer().passthrough(&schema, &full, &settings, data).await?;
            Ok(StatusCode::OK.into_response())
        }
        other => Err(GatewayError::UnsupportedMediaType(format!(
            "FORMAT {other} is not supported by the gateway; use JSONEachRow, RowBinary, Native, TSV or CSV"
        ))),
    }
}

/// A ClickHouse setting sent with an insert.
type Setting = (&'static str, &'static str);

/// The CSV settings the row count assumed, sent with the insert when the client did not set them
/// (so that ClickHouse reads the body the way it was counted, whatever the server's profile says).
const CSV_PINNED: [Setting; 3] = [
    ("format_csv_delimiter", ","),
    ("format_csv_allow_single_quotes", "0"),
    ("format_csv_allow_double_quotes", "1"),
];

fn setting_flag(forwarded: &[(&str, &str)], name: &str) -> Result<Option<bool>, GatewayError> {
    let Some((_, v)) = forwarded.iter().find(|(k, _)| *k == name) else {
        return Ok(None);
    };
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(Some(true)),
        "0" | "false" => Ok(Some(false)),
        _ => Err(GatewayError::BadRequest(format!(
            "setting {name}={v:?}: expected 0 or 1"
        ))),
    }
}

/// ClickHouse reads rows written after `FORMAT X` in the `query` URL parameter before the body's;
/// for a tenant they would escape the count, so they are refused.
///
/// # Errors
/// [`GatewayError::BadRequest`] when the statement carries inline rows.
fn refuse_inline_rows(query: &str) -> Result<(), GatewayError> {
    match parse_insert(query) {
        Some((_, at)) if !query[at..].trim().is_empty() => Err(GatewayError::BadRequest(
            "with authentication on, send the rows in the body, not after FORMAT in the `query` \
             parameter"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Counts the rows of a pass-through body for the tenant's quota; returns them with the settings
/// to add to the insert (see [`CSV_PINNED`]).
///
/// # Errors
/// [`GatewayError::BadRequest`] for a body that cannot be counted (truncated, invalid, a column
/// type the counter cannot skip, ClickHouse-compressed with `decompress=1`, a column not in the
/// table).
fn count_forwarded(
    insert: &InsertQuery,
    schema: &crate::catalog::TableSchema,
    data: &[u8],
    forwarded: &[(&str, &str)],
) -> Result<(u64, Vec<Setting>), GatewayError> {
    if setting_flag(forwarded, "decompress")? == Some(true) {
        return Err(GatewayError::BadRequest(
            "with authentication on, ClickHouse-compressed bodies (decompress=1) are not accepted: \
             their rows cannot be counted for the tenant's quota; send the body plain or with \
             Content-Encoding"
                .into(),
        ));
    }
    let bad = |e: count::CountError| GatewayError::BadRequest(e.to_string());
    let mut pinned = Vec::new();
    let n = match insert.format.to_ascii_lowercase().as_str() {
        "tsv" | "tabseparated" => count::tsv(data, 0),
        "tsvwithnames" | "tabseparatedwithnames" => count::tsv(data, 1),
        f @ ("csv" | "csvwithnames") => {
            let mut dialect = count::CsvDialect::default();
            if let Some((_, d)) = forwarded.iter().find(|(k, _)| *k == "format_csv_delimiter") {
                let &[b] = d.as_bytes() else {
                    return Err(GatewayError::BadRequest(format!(
                        "format_csv_delimiter={d:?}: expected one ASCII character"
                    )));
                };
                dialect.delimiter = b;
            }
            if let Some(s) = setting_flag(forwarded, "format_csv_allow_single_quotes")? {
                dialect.single_quotes = s;
            }
            if let Some(d) = setting_flag(forwarded, "format_csv_allow_double_quotes")? {
                dialect.double_quotes = d;
            }
            pinned.extend(
                CSV_PINNED
                    .iter()
                    .filter(|(k, _)| !forwarded.iter().any(|(f, _)| f == k)),
            );
            count::csv(data, dialect, u64::from(f == "csvwithnames"))
        }
        "native" => count::native(data).map_err(bad)?,
        "rowbinarywithnamesandtypes" => {
            count::row_binary_with_names_and_types(data).map_err(bad)?
        }
        _ => {
            let columns: Vec<(&str, &crate::types::ColumnType)> = match &insert.columns {
                Some(names) => names
                    .iter()
                    .map(|n| {
                        schema
                            .columns
                            .iter()
                            .find(|c| &c.column.name == n)
                            .map(|c| (c.column.name.as_str(), &c.column.ty))
                            .ok_or_else(|| {
                                GatewayError::BadRequest(format!(
                                    "column `{n}` is not in {}.{}",
                                    schema.database, schema.table
                                ))
                            })
                    })
                    .collect::<Result<_, _>>()?,
                None => schema
                    .columns
                    .iter()
                    .filter(|c| !c.computed)
                    .map(|c| (c.column.name.as_str(), &c.column.ty))
                    .collect(),
            };
            count::row_binary(data, &columns).map_err(bad)?
        }
    };
    Ok((n, pinned))
}

/// Qualifies the table of an INSERT with `db` (the client's `database` parameter).
fn with_database(query: &str, db: &str) -> String {
    match parse_insert(query) {
        Some((q, _)) => {
            let cols = q
                .columns
                .map(|c| {
                    format!(
                        " ({})",
                        c.iter()
                            .map(|x| crate::quote_ident(x))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .unwrap_or_default();
            format!(
                "INSERT INTO {}.{}{cols} FORMAT {}",
                crate::quote_ident(db),
                crate::quote_ident(&q.table),
                q.format
            )
        }
        None => query.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_insert_forms() {
        let (q, at) =
            parse_insert("INSERT INTO metrics.t (a, `b`) FORMAT RowBinary").expect("parses");
        assert_eq!(q.database.as_deref(), Some("metrics"));
        assert_eq!(q.table, "t");
        assert_eq!(q.columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(q.format, "RowBinary");
        assert_eq!(at, "INSERT INTO metrics.t (a, `b`) FORMAT RowBinary".len());
        let body = "insert into t format JSONEachRow\n{\"a\":1}";
        let (q, at) = parse_insert(body).expect("inline data");
        assert_eq!(
            (q.database, q.table.as_str(), q.format.as_str()),
            (None, "t", "JSONEachRow")
        );
        assert_eq!(&body[at..], "{\"a\":1}");
        assert!(parse_insert("SELECT 1").is_none());
        assert!(parse_insert("INSERT INTO t VALUES (1)").is_none());
    }

    #[test]
    fn read_only_detection() {
        assert!(is_read_only("  select version()"));
        assert!(is_read_only("DESCRIBE TABLE t"));
        assert!(!is_read_only("DROP TABLE t"));
        assert!(!is_read_only("ALTER TABLE t DELETE WHERE 1"));
    }

    #[test]
    fn database_is_qualified() {
        assert_eq!(
            with_database("INSERT INTO t (a) FORMAT CSV", "m"),
            "INSERT INTO `m`.`t` (`a`) FORMAT CSV"
        );
    }

    use crate::catalog::TableSchema;
    use crate::encode::{rowbinary, Column};
    use crate::value::{Row, Value};

    fn col(name: &str, t: &str) -> Column {
        Column::parse(name, t).expect("type")
    }

    #[test]
    fn rows_inline_in_the_query_are_refused() {
        assert!(refuse_inline_rows("INSERT INTO db.t FORMAT CSV").is_ok());
        assert!(refuse_inline_rows("INSERT INTO db.t FORMAT CSV\n").is_ok());
        let err = refuse_inline_rows("INSERT INTO db.t FORMAT CSV\n1,a\n2,b").expect_err("inline");
        assert!(err.to_string().contains("in the body"), "{err}");
        assert!(refuse_inline_rows("INSERT INTO db.t FORMAT CSV 1,a").is_err());
    }

    fn kv_schema() -> TableSchema {
        TableSchema::from_columns(
            "db",
            "t",
            "MergeTree",
            &[("k", "UInt64"), ("v", "String"), ("tenant", "String")],
        )
        .expect("schema")
    }

    #[test]
    fn rowbinary_uses_the_insert_column_list() {
        let schema = kv_schema();
        let cols = [col("v", "String"), col("k", "UInt64")];
        let rows: Vec<Row> = (0..5)
            .map(|i| vec![Value::str("x"), Value::UInt(i)])
            .collect();
        let body = rowbinary::encode_rows(&cols, &rows);
        let (q, _) = parse_insert("INSERT INTO db.t (v, k) FORMAT RowBinary").expect("parses");
        assert_eq!(
            count_forwarded(&q, &schema, &body, &[]).expect("counts").0,
            5
        );
        let (bad, _) = parse_insert("INSERT INTO db.t (nope) FORMAT RowBinary").expect("parses");
        let err = count_forwarded(&bad, &schema, &body, &[]).expect_err("unknown column");
        assert!(err.to_string().contains("`nope`"), "{err}");
        let err =
            count_forwarded(&q, &schema, &body, &[("decompress", "1")]).expect_err("compressed");
        assert!(err.to_string().contains("decompress=1"), "{err}");
    }

    #[test]
    fn csv_settings_are_pinned_unless_the_client_sets_them() {
        let schema = kv_schema();
        let (q, _) = parse_insert("INSERT INTO db.t FORMAT CSV").expect("parses");
        let (n, pinned) = count_forwarded(&q, &schema, b"1,'a\nb'\n", &[]).expect("counts");
        assert_eq!((n, pinned), (2, CSV_PINNED.to_vec()));
        let given = [
            ("format_csv_allow_single_quotes", "1"),
            ("format_csv_delimiter", ","),
        ];
        let (n, pinned) = count_forwarded(&q, &schema, b"1,'a\nb'\n", &given).expect("counts");
        assert_eq!((n, pinned), (1, vec![CSV_PINNED[2]]));
        let err = count_forwarded(&q, &schema, b"", &[("format_csv_delimiter", ";;")])
            .expect_err("bad delimiter");
        assert!(err.to_string().contains("format_csv_delimiter"), "{err}");
        let (tsv, _) =
            parse_insert("INSERT INTO db.t FORMAT TabSeparatedWithNames").expect("parses");
        assert_eq!(
            count_forwarded(&tsv, &schema, b"k\tv\n1\ta\n", &[]).expect("counts"),
            (1, vec![])
        );
    }
}
