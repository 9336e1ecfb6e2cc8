//! OTLP/HTTP metrics (`ExportMetricsServiceRequest`, protobuf and JSON) → samples.
//!
//! Messages are hand-derived ([`messages`]) rather than taken from `opentelemetry-proto`,
//! whose message types pull in `opentelemetry` + `opentelemetry_sdk` (and prost 0.14, MSRV
//! 1.85) — see `gateway/PROTOCOLS.md`. Mapping, Prometheus-style:
//! - gauge and sum points → `<name>`; histogram → `<name>_bucket{le}` (cumulative, `+Inf`
//!   last), `<name>_sum`, `<name>_count`; summary → `<name>{quantile}`, `<name>_sum`,
//!   `<name>_count`; exponential histogram → the same classic `le` buckets at its bucket
//!   boundaries.
//! - labels: resource attributes ([`ResourceAttributes`]), `otel_scope_name`,
//!   `otel_scope_version`, scope attributes, point attributes; later ones win on a name clash.
//!   Names sanitized to `[a-zA-Z0-9_]`; empty values dropped.
//! - time: `time_unix_nano` floored to ms; a point without time is an error. A point flagged
//!   "no recorded value" yields the Prometheus stale marker.
//!
//! [`decode_to`] decodes either encoding into any [`SampleSink`] (the gateway's samples builder):
//! each point's merged, sorted label set is handed once (once per bucket or quantile for
//! histograms and summaries), then its samples. Protobuf goes through the zero-copy reader in
//! `wire` (names and values borrowed from the body); [`decode_to_prost`] is the same through
//! prost's owned [`messages`], kept as the reference it is tested against. [`decode_protobuf`], [`decode_json`] and
//! [`to_samples`] are the same mapping collected into owned [`Sample`]s.

mod json;
pub mod messages;
mod wire;

use messages::{
    ExponentialHistogramDataPoint, ExportMetricsServiceRequest, HistogramDataPoint, KeyValue,
    Metric, NumberDataPoint, SummaryDataPoint,
};

use std::borrow::Cow;

use super::{is_clean_name, sanitize_name, DecodeError, Sample, SampleSink, SampleVec};

/// The Prometheus stale marker, used for points flagged "no recorded value".
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// Which resource attributes become labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ResourceAttributes {
    /// Every resource attribute (the default): `service.name` → `service_name`, ...
    #[default]
    All,
    /// Only these keys, as sent (e.g. `service.name`).
    Only(Vec<String>),
    /// None.
    None,
}

/// Decoding options; [`Default`] is what [`decode_protobuf`] and [`decode_json`] use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpOptions {
    /// Which resource attributes become labels (default: all).
    pub resource_attributes: ResourceAttributes,
}

/// The two OTLP/HTTP body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf` (also `application/protobuf`).
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names (parameters such as `; charset=utf-8` ignored), or
    /// `None` when it is not an OTLP one.
    pub fn from_content_type(ctype: &str) -> Option<Self> {
        if ctype.starts_with("application/json") {
            Some(Encoding::Json)
        } else if ctype.starts_with("application/x-protobuf")
            || ctype.starts_with("application/protobuf")
        {
            Some(Encoding::Protobuf)
        } else {
            None
        }
    }
}

/// Decodes a protobuf `ExportMetricsServiceRequest` (`Content-Type: application/x-protobuf`).
///
/// # Errors
/// As [`decode_to`].
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<Sample>, DecodeError> {
    decode_protobuf_with(body, &OtlpOptions::default())
}

/// [`decode_protobuf`] with explicit options.
///
/// # Errors
/// As [`decode_to`].
pub fn decode_protobuf_with(body: &[u8], opts: &OtlpOptions) -> Result<Vec<Sample>, DecodeError> {
    collect(|sink| decode_to(Encoding::Protobuf, body, opts, sink))
}

/// Decodes an OTLP JSON `ExportMetricsServiceRequest` (`Content-Type: application/json`).
///
/// # Errors
/// As [`decode_to`].
pub fn decode_json(body: &[u8]) -> Result<Vec<Sample>, DecodeError> {
    decode_json_with(body, &OtlpOptions::default())
}

/// [`decode_json`] with explicit options.
///
/// # Errors
/// As [`decode_to`].
pub fn decode_json_with(body: &[u8], opts: &OtlpOptions) -> Result<Vec<Sample>, DecodeError> {
    collect(|sink| decode_to(Encoding::Json, body, opts, sink))
}

