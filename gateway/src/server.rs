//! The HTTP surface: routes, admission (body limit, memory budget), decompression, and the
//! mapping of [`GatewayError`] to statuses a client can act on.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Semaphore;

use crate::batcher::Batcher;
use crate::catalog::{Catalog, TableSchema};
use crate::config::GatewayConfig;
use crate::ingest::{self, TableBlock, TableRows};
use crate::protocol::{self, Sample};
use crate::{chcompat, metrics, GatewayError};

/// Shared state of all handlers.
pub struct App {
    /// Configuration.
    pub cfg: GatewayConfig,
    /// Samples database.
    pub database: String,
    /// Schema cache.
    pub catalog: Catalog,
    /// Batching and writing.
    pub batcher: Batcher,
    /// Memory budget in KiB permits.
    pub budget: Arc<Semaphore>,
    /// Series written recently (their series rows are not rewritten every request).
    pub series: ingest::SeriesCache,
    /// Tenant authentication; `None` when `[auth]` is off.
    pub auth: Option<Arc<crate::auth::Authenticator>>,
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, format!("{self}\n")).into_response();
        if let GatewayError::QuotaExceeded { retry_after_secs } = self {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs),
            );
        } else if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"chgate\", Basic realm=\"chgate\""),
            );
        }
        resp
    }
}

/// The router with every endpoint; the ingest routes sit behind [`crate::auth::layer`].
pub fn router(app: Arc<App>) -> Router {
    let ingest = Router::new()
        .route("/api/v1/write", post(remote_write))
        .route("/write", post(influx))
        .route("/api/v2/write", post(influx))
        .route("/v1/metrics", post(otlp))
        .route("/ingest/{db}/{table}", post(ingest_table))
        .route("/", post(chcompat::handle_post).get(chcompat::handle_get))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::auth::layer,
        ));
    Router::new()
        .merge(ingest)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics::render(),
                )
            }),
        )
        .with_state(app)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Holds memory budget for a request's lifetime.
pub struct Admission {
    _permit: tokio::sync::OwnedSemaphorePermit,
    bytes: usize,
}

impl Drop for Admission {
    fn drop(&mut self) {
        metrics::INFLIGHT_BYTES.dec_by(self.bytes as i64);
    }
}

