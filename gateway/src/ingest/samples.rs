//! [`SamplesBuilder`]: decoded samples → rows of the samples and series tables, without an owned
//! [`Sample`](crate::protocol::Sample) per sample.
//!
//! A decoder hands each label set once ([`SampleSink::labels`]) and then its samples. The
//! builder keeps one copy of the current labels and the label part of the series key
//! (`{a="1",b="x"}`), so a sample costs its metric name, one CityHash of `metric + labels part`
//! and its row; a series row (label arrays) is built only for a series the series cache wants
//! written (see [`super::SeriesCache`]).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::{
    mapped_columns, plan, time_value, Fill, TableBlock, TableRows, SAMPLE_COLUMNS, SERIES_COLUMNS,
};
use crate::block::{Block, Data};
use crate::catalog::TableSchema;
use crate::convert::zero_of;
use crate::encode::Column;
use crate::protocol::series::{push_escaped, series_id_of_key};
use crate::protocol::SampleSink;
use crate::types::ColumnType;
use crate::value::{Row, Value};

/// Hasher for keys that are already hashes (series ids): the id itself.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Decides which series get their series row written now.
pub trait SeriesFilter {
    /// Pushes to `out`, for each of `ids` in order, whether to write its series row.
    fn want(&mut self, ids: &[u64], out: &mut Vec<bool>);

    /// As [`SeriesFilter::want`] for one series; a "no" also says how long it holds (a
    /// [`Fresh`] token that [`SeriesFilter::still_fresh`] checks without asking again).
    fn want_one(&mut self, id: u64) -> Result<(), Fresh> {
        let mut out = Vec::with_capacity(1);
        self.want(&[id], &mut out);
        if out.first().copied().unwrap_or(true) {
            Ok(())
        } else {
            Err(Fresh::NEVER)
        }
    }

    /// Whether a "no" given earlier by [`SeriesFilter::want_one`] still holds.
    fn still_fresh(&self, _fresh: Fresh) -> bool {
        false
    }

    /// What tells this filter's series apart from other filters' (a tenant's hash; 0 by
    /// default): remembered series are remembered per salt.
    fn salt(&self) -> u64 {
        0
    }
}

/// Until when (ms) a series row needs no rewrite, and the filter state that was valid under
/// (packed: `until_ms << 20 | epoch & 0xfffff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh(u64);

impl Fresh {
    /// Never fresh: ask every time.
    pub const NEVER: Fresh = Fresh(0);

    /// Fresh until `until_ms` while the filter's epoch is `epoch`.
    pub fn new(until_ms: i64, epoch: u64) -> Fresh {
        let until = u64::try_from(until_ms).unwrap_or(0).min((1 << 44) - 1);
        Fresh(until << 20 | (epoch & 0xf_ffff))
    }

    /// Whether it holds at `now_ms` under `epoch`.
    pub fn holds(self, now_ms: i64, epoch: u64) -> bool {
        self != Fresh::NEVER
            && (self.0 & 0xf_ffff) == (epoch & 0xf_ffff)
            && i64::try_from(self.0 >> 20).unwrap_or(0) > now_ms
    }
}

impl<F: FnMut(u64) -> bool> SeriesFilter for F {
    fn want(&mut self, ids: &[u64], out: &mut Vec<bool>) {
        out.extend(ids.iter().map(|&id| self(id)));
    }
}

/// A set of series ids.
pub type IdSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

/// Milliseconds → the storage value of a time column, resolved once per request.
#[derive(Clone, Copy)]
enum TimeUnit {
    Seconds,
    Days,
    Scale { mul: i64, div: i64 },
    Other,
}

impl TimeUnit {
    fn of(ty: &ColumnType) -> Self {
        match ty.unwrap_low_cardinality() {
            ColumnType::DateTime => TimeUnit::Seconds,
            ColumnType::Date => TimeUnit::Days,
            ColumnType::DateTime64(p) if *p >= 3 => TimeUnit::Scale {
                mul: 10i64.pow(p - 3),
                div: 1,
            },
            ColumnType::DateTime64(p) => TimeUnit::Scale {
                mul: 1,
                div: 10i64.pow(3 - p),
            },
            _ => TimeUnit::Other,
        }
    }

