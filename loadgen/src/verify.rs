//! End-to-end verification: after a run, make every replica catch up (`SYSTEM SYNC REPLICA`),
//! count the run's rows in `samples_local` on every node, and compare with the acked count.
//! Each shard's replicas must agree and the shards must add up to exactly the acked rows: fewer
//! means loss, more means duplicates (or rows of failed requests that landed anyway).

use chgate_clickhouse_http::{quote, quote_ident, Client};
use serde::Serialize;

use crate::LoadgenError;

/// Rows of the run found on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeCount {
    /// Node name (`ch-s1r1`).
    pub node: String,
    /// Shard, 1-based.
    pub shard: u32,
    /// Replica, 1-based.
    pub replica: u32,
    /// Rows of the run in its `samples_local`.
    pub rows: u64,
    /// Why the node could not be counted (then `rows` is 0 and not used).
    pub error: Option<String>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Rows the target acknowledged.
    pub acked: u64,
    /// Rows found: the sum over shards (first replica of each).
    pub found: u64,
    /// Per node.
    pub nodes: Vec<NodeCount>,
    /// Everything that is wrong; empty when the run verified.
    pub problems: Vec<String>,
}

impl Verification {
    /// No loss, no duplicates, replicas in agreement.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Judges per-node counts against the acked rows (pure). A node that could not be counted is a
/// problem of its own; its shard is judged by the replicas that answered.
pub fn judge(acked: u64, nodes: Vec<NodeCount>) -> Verification {
    let mut problems = Vec::new();
    let mut shards: Vec<u32> = nodes.iter().map(|n| n.shard).collect();
    shards.dedup();
    let mut found = 0;
    for n in nodes.iter().filter(|n| n.error.is_some()) {
        problems.push(format!(
            "{} not checked: {}",
            n.node,
            n.error.as_deref().unwrap_or_default()
        ));
    }
    for shard in shards {
        let counts: Vec<&NodeCount> = nodes
            .iter()
            .filter(|n| n.shard == shard && n.error.is_none())
            .collect();
        let Some(first) = counts.first() else {
            problems.push(format!("shard {shard}: no replica could be counted"));
            continue;
        };
        found += first.rows;
        for n in &counts[1..] {
            if n.rows != first.rows {
                problems.push(format!(
                    "shard {shard}: replicas disagree ({} has {}, {} has {})",
                    first.node, first.rows, n.node, n.rows
                ));
            }
        }
    }
    if found < acked {
        problems.push(format!(
            "{} acked rows are missing ({found} found, {acked} acked)",
            acked - found
        ));
    } else if found > acked {
        problems.push(format!(
            "{} rows more than acked ({found} found, {acked} acked): duplicates, or rows of failed requests",
            found - acked
        ));
    }
    Verification {
        acked,
        found,
        nodes,
        problems,
    }
}

/// A node to check.
#[derive(Debug, Clone)]
pub struct Node {
    /// Name.
    pub name: String,
    /// Shard, 1-based.
    pub shard: u32,
    /// Replica, 1-based.
    pub replica: u32,
    /// Its client.
    pub client: Client,
}

async fn count(n: &Node, table: &str, sql: &str) -> Result<u64, String> {
    n.client
        .execute(&format!("SYSTEM SYNC REPLICA {table}"))
        .await
        .map_err(|e| format!("SYSTEM SYNC REPLICA: {e}"))?;
    let text = n.client.query(sql).await.map_err(|e| e.to_string())?;
    text.trim()
        .parse()
        .map_err(|_| format!("unexpected count answer {:?}", text.trim()))
}

/// Syncs every replica and counts rows whose metric starts with `prefix` in
/// `database.samples_local` on each node. A node that fails is reported in the verdict (so a
/// run with one replica down still says what the others hold).
///
/// # Errors
/// None today; the `Result` leaves room for setup failures.
pub async fn verify(
    nodes: &[Node],
    database: &str,
    prefix: &str,
    acked: u64,
) -> Result<Verification, LoadgenError> {
    let table = format!("{}.{}", quote_ident(database), quote_ident("samples_local"));
    let sql = format!(
        "SELECT count() FROM {table} WHERE substring(metric, 1, {}) = {}",
        prefix.len(),
        quote(prefix)
    );
    let mut counts = Vec::new();
    for n in nodes {
        let result = count(n, &table, &sql).await;
        counts.push(NodeCount {
            node: n.name.clone(),
            shard: n.shard,
            replica: n.replica,
            rows: *result.as_ref().unwrap_or(&0),
            error: result.err(),
        });
    }
    Ok(judge(acked, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(node: &str, shard: u32, replica: u32, rows: u64) -> NodeCount {
        NodeCount {
            node: node.into(),
            shard,
            replica,
            rows,
            error: None,
        }
    }

    #[test]
    fn an_unreachable_replica_is_reported_and_its_shard_judged_by_the_other() {
        let mut down = n("b", 1, 2, 0);
        down.error = Some("connection refused".into());
        let v = judge(10, vec![n("a", 1, 1, 6), down, n("c", 2, 1, 4)]);
        assert_eq!(v.found, 10);
        assert_eq!(v.problems, ["b not checked: connection refused"]);
        let mut only = n("c", 2, 1, 0);
        only.error = Some("timeout".into());
        let v = judge(10, vec![n("a", 1, 1, 6), only]);
        assert!(v.problems.iter().any(|p| p.contains("shard 2: no replica")));
    }

    #[test]
    fn exact_counts_verify() {
        let v = judge(
            10,
            vec![
                n("a", 1, 1, 6),
                n("b", 1, 2, 6),
                n("c", 2, 1, 4),
                n("d", 2, 2, 4),
            ],
        );
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(v.found, 10);
    }

    #[test]
    fn loss_duplicates_and_replica_drift_are_reported() {
        let lost = judge(11, vec![n("a", 1, 1, 6), n("c", 2, 1, 4)]);
        assert!(
            lost.problems[0].contains("1 acked rows are missing"),
            "{:?}",
            lost.problems
        );
        let dup = judge(9, vec![n("a", 1, 1, 6), n("c", 2, 1, 4)]);
        assert!(dup.problems[0].contains("more than acked"));
        let drift = judge(10, vec![n("a", 1, 1, 6), n("b", 1, 2, 5), n("c", 2, 1, 4)]);
        assert!(drift.problems[0].contains("replicas disagree"));
        assert_eq!(drift.problems.len(), 1);
    }
}