impl App {
    /// Reads and decompresses the body within the size limit and memory budget.
    ///
    /// # Errors
    /// 413 over the limit, 429 over the budget, 415 for an unknown encoding, 400 for a corrupt one.
    pub async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
        default_encoding: Option<&str>,
    ) -> Result<(Bytes, Admission), GatewayError> {
        if let Some(d) = self.batcher.delivery() {
            // ack = "spooled": refuse before reading when the spool may not grow (503) or
            // ClickHouse reports it is busy (429).
            d.admit()?;
        }
        let limit = crate::auth::body_limit(self.cfg.max_body_bytes);
        // Admission before reading: a body announced by Content-Length is charged up front, so
        // an overloaded gateway answers 429 without buffering it first.
        let mut reservation = Reservation {
            budget: self.budget.clone(),
            permit: None,
            kib: 0,
        };
        let announced = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if let Some(len) = announced {
            reservation.grow_to(len.min(limit))?;
        }
        let raw = to_bytes(body, limit)
            .await
            .map_err(|_| GatewayError::TooLarge { limit })?;
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_ascii_lowercase())
            .or_else(|| default_encoding.map(str::to_owned));
        // The memory budget covers the body while it is decompressed, chunk by chunk, so a
        // decompression bomb is refused (429/413) before it is inflated, not after.
        reservation.grow_to(raw.len())?;
        let data = decompress(raw, encoding.as_deref(), limit, &mut reservation)?;
        reservation.grow_to(data.len())?;
        let permit = reservation.permit.take().ok_or_else(|| {
            GatewayError::Overloaded("memory budget for in-flight requests is used up".into())
        })?;
        metrics::INFLIGHT_BYTES.inc_by(data.len() as i64);
        metrics::BYTES.inc_by(data.len() as u64);
        let bytes = data.len();
        Ok((
            data,
            Admission {
                _permit: permit,
                bytes,
            },
        ))
    }

    /// A ClickHouse client (round-robin).
    ///
    /// # Errors
    /// [`GatewayError::Unavailable`] when the cluster has no nodes.
    pub fn client(&self) -> Result<chgate_clickhouse_http::Client, GatewayError> {
        self.batcher
            .writer()
            .cluster()
            .any()
            .map(|r| r.client.clone())
            .ok_or_else(|| GatewayError::Unavailable {
                table: String::new(),
                message: "no ClickHouse node configured".into(),
            })
    }

    /// A table's schema (cached).
    ///
    /// # Errors
    /// As [`Catalog::get`].
    pub async fn schema(
        &self,
        db: &str,
        table: &str,
        force: bool,
    ) -> Result<Arc<TableSchema>, GatewayError> {
        crate::auth::authorize(db, table)?;
        self.catalog.get(&self.client()?, db, table, force).await
    }

    /// Writes rows (waits for the insert).
    ///
    /// # Errors
    /// As [`Batcher::submit`].
    pub async fn write(
        &self,
        schema: Arc<TableSchema>,
        rows: impl Into<TableBlock>,
    ) -> Result<usize, GatewayError> {
        let mut rows = rows.into();
        crate::auth::admit_rows(&schema, &mut rows)?;
        self.write_admitted(schema, rows).await
    }

    /// Writes rows already charged to the tenant's quota (waits for the insert).
    async fn write_admitted(
        &self,
        schema: Arc<TableSchema>,
        rows: TableBlock,
    ) -> Result<usize, GatewayError> {
        let n = rows.block.len();
        // Decoded rows are charged to the memory budget too (429 when it is used up), until
        // their batch has answered.
        let _rows_budget = self.reserve_bytes(rows.block.heap_bytes())?;
        self.batcher
            .submit(schema, rows.columns, rows.block)
            .await?;
        Ok(n)
    }

    /// Writes samples into the samples and series tables; both inserts must succeed.
    ///
    /// # Errors
    /// As [`App::write`].
    pub async fn write_samples(&self, samples: Vec<Sample>) -> Result<usize, GatewayError> {
        self.write_decoded(|b| {
            ingest::feed(b, &samples);
            Ok(())
        })
        .await
        .map(|(n, ())| n)
    }

    /// Runs `decode` (a protocol decoder feeding the builder: no owned sample per sample) and
    /// writes the rows it produced into the samples and series tables; both inserts must
    /// succeed. Returns the sample rows written and what `decode` returned.
    ///
    /// # Errors
    /// `decode`'s error, 400 for a time the samples table cannot hold, quota errors, and as
    /// [`App::write`].
    pub async fn write_decoded<R>(
        &self,
        decode: impl FnOnce(&mut ingest::SamplesBuilder<'_>) -> Result<R, GatewayError>,
    ) -> Result<(usize, R), GatewayError> {
        let samples_schema = self
            .schema(&self.database, &self.cfg.samples_table, false)
            .await?;
        let series_schema = self
            .schema(&self.database, &self.cfg.series_table, false)
            .await?;
        let now = now_ms();
        let tenant = crate::auth::tenant_name();
        // The series cache is shared by tenants: key it by tenant too, so each tenant's series
        // row (which carries its tenant) is written.
        let salt = if tenant.is_empty() {
            0
        } else {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            tenant.hash(&mut h);
            h.finish()
        };
        let (decoded, rows) = {
            let mut filter = ingest::CachedSeries {
                cache: &self.series,
                salt,
                now_ms: now,
            };
            let mut b = ingest::SamplesBuilder::new(
                (&samples_schema, &series_schema),
                &tenant,
                now,
                &mut filter,
            );
            let decoded = decode(&mut b);
            (decoded, b.finish())
        };
        // Series rows not written after all: the next request carrying them writes them again.
        let forget = || {
            self.series
                .forget(rows.new_series.iter().map(|id| id ^ salt))
        };
        let checked = decoded.and_then(|r| {
            if let Some(bad) = &rows.out_of_range {
                return Err(GatewayError::BadRequest(bad.to_string()));
            }
            crate::auth::charge(rows.samples.block.len())?;
            Ok(r)
        });
        let out = match checked {
            Ok(r) => r,
            Err(e) => {
                forget();
                return Err(e);
            }
        };
        let ingest::SampleRows {
            samples, series, ..
        } = rows;
        // Series rows first, then samples: when the series insert fails nothing of the request
        // was written, so the client's retry cannot duplicate samples; when the samples insert
        // fails after it, the retry rewrites only series rows (a series is the same row again).
        if !series.rows.is_empty() {
            if let Err(e) = self.write_admitted(series_schema, series.into()).await {
                forget();
                return Err(e);
            }
        }
        self.write_admitted(samples_schema, samples)
            .await
            .map(|n| (n, out))
    }
}