    fn value(self, ty: &ColumnType, ms: i64) -> Value {
        match self {
            TimeUnit::Seconds => Value::UInt(u64::try_from(ms.div_euclid(1000)).unwrap_or(0)),
            TimeUnit::Days => Value::UInt(u64::try_from(ms.div_euclid(86_400_000)).unwrap_or(0)),
            TimeUnit::Scale { mul, div } => Value::Int(ms.saturating_mul(mul) / div),
            TimeUnit::Other => time_value(ty, ms),
        }
    }
}

/// Byte ranges of a label's name and escaped value in the series key.
#[derive(Debug, Clone)]
struct LabelSpan {
    name: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

/// Reverses `push_escaped` (`\\`, `\"`, `\n`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A label set's part of the series key (`{a="1",b="x"}`, empty without labels) and where each
/// label's name and escaped value are in it.
#[derive(Debug, Clone, Default)]
struct LabelState {
    suffix: String,
    spans: Vec<LabelSpan>,
    /// Whether some value was escaped in `suffix`.
    escaped: bool,
}

/// A label set remembered by the wire bytes it was decoded from, with its one metric and
/// series id (remote_write: `__name__` is one of the labels), per filter salt.
#[derive(Debug)]
struct Recalled {
    salt: u64,
    raw: Box<[u8]>,
    metric: Box<str>,
    id: u64,
    /// The series filter's last "no" for this series ([`Fresh`]).
    fresh: std::sync::atomic::AtomicU64,
}

/// Shards of the [`RecallCache`] (fewer lock collisions between concurrent requests).
const RECALL_SHARDS: usize = 16;

/// Bytes of remembered label sets per generation, all shards together: when a shard's newer
/// generation is full it replaces the older one (an entry used since moved to the newer one).
/// At most twice this in all (a generation holds about 130,000 series of 11 labels, ~380 bytes each
/// with the entry overhead; about 250,000 typical Prometheus series of 5 labels).
pub const RECALL_BYTES: usize = 48 << 20;

/// Label sets by their wire bytes, shared by all requests (Prometheus resends the same series
/// every scrape interval): a hit skips decoding, checking and hashing the labels.
struct RecallCache {
    hasher: ahash::RandomState,
    shards: Vec<std::sync::Mutex<RecallShard>>,
}

#[derive(Default)]
struct RecallShard {
    new: std::collections::HashMap<u64, Arc<Recalled>, BuildHasherDefault<IdHasher>>,
    old: std::collections::HashMap<u64, Arc<Recalled>, BuildHasherDefault<IdHasher>>,
    new_bytes: usize,
}

impl RecallCache {
    /// The shard of hash `h`, chosen by bits the shard's own map does not use (it places by the
    /// low bits and tags by the top 7).
    fn shard(&self, h: u64) -> Option<std::sync::MutexGuard<'_, RecallShard>> {
        self.shards[(h >> 40) as usize % RECALL_SHARDS].lock().ok()
    }

    fn get(&self, salt: u64, raw: &[u8]) -> Option<Arc<Recalled>> {
        let h = self.hasher.hash_one((salt, raw));
        let same = |e: &Arc<Recalled>| e.salt == salt && *e.raw == *raw;
        let mut shard = self.shard(h)?;
        if let Some(e) = shard.new.get(&h) {
            return same(e).then(|| e.clone());
        }
        let e = shard.old.remove(&h).filter(same)?;
        shard.put(h, e.clone());
        Some(e)
    }

    fn insert(&self, e: Recalled) {
        let h = self.hasher.hash_one((e.salt, &*e.raw));
        if let Some(mut shard) = self.shard(h) {
            shard.put(h, Arc::new(e));
        }
    }
}

impl RecallShard {
    fn put(&mut self, h: u64, e: Arc<Recalled>) {
        let size = 96 + e.raw.len() + e.metric.len();
        if self.new_bytes + size > RECALL_BYTES / RECALL_SHARDS {
            self.old = std::mem::take(&mut self.new);
            self.new_bytes = 0;
        }
        self.new_bytes += size;
        self.new.insert(h, e);
    }
}

