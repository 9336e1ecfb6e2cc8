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

mod json;
pub mod messages;

use messages::{
    ExponentialHistogramDataPoint, ExportMetricsServiceRequest, HistogramDataPoint, KeyValue,
    Metric, NumberDataPoint, SummaryDataPoint,
};

use super::{sanitize_name, DecodeError, Sample};

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

/// Decodes a protobuf `ExportMetricsServiceRequest` (`Content-Type: application/x-protobuf`).
///
/// # Errors
/// [`DecodeError::Protobuf`] for bytes that are not the message, [`DecodeError::InvalidMetric`]
/// naming the metric whose points are inconsistent.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<Sample>, DecodeError> {
    decode_protobuf_with(body, &OtlpOptions::default())
}

/// [`decode_protobuf`] with explicit options.
///
/// # Errors
/// As [`decode_protobuf`].
pub fn decode_protobuf_with(body: &[u8], opts: &OtlpOptions) -> Result<Vec<Sample>, DecodeError> {
    let request: ExportMetricsServiceRequest =
        prost::Message::decode(body).map_err(|source| DecodeError::Protobuf {
            message: "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
            source,
        })?;
    to_samples(&request, opts)
}

/// Decodes an OTLP JSON `ExportMetricsServiceRequest` (`Content-Type: application/json`).
///
/// # Errors
/// [`DecodeError::Json`] (with line and column) for malformed JSON or a field of the wrong
/// type, [`DecodeError::InvalidMetric`] as for protobuf.
pub fn decode_json(body: &[u8]) -> Result<Vec<Sample>, DecodeError> {
    decode_json_with(body, &OtlpOptions::default())
}

/// [`decode_json`] with explicit options.
///
/// # Errors
/// As [`decode_json`].
pub fn decode_json_with(body: &[u8], opts: &OtlpOptions) -> Result<Vec<Sample>, DecodeError> {
    let request: ExportMetricsServiceRequest =
        serde_json::from_slice(body).map_err(|source| DecodeError::Json { source })?;
    to_samples(&request, opts)
}

