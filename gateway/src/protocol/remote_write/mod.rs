//! Prometheus remote_write 1.0: snappy block-compressed protobuf `prometheus.WriteRequest`.
//!
//! Spec: <https://prometheus.io/docs/concepts/remote_write_spec/>. [`decode`],
//! [`decode_each`] and [`decode_to`] read the wire format directly (`wire.rs`, zero-copy); the prost messages below
//! (only the fields the samples schema stores) serve [`encode`], tests and comparison. Metadata,
//! exemplars and native histograms (field 4 of `TimeSeries`) are skipped: see
//! `gateway/PROTOCOLS.md`.
//!
//! Values are kept bit for bit: a Prometheus stale marker (NaN `0x7ff0000000000002`) and any
//! other NaN reach ClickHouse unchanged, so staleness survives the trip.

mod wire;

use super::{DecodeError, Sample, SampleRef, SampleSink};

/// Largest decompressed body [`decode`] accepts (64 MiB); Prometheus sends at most a few MiB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 << 20;

/// `prometheus.WriteRequest` (remote.proto), the fields we read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series, each with its samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries` (types.proto), the fields we read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels including `__name__`.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PromSample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PromSample {
    /// The value (stale markers are a NaN payload).
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Decodes a remote_write body (snappy block format, at most [`DEFAULT_MAX_DECOMPRESSED`]
/// bytes once decompressed) into samples, one per (series, sample), in request order.
///
/// # Errors
/// [`DecodeError`] naming what is wrong: not snappy, too large, not a `WriteRequest`, a series
/// without `__name__`, a repeated or empty label name.
pub fn decode(body: &[u8]) -> Result<Vec<Sample>, DecodeError> {
    decode_with_limit(body, DEFAULT_MAX_DECOMPRESSED)
}

/// [`decode`] with an explicit limit on the decompressed size, checked before allocating.
///
/// # Errors
/// As [`decode`]; [`DecodeError::TooLarge`] when the body announces more than `limit` bytes.
pub fn decode_with_limit(body: &[u8], limit: usize) -> Result<Vec<Sample>, DecodeError> {
    let raw = decompress(body, limit)?;
    // Prometheus sends one sample per series; the body is ~40 bytes per series.
    let mut out = Vec::with_capacity(raw.len() / 64);
    wire::decode_into(&raw, &mut out)?;
    Ok(out)
}

/// Decodes a remote_write body without building owned samples: `sink` gets each sample with
/// names and values borrowed from the decompressed body (labels sorted, `__name__` and empty
/// values removed), e.g. to append straight to column buffers. Returns the number of samples.
///
/// # Errors
/// As [`decode_with_limit`]. On an error the request is rejected as a whole: discard what
/// `sink` already received.
pub fn decode_each(
    body: &[u8],
    limit: usize,
    mut sink: impl FnMut(&SampleRef<'_>),
) -> Result<usize, DecodeError> {
    let raw = decompress(body, limit)?;
    let mut n = 0;
    wire::decode_each(&raw, |s| {
        n += 1;
        sink(s);
    })?;
    Ok(n)
}

/// Decodes a remote_write body into `sink`: each series' labels once (borrowed from the
/// decompressed body), then its samples. A series whose label bytes the sink
/// [recalls](SampleSink::recall) (Prometheus resends the same series every scrape) skips label
/// decoding and checks. Returns the number of samples.
///
/// # Errors
/// As [`decode_with_limit`]. On an error the request is rejected as a whole: discard what
/// `sink` already received.
pub fn decode_to<S: SampleSink>(
    body: &[u8],
    limit: usize,
    sink: &mut S,
) -> Result<usize, DecodeError> {
    let raw = decompress(body, limit)?;
    wire::decode_to_sink(&raw, sink)
}

/// About how many samples a (snappy) body holds, for reserving room before decoding: one per
/// 64 bytes of its decompressed size (a one-sample series with a few labels takes more), at most
/// 1 Mi.
pub fn samples_hint(body: &[u8]) -> usize {
    (snap::raw::decompress_len(body).unwrap_or(0) / 64).min(1 << 20)
}

/// Snappy block decompression with the size checked against `limit` first.
fn decompress(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let size = snap::raw::decompress_len(body).map_err(|source| DecodeError::Snappy { source })?;
    if size > limit {
        return Err(DecodeError::TooLarge { size, limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|source| DecodeError::Snappy { source })
}

/// Decodes an uncompressed `WriteRequest` into prost messages (the slower path; [`decode`]
/// reads the wire format directly).
///
/// # Errors
/// [`DecodeError::Protobuf`] when the bytes are not a `WriteRequest`.
pub fn decode_message(raw: &[u8]) -> Result<WriteRequest, DecodeError> {
    prost::Message::decode(raw).map_err(|source| DecodeError::Protobuf {
        message: "prometheus.WriteRequest",
        source,
    })
}

/// Maps a decoded `WriteRequest` onto samples (`__name__` → metric, other labels sorted).
///
/// # Errors
/// As [`decode`] for the label checks.
pub fn to_samples(request: WriteRequest) -> Result<Vec<Sample>, DecodeError> {
    let total = request.timeseries.iter().map(|ts| ts.samples.len()).sum();
    let mut out = Vec::with_capacity(total);
    for (index, series) in request.timeseries.into_iter().enumerate() {
        if series.samples.is_empty() {
            continue;
        }
        let (metric, labels) = split_labels(index, series.labels)?;
        push_samples(&mut out, metric, labels, &series.samples);
    }
    Ok(out)
}

/// Separates `__name__`, drops empty-valued labels (Prometheus treats them as absent), sorts
/// the rest and rejects repeated or empty names.
fn split_labels(
    series: usize,
    labels: Vec<Label>,
) -> Result<(String, Vec<(String, String)>), DecodeError> {
    let mut metric = None;
    let mut out = Vec::with_capacity(labels.len().saturating_sub(1));
    for label in labels {
        if label.name == "__name__" {
            if metric.is_some() {
                return Err(duplicate(series, &label.value, "__name__"));
            }
            metric = Some(label.value);
        } else if label.name.is_empty() {
            return Err(DecodeError::EmptyLabelName { series });
        } else if !label.value.is_empty() {
            out.push((label.name, label.value));
        }
    }
    let metric = metric
        .filter(|m| !m.is_empty())
        .ok_or(DecodeError::MissingMetricName { series })?;
    // Prometheus already sends labels sorted; checking first keeps the common case cheap.
    if !out.windows(2).all(|w| w[0].0 < w[1].0) {
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(duplicate(series, &metric, &w[0].0));
        }
    }
    Ok((metric, out))
}

fn duplicate(series: usize, metric: &str, name: &str) -> DecodeError {
    DecodeError::DuplicateLabel {
        series,
        metric: metric.to_owned(),
        name: name.to_owned(),
    }
}

/// One `Sample` per point; the last one takes the strings instead of cloning them.
fn push_samples(
    out: &mut Vec<Sample>,
    metric: String,
    labels: Vec<(String, String)>,
    points: &[PromSample],
) {
    let Some((last, rest)) = points.split_last() else {
        return;
    };
    for p in rest {
        out.push(Sample {
            metric: metric.clone(),
            labels: labels.clone(),
            timestamp_ms: p.timestamp,
            value: p.value,
        });
    }
    out.push(Sample {
        metric,
        labels,
        timestamp_ms: last.timestamp,
        value: last.value,
    });
}

/// Encodes samples as a remote_write body (snappy block of a `WriteRequest`), one series per
/// run of equal (metric, labels). Used by tests, benchmarks and the load generator.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut request = WriteRequest::default();
    for s in samples {
        let same = request.timeseries.last().is_some_and(|ts| is_series(ts, s));
        if !same {
            let mut labels = vec![Label {
                name: "__name__".into(),
                value: s.metric.clone(),
            }];
            labels.extend(s.labels.iter().map(|(n, v)| Label {
                name: n.clone(),
                value: v.clone(),
            }));
            request.timeseries.push(TimeSeries {
                labels,
                samples: Vec::new(),
            });
        }
        if let Some(ts) = request.timeseries.last_mut() {
            ts.samples.push(PromSample {
                value: s.value,
                timestamp: s.timestamp_ms,
            });
        }
    }
    compress(&prost::Message::encode_to_vec(&request))
}

/// Snappy block compression as Prometheus does it.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    // Compressing into a Vec only fails for inputs over ~4 GiB, which no caller builds.
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_default()
}

fn is_series(ts: &TimeSeries, s: &Sample) -> bool {
    ts.labels.len() == s.labels.len() + 1
        && ts.labels[0].value == s.metric
        && ts.labels[1..]
            .iter()
            .zip(&s.labels)
            .all(|(a, (n, v))| a.name == *n && a.value == *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, value: &str) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }

    fn body(series: Vec<TimeSeries>) -> Vec<u8> {
        compress(&prost::Message::encode_to_vec(&WriteRequest {
            timeseries: series,
        }))
    }

    #[test]
    fn decodes_and_sorts_labels() {
        let b = body(vec![TimeSeries {
            labels: vec![
                label("zone", "a"),
                label("__name__", "up"),
                label("job", "api"),
            ],
            samples: vec![
                PromSample {
                    value: 1.0,
                    timestamp: 10,
                },
                PromSample {
                    value: 0.0,
                    timestamp: 20,
                },
            ],
        }]);
        let got = decode(&b).expect("decodes");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].metric, "up");
        assert_eq!(
            got[0].labels,
            vec![("job".into(), "api".into()), ("zone".into(), "a".into())]
        );
        assert_eq!((got[1].timestamp_ms, got[1].value), (20, 0.0));
    }

    #[test]
    fn decode_each_borrows_the_same_samples() {
        let b = body(vec![
            TimeSeries {
                labels: vec![label("b", "2"), label("__name__", "m"), label("a", "")],
                samples: vec![PromSample {
                    value: 1.5,
                    timestamp: 3,
                }],
            },
            TimeSeries {
                labels: vec![label("__name__", "n")],
                samples: vec![PromSample::default(), PromSample::default()],
            },
        ]);
        let mut seen = Vec::new();
        let n = decode_each(&b, 1 << 20, |s| seen.push(s.to_sample())).expect("decodes");
        assert_eq!(n, 3);
        assert_eq!(seen, decode(&b).expect("decodes"));
        assert_eq!(seen[0].labels, vec![("b".into(), "2".into())]);
    }

    #[test]
    fn stale_marker_kept_bit_for_bit() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let b = body(vec![TimeSeries {
            labels: vec![label("__name__", "up")],
            samples: vec![PromSample {
                value: stale,
                timestamp: 1,
            }],
        }]);
        let got = decode(&b).expect("decodes");
        assert_eq!(got[0].value.to_bits(), 0x7ff0_0000_0000_0002);
    }

    #[test]
    fn rejects_missing_name_duplicate_and_empty_label() {
        let no_name = body(vec![TimeSeries {
            labels: vec![label("job", "x")],
            samples: vec![PromSample::default()],
        }]);
        let err = decode(&no_name).expect_err("no name");
        assert!(err.to_string().contains("#0"), "{err}");
        let dup = body(vec![TimeSeries {
            labels: vec![
                label("__name__", "m"),
                label("b", "1"),
                label("a", "1"),
                label("b", "2"),
            ],
            samples: vec![PromSample::default()],
        }]);
        assert!(
            matches!(decode(&dup), Err(DecodeError::DuplicateLabel { name, .. }) if name == "b")
        );
        let empty = body(vec![TimeSeries {
            labels: vec![label("__name__", "m"), label("", "1")],
            samples: vec![PromSample::default()],
        }]);
        assert!(matches!(
            decode(&empty),
            Err(DecodeError::EmptyLabelName { series: 0 })
        ));
    }

    #[test]
    fn empty_label_values_are_dropped() {
        let b = body(vec![TimeSeries {
            labels: vec![label("__name__", "m"), label("a", ""), label("b", "1")],
            samples: vec![PromSample::default()],
        }]);
        let got = decode(&b).expect("decodes");
        assert_eq!(got[0].labels, vec![("b".into(), "1".into())]);
    }

    #[test]
    fn rejects_framed_garbage_and_oversize() {
        // The snappy *framed* stream identifier is not a valid block.
        let framed = b"\xff\x06\x00\x00sNaPpY";
        assert!(matches!(decode(framed), Err(DecodeError::Snappy { .. })));
        let big = compress(&[0u8; 4096]);
        assert!(matches!(
            decode_with_limit(&big, 100),
            Err(DecodeError::TooLarge {
                size: 4096,
                limit: 100
            })
        ));
        let not_proto = compress(b"\xff\xff\xff");
        let err = decode(&not_proto).expect_err("not protobuf");
        assert!(
            matches!(err, DecodeError::Malformed { offset: 0, .. }),
            "{err}"
        );
        assert!(matches!(
            decode_message(b"\xff\xff\xff"),
            Err(DecodeError::Protobuf { .. })
        ));
    }
}
