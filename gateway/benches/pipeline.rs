//! Parse + encode throughput (samples/s per core) of the gateway's hot path, without the
//! network: request body → decoder → rows for the samples/series tables → Native (or RowBinary)
//! bytes. Run with `cargo bench -p chgate-gateway --bench pipeline`. Benchmarks only, no timing
//! asserts.
//!
//! - Time is the benchmark thread's CPU time (see `common`), so figures are per core.
//! - The global allocator is mimalloc, as in the `chgate` binary that runs the gateway.
//! - `steady` = the gateway's normal state: every series was written within `series_refresh`,
//!   so the series cache skips series rows and a request becomes sample rows only. `cold` =
//!   every series is new: each also gets its series row (label arrays) encoded.
//! - `remote_write` is one request of 100k samples; `remote_write_2k_requests` the same samples
//!   as Prometheus sends them by default (`max_samples_per_send` = 2,000), each request decoded
//!   and encoded on its own as the gateway does.
#![allow(missing_docs)]

use chgate_gateway::catalog::TableSchema;
use chgate_gateway::encode::{encode, encode_block, Format};
use std::time::Duration;

use chgate_gateway::ingest::{
    CachedSeries, IdSet, SampleRows, SamplesBuilder, SeriesCache, SeriesFilter,
};
use chgate_gateway::protocol::{influx, remote_write};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;
use common::{cpu, ThreadCpu};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LINES: usize = 10_000;

fn table(name: &str, cols: &[(&str, &str)]) -> TableSchema {
    TableSchema::from_columns("metrics", name, "Distributed", cols).expect("supported types")
}

