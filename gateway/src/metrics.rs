//! Prometheus metrics, in one place: each notable event bumps one low-cardinality series here.
//! Rendered in the Prometheus/OpenMetrics text format on `GET /metrics`.

use std::sync::LazyLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels `protocol` and `status` of a request.
pub type RequestLabels = Vec<(&'static str, String)>;

/// Requests by protocol and HTTP status.
pub static REQUESTS: LazyLock<Family<RequestLabels, Counter>> = LazyLock::new(Family::default);
/// Rows accepted into batches, by protocol.
pub static ROWS: LazyLock<Family<RequestLabels, Counter>> = LazyLock::new(Family::default);
/// Rows rejected as bad input, by protocol.
pub static REJECTED_ROWS: LazyLock<Family<RequestLabels, Counter>> = LazyLock::new(Family::default);
/// Bytes of request bodies (decompressed).
pub static BYTES: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Insert retries.
pub static RETRIES: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Failed flushes (after retries).
pub static FLUSH_FAILURES: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Rows waiting in batchers.
pub static QUEUE_ROWS: LazyLock<Gauge> = LazyLock::new(Gauge::default);
/// Bytes of request data held in memory (admission budget).
pub static INFLIGHT_BYTES: LazyLock<Gauge> = LazyLock::new(Gauge::default);
/// Requests refused by authentication (401/503 from the auth layer).
pub static AUTH_REJECTED: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Token lookups in PostgreSQL that failed (a stale cached answer may still have been used).
pub static AUTH_BACKEND_ERRORS: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Requests refused by a tenant's rate quota (429).
pub static QUOTA_REJECTED: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Flush latency in seconds.
pub static FLUSH_SECONDS: LazyLock<Histogram> =
    LazyLock::new(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
/// Rows per flushed batch.
pub static BATCH_ROWS: LazyLock<Histogram> =
    LazyLock::new(|| Histogram::new(exponential_buckets(1.0, 4.0, 12)));

/// Bytes of spooled blocks not yet delivered (`chgate_spool_bytes`).
pub static SPOOL_BYTES: LazyLock<Gauge> = LazyLock::new(Gauge::default);
/// Spool segment files on disk (`chgate_spool_segments`).
pub static SPOOL_SEGMENTS: LazyLock<Gauge> = LazyLock::new(Gauge::default);
/// Bytes of all spool segments on disk (what `spool.max_bytes` caps).
pub static SPOOL_DISK_BYTES: LazyLock<Gauge> = LazyLock::new(Gauge::default);
/// Torn or corrupt spool tails truncated at start.
pub static SPOOL_TRUNCATED: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Bytes cut off by those truncations.
pub static SPOOL_TRUNCATED_BYTES: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Rows acked from the spool (`ack = "spooled"`).
pub static SPOOLED_ROWS: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Spooled rows delivered to ClickHouse.
pub static DELIVERED_ROWS: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Rows moved to the dead-letter queue.
pub static DEAD_LETTERED_ROWS: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Rows currently in the dead-letter queue (`chgate_dlq_rows`).
pub static DLQ_ROWS: LazyLock<Gauge> = LazyLock::new(Gauge::default);
/// 1 while a lane's breaker is open (`chgate_shard_breaker_open{shard="N"}`).
pub static BREAKER_OPEN: LazyLock<Family<RequestLabels, Gauge>> = LazyLock::new(Family::default);
/// Requests refused at admission, by reason (`memory_budget`, `spool_full`, `clickhouse_busy`).
pub static ADMISSION_REFUSED: LazyLock<Family<RequestLabels, Counter>> =
    LazyLock::new(Family::default);

/// The registry text, for `/metrics`.
pub fn render() -> String {
    let mut r = Registry::with_prefix("chgate");
    r.register(
        "requests",
        "HTTP ingest requests by protocol and status",
        REQUESTS.clone(),
    );
    r.register("rows", "rows accepted by protocol", ROWS.clone());
    r.register(
        "rejected_rows",
        "rows rejected as bad input by protocol",
        REJECTED_ROWS.clone(),
    );
    r.register(
        "request_bytes",
        "decompressed request body bytes",
        BYTES.clone(),
    );
    r.register(
        "insert_retries",
        "ClickHouse insert retries",
        RETRIES.clone(),
    );
    r.register(
        "flush_failures",
        "batches that failed after all retries",
        FLUSH_FAILURES.clone(),
    );
    r.register("queue_rows", "rows waiting in batchers", QUEUE_ROWS.clone());
    r.register(
        "inflight_bytes",
        "request bytes held in memory",
        INFLIGHT_BYTES.clone(),
    );
    r.register(
        "flush_seconds",
        "batch flush latency",
        FLUSH_SECONDS.clone(),
    );
    r.register("batch_rows", "rows per flushed batch", BATCH_ROWS.clone());
    register_durability(&mut r);
    r.register(
        "auth_rejected",
        "requests refused by authentication",
        AUTH_REJECTED.clone(),
    );
    r.register(
        "auth_backend_errors",
        "failed token lookups in PostgreSQL",
        AUTH_BACKEND_ERRORS.clone(),
    );
    r.register(
        "quota_rejected",
        "requests refused by a tenant rate quota",
        QUOTA_REJECTED.clone(),
    );
    let mut out = String::new();
    let _ = encode(&mut out, &r);
    out
}

fn register_durability(r: &mut Registry) {
    let gauges: [(&str, &str, &Gauge); 4] = [
        (
            "spool_bytes",
            "bytes of spooled blocks not yet delivered",
            &SPOOL_BYTES,
        ),
        ("spool_segments", "spool segment files", &SPOOL_SEGMENTS),
        (
            "spool_disk_bytes",
            "bytes of spool segments on disk",
            &SPOOL_DISK_BYTES,
        ),
        ("dlq_rows", "rows in the dead-letter queue", &DLQ_ROWS),
    ];
    for (name, help, g) in gauges {
        r.register(name, help, g.clone());
    }
    let counters: [(&str, &str, &Counter); 5] = [
        (
            "spool_truncated",
            "torn or corrupt spool tails truncated at start",
            &SPOOL_TRUNCATED,
        ),
        (
            "spool_truncated_bytes",
            "bytes cut from torn spool tails",
            &SPOOL_TRUNCATED_BYTES,
        ),
        ("spooled_rows", "rows acked from the spool", &SPOOLED_ROWS),
        (
            "delivered_rows",
            "spooled rows delivered to ClickHouse",
            &DELIVERED_ROWS,
        ),
        (
            "dead_lettered_rows",
            "rows moved to the dead-letter queue",
            &DEAD_LETTERED_ROWS,
        ),
    ];
    for (name, help, c) in counters {
        r.register(name, help, c.clone());
    }
    r.register(
        "shard_breaker_open",
        "1 while the lane's circuit breaker is open",
        BREAKER_OPEN.clone(),
    );
    r.register(
        "admission_refused",
        "requests refused at admission by reason",
        ADMISSION_REFUSED.clone(),
    );
}

/// Labels for a protocol.
pub fn proto(protocol: &'static str) -> RequestLabels {
    vec![("protocol", protocol.to_owned())]
}
