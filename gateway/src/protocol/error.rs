//! [`DecodeError`]: why a request body could not be decoded, worded for the client.

/// A request body that cannot be decoded at all. Every message names the part of the body
/// that is wrong (series index, metric, field) so the client can fix it; the HTTP layer
/// answers these with 400 (413 for [`DecodeError::TooLarge`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is not snappy *block* format (remote_write does not use the framed format).
    #[error("body is not snappy block-compressed data (remote_write uses the snappy block format, not framed): {source}")]
    Snappy {
        /// What snap reported.
        #[source]
        source: snap::Error,
    },
    /// The decompressed body would be larger than the allowed limit.
    #[error("decompressed body would be {size} bytes, over the limit of {limit} bytes; send smaller requests")]
    TooLarge {
        /// Decompressed size announced by the body.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not a valid protobuf message of the expected type.
    #[error("body is not a valid protobuf {message}: {source}")]
    Protobuf {
        /// Expected message type, e.g. `prometheus.WriteRequest`.
        message: &'static str,
        /// What prost reported (includes the field path).
        #[source]
        source: prost::DecodeError,
    },
    /// The bytes break the protobuf wire format (read without prost, see `remote_write`).
    #[error(
        "body is not a valid protobuf {message}: {reason} at byte {offset} (after decompression)"
    )]
    Malformed {
        /// Expected message type.
        message: &'static str,
        /// What is wrong.
        reason: &'static str,
        /// Byte offset in the decompressed body.
        offset: usize,
    },
    /// The body is not valid OTLP JSON.
    #[error("body is not a valid OTLP JSON ExportMetricsServiceRequest: {source}")]
    Json {
        /// What serde_json reported (includes line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A remote_write time series without a `__name__` label.
    #[error("time series #{series} (0-based) has no __name__ label")]
    MissingMetricName {
        /// Index of the series in the request.
        series: usize,
    },
    /// A label name that appears twice in one series.
    #[error(
        "time series #{series} (0-based, metric {metric:?}) has label {name:?} more than once"
    )]
    DuplicateLabel {
        /// Index of the series in the request.
        series: usize,
        /// Its metric name.
        metric: String,
        /// The repeated label name.
        name: String,
    },
    /// A label with an empty name.
    #[error("time series #{series} (0-based) has a label with an empty name")]
    EmptyLabelName {
        /// Index of the series in the request.
        series: usize,
    },
    /// An OTLP metric whose content is inconsistent (e.g. bucket counts vs bounds).
    #[error("metric {metric:?}: {reason}")]
    InvalidMetric {
        /// The metric name as sent.
        metric: String,
        /// What is wrong, in words.
        reason: String,
    },
}
