//! Shared helpers: an [`Ops`] for the rig, status polling, rows through the gateway, counts.

use std::time::{Duration, Instant};

use chgate_clickhouse_http::Client;
use chgate_harness::{chgate_bin, rig, topology_path, Rig};
use chgate_ops::health::Thresholds;
use chgate_ops::status::{self, ClusterStatus};
use chgate_ops::Ops;

/// A test's database on the rig, migrated (ClickHouse schema and the PostgreSQL side).
pub struct Fixture {
    pub rig: &'static Rig,
    pub ops: Ops,
    pub db: String,
}

/// Ops for the harness's topology.
pub fn ops() -> Ops {
    let loaded = chgate_topology::load(&topology_path()).expect("topology");
    Ops::new(&loaded).expect("ops")
}

/// Brings the rig up and migrates a fresh database with `chgate migrate up` (PostgreSQL side
/// included, so chgate's and Grafana's databases exist and status can be healthy).
/// Takes the shared guard while it migrates; callers take theirs afterwards.
pub async fn fixture(prefix: &str) -> Fixture {
    let rig = rig().await;
    let db = rig.unique_name(prefix);
    // Migrations need every server: not while a drill has one stopped.
    let _g = rig.shared().await;
    let out = std::process::Command::new(chgate_bin())
        .arg("--config")
        .arg(topology_path())
        .args(["migrate", "--database", &db, "up"])
        .output()
        .expect("run chgate migrate");
    assert!(
        out.status.success(),
        "chgate migrate --database {db} up:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Fixture {
        rig,
        ops: ops(),
        db,
    }
}

/// One status snapshot with default thresholds.
pub async fn snapshot(ops: &Ops) -> ClusterStatus {
    status::collect(ops, &Thresholds::default(), false).await
}

/// Polls `chgate status` until `pred` holds; panics with the last problems after `limit`.
pub async fn wait_status(
    ops: &Ops,
    what: &str,
    limit: Duration,
    pred: impl Fn(&ClusterStatus) -> bool,
) -> (ClusterStatus, Duration) {
    let start = Instant::now();
    loop {
        let s = snapshot(ops).await;
        if pred(&s) {
            return (s, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "status never showed {what} within {limit:?}; problems: {:#?}",
            s.problems
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until status is healthy.
pub async fn wait_healthy(ops: &Ops, limit: Duration) -> Duration {
    wait_status(ops, "healthy", limit, ClusterStatus::healthy)
        .await
        .1
}

/// Whether a problem of `component` mentions `needle`.
pub fn has_problem(s: &ClusterStatus, component: &str, needle: &str) -> bool {
    s.problems
        .iter()
        .any(|p| p.component == component && p.message.contains(needle))
}

/// NDJSON body of `n` sample rows with metric `metric`.
pub fn rows(metric: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"tenant\":\"ops\",\"metric\":\"{metric}\",\"series_id\":{i},\"timestamp\":{},\"value\":{i}}}\n",
                1_764_000_000 + (i % 3600)
            )
        })
        .collect()
}

/// Posts rows to `base/ingest/db/samples`; Ok on 2xx, else the status and body.
pub async fn post(
    http: &reqwest::Client,
    base: &str,
    db: &str,
    body: String,
) -> Result<(), String> {
    let r = http
        .post(format!("{base}/ingest/{db}/samples"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let code = r.status();
    if code.is_success() {
        return Ok(());
    }
    Err(format!(
        "{code}: {}",
        r.text().await.unwrap_or_default().trim()
    ))
}

/// Posts `batches` batches of `rows_each` rows into `db` through HAProxy and the gateways, batch
/// `b` with metric `{prefix}{b}`; panics naming the batch that was refused.
pub async fn load(rig: &Rig, db: &str, prefix: &str, batches: usize, rows_each: usize) {
    let (http, url) = (http(), rig.haproxy_gateway_url());
    for b in 0..batches {
        let metric = format!("{prefix}{b}");
        post(&http, &url, db, rows(&metric, rows_each))
            .await
            .unwrap_or_else(|e| panic!("batch {metric} ({b} of {batches}): {e}"));
    }
}

/// An HTTP client for the gateway with a generous timeout (a gateway may hold a request while
/// it retries).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("http client")
}

/// `SELECT count()`-style query as a number.
pub async fn count(c: &Client, sql: &str) -> u64 {
    c.query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Rows of `db.samples_local` on node `i` after it pulled everything its shard acknowledged.
pub async fn local_rows(rig: &Rig, i: usize, db: &str) -> u64 {
    let c = rig.clickhouse(i);
    c.query_with(
        &format!("SYSTEM SYNC REPLICA {db}.samples_local"),
        &[("receive_timeout", "60")],
    )
    .await
    .unwrap_or_else(|e| panic!("sync {db} on node {i}: {e}"));
    count(&c, &format!("SELECT count() FROM {db}.samples_local")).await
}

/// Drops a test database everywhere (best effort).
pub async fn drop_db(rig: &Rig, db: &str) {
    let sql = format!(
        "DROP DATABASE IF EXISTS {db} ON CLUSTER {}",
        rig.topology().cluster.name
    );
    rig.clickhouse(0).execute(&sql).await.ok();
}
