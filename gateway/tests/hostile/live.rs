//! The live part: a share of every protocol's generated inputs over real HTTP to the rig's own
//! gateway process (`chgate serve`, default limits), measuring that process's RSS.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use chgate_harness::rig;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::{rss_of, Case};

/// Inputs per protocol sent to the live gateway.
const LIVE_CASES: usize = 1_000;
/// Allowed RSS growth of the gateway process.
const LIVE_RSS_BOUND_MIB: u64 = 512;

async fn send(client: &reqwest::Client, base: &str, req: Request<Body>) -> (u16, String) {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut r = client
        .request(parts.method, format!("{base}{}", parts.uri))
        .body(bytes.to_vec());
    for (k, v) in &parts.headers {
        r = r.header(k, v);
    }
    match r.send().await {
        Ok(resp) => {
            let s = resp.status().as_u16();
            (s, resp.text().await.unwrap_or_default())
        }
        Err(e) => (0, format!("transport: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_gateway_process_survives_hostile_inputs_with_bounded_rss() {
    let rig = rig().await;
    let db = rig.topology().cluster.database.clone();
    {
        let _ddl = rig.shared().await;
        rig.migrate(&db);
    }
    let pid = std::fs::read_to_string(rig.state_dir().join("run/gateway-1.pid"))
        .expect("gateway-1 pid file")
        .trim()
        .to_owned();
    let base = rig.gateway_url(0);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let rss_start = rss_of(&pid);
    assert!(rss_start > 0, "gateway-1 (pid {pid}) is not running");
    let mut rss_peak = rss_start;
    let seed_lp = crate::fixture("influxdb-client-1.50-v2-write.lp");
    let seed_rw = crate::fixture("prometheus-2.42-remote-write.snappy.pb");
    let seed_rw_raw = snap::raw::Decoder::new()
        .decompress_vec(&seed_rw)
        .expect("snappy");
    let seed_otlp = crate::fixture("otel-python-1.45-otlp-http-metrics.pb");
    type Gen<'a> = Box<dyn FnMut(&mut StdRng, usize) -> Case + 'a>;
    let mut protocols: Vec<(&str, Gen)> = vec![
        (
            "influx",
            Box::new(|r, i| crate::influx::generate(r, i, &seed_lp)),
        ),
        (
            "remote_write",
            Box::new(|r, i| crate::remote_write::generate(r, i, &seed_rw_raw, &seed_rw)),
        ),
        (
            "otlp_protobuf",
            Box::new(|r, i| crate::otlp::generate_protobuf(r, i, &seed_otlp)),
        ),
        (
            "ndjson",
            Box::new(|r, i| crate::ndjson::generate(r, i, &db)),
        ),
        (
            "clickhouse_insert",
            Box::new(|r, i| crate::chcompat::generate(r, i, &db)),
        ),
    ];
    let mut summary = Vec::new();
    for (name, generate) in protocols.iter_mut() {
        let mut rng = StdRng::seed_from_u64(0x11fe);
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        let mut bad = Vec::new();
        let mut inflight = tokio::task::JoinSet::new();
        for i in 0..LIVE_CASES {
            let case = generate(&mut rng, i);
            let (c, b) = (client.clone(), base.clone());
            inflight.spawn(async move { send(&c, &b, case.request).await });
            if inflight.len() >= 16 {
                if let Some(Ok((s, body))) = inflight.join_next().await {
                    *statuses.entry(s).or_default() += 1;
                    if !(200..500).contains(&s) && bad.len() < 5 {
                        bad.push((s, body));
                    }
                }
            }
            if i.is_multiple_of(100) {
                rss_peak = rss_peak.max(rss_of(&pid));
            }
        }
        while let Some(Ok((s, body))) = inflight.join_next().await {
            *statuses.entry(s).or_default() += 1;
            if !(200..500).contains(&s) && bad.len() < 5 {
                bad.push((s, body));
            }
        }
        rss_peak = rss_peak.max(rss_of(&pid));
        eprintln!("live hostile {name}: {LIVE_CASES} inputs, statuses {statuses:?}, gateway RSS peak {} MiB", rss_peak / 1024);
        assert!(
            bad.is_empty(),
            "{name}: 5xx or transport errors from the live gateway: {bad:?}"
        );
        summary.push((*name, statuses));
    }
    let rss_end = rss_of(&pid);
    eprintln!(
        "live gateway RSS: start {} MiB, peak {} MiB, end {} MiB",
        rss_start / 1024,
        rss_peak / 1024,
        rss_end / 1024
    );
    assert!(rss_end > 0, "the gateway process died");
    assert!(
        (rss_peak - rss_start) / 1024 < LIVE_RSS_BOUND_MIB,
        "gateway RSS grew from {} to {} MiB",
        rss_start / 1024,
        rss_peak / 1024
    );
    assert_eq!(summary.len(), 5);
}
