//! Arrow IPC stream (`POST /ingest/{db}/{table}`): mutated and truncated streams, arbitrary
//! bytes, huge declared message lengths, mismatched schemas.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use rand::rngs::StdRng;
use rand::Rng;

use crate::gen;
use crate::{assert_canaries, post, Case, Suite, CASES};

const CANARY: &str = "canary_arrow";

fn req(db: &str, body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    post(
        &format!("/ingest/{db}/samples"),
        &[("content-type", "application/vnd.apache.arrow.stream")],
        body,
    )
}

/// An Arrow stream of `n` sample rows named `metric`, ids from `first`.
fn stream(metric: &str, first: u64, n: usize) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Utf8, false),
        Field::new("series_id", DataType::UInt64, false),
        Field::new("timestamp", DataType::UInt32, false),
        Field::new("value", DataType::Float64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![metric; n])),
        Arc::new(UInt64Array::from_iter_values(
            (0..n as u64).map(|k| first + k),
        )),
        Arc::new(UInt32Array::from_iter_values(
            (0..n as u32).map(|k| 1_700_000_000 + k),
        )),
        Arc::new(Float64Array::from_iter_values(
            (0..n).map(|k| k as f64 + 0.5),
        )),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
    let mut out = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).expect("writer");
        w.write(&batch).expect("write");
        w.finish().expect("finish");
    }
    out
}

/// A stream whose columns have types the table does not.
fn mismatched() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Float64, false),
        Field::new("series_id", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(vec![1.0, f64::NAN])),
        Arc::new(StringArray::from(vec![Some("'; DROP TABLE x"), None])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
    let mut out = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).expect("writer");
        w.write(&batch).expect("write");
        w.finish().expect("finish");
    }
    out
}

fn generate(rng: &mut StdRng, i: usize, db: &str, seed: &[u8], wrong: &[u8]) -> Case {
    if i.is_multiple_of(50) {
        return Case {
            kind: "canary",
            request: req(db, stream(CANARY, i as u64 * 10, 3)),
            canary_rows: Some(3),
        };
    }
    let body = match rng.gen_range(0..7) {
        0..=2 => ("mutated_stream", gen::mutate(rng, seed)),
        3 => {
            let cut = rng.gen_range(0..seed.len());
            ("truncated_stream", seed[..cut].to_vec())
        }
        4 => ("arbitrary_bytes", gen::bytes(rng, 4096)),
        5 => {
            // Continuation marker and a message length near 4 GiB.
            let mut b = vec![0xff, 0xff, 0xff, 0xff];
            b.extend_from_slice(&rng.gen_range(1u32 << 24..u32::MAX).to_le_bytes());
            b.extend(gen::bytes(rng, 256));
            ("huge_declared_length", b)
        }
        _ => ("mismatched_schema", gen::mutate(rng, wrong)),
    };
    Case::hostile(body.0, req(db, body.1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_hostile_inputs() {
    let suite = Suite::new("hostile_arrow").await;
    let db = suite.db.clone();
    let seed = stream("seed", 1, 20);
    let wrong = mismatched();
    let report = suite
        .run("arrow", 0x4a4a, CASES, |rng, i| {
            generate(rng, i, &db, &seed, &wrong)
        })
        .await;
    assert_canaries(&report, suite.metric_rows(CANARY).await);
}
