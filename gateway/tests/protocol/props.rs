//! Property tests: remote_write encode → decode, line-protocol write → parse round trips, and
//! bad lines mixed with good ones.

use chgate_gateway::protocol::influx::parse::{self, FieldValue, Line};
use chgate_gateway::protocol::remote_write::{self, Label, PromSample, TimeSeries, WriteRequest};
use chgate_gateway::protocol::{influx, otlp, sanitize_name, Sample};
use proptest::prelude::*;

/// Label names (valid Prometheus names) and values (anything, incl. quotes and newlines).
fn label_set() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,12}", "\\PC{1,16}", 0..6)
        .prop_map(|m| m.into_iter().filter(|(n, _)| n != "__name__").collect())
}

/// (metric, sorted labels, (timestamp, value bits) points).
type Series = (String, Vec<(String, String)>, Vec<(i64, u64)>);

fn series() -> impl Strategy<Value = Series> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,30}",
        label_set(),
        prop::collection::vec((any::<i64>(), any::<u64>()), 1..5),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random WriteRequests, labels in random order, any f64 bit pattern (NaN payloads too).
    #[test]
    fn remote_write_round_trips(all in prop::collection::vec(series(), 0..20), rotate in 0usize..6) {
        let mut expected = Vec::new();
        let mut request = WriteRequest::default();
        for (metric, labels, points) in &all {
            let mut wire: Vec<Label> = labels
                .iter()
                .map(|(n, v)| Label { name: n.clone(), value: v.clone() })
                .collect();
            wire.push(Label { name: "__name__".into(), value: metric.clone() });
            let k = rotate % wire.len();
            wire.rotate_left(k);
            let samples = points
                .iter()
                .map(|&(ts, bits)| PromSample { value: f64::from_bits(bits), timestamp: ts })
                .collect();
            request.timeseries.push(TimeSeries { labels: wire, samples });
            for &(ts, bits) in points {
                expected.push((metric.clone(), labels.clone(), ts, bits));
            }
        }
        let body = remote_write::compress(&prost::Message::encode_to_vec(&request));
        let got = remote_write::decode(&body).expect("round trip decodes");
        let got: Vec<_> = got
            .into_iter()
            .map(|s| (s.metric, s.labels, s.timestamp_ms, s.value.to_bits()))
            .collect();
        prop_assert_eq!(got, expected);
    }

    /// `remote_write::encode` (used by the load generator) decodes back to the same samples.
    #[test]
    fn remote_write_encode_decode(all in prop::collection::vec(series(), 0..10)) {
        let samples: Vec<Sample> = all
            .iter()
            .flat_map(|(m, l, pts)| pts.iter().map(move |&(ts, bits)| Sample {
                metric: m.clone(),
                labels: l.clone(),
                timestamp_ms: ts,
                value: f64::from_bits(bits),
            }))
            .collect();
        let got = remote_write::decode(&remote_write::encode(&samples)).expect("decodes");
        prop_assert_eq!(got.len(), samples.len());
        for (g, s) in got.iter().zip(&samples) {
            prop_assert_eq!((&g.metric, &g.labels, g.timestamp_ms), (&s.metric, &s.labels, s.timestamp_ms));
            prop_assert_eq!(g.value.to_bits(), s.value.to_bits());
        }
    }

    /// Any names (with `,`, `=`, spaces, quotes, backslashes, unicode) and any field values
    /// survive write_line → parse_line unchanged.
    #[test]
    fn line_protocol_round_trips(
        measurement in "[^\\n\\r#\\t ][^\\n\\r\\t]{0,15}",
        tags in prop::collection::vec(("[^\\n\\r\\t]{1,10}", "[^\\n\\r\\t]{1,10}"), 0..4),
        fields in prop::collection::vec(("[^\\n\\r\\t]{1,10}", field_value()), 1..5),
        timestamp in prop::option::of(any::<i64>()),
    ) {
        let mut text = String::new();
        parse::write_line(&mut text, &measurement, &tags, &fields, timestamp);
        let mut line = Line::default();
        parse::parse_line(&text, &mut line).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(&line.measurement, &measurement);
        let got_tags: Vec<(String, String)> = line.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        prop_assert_eq!(&got_tags, &tags);
        prop_assert_eq!(line.fields.len(), fields.len());
        for ((gk, gv), (k, v)) in line.fields.iter().zip(&fields) {
            prop_assert_eq!(gk, k);
            prop_assert_eq!(gv, v);
        }
        prop_assert_eq!(line.timestamp, timestamp);
        // And the whole body path finds it as one line, rejected only when two tag keys
        // sanitize to the same label name or one is `__name__`.
        let mut names: Vec<String> = tags.iter().map(|(k, _)| sanitize_name(k)).collect();
        names.sort();
        names.dedup();
        let clash = names.len() < tags.len() || names.iter().any(|n| n == "__name__");
        let batch = influx::decode(&format!("{text}\n"), influx::Precision::Milliseconds, 7);
        prop_assert_eq!(batch.errors.len(), usize::from(clash), "{:?} in {}", batch.errors, text);
    }

    /// Good and bad lines mixed: exactly the good lines' samples, errors on exactly the bad
    /// lines' numbers.
    #[test]
    fn bad_lines_never_poison_good_ones(kinds in prop::collection::vec(0usize..(GOOD.len() + BAD.len()), 1..40)) {
        let mut body = String::new();
        let mut want_samples = 0;
        let mut want_errors = Vec::new();
        let mut physical = 1;
        for (i, &k) in kinds.iter().enumerate() {
            let line = match GOOD.get(k) {
                Some((line, n)) => {
                    want_samples += n;
                    line
                }
                None => {
                    want_errors.push(physical);
                    BAD[k - GOOD.len()]
                }
            };
            body.push_str(line);
            // A quoted string may hold newlines: line numbers count physical lines.
            physical += 1 + line.matches('\n').count();
            body.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
        }
        let batch = influx::decode(&body, influx::Precision::Nanoseconds, 0);
        let got_errors: Vec<usize> = batch.errors.iter().map(|e| e.line).collect();
        prop_assert_eq!(got_errors, want_errors, "{:?}\n{}", batch.errors, body);
        prop_assert_eq!(batch.samples.len(), want_samples);
    }
}

