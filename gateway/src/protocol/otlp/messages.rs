//! OTLP metrics messages (opentelemetry-proto v1), hand-derived for prost and serde.
//!
//! Only the fields the samples schema needs are declared; prost skips unknown fields and serde
//! ignores unknown keys, so exemplars, start times, min/max, schema URLs, metadata and
//! bytes-valued attributes are dropped. `oneof` members are declared as separate optional
//! fields: the wire format is the same, and the JSON keys (`gauge`, `asDouble`, ...) map 1:1.
//! JSON field names are lowerCamelCase, with the proto (snake_case) names accepted as aliases.

use serde::Deserialize;

use super::json;

/// `opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExportMetricsServiceRequest {
    /// Metrics grouped by resource.
    #[prost(message, repeated, tag = "1")]
    #[serde(alias = "resource_metrics", deserialize_with = "json::nd")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

/// `ResourceMetrics`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceMetrics {
    /// The resource (its attributes become labels).
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// Metrics grouped by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    #[serde(alias = "scope_metrics", deserialize_with = "json::nd")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

/// `Resource`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Resource {
    /// Attributes such as `service.name`.
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::nd")]
    pub attributes: Vec<KeyValue>,
}

/// `ScopeMetrics`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeMetrics {
    /// The instrumentation scope.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    #[serde(deserialize_with = "json::nd")]
    pub metrics: Vec<Metric>,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstrumentationScope {
    /// Scope name (e.g. the instrumenting library).
    #[prost(string, tag = "1")]
    #[serde(deserialize_with = "json::nd")]
    pub name: String,
    /// Scope version.
    #[prost(string, tag = "2")]
    #[serde(deserialize_with = "json::nd")]
    pub version: String,
    /// Scope attributes.
    #[prost(message, repeated, tag = "3")]
    #[serde(deserialize_with = "json::nd")]
    pub attributes: Vec<KeyValue>,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KeyValue {
    /// Attribute key.
    #[prost(string, tag = "1")]
    #[serde(deserialize_with = "json::nd")]
    pub key: String,
    /// Attribute value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AnyValue` (a `oneof`; bytes values are not declared and so dropped).
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AnyValue {
    /// `string_value`.
    #[prost(string, optional, tag = "1")]
    #[serde(alias = "string_value")]
    pub string_value: Option<String>,
    /// `bool_value`.
    #[prost(bool, optional, tag = "2")]
    #[serde(alias = "bool_value")]
    pub bool_value: Option<bool>,
    /// `int_value`.
    #[prost(int64, optional, tag = "3")]
    #[serde(alias = "int_value", deserialize_with = "json::opt_i64")]
    pub int_value: Option<i64>,
    /// `double_value`.
    #[prost(double, optional, tag = "4")]
    #[serde(alias = "double_value", deserialize_with = "json::opt_f64")]
    pub double_value: Option<f64>,
    /// `array_value`.
    #[prost(message, optional, tag = "5")]
    #[serde(alias = "array_value")]
    pub array_value: Option<ArrayValue>,
    /// `kvlist_value`.
    #[prost(message, optional, tag = "6")]
    #[serde(alias = "kvlist_value")]
    pub kvlist_value: Option<KeyValueList>,
}

/// `ArrayValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub struct ArrayValue {
    /// Elements.
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::nd")]
    pub values: Vec<AnyValue>,
}

/// `KeyValueList`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub struct KeyValueList {
    /// Entries.
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::nd")]
    pub values: Vec<KeyValue>,
}