/// Decodes an `ExportMetricsServiceRequest` in `encoding` into a [`SampleSink`]: each data
/// point's label set is handed once (once per bucket or quantile), then its samples. Returns
/// the number of samples.
///
/// On an error the sink may already hold the samples of the metrics before the bad one: the
/// caller discards them (the request is rejected whole).
///
/// # Errors
/// [`DecodeError::Malformed`] (reason and byte offset) for bytes that are not the message,
/// [`DecodeError::Json`] (with
/// line and column) for malformed JSON or a field of the wrong type,
/// [`DecodeError::InvalidMetric`] naming the metric whose points are inconsistent.
pub fn decode_to<S: SampleSink>(
    encoding: Encoding,
    body: &[u8],
    opts: &OtlpOptions,
    sink: &mut S,
) -> Result<usize, DecodeError> {
    match encoding {
        Encoding::Protobuf => wire::decode_to(body, opts, sink),
        Encoding::Json => {
            let request: ExportMetricsServiceRequest =
                serde_json::from_slice(body).map_err(|source| DecodeError::Json { source })?;
            to_sink(&request, opts, sink)
        }
    }
}

/// The reference protobuf decoder: prost's owned [`messages`], then [`to_sink`]. Gives the
/// same sink calls as [`decode_to`] with [`Encoding::Protobuf`] (the zero-copy reader the
/// gateway uses; tests compare the two) and the same acceptance, with prost's error text
/// ([`DecodeError::Protobuf`], no byte offset) instead.
///
/// # Errors
/// [`DecodeError::Protobuf`] for bytes that are not the message, else as [`to_sink`].
pub fn decode_to_prost<S: SampleSink>(
    body: &[u8],
    opts: &OtlpOptions,
    sink: &mut S,
) -> Result<usize, DecodeError> {
    let request: ExportMetricsServiceRequest =
        prost::Message::decode(body).map_err(|source| DecodeError::Protobuf {
            message: "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
            source,
        })?;
    to_sink(&request, opts, sink)
}

/// Maps a decoded request onto owned samples, in request order (see [`to_sink`]).
///
/// # Errors
/// As [`to_sink`].
pub fn to_samples(
    request: &ExportMetricsServiceRequest,
    opts: &OtlpOptions,
) -> Result<Vec<Sample>, DecodeError> {
    collect(|sink| to_sink(request, opts, sink))
}

/// The owned samples a sink-based decoder produces (the one mapping code path).
fn collect(
    decode: impl FnOnce(&mut SampleVec) -> Result<usize, DecodeError>,
) -> Result<Vec<Sample>, DecodeError> {
    let mut out = SampleVec::default();
    decode(&mut out)?;
    Ok(out.samples)
}

/// A label: sanitized name and rendered value, borrowed from the request where they need no
/// change.
type Label<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Maps a decoded request onto `sink`, in request order; returns the number of samples.
///
/// # Errors
/// [`DecodeError::InvalidMetric`] for an empty metric name, a point without time, or histogram
/// bucket counts that do not match the bounds.
pub fn to_sink<S: SampleSink>(
    request: &ExportMetricsServiceRequest,
    opts: &OtlpOptions,
    sink: &mut S,
) -> Result<usize, DecodeError> {
    let mut n = 0;
    for rm in &request.resource_metrics {
        let mut base: Vec<Label<'_>> = Vec::new();
        if let Some(resource) = &rm.resource {
            let keep = |kv: &&KeyValue| match &opts.resource_attributes {
                ResourceAttributes::All => true,
                ResourceAttributes::Only(keys) => keys.contains(&kv.key),
                ResourceAttributes::None => false,
            };
            push_attributes(&mut base, resource.attributes.iter().filter(keep));
        }
        for sm in &rm.scope_metrics {
            let mut scope_base = base.clone();
            if let Some(scope) = &sm.scope {
                scope_base.push(("otel_scope_name".into(), scope.name.as_str().into()));
                scope_base.push(("otel_scope_version".into(), scope.version.as_str().into()));
                push_attributes(&mut scope_base, scope.attributes.iter());
            }
            let mut mapper = Mapper {
                base: &scope_base,
                labels: Vec::new(),
                sink: &mut *sink,
                n: 0,
            };
            for metric in &sm.metrics {
                mapper.metric(metric)?;
            }
            n += mapper.n;
        }
    }
    Ok(n)
}

/// Appends `(sanitized key, rendered value)` for each attribute.
fn push_attributes<'a>(out: &mut Vec<Label<'a>>, attrs: impl Iterator<Item = &'a KeyValue>) {
    for kv in attrs {
        let name = if is_clean_name(&kv.key) {
            Cow::Borrowed(kv.key.as_str())
        } else {
            Cow::Owned(sanitize_name(&kv.key))
        };
        out.push((name, render(kv.value.as_ref())));
    }
}