/// Memory budget held by one request while its body is read, grown as it is decompressed.
struct Reservation {
    budget: Arc<Semaphore>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    kib: u32,
}

impl Reservation {
    /// Holds budget for `bytes` in total.
    fn grow_to(&mut self, bytes: usize) -> Result<(), GatewayError> {
        let want = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        if want <= self.kib {
            return Ok(());
        }
        let more = self
            .budget
            .clone()
            .try_acquire_many_owned(want - self.kib)
            .map_err(|_| {
                metrics::ADMISSION_REFUSED
                    .get_or_create(&vec![("reason", "memory_budget".to_owned())])
                    .inc();
                GatewayError::Overloaded("memory budget for in-flight requests is used up".into())
            })?;
        match &mut self.permit {
            Some(p) => p.merge(more),
            None => self.permit = Some(more),
        }
        self.kib = want;
        Ok(())
    }
}

fn decompress(
    raw: Bytes,
    encoding: Option<&str>,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, GatewayError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        GatewayError::BadRequest(format!("cannot decompress {what} body: {e}"))
    };
    let raw_len = raw.len();
    let mut read_all = |mut r: Box<dyn Read + '_>, what: &str| -> Result<Bytes, GatewayError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(bad(what, &e)),
            };
            if out.len() + n > limit {
                return Err(GatewayError::TooLarge { limit });
            }
            reservation.grow_to(raw_len + out.len() + n)?;
            out.extend_from_slice(&buf[..n]);
        }
        Ok(Bytes::from(out))
    };
    match encoding {
        None | Some("" | "identity") => Ok(raw),
        Some("gzip" | "x-gzip") => read_all(
            Box::new(flate2::read::MultiGzDecoder::new(raw.as_ref())),
            "gzip",
        ),
        Some("deflate") => read_all(
            Box::new(flate2::read::ZlibDecoder::new(raw.as_ref())),
            "deflate",
        ),
        Some("zstd") => read_all(
            Box::new(zstd::stream::read::Decoder::new(raw.as_ref()).map_err(|e| bad("zstd", &e))?),
            "zstd",
        ),
        Some("snappy") => {
            let len = snap::raw::decompress_len(&raw).map_err(|e| bad("snappy", &e))?;
            if len > limit {
                return Err(GatewayError::TooLarge { limit });
            }
            reservation.grow_to(raw_len + len)?;
            snap::raw::Decoder::new()
                .decompress_vec(&raw)
                .map(Bytes::from)
                .map_err(|e| bad("snappy", &e))
        }
        Some(other) => Err(GatewayError::UnsupportedMediaType(format!(
            "Content-Encoding `{other}` is not supported (use gzip, deflate, zstd or snappy)"
        ))),
    }
}

