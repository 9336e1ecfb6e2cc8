//! The zero-copy OTLP protobuf reader (`otlp::decode_to` with `Encoding::Protobuf`) against
//! the prost reference (`otlp::decode_to_prost`): the same sink calls for every metric kind
//! and resource-attribute option, for the real OTel Python body, for generated requests and
//! for mutated ones; and the same acceptance of hand-built wire-format corner cases.

use chgate_gateway::protocol::otlp::messages::*;
use chgate_gateway::protocol::otlp::{self, Encoding, OtlpOptions, ResourceAttributes};
use chgate_gateway::protocol::{DecodeError, SampleSink};
use proptest::prelude::*;

use crate::fixtures::fixture;

/// Every sink call, in order (values as bits, so NaN payloads compare).
#[derive(Debug, Default, PartialEq)]
struct Log(Vec<Call>);

#[derive(Debug, PartialEq)]
enum Call {
    Labels(Vec<(String, String)>),
    Sample(String, i64, u64),
}

impl SampleSink for Log {
    fn labels<N: AsRef<str>, V: AsRef<str>>(&mut self, labels: &[(N, V)]) {
        let owned = labels.iter();
        let owned = owned.map(|(n, v)| (n.as_ref().to_owned(), v.as_ref().to_owned()));
        self.0.push(Call::Labels(owned.collect()));
    }

    fn sample(&mut self, metric: &str, timestamp_ms: i64, value: f64) {
        self.0.push(Call::Sample(
            metric.to_owned(),
            timestamp_ms,
            value.to_bits(),
        ));
    }
}

/// What a decoder made of a body: the calls and count, or the kind of error.
#[derive(Debug, PartialEq)]
enum Outcome {
    Rows(Log, usize),
    /// Not the protobuf message (prost's `Protobuf`, the reader's `Malformed`).
    Malformed,
    /// Any other error, by its message.
    Other(String),
}

fn outcome(result: Result<usize, DecodeError>, log: Log) -> Outcome {
    match result {
        Ok(n) => Outcome::Rows(log, n),
        Err(DecodeError::Protobuf { .. } | DecodeError::Malformed { .. }) => Outcome::Malformed,
        Err(e) => Outcome::Other(e.to_string()),
    }
}

/// Both decoders' outcomes for `body`.
fn both(body: &[u8], opts: &OtlpOptions) -> (Outcome, Outcome) {
    let mut reference = Log::default();
    let r = otlp::decode_to_prost(body, opts, &mut reference);
    let mut wire = Log::default();
    let w = otlp::decode_to(Encoding::Protobuf, body, opts, &mut wire);
    if let Err(DecodeError::Malformed { offset, .. }) = &w {
        assert!(*offset <= body.len(), "offset {offset} past {}", body.len());
    }
    (outcome(r, reference), outcome(w, wire))
}

fn options() -> [OtlpOptions; 4] {
    let only = |keys: &[&str]| OtlpOptions {
        resource_attributes: ResourceAttributes::Only(keys.iter().map(|&k| k.into()).collect()),
    };
    [
        OtlpOptions::default(),
        only(&["service.name", "route"]),
        only(&[]),
        OtlpOptions {
            resource_attributes: ResourceAttributes::None,
        },
    ]
}

/// Asserts identical outcomes under every option; returns the default option's rows count.
fn assert_same(body: &[u8]) -> usize {
    let mut rows = 0;
    for (i, opts) in options().iter().enumerate() {
        let (reference, wire) = both(body, opts);
        assert_eq!(wire, reference, "option {opts:?}");
        if let (0, Outcome::Rows(_, n)) = (i, &reference) {
            rows = *n;
        }
    }
    rows
}

fn s(v: &str) -> AnyValue {
    AnyValue {
        string_value: Some(v.into()),
        ..AnyValue::default()
    }
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(v),
    }
}