/// An attribute value as label text: strings as-is, bools `true`/`false`, numbers in decimal,
/// arrays and maps as JSON.
fn render(value: Option<&messages::AnyValue>) -> Cow<'_, str> {
    let Some(v) = value else {
        return Cow::Borrowed("");
    };
    if let Some(s) = &v.string_value {
        return Cow::Borrowed(s);
    }
    Cow::Owned(match to_json(v) {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn to_json(v: &messages::AnyValue) -> serde_json::Value {
    use serde_json::Value;
    if let Some(s) = &v.string_value {
        Value::String(s.clone())
    } else if let Some(b) = v.bool_value {
        Value::Bool(b)
    } else if let Some(i) = v.int_value {
        Value::from(i)
    } else if let Some(d) = v.double_value {
        // Non-finite doubles have no JSON number form: use their text.
        serde_json::Number::from_f64(d).map_or_else(|| Value::String(d.to_string()), Value::Number)
    } else if let Some(a) = &v.array_value {
        Value::Array(a.values.iter().map(to_json).collect())
    } else if let Some(kv) = &v.kvlist_value {
        let map = kv
            .values
            .iter()
            .map(|e| (e.key.clone(), e.value.as_ref().map_or(Value::Null, to_json)));
        Value::Object(map.collect())
    } else {
        Value::Null
    }
}

/// The metric names of one metric: `<name>` and, for histograms and summaries, its suffixed
/// series.
struct Names {
    name: String,
    bucket: String,
    sum: String,
    count: String,
}

impl Names {
    fn new(name: String) -> Self {
        Names {
            bucket: format!("{name}_bucket"),
            sum: format!("{name}_sum"),
            count: format!("{name}_count"),
            name,
        }
    }
}

/// A data point's common fields.
struct Point {
    ts: i64,
    stale: bool,
}

impl Point {
    /// `x`, or the stale marker when the point has no recorded value.
    fn value(&self, x: f64) -> f64 {
        if self.stale {
            f64::from_bits(STALE_NAN)
        } else {
            x
        }
    }
}

/// Maps the metrics of one scope: `labels` is the current point's label set (the scope's
/// `base` plus the point's attributes), handed to `sink` before its samples.
struct Mapper<'s, 'k, S> {
    base: &'s [Label<'s>],
    labels: Vec<Label<'s>>,
    sink: &'k mut S,
    n: usize,
}

impl<'s, S: SampleSink> Mapper<'s, '_, S> {
    fn metric(&mut self, metric: &'s Metric) -> Result<(), DecodeError> {
        let name = sanitize_name(&metric.name);
        if name.is_empty() {
            return Err(invalid(&metric.name, "metric has an empty name"));
        }
        let numbers = metric.gauge.iter().flat_map(|g| &g.data_points);
        let sums = metric.sum.iter().flat_map(|s| &s.data_points);
        for p in numbers.chain(sums) {
            self.number(metric, &name, p)?;
        }
        if metric.histogram.is_none()
            && metric.summary.is_none()
            && metric.exponential_histogram.is_none()
        {
            return Ok(());
        }
        let names = Names::new(name);
        for p in metric.histogram.iter().flat_map(|h| &h.data_points) {
            self.histogram(metric, &names, p)?;
        }
        for p in metric.summary.iter().flat_map(|s| &s.data_points) {
            self.summary(metric, &names, p)?;
        }
        let exponential = metric
            .exponential_histogram
            .iter()
            .flat_map(|h| &h.data_points);
        for p in exponential {
            self.exponential(metric, &names, p)?;
        }
        Ok(())
    }

    fn number(
        &mut self,
        metric: &Metric,
        name: &str,
        p: &'s NumberDataPoint,
    ) -> Result<(), DecodeError> {
        let ts = timestamp(&metric.name, p.time_unix_nano)?;
        let value = match (p.as_double, p.as_int) {
            _ if p.flags & FLAG_NO_RECORDED_VALUE != 0 => f64::from_bits(STALE_NAN),
            (Some(d), _) => d,
            (None, Some(i)) => i as f64,
            // A point with no value at all carries nothing to store.
            (None, None) => return Ok(()),
        };
        self.point_labels(&p.attributes);
        self.sink.labels(&self.labels);
        self.emit(name, ts, value);
        Ok(())
    }

    fn histogram(
        &mut self,
        metric: &Metric,
        names: &Names,
        p: &'s HistogramDataPoint,
    ) -> Result<(), DecodeError> {
        let point = self.point(metric, p.time_unix_nano, p.flags, &p.attributes)?;
        if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
            return Err(invalid(
                &metric.name,
                &format!(
                    "histogram point has {} bucket_counts for {} explicit_bounds (want bounds + 1)",
                    p.bucket_counts.len(),
                    p.explicit_bounds.len()
                ),
            ));
        }
        let bounds = p
            .explicit_bounds
            .iter()
            .copied()
            .zip(p.bucket_counts.iter().copied());
        self.buckets(names, &point, bounds, p.count, p.sum);
        Ok(())
    }

    /// Exponential histogram → classic cumulative `le` buckets: negative buckets (most negative
    /// first, upper bound `-base^i`), the zero bucket (`le = zero_threshold`), positive buckets
    /// (upper bound `base^(i+1)`), `+Inf` = count; plus `_sum` and `_count`.
    fn exponential(
        &mut self,
        metric: &Metric,
        names: &Names,
        p: &'s ExponentialHistogramDataPoint,
    ) -> Result<(), DecodeError> {
        let point = self.point(metric, p.time_unix_nano, p.flags, &p.attributes)?;
        if !(-10..=20).contains(&p.scale) {
            return Err(invalid(
                &metric.name,
                &format!(
                    "exponential histogram scale {} is outside -10..=20",
                    p.scale
                ),
            ));
        }
        // base^i = 2^(i * 2^-scale)
        let bound = |i: i64| (i as f64 * (-f64::from(p.scale)).exp2()).exp2();
        let negative = p.negative.iter().flat_map(|neg| {
            let counts = neg.bucket_counts.iter().enumerate().rev();
            counts.map(move |(k, c)| (-bound(i64::from(neg.offset) + k as i64), *c))
        });
        let positive = p.positive.iter().flat_map(|pos| {
            let counts = pos.bucket_counts.iter().enumerate();
            counts.map(move |(k, c)| (bound(i64::from(pos.offset) + k as i64 + 1), *c))
        });
        let bounds = negative
            .chain(std::iter::once((p.zero_threshold, p.zero_count)))
            .chain(positive);
        self.buckets(names, &point, bounds, p.count, p.sum);
        Ok(())
    }

    fn summary(
        &mut self,
        metric: &Metric,
        names: &Names,
        p: &'s SummaryDataPoint,
    ) -> Result<(), DecodeError> {
        let point = self.point(metric, p.time_unix_nano, p.flags, &p.attributes)?;
        let quantiles = p
            .quantile_values
            .iter()
            .map(|q| (q.quantile, point.value(q.value)));
        self.with_label("quantile", &names.name, point.ts, quantiles);
        self.sum_count(names, &point, Some(p.sum), p.count);
        Ok(())
    }

    /// Cumulative `le` buckets from `(upper bound, count)` pairs, `+Inf` = `count`, then
    /// `_sum` (when recorded) and `_count`.
    fn buckets(
        &mut self,
        names: &Names,
        point: &Point,
        bounds: impl Iterator<Item = (f64, u64)>,
        count: u64,
        sum: Option<f64>,
    ) {
        let mut cumulative: u64 = 0;
        let rows = bounds
            .map(|(le, c)| {
                cumulative = cumulative.saturating_add(c);
                (le, point.value(cumulative as f64))
            })
            .chain(std::iter::once((f64::INFINITY, point.value(count as f64))));
        self.with_label("le", &names.bucket, point.ts, rows);
        self.sum_count(names, point, sum, count);
    }

    /// `_sum` (when given) and `_count` with the point's labels.
    fn sum_count(&mut self, names: &Names, point: &Point, sum: Option<f64>, count: u64) {
        self.sink.labels(&self.labels);
        if let Some(sum) = sum {
            self.emit(&names.sum, point.ts, point.value(sum));
        }
        self.emit(&names.count, point.ts, point.value(count as f64));
    }

    /// One sample of `metric` per `(bound, value)`, each with the point's labels plus
    /// `name = bound` (replacing a label of that name); the point's labels are then restored.
    fn with_label(
        &mut self,
        name: &'static str,
        metric: &str,
        ts: i64,
        rows: impl Iterator<Item = (f64, f64)>,
    ) {
        let (i, replaced) = match self.labels.binary_search_by(|(n, _)| n.as_ref().cmp(name)) {
            Ok(i) => (i, Some(std::mem::take(&mut self.labels[i].1))),
            Err(i) => {
                self.labels
                    .insert(i, (name.into(), Cow::Owned(String::new())));
                (i, None)
            }
        };
        for (bound, value) in rows {
            let mut text = std::mem::take(&mut self.labels[i].1).into_owned();
            text.clear();
            push_bound(&mut text, bound);
            self.labels[i].1 = Cow::Owned(text);
            self.sink.labels(&self.labels);
            self.emit(metric, ts, value);
        }
        match replaced {
            Some(value) => self.labels[i].1 = value,
            None => {
                self.labels.remove(i);
            }
        }
    }

    /// Checks a histogram or summary point's time and sets its labels.
    fn point(
        &mut self,
        metric: &Metric,
        time_unix_nano: u64,
        flags: u32,
        attrs: &'s [KeyValue],
    ) -> Result<Point, DecodeError> {
        let ts = timestamp(&metric.name, time_unix_nano)?;
        self.point_labels(attrs);
        Ok(Point {
            ts,
            stale: flags & FLAG_NO_RECORDED_VALUE != 0,
        })
    }

    /// Final label set of a point: base + point attributes, later entries winning on equal
    /// names, empty values and `__name__` dropped, sorted by name.
    fn point_labels(&mut self, attrs: &'s [KeyValue]) {
        self.start_labels();
        push_attributes(&mut self.labels, attrs.iter());
        self.settle_labels();
    }

    /// Starts a point's label set: the scope's `base`; its attributes are pushed next.
    fn start_labels(&mut self) {
        let labels = &mut self.labels;
        labels.clear();
        let base = self.base.iter();
        labels.extend(base.map(|(n, v)| (Cow::Borrowed(n.as_ref()), Cow::Borrowed(v.as_ref()))));
    }

    /// Settles the label set pushed since [`Mapper::start_labels`]: later entries win on
    /// equal names, empty values and `__name__` are dropped, sorted by name.
    fn settle_labels(&mut self) {
        let labels = &mut self.labels;
        // Stable sort keeps push order within a name: the last one is the winner.
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        labels.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        labels.retain(|(n, v)| !v.is_empty() && !n.is_empty() && n != "__name__");
    }

    fn emit(&mut self, metric: &str, ts: i64, value: f64) {
        self.sink.sample(metric, ts, value);
        self.n += 1;
    }
}

