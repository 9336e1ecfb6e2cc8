//! Batching on a live rig: a batch that stopped growing (`linger_rows` or more rows, none new for
//! `linger`) is flushed before `max_age`; a small one waits for `max_age`, so a trickle of
//! requests still makes few, large inserts.

use std::time::{Duration, Instant};

use chgate_gateway::config::GatewayConfig;
use chgate_harness::rig;

use crate::support::{http, migrated_db, per_shard_counts, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_stopped_growing_is_flushed_before_max_age() {
    let rig = rig().await;
    let db = migrated_db(rig, "gw_linger");
    let mut cfg = GatewayConfig {
        database: Some(db.clone()),
        ..GatewayConfig::default()
    };
    let max_age = Duration::from_secs(4);
    cfg.batch.max_age = max_age;
    cfg.batch.linger_rows = 50;
    cfg.batch.linger = Duration::from_millis(20);
    let gw = serve(rig, cfg).await;
    let url = gw.url.clone();
    let send = |lines: usize, tag: &'static str| {
        let body: String = (0..lines)
            .map(|i| format!("linger,run={tag},host=h{i} value={i} 1700000000\n"))
            .collect();
        let req = http().post(format!("{url}/write?precision=s")).body(body);
        async move {
            let started = Instant::now();
            let resp = req.send().await.expect("request");
            assert_eq!(resp.status(), 204, "{tag}");
            started.elapsed()
        }
    };
    let big = send(100, "big").await;
    let small = send(10, "small").await;
    gw.shutdown().await;
    assert!(
        big < max_age / 2,
        "100 rows >= linger_rows: flushed once they stopped growing, took {big:?}"
    );
    assert!(
        small >= max_age - Duration::from_millis(100),
        "10 rows < linger_rows: waited for max_age, took {small:?}"
    );
    let stored: u64 = per_shard_counts(rig, &format!("{db}.samples_local"), "1")
        .await
        .iter()
        .sum();
    assert_eq!(stored, 110);
}
