//! Protocol decoders: request bodies → [`Sample`]s for the shipped samples schema.
//!
//! Pure code, no sockets: the HTTP handlers hand a (decompressed where the protocol says so)
//! body to one of the decoders and get samples back, or a [`DecodeError`] whose message tells
//! the client what to fix.
//!
//! - [`remote_write::decode`] — Prometheus remote_write 1.0 (snappy block + protobuf);
//!   [`remote_write::decode_each`] hands out borrowed [`SampleRef`]s without allocating.
//! - [`influx::decode`] / [`influx::decode_bytes`] — Influx line protocol; bad lines are
//!   reported per line, good lines kept.
//! - [`otlp::decode_protobuf`] / [`otlp::decode_json`] — OTLP/HTTP metrics.
//! - [`series::series_key`] / [`series::series_id`] — the `series_id` of migrations/SCHEMA.md.
//! - [`SampleSink`]: the allocation-free path the gateway uses. [`influx::decode_bytes_to`],
//!   [`remote_write::decode_to`] and [`otlp::decode_to`] hand each label set once (borrowed from
//!   the body) and then its samples, so a consumer (the gateway's `ingest::SamplesBuilder`) can
//!   share a line's, series' or point's labels across its samples instead of owning a copy per
//!   [`Sample`]. remote_write also offers each series' label bytes to
//!   [`SampleSink::recall`]: a sink that remembers them skips decoding the labels again.
//!
//! The exact mapping of every protocol onto metric names and labels is in `gateway/PROTOCOLS.md`.

mod cityhash;
mod error;
pub mod influx;
pub mod otlp;
pub mod remote_write;
pub mod series;
mod wire;

pub use error::DecodeError;

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

/// A sample whose names and values are borrowed from the request body (see
/// [`remote_write::decode_each`]); [`SampleRef::to_sample`] makes the owned [`Sample`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRef<'a> {
    /// Metric name.
    pub metric: &'a str,
    /// Labels sorted by name, unique names, `__name__` excluded.
    pub labels: &'a [(&'a str, &'a str)],
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
}

impl SampleRef<'_> {
    /// The owned [`Sample`].
    pub fn to_sample(&self) -> Sample {
        Sample {
            metric: self.metric.to_owned(),
            labels: self
                .labels
                .iter()
                .map(|&(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            timestamp_ms: self.timestamp_ms,
            value: self.value,
        }
    }
}

/// Receives decoded samples grouped by label set, with names and values borrowed from the
/// request body: [`SampleSink::labels`] once per line (Influx) or series (remote_write), then
/// [`SampleSink::sample`] for each of its samples.
pub trait SampleSink {
    /// The labels of the samples that follow: sorted by name, unique, `__name__` excluded.
    fn labels<N: AsRef<str>, V: AsRef<str>>(&mut self, labels: &[(N, V)]);
    /// One sample carrying the labels last given.
    fn sample(&mut self, metric: &str, timestamp_ms: i64, value: f64);

    /// Makes current the label set (and metric) last [remembered](SampleSink::remember) under
    /// `raw`, the wire bytes it was decoded from; its samples then come through
    /// [`SampleSink::sample_recalled`]. False (the default) when the sink does not know `raw`:
    /// the decoder decodes and checks the labels and passes them to [`SampleSink::labels`].
    fn recall(&mut self, _raw: &[u8]) -> bool {
        false
    }

    /// One sample of the series made current by [`SampleSink::recall`].
    fn sample_recalled(&mut self, _timestamp_ms: i64, _value: f64) {}

    /// Remembers the labels and metric just given (with at least one sample) under `raw`, the
    /// wire bytes they were decoded and checked from, so the same bytes need no decoding again.
    fn remember(&mut self, _raw: &[u8]) {}
}

/// A [`SampleSink`] that collects owned [`Sample`]s (one copy of the labels per sample).
#[derive(Debug, Default)]
pub struct SampleVec {
    /// The samples, in the order received.
    pub samples: Vec<Sample>,
    labels: Vec<(String, String)>,
}

impl SampleSink for SampleVec {
    fn labels<N: AsRef<str>, V: AsRef<str>>(&mut self, labels: &[(N, V)]) {
        self.labels.clear();
        self.labels.extend(
            labels
                .iter()
                .map(|(n, v)| (n.as_ref().to_owned(), v.as_ref().to_owned())),
        );
    }

    fn sample(&mut self, metric: &str, timestamp_ms: i64, value: f64) {
        self.samples.push(Sample {
            metric: metric.to_owned(),
            labels: self.labels.clone(),
            timestamp_ms,
            value,
        });
    }
}

/// Replaces every character outside `[a-zA-Z0-9_]` with `_` and prefixes `_` when the name
/// starts with a digit, so Influx and OTLP names are valid Prometheus metric and label names.
/// An empty name stays empty (callers reject or drop it).
pub fn sanitize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    push_sanitized(&mut out, name);
    out
}

/// Appends `name` to `out`, sanitized as [`sanitize_name`] does.
pub(crate) fn push_sanitized(out: &mut String, name: &str) {
    if out.is_empty() && name.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.push_str(name);
        return;
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

/// `true` when `name` needs no sanitizing (the common case, checked without allocating).
pub(crate) fn is_clean_name(name: &str) -> bool {
    !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_replaces_and_prefixes() {
        assert_eq!(sanitize_name("service.name"), "service_name");
        assert_eq!(sanitize_name("http-requests/s"), "http_requests_s");
        assert_eq!(sanitize_name("9lives"), "_9lives");
        assert_eq!(sanitize_name("ünï"), "_n_");
        assert_eq!(sanitize_name("ok_Name1"), "ok_Name1");
        assert_eq!(sanitize_name(""), "");
        assert!(is_clean_name("ok_1"));
        assert!(!is_clean_name("1ok"));
        assert!(!is_clean_name("a.b"));
        assert!(!is_clean_name(""));
    }
}
