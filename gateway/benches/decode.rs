//! Decode throughput (samples/s) of the protocol decoders; run with
//! `cargo bench -p chgate-gateway --bench decode`. Benchmarks only, no timing asserts.
//!
//! Time is the benchmark thread's **CPU time** (`CLOCK_THREAD_CPUTIME_ID`), not wall time, so
//! the numbers are samples/s per core even when other builds share the machine.
#![allow(missing_docs)]

use chgate_gateway::protocol::{influx, otlp, remote_write, series, Sample, SampleSink};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;
use common::{cpu, ThreadCpu};

const SERIES: usize = 10_000;

/// Line protocol like influxdb-client sends: 2 tags, an integer and a float field per line.
fn influx_body() -> String {
    let mut body = String::new();
    for i in 0..SERIES {
        body.push_str(&format!(
            "fixture_influx,host=h{},region=eu-west-{} count={}i,value={}.25 {}\n",
            i % 500,
            i % 3,
            i,
            i,
            1_700_000_000_000_000_000i64 + i as i64 * 1_000_000
        ));
    }
    body
}

/// A Prometheus-like scrape: 5 labels per series, one sample each.
fn remote_write_samples() -> Vec<Sample> {
    (0..SERIES)
        .map(|i| Sample {
            metric: format!("http_requests_total_{}", i % 200),
            labels: vec![
                ("code".into(), ["200", "404", "500"][i % 3].into()),
                ("handler".into(), format!("/api/v1/h{}", i % 50)),
                ("instance".into(), "10.0.0.1:9090".into()),
                ("job".into(), "api".into()),
                ("method".into(), "GET".into()),
            ],
            timestamp_ms: 1_700_000_000_000 + i as i64,
            value: i as f64,
        })
        .collect()
}

fn bench_influx(c: &mut Criterion<ThreadCpu>) {
    let body = influx_body();
    let n = influx::decode(&body, influx::Precision::Nanoseconds, 0)
        .samples
        .len();
    let mut g = c.benchmark_group("influx");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("decode", |b| {
        b.iter(|| influx::decode(&body, influx::Precision::Nanoseconds, 0))
    });
    g.finish();
}

fn bench_remote_write(c: &mut Criterion<ThreadCpu>) {
    let body = remote_write::encode(&remote_write_samples());
    let n = remote_write::decode(&body).map_or(0, |s| s.len());
    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("decode", |b| b.iter(|| remote_write::decode(&body)));
    // Borrowed samples, each hashed to its series_id, as a pipeline writing columns would.
    g.bench_function("decode_each_series_id", |b| {
        let mut key = String::new();
        b.iter(|| {
            let mut acc = 0u64;
            let n = remote_write::decode_each(&body, usize::MAX, |s| {
                key.clear();
                series::write_series_key(&mut key, s.metric, s.labels);
                acc ^= series::series_id_of_key(&key);
            });
            (n, acc)
        })
    });
    // The same body through prost messages, for comparison with the zero-copy reader.
    g.bench_function("decode_via_prost", |b| {
        b.iter(|| {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(&body)
                .unwrap_or_default();
            remote_write::decode_message(&raw).and_then(remote_write::to_samples)
        })
    });
    g.finish();
}

/// OTLP: the remote_write samples as gauges, one metric per 100 points (protobuf body).
fn bench_otlp(c: &mut Criterion<ThreadCpu>) {
    use otlp::messages::*;
    let samples = remote_write_samples();
    let attr = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            string_value: Some(v.into()),
            ..AnyValue::default()
        }),
    };
    let metrics = samples
        .chunks(100)
        .map(|chunk| Metric {
            name: chunk[0].metric.clone(),
            gauge: Some(Gauge {
                data_points: chunk
                    .iter()
                    .map(|s| NumberDataPoint {
                        attributes: s.labels.iter().map(|(k, v)| attr(k, v)).collect(),
                        time_unix_nano: s.timestamp_ms as u64 * 1_000_000,
                        as_double: Some(s.value),
                        ..NumberDataPoint::default()
                    })
                    .collect(),
                ..Gauge::default()
            }),
            ..Metric::default()
        })
        .collect();
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "bench")],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
            }],
        }],
    };
    let body = prost::Message::encode_to_vec(&request);
    let json = otlp_json(&samples);
    let n = otlp::decode_protobuf(&body).map_or(0, |s| s.len());
    let opts = otlp::OtlpOptions::default();
    let mut g = c.benchmark_group("otlp");
    g.throughput(Throughput::Elements(n as u64));
    // Owned samples: one copy of the labels per sample.
    g.bench_function("decode_protobuf", |b| {
        b.iter(|| otlp::decode_protobuf(&body))
    });
    // Into a sink (as the gateway's SamplesBuilder gets them): each point's labels once.
    g.bench_function("decode_protobuf_to_sink", |b| {
        let pb = otlp::Encoding::Protobuf;
        b.iter(|| otlp::decode_to(pb, &body, &opts, &mut CountingSink::default()))
    });
    // The same through prost's owned messages (the reference decoder the reader replaced).
    g.bench_function("decode_protobuf_to_sink_prost", |b| {
        b.iter(|| otlp::decode_to_prost(&body, &opts, &mut CountingSink::default()))
    });
    g.bench_function("decode_json_to_sink", |b| {
        let js = otlp::Encoding::Json;
        b.iter(|| otlp::decode_to(js, &json, &opts, &mut CountingSink::default()))
    });
    g.finish();
}

