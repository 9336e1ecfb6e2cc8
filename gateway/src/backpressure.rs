//! Backpressure from ClickHouse's state: one circuit breaker per write lane (each shard in
//! shard-aware mode, plus the Distributed lane). Consecutive transient failures open a lane's
//! breaker for `open_for`; while open, inserted-mode writes to it fail fast (429 when ClickHouse
//! said "busy", 503 when "down"), spooled-mode deliveries wait, and admission answers 429 while a
//! lane is open for "busy" (too many parts, memory). The first attempt after `open_for` is the
//! half-open probe: success closes the breaker, failure opens it again.
//!
//! States are exported as `chgate_shard_breaker_open{shard="N"}` and listed by `/readyz`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::metrics;
use crate::retry::Pressure;

/// `[breaker]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failed attempts on a lane that open its breaker. Default 3.
    pub failures: u32,
    /// How long an open breaker stays open before one probe. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 3,
            open_for: Duration::from_secs(2),
        }
    }
}

/// What a breaker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Writes go through.
    Closed,
    /// Writes are held back until the given time, for this reason.
    Open(Pressure),
    /// Open time is over; the next write is the probe.
    HalfOpen(Pressure),
}

impl BreakerState {
    /// `closed`, `open (busy)`, ...
    pub fn describe(self) -> String {
        let why = |p: Pressure| match p {
            Pressure::Busy => "busy",
            Pressure::Down => "down",
        };
        match self {
            BreakerState::Closed => "closed".into(),
            BreakerState::Open(p) => format!("open ({})", why(p)),
            BreakerState::HalfOpen(p) => format!("half-open ({})", why(p)),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    failures: u32,
    open_until: Option<Instant>,
    reason: Option<Pressure>,
}

/// One lane's breaker.
#[derive(Debug)]
pub struct Breaker {
    label: String,
    cfg: BreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker exported with label `shard="{label}"`.
    pub fn new(label: String, cfg: BreakerConfig) -> Self {
        metrics::BREAKER_OPEN
            .get_or_create(&vec![("shard", label.clone())])
            .set(0);
        Breaker {
            label,
            cfg,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state_at(Instant::now())
    }

    fn state_at(&self, now: Instant) -> BreakerState {
        let g = self.lock();
        match (g.open_until, g.reason) {
            (Some(t), Some(p)) if now < t => BreakerState::Open(p),
            (Some(_), Some(p)) => BreakerState::HalfOpen(p),
            _ => BreakerState::Closed,
        }
    }

    /// When an open breaker allows its probe (`None` when writes may go now).
    pub fn wait_until(&self) -> Option<Instant> {
        let g = self.lock();
        g.open_until.filter(|t| Instant::now() < *t)
    }

    /// Records a successful write: closes the breaker.
    pub fn success(&self) {
        let mut g = self.lock();
        if g.open_until.is_some() {
            tracing::info!(shard = %self.label, "shard breaker closed");
        }
        *g = Inner::default();
        self.export(false);
    }

    /// Records a transient failure; opens the breaker after `failures` in a row (or at once when
    /// it was half-open).
    pub fn failure(&self, p: Pressure) {
        self.failure_at(p, Instant::now());
    }

    fn failure_at(&self, p: Pressure, now: Instant) {
        let mut g = self.lock();
        g.failures += 1;
        let half_open = g.open_until.is_some();
        if g.failures >= self.cfg.failures || half_open {
            if !half_open {
                tracing::warn!(shard = %self.label, pressure = ?p, "shard breaker opened");
            }
            g.open_until = Some(now + self.cfg.open_for);
            g.reason = Some(p);
            drop(g);
            self.export(true);
        }
    }

    fn export(&self, open: bool) {
        metrics::BREAKER_OPEN
            .get_or_create(&vec![("shard", self.label.clone())])
            .set(i64::from(open));
    }

    /// The label (`1`, `2`, `distributed`).
    pub fn label(&self) -> &str {
        &self.label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_probes_after_open_for_and_closes_on_success() {
        let b = Breaker::new(
            "t1".into(),
            BreakerConfig {
                failures: 2,
                open_for: Duration::from_secs(5),
            },
        );
        let t0 = Instant::now();
        b.failure_at(Pressure::Busy, t0);
        assert_eq!(b.state_at(t0), BreakerState::Closed);
        b.failure_at(Pressure::Busy, t0);
        assert_eq!(b.state_at(t0), BreakerState::Open(Pressure::Busy));
        let later = t0 + Duration::from_secs(6);
        assert_eq!(b.state_at(later), BreakerState::HalfOpen(Pressure::Busy));
        // A failed probe opens it again at once.
        b.failure_at(Pressure::Down, later);
        assert_eq!(b.state_at(later), BreakerState::Open(Pressure::Down));
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = Breaker::new("t2".into(), BreakerConfig::default());
        b.failure(Pressure::Down);
        b.failure(Pressure::Down);
        b.success();
        b.failure(Pressure::Down);
        b.failure(Pressure::Down);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
