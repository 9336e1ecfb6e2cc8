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
/// Flush latency in seconds.
pub static FLUSH_SECONDS: LazyLock<Histogram> =
    LazyLock::new(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
/// Rows per flushed batch.
pub static BATCH_ROWS: LazyLock<Histogram> =
    LazyLock::new(|| Histogram::new(exponential_buckets(1.0, 4.0, 12)));

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
    let mut out = String::new();
    let _ = encode(&mut out, &r);
    out
}

/// Labels for a protocol.
pub fn proto(protocol: &'static str) -> RequestLabels {
    vec![("protocol", protocol.to_owned())]
}
