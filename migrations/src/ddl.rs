//! Runs one `ON CLUSTER` statement and reads its per-host outcome.
//!
//! ClickHouse answers an `ON CLUSTER` statement with one row per host (`host, port, status, error,
//! num_hosts_remaining, num_hosts_active`). We send `wait_end_of_query=1` so a host error arrives
//! as an HTTP error naming that host (`There was an error on [h:p]: ...`). When the wait exceeds
//! `distributed_ddl_task_timeout` the server answers code 159 naming the Keeper task
//! (`Watching task /clickhouse/task_queue/ddl/query-N is executing longer than ...`); we then read
//! the task's host list and its `finished/` children through `system.zookeeper` (which every
//! version has; `system.distributed_ddl_queue` needs 20.12) and wait, bounded, for the rest.
//! See <https://clickhouse.com/docs/en/sql-reference/distributed-ddl>.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chgate_clickhouse_http::quote;

use crate::cluster::{Cluster, Node};
use crate::error::{Error, Result};
use crate::sql;

/// ClickHouse `TIMEOUT_EXCEEDED`, returned when an `ON CLUSTER` wait ran out.
pub const CODE_TIMEOUT: u32 = 159;

/// How long to wait for hosts.
#[derive(Debug, Clone, Copy)]
pub struct DdlSettings {
    /// `distributed_ddl_task_timeout` sent with each statement. Default 60 s.
    pub server_wait: Duration,
    /// After a timeout, how much longer we poll Keeper for the pending hosts. Default 60 s.
    pub extra_wait: Duration,
}

impl Default for DdlSettings {
    fn default() -> Self {
        DdlSettings {
            server_wait: Duration::from_secs(60),
            extra_wait: Duration::from_secs(60),
        }
    }
}

/// Which statement is running, for messages.
#[derive(Debug, Clone, Copy)]
pub struct StatementRef<'a> {
    /// File name.
    pub file: &'a str,
    /// 1-based statement number.
    pub statement: usize,
}

/// One row of an `ON CLUSTER` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    /// Host as the cluster config names it.
    pub host: String,
    /// Native port.
    pub port: u16,
    /// 0 for success, else the ClickHouse error code.
    pub status: i64,
    /// Error text.
    pub error: String,
}

/// How a statement ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every host ran it (node names), or it was not an `ON CLUSTER` statement (the coordinator).
    Done(Vec<String>),
    /// Some hosts have not run it yet; ClickHouse will run it on them when they return.
    Pending {
        /// Keeper path of the task.
        task: String,
        /// Node names still pending.
        hosts: Vec<String>,
    },
}

/// Parses the TSV reply of an `ON CLUSTER` statement; lines that are not host rows are skipped.
pub fn parse_reply(text: &str) -> Vec<HostRow> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 4 {
                return None;
            }
            Some(HostRow {
                host: f[0].to_owned(),
                port: f[1].parse().ok()?,
                status: f[2].parse().ok()?,
                error: f[3].to_owned(),
            })
        })
        .collect()
}

/// The Keeper task path in a code-159 message.
pub fn task_from_timeout(message: &str) -> Option<String> {
    let rest = &message[message.find("Watching task ")? + "Watching task ".len()..];
    let task = rest.split_whitespace().next()?;
    task.starts_with('/').then(|| task.to_owned())
}

/// The `host:port` in `There was an error on [host:port]: ...`.
pub fn failing_host(message: &str) -> Option<String> {
    let rest = &message[message.find("error on [")? + "error on [".len()..];
    Some(rest[..rest.find(']')?].to_owned())
}

