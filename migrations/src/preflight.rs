//! Pre-flight: before any DDL, every host of the topology must answer, carry the macros the
//! topology expects (`{cluster}`, `{shard}`, `{replica}`), know the cluster, and see Keeper.
//! Otherwise `up` refuses with a per-host table (or, with `--allow-unavailable`, goes on and reports
//! the unreachable hosts as pending).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chgate_clickhouse_http::{quote, ServerVersion};

use crate::cluster::{Cluster, Node};

/// What one host looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCheck {
    /// Node name.
    pub node: String,
    /// Server version, if it answered.
    pub version: Option<ServerVersion>,
    /// Problems found (empty = ready).
    pub problems: Vec<String>,
}

impl HostCheck {
    /// Whether the host answered at all.
    pub fn reachable(&self) -> bool {
        self.version.is_some()
    }
}

/// Checks every node.
pub async fn check(cluster: &Cluster) -> Vec<HostCheck> {
    let mut out = Vec::new();
    for n in &cluster.nodes {
        out.push(check_node(cluster, n).await);
    }
    out
}

async fn check_node(cluster: &Cluster, n: &Node) -> HostCheck {
    let mut hc = HostCheck {
        node: n.name.clone(),
        version: None,
        problems: Vec::new(),
    };
    match n.client.version().await {
        Ok(v) => hc.version = Some(v),
        Err(e) => {
            hc.problems.push(format!("unreachable: {e}"));
            return hc;
        }
    }
    match n
        .client
        .rows::<Macro>("SELECT macro, substitution FROM system.macros")
        .await
    {
        Ok(rows) => {
            let got: BTreeMap<String, String> = rows
                .into_iter()
                .map(|m| (m.macro_, m.substitution))
                .collect();
            hc.problems.extend(macro_problems(cluster, n, &got));
        }
        Err(e) => hc.problems.push(format!("cannot read macros: {e}")),
    }
    let hosts = n
        .client
        .query(&format!(
            "SELECT count() FROM system.clusters WHERE cluster = {}",
            quote(&cluster.name)
        ))
        .await;
    match hosts.map(|t| t.trim().parse::<usize>().unwrap_or(0)) {
        Ok(k) if k == cluster.nodes.len() => {}
        Ok(k) => hc.problems.push(format!(
            "cluster `{}` has {k} hosts in its config, the topology {}",
            cluster.name,
            cluster.nodes.len()
        )),
        Err(e) => hc
            .problems
            .push(format!("cannot read system.clusters: {e}")),
    }
    if let Err(e) = sees_keeper(n).await {
        hc.problems.push(format!("does not see Keeper: {e}"));
    }
    hc
}

/// Whether `n` reaches Keeper. A server whose Keeper node just went away reconnects to another
/// one, and an ensemble that lost its leader refuses clients until it elects a new one; both take
/// seconds, so a failure is retried for up to [`KEEPER_SETTLE`] before it counts.
async fn sees_keeper(n: &Node) -> std::result::Result<(), chgate_clickhouse_http::Error> {
    let started = std::time::Instant::now();
    loop {
        match n
            .client
            .query("SELECT count() FROM system.zookeeper WHERE path = '/'")
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.is_unreachable() || started.elapsed() >= KEEPER_SETTLE => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}

/// How long pre-flight gives a server to (re)connect to Keeper.
pub const KEEPER_SETTLE: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(serde::Deserialize)]
struct Macro {
    #[serde(rename = "macro")]
    macro_: String,
    substitution: String,
}

/// Differences between a node's macros and what the topology renders for it.
pub fn macro_problems(cluster: &Cluster, n: &Node, got: &BTreeMap<String, String>) -> Vec<String> {
    let want = [
        ("cluster", cluster.name.clone()),
        ("shard", n.shard.to_string()),
        ("replica", n.name.clone()),
    ];
    want.iter()
        .filter_map(|(k, v)| match got.get(*k) {
            Some(g) if g == v => None,
            Some(g) => Some(format!("macro {{{k}}} is {g:?}, expected {v:?}")),
            None => Some(format!("macro {{{k}}} is missing, expected {v:?}")),
        })
        .collect()
}

/// A fixed-width table: node, version, status.
pub fn render(checks: &[HostCheck]) -> String {
    let mut s = format!("{:<12} {:<10} {}\n", "HOST", "VERSION", "STATUS");
    for c in checks {
        let v = c.version.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let status = if c.problems.is_empty() {
            "ok".to_owned()
        } else {
            c.problems.join("; ")
        };
        let _ = writeln!(s, "{:<12} {:<10} {}", c.node, v, status);
    }
    s
}

/// Whether every host is ready.
pub fn all_ok(checks: &[HostCheck]) -> bool {
    checks.iter().all(|c| c.problems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_each_host_and_its_problem() {
        let checks = vec![
            HostCheck {
                node: "ch-s1r1".into(),
                version: ServerVersion::parse("18.16.1"),
                problems: vec![],
            },
            HostCheck {
                node: "ch-s1r2".into(),
                version: None,
                problems: vec!["unreachable: connection refused".into()],
            },
        ];
        let t = render(&checks);
        assert!(t.contains("ch-s1r1      18.16.1    ok"), "{t}");
        assert!(t.contains("ch-s1r2      -          unreachable"), "{t}");
        assert!(!all_ok(&checks));
    }
}
