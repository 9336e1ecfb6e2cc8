//! Graceful shutdown: a request whose rows are still waiting in a batch when shutdown begins is
//! flushed and acked, never dropped; the server then stops taking requests.

use std::time::{Duration, Instant};

use chgate_gateway::config::GatewayConfig;
use chgate_harness::rig;

use crate::support::{http, migrated_db, per_shard_counts, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_rows_waiting_in_a_batch_and_acks_them() {
    let rig = rig().await;
    let db = migrated_db(rig, "gw_shutdown");
    let mut cfg = GatewayConfig {
        database: Some(db.clone()),
        ..GatewayConfig::default()
    };
    cfg.batch.max_age = Duration::from_secs(3);
    let gw = serve(rig, cfg).await;
    let url = gw.url.clone();
    let body: String = (0..100)
        .map(|i| format!("drain,host=h{i} value={i} 1700000000\n"))
        .collect();
    let request = tokio::spawn(
        http()
            .post(format!("{url}/write?precision=s"))
            .body(body)
            .send(),
    );
    // Let the request reach the batcher (a 3 s max_age keeps it waiting there), then shut down.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let stopped = tokio::spawn(gw.stop());
    let resp = request.await.expect("join").expect("request completes");
    assert_eq!(resp.status(), 204, "acked after the flush");
    stopped.await.expect("join").expect("clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped within the deadline"
    );
    assert_eq!(
        per_shard_counts(rig, &format!("{db}.samples_local"), "1")
            .await
            .iter()
            .sum::<u64>(),
        100
    );
    let after = http()
        .post(format!("{url}/write?precision=s"))
        .body("x value=1\n")
        .send()
        .await;
    assert!(after.is_err(), "no intake after shutdown");
}
