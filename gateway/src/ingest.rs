//! Turning decoded input into rows for a table: samples → the shipped `samples`/`series` tables,
//! NDJSON objects → any table (columns checked by name, values converted by type).

mod samples;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::block::Block;
use crate::catalog::TableSchema;
use crate::convert::{from_json, zero_of};
use crate::encode::Column;
use crate::protocol::Sample;
use crate::types::ColumnType;
use crate::value::{Row, Value};
use crate::GatewayError;
pub use samples::{
    timestamp_range, Fresh, IdHasher, IdSet, OutOfRange, SampleRows, SamplesBuilder, SeriesFilter,
    RECALL_BYTES,
};

/// Rows for one table with their column list.
#[derive(Debug, Clone)]
pub struct TableRows {
    /// Target columns, in row order.
    pub columns: Arc<Vec<Column>>,
    /// The rows.
    pub rows: Vec<Row>,
}

/// Rows for one table as a [`Block`], with its column list.
#[derive(Debug, Clone)]
pub struct TableBlock {
    /// Target columns, in the block's column order.
    pub columns: Arc<Vec<Column>>,
    /// The rows.
    pub block: Block,
}

impl From<TableRows> for TableBlock {
    fn from(rows: TableRows) -> Self {
        let block = Block::from_rows(&rows.columns, rows.rows);
        TableBlock {
            columns: rows.columns,
            block,
        }
    }
}

impl TableBlock {
    /// The rows as values (tests, and the paths that need rows).
    pub fn into_rows(self) -> TableRows {
        TableRows {
            rows: self.block.to_rows(),
            columns: self.columns,
        }
    }
}

/// A timestamp in milliseconds as a value of a time column.
pub fn time_value(ty: &ColumnType, ms: i64) -> Value {
    match ty.unwrap_low_cardinality() {
        ColumnType::DateTime => Value::UInt(u64::try_from(ms.div_euclid(1000)).unwrap_or(0)),
        ColumnType::DateTime64(p) => {
            let p = *p as i32;
            let ticks = if p >= 3 {
                ms.saturating_mul(10i64.pow((p - 3) as u32))
            } else {
                ms / 10i64.pow((3 - p) as u32)
            };
            Value::Int(ticks)
        }
        ColumnType::Date => Value::UInt(u64::try_from(ms.div_euclid(86_400_000)).unwrap_or(0)),
        ColumnType::Int64 => Value::Int(ms),
        _ => Value::UInt(u64::try_from(ms).unwrap_or(0)),
    }
}

fn writable(schema: &TableSchema) -> impl Iterator<Item = &crate::catalog::ColumnInfo> {
    schema.columns.iter().filter(|c| !c.computed)
}

/// The columns of `schema` this mapping fills: known names, plus any column without a DEFAULT.
fn mapped_columns(schema: &TableSchema, known: &[&str]) -> Vec<Column> {
    writable(schema)
        .filter(|c| known.contains(&c.column.name.as_str()) || !c.has_default)
        .map(|c| c.column.clone())
        .collect()
}

/// What fills one column of the samples/series tables (resolved once per request, not per row).
#[derive(Clone, Copy)]
enum Fill {
    Tenant,
    Metric,
    SeriesId,
    Time,
    Value,
    LabelNames,
    LabelValues,
    LastSeen,
    Zero,
}

fn plan(cols: &[Column]) -> Vec<Fill> {
    cols.iter()
        .map(|c| match c.name.as_str() {
            "tenant" => Fill::Tenant,
            "metric" => Fill::Metric,
            "series_id" => Fill::SeriesId,
            "timestamp" => Fill::Time,
            "value" => Fill::Value,
            "label_names" => Fill::LabelNames,
            "label_values" => Fill::LabelValues,
            "last_seen" => Fill::LastSeen,
            _ => Fill::Zero,
        })
        .collect()
}

const SAMPLE_COLUMNS: &[&str] = &["tenant", "metric", "series_id", "timestamp", "value"];
const SERIES_COLUMNS: &[&str] = &[
    "tenant",
    "metric",
    "series_id",
    "label_names",
    "label_values",
    "last_seen",
];

/// Rows for the samples table and the series table from decoded samples; one series row per
/// distinct series of the request.
pub fn samples_rows(
    samples: &[Sample],
    tenant: &str,
    samples_schema: &TableSchema,
    series_schema: &TableSchema,
    now_ms: i64,
) -> (TableRows, TableRows) {
    let mut seen = IdSet::default();
    let mut first = |id| seen.insert(id);
    let mut b = SamplesBuilder::new((samples_schema, series_schema), tenant, now_ms, &mut first);
    feed(&mut b, samples);
    let rows = b.finish();
    (rows.samples.into_rows(), rows.series)
}

