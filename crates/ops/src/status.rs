//! Collects the facts of `chgate status` from every component, concurrently and with short
//! timeouts, reusing the `chgate local` probes (`probe::four_letter_word`, `probe::postgres`,
//! `probe::clickhouse_client`). What the facts mean is decided in [`crate::health`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chgate_clickhouse_http::{Client, ServerVersion};
use chgate_localstack::probe;
use chgate_topology::ClickHouseNode;
use serde::{Deserialize, Serialize};

use crate::health::{self, Problem, Thresholds};
use crate::Ops;

/// Everything `chgate status` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterStatus {
    /// Every ClickHouse host, shard-major.
    pub clickhouse: Vec<ClickHouseHost>,
    /// The Keeper ensemble.
    pub keeper: KeeperStatus,
    /// PostgreSQL.
    pub postgres: PostgresStatus,
    /// HAProxy's view of its backends.
    pub haproxy: HaproxyStatus,
    /// Every gateway, probed directly (not through HAProxy).
    pub gateways: Vec<GatewayStatus>,
    /// Why the cluster is degraded; empty when healthy.
    pub problems: Vec<Problem>,
}

impl ClusterStatus {
    /// Whether nothing is degraded.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One ClickHouse server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClickHouseHost {
    /// Topology name (`ch-s1r2`).
    pub name: String,
    /// Shard number.
    pub shard: u32,
    /// Replica number.
    pub replica: u32,
    /// Whether it answered.
    pub up: bool,
    /// Why not.
    pub error: Option<String>,
    /// `version()`.
    pub version: Option<String>,
    /// `uptime()` in seconds.
    pub uptime_s: u64,
    /// Every replicated table on it.
    pub replicas: Vec<ReplicaTable>,
    /// Partitions with the most active parts (at most 5).
    pub busiest_partitions: Vec<PartitionParts>,
    /// MergeTree setting: inserts are slowed at this many parts in a partition.
    pub parts_to_delay_insert: u64,
    /// MergeTree setting: inserts fail at this many parts in a partition.
    pub parts_to_throw_insert: u64,
    /// Distributed-table files waiting to be sent to other shards.
    pub distributed_pending_files: u64,
}

/// One row of `system.replicas`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicaTable {
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// No Keeper session: inserts fail with code 242.
    #[serde(deserialize_with = "bool_from_u8")]
    pub is_readonly: bool,
    /// Replication queue entries.
    pub queue_size: u64,
    /// Seconds this replica is behind.
    pub absolute_delay: u64,
    /// Replicas of the table Keeper knows.
    pub total_replicas: u64,
    /// Of those, with a live session.
    pub active_replicas: u64,
}

fn bool_from_u8<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(u8::deserialize(d)? != 0)
}

/// Active parts in one partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PartitionParts {
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// Partition id.
    pub partition: String,
    /// Active parts.
    pub parts: u64,
}

/// The Keeper ensemble.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeeperStatus {
    /// Each node.
    pub nodes: Vec<KeeperNodeStatus>,
    /// The leader's name.
    pub leader: Option<String>,
    /// Why the ensemble has no quorum, when it has none.
    pub error: Option<String>,
}

/// One Keeper node, from `mntr`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeeperNodeStatus {
    /// Name (`keeper-2`).
    pub name: String,
    /// `leader` / `follower`, `None` when not serving.
    pub mode: Option<String>,
    /// Why not serving.
    pub error: Option<String>,
    /// Server version.
    pub version: Option<String>,
    /// Znodes.
    pub znode_count: u64,
    /// Average request latency, ms.
    pub avg_latency_ms: f64,
    /// Maximum request latency, ms.
    pub max_latency_ms: f64,
    /// Followers (leader only).
    pub followers: u64,
    /// Followers in sync (leader only).
    pub synced_followers: u64,
    /// Requests waiting.
    pub outstanding_requests: u64,
}

/// PostgreSQL.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PostgresStatus {
    /// Whether it accepts a login.
    pub up: bool,
    /// Server version.
    pub version: Option<String>,
    /// Why not.
    pub error: Option<String>,
    /// chgate's and Grafana's databases and whether each exists.
    pub databases: Vec<(String, bool)>,
}

/// HAProxy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HaproxyStatus {
    /// Why the stats page could not be read.
    pub error: Option<String>,
    /// Every backend server.
    pub servers: Vec<HaproxyServer>,
}