/// Counts what it is handed and touches every label, as a consumer would.
#[derive(Default)]
struct CountingSink {
    label_bytes: usize,
    samples: usize,
}

impl SampleSink for CountingSink {
    fn labels<N: AsRef<str>, V: AsRef<str>>(&mut self, labels: &[(N, V)]) {
        let bytes = labels
            .iter()
            .map(|(n, v)| n.as_ref().len() + v.as_ref().len());
        self.label_bytes += bytes.sum::<usize>();
    }
    fn sample(&mut self, metric: &str, _timestamp_ms: i64, value: f64) {
        self.samples += metric.len() + usize::from(value.is_nan());
    }
}

/// The OTLP JSON form of the bench's request: `samples` as gauges, one metric per 100 points.
fn otlp_json(samples: &[Sample]) -> Vec<u8> {
    use serde_json::json;
    let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    let metrics: Vec<_> = samples
        .chunks(100)
        .map(|chunk| {
            let points: Vec<_> = chunk
                .iter()
                .map(|s| {
                    let attrs: Vec<_> = s.labels.iter().map(|(k, v)| attr(k, v)).collect();
                    let ns = s.timestamp_ms as u64 * 1_000_000;
                    json!({"timeUnixNano": ns.to_string(), "asDouble": s.value, "attributes": attrs})
                })
                .collect();
            json!({"name": chunk[0].metric, "gauge": {"dataPoints": points}})
        })
        .collect();
    let resource = json!({"attributes": [attr("service.name", "bench")]});
    let request = json!({"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": metrics}]}]});
    serde_json::to_vec(&request).unwrap_or_default()
}

fn bench_series_id(c: &mut Criterion<ThreadCpu>) {
    let samples = remote_write_samples();
    let mut g = c.benchmark_group("series");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function("series_id", |b| {
        let mut key = String::new();
        b.iter(|| {
            samples.iter().fold(0u64, |acc, s| {
                key.clear();
                series::write_series_key(&mut key, &s.metric, &s.labels);
                acc ^ series::series_id_of_key(&key)
            })
        })
    });
    g.finish();
}

/// The captured real-client bodies (`../shared/fixtures/real-clients`), when present.
fn bench_fixtures(c: &mut Criterion<ThreadCpu>) {
    let dir = std::env::var_os("CHGATE_FIXTURES").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/fixtures/real-clients")
        },
        std::path::PathBuf::from,
    );
    let read = |name: &str| std::fs::read(dir.join(name)).ok();
    let mut g = c.benchmark_group("fixture");
    if let Some(body) = read("prometheus-2.42-remote-write.snappy.pb") {
        let n = remote_write::decode(&body).map_or(0, |s| s.len());
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("prometheus_remote_write", |b| {
            b.iter(|| remote_write::decode(&body))
        });
    }
    if let Some(body) = read("influxdb-client-1.50-v2-write.lp") {
        let text = String::from_utf8_lossy(&body).into_owned();
        let n = influx::decode(&text, influx::Precision::Nanoseconds, 0)
            .samples
            .len();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("influxdb_client_lp", |b| {
            b.iter(|| influx::decode(&text, influx::Precision::Nanoseconds, 0))
        });
    }
    if let Some(body) = read("otel-python-1.45-otlp-http-metrics.pb") {
        let n = otlp::decode_protobuf(&body).map_or(0, |s| s.len());
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("otel_python_otlp", |b| {
            b.iter(|| otlp::decode_protobuf(&body))
        });
        let (pb, opts) = (otlp::Encoding::Protobuf, otlp::OtlpOptions::default());
        g.bench_function("otel_python_otlp_to_sink", |b| {
            b.iter(|| otlp::decode_to(pb, &body, &opts, &mut CountingSink::default()))
        });
        g.bench_function("otel_python_otlp_to_sink_prost", |b| {
            b.iter(|| otlp::decode_to_prost(&body, &opts, &mut CountingSink::default()))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = cpu();
    targets = bench_influx, bench_remote_write, bench_otlp, bench_series_id, bench_fixtures
}
criterion_main!(benches);