/// Hands owned samples to a builder, giving each run of equal labels once.
pub fn feed(b: &mut SamplesBuilder<'_>, samples: &[Sample]) {
    use crate::protocol::SampleSink;
    b.reserve(samples.len());
    let mut last: Option<&[(String, String)]> = None;
    for s in samples {
        if last != Some(s.labels.as_slice()) {
            b.labels(&s.labels);
            last = Some(&s.labels);
        }
        b.sample(&s.metric, s.timestamp_ms, s.value);
    }
}

/// The [`SeriesFilter`] of a request: asks a [`SeriesCache`] (one lock per batch of ids).
pub struct CachedSeries<'c> {
    /// The cache.
    pub cache: &'c SeriesCache,
    /// XORed into ids before the look-up (see [`SeriesCache::want_many`]).
    pub salt: u64,
    /// The request's time.
    pub now_ms: i64,
}

impl SeriesFilter for CachedSeries<'_> {
    fn want(&mut self, ids: &[u64], out: &mut Vec<bool>) {
        self.cache.want_many(ids, self.salt, self.now_ms, out);
    }

    fn want_one(&mut self, id: u64) -> Result<(), Fresh> {
        self.cache.want_one(id, self.salt, self.now_ms)
    }

    fn still_fresh(&self, fresh: Fresh) -> bool {
        fresh.holds(self.now_ms, self.cache.epoch())
    }

    fn salt(&self) -> u64 {
        self.salt
    }
}

/// A new epoch value, unique in the process: a [`Fresh`] token one series cache gave never holds
/// for another (gateways in one process share remembered series but not their series caches).
fn next_epoch() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Series the gateway wrote to the series table recently. A series row is rewritten only when
/// its last write is older than `refresh`, so a stable set of series costs one series insert per
/// `refresh` instead of one per request; `last_seen` is accurate to `refresh`. Bounded: when it
/// holds `capacity` entries it starts over (the only cost is rewriting some series rows).
#[derive(Debug)]
pub struct SeriesCache {
    refresh_ms: i64,
    capacity: usize,
    seen: std::sync::Mutex<HashMap<u64, i64, BuildHasherDefault<IdHasher>>>,
    /// Bumped whenever series are forgotten or the cache starts over: a [`Fresh`] "no" given
    /// under an older epoch no longer holds.
    epoch: std::sync::atomic::AtomicU64,
}

impl SeriesCache {
    /// A cache rewriting series rows after `refresh`, holding at most `capacity` series.
    pub fn new(refresh: std::time::Duration, capacity: usize) -> Self {
        SeriesCache {
            refresh_ms: i64::try_from(refresh.as_millis()).unwrap_or(i64::MAX),
            capacity,
            seen: std::sync::Mutex::default(),
            epoch: std::sync::atomic::AtomicU64::new(next_epoch()),
        }
    }

    /// Moves to a new epoch: [`Fresh`] tokens given before no longer hold.
    fn bump(&self) {
        self.epoch
            .store(next_epoch(), std::sync::atomic::Ordering::Release);
    }

    /// The current epoch (see [`Fresh`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// As [`SeriesCache::want`] for one series (XORed with `salt`); a "no" says until when the
    /// series row written last needs no rewrite.
    ///
    /// # Errors
    /// The [`Fresh`] "no": the row was written within `refresh`.
    pub fn want_one(&self, id: u64, salt: u64, now_ms: i64) -> Result<(), Fresh> {
        let Ok(mut seen) = self.seen.lock() else {
            return Ok(());
        };
        if seen.len() + 1 > self.capacity {
            seen.clear();
            self.bump();
        }
        match seen.entry(id ^ salt) {
            Entry::Occupied(e) if now_ms - *e.get() < self.refresh_ms => Err(Fresh::new(
                e.get().saturating_add(self.refresh_ms),
                self.epoch(),
            )),
            Entry::Occupied(mut e) => {
                e.insert(now_ms);
                Ok(())
            }
            Entry::Vacant(e) => {
                e.insert(now_ms);
                Ok(())
            }
        }
    }

    /// Whether the series row of `id` should be written now (and records that it will be).
    pub fn want(&self, id: u64, now_ms: i64) -> bool {
        let mut out = Vec::with_capacity(1);
        self.want_many(&[id], 0, now_ms, &mut out);
        out.first().copied().unwrap_or(true)
    }