/// A decoder error as the client's status: 413 when the body is too large, else 400.
fn decode_error(e: protocol::DecodeError) -> GatewayError {
    match e {
        protocol::DecodeError::TooLarge { limit, .. } => GatewayError::TooLarge { limit },
        other => GatewayError::BadRequest(other.to_string()),
    }
}

fn count(protocol: &'static str, status: u16) {
    metrics::REQUESTS
        .get_or_create(&vec![
            ("protocol", protocol.to_owned()),
            ("status", status.to_string()),
        ])
        .inc();
}

fn finish(protocol: &'static str, result: Result<Response, GatewayError>) -> Response {
    let resp = result.unwrap_or_else(IntoResponse::into_response);
    count(protocol, resp.status().as_u16());
    resp
}

async fn remote_write(State(app): State<Arc<App>>, body: Body) -> Response {
    let result = async {
        // remote_write bodies are always snappy (block format, decoded by the decoder itself), so
        // Content-Encoding is not applied here.
        let (raw, _adm) = app.read_body(&HeaderMap::new(), body, None).await?;
        let limit = protocol::remote_write::DEFAULT_MAX_DECOMPRESSED;
        let (n, _) = app
            .write_decoded(|b| {
                b.reserve(protocol::remote_write::samples_hint(&raw));
                protocol::remote_write::decode_to(&raw, limit, b).map_err(decode_error)
            })
            .await?;
        metrics::ROWS
            .get_or_create(&metrics::proto("remote_write"))
            .inc_by(n as u64);
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    finish("remote_write", result)
}

#[derive(serde::Deserialize)]
struct InfluxParams {
    precision: Option<String>,
}

async fn influx(
    State(app): State<Arc<App>>,
    Query(q): Query<InfluxParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let precision = match q.precision.as_deref() {
            None => protocol::influx::Precision::Nanoseconds,
            Some(p) => p.parse().map_err(|e: protocol::influx::UnknownPrecision| {
                GatewayError::BadRequest(e.to_string())
            })?,
        };
        let (raw, _adm) = app.read_body(&headers, body, None).await?;
        // Invalid UTF-8 fails only the lines that carry it.
        let (n, batch) = app
            .write_decoded(|b| {
                b.reserve(raw.len() / 40);
                Ok(protocol::influx::decode_bytes_to(
                    &raw,
                    precision,
                    now_ms(),
                    b,
                ))
            })
            .await?;
        metrics::ROWS
            .get_or_create(&metrics::proto("influx"))
            .inc_by(n as u64);
        if batch.errors.is_empty() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        metrics::REJECTED_ROWS
            .get_or_create(&metrics::proto("influx"))
            .inc_by(batch.errors.len() as u64);
        // As InfluxDB does: good points are written, the response is 400 "partial write".
        let lines: Vec<String> = batch
            .errors
            .iter()
            .take(20)
            .map(|e| format!("line {}: {}", e.line, e.message))
            .collect();
        let msg = format!(
            "partial write: {} points written, {} rejected:\n{}\n",
            n,
            batch.errors.len(),
            lines.join("\n")
        );
        Ok((StatusCode::BAD_REQUEST, msg).into_response())
    }
    .await;
    finish("influx", result)
}

async fn otlp(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/x-protobuf")
            .to_owned();
        let (raw, _adm) = app.read_body(&headers, body, None).await?;
        let Some(encoding) = protocol::otlp::Encoding::from_content_type(&ctype) else {
            return Err(GatewayError::UnsupportedMediaType(format!(
                "Content-Type `{ctype}` is not OTLP; use application/x-protobuf or application/json"
            )));
        };
        let json = encoding == protocol::otlp::Encoding::Json;
        let opts = protocol::otlp::OtlpOptions::default();
        let (n, _) = app
            .write_decoded(|b| {
                protocol::otlp::decode_to(encoding, &raw, &opts, b).map_err(decode_error)
            })
            .await?;
        metrics::ROWS
            .get_or_create(&metrics::proto("otlp"))
            .inc_by(n as u64);
        Ok(if json {
            ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
        } else {
            (
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                Bytes::new(),
            )
                .into_response()
        })
    }
    .await;
    finish("otlp", result)
}