fn field_value() -> impl Strategy<Value = FieldValue<'static>> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Int),
        any::<u64>().prop_map(FieldValue::UInt),
        any::<bool>().prop_map(FieldValue::Bool),
        "\\PC{0,12}".prop_map(|s| FieldValue::Str(s.into())),
    ]
}

/// Good lines and how many samples each yields (string fields yield none).
const GOOD: &[(&str, usize)] = &[
    ("cpu,host=a usage=1.5 1700000000000000000", 1),
    ("cpu,host=a,zone=b usage=1,idle=2i,up=true", 3),
    ("mem free=3u,msg=\"text, with = and \\\"quotes\\\"\" 5", 1),
    ("multi s=\"line one\nline two\",v=1 6", 1),
    ("# a comment", 0),
    ("", 0),
    ("esc\\ aped,t\\,k=v\\=1 f\\ x=-1e3", 1),
];

/// Lines each of which must be rejected on its own.
const BAD: &[&str] = &[
    "cpu",
    "cpu usage=",
    "cpu,host usage=1",
    "cpu usage=1 notatime",
    "cpu usage=\"unterminated",
    "cpu usage=1 1 2",
    "cpu usage=nan",
    "cpu,__name__=x f=1",
    ",host=a f=1",
    "cpu f=1 99999999999999999999",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the remote_write reader (compressed or not) or the prost path.
    #[test]
    fn remote_write_never_panics_on_garbage(raw in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = remote_write::decode(&remote_write::compress(&raw));
        let _ = remote_write::decode(&raw);
        let _ = remote_write::decode_message(&raw);
    }

    /// The zero-copy reader and the prost messages agree on every valid request.
    #[test]
    fn remote_write_reader_matches_prost(all in prop::collection::vec(series(), 0..10)) {
        let request = WriteRequest {
            timeseries: all
                .iter()
                .map(|(m, l, pts)| TimeSeries {
                    labels: std::iter::once(Label { name: "__name__".into(), value: m.clone() })
                        .chain(l.iter().map(|(n, v)| Label { name: n.clone(), value: v.clone() }))
                        .collect(),
                    samples: pts
                        .iter()
                        .map(|&(ts, bits)| PromSample { value: f64::from_bits(bits), timestamp: ts })
                        .collect(),
                })
                .collect(),
        };
        let raw = prost::Message::encode_to_vec(&request);
        let fast = remote_write::decode(&remote_write::compress(&raw)).expect("reader");
        let slow = remote_write::to_samples(remote_write::decode_message(&raw).expect("prost"))
            .expect("prost path");
        prop_assert_eq!(fast.len(), slow.len());
        for (a, b) in fast.iter().zip(&slow) {
            prop_assert_eq!((&a.metric, &a.labels, a.timestamp_ms), (&b.metric, &b.labels, b.timestamp_ms));
            prop_assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
    }

    /// Arbitrary text never panics the line-protocol decoder, and every error names a line
    /// that exists.
    #[test]
    fn influx_never_panics_on_garbage(body in "(\\PC|[\\n\\r\\t\"\\\\=, ]){0,200}") {
        let batch = influx::decode(&body, influx::Precision::Seconds, 0);
        let lines = body.matches('\n').count() + 1;
        for e in &batch.errors {
            prop_assert!(e.line >= 1 && e.line <= lines, "{:?}", e);
        }
    }

    /// Arbitrary bytes never panic `decode_bytes`; error lines exist; valid UTF-8 gives the
    /// same result as `decode`.
    #[test]
    fn influx_bytes_never_panic(raw in prop::collection::vec(
        prop_oneof![Just(b'\n'), Just(b'='), Just(b' '), Just(b'"'), any::<u8>(), 0x61u8..0x7a],
        0..200,
    )) {
        let batch = influx::decode_bytes(&raw, influx::Precision::Seconds, 0);
        let lines = raw.iter().filter(|&&b| b == b'\n').count() + 1;
        for e in &batch.errors {
            prop_assert!(e.line >= 1 && e.line <= lines, "{:?}", e);
        }
        if let Ok(text) = std::str::from_utf8(&raw) {
            prop_assert_eq!(batch, influx::decode(text, influx::Precision::Seconds, 0));
        }
    }

    /// Arbitrary bytes never panic the OTLP decoders.
    #[test]
    fn otlp_never_panics_on_garbage(raw in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = otlp::decode_protobuf(&raw);
        let _ = otlp::decode_json(&raw);
    }
}

/// One random histogram point: per-bucket counts (bounds + 1 of them), optional sum.
fn histogram_point() -> impl Strategy<Value = (Vec<u32>, Option<f64>, u64)> {
    (
        prop::collection::vec(0u32..1000, 1..12),
        prop::option::of(-1e6f64..1e6),
        1u64..u64::from(u32::MAX),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random histograms through protobuf: `le` ascending ending in `+Inf`, bucket values
    /// cumulative and ending at `count`, `_sum` only when sent, every label set sorted.
    #[test]
    fn otlp_histograms_are_cumulative(points in prop::collection::vec(histogram_point(), 1..6)) {
        use otlp::messages::*;
        let data_points = points
            .iter()
            .enumerate()
            .map(|(i, (counts, sum, ns))| HistogramDataPoint {
                attributes: vec![KeyValue {
                    key: "point.index".into(),
                    value: Some(AnyValue { int_value: Some(i as i64), ..AnyValue::default() }),
                }],
                time_unix_nano: *ns,
                count: counts.iter().map(|&c| u64::from(c)).sum(),
                sum: *sum,
                bucket_counts: counts.iter().map(|&c| u64::from(c)).collect(),
                explicit_bounds: (1..counts.len()).map(|b| b as f64 * 0.25).collect(),
                flags: 0,
            })
            .collect();
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: None,
                scope_metrics: vec![ScopeMetrics {
                    scope: None,
                    metrics: vec![Metric {
                        name: "rpc.latency".into(),
                        histogram: Some(Histogram { data_points, aggregation_temporality: 2 }),
                        ..Metric::default()
                    }],
                }],
            }],
        };
        let got = otlp::decode_protobuf(&prost::Message::encode_to_vec(&request)).expect("decodes");
        let expected: usize = points.iter().map(|(c, s, _)| c.len() + 1 + usize::from(s.is_some())).sum();
        prop_assert_eq!(got.len(), expected);
        for (i, (counts, sum, ns)) in points.iter().enumerate() {
            let idx = i.to_string();
            let mine: Vec<&Sample> = got
                .iter()
                .filter(|s| s.labels.iter().any(|(n, v)| n == "point_index" && *v == idx))
                .collect();
            let buckets: Vec<&&Sample> = mine.iter().filter(|s| s.metric == "rpc_latency_bucket").collect();
            prop_assert_eq!(buckets.len(), counts.len());
            let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
            let mut prev = 0.0;
            for (k, b) in buckets.iter().enumerate() {
                prop_assert!(b.labels.windows(2).all(|w| w[0].0 < w[1].0));
                prop_assert!(b.value >= prev);
                prev = b.value;
                prop_assert_eq!(b.timestamp_ms, (*ns / 1_000_000) as i64);
                let le = b.labels.iter().find(|(n, _)| n == "le").map(|(_, v)| v.as_str());
                if k + 1 == buckets.len() {
                    prop_assert_eq!(le, Some("+Inf"));
                    prop_assert_eq!(b.value, total as f64);
                } else {
                    let want = ((k + 1) as f64 * 0.25).to_string();
                    prop_assert_eq!(le, Some(want.as_str()));
                }
            }
            let sums = mine.iter().filter(|s| s.metric == "rpc_latency_sum").count();
            prop_assert_eq!(sums, usize::from(sum.is_some()));
            let count = mine.iter().find(|s| s.metric == "rpc_latency_count").map(|s| s.value);
            prop_assert_eq!(count, Some(total as f64));
        }
    }
}
