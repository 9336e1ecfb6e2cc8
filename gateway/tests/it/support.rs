//! Shared helpers: an in-process gateway, per-test databases, row counts per node.

use std::path::PathBuf;
use std::time::Duration;

use chgate_gateway::config::GatewayConfig;
use chgate_gateway::encode::Format;
use chgate_gateway::writer::WriteMode;
use chgate_harness::Rig;
use tokio::sync::oneshot;

/// A gateway running inside the test process.
pub struct TestGateway {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl TestGateway {
    /// Stops intake, flushes, and waits for the server task.
    pub async fn shutdown(self) {
        if let Err(e) = self.stop().await {
            panic!("gateway failed: {e}");
        }
    }

    /// As [`TestGateway::shutdown`], returning how the server ended.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(Duration::from_secs(30), &mut self.task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(format!("server task: {e}")),
            Err(_) => Err("did not stop within 30 s".into()),
        }
    }
}

/// Starts a gateway writing into `database` with the given mode and format.
pub async fn gateway(rig: &Rig, database: &str, mode: WriteMode, format: Format) -> TestGateway {
    let mut cfg = GatewayConfig {
        database: Some(database.to_owned()),
        write_mode: mode,
        format,
        ..GatewayConfig::default()
    };
    cfg.batch.max_age = Duration::from_millis(50);
    serve(rig, cfg).await
}

/// Starts a gateway with `cfg` on an ephemeral loopback port.
pub async fn serve(rig: &Rig, cfg: GatewayConfig) -> TestGateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = oneshot::channel::<()>();
    let topology = rig.topology().clone();
    let password = rig.clickhouse_password();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        chgate_gateway::run::serve_on(listener, cfg, &topology, &password, shutdown)
            .await
            .map_err(|e| e.to_string())
    });
    TestGateway {
        url,
        stop: Some(tx),
        task,
    }
}

/// A database with the shipped schema, migrated by `chgate migrate`.
pub fn migrated_db(rig: &Rig, prefix: &str) -> String {
    let db = rig.unique_name(prefix);
    rig.migrate(&db);
    db
}

/// `SELECT count()` on one node.
pub async fn count(rig: &Rig, node: usize, sql: &str) -> u64 {
    let text = rig
        .clickhouse(node)
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{sql}: not a number: {text:?}"))
}

/// Rows of `db.samples_local` whose `column` is `value`, over all shards ([`per_shard_counts`]).
pub async fn samples_with(rig: &Rig, db: &str, column: &str, value: &str) -> u64 {
    let filter = format!("{column} = '{value}'");
    let counts = per_shard_counts(rig, &format!("{db}.samples_local"), &filter).await;
    counts.iter().sum()
}

/// Syncs every replica of `local_table` (`SYSTEM SYNC REPLICA`: it has fetched everything in its
/// replication queue), checks the replicas of each shard agree, and returns per-shard counts.
pub async fn per_shard_counts(rig: &Rig, local_table: &str, filter: &str) -> Vec<u64> {
    let nodes = rig.nodes();
    let shards = rig.topology().cluster.shards;
    let sql = format!("SELECT count() FROM {local_table} WHERE {filter}");
    let mut out = Vec::new();
    for shard in 1..=shards {
        let idx: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].shard == shard)
            .collect();
        let mut counts = Vec::new();
        for &i in &idx {
            rig.clickhouse(i)
                .execute(&format!("SYSTEM SYNC REPLICA {local_table}"))
                .await
                .unwrap_or_else(|e| panic!("sync {} on {}: {e}", local_table, nodes[i].name));
            counts.push(count(rig, i, &sql).await);
        }
        assert!(
            counts.windows(2).all(|w| w[0] == w[1]),
            "shard {shard}: replicas disagree on {local_table}: {counts:?}"
        );
        out.push(counts[0]);
    }
    out
}

/// The directory of the captured real-client request bodies.
pub fn fixtures() -> PathBuf {
    let candidates = [
        std::env::var_os("CHGATE_FIXTURES").map(PathBuf::from),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/real-clients"
        ))),
        Some(PathBuf::from("/work/shared/fixtures/real-clients")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("README.md").exists())
        .expect("real-client fixtures not found (set CHGATE_FIXTURES)")
}

/// An HTTP client.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}
