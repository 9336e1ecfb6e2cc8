//! Real client request bodies (Prometheus, influxdb-client, the OpenTelemetry SDK) replayed with
//! their own paths and headers; their exact samples must be found on both shards and replicas.

use chgate_gateway::encode::Format;
use chgate_gateway::writer::WriteMode;
use chgate_harness::{rig, Rig};

use crate::support::{fixtures, gateway, http, migrated_db, per_shard_counts, TestGateway};

/// Sends a captured request (path + headers from its `.request.json`, body from `body_file`).
async fn replay(base: &str, name: &str, body_file: &str) -> reqwest::Response {
    let dir = fixtures();
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("{name}.request.json"))).expect("request.json"),
    )
    .expect("json");
    let body = std::fs::read(dir.join(body_file)).expect("body");
    let mut req = http().post(format!("{base}{}", meta["path"].as_str().expect("path")));
    for (k, v) in meta["headers"].as_object().expect("headers") {
        if !["host", "content-length"].contains(&k.to_ascii_lowercase().as_str()) {
            req = req.header(k, v.as_str().unwrap_or_default());
        }
    }
    req.body(body).send().await.expect("send")
}

/// A fresh migrated database, an in-process gateway over it, and one fixture replayed into it;
/// asserts the status the protocol's own server would answer.
async fn replay_into(
    rig: &Rig,
    prefix: &str,
    mode: WriteMode,
    format: Format,
    fixture: (&str, &str),
    want: u16,
) -> (String, TestGateway) {
    let db = migrated_db(rig, prefix);
    let gw = gateway(rig, &db, mode, format).await;
    let resp = replay(&gw.url, fixture.0, fixture.1).await;
    assert_eq!(
        resp.status(),
        want,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    (db, gw)
}

async fn scalar(rig: &Rig, sql: &str) -> String {
    rig.clickhouse(1)
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_write_lands_every_sample_and_series() {
    let rig = rig().await;
    let (db, gw) = replay_into(
        rig,
        "gw_prom",
        WriteMode::Distributed,
        Format::Native,
        (
            "prometheus-2.42-remote-write",
            "prometheus-2.42-remote-write.snappy.pb",
        ),
        204,
    )
    .await;
    let shards = per_shard_counts(rig, &format!("{db}.samples_local"), "1").await;
    assert_eq!(shards.iter().sum::<u64>(), 394, "394 samples: {shards:?}");
    assert!(shards.iter().all(|&n| n > 0), "both shards: {shards:?}");
    assert_eq!(
        scalar(rig, &format!("SELECT uniqExact(metric) FROM {db}.samples")).await,
        "241"
    );
    assert_eq!(
        scalar(
            rig,
            &format!("SELECT uniqExact(series_id) FROM {db}.series")
        )
        .await,
        "394"
    );
    let probe = format!(
        "SELECT count() FROM {db}.series WHERE label_values[indexOf(label_names, 'probe')] = 'fixture' \
         AND label_values[indexOf(label_names, 'job')] = 'fixture'"
    );
    assert_eq!(scalar(rig, &probe).await, "394");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_line_protocol_lands_every_field_with_its_values_and_time() {
    let rig = rig().await;
    let (db, gw) = replay_into(
        rig,
        "gw_influx",
        WriteMode::ShardAware,
        Format::Native,
        (
            "influxdb-client-1.50-v2-write",
            "influxdb-client-1.50-v2-write.lp",
        ),
        204,
    )
    .await;
    let shards = per_shard_counts(rig, &format!("{db}.samples_local"), "1").await;
    assert_eq!(
        shards.iter().sum::<u64>(),
        400,
        "200 lines x 2 fields: {shards:?}"
    );
    assert!(shards.iter().all(|&n| n > 0), "both shards: {shards:?}");
    let names = scalar(rig, &format!("SELECT arrayStringConcat(groupUniqArray(metric), ',') FROM (SELECT metric FROM {db}.samples ORDER BY metric)")).await;
    let mut names: Vec<&str> = names.split(',').collect();
    names.sort_unstable();
    assert_eq!(names, ["fixture_influx", "fixture_influx_count"]);
    // Lines 8, 58, 108, 158 carry host=h7 (hosts cycle h0..h49): count=7i, 57i, 107i, 157i;
    // timestamps 1700000000.007.. s (second precision on the 18.16 fallback schema).
    let v = scalar(rig, &format!(
        "SELECT s.value, toUnixTimestamp(s.timestamp) FROM {db}.samples AS s WHERE s.metric = 'fixture_influx_count' \
         AND s.series_id GLOBAL IN (SELECT series_id FROM {db}.series WHERE label_values[indexOf(label_names, 'host')] = 'h7') ORDER BY s.value FORMAT TSV"
    ))
    .await;
    assert_eq!(
        v,
        "7\t1700000000\n57\t1700000000\n107\t1700000000\n157\t1700000000"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_protobuf_lands_sums_histograms_and_gauges() {
    let rig = rig().await;
    let (db, gw) = replay_into(
        rig,
        "gw_otlp",
        WriteMode::Distributed,
        Format::RowBinary,
        (
            "otel-python-1.45-otlp-http-metrics",
            "otel-python-1.45-otlp-http-metrics.pb",
        ),
        200,
    )
    .await;
    per_shard_counts(rig, &format!("{db}.samples_local"), "1").await;
    let requests = scalar(
        rig,
        &format!("SELECT count() FROM {db}.samples WHERE metric = 'fixture_otlp_requests'"),
    )
    .await;
    assert_eq!(requests, "5", "5 points of the monotonic sum");
    let inflight = scalar(
        rig,
        &format!("SELECT count() FROM {db}.samples WHERE metric = 'fixture_otlp_inflight'"),
    )
    .await;
    assert_eq!(inflight, "1");
    let hist = scalar(
        rig,
        &format!("SELECT count() FROM {db}.samples WHERE metric = 'fixture_otlp_latency_count'"),
    )
    .await;
    assert_eq!(hist, "5", "one _count per histogram point");
    let buckets = scalar(
        rig,
        &format!(
            "SELECT count() > 5 FROM {db}.samples WHERE metric = 'fixture_otlp_latency_bucket'"
        ),
    )
    .await;
    assert_eq!(buckets, "1");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_haproxy_to_the_rigs_own_gateways() {
    let rig = rig().await;
    rig.migrate(&rig.topology().cluster.database);
    let db = rig.topology().cluster.database.clone();
    let metric = rig.unique_name("haproxy_probe");
    let body: String = (0..50)
        .map(|i| format!("{metric},host=h{i} value={i} {}\n", 1_700_000_000 + i))
        .collect();
    let resp = http()
        .post(format!("{}/write?precision=s", rig.haproxy_gateway_url()))
        .body(body)
        .send()
        .await
        .expect("post through haproxy");
    assert_eq!(
        resp.status(),
        204,
        "{}\n{}",
        resp.text().await.unwrap_or_default(),
        rig.log_tail("gateway")
    );
    let shards = per_shard_counts(
        rig,
        &format!("{db}.samples_local"),
        &format!("metric = '{metric}'"),
    )
    .await;
    assert_eq!(shards.iter().sum::<u64>(), 50, "{shards:?}");
    assert!(shards.iter().all(|&n| n > 0), "{shards:?}");
}
