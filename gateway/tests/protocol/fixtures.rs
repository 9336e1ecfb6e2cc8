//! Real request bodies captured from Prometheus, influxdb-client and the OTel Python SDK
//! (`../shared/fixtures/real-clients/`, see its README): decode each, assert what it holds.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chgate_gateway::protocol::{influx, otlp, remote_write, Sample};

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("CHGATE_FIXTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/real-clients"),
        PathBuf::from,
    );
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {} missing: {e}", path.display()))
}

fn label<'a>(s: &'a Sample, name: &str) -> Option<&'a str> {
    s.labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn find<'a>(samples: &'a [Sample], metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(n, v)| label(s, n) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {metric} {labels:?}"))
}

fn assert_sorted_unique(samples: &[Sample]) {
    for s in samples {
        assert!(s.labels.windows(2).all(|w| w[0].0 < w[1].0), "{s:?}");
        assert!(
            s.labels
                .iter()
                .all(|(n, v)| n != "__name__" && !v.is_empty()),
            "{s:?}"
        );
    }
}

#[test]
fn prometheus_2_42_remote_write() {
    let samples = remote_write::decode(&fixture("prometheus-2.42-remote-write.snappy.pb"))
        .expect("Prometheus' own body decodes");
    assert_eq!(samples.len(), 394);
    let names: BTreeSet<_> = samples.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(names.len(), 241);
    assert_sorted_unique(&samples);
    for s in &samples {
        assert_eq!(label(s, "instance"), Some("127.0.0.1:19399"), "{s:?}");
        assert_eq!(label(s, "job"), Some("fixture"));
        assert_eq!(label(s, "probe"), Some("fixture"));
        assert_eq!(s.timestamp_ms, 1_795_635_860_291);
    }
    let remote = find(
        &samples,
        "prometheus_remote_storage_bytes_total",
        &[("remote_name", "56c439")],
    );
    assert_eq!(remote.value, 7554.0);
    assert_eq!(
        label(remote, "url"),
        Some("http://127.0.0.1:18991/api/v1/write")
    );
    let clean = find(&samples, "prometheus_tsdb_clean_start", &[]);
    assert_eq!(clean.value, -1.0);
    let gc = find(&samples, "go_gc_duration_seconds", &[("quantile", "0")]);
    assert_eq!(gc.value, 3.7306e-5);
    // Summaries without observations carry NaN; it is kept as-is.
    let q = find(
        &samples,
        "prometheus_rule_group_duration_seconds",
        &[("quantile", "0.99")],
    );
    assert!(q.value.is_nan());
    let inf = find(
        &samples,
        "prometheus_http_request_duration_seconds_bucket",
        &[("handler", "/metrics"), ("le", "+Inf")],
    );
    assert_eq!(inf.value, 1.0);
}

#[test]
fn influxdb_client_1_50_line_protocol() {
    let body = String::from_utf8(fixture("influxdb-client-1.50-v2-write.lp")).expect("UTF-8");
    let batch = influx::decode(&body, influx::Precision::Nanoseconds, 0);
    assert!(batch.errors.is_empty(), "{:?}", batch.errors);
    assert_eq!(batch.skipped_string_fields, 0);
    assert_eq!(batch.samples.len(), 400, "200 lines x 2 fields");
    assert_sorted_unique(&batch.samples);
    for (i, pair) in batch.samples.chunks(2).enumerate() {
        let (count, value) = (&pair[0], &pair[1]);
        assert_eq!(count.metric, "fixture_influx_count");
        assert_eq!(
            value.metric, "fixture_influx",
            "field `value` maps to the measurement"
        );
        let host = format!("h{}", i % 50);
        for s in pair {
            assert_eq!(
                s.labels,
                vec![
                    ("host".to_owned(), host.clone()),
                    ("region".to_owned(), "eu".to_owned())
                ]
            );
            assert_eq!(s.timestamp_ms, 1_700_000_000_000 + i as i64);
            assert_eq!(s.value, i as f64);
        }
    }
}

#[test]
fn otel_python_1_45_otlp_protobuf() {
    let samples = otlp::decode_protobuf(&fixture("otel-python-1.45-otlp-http-metrics.pb"))
        .expect("the SDK's body decodes");
    // 5 sum points + 5 histogram points x (16 buckets + _sum + _count) + 1 gauge-like sum.
    assert_eq!(samples.len(), 5 + 5 * 18 + 1);
    assert_sorted_unique(&samples);
    for s in &samples {
        assert_eq!(label(s, "service_name"), Some("fixture_otlp"), "{s:?}");
        assert_eq!(label(s, "otel_scope_name"), Some("probe"));
        assert_eq!(label(s, "telemetry_sdk_language"), Some("python"));
        assert_eq!(s.timestamp_ms, 1_795_635_865_551);
    }
    for r in 0..5 {
        let route = format!("/r{r}");
        let req = find(&samples, "fixture_otlp_requests", &[("route", &route)]);
        assert_eq!(req.value, 20.0);
        let count = find(&samples, "fixture_otlp_latency_count", &[("route", &route)]);
        assert_eq!(count.value, 20.0);
        let sum = find(&samples, "fixture_otlp_latency_sum", &[("route", &route)]);
        assert!(
            (sum.value - (9.5 + 0.2 * f64::from(r))).abs() < 1e-9,
            "{sum:?}"
        );
        let inf = find(
            &samples,
            "fixture_otlp_latency_bucket",
            &[("route", &route), ("le", "+Inf")],
        );
        assert_eq!(inf.value, 20.0);
        // Buckets are cumulative and never decrease.
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|s| {
                s.metric == "fixture_otlp_latency_bucket" && label(s, "route") == Some(&route)
            })
            .map(|s| s.value)
            .collect();
        assert_eq!(buckets.len(), 16);
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    }
    let le: Vec<_> = samples
        .iter()
        .filter(|s| s.metric == "fixture_otlp_latency_bucket" && label(s, "route") == Some("/r0"))
        .filter_map(|s| label(s, "le"))
        .collect();
    assert_eq!(
        le,
        [
            "0", "5", "10", "25", "50", "75", "100", "250", "500", "750", "1000", "2500", "5000",
            "7500", "10000", "+Inf"
        ]
    );
    assert_eq!(
        find(
            &samples,
            "fixture_otlp_latency_bucket",
            &[("route", "/r0"), ("le", "0")]
        )
        .value,
        1.0
    );
    let inflight = find(&samples, "fixture_otlp_inflight", &[]);
    assert_eq!(inflight.value, 3.0);
    assert_eq!(label(inflight, "route"), None);
}

#[test]
fn otlp_resource_attribute_policy() {
    let body = fixture("otel-python-1.45-otlp-http-metrics.pb");
    let opts = otlp::OtlpOptions {
        resource_attributes: otlp::ResourceAttributes::Only(vec!["service.name".to_owned()]),
    };
    let samples = otlp::decode_protobuf_with(&body, &opts).expect("decodes");
    let inflight = find(&samples, "fixture_otlp_inflight", &[]);
    let names: Vec<_> = inflight.labels.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["otel_scope_name", "pool", "service_name"]);
}