static RECALL: std::sync::LazyLock<RecallCache> = std::sync::LazyLock::new(|| RecallCache {
    hasher: ahash::RandomState::new(),
    shards: (0..RECALL_SHARDS).map(|_| Default::default()).collect(),
});

/// The rows a request's samples became.
#[derive(Debug)]
pub struct SampleRows {
    /// Rows of the samples table.
    pub samples: TableBlock,
    /// Rows of the series table (only series the cache wanted written).
    pub series: TableRows,
    /// The `series_id`s of [`SampleRows::series`] (forget them in the cache if that insert fails).
    pub new_series: Vec<u64>,
    /// The first sample whose time the samples table's `timestamp` column cannot hold.
    pub out_of_range: Option<OutOfRange>,
    /// Label sets recalled by their wire bytes instead of decoded.
    pub recalled: usize,
}

/// A sample time outside what the time column stores (it would be stored wrapped or clamped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange {
    /// 1-based number of the sample in the request.
    pub sample: usize,
    /// Its time.
    pub timestamp_ms: i64,
    /// The column type and its range, for the message.
    pub range: &'static str,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sample {}: timestamp {} ms is outside the range of column `timestamp` {}; nothing was written",
            self.sample, self.timestamp_ms, self.range
        )
    }
}

/// The milliseconds a time column can hold: `DateTime` 1970-01-01..2106-02-07, `DateTime64`
/// 1900..2262 (what its Int64 nanoseconds cover); `None` for other types.
pub fn timestamp_range(ty: &ColumnType) -> Option<(i64, i64, &'static str)> {
    match ty.unwrap_low_cardinality() {
        ColumnType::DateTime => Some((
            0,
            i64::from(u32::MAX) * 1000 + 999,
            "DateTime (1970-01-01..2106-02-07)",
        )),
        ColumnType::DateTime64(_) => Some((
            -2_208_988_800_000,
            9_223_372_036_854,
            "DateTime64 (1900..2262)",
        )),
        _ => None,
    }
}

/// Builds samples/series rows from a decoder (it is the decoder's [`SampleSink`]).
pub struct SamplesBuilder<'w> {
    tenant: Vec<u8>,
    now_ms: i64,
    s_cols: Vec<Column>,
    r_cols: Vec<Column>,
    s_plan: Vec<(Fill, TimeUnit)>,
    r_plan: Vec<(Fill, TimeUnit)>,
    samples: Block,
    /// The tenant's id in the samples block's `LowCardinality` tenant column, once known.
    tenant_id: Option<u32>,
    series: Vec<Row>,
    new_series: Vec<u64>,
    time_range: Option<(i64, i64, &'static str)>,
    out_of_range: Option<OutOfRange>,
    want: &'w mut dyn SeriesFilter,
    /// Series ids of the current label set's samples and their metric names (in
    /// `pending_metrics`), asked about together when the label set ends.
    pending: Vec<(u64, std::ops::Range<usize>)>,
    /// Recalled series the filter wanted a series row for: decoded again, and written.
    granted: IdSet,
    pending_metrics: String,
    pending_ids: Vec<u64>,
    answers: Vec<bool>,
    /// The labels last given with [`SampleSink::labels`].
    own: LabelState,
    /// The series made current by [`SampleSink::recall`].
    current: Option<Arc<Recalled>>,
    recalled: usize,
    key: String,
}

impl<'w> SamplesBuilder<'w> {
    /// A builder for `schemas` (samples table, series table). `want` is asked about the series
    /// of every sample (once per label set, all its samples' series together) and says whether
    /// to write that series' row now; it must say yes at most once per series in a request (the
    /// gateway's [`super::SeriesCache`] does).
    pub fn new(
        schemas: (&TableSchema, &TableSchema),
        tenant: &str,
        now_ms: i64,
        want: &'w mut dyn SeriesFilter,
    ) -> Self {
        let s_cols = mapped_columns(schemas.0, SAMPLE_COLUMNS);
        let r_cols = mapped_columns(schemas.1, SERIES_COLUMNS);
        let with_time = |cols: &[Column]| {
            plan(cols)
                .into_iter()
                .zip(cols)
                .map(|(f, c)| (f, TimeUnit::of(&c.ty)))
                .collect()
        };
        let time_range = s_cols
            .iter()
            .find(|c| c.name == "timestamp")
            .and_then(|c| timestamp_range(&c.ty));
        SamplesBuilder {
            tenant: tenant.as_bytes().to_vec(),
            time_range,
            out_of_range: None,
            now_ms,
            s_plan: with_time(&s_cols),
            r_plan: with_time(&r_cols),
            samples: Block::new(&s_cols),
            tenant_id: None,
            s_cols,
            r_cols,
            series: Vec::new(),
            new_series: Vec::new(),
            want,
            pending: Vec::with_capacity(16),
            granted: IdSet::default(),
            pending_metrics: String::with_capacity(512),
            pending_ids: Vec::with_capacity(16),
            answers: Vec::with_capacity(16),
            own: LabelState {
                suffix: String::with_capacity(256),
                spans: Vec::with_capacity(16),
                escaped: false,
            },
            current: None,
            recalled: 0,
            key: String::with_capacity(320),
        }
    }