async fn ingest_table(
    State(app): State<Arc<App>>,
    Path((db, table)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/x-ndjson")
            .to_owned();
        let arrow = ctype.starts_with("application/vnd.apache.arrow.stream");
        let json = [
            "application/x-ndjson",
            "application/json",
            "application/jsonlines",
        ]
        .iter()
        .any(|t| ctype.starts_with(t));
        if !(arrow || json) {
            return Err(GatewayError::UnsupportedMediaType(format!(
                "Content-Type `{ctype}` is not supported here; send application/x-ndjson or \
                 application/vnd.apache.arrow.stream"
            )));
        }
        let (raw, _adm) = app.read_body(&headers, body, None).await?;
        let n = if arrow {
            let schema = app.schema(&db, &table, false).await?;
            crate::guard::arrow_stream(&raw)?;
            let rows = crate::guard::no_panic("Arrow IPC", || crate::arrow::rows(&raw, &schema))?;
            app.write(schema, rows).await?
        } else {
            app.ingest_ndjson(&db, &table, &raw).await?
        };
        let protocol = if arrow { "arrow" } else { "ndjson" };
        metrics::ROWS
            .get_or_create(&metrics::proto(protocol))
            .inc_by(n as u64);
        Ok((StatusCode::OK, format!("{{\"rows\":{n}}}\n")).into_response())
    }
    .await;
    finish("ndjson", result)
}

impl App {
    /// NDJSON rows into `db.table`; an unknown column triggers one schema refresh first.
    ///
    /// # Errors
    /// 400 naming line and column; insert errors.
    pub async fn ingest_ndjson(
        &self,
        db: &str,
        table: &str,
        raw: &[u8],
    ) -> Result<usize, GatewayError> {
        let mut schema = self.schema(db, table, false).await?;
        let mut parts: Vec<TableRows> = Vec::new();
        // Parsed JSON objects take ~16x their text: parse and convert a chunk of lines at a time,
        // with that expansion charged to the memory budget while the chunk's objects exist.
        for (first_line, chunk) in ndjson_chunks(raw, 256 << 10) {
            let _parsing = self.reserve_bytes(chunk.len() * 16)?;
            let objects = ingest::parse_ndjson(chunk).map_err(|e| shift_lines(e, first_line))?;
            let rows = match ingest::json_rows(&objects, &schema, first_line) {
                Ok(r) => r,
                Err(GatewayError::BadRequest(m)) if m.contains("unknown column") => {
                    schema = self.schema(db, table, true).await?;
                    ingest::json_rows(&objects, &schema, first_line)?
                }
                Err(e) => return Err(e),
            };
            match parts.last_mut() {
                Some(last) if last.columns == rows.columns => last.rows.extend(rows.rows),
                _ => parts.push(rows),
            }
        }
        // Every line is valid before anything is written.
        let writes = parts.into_iter().map(|p| self.write(schema.clone(), p));
        let mut n = 0;
        for r in futures_util::future::join_all(writes).await {
            n += r?;
        }
        Ok(n)
    }

