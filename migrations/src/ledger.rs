//! The ledger: a `ReplicatedMergeTree` table `<database>.chgate_migrations` that every host of
//! the cluster replicates (one Keeper path for the whole cluster, replica name `{shard}_{replica}`),
//! so it is readable with SQL anywhere and survives the loss of any one node.
//!
//! Rows are events (see [`LedgerRow`]); the state of a version is its newest row
//! ([`crate::plan::latest`]). Writes use `insert_quorum=2`, so an acknowledged row is on two
//! replicas before the next statement runs; reads first `SYSTEM SYNC REPLICA` (bounded), so they
//! see every acknowledged row.

use bytes_body::body;
use chgate_clickhouse_http::{quote, quote_ident};

use crate::cluster::{Cluster, Node};
use crate::error::Result;
use crate::plan::LedgerRow;

/// Table name of the ledger.
pub const TABLE: &str = "chgate_migrations";

/// ClickHouse `UNKNOWN_TABLE` and `UNKNOWN_DATABASE`.
const MISSING: [u32; 2] = [60, 81];

/// `CREATE DATABASE` and `CREATE TABLE` of the ledger, both `ON CLUSTER`, safe to re-run. Only
/// types every server version has (18.16 included).
pub fn bootstrap_sql(c: &Cluster) -> Vec<String> {
    let db = quote_ident(&c.database);
    let on = quote_ident(&c.name);
    let path = format!(
        "{}/chgate/{}/{TABLE}",
        c.keeper_root.trim_end_matches('/'),
        c.database
    );
    vec![
        format!("CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER {on}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{TABLE} ON CLUSTER {on} (\
             version UInt32, name String, variant String, checksum String, done_checksum String, \
             statements_total UInt32, statement_index UInt32, status String, \
             pending_hosts Array(String), ddl_tasks Array(String), error String, \
             applied_by String, fencing_token UInt64, event_seq UInt32, \
             event_time DateTime DEFAULT now(), duration_ms UInt64) \
             ENGINE = ReplicatedMergeTree({}, '{{shard}}_{{replica}}') \
             ORDER BY (version, fencing_token, event_seq)",
            quote(&path)
        ),
    ]
}

/// Reads every ledger row through `node`; `None` when the ledger does not exist yet.
///
/// # Errors
/// [`crate::Error::ClickHouse`].
pub async fn read(c: &Cluster, node: &Node) -> Result<Option<Vec<LedgerRow>>> {
    let table = format!("{}.{TABLE}", quote_ident(&c.database));
    // Pull every row other replicas acknowledged; bounded so a stuck queue cannot hang `status`.
    let synced = node
        .client
        .query_with(
            &format!("SYSTEM SYNC REPLICA {table}"),
            &[("receive_timeout", "10")],
        )
        .await;
    match synced {
        Err(e) if e.code().is_some_and(|c| MISSING.contains(&c)) => return Ok(None),
        Err(e) => {
            tracing::warn!(host = %node.name, error = %e, "ledger SYNC REPLICA failed; reading anyway")
        }
        Ok(_) => {}
    }
    let rows = node
        .client
        .rows::<LedgerRow>(&format!(
            "SELECT version, name, variant, checksum, done_checksum, statements_total, statement_index, status, \
             pending_hosts, ddl_tasks, error, applied_by, fencing_token, event_seq, \
             toString(event_time) AS event_time, duration_ms FROM {table} \
             ORDER BY version, fencing_token, event_seq"
        ))
        .await;
    match rows {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.code().is_some_and(|c| MISSING.contains(&c)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Highest fencing token in the ledger (0 when empty).
///
/// # Errors
/// [`crate::Error::ClickHouse`].
pub async fn max_fencing_token(c: &Cluster, node: &Node) -> Result<u64> {
    let text = node
        .client
        .query(&format!(
            "SELECT max(fencing_token) FROM {}.{TABLE}",
            quote_ident(&c.database)
        ))
        .await?;
    Ok(text.trim().parse().unwrap_or(0))
}

/// Appends one event through `node` (quorum write).
///
/// # Errors
/// [`crate::Error::ClickHouse`].
pub async fn append(c: &Cluster, node: &Node, row: &LedgerRow) -> Result<()> {
    let quorum = c.nodes.len().min(2).to_string();
    let insert = format!(
        "INSERT INTO {}.{TABLE} (version, name, variant, checksum, done_checksum, statements_total, \
         statement_index, status, pending_hosts, ddl_tasks, error, applied_by, fencing_token, \
         event_seq, duration_ms) FORMAT JSONEachRow",
        quote_ident(&c.database)
    );
    node.client
        .insert(
            &insert,
            &[
                ("insert_quorum", quorum.as_str()),
                ("insert_quorum_timeout", "60000"),
            ],
            body(row),
        )
        .await?;
    Ok(())
}

mod bytes_body {
    //! JSONEachRow body of one ledger row (without `event_time`: the server fills it).
    use crate::plan::LedgerRow;

    pub(super) fn body(row: &LedgerRow) -> bytes::Bytes {
        let mut v = serde_json::to_value(row).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("event_time");
        }
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        bytes::Bytes::from(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Status;

    #[test]
    fn row_body_omits_event_time_and_spells_status_lowercase() {
        let row = LedgerRow {
            version: 1,
            name: "a".into(),
            variant: "modern".into(),
            checksum: "sha256:x".into(),
            done_checksum: String::new(),
            statements_total: 2,
            statement_index: 1,
            status: Status::Progress,
            pending_hosts: vec![],
            ddl_tasks: vec![],
            error: String::new(),
            applied_by: "me".into(),
            fencing_token: 7,
            event_seq: 3,
            event_time: "2026-01-01 00:00:00".into(),
            duration_ms: 5,
        };
        let text = String::from_utf8(body(&row).to_vec()).expect("utf8");
        assert!(text.contains("\"status\":\"progress\""), "{text}");
        assert!(!text.contains("event_time"), "{text}");
        assert!(text.ends_with('\n'));
    }
}