    /// Reserves room for `n` more sample rows.
    pub fn reserve(&mut self, n: usize) {
        self.samples.reserve(n);
    }

    /// Sample rows so far.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample was added.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The rows, and the series ids that got a series row.
    pub fn finish(mut self) -> SampleRows {
        self.flush_pending();
        SampleRows {
            samples: TableBlock {
                columns: Arc::new(self.s_cols),
                block: self.samples,
            },
            series: TableRows {
                columns: Arc::new(self.r_cols),
                rows: self.series,
            },
            new_series: self.new_series,
            out_of_range: self.out_of_range,
            recalled: self.recalled,
        }
    }

    /// Asks the filter about the pending samples' series and builds the wanted series rows.
    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.pending_ids.clear();
        self.pending_ids
            .extend(self.pending.iter().map(|(id, _)| *id));
        self.answers.clear();
        self.want.want(&self.pending_ids, &mut self.answers);
        for (i, (id, metric)) in self.pending.iter().enumerate() {
            let granted = !self.granted.is_empty() && self.granted.remove(id);
            if granted || self.answers.get(i).copied().unwrap_or(true) {
                let row = self.series_row(&self.pending_metrics[metric.clone()], *id, &self.own);
                self.series.push(row);
                self.new_series.push(*id);
            }
        }
        self.pending.clear();
        self.pending_metrics.clear();
    }

    fn series_row(&self, metric: &str, id: u64, labels: &LabelState) -> Row {
        let text = labels.suffix.as_str();
        let part = |r: std::ops::Range<usize>| {
            let s = &text[r];
            Value::Bytes(if labels.escaped {
                unescape(s).into_bytes()
            } else {
                s.as_bytes().to_vec()
            })
        };
        let str_array = |names: bool| {
            Value::Array(
                labels
                    .spans
                    .iter()
                    .map(|l| {
                        part(if names {
                            l.name.clone()
                        } else {
                            l.value.clone()
                        })
                    })
                    .collect(),
            )
        };
        self.r_plan
            .iter()
            .zip(&self.r_cols)
            .map(|((f, unit), c)| match f {
                Fill::Tenant => Value::Bytes(self.tenant.clone()),
                Fill::Metric => Value::str(metric),
                Fill::SeriesId => Value::UInt(id),
                Fill::LabelNames => str_array(true),
                Fill::LabelValues => str_array(false),
                Fill::LastSeen => unit.value(&c.ty, self.now_ms),
                _ => zero_of(&c.ty),
            })
            .collect()
    }

    /// Appends one sample row.
    fn push_row(&mut self, metric: &str, id: u64, timestamp_ms: i64, value: f64) {
        if let Some((lo, hi, range)) = self.time_range {
            if !(lo..=hi).contains(&timestamp_ms) && self.out_of_range.is_none() {
                self.out_of_range = Some(OutOfRange {
                    sample: self.samples.len() + 1,
                    timestamp_ms,
                    range,
                });
            }
        }
        let columns = self.s_plan.iter().zip(&self.s_cols);
        for (((f, unit), c), data) in columns.zip(&mut self.samples.data) {
            match (f, unit) {
                (Fill::Tenant, _) => match data {
                    Data::Lc(l) => {
                        let id = *self.tenant_id.get_or_insert_with(|| l.id_of(&self.tenant));
                        l.push_id(id);
                    }
                    other => other.push_str(&self.tenant),
                },
                (Fill::Metric, _) => data.push_str(metric.as_bytes()),
                (Fill::SeriesId, _) => data.push_u64(id),
                (Fill::Time, TimeUnit::Scale { mul, div }) => {
                    data.push_i64(timestamp_ms.saturating_mul(*mul) / div);
                }
                (Fill::Time, TimeUnit::Seconds) => {
                    data.push_u64(u64::try_from(timestamp_ms.div_euclid(1000)).unwrap_or(0));
                }
                (Fill::Time, _) => data.push(unit.value(&c.ty, timestamp_ms)),
                (Fill::Value, _) => data.push_f64(value),
                _ => data.push(zero_of(&c.ty)),
            }
        }
    }
}

