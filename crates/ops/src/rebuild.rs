//! Rebuilds a replica whose data directory was lost (`chgate backup rebuild-replica ch-s1r2`).
//!
//! The replica's Keeper metadata survives the disk: for each replicated table it still knows
//! which parts the replica should hold. So, on the empty server:
//! 1. every database of a peer of the same shard is created locally (no `ON CLUSTER`: the other
//!    hosts have them);
//! 2. every table is recreated from the peer's `SHOW CREATE TABLE` — which is the schema the
//!    migration ledger's migrations produced (macros unexpanded, so `{replica}` resolves to this
//!    node). Replicated tables are `ATTACH`ed: the table reconnects to its existing replica in
//!    Keeper and queues a fetch for every part it lacks (ClickHouse's documented recovery after
//!    complete data loss; on 18.16 there is no `SYSTEM RESTORE REPLICA`). A replica Keeper does
//!    not know is `CREATE`d instead and clones the peer. Other tables are created as on the peer
//!    (non-replicated MergeTree data cannot come back from a peer and is reported);
//! 3. `SYSTEM SYNC REPLICA` waits for the fetches; then row counts per table and the ledger
//!    (`chgate_migrations`: applied versions) must equal the peer's.

use std::time::{Duration, Instant};

use chgate_clickhouse_http::{quote, quote_ident, Client};
use chgate_topology::ClickHouseNode;
use serde::{Deserialize, Serialize};

use crate::{ch, count, Error, Ops, Result};

/// Table name of the migration ledger (see `chgate-migrations`).
const LEDGER: &str = "chgate_migrations";

/// What a rebuild did and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RebuildReport {
    /// The rebuilt node.
    pub node: String,
    /// The peer it was rebuilt from.
    pub peer: String,
    /// Tables attached to their existing Keeper replica (data fetched from peers).
    pub attached: Vec<String>,
    /// Tables created (new replica, or non-replicated).
    pub created: Vec<String>,
    /// Non-replicated data tables recreated empty (their data lived only on the lost disk).
    pub data_lost: Vec<String>,
    /// Per replicated table: (table, rows on the peer, rows on the rebuilt node).
    pub rows: Vec<(String, u64, u64)>,
    /// Per database with a ledger: (database, versions on the peer, versions on the node).
    pub ledger: Vec<(String, Vec<u32>, Vec<u32>)>,
    /// Seconds taken.
    pub duration_s: f64,
}

impl RebuildReport {
    /// Rows and ledger equal the peer's.
    pub fn consistent(&self) -> bool {
        self.rows.iter().all(|(_, a, b)| a == b) && self.ledger.iter().all(|(_, a, b)| a == b)
    }
}

#[derive(Deserialize)]
struct TableRow {
    database: String,
    name: String,
    engine: String,
}

#[derive(Deserialize)]
struct Statement {
    statement: String,
}

/// Rebuilds `node_name` from a peer of its shard. The node must be running (empty or partly so);
/// tables it already has are left alone.
///
/// # Errors
/// [`Error::NotFound`] for an unknown node or no reachable peer; server errors naming the table;
/// [`Error::Verify`] when rows or ledger differ from the peer's after the sync.
pub async fn rebuild_replica(
    ops: &Ops,
    node_name: &str,
    progress: &dyn Fn(&str),
) -> Result<RebuildReport> {
    let started = Instant::now();
    let node = ops.node(node_name)?;
    let c = ops.client(&node, Duration::from_secs(180))?;
    c.version()
        .await
        .map_err(ch(format!("{node_name} must be running")))?;
    let (peer, p) = peer_of(ops, &node).await?;
    progress(&format!("rebuilding {} from {}", node.name, peer.name));
    let mut report = RebuildReport {
        node: node.name.clone(),
        peer: peer.name.clone(),
        ..RebuildReport::default()
    };
    let mut tables: Vec<TableRow> = p
        .rows("SELECT database, name, engine FROM system.tables WHERE database != 'system' ORDER BY database, name")
        .await
        .map_err(ch(format!("list tables on {}", peer.name)))?;
    // Data tables first: Distributed tables and views refer to them.
    tables.sort_by_key(|t| !t.engine.ends_with("MergeTree"));
    let mut dbs: Vec<&str> = tables.iter().map(|t| t.database.as_str()).collect();
    dbs.dedup();
    for db in dbs {
        c.execute(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            quote_ident(db)
        ))
        .await
        .map_err(ch(format!("CREATE DATABASE {db} on {node_name}")))?;
    }
    for t in &tables {
        recreate(&c, &p, t, &mut report, progress).await?;
    }
    compare(ops, &c, &p, &tables, &mut report, progress).await?;
    report.duration_s = started.elapsed().as_secs_f64();
    if report.consistent() {
        Ok(report)
    } else {
        let mut bad: Vec<String> = report
            .rows
            .iter()
            .filter(|(_, a, b)| a != b)
            .map(|(t, a, b)| format!("{t}: {b} rows on {node_name}, {a} on {}", report.peer))
            .collect();
        bad.extend(
            report
                .ledger
                .iter()
                .filter(|(_, a, b)| a != b)
                .map(|(d, a, b)| {
                    format!(
                        "{d} ledger: versions {b:?} on {node_name}, {a:?} on {}",
                        report.peer
                    )
                }),
        );
        Err(Error::Verify { mismatches: bad })
    }
}

