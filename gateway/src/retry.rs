//! Retry: one classification of ClickHouse outcomes and one backoff policy (capped exponential,
//! full jitter). Retries always resend the same bytes, so replicated block deduplication (and
//! `insert_deduplication_token` where the server has it) drops a duplicate of a block that did land.

use std::time::Duration;

use chgate_clickhouse_http::Error;

/// What to do with a failed insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Transient: same bytes again, maybe on another replica.
    Retry,
    /// The data is bad: do not retry, report to the client.
    Reject,
}

/// ClickHouse error codes that are transient for an insert.
/// <https://github.com/ClickHouse/ClickHouse/blob/master/src/Common/ErrorCodes.cpp>
const TRANSIENT: &[u32] = &[
    159,  // TIMEOUT_EXCEEDED
    164,  // READONLY
    202,  // TOO_MANY_SIMULTANEOUS_QUERIES
    209,  // SOCKET_TIMEOUT
    210,  // NETWORK_ERROR
    225,  // NO_ZOOKEEPER
    236,  // ABORTED
    241,  // MEMORY_LIMIT_EXCEEDED
    242,  // TABLE_IS_READ_ONLY
    252,  // TOO_MANY_PARTS
    285,  // TOO_FEW_LIVE_REPLICAS
    319,  // UNKNOWN_STATUS_OF_INSERT
    394,  // QUERY_WAS_CANCELLED
    425,  // SYSTEM_ERROR
    999,  // KEEPER_EXCEPTION
    1000, // POCO_EXCEPTION
];

/// POCO_EXCEPTION (1000) is mostly network trouble, but 18.16 also raises it for malformed
/// RowBinary/Native data ("Too large string size"): retrying those would only turn a client's
/// bad rows into a 503 (found by the hostile-input suite).
const POCO_BAD_DATA: &[&str] = &[
    "Too large string size",
    "Too large array size",
    "Too large size",
];

/// MEMORY_LIMIT_EXCEEDED (241) for one allocation of a terabyte or more: a length read from
/// malformed RowBinary/Native data, not memory pressure; retrying cannot succeed.
fn absurd_allocation(message: &str) -> bool {
    message
        .split("attempt to allocate chunk of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|bytes| bytes >= 1 << 40)
}

/// Classifies an insert failure.
pub fn classify(e: &Error) -> Class {
    match e {
        Error::Transport { .. } => Class::Retry,
        Error::Server {
            code: 1000,
            message,
            ..
        } if POCO_BAD_DATA.iter().any(|m| message.contains(m)) => Class::Reject,
        Error::Server {
            code: 241, message, ..
        } if absurd_allocation(message) => Class::Reject,
        Error::Server { code, status, .. } => {
            if TRANSIENT.contains(code) || (*code == 0 && *status >= 500) || *status == 503 {
                Class::Retry
            } else {
                Class::Reject
            }
        }
        _ => Class::Retry,
    }
}

/// What a transient failure says about the server, for admission and the shard breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pressure {
    /// The server works but cannot keep up (too many parts, memory limit, too many queries,
    /// timeouts): clients should slow down -> 429.
    Busy,
    /// The server (or its Keeper session) cannot take inserts now (readonly replica, Keeper
    /// errors, unreachable): -> 503, rows wait in the spool when there is one.
    Down,
}

/// Codes that mean "slow down" rather than "down".
const BUSY: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    241, // MEMORY_LIMIT_EXCEEDED
    252, // TOO_MANY_PARTS
];

/// Which kind of pressure a transient failure signals (only meaningful for [`Class::Retry`]).
pub fn pressure(e: &Error) -> Pressure {
    match e {
        Error::Server { code, .. } if BUSY.contains(code) => Pressure::Busy,
        _ => Pressure::Down,
    }
}

/// Capped exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay cap.
    pub base: Duration,
    /// Largest delay.
    pub cap: Duration,
    /// Attempts in all (first try included).
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
            attempts: 8,
        }
    }
}

impl Backoff {
    /// Delay before retry number `n` (1-based): uniform in `[0, min(cap, base * 2^(n-1))]`.
    pub fn delay(&self, n: u32, unit_random: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << n.saturating_sub(1).min(20));
        let top = exp.min(self.cap);
        top.mul_f64(unit_random.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u32, status: u16) -> Error {
        Error::Server {
            host: "h".into(),
            code,
            message: String::new(),
            status,
        }
    }

    #[test]
    fn readonly_too_many_parts_and_memory_are_retried_parse_errors_are_not() {
        for code in [242, 252, 241, 159, 999] {
            assert_eq!(classify(&server(code, 500)), Class::Retry, "{code}");
        }
        for code in [27, 53, 62, 60, 16, 117] {
            assert_eq!(classify(&server(code, 500)), Class::Reject, "{code}");
        }
        assert_eq!(classify(&server(0, 502)), Class::Retry);
    }

    #[test]
    fn poco_exception_for_malformed_rowbinary_is_bad_data_not_a_503() {
        // Regression (hostile suite): garbage RowBinary through the ClickHouse-compatible
        // endpoint made 18.16 answer Code 1000 "Too large string size", retried into a 503.
        let e = Error::Server {
            host: "h".into(),
            code: 1000,
            message:
                "Poco::Exception. Code: 1000, e.displayText() = Exception: Too large string size."
                    .into(),
            status: 500,
        };
        assert_eq!(classify(&e), Class::Reject);
        assert_eq!(
            classify(&server(1000, 500)),
            Class::Retry,
            "other Poco errors stay transient"
        );
        let huge = Error::Server {
            host: "h".into(),
            code: 241,
            message: "Memory limit (for query) exceeded: would use 4.00 TiB (attempt to allocate chunk of 4398046511104 bytes), maximum: 3.73 GiB".into(),
            status: 500,
        };
        assert_eq!(classify(&huge), Class::Reject);
        assert_eq!(
            classify(&server(241, 500)),
            Class::Retry,
            "real memory pressure is retried"
        );
    }

    #[test]
    fn too_many_parts_and_memory_are_busy_keeper_and_readonly_are_down() {
        for code in [252, 241, 202, 159] {
            assert_eq!(pressure(&server(code, 500)), Pressure::Busy, "{code}");
        }
        for code in [242, 164, 225, 999, 285, 0] {
            assert_eq!(pressure(&server(code, 500)), Pressure::Down, "{code}");
        }
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(4, 1.0), Duration::from_millis(800));
        assert_eq!(b.delay(30, 1.0), Duration::from_secs(5));
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
    }
}