/// The shipped schema (migrations/SCHEMA.md): modern (>= 20.1) or fallback (18.16, the rig).
fn schemas(modern: bool) -> (TableSchema, TableSchema) {
    let (lc, time) = if modern {
        ("LowCardinality(String)", "DateTime64(3, 'UTC')")
    } else {
        ("String", "DateTime('UTC')")
    };
    let names = if modern {
        "Array(LowCardinality(String))"
    } else {
        "Array(String)"
    };
    let samples = table(
        "samples",
        &[
            ("tenant", lc),
            ("metric", lc),
            ("series_id", "UInt64"),
            ("timestamp", time),
            ("value", "Float64"),
        ],
    );
    let series = table(
        "series",
        &[
            ("tenant", lc),
            ("metric", lc),
            ("series_id", "UInt64"),
            ("label_names", names),
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

/// Encodes both tables' rows; returns the bytes produced.
fn encode_rows(format: Format, rows: &SampleRows) -> usize {
    let s = encode_block(format, &rows.samples.columns, &rows.samples.block).len();
    let r = if rows.series.rows.is_empty() {
        0
    } else {
        encode(format, &rows.series.columns, &rows.series.rows).len()
    };
    s + r
}

/// What decides whether a series row is written: the gateway's series cache, warmed up
/// (`steady`), or a fresh per-request set (`cold`).
enum Series {
    Steady(SeriesCache),
    Cold,
}

impl Series {
    fn warm(body: &Input, schemas: &(TableSchema, TableSchema)) -> Self {
        let cache = SeriesCache::new(Duration::from_secs(600), 1 << 22);
        build(
            body,
            schemas,
            &mut CachedSeries {
                cache: &cache,
                salt: 0,
                now_ms: 0,
            },
        );
        Series::Steady(cache)
    }
}

enum Input {
    Influx(Vec<u8>),
    RemoteWrite(Vec<u8>),
    /// The same samples in requests of [`PROMETHEUS_BATCH`] samples, each its own request.
    RemoteWriteRequests(Vec<Vec<u8>>),
}

/// Prometheus's default `queue_config.max_samples_per_send`.
const PROMETHEUS_BATCH: usize = 2_000;

fn build(
    input: &Input,
    schemas: &(TableSchema, TableSchema),
    want: &mut dyn SeriesFilter,
) -> SampleRows {
    match input {
        Input::Influx(body) => build_one(false, body, schemas, want),
        Input::RemoteWrite(body) => build_one(true, body, schemas, want),
        Input::RemoteWriteRequests(bodies) => {
            // Warming up: every request's series enter the caches.
            let mut last = None;
            for body in bodies {
                last = Some(build_one(true, body, schemas, want));
            }
            last.expect("at least one request")
        }
    }
}

/// One request body → rows.
fn build_one(
    remote: bool,
    body: &[u8],
    schemas: &(TableSchema, TableSchema),
    want: &mut dyn SeriesFilter,
) -> SampleRows {
    let mut b = SamplesBuilder::new((&schemas.0, &schemas.1), "", 0, want);
    if remote {
        b.reserve(remote_write::samples_hint(body));
        remote_write::decode_to(body, usize::MAX, &mut b).expect("decodes");
    } else {
        b.reserve(body.len() / 40);
        let report = influx::decode_bytes_to(body, influx::Precision::Nanoseconds, 0, &mut b);
        assert!(report.errors.is_empty());
    }
    b.finish()
}

/// Every request of `input`: body → rows → encoded blocks; returns the bytes produced.
fn once(
    input: &Input,
    schemas: &(TableSchema, TableSchema),
    series: &Series,
    format: Format,
) -> usize {
    match input {
        Input::Influx(body) => request(false, body, schemas, series, format),
        Input::RemoteWrite(body) => request(true, body, schemas, series, format),
        Input::RemoteWriteRequests(bodies) => bodies
            .iter()
            .map(|body| request(true, body, schemas, series, format))
            .sum(),
    }
}

/// One request: body → rows → encoded blocks; returns the bytes produced.
fn request(
    remote: bool,
    body: &[u8],
    schemas: &(TableSchema, TableSchema),
    series: &Series,
    format: Format,
) -> usize {
    let rows = match series {
        Series::Steady(cache) => build_one(
            remote,
            body,
            schemas,
            &mut CachedSeries {
                cache,
                salt: 0,
                now_ms: 0,
            },
        ),
        Series::Cold => {
            let mut seen = IdSet::default();
            build_one(remote, body, schemas, &mut |id| seen.insert(id))
        }
    };
    encode_rows(format, &rows)
}

fn bench(c: &mut Criterion<ThreadCpu>) {
    let body = influx_body();
    let samples = influx::decode(&body, influx::Precision::Nanoseconds, 0).samples;
    let inputs = [
        ("influx", Input::Influx(body.into_bytes())),
        (
            "remote_write",
            Input::RemoteWrite(remote_write::encode(&samples)),
        ),
        (
            "remote_write_2k_requests",
            Input::RemoteWriteRequests(
                samples
                    .chunks(PROMETHEUS_BATCH)
                    .map(remote_write::encode)
                    .collect(),
            ),
        ),
    ];
    let mut g = c.benchmark_group("parse_encode");
    g.throughput(Throughput::Elements(samples.len() as u64));
    for (name, modern) in [("modern", true), ("fallback", false)] {
        let s = schemas(modern);
        for (proto, input) in &inputs {
            let steady = Series::warm(input, &s);
            g.bench_function(format!("{proto}_to_Native/{name}/steady"), |b| {
                b.iter(|| once(input, &s, &steady, Format::Native))
            });
        }
    }
    let s = schemas(true);
    for (proto, input) in &inputs {
        g.bench_function(format!("{proto}_to_Native/modern/cold"), |b| {
            b.iter(|| once(input, &s, &Series::Cold, Format::Native))
        });
    }
    let steady = Series::warm(&inputs[0].1, &s);
    g.bench_function("influx_to_RowBinary/modern/steady", |b| {
        b.iter(|| once(&inputs[0].1, &s, &steady, Format::RowBinary))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cpu();
    targets = bench
}
criterion_main!(benches);