/// The host list of a DDL task's data (`hosts: ['h%2E1:9000',...]`).
pub fn task_hosts(data: &str) -> Vec<String> {
    let data = data.replace("\\n", "\n").replace("\\'", "'");
    data.lines()
        .find_map(|l| l.strip_prefix("hosts: ["))
        .map(|l| {
            l.trim_end_matches(']')
                .split(',')
                .map(|h| h.trim().trim_matches('\'').to_owned())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a statement is `ON CLUSTER` (its reply has host rows).
pub fn is_on_cluster(stmt: &str) -> bool {
    sql::tokenize(stmt).is_ok_and(|tokens| {
        let sig: Vec<_> = tokens.iter().filter(|t| t.is_significant()).collect();
        sig.windows(2)
            .any(|w| w[0].is_word("ON") && w[1].is_word("CLUSTER"))
    })
}

/// ClickHouse codes meaning "Keeper is not usable right now": KEEPER_EXCEPTION (999),
/// NO_ZOOKEEPER (225), TABLE_IS_READ_ONLY (242).
const KEEPER_TRANSIENT: &[u32] = &[999, 225, 242];

/// Runs `stmt` through `coord` and waits for every host. Hosts in `known_down` (unreachable at
/// pre-flight, with `--allow-unavailable`) are not waited for: the server wait is cut to 2 s and
/// the outcome is `Pending` as soon as only they are left.
///
/// # Errors
/// [`Error::HostFailed`] naming the node and ClickHouse's error; [`Error::ClickHouse`] for other
/// failures of the coordinator.
pub async fn run(
    cluster: &Cluster,
    coord: &Node,
    stmt: &str,
    at: StatementRef<'_>,
    settings: DdlSettings,
    known_down: &[String],
) -> Result<Outcome> {
    let server_wait = if known_down.is_empty() {
        settings.server_wait
    } else {
        settings.server_wait.min(Duration::from_secs(2))
    };
    let wait = server_wait.as_secs().max(1).to_string();
    let settings_list = [
        ("wait_end_of_query", "1"),
        ("distributed_ddl_task_timeout", wait.as_str()),
    ];
    // A Keeper hiccup on the coordinator (session expired while the ensemble re-elects, no
    // Keeper yet, table briefly read-only) fails the statement before any host ran it; every
    // shipped statement is idempotent (lint enforces IF [NOT] EXISTS), so sending it again is safe.
    let mut attempt = 0;
    let sent = loop {
        let r = coord.client.query_with(stmt, &settings_list).await;
        match &r {
            Err(e) if KEEPER_TRANSIENT.contains(&e.code().unwrap_or(0)) && attempt < 5 => {
                attempt += 1;
                tracing::warn!(file = at.file, statement = at.statement, attempt, error = %e, "Keeper not ready on the coordinator; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            _ => break r,
        }
    };
    let host_failed = |host: &str, code: u32, message: &str| Error::HostFailed {
        file: at.file.to_owned(),
        statement: at.statement,
        host: cluster.node_name(host),
        code,
        message: message.to_owned(),
    };
    match sent {
        Ok(text) if is_on_cluster(stmt) => {
            let rows = parse_reply(&text);
            if let Some(bad) = rows.iter().find(|r| r.status != 0) {
                let code = u32::try_from(bad.status).unwrap_or(0);
                return Err(host_failed(
                    &format!("{}:{}", bad.host, bad.port),
                    code,
                    &bad.error,
                ));
            }
            Ok(Outcome::Done(
                rows.iter()
                    .map(|r| cluster.node_name(&format!("{}:{}", r.host, r.port)))
                    .collect(),
            ))
        }
        Ok(_) => Ok(Outcome::Done(vec![coord.name.clone()])),
        Err(e) if e.code() == Some(CODE_TIMEOUT) => {
            let task = task_from_timeout(&e.to_string()).ok_or(e)?;
            tracing::warn!(file = at.file, statement = at.statement, %task, "ON CLUSTER wait timed out; polling Keeper for pending hosts");
            wait_task(cluster, coord, &task, at, settings.extra_wait, known_down).await
        }
        Err(chgate_clickhouse_http::Error::Server { code, message, .. })
            if failing_host(&message).is_some() =>
        {
            let host = failing_host(&message).unwrap_or_default();
            Err(host_failed(&host, code, &message))
        }
        Err(e) => Err(e.into()),
    }
}

/// Polls a DDL task until every host finished it, only `known_down` hosts are left, or `extra`
/// runs out.
///
/// # Errors
/// [`Error::HostFailed`] if a host finished it with an error; [`Error::ClickHouse`].
pub async fn wait_task(
    cluster: &Cluster,
    coord: &Node,
    task: &str,
    at: StatementRef<'_>,
    extra: Duration,
    known_down: &[String],
) -> Result<Outcome> {
    let deadline = Instant::now() + extra;
    loop {
        let pending = pending_hosts(cluster, coord, task, at).await?;
        if pending.is_empty() {
            return Ok(Outcome::Done(
                cluster.nodes.iter().map(|n| n.name.clone()).collect(),
            ));
        }
        let only_known = pending.iter().all(|h| known_down.contains(h));
        if only_known || Instant::now() >= deadline {
            return Ok(Outcome::Pending {
                task: task.to_owned(),
                hosts: pending,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Node names that have not finished `task`; a host that finished with an error is an error.
///
/// # Errors
/// [`Error::HostFailed`], [`Error::ClickHouse`].
pub async fn pending_hosts(
    cluster: &Cluster,
    coord: &Node,
    task: &str,
    at: StatementRef<'_>,
) -> Result<Vec<String>> {
    let (parent, name) = task.rsplit_once('/').unwrap_or(("", task));
    let data: Vec<ZkNode> = zk_rows(
        coord,
        &format!(
            "SELECT name, value FROM system.zookeeper WHERE path = {} AND name = {}",
            quote(parent),
            quote(name)
        ),
    )
    .await?;
    let Some(ZkNode { value: data, .. }) = data.into_iter().next() else {
        // The task was cleaned up (task_max_lifetime): every host is long done with it.
        return Ok(Vec::new());
    };
    let finished: Vec<ZkNode> = zk_rows(
        coord,
        &format!(
            "SELECT name, value FROM system.zookeeper WHERE path = {}",
            quote(&format!("{task}/finished"))
        ),
    )
    .await?;
    let mut done = BTreeSet::new();
    for ZkNode { name: host, value } in finished {
        let mut lines = value.lines();
        let code: u32 = lines
            .next()
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0);
        if code != 0 {
            return Err(Error::HostFailed {
                file: at.file.to_owned(),
                statement: at.statement,
                host: cluster.node_name(&host),
                code,
                message: lines.collect::<Vec<_>>().join(" "),
            });
        }
        done.insert(host);
    }
    Ok(task_hosts(&data)
        .into_iter()
        .filter(|h| !done.contains(h))
        .map(|h| cluster.node_name(&h))
        .collect())
}

/// A `system.zookeeper` row.
#[derive(serde::Deserialize)]
struct ZkNode {
    name: String,
    value: String,
}

async fn zk_rows(coord: &Node, sql: &str) -> Result<Vec<ZkNode>> {
    match coord.client.rows::<ZkNode>(sql).await {
        Ok(rows) => Ok(rows),
        // 999 = Keeper "no node": the path does not exist (any more).
        Err(e) if e.code() == Some(999) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from ClickHouse 18.16 on the test rig.
    const REPLY: &str = "127.0.0.1\t29001\t0\t\t3\t0\n127.0.0.1\t29004\t0\t\t2\t0\n\
                         127.0.0.1\t29003\t1\tboom\t1\t0\n";
    const TIMEOUT: &str = "Code: 159, e.displayText() = DB::Exception: Watching task \
        /clickhouse/task_queue/ddl/query-0000000007 is executing longer than \
        distributed_ddl_task_timeout (=3) seconds. There are 1 unfinished hosts (0 of them are \
        currently active), they are going to execute the query in background";
    const HOST_ERROR: &str = "Code: 57, e.displayText() = DB::Exception: There was an error on \
        [127.0.0.1:29001]: Code: 57, e.displayText() = DB::Exception: Table d.t already exists.";
    const TASK: &str = "version: 1\\nquery: CREATE DATABASE IF NOT EXISTS p ON CLUSTER chgate\\n\
        hosts: [\\'127%2E0%2E0%2E1:29001\\',\\'127%2E0%2E0%2E1:29002\\']\\ninitiator: vm:29001\\n";

    #[test]
    fn reply_rows_are_parsed() {
        let rows = parse_reply(REPLY);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[2].port, rows[2].status, rows[2].error.as_str()),
            (29003, 1, "boom")
        );
        assert!(parse_reply("Ok.\n").is_empty());
    }

    #[test]
    fn timeout_and_host_error_messages_are_understood() {
        assert_eq!(
            task_from_timeout(TIMEOUT).as_deref(),
            Some("/clickhouse/task_queue/ddl/query-0000000007")
        );
        assert_eq!(task_from_timeout("Code: 159, something else"), None);
        assert_eq!(failing_host(HOST_ERROR).as_deref(), Some("127.0.0.1:29001"));
    }

    #[test]
    fn task_host_list_is_read_from_keeper_data() {
        assert_eq!(
            task_hosts(TASK),
            vec!["127%2E0%2E0%2E1:29001", "127%2E0%2E0%2E1:29002"]
        );
        assert!(task_hosts("version: 1").is_empty());
    }

    #[test]
    fn on_cluster_detection_ignores_literals() {
        assert!(is_on_cluster("CREATE TABLE t on  cluster c (a UInt8)"));
        assert!(!is_on_cluster("INSERT INTO t VALUES ('ON CLUSTER')"));
    }
}
