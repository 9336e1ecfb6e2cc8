//! Names of the shipped tables and their columns, for the gateway and the dashboards to use
//! instead of string literals (documented in `migrations/SCHEMA.md`; a test keeps both in step
//! with the migration files).

/// Distributed table the gateway inserts samples into (sharded by `series_id`).
pub const SAMPLES: &str = "samples";
/// Per-shard `ReplicatedMergeTree` under [`SAMPLES`] (shard-aware writers insert here).
pub const SAMPLES_LOCAL: &str = "samples_local";
/// Distributed table of series and their labels.
pub const SERIES: &str = "series";
/// Per-shard `ReplicatedReplacingMergeTree` under [`SERIES`].
pub const SERIES_LOCAL: &str = "series_local";
/// Sharding key column of both Distributed tables: shard index = `series_id % shards`.
pub const SHARDING_KEY: &str = "series_id";

/// Columns of [`SAMPLES`] / [`SAMPLES_LOCAL`], in order.
pub const SAMPLE_COLUMNS: [&str; 5] = ["tenant", "metric", "series_id", "timestamp", "value"];
/// Columns of [`SERIES`] / [`SERIES_LOCAL`], in order.
pub const SERIES_COLUMNS: [&str; 6] = [
    "tenant",
    "metric",
    "series_id",
    "label_names",
    "label_values",
    "last_seen",
];

/// 1-based shard (topology order) that holds `series_id` with equal shard weights.
pub fn shard_of(series_id: u64, shards: u32) -> u32 {
    let shards = u64::from(shards.max(1));
    u32::try_from(series_id % shards).unwrap_or(0) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MigrationSet;
    use crate::sql::{self, Placeholders};

    /// Column names declared by the `CREATE TABLE` of `table` (first word of each column line).
    fn declared_columns(sql: &str) -> Vec<String> {
        let open = sql.find('(').unwrap_or(0);
        let body = &sql[open + 1..sql.find("ENGINE").unwrap_or(sql.len())];
        let body = &body[..body.rfind(')').unwrap_or(body.len())];
        let mut out = Vec::new();
        let (mut depth, mut start) = (0i32, true);
        for t in sql::tokenize(body).expect("tokenizes") {
            if t.is_punct('(') {
                depth += 1;
            } else if t.is_punct(')') {
                depth -= 1;
            } else if t.is_punct(',') && depth == 0 {
                start = true;
            } else if start && t.is_significant() {
                out.push(t.unquoted());
                start = false;
            }
        }
        out
    }

    #[test]
    fn constants_match_every_shipped_variant() {
        let set = MigrationSet::embedded().expect("valid");
        let tables = crate::lint::created_tables(&set, &Placeholders::default(), u32::MAX);
        let mut names = vec![SAMPLES, SAMPLES_LOCAL, SERIES, SERIES_LOCAL];
        names.sort_unstable();
        assert_eq!(tables.iter().map(String::as_str).collect::<Vec<_>>(), names);
        for (_, _, file) in set.files() {
            for st in &file.statements {
                if st.sql.contains(".samples_local ON CLUSTER") {
                    assert_eq!(
                        declared_columns(&st.sql),
                        SAMPLE_COLUMNS,
                        "{}",
                        file.file_name
                    );
                } else if st.sql.contains(".series_local ON CLUSTER") {
                    assert_eq!(
                        declared_columns(&st.sql),
                        SERIES_COLUMNS,
                        "{}",
                        file.file_name
                    );
                } else {
                    assert!(
                        st.sql.contains(&format!("_local, {SHARDING_KEY})")),
                        "{}",
                        st.sql
                    );
                }
            }
        }
    }

    #[test]
    fn shard_of_follows_distributed_modulo() {
        assert_eq!(shard_of(0, 2), 1);
        assert_eq!(shard_of(7, 2), 2);
        assert_eq!(shard_of(u64::MAX, 3), 1);
        assert_eq!(shard_of(5, 0), 1);
    }
}