/// Attributes of every value type, clashing names, `__name__`, an empty value, `le`.
fn attrs(tag: &str) -> Vec<KeyValue> {
    let array = AnyValue {
        array_value: Some(ArrayValue {
            values: vec![
                s("a"),
                AnyValue {
                    bool_value: Some(true),
                    ..AnyValue::default()
                },
                AnyValue {
                    double_value: Some(f64::NAN),
                    ..AnyValue::default()
                },
                AnyValue::default(),
            ],
        }),
        ..AnyValue::default()
    };
    let map = AnyValue {
        kvlist_value: Some(KeyValueList {
            values: vec![kv("z", s("1")), kv("a", array.clone()), KeyValue::default()],
        }),
        ..AnyValue::default()
    };
    vec![
        kv("route", s(tag)),
        kv("host.name", s("")),
        kv("__name__", s("x")),
        kv("le", s("own")),
        kv("quantile", s("q")),
        kv(
            "9.int",
            AnyValue {
                int_value: Some(-9),
                ..AnyValue::default()
            },
        ),
        kv(
            "dbl",
            AnyValue {
                double_value: Some(0.1),
                ..AnyValue::default()
            },
        ),
        kv(
            "inf",
            AnyValue {
                double_value: Some(f64::INFINITY),
                ..AnyValue::default()
            },
        ),
        kv("arr", array),
        kv("map", map),
        kv("none", AnyValue::default()),
        KeyValue {
            key: "unset".into(),
            value: None,
        },
        kv("ünï-code", s("ü")),
    ]
}

fn number(ns: u64, double: Option<f64>, int: Option<i64>, flags: u32) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs("n"),
        time_unix_nano: ns,
        as_double: double,
        as_int: int,
        flags,
    }
}

/// One metric per kind, each with a point that has attributes and one that is stale or sparse.
fn kinds() -> Vec<(&'static str, Metric)> {
    let numbers = vec![
        number(1_700_000_000_123_456_789, None, Some(42), 0),
        number(2_000_000, Some(4.5), None, 1),
        number(3_000_000, None, None, 0),
        number(4_000_000, Some(f64::NAN), Some(1), 0),
    ];
    let histogram = vec![
        HistogramDataPoint {
            attributes: attrs("h"),
            time_unix_nano: 1_000_000,
            count: 6,
            sum: Some(2.5),
            bucket_counts: vec![1, 2, 3],
            explicit_bounds: vec![0.005, 1e21],
            flags: 0,
        },
        HistogramDataPoint {
            time_unix_nano: 2_000_000,
            count: 1,
            flags: 1,
            ..HistogramDataPoint::default()
        },
    ];
    let summary = vec![
        SummaryDataPoint {
            attributes: attrs("q"),
            time_unix_nano: 1_000_000,
            count: 4,
            sum: 9.0,
            quantile_values: vec![
                ValueAtQuantile {
                    quantile: 0.5,
                    value: 1.0,
                },
                ValueAtQuantile {
                    quantile: 1.0,
                    value: 3.0,
                },
            ],
            flags: 0,
        },
        SummaryDataPoint {
            time_unix_nano: 2_000_000,
            count: 2,
            sum: f64::INFINITY,
            flags: 1,
            ..SummaryDataPoint::default()
        },
    ];
    let exponential = vec![
        ExponentialHistogramDataPoint {
            attributes: attrs("e"),
            time_unix_nano: 1_000_000,
            count: 5,
            sum: Some(1.0),
            scale: -1,
            zero_count: 1,
            positive: Some(Buckets {
                offset: 1,
                bucket_counts: vec![1, 1],
            }),
            negative: Some(Buckets {
                offset: -2,
                bucket_counts: vec![1, 0, 1],
            }),
            flags: 0,
            zero_threshold: 0.001,
        },
        ExponentialHistogramDataPoint {
            time_unix_nano: 2_000_000,
            scale: 20,
            flags: 1,
            ..ExponentialHistogramDataPoint::default()
        },
    ];
    vec![
        (
            "gauge",
            Metric {
                name: "queue.depth".into(),
                gauge: points(numbers.clone()),
                ..Metric::default()
            },
        ),
        (
            "sum",
            Metric {
                name: "requests_total".into(),
                unit: "1".into(),
                sum: points(numbers),
                ..Metric::default()
            },
        ),
        (
            "histogram",
            Metric {
                name: "latency".into(),
                histogram: points(histogram),
                ..Metric::default()
            },
        ),
        (
            "summary",
            Metric {
                name: "rpc".into(),
                summary: points(summary),
                ..Metric::default()
            },
        ),
        (
            "exponential histogram",
            Metric {
                name: "exp".into(),
                exponential_histogram: points(exponential),
                ..Metric::default()
            },
        ),
    ]
}

