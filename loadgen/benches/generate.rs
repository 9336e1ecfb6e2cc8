//! Generator throughput (samples/s) per protocol into a discarded buffer; run with
//! `cargo bench -p chgate-loadgen --bench generate`. Benchmarks only, no timing asserts.
#![allow(missing_docs)]

use chgate_loadgen::body::{Encoder, Protocol};
use chgate_loadgen::data::{DataConfig, Generator};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ROWS: usize = 100_000;

fn generator() -> Generator {
    Generator::new(DataConfig {
        hosts: 1_000,
        prefix: "lg_bench_".into(),
        ..DataConfig::default()
    })
    .expect("valid config")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("generate");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(20);
    let mut gen = generator();
    let mut buf = Vec::with_capacity(ROWS * 50);
    g.bench_function("line_protocol_render", |b| {
        b.iter(|| {
            buf.clear();
            std::hint::black_box(gen.render_lines(ROWS, &mut buf));
        })
    });
    for protocol in [
        Protocol::RemoteWrite,
        Protocol::Ndjson,
        Protocol::Otlp,
        Protocol::Arrow,
    ] {
        let mut enc = Encoder::Gateway {
            protocol,
            database: "metrics".into(),
        };
        let mut gen = generator();
        g.bench_function(format!("{protocol:?}"), |b| {
            b.iter(|| std::hint::black_box(enc.next(&mut gen, ROWS)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
