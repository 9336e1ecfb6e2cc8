//! Grafana's own tables: connect, wait for Grafana to have created them, check their columns.
//! chgate never creates or alters them (Grafana's migrator owns them via `migration_log`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chgate_migrations::pg_tls::{self, ConnectError};
use tokio_postgres::Client;

use super::PgTarget;
use crate::GrafanaError;

/// Columns chgate writes in `data_source`; present since Grafana 7.
pub const DATA_SOURCE_REQUIRED: &[&str] = &[
    "id",
    "org_id",
    "version",
    "type",
    "name",
    "access",
    "url",
    "user",
    "database",
    "basic_auth",
    "is_default",
    "json_data",
    "created",
    "updated",
    "with_credentials",
    "secure_json_data",
    "read_only",
    "uid",
];

/// Columns of Grafana's `secrets` table (Grafana 8.5+).
pub const SECRETS_REQUIRED: &[&str] = &[
    "id",
    "org_id",
    "namespace",
    "type",
    "value",
    "created",
    "updated",
];

/// Which of Grafana's tables exist, with their columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrafanaTables {
    /// Columns of `data_source`, if the table exists.
    pub data_source: Option<HashSet<String>>,
    /// Columns of `secrets`, if the table exists.
    pub secrets: Option<HashSet<String>>,
    /// Columns of `data_keys` (envelope encryption, Grafana 9+), if the table exists.
    pub data_keys: Option<HashSet<String>>,
}

impl GrafanaTables {
    /// Checks the required columns.
    ///
    /// # Errors
    /// [`GrafanaError::SchemaMismatch`] naming the first missing column.
    pub fn check(&self) -> Result<(), GrafanaError> {
        let tables = [
            ("data_source", &self.data_source, DATA_SOURCE_REQUIRED),
            ("secrets", &self.secrets, SECRETS_REQUIRED),
        ];
        for (table, cols, required) in tables {
            let Some(cols) = cols else { continue };
            if let Some(missing) = required.iter().find(|c| !cols.contains(**c)) {
                return Err(GrafanaError::SchemaMismatch {
                    table,
                    column: (*missing).to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Whether `data_source` has `column` (newer columns such as `is_prunable`, `api_version`).
    pub fn data_source_has(&self, column: &str) -> bool {
        self.data_source
            .as_ref()
            .is_some_and(|c| c.contains(column))
    }
}

/// Opens a connection (over TLS verified against `target.ca` when set) through chgate's one
/// PostgreSQL connect path; the connection task runs on the current runtime until the client
/// drops.
///
/// # Errors
/// [`GrafanaError::Connect`]; [`GrafanaError::Tls`] when the CA file cannot be used.
pub async fn connect(target: &PgTarget) -> Result<Client, GrafanaError> {
    pg_tls::connect(&target.config, target.ca.as_deref())
        .await
        .map_err(|e| match e {
            ConnectError::Postgres(source) => GrafanaError::Connect {
                target: target.label.clone(),
                source,
            },
            ConnectError::Ca(reason) => GrafanaError::Tls(reason),
        })
}

/// Whether a connection failed because the database does not exist (SQLSTATE 3D000).
fn is_missing_database(e: &GrafanaError) -> bool {
    matches!(e, GrafanaError::Connect { source, .. }
        if source.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME))
}

/// Reads which Grafana tables exist in the connection's current schema.
///
/// # Errors
/// [`GrafanaError::Query`].
pub async fn inspect(client: &Client) -> Result<GrafanaTables, GrafanaError> {
    let rows = client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() \
             AND table_name IN ('data_source', 'secrets', 'data_keys')",
            &[],
        )
        .await
        .map_err(|source| GrafanaError::Query {
            table: "information_schema.columns",
            source,
        })?;
    let mut t = GrafanaTables::default();
    for r in rows {
        let (table, column): (String, String) = (r.get(0), r.get(1));
        let slot = match table.as_str() {
            "data_source" => &mut t.data_source,
            "secrets" => &mut t.secrets,
            _ => &mut t.data_keys,
        };
        slot.get_or_insert_with(HashSet::new).insert(column);
    }
    Ok(t)
}

/// Connects and waits until Grafana's `data_source` table exists, polling every `poll` for up to
/// `wait`. A database that does not exist counts as "no tables yet"; other connection failures
/// are retried until the wait is over.
///
/// # Errors
/// [`GrafanaError::TablesMissing`] when the table is still absent after `wait`;
/// [`GrafanaError::Connect`] when no connection could be made by then;
/// [`GrafanaError::SchemaMismatch`] when a table lacks a column chgate writes.
pub async fn wait_for_tables(
    target: &PgTarget,
    wait: Duration,
    poll: Duration,
) -> Result<(Client, GrafanaTables), GrafanaError> {
    let start = Instant::now();
    loop {
        let attempt = match connect(target).await {
            Ok(c) => inspect(&c).await.map(|t| (Some(c), t)),
            // No database yet: Grafana has certainly not started against it.
            Err(e) if is_missing_database(&e) => Ok((None, GrafanaTables::default())),
            Err(e) => Err(e),
        };
        let elapsed = start.elapsed();
        match attempt {
            Ok((Some(c), t)) if t.data_source.is_some() => {
                t.check()?;
                return Ok((c, t));
            }
            Ok(_) if elapsed >= wait => {
                return Err(GrafanaError::TablesMissing {
                    target: target.label.clone(),
                    waited: elapsed,
                })
            }
            Err(e) if elapsed >= wait => return Err(e),
            Ok(_) => tracing::info!(target = %target.label, "waiting for Grafana's tables"),
            Err(e) => tracing::info!(target = %target.label, error = %e, "waiting for PostgreSQL"),
        }
        tokio::time::sleep(poll.min(wait - elapsed)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(list: &[&str]) -> Option<HashSet<String>> {
        Some(list.iter().map(|c| (*c).to_owned()).collect())
    }

    #[test]
    fn missing_column_is_named() {
        let t = GrafanaTables {
            data_source: cols(&DATA_SOURCE_REQUIRED[1..]),
            ..GrafanaTables::default()
        };
        let e = t.check().expect_err("id missing").to_string();
        assert!(e.contains("data_source") && e.contains("`id`"), "{e}");
    }

    #[test]
    fn optional_columns_are_detected() {
        let mut c = cols(DATA_SOURCE_REQUIRED);
        c.as_mut().map(|s| s.insert("api_version".into()));
        let t = GrafanaTables {
            data_source: c,
            secrets: cols(SECRETS_REQUIRED),
            data_keys: None,
        };
        t.check().expect("complete");
        assert!(t.data_source_has("api_version") && !t.data_source_has("is_prunable"));
    }
}
