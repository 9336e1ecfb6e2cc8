//! The pure half of `chgate status`: parsers for what the servers answer (ZooKeeper `mntr`,
//! HAProxy's stats CSV, the gateway's Prometheus text) and [`assess`], which turns a
//! [`ClusterStatus`] into the list of problems that make the cluster degraded.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::status::{ClusterStatus, HaproxyServer};

/// Limits beyond which a healthy-looking cluster counts as degraded.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Replication `absolute_delay` (seconds) above which a replica is lagging. Default 60.
    pub max_replication_delay_s: u64,
    /// Replication queue entries above which a replica is lagging. Default 1000.
    pub max_replication_queue: u64,
    /// Distributed `.bin` files waiting to be sent above which a host is behind. Default 100.
    pub max_distributed_pending: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_replication_delay_s: 60,
            max_replication_queue: 1000,
            max_distributed_pending: 100,
        }
    }
}

/// One reason the cluster is degraded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What it concerns: `ch-s1r2`, `keeper`, `postgres`, `haproxy`, `gateway-1`.
    pub component: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

fn problem(component: &str, message: String) -> Problem {
    Problem {
        component: component.to_owned(),
        message,
    }
}

/// Every problem in `s`; empty means healthy. Grafana's HAProxy backend counts only when
/// `judge_grafana` (the local rig runs no Grafana, so its servers are always down there).
pub fn assess(s: &ClusterStatus, th: &Thresholds, judge_grafana: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    clickhouse_problems(s, th, &mut out);
    if let Some(e) = &s.keeper.error {
        out.push(problem("keeper", e.clone()));
    }
    for n in s.keeper.nodes.iter().filter(|n| n.mode.is_none()) {
        let why = n.error.clone().unwrap_or_else(|| "not serving".into());
        out.push(problem(&n.name, why));
    }
    if !s.postgres.up {
        let why = s.postgres.error.clone().unwrap_or_default();
        out.push(problem("postgres", format!("down: {why}")));
    }
    for (db, present) in &s.postgres.databases {
        if !present {
            out.push(problem("postgres", format!("database `{db}` is missing")));
        }
    }
    haproxy_problems(s, judge_grafana, &mut out);
    for g in &s.gateways {
        if !g.ready {
            out.push(problem(&g.name, format!("/readyz: {}", g.readyz.trim())));
        }
        if !g.breakers_open.is_empty() {
            out.push(problem(
                &g.name,
                format!("shard breaker open for {}", g.breakers_open.join(", ")),
            ));
        }
    }
    out
}

fn clickhouse_problems(s: &ClusterStatus, th: &Thresholds, out: &mut Vec<Problem>) {
    for h in &s.clickhouse {
        if !h.up {
            let why = h.error.clone().unwrap_or_default();
            out.push(problem(&h.name, format!("down: {why}")));
            continue;
        }
        let readonly: Vec<String> = h
            .replicas
            .iter()
            .filter(|r| r.is_readonly)
            .map(|r| format!("{}.{}", r.database, r.table))
            .collect();
        if !readonly.is_empty() {
            out.push(problem(
                &h.name,
                format!(
                    "{} of {} replicated tables readonly (no Keeper session; inserts fail with code 242): {}",
                    readonly.len(),
                    h.replicas.len(),
                    readonly.join(", ")
                ),
            ));
        }
        for r in &h.replicas {
            let t = format!("{}.{}", r.database, r.table);
            if r.absolute_delay > th.max_replication_delay_s
                || r.queue_size > th.max_replication_queue
            {
                out.push(problem(
                    &h.name,
                    format!(
                        "{t} lags: replication queue {} entries, delay {} s",
                        r.queue_size, r.absolute_delay
                    ),
                ));
            }
        }
        for p in &h.busiest_partitions {
            if p.parts >= h.parts_to_delay_insert {
                out.push(problem(
                    &h.name,
                    format!(
                        "{}.{} partition {} has {} parts (inserts slow down at {}, fail at {})",
                        p.database,
                        p.table,
                        p.partition,
                        p.parts,
                        h.parts_to_delay_insert,
                        h.parts_to_throw_insert
                    ),
                ));
            }
        }
        if h.distributed_pending_files > th.max_distributed_pending {
            out.push(problem(
                &h.name,
                format!(
                    "{} Distributed insert files wait to be sent",
                    h.distributed_pending_files
                ),
            ));
        }
    }
    missing_replicas(s, out);
}

/// A replicated table present on one replica of a shard and missing on another (a rebuilt or
/// wiped replica) is a replica that holds none of the shard's data.
fn missing_replicas(s: &ClusterStatus, out: &mut Vec<Problem>) {
    let mut by_shard: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for h in s.clickhouse.iter().filter(|h| h.up) {
        by_shard.entry(h.shard).or_default().extend(
            h.replicas
                .iter()
                .map(|r| format!("{}.{}", r.database, r.table)),
        );
    }
    for h in s.clickhouse.iter().filter(|h| h.up) {
        let mine: BTreeSet<String> = h
            .replicas
            .iter()
            .map(|r| format!("{}.{}", r.database, r.table))
            .collect();
        let missing: Vec<&String> = by_shard
            .get(&h.shard)
            .map(|all| all.difference(&mine).collect())
            .unwrap_or_default();
        if !missing.is_empty() {
            out.push(problem(
                &h.name,
                format!(
                    "lacks replicated tables its shard peer has: {} (rebuild: chgate backup rebuild-replica {})",
                    missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "),
                    h.name
                ),
            ));
        }
    }
}