/// `Metric` (the `data` oneof as separate optional fields).
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metric {
    /// Metric name.
    #[prost(string, tag = "1")]
    #[serde(deserialize_with = "json::nd")]
    pub name: String,
    /// Unit (not mapped).
    #[prost(string, tag = "3")]
    #[serde(deserialize_with = "json::nd")]
    pub unit: String,
    /// Gauge data.
    #[prost(message, optional, tag = "5")]
    pub gauge: Option<Gauge>,
    /// Sum data.
    #[prost(message, optional, tag = "7")]
    pub sum: Option<Sum>,
    /// Explicit-bucket histogram data.
    #[prost(message, optional, tag = "9")]
    pub histogram: Option<Histogram>,
    /// Exponential histogram data (mapped onto classic `le` buckets).
    #[prost(message, optional, tag = "10")]
    #[serde(alias = "exponential_histogram")]
    pub exponential_histogram: Option<ExponentialHistogram>,
    /// Summary data.
    #[prost(message, optional, tag = "11")]
    pub summary: Option<Summary>,
}

/// `ExponentialHistogramDataPoint`: bucket `i` of a range covers `(base^i, base^(i+1)]`,
/// `base = 2^(2^-scale)`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExponentialHistogramDataPoint {
    /// Point attributes (labels).
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::nd")]
    pub attributes: Vec<KeyValue>,
    /// Sample time, ns since the epoch.
    #[prost(fixed64, tag = "3")]
    #[serde(alias = "time_unix_nano", deserialize_with = "json::u64_")]
    pub time_unix_nano: u64,
    /// Number of observations.
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::u64_")]
    pub count: u64,
    /// Sum of observations, when recorded.
    #[prost(double, optional, tag = "5")]
    #[serde(deserialize_with = "json::opt_f64")]
    pub sum: Option<f64>,
    /// Resolution: `base = 2^(2^-scale)`.
    #[prost(sint32, tag = "6")]
    #[serde(deserialize_with = "json::nd")]
    pub scale: i32,
    /// Observations in the zero bucket `[-zero_threshold, zero_threshold]`.
    #[prost(fixed64, tag = "7")]
    #[serde(alias = "zero_count", deserialize_with = "json::u64_")]
    pub zero_count: u64,
    /// Buckets of positive values.
    #[prost(message, optional, tag = "8")]
    pub positive: Option<Buckets>,
    /// Buckets of negative values (by absolute value).
    #[prost(message, optional, tag = "9")]
    pub negative: Option<Buckets>,
    /// Bit 0: no recorded value.
    #[prost(uint32, tag = "10")]
    #[serde(deserialize_with = "json::nd")]
    pub flags: u32,
    /// Width of the zero bucket.
    #[prost(double, tag = "14")]
    #[serde(alias = "zero_threshold", deserialize_with = "json::f64_")]
    pub zero_threshold: f64,
}

/// `ExponentialHistogramDataPoint.Buckets`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Buckets {
    /// Index of the first bucket.
    #[prost(sint32, tag = "1")]
    #[serde(deserialize_with = "json::nd")]
    pub offset: i32,
    /// Counts of consecutive buckets from `offset` (not cumulative).
    #[prost(uint64, repeated, tag = "2")]
    #[serde(alias = "bucket_counts", deserialize_with = "json::vec_u64")]
    pub bucket_counts: Vec<u64>,
}

/// The points of one metric: `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram` and
/// `Summary` are all `data_points` (tag 1) plus, for all but gauges and summaries,
/// `aggregation_temporality` (tag 2; 0 where absent). `Sum.is_monotonic` is not mapped and so
/// not declared.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(
    default,
    rename_all = "camelCase",
    bound(deserialize = "P: Deserialize<'de>")
)]
pub struct Points<P>
where
    P: prost::Message + Default,
{
    /// Points.
    #[prost(message, repeated, tag = "1")]
    #[serde(alias = "data_points", deserialize_with = "json::nd")]
    pub data_points: Vec<P>,
    /// 1 = delta, 2 = cumulative.
    #[prost(int32, tag = "2")]
    #[serde(
        alias = "aggregation_temporality",
        deserialize_with = "json::temporality"
    )]
    pub aggregation_temporality: i32,
}

/// `Gauge`.
pub type Gauge = Points<NumberDataPoint>;
/// `Sum`.
pub type Sum = Points<NumberDataPoint>;
/// `Histogram`.
pub type Histogram = Points<HistogramDataPoint>;
/// `ExponentialHistogram`.
pub type ExponentialHistogram = Points<ExponentialHistogramDataPoint>;
/// `Summary`.
pub type Summary = Points<SummaryDataPoint>;

