//! Parse + encode throughput (samples/s) of the gateway's hot path, without the network:
//! request body → decoder → rows for the samples/series tables → Native (or RowBinary) bytes.
//! Run with `cargo bench -p chgate-gateway --bench pipeline`. Benchmarks only, no timing asserts.
#![allow(missing_docs)]

use chgate_gateway::catalog::TableSchema;
use chgate_gateway::encode::{encode, Format};
use chgate_gateway::ingest::samples_rows;
use chgate_gateway::protocol::{influx, remote_write, Sample};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const LINES: usize = 10_000;

fn table(name: &str, cols: &[(&str, &str)]) -> TableSchema {
    TableSchema::from_columns("metrics", name, "Distributed", cols).expect("supported types")
}

/// The modern shipped schema (migrations/SCHEMA.md).
fn schemas() -> (TableSchema, TableSchema) {
    let samples = table(
        "samples",
        &[
            ("tenant", "LowCardinality(String)"),
            ("metric", "LowCardinality(String)"),
            ("series_id", "UInt64"),
            ("timestamp", "DateTime64(3, 'UTC')"),
            ("value", "Float64"),
        ],
    );
    let series = table(
        "series",
        &[
            ("tenant", "LowCardinality(String)"),
            ("metric", "LowCardinality(String)"),
            ("series_id", "UInt64"),
            ("label_names", "Array(LowCardinality(String))"),
            ("label_values", "Array(String)"),
            ("last_seen", "DateTime('UTC')"),
        ],
    );
    (samples, series)
}

/// TSBS-like line protocol: 10 tags, 10 fields a line → 10 samples a line.
fn influx_body() -> String {
    let mut body = String::new();
    for i in 0..LINES {
        body.push_str(&format!(
            "cpu,hostname=host_{},region=eu-west-{},datacenter=eu-west-{}a,rack={},os=Ubuntu16.04LTS,arch=x64,team=SF,service={},service_version=1,service_environment=production \
             usage_user={}.5,usage_system=2.1,usage_idle=90,usage_nice=0,usage_iowait=1.25,usage_irq=0,usage_softirq=0.5,usage_steal=0,usage_guest=0,usage_guest_nice=0 {}\n",
            i % 1000,
            i % 3,
            i % 3,
            i % 100,
            i % 20,
            i % 100,
            1_700_000_000_000_000_000i64 + i as i64 * 10_000_000_000
        ));
    }
    body
}

fn bench(c: &mut Criterion) {
    let (samples_schema, series_schema) = schemas();
    let body = influx_body();
    let n = influx::decode(&body, influx::Precision::Nanoseconds, 0)
        .samples
        .len();
    let mut g = c.benchmark_group("parse_encode");
    g.throughput(Throughput::Elements(n as u64));
    for format in [Format::Native, Format::RowBinary] {
        g.bench_function(format!("influx_to_{}", format.as_sql()), |b| {
            b.iter(|| {
                let batch = influx::decode(&body, influx::Precision::Nanoseconds, 0);
                let (s, r) = samples_rows(&batch.samples, "", &samples_schema, &series_schema, 0);
                (
                    encode(format, &s.columns, &s.rows).len(),
                    encode(format, &r.columns, &r.rows).len(),
                )
            })
        });
    }
    let samples: Vec<Sample> = influx::decode(&body, influx::Precision::Nanoseconds, 0).samples;
    let rw = remote_write::encode(&samples);
    g.bench_function("remote_write_to_Native", |b| {
        b.iter(|| {
            let decoded = remote_write::decode(&rw).expect("decodes");
            let (s, r) = samples_rows(&decoded, "", &samples_schema, &series_schema, 0);
            (
                encode(Format::Native, &s.columns, &s.rows).len(),
                encode(Format::Native, &r.columns, &r.rows).len(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