/// One backend server in HAProxy's stats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HaproxyServer {
    /// Backend (`gateways`, `grafanas`).
    pub backend: String,
    /// Server name.
    pub server: String,
    /// `UP`, `DOWN`, `MAINT`, `UP 1/2`, ...
    pub status: String,
    /// Last health check result (`L7OK`, `L4CON`, ...).
    pub check: String,
}

/// One gateway.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewayStatus {
    /// Name (`gateway-1`).
    pub name: String,
    /// Base URL.
    pub url: String,
    /// `/readyz` answered 200.
    pub ready: bool,
    /// `/readyz` body or the connection error.
    pub readyz: String,
    /// `chgate_spool_bytes` (0 when the gateway does not export it).
    pub spool_bytes: u64,
    /// `chgate_spool_segments`.
    pub spool_segments: u64,
    /// `chgate_dlq_rows`: rows set aside that need a replay.
    pub dlq_rows: u64,
    /// `shard` labels whose `chgate_shard_breaker_open` is 1 (a shard number, or the lane name
    /// the gateway uses).
    pub breakers_open: Vec<String>,
}

/// Collects every fact and assesses them.
pub async fn collect(ops: &Ops, th: &Thresholds, judge_grafana: bool) -> ClusterStatus {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap_or_default();
    let hosts = ops.topology().clickhouse_nodes().into_iter().map(|n| {
        let ops = ops.clone();
        tokio::spawn(async move { clickhouse_host(&ops, &n).await })
    });
    let hosts: Vec<_> = hosts.collect();
    let (keeper, postgres, haproxy, gateways) = tokio::join!(
        keeper(ops),
        postgres(ops),
        haproxy(ops, &http),
        gateways(ops, &http)
    );
    let mut clickhouse = Vec::new();
    for h in hosts {
        if let Ok(h) = h.await {
            clickhouse.push(h);
        }
    }
    let mut s = ClusterStatus {
        clickhouse,
        keeper,
        postgres,
        haproxy,
        gateways,
        problems: Vec::new(),
    };
    s.problems = health::assess(&s, th, judge_grafana);
    s
}

async fn clickhouse_host(ops: &Ops, n: &ClickHouseNode) -> ClickHouseHost {
    let mut h = ClickHouseHost {
        name: n.name.clone(),
        shard: n.shard,
        replica: n.replica,
        ..ClickHouseHost::default()
    };
    let facts = async {
        let c = ops.probe_client(n).map_err(|e| e.to_string())?;
        fill_host(ops, &c, &mut h).await.map_err(|e| e.to_string())
    };
    match facts.await {
        Ok(()) => h.up = true,
        Err(e) => h.error = Some(e),
    }
    h
}

#[derive(Deserialize)]
struct Basics {
    version: String,
    uptime: u64,
}

#[derive(Deserialize)]
struct Setting {
    name: String,
    value: String,
}

async fn fill_host(
    ops: &Ops,
    c: &Client,
    h: &mut ClickHouseHost,
) -> Result<(), chgate_clickhouse_http::Error> {
    let b: Vec<Basics> = c
        .rows("SELECT version() AS version, toUInt64(uptime()) AS uptime")
        .await?;
    if let Some(b) = b.first() {
        h.version = Some(b.version.clone());
        h.uptime_s = b.uptime;
    }
    h.replicas = c
        .rows(
            "SELECT database, table, is_readonly, toUInt64(queue_size) AS queue_size, \
             toUInt64(absolute_delay) AS absolute_delay, toUInt64(total_replicas) AS total_replicas, \
             toUInt64(active_replicas) AS active_replicas FROM system.replicas ORDER BY database, table",
        )
        .await?;
    h.busiest_partitions = c
        .rows(
            "SELECT database, table, partition_id AS partition, count() AS parts FROM system.parts \
             WHERE active GROUP BY database, table, partition_id ORDER BY parts DESC LIMIT 5",
        )
        .await?;
    let settings: Vec<Setting> = c
        .rows(
            "SELECT name, value FROM system.merge_tree_settings \
             WHERE name IN ('parts_to_delay_insert', 'parts_to_throw_insert')",
        )
        .await?;
    for s in settings {
        let v = s.value.parse().unwrap_or(0);
        match s.name.as_str() {
            "parts_to_delay_insert" => h.parts_to_delay_insert = v,
            _ => h.parts_to_throw_insert = v,
        }
    }
    h.distributed_pending_files = distributed_pending(ops, c, h).await?;
    Ok(())
}