impl SampleSink for SamplesBuilder<'_> {
    fn labels<N: AsRef<str>, V: AsRef<str>>(&mut self, labels: &[(N, V)]) {
        self.flush_pending();
        let own = &mut self.own;
        own.spans.clear();
        own.suffix.clear();
        own.escaped = false;
        if labels.is_empty() {
            return;
        }
        let out = &mut own.suffix;
        out.push('{');
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let start = out.len();
            out.push_str(name.as_ref());
            let name = start..out.len();
            out.push_str("=\"");
            let start = out.len();
            push_escaped(out, value.as_ref());
            own.escaped |= out.len() - start != value.as_ref().len();
            own.spans.push(LabelSpan {
                name,
                value: start..out.len(),
            });
            out.push('"');
        }
        out.push('}');
    }

    fn sample(&mut self, metric: &str, timestamp_ms: i64, value: f64) {
        self.key.clear();
        self.key.push_str(metric);
        self.key.push_str(&self.own.suffix);
        let id = series_id_of_key(&self.key);
        let start = self.pending_metrics.len();
        self.pending_metrics.push_str(metric);
        self.pending.push((id, start..self.pending_metrics.len()));
        self.push_row(metric, id, timestamp_ms, value);
    }

    fn recall(&mut self, raw: &[u8]) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(e) = RECALL.get(self.want.salt(), raw) else {
            return false;
        };
        if !self.want.still_fresh(Fresh(e.fresh.load(Relaxed))) {
            match self.want.want_one(e.id) {
                // A series row is built from decoded labels: the decoder decodes this series
                // as if new, and its row is written (the filter said yes once).
                Ok(()) => {
                    e.fresh.store(Fresh::NEVER.0, Relaxed);
                    self.granted.insert(e.id);
                    return false;
                }
                Err(fresh) => e.fresh.store(fresh.0, Relaxed),
            }
        }
        self.current = Some(e);
        self.recalled += 1;
        true
    }

    fn sample_recalled(&mut self, timestamp_ms: i64, value: f64) {
        if let Some(e) = self.current.clone() {
            self.push_row(&e.metric, e.id, timestamp_ms, value);
        }
    }

    fn remember(&mut self, raw: &[u8]) {
        let Some((id, metric)) = self.pending.last() else {
            return;
        };
        RECALL.insert(Recalled {
            salt: self.want.salt(),
            raw: raw.into(),
            metric: self.pending_metrics[metric.clone()].into(),
            id: *id,
            fresh: Fresh::NEVER.0.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{influx, remote_write, SampleVec};

    fn schemas() -> (TableSchema, TableSchema) {
        let t = |name: &str, cols: &[(&str, &str)]| {
            TableSchema::from_columns("db", name, "MergeTree", cols).expect("types")
        };
        (
            t(
                "samples",
                &[
                    ("tenant", "LowCardinality(String)"),
                    ("metric", "LowCardinality(String)"),
                    ("series_id", "UInt64"),
                    ("timestamp", "DateTime64(3, 'UTC')"),
                    ("value", "Float64"),
                ],
            ),
            t(
                "series",
                &[
                    ("tenant", "LowCardinality(String)"),
                    ("metric", "LowCardinality(String)"),
                    ("series_id", "UInt64"),
                    ("label_names", "Array(LowCardinality(String))"),
                    ("label_values", "Array(String)"),
                    ("last_seen", "DateTime('UTC')"),
                ],
            ),
        )
    }

    const BODY: &str = "cpu,zone=b,host=h\\ 1 usage=0.5,idle=2i,msg=\"x\" 1700000000000000000\n\
        cpu,host=h2,q=a\\\"b\\\\c f=1 1700000000001000000\n\
        bad line\n\
        mem value=3 1700000000002000000\n";

    /// The builder path (borrowed labels, series key built from a shared label part) gives the
    /// same rows as owned samples through the original per-sample mapping.
    #[test]
    fn builder_rows_equal_owned_sample_rows() {
        let (s, r) = schemas();
        let owned = influx::decode(BODY, influx::Precision::Nanoseconds, 0);
        let (want_s, want_r) = super::super::samples_rows(&owned.samples, "t1", &s, &r, 5000);
        let mut seen = IdSet::default();
        let mut first = |id| seen.insert(id);
        let mut b = SamplesBuilder::new((&s, &r), "t1", 5000, &mut first);
        let report =
            influx::decode_bytes_to(BODY.as_bytes(), influx::Precision::Nanoseconds, 0, &mut b);
        assert_eq!(report.errors.len(), 1);
        let got = b.finish();
        assert_eq!(got.samples.block.to_rows(), want_s.rows);
        assert_eq!(got.series.rows, want_r.rows);
        assert_eq!(got.series.rows.len(), 4);
        // Label values escaped in the series key come back as they were in the series row
        // (line protocol keeps `\"` as is and turns `\\` into `\`).
        let values = &got.series.rows[2][4];
        assert_eq!(
            values,
            &Value::Array(vec![Value::str("h2"), Value::str(r#"a\"b\c"#)])
        );
        // ...and the series_id is cityHash64 of the escaped key.
        let key = r#"cpu_f{host="h2",q="a\\\"b\\c"}"#;
        assert_eq!(
            got.samples.block.row(2)[2],
            Value::UInt(series_id_of_key(key))
        );
    }

    #[test]
    fn remote_write_builder_matches_owned_decode() {
        let (s, r) = schemas();
        let samples = influx::decode(BODY, influx::Precision::Nanoseconds, 0).samples;
        let body = remote_write::encode(&samples);
        let mut owned = SampleVec::default();
        remote_write::decode_to(&body, 1 << 20, &mut owned).expect("decodes");
        assert_eq!(owned.samples, samples);
        let (want_s, want_r) = super::super::samples_rows(&samples, "", &s, &r, 0);
        let mut all = |_| true;
        let mut b = SamplesBuilder::new((&s, &r), "", 0, &mut all);
        remote_write::decode_to(&body, 1 << 20, &mut b).expect("decodes");
        let got = b.finish();
        assert_eq!(got.samples.block.to_rows(), want_s.rows);
        assert_eq!(got.series.rows, want_r.rows);
    }

    /// A remote_write series seen before is recalled by its label bytes (no label decoding)
    /// and gives the same sample rows; when the filter wants its series row, it is decoded again
    /// and the row is written as the first time.
    #[test]
    fn recalled_series_give_the_same_rows() {
        let (s, r) = schemas();
        let samples = influx::decode(BODY, influx::Precision::Nanoseconds, 0).samples;
        let body = remote_write::encode(&samples);
        let run = |want: &mut dyn SeriesFilter| {
            let mut b = SamplesBuilder::new((&s, &r), "t", 7, want);
            remote_write::decode_to(&body, 1 << 20, &mut b).expect("decodes");
            b.finish()
        };
        let mut seen = IdSet::default();
        let mut once = |id| seen.insert(id);
        let first = run(&mut once);
        let second = run(&mut once);
        assert_eq!(first.samples.block.len(), samples.len());
        assert_eq!(first.series.rows.len(), samples.len());
        assert_eq!(second.recalled, samples.len());
        assert_eq!(first.samples.block, second.samples.block);
        assert!(second.series.rows.is_empty());
        let third = run(&mut |_| true);
        assert_eq!(third.recalled, 0);
        assert_eq!(third.series.rows, first.series.rows);
        assert_eq!(third.samples.block, first.samples.block);
        // A changed label value is other bytes: decoded, not recalled.
        let mut other = samples.clone();
        other[0].labels[0].1.push('x');
        let body = remote_write::encode(&other[..1]);
        let mut b = SamplesBuilder::new((&s, &r), "t", 7, &mut once);
        remote_write::decode_to(&body, 1 << 20, &mut b).expect("decodes");
        let got = b.finish();
        assert_eq!(got.recalled, 0);
        assert_ne!(got.samples.block.row(0)[2], first.samples.block.row(0)[2]);
    }

    /// Recalled series keep the series cache's semantics: no series row while the last one is
    /// fresh, a new one after `refresh`, and after a failed insert made the cache forget it.
    #[test]
    fn recalled_series_follow_the_series_cache() {
        use crate::ingest::{CachedSeries, SeriesCache};
        let (s, r) = schemas();
        let samples = influx::decode(BODY, influx::Precision::Nanoseconds, 0).samples;
        // A tenant salt of its own: other tests' remembered series do not interfere.
        let salt = 0x5eed;
        let body = remote_write::encode(&samples);
        let cache = SeriesCache::new(std::time::Duration::from_secs(10), 1 << 10);
        let run = |now_ms| {
            let mut f = CachedSeries {
                cache: &cache,
                salt,
                now_ms,
            };
            let mut b = SamplesBuilder::new((&s, &r), "t", now_ms, &mut f);
            remote_write::decode_to(&body, 1 << 20, &mut b).expect("decodes");
            let got = b.finish();
            (got.series.rows.len(), got.recalled)
        };
        let n = samples.len();
        assert_eq!(run(1_000), (n, 0));
        assert_eq!(run(2_000), (0, n));
        assert_eq!(run(3_000), (0, n));
        // Past refresh: rewritten (decoded again), then recalled again.
        assert_eq!(run(12_000), (n, 0));
        assert_eq!(run(13_000), (0, n));
        // A forgotten series (its insert failed) is written by the next request.
        let first = run(14_000);
        assert_eq!(first, (0, n));
        let mut f = CachedSeries {
            cache: &cache,
            salt,
            now_ms: 14_000,
        };
        let mut b = SamplesBuilder::new((&s, &r), "t", 14_000, &mut f);
        remote_write::decode_to(&body, 1 << 20, &mut b).expect("decodes");
        let ids: Vec<u64> = b
            .finish()
            .samples
            .block
            .to_rows()
            .iter()
            .map(|row| match row[2] {
                Value::UInt(id) => id ^ salt,
                _ => 0,
            })
            .collect();
        cache.forget(ids.into_iter());
        assert_eq!(run(15_000), (n, 0));
    }

    /// The series filter is asked once per label set, about all of its samples' series, and
    /// only the series it accepts get a series row.
    #[test]
    fn filter_is_asked_per_label_set() {
        struct Every2nd(Vec<usize>);
        impl SeriesFilter for Every2nd {
            fn want(&mut self, ids: &[u64], out: &mut Vec<bool>) {
                self.0.push(ids.len());
                out.extend((0..ids.len()).map(|i| i % 2 == 0));
            }
        }
        let (s, r) = schemas();
        let mut f = Every2nd(Vec::new());
        let mut b = SamplesBuilder::new((&s, &r), "", 0, &mut f);
        influx::decode_bytes_to(BODY.as_bytes(), influx::Precision::Nanoseconds, 0, &mut b);
        let got = b.finish();
        assert_eq!(f.0, [2, 1, 1]);
        assert_eq!(got.series.rows.len(), 3);
        assert_eq!(got.new_series.len(), 3);
        assert_eq!(got.samples.block.len(), 4);
    }

    #[test]
    fn times_the_column_cannot_hold_are_reported() {
        let (s, r) = schemas();
        let mut all = |_| true;
        let mut b = SamplesBuilder::new((&s, &r), "", 0, &mut all);
        b.labels::<&str, &str>(&[]);
        b.sample("m", 1, 1.0);
        b.sample("m", i64::MAX, 1.0);
        b.sample("m", i64::MIN, 1.0);
        let bad = b.finish().out_of_range.expect("out of range");
        assert_eq!((bad.sample, bad.timestamp_ms), (2, i64::MAX));
        assert!(bad.to_string().contains("DateTime64"), "{bad}");
    }
}