fn points<P: prost::Message + Default>(data_points: Vec<P>) -> Option<Points<P>> {
    Some(Points {
        data_points,
        aggregation_temporality: 2,
    })
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("shop")),
                    kv("route", s("from-resource")),
                    kv("host.name", s("h1")),
                    kv("tags", attrs("r")[8].value.clone().unwrap_or_default()),
                ],
            }),
            scope_metrics: vec![
                ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        version: "1.2".into(),
                        attributes: vec![kv("scope.attr", s("sa")), kv("route", s("scope"))],
                    }),
                    metrics: metrics.clone(),
                },
                ScopeMetrics {
                    scope: None,
                    metrics,
                },
            ],
        }],
    }
}

#[test]
fn every_kind_and_option_gives_the_same_calls() {
    let mut all = Vec::new();
    for (kind, metric) in kinds() {
        let body = prost::Message::encode_to_vec(&request(vec![metric.clone()]));
        let rows = assert_same(&body);
        assert!(rows > 0, "{kind}: no rows");
        all.push(metric);
    }
    // All kinds in one metric (the reader maps gauge, sum, histogram, summary, exponential
    // in that order whatever the wire order) and all metrics in one request.
    let mut merged = Metric {
        name: "every.kind".into(),
        ..Metric::default()
    };
    for m in &all {
        merged.gauge = merged.gauge.or(m.gauge.clone());
        merged.sum = merged.sum.or(m.sum.clone());
        merged.histogram = merged.histogram.or(m.histogram.clone());
        merged.summary = merged.summary.or(m.summary.clone());
        merged.exponential_histogram = merged
            .exponential_histogram
            .or(m.exponential_histogram.clone());
    }
    all.push(merged);
    assert!(assert_same(&prost::Message::encode_to_vec(&request(all))) > 100);
}

#[test]
fn mapping_errors_are_the_same() {
    let bad = |f: &dyn Fn(&mut Metric)| {
        let mut metrics: Vec<Metric> = kinds().into_iter().map(|(_, m)| m).collect();
        f(&mut metrics[2]);
        prost::Message::encode_to_vec(&request(metrics))
    };
    let cases: Vec<Vec<u8>> = vec![
        bad(&|m| m.name = String::new()),
        bad(&|m| {
            if let Some(h) = &mut m.histogram {
                h.data_points[0].bucket_counts.push(1);
            }
        }),
        bad(&|m| {
            if let Some(h) = &mut m.histogram {
                h.data_points[1].time_unix_nano = 0;
            }
        }),
        bad(&|m| {
            m.histogram = None;
            m.exponential_histogram = Some(Points {
                data_points: vec![ExponentialHistogramDataPoint {
                    time_unix_nano: 1,
                    scale: 21,
                    ..ExponentialHistogramDataPoint::default()
                }],
                aggregation_temporality: 0,
            });
        }),
    ];
    for body in cases {
        let (reference, wire) = both(&body, &OtlpOptions::default());
        assert!(matches!(reference, Outcome::Other(_)), "{reference:?}");
        assert_eq!(wire, reference);
        // A wire error after the bad metric wins, as prost decodes the whole body first.
        let mut broken = body.clone();
        broken.extend_from_slice(&[0x0a, 0x05, 0x01]);
        let (reference, wire) = both(&broken, &OtlpOptions::default());
        assert_eq!(
            (&reference, &wire),
            (&Outcome::Malformed, &Outcome::Malformed)
        );
    }
}

#[test]
fn otel_python_fixture_gives_the_same_calls() {
    let body = fixture("otel-python-1.45-otlp-http-metrics.pb");
    assert!(assert_same(&body) > 50);
    // Every truncation of it is rejected by both or accepted by both with the same calls.
    for cut in (0..body.len()).step_by(7) {
        let (reference, wire) = both(&body[..cut], &OtlpOptions::default());
        assert_eq!(wire, reference, "cut at {cut}");
    }
}

