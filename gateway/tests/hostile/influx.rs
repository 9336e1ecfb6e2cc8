//! Influx line protocol (`POST /write`): mutated real client bodies, giant lines, huge tag sets,
//! invalid UTF-8, NaN/Inf, out-of-range timestamps, SQL in names; good lines beside bad ones.

use rand::rngs::StdRng;
use rand::Rng;

use crate::gen::{self, nasty};
use crate::{assert_canaries, fixture, post, Case, Suite, CASES, MAX_BODY};

const CANARY: &str = "canary_influx";

fn write(q: &str, body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    post(&format!("/write{q}"), &[], body)
}

pub fn generate(rng: &mut StdRng, i: usize, seed: &[u8]) -> Case {
    if i.is_multiple_of(50) {
        let body = format!(
            "{CANARY},i={i} value={i} 1700000000{:03}\n{CANARY},i={i},k=b value=-{i}.5 1700000000{:03}\n",
            i % 1000,
            i % 1000
        );
        return Case {
            kind: "canary",
            request: write("?precision=ms", body.into_bytes()),
            canary_rows: Some(2),
        };
    }
    if i % 50 == 25 {
        // A good line between bad ones: written, then 400 "partial write".
        let body = format!(
            "bad line without fields\n{CANARY},i={i},mixed=1 value=1 1700000000000\nm value=\"str\" x\n"
        );
        return Case {
            kind: "canary_beside_bad",
            request: write("?precision=ms", body.into_bytes()),
            canary_rows: None,
        };
    }
    let (kind, body): (&'static str, Vec<u8>) = match rng.gen_range(0..11) {
        0..=2 => ("mutated_client_body", gen::mutate(rng, seed)),
        3 => ("arbitrary_bytes", gen::bytes(rng, 4096)),
        4 => {
            // Mostly unparsable (no field set, unterminated string); one in ten is a valid line
            // with a huge name, written like any other.
            let n = rng.gen_range(100_000..MAX_BODY - 100);
            let tail =
                ["", " value=\"open", " =1", " value=1"][if i % 10 == 4 { 3 } else { i % 3 }];
            (
                "giant_line",
                format!("{}{tail}\n", "m".repeat(n)).into_bytes(),
            )
        }
        5 => {
            // Every other one repeats a tag key (invalid); the rest are valid huge series.
            let n = rng.gen_range(500..5_000);
            let tags: String = (0..n).map(|t| format!(",t{t}=v{t}")).collect();
            let dup = if i.is_multiple_of(2) { ",t0=again" } else { "" };
            (
                "huge_tag_set",
                format!("m{tags}{dup} value=1 1700000000000000000\n").into_bytes(),
            )
        }
        6 => {
            let mut b = b"m,host=".to_vec();
            b.extend_from_slice(gen::INVALID_UTF8[i % gen::INVALID_UTF8.len()]);
            b.extend_from_slice(b" value=1\n");
            ("invalid_utf8", b)
        }
        7 => {
            let v = [
                "NaN", "inf", "-Inf", "1e400", "-1e400", "nan", "Infinity", "0x10",
            ][i % 8];
            (
                "nan_inf",
                format!("m value={v} 1700000000000000000\n").into_bytes(),
            )
        }
        8 => {
            let ts = [
                "99999999999999999999",
                "-99999999999999999999",
                "9223372036854775807",
                "-9223372036854775808",
                "18446744073709551615",
                "1e18",
            ][i % 6];
            (
                "timestamp_out_of_range",
                format!("m value=1 {ts}\n").into_bytes(),
            )
        }
        9 => {
            let body = format!(
                "{},{}={} {}=1\n",
                nasty(rng).replace([' ', ',', '\n'], "\\ "),
                nasty(rng).replace([' ', ',', '=', '\n'], "_"),
                nasty(rng).replace([' ', ',', '=', '\n'], "_"),
                nasty(rng).replace([' ', ',', '=', '\n'], "_"),
            );
            ("sql_in_identifiers", body.into_bytes())
        }
        _ => {
            let q = [
                "?precision=zz",
                "?precision=",
                "?precision=%00",
                "?db=system&precision=ns",
            ][i % 4];
            return Case::hostile("bad_query_string", write(q, gen::mutate(rng, seed)));
        }
    };
    Case::hostile(kind, write("", body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_hostile_inputs() {
    let suite = Suite::new("hostile_influx").await;
    let seed = fixture("influxdb-client-1.50-v2-write.lp");
    let report = suite
        .run("influx", 0x1f1f, CASES, |rng, i| generate(rng, i, &seed))
        .await;
    // Canaries plus the good line of every "canary_beside_bad" case.
    let beside = report.kinds.get("canary_beside_bad").map_or(0, |k| k.0) as u64;
    let counted = suite.metric_rows(CANARY).await;
    assert_canaries(&report, counted.saturating_sub(beside));
    assert_eq!(
        report.kinds.get("canary_beside_bad").map(|k| k.2),
        Some(beside as usize),
        "partial writes answer 400"
    );
}
