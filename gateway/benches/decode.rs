//! Decode throughput (samples/s) of the protocol decoders; run with
//! `cargo bench -p chgate-gateway --bench decode`. Benchmarks only, no timing asserts.
#![allow(missing_docs)]

use chgate_gateway::protocol::{influx, remote_write, series, Sample};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

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

fn bench_influx(c: &mut Criterion) {
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

fn bench_remote_write(c: &mut Criterion) {
    let body = remote_write::encode(&remote_write_samples());
    let n = remote_write::decode(&body).map_or(0, |s| s.len());
    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("decode", |b| b.iter(|| remote_write::decode(&body)));
    g.finish();
}

fn bench_series_id(c: &mut Criterion) {
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

criterion_group!(benches, bench_influx, bench_remote_write, bench_series_id);
criterion_main!(benches);
