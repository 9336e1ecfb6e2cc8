//! Prometheus remote_write (`POST /api/v1/write`, snappy protobuf): mutated real Prometheus
//! bodies (compressed and uncompressed), truncated snappy, snappy length bombs, huge label sets,
//! invalid UTF-8 in labels, NaN/Inf, extreme timestamps, SQL in metric names.

use chgate_gateway::protocol::remote_write::{self, Label, PromSample, TimeSeries, WriteRequest};
use chgate_gateway::protocol::Sample;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::Rng;

use crate::gen::{self, nasty};
use crate::{assert_canaries, fixture, post, Case, Suite, CASES};

const CANARY: &str = "canary_remote_write";

fn req(body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    post(
        "/api/v1/write",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "snappy"),
            ("x-prometheus-remote-write-version", "0.1.0"),
        ],
        body,
    )
}

fn series(name: &str, labels: Vec<(String, String)>, samples: Vec<(f64, i64)>) -> TimeSeries {
    let mut l = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    l.extend(
        labels
            .into_iter()
            .map(|(name, value)| Label { name, value }),
    );
    TimeSeries {
        labels: l,
        samples: samples
            .into_iter()
            .map(|(value, timestamp)| PromSample { value, timestamp })
            .collect(),
    }
}

fn encode(ts: Vec<TimeSeries>) -> Vec<u8> {
    gen::snappy(&WriteRequest { timeseries: ts }.encode_to_vec())
}

/// A protobuf `Label` whose name bytes are not UTF-8 (prost's encoder cannot produce one).
fn raw_label_series(bad: &[u8]) -> Vec<u8> {
    fn field(tag: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        prost::encoding::encode_varint(data.len() as u64, &mut out);
        out.extend_from_slice(data);
        out
    }
    let name = [field(0x0a, b"__name__"), field(0x12, b"m")].concat();
    let evil = [field(0x0a, bad), field(0x12, b"v")].concat();
    let sample = [vec![0x09], 1.0f64.to_le_bytes().to_vec(), vec![0x10, 0x01]].concat();
    let ts = [field(0x0a, &name), field(0x0a, &evil), field(0x12, &sample)].concat();
    field(0x0a, &ts)
}

pub fn generate(rng: &mut StdRng, i: usize, seed_raw: &[u8], seed: &[u8]) -> Case {
    if i.is_multiple_of(50) {
        let samples = vec![
            Sample {
                metric: CANARY.into(),
                labels: vec![("i".into(), i.to_string())],
                timestamp_ms: 1_700_000_000_000 + i as i64,
                value: i as f64,
            },
            Sample {
                metric: CANARY.into(),
                labels: vec![("i".into(), i.to_string()), ("k".into(), "b".into())],
                timestamp_ms: 1_700_000_000_000 + i as i64,
                value: f64::NAN,
            },
        ];
        return Case {
            kind: "canary",
            request: req(remote_write::encode(&samples)),
            canary_rows: Some(2),
        };
    }
    let (kind, body): (&'static str, Vec<u8>) = match rng.gen_range(0..12) {
        0..=1 => ("mutated_snappy", gen::mutate(rng, seed)),
        2..=3 => ("mutated_protobuf", gen::snappy(&gen::mutate(rng, seed_raw))),
        4 => {
            let cut = rng.gen_range(0..seed.len());
            ("truncated_snappy", seed[..cut].to_vec())
        }
        5 => ("arbitrary_bytes", gen::bytes(rng, 4096)),
        6 => {
            // Snappy header claiming up to 4 GiB, then garbage: must stop at the length check.
            let mut b = Vec::new();
            prost::encoding::encode_varint(rng.gen_range(1u64 << 21..1 << 32), &mut b);
            b.extend(gen::bytes(rng, 64));
            ("snappy_length_bomb", b)
        }
        7 => {
            let labels = (0..rng.gen_range(500..3000))
                .map(|l| (format!("l{l:05}"), "v".repeat(l % 40)))
                .collect();
            (
                "huge_label_set",
                encode(vec![series("m", labels, vec![(1.0, 1_700_000_000_000)])]),
            )
        }
        8 => (
            "invalid_utf8_label",
            gen::snappy(&raw_label_series(gen::INVALID_UTF8[i % 6])),
        ),
        9 => {
            let v = [
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::MAX,
                f64::MIN_POSITIVE,
            ][i % 5];
            (
                "nan_inf",
                encode(vec![series(
                    "nan_probe",
                    vec![],
                    vec![(v, 1_700_000_000_000)],
                )]),
            )
        }
        10 => {
            let t = [
                i64::MAX,
                i64::MIN,
                -1,
                0,
                253_402_300_800_000,
                -62_135_596_800_000,
            ][i % 6];
            (
                "timestamp_out_of_range",
                encode(vec![series("ts_probe", vec![], vec![(1.0, t)])]),
            )
        }
        _ => {
            let labels = vec![(nasty(rng).to_owned(), nasty(rng).to_owned())];
            let name = format!("m{}", nasty(rng));
            (
                "sql_in_identifiers",
                encode(vec![series(&name, labels, vec![(1.0, 1_700_000_000_000)])]),
            )
        }
    };
    Case::hostile(kind, req(body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_hostile_inputs() {
    let suite = Suite::new("hostile_rw").await;
    let seed = fixture("prometheus-2.42-remote-write.snappy.pb");
    let seed_raw = snap::raw::Decoder::new()
        .decompress_vec(&seed)
        .expect("fixture is snappy");
    let report = suite
        .run("remote_write", 0x2e2e, CASES, |rng, i| {
            generate(rng, i, &seed_raw, &seed)
        })
        .await;
    assert_canaries(&report, suite.metric_rows(CANARY).await);
}
