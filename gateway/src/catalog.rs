//! Table schemas discovered from `system.columns` / `system.tables`, cached and refreshed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chgate_clickhouse_http::{quote, Client};
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::encode::Column;
use crate::types::ColumnType;
use crate::GatewayError;

/// A column and whether the gateway may write it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    /// Name, type and the server's type text.
    pub column: Column,
    /// `DEFAULT` expression present: may be omitted so the server computes it.
    pub has_default: bool,
    /// `MATERIALIZED` / `ALIAS`: never written.
    pub computed: bool,
}

/// Where a `Distributed` table sends rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedInfo {
    /// Cluster name.
    pub cluster: String,
    /// Database of the local table.
    pub local_database: String,
    /// The local (per-shard) table.
    pub local_table: String,
    /// Sharding key expression as written.
    pub sharding_key: String,
}

/// One table's schema.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// Every column in table order.
    pub columns: Vec<ColumnInfo>,
    /// Engine name.
    pub engine: String,
    /// For `Distributed` tables: where rows go.
    pub distributed: Option<DistributedInfo>,
}

impl TableSchema {
    /// A schema from `(name, type)` pairs, every column written by the gateway (no `DEFAULT`),
    /// for callers that know their table (benchmarks, the load generator's direct baseline).
    ///
    /// # Errors
    /// [`UnsupportedType`](crate::types::UnsupportedType) naming a type the encoders cannot write.
    pub fn from_columns(
        database: &str,
        table: &str,
        engine: &str,
        cols: &[(&str, &str)],
    ) -> Result<Self, crate::types::UnsupportedType> {
        let columns = cols
            .iter()
            .map(|(n, t)| {
                Ok(ColumnInfo {
                    column: Column::parse(n, t)?,
                    has_default: false,
                    computed: false,
                })
            })
            .collect::<Result<_, crate::types::UnsupportedType>>()?;
        Ok(TableSchema {
            database: database.into(),
            table: table.into(),
            columns,
            engine: engine.into(),
            distributed: None,
        })
    }

    /// Column by name.
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.column.name == name)
    }

    /// `db.table` for messages.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }
}

#[derive(Deserialize)]
struct ColumnRow {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    default_kind: String,
}

#[derive(Deserialize)]
struct TableRow {
    engine: String,
    engine_full: String,
}

/// Parses `Distributed(cluster, db, table[, key[, policy]])` from `engine_full`.
pub fn parse_distributed(engine_full: &str) -> Option<DistributedInfo> {
    let args = engine_full.trim().strip_prefix("Distributed(")?;
    let end = args.rfind(')')?;
    let parts: Vec<String> = split_top(&args[..end])
        .into_iter()
        .map(|p| unquote(p.trim()))
        .collect();
    match parts.as_slice() {
        [cluster, db, table, rest @ ..] => Some(DistributedInfo {
            cluster: cluster.clone(),
            local_database: db.clone(),
            local_table: table.clone(),
            sharding_key: rest.first().cloned().unwrap_or_default(),
        }),
        _ => None,
    }
}

fn unquote(s: &str) -> String {
    let s = s
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .unwrap_or(s);
    s.trim_matches('`').replace("\\'", "'")
}

fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start, mut quoted) = (Vec::new(), 0, 0, false);
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Loads a table's schema.
///
/// # Errors
/// [`GatewayError::UnknownTable`] when it does not exist, [`GatewayError::UnsupportedColumn`]
/// naming a column whose type the encoders do not support, [`GatewayError::ClickHouse`].
pub async fn load(
    client: &Client,
    database: &str,
    table: &str,
) -> Result<TableSchema, GatewayError> {
    let ch = |e| GatewayError::ClickHouse(Arc::new(e));
    let tables: Vec<TableRow> = client
        .rows(&format!(
            "SELECT engine, engine_full FROM system.tables WHERE database = {} AND name = {}",
            quote(database),
            quote(table)
        ))
        .await
        .map_err(ch)?;
    let Some(t) = tables.into_iter().next() else {
        return Err(GatewayError::UnknownTable {
            table: format!("{database}.{table}"),
        });
    };
    let rows: Vec<ColumnRow> = client
        .rows(&format!(
            "SELECT name, type, default_kind FROM system.columns WHERE database = {} AND table = {}",
            quote(database),
            quote(table)
        ))
        .await
        .map_err(ch)?;
    let mut columns = Vec::with_capacity(rows.len());
    for r in rows {
        let computed = r.default_kind == "MATERIALIZED" || r.default_kind == "ALIAS";
        let ty = match ColumnType::parse(&r.ty) {
            Ok(ty) => ty,
            // A column we never write may have any type.
            Err(_) if computed => ColumnType::String,
            Err(_) => {
                return Err(GatewayError::UnsupportedColumn {
                    table: format!("{database}.{table}"),
                    column: r.name,
                    type_text: r.ty,
                })
            }
        };
        columns.push(ColumnInfo {
            column: Column {
                name: r.name,
                ty,
                type_text: r.ty,
            },
            has_default: r.default_kind == "DEFAULT",
            computed,
        });
    }
    let distributed = (t.engine == "Distributed")
        .then(|| parse_distributed(&t.engine_full))
        .flatten();
    Ok(TableSchema {
        database: database.into(),
        table: table.into(),
        columns,
        engine: t.engine,
        distributed,
    })
}

/// `(database, table)`.
type TableKey = (String, String);

/// Cached schemas, refreshed after `ttl` (and on demand when a request names an unknown column).
#[derive(Debug)]
pub struct Catalog {
    ttl: Duration,
    cache: RwLock<HashMap<TableKey, (Instant, Arc<TableSchema>)>>,
}

impl Catalog {
    /// An empty catalog whose entries live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Catalog {
            ttl,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The schema of `database.table`, from cache when fresh.
    ///
    /// # Errors
    /// As [`load`].
    pub async fn get(
        &self,
        client: &Client,
        database: &str,
        table: &str,
        force: bool,
    ) -> Result<Arc<TableSchema>, GatewayError> {
        let key = (database.to_owned(), table.to_owned());
        if !force {
            if let Some((at, s)) = self.cache.read().await.get(&key) {
                if at.elapsed() < self.ttl {
                    return Ok(s.clone());
                }
            }
        }
        let schema = Arc::new(load(client, database, table).await?);
        self.cache
            .write()
            .await
            .insert(key, (Instant::now(), schema.clone()));
        Ok(schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributed_engine_is_parsed() {
        let d = parse_distributed("Distributed(chgate, metrics, samples_local, series_id)")
            .expect("parses");
        assert_eq!(d.cluster, "chgate");
        assert_eq!(
            (d.local_database.as_str(), d.local_table.as_str()),
            ("metrics", "samples_local")
        );
        assert_eq!(d.sharding_key, "series_id");
        let q = parse_distributed("Distributed('c', 'db', 't', cityHash64(a, b))").expect("quoted");
        assert_eq!(
            (q.cluster.as_str(), q.sharding_key.as_str()),
            ("c", "cityHash64(a, b)")
        );
        assert!(parse_distributed("MergeTree ORDER BY x").is_none());
    }
}