    /// Budget for `bytes` of transient memory, held until dropped (429 when used up).
    fn reserve_bytes(
        &self,
        bytes: usize,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, GatewayError> {
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        if kib == 0 {
            return Ok(None);
        }
        self.budget
            .clone()
            .try_acquire_many_owned(kib)
            .map(Some)
            .map_err(|_| {
                metrics::ADMISSION_REFUSED
                    .get_or_create(&vec![("reason", "memory_budget".to_owned())])
                    .inc();
                GatewayError::Overloaded("memory budget for in-flight requests is used up".into())
            })
    }
}

/// Splits NDJSON text at line ends into chunks of about `size` bytes: (first line number, chunk).
fn ndjson_chunks(raw: &[u8], size: usize) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let (mut start, mut line) = (0usize, 1usize);
    while start < raw.len() {
        let want = (start + size).min(raw.len());
        let end = raw[want..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| want + i + 1);
        let chunk = &raw[start..end];
        out.push((line, chunk));
        line += chunk.iter().filter(|&&b| b == b'\n').count();
        start = end;
    }
    out
}

/// A chunk's "line N: ..." error as the body's line number.
fn shift_lines(e: GatewayError, first_line: usize) -> GatewayError {
    match e {
        GatewayError::BadRequest(m) => {
            let shifted = m.strip_prefix("line ").and_then(|rest| {
                let (n, tail) = rest.split_once(':')?;
                let n: usize = n.parse().ok()?;
                Some(format!("line {}:{tail}", n + first_line - 1))
            });
            GatewayError::BadRequest(shifted.unwrap_or(m))
        }
        other => other,
    }
}

/// `/readyz`: one JSON object with each shard's reachable replicas and breaker state, and the
/// spool. Not ready (503) when a shard has no reachable replica or an open breaker (with
/// `ack = "inserted"`), or when the spool refuses new data (with `ack = "spooled"`: a down shard
/// then only grows the spool, so the gateway stays ready while it has room).
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let writer = app.batcher.writer().clone();
    let cluster = writer.cluster().clone();
    let spooled = app.batcher.delivery().cloned();
    let mut shards = Vec::new();
    let mut ready = true;
    for (i, shard) in cluster.shards.iter().enumerate() {
        let probes = shard.iter().map(|r| async {
            let q = tokio::time::timeout(Duration::from_secs(2), r.client.query("SELECT 1")).await;
            matches!(q, Ok(Ok(_))).then(|| r.name.clone())
        });
        let up: Vec<String> = futures_util::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect();
        let breaker = writer.breaker(crate::spool::Lane::Shard(i)).state();
        if spooled.is_none() {
            // Half-open counts as ready: the probe that closes the breaker needs traffic.
            ready &=
                !up.is_empty() && !matches!(breaker, crate::backpressure::BreakerState::Open(_));
        }
        shards.push(serde_json::json!({
            "shard": i + 1,
            "replicas": shard.len(),
            "reachable": up,
            "breaker": breaker.describe(),
        }));
    }
    let mut body = serde_json::json!({
        "ack": if spooled.is_some() { "spooled" } else { "inserted" },
        "shards": shards,
    });
    if let Some(d) = &spooled {
        let admit = d.spool().admit();
        ready &= admit.is_ok();
        body["spool"] = serde_json::json!({
            "pending_bytes": d.spool().pending_bytes(),
            "disk_bytes": d.spool().disk_bytes(),
            "refusing": admit.err(),
        });
    }
    body["ready"] = serde_json::Value::Bool(ready);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string() + "\n",
    )
        .into_response()
}

#[cfg(test)]
mod durability_tests {
    use super::*;

    #[test]
    fn ndjson_chunks_end_at_line_ends_and_number_lines_from_the_body() {
        let body = b"{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}\n{\"a\":4}";
        let chunks = ndjson_chunks(body, 9);
        let joined: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.to_vec()).collect();
        assert_eq!(joined, body.to_vec(), "nothing lost or repeated");
        assert!(chunks
            .iter()
            .all(|(_, c)| c.ends_with(b"\n") || c.ends_with(b"}")));
        assert_eq!(
            chunks.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            vec![1, 3]
        );
        let e = shift_lines(GatewayError::BadRequest("line 2: bad".into()), 5);
        assert_eq!(e.to_string(), "line 6: bad");
    }
}
