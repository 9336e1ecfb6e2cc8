//! Body encodings (`Content-Encoding` gzip, deflate, zstd, snappy) on the Influx endpoint:
//! truncated and corrupted streams, decompression bombs far over the limit (413), unknown
//! encodings (415), and good compressed bodies beside them.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::Rng;

use crate::gen;
use crate::{assert_canaries, post, Case, Suite, CASES, MAX_BODY};

const CANARY: &str = "canary_encoding";

const ENCODINGS: &[&str] = &["gzip", "deflate", "zstd", "snappy"];

fn compress(enc: &str, data: &[u8]) -> Vec<u8> {
    match enc {
        "gzip" => gen::gzip(data),
        "deflate" => gen::deflate(data),
        "zstd" => gen::zstd(data),
        _ => gen::snappy(data),
    }
}

fn req(enc: &str, body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    post("/write?precision=ms", &[("content-encoding", enc)], body)
}

/// Bombs: small bodies that decompress to 64x the gateway's limit, one per encoding.
struct Bombs(Vec<(&'static str, Vec<u8>)>);

fn bombs() -> Bombs {
    let zeros = vec![b'0'; MAX_BODY * 64];
    Bombs(
        ENCODINGS
            .iter()
            .map(|e| (*e, compress(e, &zeros)))
            .collect(),
    )
}

fn generate(rng: &mut StdRng, i: usize, seed: &[u8], bombs: &Bombs) -> Case {
    let enc = ENCODINGS[i % ENCODINGS.len()];
    if i.is_multiple_of(50) {
        let body = format!(
            "{CANARY},i={i},e={enc} value={i} 1700000000{:03}\n",
            i % 1000
        );
        return Case {
            kind: "canary",
            request: req(enc, compress(enc, body.as_bytes())),
            canary_rows: Some(1),
        };
    }
    let valid = compress(enc, seed);
    let (kind, e, body): (&'static str, &str, Vec<u8>) = match rng.gen_range(0..7) {
        0..=1 => {
            let cut = rng.gen_range(0..valid.len());
            ("truncated", enc, valid[..cut].to_vec())
        }
        2..=3 => ("corrupted", enc, gen::mutate(rng, &valid)),
        4 => ("arbitrary_bytes", enc, gen::bytes(rng, 2048)),
        5 => {
            let (e, b) = &bombs.0[i % bombs.0.len()];
            ("decompression_bomb", e, b.clone())
        }
        _ => {
            let e = [
                "br",
                "compress",
                "gzip, br",
                "x-unknown",
                "GZIP;q=1",
                "identity, zstd",
            ][i % 6];
            ("unknown_encoding", e, valid)
        }
    };
    Case::hostile(kind, req(e, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_body_hostile_inputs() {
    let suite = Suite::new("hostile_enc").await;
    let seed = crate::fixture("influxdb-client-1.50-v2-write.lp");
    let bombs = Arc::new(bombs());
    let report = suite
        .run("encodings", 0x6b6b, CASES, |rng, i| {
            generate(rng, i, &seed, &bombs)
        })
        .await;
    assert_canaries(&report, suite.metric_rows(CANARY).await);
    let bomb = report.kinds.get("decompression_bomb").expect("ran");
    assert_eq!(bomb.1, 0, "no bomb was accepted");
}
