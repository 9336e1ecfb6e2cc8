//! ClickHouse HTTP compatibility, so existing ClickHouse clients can point at the gateway:
//! `POST /?query=INSERT INTO db.t [(cols)] FORMAT X` (query in the URL or at the start of the body).
//!
//! - `JSONEachRow` rows are decoded, checked against the table's schema and batched like NDJSON.
//! - `RowBinary`, `Native`, `TSV`/`TabSeparated`, `CSV` (and their `WithNames...` variants) are
//!   passed through byte for byte as one insert (Distributed, synchronous), with the gateway's
//!   retries; they are not re-batched.
//! - Read-only metadata queries that client libraries send (`SELECT`, `DESCRIBE`, `SHOW`,
//!   `EXISTS`, `WITH`) are forwarded with `readonly=1`. Anything else gets 400: the gateway only
//!   ingests.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::server::App;
use crate::{metrics, GatewayError};

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
}