/// Files Distributed tables still have to send: `system.distribution_queue` where the server has
/// it (20.x), else the `.bin` files in the tables' shard directories on this machine (local rig).
async fn distributed_pending(
    ops: &Ops,
    c: &Client,
    h: &ClickHouseHost,
) -> Result<u64, chgate_clickhouse_http::Error> {
    let modern = h
        .version
        .as_deref()
        .and_then(ServerVersion::parse)
        .is_some_and(|v| v.major >= 21);
    if modern {
        let n = c
            .query("SELECT toUInt64(sum(data_files)) FROM system.distribution_queue")
            .await?;
        return Ok(n.trim().parse().unwrap_or(0));
    }
    #[derive(Deserialize)]
    struct T {
        database: String,
        name: String,
    }
    let tables: Vec<T> = c
        .rows("SELECT database, name FROM system.tables WHERE engine = 'Distributed'")
        .await?;
    let Ok(data) = ops.local_data_dir(&h.name) else {
        return Ok(0);
    };
    Ok(tables
        .iter()
        .map(|t| count_bin_files(&data.join("data").join(&t.database).join(&t.name)))
        .sum())
}

fn count_bin_files(table_dir: &Path) -> u64 {
    let Ok(shards) = std::fs::read_dir(table_dir) else {
        return 0;
    };
    shards
        .flatten()
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .flat_map(|files| files.flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "bin"))
        .count() as u64
}

async fn keeper(ops: &Ops) -> KeeperStatus {
    let host = ops.topology().network.listen.to_string();
    let mut out = KeeperStatus::default();
    for k in ops.topology().keeper_nodes() {
        let mut n = KeeperNodeStatus {
            name: k.name.clone(),
            ..KeeperNodeStatus::default()
        };
        match probe::four_letter_word(&host, k.client_port, "mntr").await {
            Ok(text) => fill_keeper(&mut n, &text),
            Err(e) => n.error = Some(e),
        }
        if n.mode.as_deref() == Some("leader") {
            out.leader = Some(n.name.clone());
        }
        out.nodes.push(n);
    }
    let serving = out.nodes.iter().filter(|n| n.mode.is_some()).count();
    let quorum = out.nodes.len() / 2 + 1;
    if out.leader.is_none() || serving < quorum {
        out.error = Some(format!(
            "no quorum: {serving} of {} nodes serving, {quorum} needed; replicated tables are readonly",
            out.nodes.len()
        ));
    }
    out
}

fn fill_keeper(n: &mut KeeperNodeStatus, text: &str) {
    let m = health::parse_mntr(text);
    let num = |k: &str| m.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    match m.get("zk_server_state") {
        Some(mode) if mode == "leader" || mode == "follower" || mode == "standalone" => {
            n.mode = Some(mode.clone());
        }
        _ => {
            let first = text.lines().next().unwrap_or("no reply").trim();
            n.error = Some(format!("not serving: {first}"));
        }
    }
    n.version = m
        .get("zk_version")
        .map(|v| v.split([',', '-']).next().unwrap_or_default().to_owned());
    n.znode_count = num("zk_znode_count") as u64;
    n.avg_latency_ms = num("zk_avg_latency");
    n.max_latency_ms = num("zk_max_latency");
    // ClickHouse Keeper reports zk_followers, ZooKeeper 3.8 zk_learners.
    n.followers = num("zk_followers").max(num("zk_learners")) as u64;
    n.synced_followers = num("zk_synced_followers") as u64;
    n.outstanding_requests = num("zk_outstanding_requests") as u64;
}

async fn postgres(ops: &Ops) -> PostgresStatus {
    let t = ops.topology();
    let mut s = PostgresStatus::default();
    match probe::postgres(t, ops.pg_password()).await {
        Ok(v) => {
            s.up = true;
            s.version = Some(v);
        }
        Err(e) => {
            s.error = Some(e);
            return s;
        }
    }
    let wanted = [
        t.postgres.database.clone(),
        t.postgres.grafana_database.clone(),
    ];
    let present = crate::backup::postgres::existing_databases(ops)
        .await
        .unwrap_or_default();
    s.databases = wanted
        .into_iter()
        .map(|d| {
            let ok = present.contains(&d);
            (d, ok)
        })
        .collect();
    s
}

async fn haproxy(ops: &Ops, http: &reqwest::Client) -> HaproxyStatus {
    let t = ops.topology();
    let url = format!(
        "http://{}:{}/;csv",
        t.network.listen,
        t.haproxy_stats_port()
    );
    match get_text(http, &url).await {
        Ok((200, text)) => HaproxyStatus {
            error: None,
            servers: health::parse_haproxy_csv(&text),
        },
        Ok((code, _)) => HaproxyStatus {
            error: Some(format!("stats {url}: HTTP {code}")),
            servers: Vec::new(),
        },
        Err(e) => HaproxyStatus {
            error: Some(format!("stats {url}: {e}")),
            servers: Vec::new(),
        },
    }
}

