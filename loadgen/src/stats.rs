//! Run statistics: counters, an HDR latency histogram for the whole run, and a per-second
//! timeline (rows, errors, latency) for the charts. Recording takes one short lock per request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency the histograms hold (1 hour, in microseconds); larger values are clamped.
const MAX_US: u64 = 3_600_000_000;

fn histogram(sigfig: u8) -> Histogram<u64> {
    // Constant bounds (1 us .. 1 h, 2-3 significant figures) are always valid.
    Histogram::new_with_bounds(1, MAX_US, sigfig).expect("constant histogram bounds are valid")
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_US)
}

#[derive(Debug)]
struct Second {
    rows: u64,
    errors: u64,
    hist: Histogram<u64>,
}

#[derive(Debug)]
struct Inner {
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    last_error: Option<String>,
    seconds: Vec<Second>,
}

/// Shared, thread-safe run statistics.
#[derive(Debug)]
pub struct Stats {
    start: Instant,
    rows: AtomicU64,
    bytes: AtomicU64,
    requests: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    inner: Mutex<Inner>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondSummary {
    /// Seconds since the start (the second this entry covers starts here).
    pub t: u64,
    /// Rows acked in this second.
    pub rows: u64,
    /// Failed requests in this second.
    pub errors: u64,
    /// Median latency of requests completed in this second, ms.
    pub p50_ms: f64,
    /// p99 latency of requests completed in this second, ms.
    pub p99_ms: f64,
}

/// What [`Stats::snapshot`] reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Wall time since the start, s.
    pub elapsed_s: f64,
    /// Acked rows.
    pub rows: u64,
    /// Acked body bytes.
    pub bytes: u64,
    /// Acked requests.
    pub requests: u64,
    /// Requests that failed for good (after retries).
    pub failed: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Acked rows per second.
    pub rows_per_s: f64,
    /// Acked MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Latency of acked requests (open loop: from the intended send time).
    pub latency_ms: Latency,
    /// Failed requests by status (`429`, `502`, `transport`, `clickhouse 242`, ...).
    pub errors: BTreeMap<String, u64>,
    /// The last error message seen.
    pub last_error: Option<String>,
    /// Per-second timeline.
    pub timeline: Vec<SecondSummary>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Empty statistics; the clock starts now.
    pub fn new() -> Self {
        Stats {
            start: Instant::now(),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                hist: histogram(3),
                errors: BTreeMap::new(),
                last_error: None,
                seconds: Vec::new(),
            }),
        }
    }

    /// When the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    fn with_second(&self, f: impl FnOnce(&mut Inner, usize)) {
        let sec = self.start.elapsed().as_secs() as usize;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while inner.seconds.len() <= sec {
            inner.seconds.push(Second {
                rows: 0,
                errors: 0,
                hist: histogram(2),
            });
        }
        f(&mut inner, sec);
    }

    /// An acked request of `rows` rows and `bytes` bytes that took `latency`.
    pub fn ok(&self, latency: Duration, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let v = us(latency);
        self.with_second(|inner, sec| {
            inner.hist.saturating_record(v);
            inner.seconds[sec].rows += rows;
            inner.seconds[sec].hist.saturating_record(v);
        });
    }

    /// A request that failed for good with `status`.
    pub fn failed(&self, status: &str, message: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.with_second(|inner, sec| {
            *inner.errors.entry(status.to_owned()).or_default() += 1;
            inner.last_error = Some(message.chars().take(300).collect());
            inner.seconds[sec].errors += 1;
        });
    }

    /// One retried attempt.
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Acked rows so far.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Failed requests so far.
    pub fn failures(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Current p99 latency in ms (for the progress line).
    pub fn p99_ms(&self) -> f64 {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Latency::of(&inner.hist).p99
    }

    /// Everything so far; `elapsed` is the measured run time (excluding verification).
    pub fn snapshot(&self, elapsed: Duration) -> Snapshot {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let secs = elapsed.as_secs_f64().max(1e-9);
        let rows = self.rows();
        let bytes = self.bytes.load(Ordering::Relaxed);
        Snapshot {
            elapsed_s: elapsed.as_secs_f64(),
            rows,
            bytes,
            requests: self.requests.load(Ordering::Relaxed),
            failed: self.failures(),
            retries: self.retries.load(Ordering::Relaxed),
            rows_per_s: rows as f64 / secs,
            mb_per_s: bytes as f64 / 1e6 / secs,
            latency_ms: Latency::of(&inner.hist),
            errors: inner.errors.clone(),
            last_error: inner.last_error.clone(),
            timeline: inner
                .seconds
                .iter()
                .enumerate()
                .map(|(t, s)| {
                    let l = Latency::of(&s.hist);
                    SecondSummary {
                        t: t as u64,
                        rows: s.rows,
                        errors: s.errors,
                        p50_ms: l.p50,
                        p99_ms: l.p99,
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_percentiles_errors_and_timeline() {
        let s = Stats::new();
        for i in 1..=100u64 {
            s.ok(Duration::from_millis(i), 10, 100);
        }
        s.failed("429", "slow down");
        s.failed("429", "slow down");
        s.failed("transport", "refused");
        s.retry();
        let snap = s.snapshot(Duration::from_secs(2));
        assert_eq!(snap.rows, 1000);
        assert_eq!(snap.bytes, 10_000);
        assert_eq!(snap.failed, 3);
        assert_eq!(snap.retries, 1);
        assert_eq!(snap.errors["429"], 2);
        assert!((snap.rows_per_s - 500.0).abs() < 1e-6);
        assert!(
            (snap.latency_ms.p50 - 50.0).abs() < 0.5,
            "{:?}",
            snap.latency_ms
        );
        assert!((snap.latency_ms.p99 - 99.0).abs() < 0.5);
        assert!((snap.latency_ms.max - 100.0).abs() < 0.5);
        assert_eq!(snap.timeline.iter().map(|t| t.rows).sum::<u64>(), 1000);
        assert_eq!(snap.timeline.iter().map(|t| t.errors).sum::<u64>(), 3);
    }

    #[test]
    fn empty_run_has_zero_latency() {
        let snap = Stats::new().snapshot(Duration::ZERO);
        assert_eq!(snap.latency_ms, Latency::default());
        assert_eq!(snap.rows, 0);
    }
}
