//! OTLP/HTTP metrics (`POST /v1/metrics`), protobuf and JSON: mutated real SDK bodies, arbitrary
//! bytes, deeply nested attribute values (protobuf recursion, JSON depth), invalid UTF-8, NaN/Inf,
//! out-of-range and non-numeric timestamps, SQL in names.

use rand::rngs::StdRng;
use rand::Rng;

use crate::gen::{self, nasty};
use crate::{assert_canaries, fixture, post, Case, Suite, CASES};

const CANARY: &str = "canary_otlp";

fn req(json: bool, body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    let ct = if json {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    post("/v1/metrics", &[("content-type", ct)], body)
}

/// A gauge request in OTLP JSON with one data point.
fn json_gauge(name: &str, value: &str, time: &str, attr: &str) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"hostile"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":{name},"gauge":{{"dataPoints":[{{"asDouble":{value},"timeUnixNano":{time},"attributes":[{{"key":"a","value":{{"stringValue":{attr}}}}}]}}]}}}}]}}]}}]}}"#
    )
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `AnyValue{kvlist{KeyValue{key, AnyValue{…}}}}` nested `depth` deep, as a metric attribute.
fn deep_protobuf(depth: usize) -> Vec<u8> {
    fn field(tag: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        prost::encoding::encode_varint(data.len() as u64, &mut out);
        out.extend_from_slice(data);
        out
    }
    let mut any = field(0x0a, b"leaf"); // AnyValue.string_value
    for _ in 0..depth {
        let kv = [field(0x0a, b"k"), field(0x12, &any)].concat(); // KeyValue{key, value}
        let list = field(0x0a, &kv); // KeyValueList.values
        any = field(0x32, &list); // AnyValue.kvlist_value (6)
    }
    let attr = [field(0x0a, b"deep"), field(0x12, &any)].concat();
    let resource = field(0x0a, &attr); // Resource.attributes
    let rm = field(0x0a, &resource); // ResourceMetrics.resource
    field(0x0a, &rm) // ExportMetricsServiceRequest.resource_metrics
}

fn canary(i: usize) -> Case {
    let body = json_gauge(
        &q(CANARY),
        &format!("{i}.25"),
        &q(&format!("17000000000{i:08}")),
        &q(&i.to_string()),
    );
    Case {
        kind: "canary",
        request: req(true, body.into_bytes()),
        canary_rows: Some(1),
    }
}

pub fn generate_protobuf(rng: &mut StdRng, i: usize, seed: &[u8]) -> Case {
    if i.is_multiple_of(50) {
        return canary(i);
    }
    let (kind, body): (&'static str, Vec<u8>) = match rng.gen_range(0..6) {
        0..=2 => ("mutated_sdk_body", gen::mutate(rng, seed)),
        3 => ("arbitrary_bytes", gen::bytes(rng, 4096)),
        4 => ("deep_nesting", deep_protobuf(rng.gen_range(90..3000))),
        _ => {
            let cut = rng.gen_range(0..seed.len());
            ("truncated", seed[..cut].to_vec())
        }
    };
    Case::hostile(kind, req(false, body))
}

pub fn generate_json(rng: &mut StdRng, i: usize, seed: &str) -> Case {
    if i.is_multiple_of(50) {
        return canary(i);
    }
    let (kind, body): (&'static str, Vec<u8>) = match rng.gen_range(0..9) {
        0..=2 => ("mutated_json", gen::mutate(rng, seed.as_bytes())),
        3 => ("arbitrary_bytes", gen::bytes(rng, 4096)),
        4 => (
            "deep_json",
            gen::deep_json(rng.gen_range(100..200_000), i.is_multiple_of(2)).into_bytes(),
        ),
        5 => {
            let v = [
                "\"NaN\"",
                "\"Infinity\"",
                "\"-Infinity\"",
                "1e400",
                "NaN",
                "null",
                "\"x\"",
            ][i % 7];
            (
                "nan_inf",
                json_gauge(&q("nan_probe"), v, &q("1700000000000000000"), &q("a")).into_bytes(),
            )
        }
        6 => {
            let t = [
                "\"99999999999999999999999\"",
                "\"-1\"",
                "-5",
                "1.5e30",
                "\"abc\"",
                "\"18446744073709551615\"",
            ][i % 6];
            (
                "timestamp_out_of_range",
                json_gauge(&q("ts_probe"), "1", t, &q("a")).into_bytes(),
            )
        }
        7 => {
            let mut b =
                json_gauge(&q("utf8_probe"), "1", &q("1700000000000000000"), "\"@@\"").into_bytes();
            let at = b.windows(2).position(|w| w == b"@@").unwrap_or(0);
            b.splice(at..at + 2, gen::INVALID_UTF8[i % 6].iter().copied());
            ("invalid_utf8", b)
        }
        _ => (
            "sql_in_identifiers",
            json_gauge(
                &q(&format!("m{}", nasty(rng))),
                "1",
                &q("1700000000000000000"),
                &q(nasty(rng)),
            )
            .into_bytes(),
        ),
    };
    Case::hostile(kind, req(true, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_protobuf_hostile_inputs() {
    let suite = Suite::new("hostile_otlp_pb").await;
    let seed = fixture("otel-python-1.45-otlp-http-metrics.pb");
    let report = suite
        .run("otlp_protobuf", 0x0f0f, CASES, |rng, i| {
            generate_protobuf(rng, i, &seed)
        })
        .await;
    assert_canaries(&report, suite.metric_rows(CANARY).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_hostile_inputs() {
    let suite = Suite::new("hostile_otlp_json").await;
    let seed = json_gauge(&q("seed"), "1.5", &q("1700000000000000000"), &q("x"));
    let report = suite
        .run("otlp_json", 0x0e0e, CASES, |rng, i| {
            generate_json(rng, i, &seed)
        })
        .await;
    assert_canaries(&report, suite.metric_rows(CANARY).await);
}