// Hand-built wire format.

fn field(tag: u32, wire: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(u64::from(tag << 3 | u32::from(wire)), &mut out);
    if wire == 2 {
        prost::encoding::encode_varint(data.len() as u64, &mut out);
    }
    out.extend_from_slice(data);
    out
}

fn msg(tag: u32, data: &[u8]) -> Vec<u8> {
    field(tag, 2, data)
}

/// A request of one resource (`resource`) and one scope with one metric (`metric` fields).
fn wrap(resource: &[u8], metric: &[u8]) -> Vec<u8> {
    let scope = msg(2, metric);
    let rm = [msg(1, resource), msg(2, &scope)].concat();
    msg(1, &rm)
}

fn gauge_point(extra: &[u8]) -> Vec<u8> {
    let point = [
        field(3, 1, &7_000_000u64.to_le_bytes()),
        field(4, 1, &1.5f64.to_le_bytes()),
        extra.to_vec(),
    ]
    .concat();
    msg(5, &msg(1, &point))
}

#[test]
fn wire_corner_cases_are_judged_alike() {
    let attr = |k: &[u8], v: &[u8]| msg(1, &[msg(1, k), msg(2, v)].concat());
    let resource = attr(b"service.name", &msg(1, b"svc"));
    let point_attr = msg(7, &[msg(1, b"k"), msg(2, &msg(1, b"v"))].concat());
    let ok = |b: &[u8]| {
        assert!(assert_same(b) > 0, "{b:?}");
    };
    let rejected = |b: &[u8]| {
        let (reference, wire) = both(b, &OtlpOptions::default());
        assert_eq!(
            (&reference, &wire),
            (&Outcome::Malformed, &Outcome::Malformed),
            "{b:?}"
        );
    };
    let name = msg(1, b"m");
    // Fields in reverse order: the name after the points, the resource after the scopes.
    ok(&wrap(
        &resource,
        &[gauge_point(&point_attr), name.clone()].concat(),
    ));
    let scope = msg(2, &[gauge_point(&[]), name.clone()].concat());
    ok(&msg(1, &[msg(2, &scope), msg(1, &resource)].concat()));
    // A singular message twice is merged: two resources, two gauges, two values of a key.
    let twice = [resource.clone(), attr(b"b", &msg(1, b"2"))].concat();
    let rm = [
        msg(1, &resource),
        msg(2, &msg(2, &[name.clone(), gauge_point(&[])].concat())),
    ];
    ok(&msg(1, &[rm.concat(), msg(1, &twice)].concat()));
    ok(&wrap(
        &resource,
        &[name.clone(), gauge_point(&[]), gauge_point(&point_attr)].concat(),
    ));
    let merged_value = msg(
        7,
        &[
            msg(1, b"k"),
            msg(2, &msg(1, b"v")),
            msg(2, &field(3, 0, &[5])),
        ]
        .concat(),
    );
    ok(&wrap(
        &resource,
        &[name.clone(), gauge_point(&merged_value)].concat(),
    ));
    let two_arrays = [
        msg(5, &msg(1, &msg(1, b"x"))),
        msg(5, &msg(1, &field(2, 0, &[1]))),
    ]
    .concat();
    let arr_attr = msg(7, &[msg(1, b"k"), msg(2, &two_arrays)].concat());
    ok(&wrap(
        &resource,
        &[name.clone(), gauge_point(&arr_attr)].concat(),
    ));
    // A last value wins; the name's last value is used.
    ok(&wrap(
        &resource,
        &[msg(1, b"first"), gauge_point(&[]), msg(1, b"second")].concat(),
    ));
    // Unknown fields of every wire type, groups included (nested), bytes values.
    let unknown = [
        field(99, 0, &[0x96, 0x01]),
        field(98, 1, &[0; 8]),
        field(97, 2, b"\xff\xfe not utf-8 but unknown"),
        field(96, 5, &[0; 4]),
        field(95, 3, &[]),
        field(1, 0, &[1]),
        field(2, 3, &[]),
        field(2, 4, &[]),
        field(95, 4, &[]),
    ]
    .concat();
    ok(&wrap(
        &[resource.clone(), unknown.clone()].concat(),
        &[name.clone(), gauge_point(&unknown)].concat(),
    ));
    let bytes_value = msg(7, &[msg(1, b"k"), msg(2, &msg(7, b"\x00\xff"))].concat());
    ok(&wrap(
        &resource,
        &[name.clone(), gauge_point(&bytes_value)].concat(),
    ));
    // Packed and unpacked repeated scalars, mixed.
    let mut h = vec![
        field(3, 1, &5_000_000u64.to_le_bytes()),
        field(4, 1, &3u64.to_le_bytes()),
    ];
    h.push(msg(6, &[1u64.to_le_bytes(), 1u64.to_le_bytes()].concat()));
    h.push(field(6, 1, &1u64.to_le_bytes()));
    h.push(field(7, 1, &0.5f64.to_le_bytes()));
    h.push(msg(7, &2.5f64.to_le_bytes()));
    ok(&wrap(
        &resource,
        &[name.clone(), msg(9, &msg(1, &h.concat()))].concat(),
    ));
    let e = [
        field(3, 1, &5_000_000u64.to_le_bytes()),
        field(6, 0, &[3]),
        msg(
            8,
            &[
                field(1, 0, &[3]),
                msg(2, &[1, 0x80, 0x01]),
                field(2, 0, &[4]),
            ]
            .concat(),
        ),
        msg(8, &field(1, 0, &[4])),
        msg(9, &msg(2, &[2])),
    ];
    ok(&wrap(
        &resource,
        &[name.clone(), msg(10, &msg(1, &e.concat()))].concat(),
    ));
    // Rejected by both.
    rejected(&wrap(
        &resource,
        &[name.clone(), gauge_point(&field(3, 0, &[1]))].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[field(1, 0, &[1]), gauge_point(&[])].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[msg(1, b"\xff"), gauge_point(&[])].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[msg(3, b"\xc3\x28"), name.clone(), gauge_point(&[])].concat(),
    ));
    rejected(&wrap(
        &attr(b"\xff", &msg(1, b"v")),
        &[name.clone(), gauge_point(&[])].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[name.clone(), gauge_point(&field(99, 0, &[0xff; 9]))].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[
            name.clone(),
            gauge_point(&field(
                99,
                0,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            )),
        ]
        .concat(),
    ));
    ok(&wrap(
        &resource,
        &[
            name.clone(),
            gauge_point(&field(
                99,
                0,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            )),
        ]
        .concat(),
    ));
    rejected(&wrap(
        &resource,
        &[name.clone(), gauge_point(&[0x00, 0x01])].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[name.clone(), gauge_point(&[0x0e])].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[name.clone(), gauge_point(&field(95, 3, &field(94, 4, &[])))].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[name.clone(), gauge_point(&field(95, 3, &[]))].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[name.clone(), gauge_point(&field(95, 4, &[]))].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[name.clone(), msg(9, &msg(1, &msg(6, &[0; 7])))].concat(),
    ));
    rejected(&wrap(
        &resource,
        &[name.clone(), msg(10, &msg(1, &msg(8, &msg(2, &[0x80]))))].concat(),
    ));
    rejected(&[0x0a, 0x80, 0x80, 0x80, 0x80, 0x10]);
    rejected(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
}

/// `AnyValue{kvlist{KeyValue{key, AnyValue{…}}}}` nested `depth` deep, as a resource attribute
/// (as the hostile suite builds it), optionally with an unknown field at the innermost level.
fn deep(depth: usize, unknown: bool) -> Vec<u8> {
    let mut any = msg(1, b"leaf");
    if unknown {
        any.extend(field(99, 0, &[1]));
    }
    for _ in 0..depth {
        let kv = [msg(1, b"k"), msg(2, &any)].concat();
        any = msg(6, &msg(1, &kv));
    }
    let attr = [msg(1, b"deep"), msg(2, &any)].concat();
    let rm = [
        msg(1, &msg(1, &attr)),
        msg(2, &msg(2, &[msg(1, b"m"), gauge_point(&[])].concat())),
    ];
    msg(1, &rm.concat())
}

#[test]
fn the_recursion_limit_is_prosts() {
    let mut accepted = 0;
    for depth in 25..40 {
        for unknown in [false, true] {
            let body = deep(depth, unknown);
            let (reference, wire) = both(&body, &OtlpOptions::default());
            assert_eq!(wire, reference, "depth {depth}");
            accepted += usize::from(matches!(reference, Outcome::Rows(..)));
        }
    }
    assert!(
        accepted > 0 && accepted < 30,
        "the limit falls inside the range: {accepted}"
    );
    let (reference, wire) = both(&deep(3000, false), &OtlpOptions::default());
    assert_eq!(
        (&reference, &wire),
        (&Outcome::Malformed, &Outcome::Malformed)
    );
}

// Generated requests.

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        "\\PC{0,6}".prop_map(|v| s(&v)),
        any::<bool>().prop_map(|b| AnyValue {
            bool_value: Some(b),
            ..AnyValue::default()
        }),
        any::<i64>().prop_map(|i| AnyValue {
            int_value: Some(i),
            ..AnyValue::default()
        }),
        any::<u64>().prop_map(|b| AnyValue {
            double_value: Some(f64::from_bits(b)),
            ..AnyValue::default()
        }),
        Just(AnyValue::default()),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|values| AnyValue {
                array_value: Some(ArrayValue { values }),
                ..AnyValue::default()
            }),
            prop::collection::vec(("[a-c.]{0,2}", inner), 0..3).prop_map(|e| AnyValue {
                kvlist_value: Some(KeyValueList {
                    values: e.into_iter().map(|(k, v)| kv(&k, v)).collect(),
                }),
                ..AnyValue::default()
            }),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    let key = prop_oneof![
        "[a-d]",
        "[a-d][._9]{0,2}",
        Just("__name__".to_owned()),
        Just("le".to_owned())
    ];
    prop::collection::vec((key, prop::option::weighted(0.9, any_value())), 0..4).prop_map(|a| {
        a.into_iter()
            .map(|(key, value)| KeyValue { key, value })
            .collect()
    })
}