/// `NumberDataPoint`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NumberDataPoint {
    /// Point attributes (labels).
    #[prost(message, repeated, tag = "7")]
    #[serde(deserialize_with = "json::nd")]
    pub attributes: Vec<KeyValue>,
    /// Sample time, ns since the epoch.
    #[prost(fixed64, tag = "3")]
    #[serde(alias = "time_unix_nano", deserialize_with = "json::u64_")]
    pub time_unix_nano: u64,
    /// `as_double`.
    #[prost(double, optional, tag = "4")]
    #[serde(alias = "as_double", deserialize_with = "json::opt_f64")]
    pub as_double: Option<f64>,
    /// `as_int`.
    #[prost(sfixed64, optional, tag = "6")]
    #[serde(alias = "as_int", deserialize_with = "json::opt_i64")]
    pub as_int: Option<i64>,
    /// Bit 0: no recorded value.
    #[prost(uint32, tag = "8")]
    #[serde(deserialize_with = "json::nd")]
    pub flags: u32,
}

/// `HistogramDataPoint`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HistogramDataPoint {
    /// Point attributes (labels).
    #[prost(message, repeated, tag = "9")]
    #[serde(deserialize_with = "json::nd")]
    pub attributes: Vec<KeyValue>,
    /// Sample time, ns since the epoch.
    #[prost(fixed64, tag = "3")]
    #[serde(alias = "time_unix_nano", deserialize_with = "json::u64_")]
    pub time_unix_nano: u64,
    /// Number of observations.
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::u64_")]
    pub count: u64,
    /// Sum of observations, when recorded.
    #[prost(double, optional, tag = "5")]
    #[serde(deserialize_with = "json::opt_f64")]
    pub sum: Option<f64>,
    /// Per-bucket counts (not cumulative); one more than `explicit_bounds`, or none.
    #[prost(fixed64, repeated, tag = "6")]
    #[serde(alias = "bucket_counts", deserialize_with = "json::vec_u64")]
    pub bucket_counts: Vec<u64>,
    /// Upper bounds of the buckets but the last (+Inf).
    #[prost(double, repeated, tag = "7")]
    #[serde(alias = "explicit_bounds", deserialize_with = "json::vec_f64")]
    pub explicit_bounds: Vec<f64>,
    /// Bit 0: no recorded value.
    #[prost(uint32, tag = "10")]
    #[serde(deserialize_with = "json::nd")]
    pub flags: u32,
}

/// `SummaryDataPoint`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SummaryDataPoint {
    /// Point attributes (labels).
    #[prost(message, repeated, tag = "7")]
    #[serde(deserialize_with = "json::nd")]
    pub attributes: Vec<KeyValue>,
    /// Sample time, ns since the epoch.
    #[prost(fixed64, tag = "3")]
    #[serde(alias = "time_unix_nano", deserialize_with = "json::u64_")]
    pub time_unix_nano: u64,
    /// Number of observations.
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::u64_")]
    pub count: u64,
    /// Sum of observations.
    #[prost(double, tag = "5")]
    #[serde(deserialize_with = "json::f64_")]
    pub sum: f64,
    /// Quantiles.
    #[prost(message, repeated, tag = "6")]
    #[serde(alias = "quantile_values", deserialize_with = "json::nd")]
    pub quantile_values: Vec<ValueAtQuantile>,
    /// Bit 0: no recorded value.
    #[prost(uint32, tag = "8")]
    #[serde(deserialize_with = "json::nd")]
    pub flags: u32,
}

/// `SummaryDataPoint.ValueAtQuantile`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub struct ValueAtQuantile {
    /// Quantile in [0, 1].
    #[prost(double, tag = "1")]
    #[serde(deserialize_with = "json::f64_")]
    pub quantile: f64,
    /// Value at that quantile.
    #[prost(double, tag = "2")]
    #[serde(deserialize_with = "json::f64_")]
    pub value: f64,
}
