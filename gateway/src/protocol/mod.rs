//! Protocol decoders: request bodies → [`Sample`]s for the shipped samples schema.

/// One metric sample, as the shipped `samples`/`series` tables store it (see migrations/SCHEMA.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (`__name__` for Prometheus).
    pub metric: String,
    /// Labels sorted by name, unique names, `__name__` excluded.
    pub labels: Vec<(String, String)>,
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
}