async fn peer_of(ops: &Ops, node: &ClickHouseNode) -> Result<(ClickHouseNode, Client)> {
    for n in ops.topology().clickhouse_nodes() {
        if n.shard != node.shard || n.name == node.name {
            continue;
        }
        let c = ops.client(&n, Duration::from_secs(180))?;
        if c.version().await.is_ok() {
            return Ok((n, c));
        }
    }
    Err(Error::NotFound(format!(
        "no running peer of {} in shard {}: a replica can only be rebuilt from another replica of its shard",
        node.name, node.shard
    )))
}

async fn exists(c: &Client, db: &str, table: &str) -> Result<bool> {
    let n = c
        .query(&format!(
            "SELECT count() FROM system.tables WHERE database = {} AND name = {}",
            quote(db),
            quote(table)
        ))
        .await
        .map_err(ch(format!("look up {db}.{table}")))?;
    Ok(n.trim() == "1")
}

async fn recreate(
    c: &Client,
    p: &Client,
    t: &TableRow,
    report: &mut RebuildReport,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let key = format!("{}.{}", t.database, t.name);
    if exists(c, &t.database, &t.name).await? {
        return Ok(());
    }
    let full = format!("{}.{}", quote_ident(&t.database), quote_ident(&t.name));
    let create: Vec<Statement> = p
        .rows(&format!("SHOW CREATE TABLE {full}"))
        .await
        .map_err(ch(format!("SHOW CREATE TABLE {key} on {}", report.peer)))?;
    let create = create
        .into_iter()
        .next()
        .map(|s| s.statement)
        .unwrap_or_default();
    if t.engine.starts_with("Replicated") {
        let attach = create.replacen("CREATE TABLE", "ATTACH TABLE", 1);
        match c.execute(&attach).await {
            Ok(()) => {
                progress(&format!(
                    "attached {key} to its Keeper replica; parts are fetched"
                ));
                report.attached.push(key);
                return Ok(());
            }
            Err(e) => {
                tracing::info!(table = %key, error = %e, "ATTACH failed; creating a new replica");
            }
        }
    } else if t.engine.ends_with("MergeTree") {
        report.data_lost.push(key.clone());
    }
    c.execute(&create)
        .await
        .map_err(ch(format!("create {key} on {}", report.node)))?;
    progress(&format!("created {key}"));
    report.created.push(key);
    Ok(())
}

/// How long row counts may take to converge: a replica whose server crashed keeps its old Keeper
/// session (and `is_active` znode) until the session times out, and only then reactivates and
/// fetches.
fn convergence_limit(ops: &Ops) -> Duration {
    Duration::from_millis(u64::from(ops.topology().keeper.session_timeout_ms) * 2)
        + Duration::from_secs(30)
}

async fn synced_counts(
    c: &Client,
    p: &Client,
    full: &str,
    report: &RebuildReport,
) -> Result<(u64, u64)> {
    for (who, client) in [(&report.node, c), (&report.peer, p)] {
        client
            .query_with(
                &format!("SYSTEM SYNC REPLICA {full}"),
                &[("receive_timeout", "120")],
            )
            .await
            .map_err(ch(format!("SYSTEM SYNC REPLICA {full} on {who}")))?;
    }
    Ok((count(p, full).await?, count(c, full).await?))
}

async fn compare(
    ops: &Ops,
    c: &Client,
    p: &Client,
    tables: &[TableRow],
    report: &mut RebuildReport,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let deadline = Instant::now() + convergence_limit(ops);
    for t in tables.iter().filter(|t| t.engine.starts_with("Replicated")) {
        let full = format!("{}.{}", quote_ident(&t.database), quote_ident(&t.name));
        let mut told = false;
        let (want, got) = loop {
            let (want, got) = synced_counts(c, p, &full, report).await?;
            if want == got || Instant::now() > deadline {
                break (want, got);
            }
            if std::mem::replace(&mut told, true) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            progress(&format!("{}.{}: {got} of {want} rows so far; waiting for the replica to reactivate and fetch", t.database, t.name));
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        report
            .rows
            .push((format!("{}.{}", t.database, t.name), want, got));
        if t.name == LEDGER {
            let sql = format!(
                "SELECT DISTINCT version FROM {full} WHERE status = 'applied' ORDER BY version"
            );
            let versions = |text: String| -> Vec<u32> {
                text.lines().filter_map(|l| l.trim().parse().ok()).collect()
            };
            let a = versions(
                p.query(&sql)
                    .await
                    .map_err(ch(format!("read ledger {full}")))?,
            );
            let b = versions(
                c.query(&sql)
                    .await
                    .map_err(ch(format!("read ledger {full}")))?,
            );
            report.ledger.push((t.database.clone(), a, b));
        }
    }
    progress(&format!(
        "{} replicated tables compared with {}",
        report.rows.len(),
        report.peer
    ));
    Ok(())
}
