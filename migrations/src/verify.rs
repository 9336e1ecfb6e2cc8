//! `verify`: the schema of the database must be identical on every replica — same tables, and per
//! table the same engine (with its Keeper path, sorting and partition keys and TTL, all part of
//! `engine_full`) and the same columns and types. Differences are listed by host.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chgate_clickhouse_http::quote;
use serde::Deserialize;

use crate::cluster::Cluster;
use crate::error::{Error, Result};

/// One table as one host sees it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TableShape {
    /// Table name.
    pub name: String,
    /// Engine.
    pub engine: String,
    /// Engine with arguments, keys, TTL and settings.
    pub engine_full: String,
    /// `name type [default]` per column, in order.
    #[serde(default)]
    pub columns: Vec<String>,
}

/// A host's view of the database: table name → shape (`None` if the host did not answer).
pub type HostSchema = Option<BTreeMap<String, TableShape>>;

#[derive(Deserialize)]
struct ColumnRow {
    table: String,
    name: String,
    #[serde(rename = "type")]
    type_: String,
    default_kind: String,
    default_expression: String,
}

/// Reads every node's schema of the database.
///
/// # Errors
/// Never for an unreachable host (it becomes `None`); [`Error::ClickHouse`] for a bad answer.
pub async fn fetch(cluster: &Cluster) -> Result<Vec<(String, HostSchema)>> {
    let db = quote(&cluster.database);
    let mut out = Vec::new();
    for n in &cluster.nodes {
        let tables = n
            .client
            .rows::<TableShape>(&format!(
                "SELECT name, engine, engine_full FROM system.tables WHERE database = {db} ORDER BY name"
            ))
            .await;
        let tables = match tables {
            Ok(t) => t,
            Err(e) if e.is_unreachable() => {
                out.push((n.name.clone(), None));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let cols = n
            .client
            .rows::<ColumnRow>(&format!(
                "SELECT table, name, type, default_kind, default_expression FROM system.columns \
                 WHERE database = {db} ORDER BY table, position"
            ))
            .await;
        // 18.16's system.columns has no `position`; its natural order is the column order.
        let cols = match cols {
            Ok(c) => c,
            Err(_) => {
                n.client
                    .rows::<ColumnRow>(&format!(
                        "SELECT table, name, type, default_kind, default_expression \
                         FROM system.columns WHERE database = {db}"
                    ))
                    .await?
            }
        };
        let mut map: BTreeMap<String, TableShape> =
            tables.into_iter().map(|t| (t.name.clone(), t)).collect();
        for c in cols {
            if let Some(t) = map.get_mut(&c.table) {
                let default = if c.default_kind.is_empty() {
                    String::new()
                } else {
                    format!(" {} {}", c.default_kind, c.default_expression)
                };
                t.columns.push(format!("{} {}{default}", c.name, c.type_));
            }
        }
        out.push((n.name.clone(), Some(map)));
    }
    Ok(out)
}

/// Lists differences between hosts (pure). The reference for each table is the shape most hosts
/// have; `expected` tables must exist everywhere.
pub fn compare(schemas: &[(String, HostSchema)], expected: &BTreeSet<String>) -> Vec<String> {
    let mut diffs = Vec::new();
    let answered: Vec<(&String, &BTreeMap<String, TableShape>)> = schemas
        .iter()
        .filter_map(|(h, s)| s.as_ref().map(|s| (h, s)))
        .collect();
    for (h, s) in schemas {
        if s.is_none() {
            diffs.push(format!("{h}: did not answer"));
        }
    }
    let mut names: BTreeSet<String> = expected.clone();
    for (_, s) in &answered {
        names.extend(s.keys().cloned());
    }
    for name in &names {
        let reference = majority(answered.iter().filter_map(|(_, s)| s.get(name)));
        for (host, s) in &answered {
            match (s.get(name), reference) {
                (None, _) => diffs.push(format!("{host}: table {name} is missing")),
                (Some(t), Some(r)) if t != r => diffs.extend(describe(host, t, r)),
                _ => {}
            }
        }
    }
    diffs
}

fn majority<'a>(shapes: impl Iterator<Item = &'a TableShape>) -> Option<&'a TableShape> {
    let mut counts: Vec<(&TableShape, usize)> = Vec::new();
    for s in shapes {
        match counts.iter_mut().find(|(t, _)| *t == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(t, _)| t)
}

fn describe(host: &str, t: &TableShape, r: &TableShape) -> Vec<String> {
    let mut out = Vec::new();
    if t.engine_full != r.engine_full {
        out.push(format!(
            "{host}: table {}: engine `{}` differs from the others' `{}`",
            t.name, t.engine_full, r.engine_full
        ));
    }
    if t.columns != r.columns {
        let mine: BTreeSet<&String> = t.columns.iter().collect();
        let theirs: BTreeSet<&String> = r.columns.iter().collect();
        let mut s = format!("{host}: table {}: columns differ", t.name);
        for c in mine.difference(&theirs) {
            let _ = write!(s, "; has `{c}`");
        }
        for c in theirs.difference(&mine) {
            let _ = write!(s, "; lacks `{c}`");
        }
        out.push(s);
    }
    out
}

/// Fetches and compares.
///
/// # Errors
/// [`Error::Verify`] listing the differences by host; [`Error::ClickHouse`].
pub async fn verify(cluster: &Cluster, expected: &BTreeSet<String>) -> Result<usize> {
    let schemas = fetch(cluster).await?;
    let diffs = compare(&schemas, expected);
    if diffs.is_empty() {
        let tables = schemas
            .iter()
            .filter_map(|(_, s)| s.as_ref().map(BTreeMap::len))
            .max()
            .unwrap_or(0);
        return Ok(tables);
    }
    Err(Error::Verify {
        report: diffs.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(name: &str, engine_full: &str, cols: &[&str]) -> TableShape {
        TableShape {
            name: name.into(),
            engine: "MergeTree".into(),
            engine_full: engine_full.into(),
            columns: cols.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn host(name: &str, tables: Vec<TableShape>) -> (String, HostSchema) {
        (
            name.into(),
            Some(tables.into_iter().map(|t| (t.name.clone(), t)).collect()),
        )
    }

    #[test]
    fn identical_hosts_pass() {
        let t = shape("s", "MergeTree ORDER BY a", &["a UInt8"]);
        let schemas = vec![host("h1", vec![t.clone()]), host("h2", vec![t])];
        assert!(compare(&schemas, &BTreeSet::from(["s".to_owned()])).is_empty());
    }

    #[test]
    fn the_odd_host_out_is_named_with_what_differs() {
        let good = shape("s", "MergeTree ORDER BY a TTL x", &["a UInt8", "b String"]);
        let bad = shape("s", "MergeTree ORDER BY a", &["a UInt16", "b String"]);
        let schemas = vec![
            host("h1", vec![good.clone()]),
            host("h2", vec![bad]),
            host("h3", vec![good]),
            host("h4", vec![]),
            ("h5".to_owned(), None),
        ];
        let d = compare(&schemas, &BTreeSet::from(["s".to_owned(), "t".to_owned()]));
        let all = d.join("\n");
        assert!(all.contains("h2: table s: engine"), "{all}");
        assert!(
            all.contains("h2: table s: columns differ; has `a UInt16`; lacks `a UInt8`"),
            "{all}"
        );
        assert!(all.contains("h4: table s is missing"), "{all}");
        assert!(all.contains("h1: table t is missing"), "{all}");
        assert!(all.contains("h5: did not answer"), "{all}");
        assert!(!all.contains("h3: table s"), "{all}");
    }
}