/// Maps a decoded request onto samples, in request order.
///
/// # Errors
/// [`DecodeError::InvalidMetric`] for an empty metric name, a point without time, or histogram
/// bucket counts that do not match the bounds.
pub fn to_samples(
    request: &ExportMetricsServiceRequest,
    opts: &OtlpOptions,
) -> Result<Vec<Sample>, DecodeError> {
    let mut out = Vec::new();
    for rm in &request.resource_metrics {
        let mut base = Vec::new();
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
                scope_base.push(("otel_scope_name".to_owned(), scope.name.clone()));
                scope_base.push(("otel_scope_version".to_owned(), scope.version.clone()));
                push_attributes(&mut scope_base, scope.attributes.iter());
            }
            for metric in &sm.metrics {
                map_metric(metric, &scope_base, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// Appends `(sanitized key, rendered value)` for each attribute.
fn push_attributes<'a>(out: &mut Vec<(String, String)>, attrs: impl Iterator<Item = &'a KeyValue>) {
    for kv in attrs {
        out.push((sanitize_name(&kv.key), render(kv.value.as_ref())));
    }
}

/// An attribute value as label text: strings as-is, bools `true`/`false`, numbers in decimal,
/// arrays and maps as JSON.
fn render(value: Option<&messages::AnyValue>) -> String {
    let Some(v) = value else {
        return String::new();
    };
    if let Some(s) = &v.string_value {
        return s.clone();
    }
    match to_json(v) {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
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

/// Final label set of a point: base + point attributes, later entries winning on equal names,
/// empty values and `__name__` dropped, sorted by name.
fn point_labels(base: &[(String, String)], attrs: &[KeyValue]) -> Vec<(String, String)> {
    let mut all = base.to_vec();
    push_attributes(&mut all, attrs.iter());
    // Stable sort keeps push order within a name: the last one is the winner.
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, String)> = Vec::with_capacity(all.len());
    for (name, value) in all {
        match out.last_mut() {
            Some(last) if last.0 == name => last.1 = value,
            _ => out.push((name, value)),
        }
    }
    out.retain(|(n, v)| !v.is_empty() && !n.is_empty() && n != "__name__");
    out
}

fn map_metric(
    metric: &Metric,
    base: &[(String, String)],
    out: &mut Vec<Sample>,
) -> Result<(), DecodeError> {
    let name = sanitize_name(&metric.name);
    if name.is_empty() {
        return Err(invalid(metric, "metric has an empty name"));
    }
    let m = Mapper {
        metric,
        name: &name,
        base,
        out,
    };
    m.map()
}

struct Mapper<'a> {
    metric: &'a Metric,
    name: &'a str,
    base: &'a [(String, String)],
    out: &'a mut Vec<Sample>,
}

impl Mapper<'_> {
    fn map(mut self) -> Result<(), DecodeError> {
        let metric = self.metric;
        let numbers = metric.gauge.iter().flat_map(|g| &g.data_points);
        let sums = metric.sum.iter().flat_map(|s| &s.data_points);
        for p in numbers.chain(sums) {
            self.number(p)?;
        }
        for p in metric.histogram.iter().flat_map(|h| &h.data_points) {
            self.histogram(p)?;
        }
        for p in metric.summary.iter().flat_map(|s| &s.data_points) {
            self.summary(p)?;
        }
        let exponential = metric
            .exponential_histogram
            .iter()
            .flat_map(|h| &h.data_points);
        for p in exponential {
            self.exponential(p)?;
        }
        Ok(())
    }

    /// Exponential histogram → classic cumulative `le` buckets: negative buckets (most negative
    /// first, upper bound `-base^i`), the zero bucket (`le = zero_threshold`), positive buckets
    /// (upper bound `base^(i+1)`), `+Inf` = count; plus `_sum` and `_count`.
    fn exponential(&mut self, p: &ExponentialHistogramDataPoint) -> Result<(), DecodeError> {
        let ts = self.timestamp(p.time_unix_nano)?;
        if !(-10..=20).contains(&p.scale) {
            return Err(invalid(
                self.metric,
                &format!(
                    "exponential histogram scale {} is outside -10..=20",
                    p.scale
                ),
            ));
        }
        let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
        let v = |x: f64| if stale { f64::from_bits(STALE_NAN) } else { x };
        let labels = point_labels(self.base, &p.attributes);
        let bucket = format!("{}_bucket", self.name);
        // base^i = 2^(i * 2^-scale)
        let bound = |i: i64| (i as f64 * (-f64::from(p.scale)).exp2()).exp2();
        let mut bounds: Vec<(f64, u64)> = Vec::new();
        if let Some(neg) = &p.negative {
            let counts = neg.bucket_counts.iter().enumerate().rev();
            bounds.extend(counts.map(|(k, c)| (-bound(i64::from(neg.offset) + k as i64), *c)));
        }
        bounds.push((p.zero_threshold, p.zero_count));
        if let Some(pos) = &p.positive {
            let counts = pos.bucket_counts.iter().enumerate();
            bounds.extend(counts.map(|(k, c)| (bound(i64::from(pos.offset) + k as i64 + 1), *c)));
        }
        let mut cumulative: u64 = 0;
        for (le, count) in bounds {
            cumulative = cumulative.saturating_add(count);
            let l = with_label(&labels, "le", format_bound(le));
            self.push(bucket.clone(), l, ts, v(cumulative as f64));
        }
        self.push(
            bucket,
            with_label(&labels, "le", "+Inf".to_owned()),
            ts,
            v(p.count as f64),
        );
        if let Some(sum) = p.sum {
            self.push(format!("{}_sum", self.name), labels.clone(), ts, v(sum));
        }
        self.push(
            format!("{}_count", self.name),
            labels,
            ts,
            v(p.count as f64),
        );
        Ok(())
    }

    fn number(&mut self, p: &NumberDataPoint) -> Result<(), DecodeError> {
        let ts = self.timestamp(p.time_unix_nano)?;
        let value = match (p.as_double, p.as_int) {
            _ if p.flags & FLAG_NO_RECORDED_VALUE != 0 => f64::from_bits(STALE_NAN),
            (Some(d), _) => d,
            (None, Some(i)) => i as f64,
            // A point with no value at all carries nothing to store.
            (None, None) => return Ok(()),
        };
        let labels = point_labels(self.base, &p.attributes);
        self.push(self.name.to_owned(), labels, ts, value);
        Ok(())
    }

    fn histogram(&mut self, p: &HistogramDataPoint) -> Result<(), DecodeError> {
        let ts = self.timestamp(p.time_unix_nano)?;
        if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
            return Err(invalid(
                self.metric,
                &format!(
                    "histogram point has {} bucket_counts for {} explicit_bounds (want bounds + 1)",
                    p.bucket_counts.len(),
                    p.explicit_bounds.len()
                ),
            ));
        }
        let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
        let v = |x: f64| if stale { f64::from_bits(STALE_NAN) } else { x };
        let labels = point_labels(self.base, &p.attributes);
        let bucket = format!("{}_bucket", self.name);
        let mut cumulative: u64 = 0;
        for (count, bound) in p.bucket_counts.iter().zip(&p.explicit_bounds) {
            cumulative = cumulative.saturating_add(*count);
            let le = with_label(&labels, "le", format_bound(*bound));
            self.push(bucket.clone(), le, ts, v(cumulative as f64));
        }
        self.push(
            bucket,
            with_label(&labels, "le", "+Inf".to_owned()),
            ts,
            v(p.count as f64),
        );
        if let Some(sum) = p.sum {
            self.push(format!("{}_sum", self.name), labels.clone(), ts, v(sum));
        }
        self.push(
            format!("{}_count", self.name),
            labels,
            ts,
            v(p.count as f64),
        );
        Ok(())
    }

    fn summary(&mut self, p: &SummaryDataPoint) -> Result<(), DecodeError> {
        let ts = self.timestamp(p.time_unix_nano)?;
        let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
        let v = |x: f64| if stale { f64::from_bits(STALE_NAN) } else { x };
        let labels = point_labels(self.base, &p.attributes);
        for q in &p.quantile_values {
            let ql = with_label(&labels, "quantile", format_bound(q.quantile));
            self.push(self.name.to_owned(), ql, ts, v(q.value));
        }
        self.push(format!("{}_sum", self.name), labels.clone(), ts, v(p.sum));
        self.push(
            format!("{}_count", self.name),
            labels,
            ts,
            v(p.count as f64),
        );
        Ok(())
    }

    fn timestamp(&self, ns: u64) -> Result<i64, DecodeError> {
        if ns == 0 {
            return Err(invalid(self.metric, "data point has no time_unix_nano"));
        }
        // u64 ns / 1e6 is below 2^45: always fits an i64.
        Ok(i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX))
    }

    fn push(&mut self, metric: String, labels: Vec<(String, String)>, ts: i64, value: f64) {
        self.out.push(Sample {
            metric,
            labels,
            timestamp_ms: ts,
            value,
        });
    }
}

/// `labels` plus `name=value`, replacing a label of that name, kept sorted.
fn with_label(labels: &[(String, String)], name: &str, value: String) -> Vec<(String, String)> {
    let mut out = labels.to_vec();
    match out.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => out[i].1 = value,
        Err(i) => out.insert(i, (name.to_owned(), value)),
    }
    out
}

/// A bucket bound or quantile as Prometheus writes it: the shortest decimal that round-trips
/// (`0.005`, `10`, `2.5`; never an exponent), `+Inf`/`-Inf`/`NaN` for non-finite values.
fn format_bound(b: f64) -> String {
    if b == f64::INFINITY {
        "+Inf".to_owned()
    } else if b == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        b.to_string()
    }
}

fn invalid(metric: &Metric, reason: &str) -> DecodeError {
    DecodeError::InvalidMetric {
        metric: metric.name.clone(),
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
        assert!(matches!(err, DecodeError::Protobuf { .. }), "{err}");
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