fn haproxy_problems(s: &ClusterStatus, judge_grafana: bool, out: &mut Vec<Problem>) {
    if let Some(e) = &s.haproxy.error {
        out.push(problem("haproxy", e.clone()));
        return;
    }
    let judged = |srv: &HaproxyServer| judge_grafana || !srv.backend.starts_with("grafana");
    for srv in s.haproxy.servers.iter().filter(|x| judged(x)) {
        if !srv.status.starts_with("UP") {
            out.push(problem(
                "haproxy",
                format!(
                    "backend {} server {} is {} ({})",
                    srv.backend, srv.server, srv.status, srv.check
                ),
            ));
        }
    }
}

/// Key/value lines of ZooKeeper's `mntr` (`zk_server_state\tleader`).
pub fn parse_mntr(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The servers of HAProxy's `;csv` stats (rows other than FRONTEND/BACKEND aggregates).
pub fn parse_haproxy_csv(text: &str) -> Vec<HaproxyServer> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(st)) = (col("pxname"), col("svname"), col("status")) else {
        return Vec::new();
    };
    let check = col("check_status");
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > st && f[sv] != "FRONTEND" && f[sv] != "BACKEND")
        .map(|f| HaproxyServer {
            backend: f[px].to_owned(),
            server: f[sv].to_owned(),
            status: f[st].to_owned(),
            check: check.and_then(|c| f.get(c)).unwrap_or(&"").to_string(),
        })
        .collect()
}

/// Samples of one metric in Prometheus text: (labels text, value). `name` must match exactly
/// (`chgate_spool_bytes` does not match `chgate_spool_bytes_total`).
pub fn prometheus_samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let (labels, v) = r.split_once('}')?;
                    (labels.to_owned(), v)
                }
                None if rest.starts_with(' ') => (String::new(), rest),
                None => return None,
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            Some((labels, value))
        })
        .collect()
}

/// The value of label `key` in a labels text (`shard="2",x="y"`).
pub fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{ClickHouseHost, GatewayStatus, ReplicaTable};

    #[test]
    fn mntr_lines_become_a_map() {
        let m = parse_mntr("zk_version\t3.8.0-x\nzk_server_state\tleader\nzk_znode_count\t42\n");
        assert_eq!(m["zk_server_state"], "leader");
        assert_eq!(m["zk_znode_count"], "42");
    }

    #[test]
    fn haproxy_csv_lists_servers_not_aggregates() {
        let csv = "# pxname,svname,qcur,status,check_status\n\
                   gateway,FRONTEND,,OPEN,\n\
                   gateways,gateway-1,0,UP,L7OK\n\
                   gateways,gateway-2,0,DOWN,L4CON\n\
                   gateways,BACKEND,0,UP,\n";
        let s = parse_haproxy_csv(csv);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (
                s[1].server.as_str(),
                s[1].status.as_str(),
                s[1].check.as_str()
            ),
            ("gateway-2", "DOWN", "L4CON")
        );
    }

    #[test]
    fn prometheus_samples_match_the_exact_name_and_read_labels() {
        let text = "# HELP chgate_spool_bytes x\nchgate_spool_bytes 12\nchgate_spool_bytes_total 99\n\
                    chgate_shard_breaker_open{shard=\"1\"} 0\nchgate_shard_breaker_open{shard=\"2\"} 1\n";
        assert_eq!(
            prometheus_samples(text, "chgate_spool_bytes"),
            vec![(String::new(), 12.0)]
        );
        let b = prometheus_samples(text, "chgate_shard_breaker_open");
        assert_eq!(b.len(), 2);
        assert_eq!(label(&b[1].0, "shard"), Some("2"));
        assert!(prometheus_samples(text, "chgate_dlq_rows").is_empty());
    }

    fn host(name: &str, shard: u32, tables: &[&str]) -> ClickHouseHost {
        ClickHouseHost {
            name: name.into(),
            shard,
            up: true,
            parts_to_delay_insert: 150,
            parts_to_throw_insert: 300,
            replicas: tables
                .iter()
                .map(|t| ReplicaTable {
                    database: "db".into(),
                    table: (*t).into(),
                    ..ReplicaTable::default()
                })
                .collect(),
            ..ClickHouseHost::default()
        }
    }

    #[test]
    fn healthy_cluster_has_no_problems_and_each_fault_is_named() {
        let mut s = ClusterStatus {
            clickhouse: vec![host("a", 1, &["t"]), host("b", 1, &["t"])],
            ..ClusterStatus::default()
        };
        s.postgres.up = true;
        s.keeper.nodes = vec![];
        let th = Thresholds::default();
        assert_eq!(assess(&s, &th, false), vec![]);

        s.clickhouse[1].replicas.clear();
        let p = assess(&s, &th, false);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].component == "b" && p[0].message.contains("db.t"),
            "{p:?}"
        );

        s.clickhouse[1] = host("b", 1, &["t"]);
        s.clickhouse[0].replicas[0].is_readonly = true;
        s.clickhouse[1].replicas[0].absolute_delay = 61;
        s.gateways.push(GatewayStatus {
            name: "gateway-1".into(),
            ready: true,
            breakers_open: vec!["2".into()],
            ..GatewayStatus::default()
        });
        s.haproxy.servers = parse_haproxy_csv(
            "# pxname,svname,status\ngrafanas,grafana-1,DOWN\ngateways,gateway-1,DOWN\n",
        );
        let msgs: Vec<String> = assess(&s, &th, false)
            .into_iter()
            .map(|p| format!("{}: {}", p.component, p.message))
            .collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(msgs[0].contains("readonly") && msgs[1].contains("delay 61"));
        assert!(msgs[2].contains("gateway-1 is DOWN") && msgs[3].contains("breaker"));
        assert_eq!(
            assess(&s, &th, true).len(),
            5,
            "grafana judged when deployed"
        );
    }
}