fn time() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 9 => any::<u64>()]
}

fn flags() -> impl Strategy<Value = u32> {
    prop_oneof![3 => Just(0u32), 1 => any::<u32>()]
}

fn f64_bits() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => -1e3f64..1e3,
        1 => any::<u64>().prop_map(f64::from_bits),
    ]
}

fn number_point() -> impl Strategy<Value = NumberDataPoint> {
    (
        attributes(),
        time(),
        prop::option::of(f64_bits()),
        prop::option::of(any::<i64>()),
        flags(),
    )
        .prop_map(
            |(attributes, t, as_double, as_int, flags)| NumberDataPoint {
                attributes,
                time_unix_nano: t,
                as_double,
                as_int,
                flags,
            },
        )
}

fn metric() -> impl Strategy<Value = Metric> {
    let histogram = (
        attributes(),
        time(),
        any::<u64>(),
        prop::option::of(f64_bits()),
        prop::collection::vec(0u64..9, 0..4),
        prop::collection::vec(f64_bits(), 0..4),
        flags(),
    )
        .prop_map(
            |(attributes, t, count, sum, bucket_counts, explicit_bounds, flags)| {
                HistogramDataPoint {
                    attributes,
                    time_unix_nano: t,
                    count,
                    sum,
                    bucket_counts,
                    explicit_bounds,
                    flags,
                }
            },
        );
    let buckets =
        (-5i32..5, prop::collection::vec(0u64..9, 0..4)).prop_map(|(offset, bucket_counts)| {
            Buckets {
                offset,
                bucket_counts,
            }
        });
    let exponential = (
        (
            attributes(),
            time(),
            any::<u64>(),
            prop::option::of(f64_bits()),
            -12i32..22,
        ),
        (
            0u64..9,
            prop::option::of(buckets.clone()),
            prop::option::of(buckets),
            flags(),
            f64_bits(),
        ),
    )
        .prop_map(
            |(
                (attributes, t, count, sum, scale),
                (zero_count, positive, negative, flags, zero_threshold),
            )| {
                ExponentialHistogramDataPoint {
                    attributes,
                    time_unix_nano: t,
                    count,
                    sum,
                    scale,
                    zero_count,
                    positive,
                    negative,
                    flags,
                    zero_threshold,
                }
            },
        );
    let quantile =
        (f64_bits(), f64_bits()).prop_map(|(quantile, value)| ValueAtQuantile { quantile, value });
    let summary = (
        attributes(),
        time(),
        any::<u64>(),
        f64_bits(),
        prop::collection::vec(quantile, 0..3),
        flags(),
    )
        .prop_map(
            |(attributes, t, count, sum, quantile_values, flags)| SummaryDataPoint {
                attributes,
                time_unix_nano: t,
                count,
                sum,
                quantile_values,
                flags,
            },
        );
    fn maybe<P: prost::Message + Default + std::fmt::Debug>(
        p: impl Strategy<Value = P>,
    ) -> impl Strategy<Value = Option<Points<P>>> {
        prop::option::weighted(
            0.4,
            (prop::collection::vec(p, 0..3), 0i32..3).prop_map(
                |(data_points, aggregation_temporality)| Points {
                    data_points,
                    aggregation_temporality,
                },
            ),
        )
    }
    let name = prop_oneof![9 => "[a-z][a-z._]{0,8}", 1 => "[.]{0,1}"];
    (
        name,
        maybe(number_point()),
        maybe(number_point()),
        maybe(histogram),
        maybe(exponential),
        maybe(summary),
    )
        .prop_map(
            |(name, gauge, sum, histogram, exponential_histogram, summary)| Metric {
                name,
                unit: String::new(),
                gauge,
                sum,
                histogram,
                exponential_histogram,
                summary,
            },
        )
}

