//! NDJSON (`POST /ingest/{db}/{table}`): mutated rows, deep JSON, giant lines, invalid UTF-8,
//! NaN/Inf, out-of-range timestamps, SQL in column names, path tricks and system tables in the
//! URL, wrong content types.

use rand::rngs::StdRng;
use rand::Rng;

use crate::gen::{self, nasty};
use crate::{assert_canaries, post, Case, Suite, CASES, MAX_BODY};

const CANARY: &str = "canary_ndjson";

fn req(path: &str, body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    post(path, &[("content-type", "application/x-ndjson")], body)
}

fn row(metric: &str, id: usize, ts: &str, value: &str) -> String {
    format!(
        "{{\"metric\":{},\"series_id\":{id},\"timestamp\":{ts},\"value\":{value}}}\n",
        serde_json::to_string(metric).unwrap_or_default()
    )
}

pub fn generate(rng: &mut StdRng, i: usize, db: &str) -> Case {
    let path = format!("/ingest/{db}/samples");
    if i.is_multiple_of(50) {
        let body = row(
            CANARY,
            i,
            &format!("{}", 1_700_000_000 + i),
            &format!("{i}.5"),
        ) + &row(CANARY, i + 1, "1700000000", "-1");
        return Case {
            kind: "canary",
            request: req(&path, body.into_bytes()),
            canary_rows: Some(2),
        };
    }
    let good = row("m", i, "1700000000", "1");
    let (kind, p, body): (&'static str, String, Vec<u8>) = match rng.gen_range(0..11) {
        0..=2 => (
            "mutated_rows",
            path,
            gen::mutate(rng, good.repeat(3).as_bytes()),
        ),
        3 => ("arbitrary_bytes", path, gen::bytes(rng, 4096)),
        4 => (
            "deep_json",
            path,
            gen::deep_json(rng.gen_range(100..200_000), i.is_multiple_of(2)).into_bytes(),
        ),
        5 => {
            let n = rng.gen_range(100_000..MAX_BODY - 200);
            (
                "giant_line",
                path,
                row(&"x".repeat(n), i, "1700000000", "1").into_bytes(),
            )
        }
        6 => {
            let mut b = good.clone().into_bytes();
            b.splice(12..12, gen::INVALID_UTF8[i % 6].iter().copied());
            ("invalid_utf8", path, b)
        }
        7 => {
            let v = [
                "NaN",
                "Infinity",
                "-Infinity",
                "1e400",
                "\"NaN\"",
                "\"inf\"",
                "null",
            ][i % 7];
            (
                "nan_inf",
                path,
                row("nan_probe", i, "1700000000", v).into_bytes(),
            )
        }
        8 => {
            let ts = [
                "-1",
                "99999999999",
                "1e20",
                "\"9999-99-99 99:99:99\"",
                "18446744073709551616",
                "\"\"",
            ][i % 6];
            (
                "timestamp_out_of_range",
                path,
                row("ts_probe", i, ts, "1").into_bytes(),
            )
        }
        9 => {
            let col = serde_json::to_string(nasty(rng)).unwrap_or_default();
            (
                "sql_in_column_names",
                path,
                format!("{{{col}:1}}\n").into_bytes(),
            )
        }
        _ => {
            let table = [
                "..%2F..%2Fsystem%2Ftables",
                "samples%00",
                "samples;DROP%20TABLE%20samples",
                "%60samples%60",
                "..",
                "samples%2F..%2F..",
                "information_schema",
            ][i % 7];
            let db_part = if i.is_multiple_of(3) { "system" } else { db };
            let long = "t".repeat(rng.gen_range(200..5000));
            let t = if i.is_multiple_of(11) {
                long.as_str()
            } else {
                table
            };
            (
                "path_tricks",
                format!("/ingest/{db_part}/{t}"),
                good.into_bytes(),
            )
        }
    };
    Case::hostile(kind, req(&p, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_hostile_inputs() {
    let suite = Suite::new("hostile_ndjson").await;
    let db = suite.db.clone();
    let report = suite
        .run("ndjson", 0x3d3d, CASES, |rng, i| generate(rng, i, &db))
        .await;
    assert_canaries(&report, suite.metric_rows(CANARY).await);
    let system = report.kinds.get("path_tricks").expect("ran");
    assert_eq!(system.1, 0, "no path trick was accepted");
}