    /// [`SeriesCache::want`] for several series under one lock: pushes one answer per id to
    /// `out`. `salt` is XORed into each id (e.g. a tenant's hash, so tenants' series rows are
    /// tracked apart).
    pub fn want_many(&self, ids: &[u64], salt: u64, now_ms: i64, out: &mut Vec<bool>) {
        let Ok(mut seen) = self.seen.lock() else {
            out.extend(ids.iter().map(|_| true));
            return;
        };
        if seen.len() + ids.len() > self.capacity {
            seen.clear();
            self.bump();
        }
        out.extend(ids.iter().map(|&id| match seen.entry(id ^ salt) {
            Entry::Occupied(e) if now_ms - *e.get() < self.refresh_ms => false,
            Entry::Occupied(mut e) => {
                e.insert(now_ms);
                true
            }
            Entry::Vacant(e) => {
                e.insert(now_ms);
                true
            }
        }));
    }

    /// Forgets series (their insert failed, so they must be written again).
    pub fn forget(&self, ids: impl Iterator<Item = u64>) {
        if let Ok(mut seen) = self.seen.lock() {
            for id in ids {
                seen.remove(&id);
            }
            self.bump();
        }
    }
}

/// Converts JSON objects (one per row) for `schema`. Columns are the union of keys present plus
/// every writable column without a DEFAULT; a key that is not a column, or a value that does not
/// convert, rejects the whole request naming the row (1-based) and column — like ClickHouse's own
/// `JSONEachRow`, nothing of a bad request is written.
///
/// # Errors
/// [`GatewayError::BadRequest`] naming row and column.
pub fn json_rows(
    objects: &[serde_json::Map<String, Json>],
    schema: &TableSchema,
    first_line: usize,
) -> Result<TableRows, GatewayError> {
    let mut present: HashSet<&str> = HashSet::new();
    for (i, obj) in objects.iter().enumerate() {
        for key in obj.keys() {
            match schema.column(key) {
                Some(c) if !c.computed => {
                    present.insert(key.as_str());
                }
                Some(_) => {
                    return Err(GatewayError::BadRequest(format!(
                        "line {}: column `{key}` of {} is computed (MATERIALIZED/ALIAS) and cannot be written",
                        first_line + i,
                        schema.full_name()
                    )))
                }
                None => {
                    return Err(GatewayError::BadRequest(format!(
                        "line {}: unknown column `{key}` for table {}",
                        first_line + i,
                        schema.full_name()
                    )))
                }
            }
        }
    }
    let columns: Vec<Column> = writable(schema)
        .filter(|c| present.contains(c.column.name.as_str()) || !c.has_default)
        .map(|c| c.column.clone())
        .collect();
    let mut rows = Vec::with_capacity(objects.len());
    for (i, obj) in objects.iter().enumerate() {
        let mut row = Vec::with_capacity(columns.len());
        for c in &columns {
            row.push(match obj.get(&c.name) {
                Some(v) => from_json(v, &c.ty).map_err(|e| {
                    GatewayError::BadRequest(format!(
                        "line {}: column `{}` ({}): {e}",
                        first_line + i,
                        c.name,
                        c.type_text
                    ))
                })?,
                None => zero_of(&c.ty),
            });
        }
        rows.push(row);
    }
    Ok(TableRows {
        columns: Arc::new(columns),
        rows,
    })
}