async fn get_text(http: &reqwest::Client, url: &str) -> Result<(u16, String), reqwest::Error> {
    let r = http.get(url).send().await?;
    let code = r.status().as_u16();
    Ok((code, r.text().await?))
}

async fn gateways(ops: &Ops, http: &reqwest::Client) -> Vec<GatewayStatus> {
    let host = ops.topology().network.listen;
    let mut out = Vec::new();
    for g in ops.topology().gateways() {
        let url = format!("http://{host}:{}", g.port);
        let mut s = GatewayStatus {
            name: g.name.clone(),
            url: url.clone(),
            ..GatewayStatus::default()
        };
        match get_text(http, &format!("{url}/readyz")).await {
            Ok((code, body)) => {
                s.ready = code == 200;
                s.readyz = body;
            }
            Err(e) => s.readyz = e.to_string(),
        }
        if let Ok((200, text)) = get_text(http, &format!("{url}/metrics")).await {
            fill_gateway_metrics(&mut s, &text);
        }
        out.push(s);
    }
    out
}

/// Spool, DLQ and breaker gauges; a metric the gateway does not export counts as 0.
fn fill_gateway_metrics(s: &mut GatewayStatus, text: &str) {
    let sum = |name: &str| -> u64 {
        health::prometheus_samples(text, name)
            .iter()
            .map(|(_, v)| *v as u64)
            .sum()
    };
    s.spool_bytes = sum("chgate_spool_bytes");
    s.spool_segments = sum("chgate_spool_segments");
    s.dlq_rows = sum("chgate_dlq_rows");
    let mut open: BTreeMap<String, bool> = BTreeMap::new();
    for (labels, v) in health::prometheus_samples(text, "chgate_shard_breaker_open") {
        if let Some(shard) = health::label(&labels, "shard") {
            open.insert(shard.to_owned(), v >= 1.0);
        }
    }
    s.breakers_open = open
        .into_iter()
        .filter(|(_, o)| *o)
        .map(|(k, _)| k)
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_metrics_absent_are_zero_and_breakers_are_read_per_shard() {
        let mut s = GatewayStatus::default();
        fill_gateway_metrics(&mut s, "chgate_rows_total 5\n");
        assert_eq!(
            (s.spool_bytes, s.dlq_rows, s.breakers_open.len()),
            (0, 0, 0)
        );
        fill_gateway_metrics(
            &mut s,
            "chgate_spool_bytes 4096\nchgate_spool_segments 2\nchgate_dlq_rows 7\n\
             chgate_shard_breaker_open{shard=\"1\"} 0\nchgate_shard_breaker_open{shard=\"2\"} 1\n",
        );
        assert_eq!((s.spool_bytes, s.spool_segments, s.dlq_rows), (4096, 2, 7));
        assert_eq!(s.breakers_open, vec!["2".to_owned()]);
    }

    #[test]
    fn keeper_not_serving_has_no_mode() {
        let mut n = KeeperNodeStatus::default();
        fill_keeper(
            &mut n,
            "This ZooKeeper instance is not currently serving requests\n",
        );
        assert!(
            n.mode.is_none()
                && n.error
                    .as_deref()
                    .is_some_and(|e| e.contains("not serving"))
        );
        let mut n = KeeperNodeStatus::default();
        fill_keeper(
            &mut n,
            "zk_version\t3.8.0-1, built on x\nzk_server_state\tleader\nzk_znode_count\t77\nzk_avg_latency\t0.5\nzk_followers\t2\n",
        );
        assert_eq!(n.mode.as_deref(), Some("leader"));
        assert_eq!((n.znode_count, n.followers), (77, 2));
        assert_eq!(n.version.as_deref(), Some("3.8.0"));
    }

    #[test]
    fn bin_files_are_counted_in_shard_dirs() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = tmp.path().join("default@127%2E0%2E0%2E1:9000");
        std::fs::create_dir_all(&d).expect("mkdir");
        for f in ["1.bin", "2.bin", "tmp"] {
            std::fs::write(d.join(f), b"x").expect("write");
        }
        assert_eq!(count_bin_files(tmp.path()), 2);
        assert_eq!(count_bin_files(&tmp.path().join("none")), 0);
    }
}