fn generated_request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let scope = (
        prop::option::of(("[a-z]{0,3}", "[0-9.]{0,3}", attributes()).prop_map(
            |(name, version, attributes)| InstrumentationScope {
                name,
                version,
                attributes,
            },
        )),
        prop::collection::vec(metric(), 0..3),
    )
        .prop_map(|(scope, metrics)| ScopeMetrics { scope, metrics });
    let resource = prop::option::of(attributes().prop_map(|mut attributes| {
        attributes.push(kv("service.name", s("svc")));
        Resource { attributes }
    }));
    let rm =
        (resource, prop::collection::vec(scope, 0..3)).prop_map(|(resource, scope_metrics)| {
            ResourceMetrics {
                resource,
                scope_metrics,
            }
        });
    prop::collection::vec(rm, 0..3)
        .prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

/// A byte-level change: overwrite, insert, delete or truncate.
fn mutation() -> impl Strategy<Value = (u8, usize, u8)> {
    (0u8..4, any::<usize>(), any::<u8>())
}

fn mutate(mut body: Vec<u8>, mutations: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, at, byte) in mutations {
        if body.is_empty() {
            break;
        }
        let at = at % body.len();
        match op {
            0 => body[at] = byte,
            1 => body.insert(at, byte),
            2 => {
                body.remove(at);
            }
            _ => body.truncate(at),
        }
    }
    body
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Generated requests of every kind: the same calls (or the same mapping error) from both
    /// decoders under every resource-attribute option.
    #[test]
    fn generated_requests_give_the_same_calls(request in generated_request()) {
        let body = prost::Message::encode_to_vec(&request);
        for opts in options() {
            let (reference, wire) = both(&body, &opts);
            prop_assert_eq!(wire, reference);
        }
    }

    /// Mutated encodings: both reject, or both accept with the same calls.
    #[test]
    fn mutated_requests_are_judged_alike(
        request in generated_request(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let body = mutate(prost::Message::encode_to_vec(&request), &mutations);
        let (reference, wire) = both(&body, &OtlpOptions::default());
        prop_assert_eq!(wire, reference);
    }

    /// Arbitrary bytes: both reject or both accept alike.
    #[test]
    fn arbitrary_bytes_are_judged_alike(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let (reference, wire) = both(&body, &OtlpOptions::default());
        prop_assert_eq!(wire, reference);
    }
}
