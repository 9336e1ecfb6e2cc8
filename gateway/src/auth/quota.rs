//! Per-tenant row-rate limit: a token bucket that may go into debt.
//!
//! A request is admitted while the bucket is not in debt, and its rows are then taken even if
//! that overdraws it; later requests get 429 until the debt is paid back at `rate` rows/s. So a
//! single request larger than one second's allowance still passes (once), and the long-run rate
//! is bounded by `rate`. Pure: callers pass the clock.

use std::time::{Duration, Instant};

/// One tenant's bucket.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    balance: f64,
    at: Instant,
}

impl RateLimiter {
    /// A full bucket allowing `rows_per_second`, with one second of burst.
    pub fn new(rows_per_second: u64, now: Instant) -> Self {
        let rate = rows_per_second.max(1) as f64;
        RateLimiter {
            rate,
            burst: rate,
            balance: rate,
            at: now,
        }
    }

    /// The configured rate.
    pub fn rate(&self) -> u64 {
        self.rate as u64
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.balance = (self.balance + dt * self.rate).min(self.burst);
        self.at = now;
    }

    /// Takes `rows`; `Err(retry_after)` when the bucket is in debt.
    ///
    /// # Errors
    /// How long until the debt is repaid (at least one second, as `Retry-After` has 1 s units).
    pub fn take(&mut self, rows: u64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.balance < 0.0 {
            let secs = (-self.balance / self.rate).ceil().max(1.0);
            return Err(Duration::from_secs(secs as u64));
        }
        self.balance -= rows as f64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_debt_then_refuses_until_repaid() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(100, t0);
        assert!(r.take(60, t0).is_ok());
        assert!(r.take(60, t0).is_ok(), "balance was still positive");
        // Now 20 rows in debt: refused, retry after 1 s.
        assert_eq!(r.take(1, t0), Err(Duration::from_secs(1)));
        assert!(r.take(1, t0 + Duration::from_millis(250)).is_ok());
    }

    #[test]
    fn a_huge_request_passes_once_and_sets_a_long_retry_after() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, t0);
        assert!(r.take(1000, t0).is_ok());
        assert_eq!(r.take(1, t0), Err(Duration::from_secs(99)));
        assert_eq!(
            r.take(1, t0 + Duration::from_secs(50)),
            Err(Duration::from_secs(49))
        );
    }

    #[test]
    fn long_run_rate_is_bounded() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1000, t0);
        let mut admitted = 0u64;
        for ms in 0..10_000u64 {
            if r.take(50, t0 + Duration::from_millis(ms)).is_ok() {
                admitted += 50;
            }
        }
        // 10 s at 1000 rows/s plus one second of burst and one overdraw.
        assert!(admitted <= 11_050, "{admitted}");
        assert!(admitted >= 9_900, "{admitted}");
    }
}