/// A point's time in ms: `time_unix_nano` floored; 0 (unset) is an error.
fn timestamp(metric: &str, ns: u64) -> Result<i64, DecodeError> {
    if ns == 0 {
        return Err(invalid(metric, "data point has no time_unix_nano"));
    }
    // u64 ns / 1e6 is below 2^45: always fits an i64.
    Ok(i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX))
}

/// Appends a bucket bound or quantile as Prometheus writes it: the shortest decimal that
/// round-trips (`0.005`, `10`, `2.5`; never an exponent), `+Inf`/`-Inf`/`NaN` for non-finite
/// values.
fn push_bound(out: &mut String, b: f64) {
    use std::fmt::Write as _;
    if b == f64::INFINITY {
        out.push_str("+Inf");
    } else if b == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b}");
    }
}

fn invalid(metric: &str, reason: &str) -> DecodeError {
    DecodeError::InvalidMetric {
        metric: metric.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::messages::*;
    use super::*;

    const JSON: &str = r#"{
      "resourceMetrics": [{
        "resource": {"attributes": [
          {"key": "service.name", "value": {"stringValue": "shop"}},
          {"key": "host.cores", "value": {"intValue": "8"}},
          {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"boolValue": true}]}}},
          {"key": "route", "value": {"stringValue": "from-resource"}}
        ]},
        "scopeMetrics": [{
          "scope": {"name": "lib", "version": "1.2"},
          "metrics": [
            {"name": "queue.depth", "gauge": {"dataPoints": [
              {"timeUnixNano": "1700000000123456789", "asInt": "42",
               "attributes": [{"key": "route", "value": {"stringValue": "/a"}}]}]}},
            {"name": "http.requests", "sum": {"aggregationTemporality": 2, "isMonotonic": true,
              "dataPoints": [{"timeUnixNano": 1700000000000000000, "asDouble": 7.5}]}},
            {"name": "latency", "histogram": {"aggregationTemporality": 2, "dataPoints": [
              {"timeUnixNano": "1700000000000000000", "count": "6", "sum": 12.5,
               "bucketCounts": ["1", "2", "3"], "explicitBounds": [0.5, 2.5]}]}},
            {"name": "rpc", "summary": {"dataPoints": [
              {"timeUnixNano": "1700000000000000000", "count": "4", "sum": "NaN",
               "quantileValues": [{"quantile": 0.5, "value": 1}, {"quantile": 0.99, "value": 3}]}]}},
            {"name": "exp", "exponentialHistogram": {"dataPoints": [{"timeUnixNano": "1000000",
              "count": "6", "sum": 1.5, "scale": 1, "zeroCount": "1", "zeroThreshold": 0,
              "positive": {"offset": -1, "bucketCounts": ["2", "0", "1"]},
              "negative": {"offset": 0, "bucketCounts": ["2"]}}]}}
          ]
        }]
      }]
    }"#;

    fn names(samples: &[Sample]) -> Vec<&str> {
        samples.iter().map(|s| s.metric.as_str()).collect()
    }

    fn label<'a>(s: &'a Sample, name: &str) -> Option<&'a str> {
        s.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn json_maps_every_kind() {
        let got = decode_json(JSON.as_bytes()).expect("decodes");
        assert_eq!(
            names(&got),
            [
                "queue_depth",
                "http_requests",
                "latency_bucket",
                "latency_bucket",
                "latency_bucket",
                "latency_sum",
                "latency_count",
                "rpc",
                "rpc",
                "rpc_sum",
                "rpc_count",
                "exp_bucket",
                "exp_bucket",
                "exp_bucket",
                "exp_bucket",
                "exp_bucket",
                "exp_bucket",
                "exp_sum",
                "exp_count"
            ]
        );
        // scale 1: base = sqrt(2). negative bucket 0 covers [-sqrt 2, -1): le = -1; zero
        // bucket le = 0; positive buckets -1, 0, 1 end at 1, sqrt 2, 2.
        let exp: Vec<_> = got[11..17]
            .iter()
            .map(|s| (label(s, "le").unwrap_or_default(), s.value))
            .collect();
        assert_eq!(
            exp,
            [
                ("-1", 2.0),
                ("0", 3.0),
                ("1", 5.0),
                ("1.4142135623730951", 5.0),
                ("2", 6.0),
                ("+Inf", 6.0)
            ]
        );
        assert_eq!((got[17].value, got[18].value), (1.5, 6.0));
        let gauge = &got[0];
        assert_eq!((gauge.value, gauge.timestamp_ms), (42.0, 1_700_000_000_123));
        assert_eq!(label(gauge, "route"), Some("/a"), "point attributes win");
        assert_eq!(label(gauge, "service_name"), Some("shop"));
        assert_eq!(label(gauge, "host_cores"), Some("8"));
        assert_eq!(label(gauge, "tags"), Some(r#"["a",true]"#));
        assert_eq!(label(gauge, "otel_scope_name"), Some("lib"));
        assert_eq!(label(gauge, "otel_scope_version"), Some("1.2"));
        assert_eq!(label(&got[1], "route"), Some("from-resource"));
        let buckets: Vec<_> = got[2..5]
            .iter()
            .map(|s| (label(s, "le"), s.value))
            .collect();
        assert_eq!(
            buckets,
            [(Some("0.5"), 1.0), (Some("2.5"), 3.0), (Some("+Inf"), 6.0)]
        );
        assert_eq!((got[5].value, got[6].value), (12.5, 6.0));
        assert_eq!(label(&got[7], "quantile"), Some("0.5"));
        assert_eq!(got[8].value, 3.0);
        assert!(got[9].value.is_nan());
        for s in &got {
            assert!(s.labels.windows(2).all(|w| w[0].0 < w[1].0), "{s:?}");
        }
    }

    /// A [`SampleVec`] that counts the label sets it is handed.
    #[derive(Default)]
    struct Recorder {
        label_sets: usize,
        rows: SampleVec,
    }

    impl SampleSink for Recorder {
        fn labels<N: AsRef<str>, V: AsRef<str>>(&mut self, labels: &[(N, V)]) {
            self.label_sets += 1;
            self.rows.labels(labels);
        }

        fn sample(&mut self, metric: &str, timestamp_ms: i64, value: f64) {
            self.rows.sample(metric, timestamp_ms, value);
        }
    }

    /// One metric of each kind, with two points whose attributes clash with the resource's,
    /// carry an empty value, `__name__`, and (histograms) an `le` of their own.
    const KINDS: [(&str, &str); 5] = [
        (
            "gauge",
            r#"{"name": "g", "gauge": {"dataPoints": [
            {"timeUnixNano": "1000000", "asInt": "3", "attributes": [ATTRS]},
            {"timeUnixNano": "2000000", "asDouble": 4.5, "flags": 1}]}}"#,
        ),
        (
            "sum",
            r#"{"name": "s.total", "sum": {"aggregationTemporality": 2, "dataPoints": [
            {"timeUnixNano": "1000000", "asDouble": 7, "attributes": [ATTRS]},
            {"timeUnixNano": "2000000", "asInt": "8"}]}}"#,
        ),
        (
            "histogram",
            r#"{"name": "h", "histogram": {"dataPoints": [
            {"timeUnixNano": "1000000", "count": "6", "sum": 2.5, "attributes": [ATTRS],
             "bucketCounts": ["1", "2", "3"], "explicitBounds": [0.005, 1e21]},
            {"timeUnixNano": "2000000", "count": "1", "flags": 1}]}}"#,
        ),
        (
            "summary",
            r#"{"name": "q", "summary": {"dataPoints": [
            {"timeUnixNano": "1000000", "count": "4", "sum": 9, "attributes": [ATTRS],
             "quantileValues": [{"quantile": 0.5, "value": 1}, {"quantile": 1, "value": 3}]},
            {"timeUnixNano": "2000000", "count": "2", "sum": "Infinity"}]}}"#,
        ),
        (
            "exponential histogram",
            r#"{"name": "e", "exponentialHistogram": {"dataPoints": [
            {"timeUnixNano": "1000000", "count": "5", "sum": 1, "scale": -1, "zeroCount": "1",
             "zeroThreshold": 0.001, "attributes": [ATTRS],
             "positive": {"offset": 1, "bucketCounts": ["1", "1"]},
             "negative": {"offset": -2, "bucketCounts": ["1", "0", "1"]}},
            {"timeUnixNano": "2000000", "count": "0", "scale": 20}]}}"#,
        ),
    ];

    const ATTRS: &str = r#"{"key": "route", "value": {"stringValue": "/p"}},
        {"key": "host", "value": {"stringValue": ""}},
        {"key": "__name__", "value": {"stringValue": "x"}},
        {"key": "le", "value": {"stringValue": "own"}},
        {"key": "9.id", "value": {"intValue": 9}}"#;

    fn kind_body(metric: &str) -> String {
        let metric = metric.replace("ATTRS", ATTRS);
        format!(
            r#"{{"resourceMetrics": [{{"resource": {{"attributes": [
                {{"key": "route", "value": {{"stringValue": "res"}}}},
                {{"key": "host", "value": {{"stringValue": "h1"}}}}]}},
              "scopeMetrics": [{{"scope": {{"name": "lib"}}, "metrics": [{metric}]}}]}}]}}"#
        )
    }

    fn same_rows(a: &[Sample], b: &[Sample]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(a, b)| {
                (&a.metric, &a.labels, a.timestamp_ms, a.value.to_bits())
                    == (&b.metric, &b.labels, b.timestamp_ms, b.value.to_bits())
            })
    }

    #[test]
    fn sink_and_owned_paths_give_the_same_rows_for_every_kind() {
        // Label sets per kind: a gauge/sum point's once; a histogram point's once per bucket
        // (`le`) plus once for `_sum`/`_count`; a summary's once per quantile plus once.
        let want_sets = [2, 2, 3 + 1 + 1 + 1, 2 + 1 + 1, 7 + 1 + 2 + 1];
        for ((kind, metric), want_sets) in KINDS.iter().zip(want_sets) {
            let json = kind_body(metric);
            let request: ExportMetricsServiceRequest = serde_json::from_str(&json).expect("parses");
            let pb = prost::Message::encode_to_vec(&request);
            let opts = OtlpOptions::default();
            let owned_json = decode_json(json.as_bytes()).expect("decodes");
            let owned_pb = decode_protobuf(&pb).expect("decodes");
            assert!(same_rows(&owned_json, &owned_pb), "{kind}");
            let mut from_json = Recorder::default();
            let n =
                decode_to(Encoding::Json, json.as_bytes(), &opts, &mut from_json).expect("decodes");
            assert_eq!(n, owned_json.len(), "{kind}");
            let mut from_pb = Recorder::default();
            let n = decode_to(Encoding::Protobuf, &pb, &opts, &mut from_pb).expect("decodes");
            assert_eq!(n, owned_pb.len(), "{kind}");
            for sink in [&from_json, &from_pb] {
                assert!(same_rows(&sink.rows.samples, &owned_json), "{kind}");
                assert_eq!(sink.label_sets, want_sets, "{kind}");
            }
            let first = &owned_json[0];
            let names: Vec<&str> = first.labels.iter().map(|(n, _)| n.as_str()).collect();
            let extra = match *kind {
                "summary" => vec!["quantile"],
                _ => vec![],
            };
            let mut want: Vec<&str> = vec!["_9_id", "le", "otel_scope_name", "route"];
            want.extend(extra);
            want.sort_unstable();
            assert_eq!(names, want, "{kind}: empty host and __name__ dropped");
            assert_eq!(label(first, "route"), Some("/p"), "{kind}: the point wins");
            for s in &owned_json {
                assert!(
                    s.labels.windows(2).all(|w| w[0].0 < w[1].0),
                    "{kind}: {s:?}"
                );
            }
        }
    }

    #[test]
    fn bucket_and_quantile_labels_replace_the_points_own() {
        let rows = |i: usize| decode_json(kind_body(KINDS[i].1).as_bytes()).expect("decodes");
        let le = |s: &Sample| label(s, "le").map(str::to_owned);
        let histogram: Vec<_> = rows(2).iter().map(|s| (s.metric.clone(), le(s))).collect();
        let own = Some("own".to_owned());
        let inf = Some("+Inf".to_owned());
        assert_eq!(
            histogram,
            [
                ("h_bucket".into(), Some("0.005".into())),
                ("h_bucket".into(), Some("1000000000000000000000".into())),
                ("h_bucket".into(), inf.clone()),
                ("h_sum".into(), own.clone()),
                ("h_count".into(), own),
                ("h_bucket".into(), inf),
                ("h_count".into(), None),
            ]
        );
        let summary = rows(3);
        let quantiles: Vec<_> = summary.iter().map(|s| label(s, "quantile")).collect();
        assert_eq!(quantiles, [Some("0.5"), Some("1"), None, None, None, None]);
        assert_eq!(summary[4].value, f64::INFINITY, "second point's _sum");
        // scale -1: base 4; negative buckets -2..=0 end at -1/16, -1/4 (empty), -1.
        let exp = rows(4);
        let les: Vec<_> = exp
            .iter()
            .take(8)
            .map(|s| (label(s, "le"), s.value))
            .collect();
        assert_eq!(
            les,
            [
                (Some("-1"), 1.0),
                (Some("-0.25"), 1.0),
                (Some("-0.0625"), 2.0),
                (Some("0.001"), 3.0),
                (Some("16"), 4.0),
                (Some("64"), 5.0),
                (Some("+Inf"), 5.0),
                (Some("own"), 1.0),
            ]
        );
        assert_eq!(exp[8].metric, "e_count");
    }

    #[test]
    fn protobuf_and_json_agree() {
        let json: ExportMetricsServiceRequest = serde_json::from_str(JSON).expect("parses");
        let bytes = prost::Message::encode_to_vec(&json);
        let from_pb = decode_protobuf(&bytes).expect("decodes");
        let from_json = decode_json(JSON.as_bytes()).expect("decodes");
        assert_eq!(from_pb.len(), from_json.len());
        for (a, b) in from_pb.iter().zip(&from_json) {
            assert_eq!(
                (&a.metric, &a.labels, a.timestamp_ms),
                (&b.metric, &b.labels, b.timestamp_ms)
            );
            assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
    }

    #[test]
    fn snake_case_json_names_are_accepted() {
        let body = r#"{"resource_metrics":[{"scope_metrics":[{"metrics":[{"name":"g",
            "gauge":{"data_points":[{"time_unix_nano":"5000000","as_double":1.5}]}}]}]}]}"#;
        let got = decode_json(body.as_bytes()).expect("decodes");
        assert_eq!((got[0].timestamp_ms, got[0].value), (5, 1.5));
    }

    #[test]
    fn inconsistent_histogram_names_the_metric() {
        let body = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"my.histogram",
            "histogram":{"dataPoints":[{"timeUnixNano":"1","count":"3",
            "bucketCounts":[1,1,1],"explicitBounds":[1]}]}}]}]}]}"#;
        let err = decode_json(body.as_bytes()).expect_err("3 counts for 1 bound");
        let msg = err.to_string();
        assert!(
            msg.contains("my.histogram") && msg.contains("3 bucket_counts"),
            "{msg}"
        );
    }

    #[test]
    fn missing_time_and_bad_json_are_errors() {
        let body = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g",
            "gauge":{"dataPoints":[{"asDouble":1}]}}]}]}]}"#;
        let err = decode_json(body.as_bytes()).expect_err("no time");
        assert!(err.to_string().contains("time_unix_nano"), "{err}");
        let err = decode_json(br#"{"resourceMetrics": [{"scopeMetrics": 5}]}"#).expect_err("bad");
        assert!(matches!(err, DecodeError::Json { .. }), "{err}");
        assert!(err.to_string().contains("column"), "{err}");
        let err = decode_protobuf(b"\xff\xff").expect_err("bad");
        assert!(
            matches!(err, DecodeError::Malformed { offset: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn no_recorded_value_is_a_stale_marker() {
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: None,
                scope_metrics: vec![ScopeMetrics {
                    scope: None,
                    metrics: vec![Metric {
                        name: "up".into(),
                        gauge: Some(Gauge {
                            data_points: vec![NumberDataPoint {
                                time_unix_nano: 2_000_000,
                                as_double: Some(1.0),
                                flags: 1,
                                ..NumberDataPoint::default()
                            }],
                            ..Gauge::default()
                        }),
                        ..Metric::default()
                    }],
                }],
            }],
        };
        let got = decode_protobuf(&prost::Message::encode_to_vec(&request)).expect("decodes");
        assert_eq!(got[0].value.to_bits(), STALE_NAN);
        assert!(got[0].labels.is_empty(), "no scope: no otel_scope_* labels");
    }
}