/// Parses an NDJSON body into objects; blank lines are skipped.
///
/// # Errors
/// [`GatewayError::BadRequest`] naming the line that is not a JSON object.
pub fn parse_ndjson(body: &[u8]) -> Result<Vec<serde_json::Map<String, Json>>, GatewayError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| GatewayError::BadRequest(format!("body is not UTF-8: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Json>(line) {
            Ok(Json::Object(m)) => out.push(m),
            Ok(_) => {
                return Err(GatewayError::BadRequest(format!(
                    "line {}: expected a JSON object",
                    i + 1
                )))
            }
            Err(e) => {
                return Err(GatewayError::BadRequest(format!(
                    "line {}: invalid JSON: {e}",
                    i + 1
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ColumnInfo;

    fn schema(cols: &[(&str, &str, bool)]) -> TableSchema {
        TableSchema {
            database: "db".into(),
            table: "t".into(),
            columns: cols
                .iter()
                .map(|(n, t, d)| ColumnInfo {
                    column: Column {
                        name: (*n).into(),
                        ty: ColumnType::parse(t).expect("t"),
                        type_text: (*t).into(),
                    },
                    has_default: *d,
                    computed: false,
                })
                .collect(),
            engine: "MergeTree".into(),
            distributed: None,
        }
    }

    #[test]
    fn time_values_follow_the_column_type() {
        assert_eq!(time_value(&ColumnType::DateTime, 1500), Value::UInt(1));
        assert_eq!(
            time_value(&ColumnType::DateTime64(3), 1500),
            Value::Int(1500)
        );
        assert_eq!(time_value(&ColumnType::DateTime64(6), 2), Value::Int(2000));
        assert_eq!(time_value(&ColumnType::DateTime64(0), 2500), Value::Int(2));
    }

    #[test]
    fn json_rows_reject_unknown_columns_and_bad_values_naming_line_and_column() {
        let s = schema(&[("a", "UInt8", false), ("b", "String", true)]);
        let objs = parse_ndjson(b"{\"a\":1}\n{\"a\":2,\"zz\":1}\n").expect("json");
        let e = json_rows(&objs, &s, 1).expect_err("unknown").to_string();
        assert!(
            e.contains("line 2") && e.contains("`zz`") && e.contains("db.t"),
            "{e}"
        );
        let objs = parse_ndjson(b"{\"a\":1}\n\n{\"a\":300}\n").expect("json");
        let e = json_rows(&objs[1..], &s, 2).expect_err("range").to_string();
        assert!(
            e.contains("line 2") && e.contains("`a`") && e.contains("out of range"),
            "{e}"
        );
    }

    #[test]
    fn missing_columns_with_defaults_are_left_to_the_server() {
        let s = schema(&[
            ("a", "UInt8", false),
            ("b", "String", true),
            ("c", "UInt8", false),
        ]);
        let objs = parse_ndjson(b"{\"a\":1}").expect("json");
        let r = json_rows(&objs, &s, 1).expect("ok");
        let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(r.rows, vec![vec![Value::UInt(1), Value::UInt(0)]]);
    }

    #[test]
    fn samples_map_to_both_tables_with_one_series_row_per_series() {
        let samples_schema = schema(&[
            ("tenant", "String", false),
            ("metric", "String", false),
            ("series_id", "UInt64", false),
            ("timestamp", "DateTime", false),
            ("value", "Float64", false),
        ]);
        let series_schema = schema(&[
            ("metric", "String", false),
            ("series_id", "UInt64", false),
            ("label_names", "Array(String)", false),
            ("label_values", "Array(String)", false),
            ("last_seen", "DateTime", false),
        ]);
        let s = |v| Sample {
            metric: "up".into(),
            labels: vec![("job".into(), "api".into())],
            timestamp_ms: 2000,
            value: v,
        };
        let (a, b) = samples_rows(&[s(1.0), s(2.0)], "", &samples_schema, &series_schema, 5000);
        assert_eq!(a.rows.len(), 2);
        assert_eq!(b.rows.len(), 1);
        assert_eq!(a.rows[0][3], Value::UInt(2));
        assert_eq!(b.rows[0][2], Value::Array(vec![Value::str("job")]));
    }

    /// A series cache's "no" is a token that holds until refresh, only for that cache, and
    /// no longer once the cache forgot series.
    #[test]
    fn fresh_tokens_hold_for_their_cache_until_refresh_or_forget() {
        let refresh = std::time::Duration::from_secs(10);
        let (a, b) = (SeriesCache::new(refresh, 16), SeriesCache::new(refresh, 16));
        assert_eq!(a.want_one(7, 0, 1_000), Ok(()));
        let fresh = a.want_one(7, 0, 2_000).expect_err("written at 1000");
        assert!(fresh.holds(10_999, a.epoch()));
        assert!(!fresh.holds(11_000, a.epoch()), "refresh is over");
        assert!(!fresh.holds(2_000, b.epoch()), "another cache's token");
        a.forget([8].into_iter());
        assert!(
            !fresh.holds(2_000, a.epoch()),
            "forgotten series bump the epoch"
        );
        assert!(!Fresh::NEVER.holds(0, a.epoch()));
    }

    #[test]
    fn series_cache_skips_recent_series_and_rewrites_after_refresh() {
        let c = SeriesCache::new(std::time::Duration::from_secs(60), 2);
        assert!(c.want(1, 0));
        assert!(!c.want(1, 59_999));
        assert!(c.want(1, 60_000));
        assert!(c.want(2, 60_000));
        c.forget([2].into_iter());
        assert!(c.want(2, 60_001), "forgotten series are written again");
        assert!(c.want(3, 60_002), "capacity reached: starts over");
        assert!(c.want(1, 60_003));
    }
}
