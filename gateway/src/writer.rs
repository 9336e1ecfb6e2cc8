//! The ClickHouse writer: `distributed` mode inserts into the `Distributed` table synchronously
//! (`insert_distributed_sync=1`, so an ack means rows are on their shard); `shard-aware` mode
//! computes the table's own sharding function and inserts each shard's rows straight into its
//! local replicated table, failing over between that shard's replicas.
//!
//! Shard-aware placement applies when the sharding key is a plain integer column (as in the
//! shipped schema, `series_id`): ClickHouse sends a row to shard `key % total_weight` with all
//! weights 1, in `remote_servers` order. Other tables fall back to the Distributed insert.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use chgate_clickhouse_http::{quote_ident, Client, Feature, ServerVersion};
use serde::{Deserialize, Serialize};

use crate::backpressure::{Breaker, BreakerConfig, BreakerState};
use crate::block::{Block, Data};
use crate::catalog::TableSchema;
use crate::encode::{self, Column, Format};
use crate::retry::{classify, pressure, Backoff, Class, Pressure};
use crate::spool::Lane;
use crate::value::Value;
use crate::GatewayError;

/// How rows reach the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// Insert into the Distributed table with `insert_distributed_sync=1`.
    Distributed,
    /// Insert each shard's rows into its local table directly.
    ShardAware,
}

/// One replica.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Node name (`ch-s1r2`).
    pub name: String,
    /// Its client.
    pub client: Client,
}

/// The cluster as the writer sees it: shards in `remote_servers` order.
#[derive(Debug)]
pub struct Cluster {
    /// Shards, each with its replicas.
    pub shards: Vec<Vec<Replica>>,
    /// Lowest server version in the cluster (features are used only if every node has them).
    pub version: ServerVersion,
    next: AtomicUsize,
}

impl Cluster {
    /// A cluster of the given shards.
    pub fn new(shards: Vec<Vec<Replica>>, version: ServerVersion) -> Self {
        Cluster {
            shards,
            version,
            next: AtomicUsize::new(0),
        }
    }

    /// Every replica, shard-major.
    pub fn all(&self) -> impl Iterator<Item = &Replica> {
        self.shards.iter().flatten()
    }

    /// Some client, round-robin (for schema look-ups and forwarded queries).
    pub fn any(&self) -> Option<&Replica> {
        let all: Vec<&Replica> = self.all().collect();
        (!all.is_empty()).then(|| all[self.next.fetch_add(1, Ordering::Relaxed) % all.len()])
    }
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Placement.
    pub mode: WriteMode,
    /// Wire format.
    pub format: Format,
    /// Retry policy.
    pub backoff: Backoff,
    /// Per-lane circuit breakers.
    pub breaker: BreakerConfig,
}

/// What one write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Rows written.
    pub rows: usize,
    /// Encoded bytes sent (first attempts).
    pub bytes: usize,
    /// Retries performed.
    pub retries: u32,
}

/// Inserts batches.
#[derive(Debug, Clone)]
pub struct Writer {
    cluster: Arc<Cluster>,
    settings: WriterSettings,
    /// One breaker per shard, then the Distributed lane's.
    breakers: Arc<Vec<Breaker>>,
}

/// One lane's share of a batch: where it goes, the table it is inserted into, and its rows.
pub struct LaneRows<'a> {
    /// The lane.
    pub lane: Lane,
    /// Quoted `db.table`: the shard's local table, or the Distributed (or plain) table.
    pub target: String,
    /// The rows (the whole batch on the Distributed lane, else the shard's part of it).
    pub rows: std::borrow::Cow<'a, Block>,
}

/// A shard index for each row, when the table can be written shard-aware.
pub fn shard_of_rows(
    schema: &TableSchema,
    columns: &[Column],
    rows: &Block,
    shards: usize,
) -> Option<Vec<usize>> {
    let key = schema.distributed.as_ref()?.sharding_key.trim().to_owned();
    let idx = columns.iter().position(|c| c.name == key)?;
    let integer = matches!(
        columns[idx].ty,
        crate::types::ColumnType::UInt8
            | crate::types::ColumnType::UInt16
            | crate::types::ColumnType::UInt32
            | crate::types::ColumnType::UInt64
    );
    if !integer || shards == 0 {
        return None;
    }
    let n = shards as u64;
    match rows.data.get(idx)? {
        Data::UInt(keys) => Some(keys.iter().map(|k| (k % n) as usize).collect()),
        Data::Values(values) => Some(
            values
                .iter()
                .map(|v| match v {
                    Value::UInt(k) => (k % n) as usize,
                    _ => 0,
                })
                .collect(),
        ),
        _ => None,
    }
}

impl Writer {
    /// A writer over `cluster`.
    pub fn new(cluster: Arc<Cluster>, settings: WriterSettings) -> Self {
        let shards = cluster.shards.len();
        let breakers = (0..shards)
            .map(|i| (i + 1).to_string())
            .chain(std::iter::once("distributed".to_owned()))
            .map(|label| Breaker::new(label, settings.breaker))
            .collect();
        Writer {
            cluster,
            settings,
            breakers: Arc::new(breakers),
        }
    }

    /// The breaker of a lane.
    pub fn breaker(&self, lane: Lane) -> &Breaker {
        let i = match lane {
            Lane::Shard(s) => s.min(self.breakers.len() - 1),
            Lane::Distributed => self.breakers.len() - 1,
        };
        &self.breakers[i]
    }

    /// Every breaker: shards in order, then the Distributed lane.
    pub fn breakers(&self) -> &[Breaker] {
        &self.breakers
    }

    /// The write settings.
    pub fn settings(&self) -> &WriterSettings {
        &self.settings
    }

    /// Splits rows into lanes: in shard-aware mode (when the table's sharding key allows it) one
    /// per shard with its local table as target, else one Distributed lane (the table itself).
    pub fn plan<'a>(
        &self,
        schema: &TableSchema,
        columns: &[Column],
        rows: &'a Block,
    ) -> Vec<LaneRows<'a>> {
        let shards = self.cluster.shards.len();
        let placement = match (self.settings.mode, &schema.distributed) {
            (WriteMode::ShardAware, Some(_)) => shard_of_rows(schema, columns, rows, shards),
            _ => None,
        };
        match (placement, &schema.distributed) {
            (Some(place), Some(d)) => {
                let target = format!(
                    "{}.{}",
                    quote_ident(&d.local_database),
                    quote_ident(&d.local_table)
                );
                rows.partition(&place, shards)
                    .into_iter()
                    .enumerate()
                    .filter(|(_, r)| !r.is_empty())
                    .map(|(s, rows)| LaneRows {
                        lane: Lane::Shard(s),
                        target: target.clone(),
                        rows: std::borrow::Cow::Owned(rows),
                    })
                    .collect()
            }
            _ => vec![LaneRows {
                lane: Lane::Distributed,
                target: format!(
                    "{}.{}",
                    quote_ident(&schema.database),
                    quote_ident(&schema.table)
                ),
                rows: std::borrow::Cow::Borrowed(rows),
            }],
        }
    }

    /// One attempt to insert an encoded block on `lane`: attempt N goes to the lane's replica
    /// N (mod replicas), so retries fail over. The same bytes always get the same dedup token.
    ///
    /// # Errors
    /// ClickHouse's error, for [`classify`].
    pub async fn insert_block(
        &self,
        lane: Lane,
        sql: &str,
        body: Bytes,
        attempt: u32,
    ) -> Result<(), chgate_clickhouse_http::Error> {
        let token = self.dedup_token(&body);
        let mut settings: Vec<(&str, &str)> = Vec::new();
        if let Some(token) = &token {
            settings.push(("insert_deduplication_token", token));
        }
        let replica = match lane {
            Lane::Shard(s) => {
                let r = &self.cluster.shards[s.min(self.cluster.shards.len() - 1)];
                &r[attempt as usize % r.len().max(1)]
            }
            Lane::Distributed => {
                settings.push(("insert_distributed_sync", "1"));
                let all: Vec<&Replica> = self.cluster.all().collect();
                all[attempt as usize % all.len().max(1)]
            }
        };
        replica.client.insert(sql, &settings, body).await
    }

    /// `insert_deduplication_token` for a block, on servers that have it (>= 22.2): same bytes, same
    /// token, so a retried block is dropped by the server like a duplicate block. Older servers
    /// deduplicate identical blocks by their hash alone, so the digest is not computed for them.
    fn dedup_token(&self, body: &[u8]) -> Option<String> {
        self.cluster
            .version
            .has(Feature::InsertDeduplicationToken)
            .then(|| hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(body)[..16]))
    }

    /// The cluster.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Writes `rows` (values for `columns`) into `schema`'s table.
    ///
    /// # Errors
    /// [`GatewayError::Rejected`] for bad data, [`GatewayError::Unavailable`] after retries.
    pub async fn write(
        &self,
        schema: &TableSchema,
        columns: &[Column],
        rows: &Block,
    ) -> Result<WriteReport, GatewayError> {
        if rows.is_empty() {
            return Ok(WriteReport::default());
        }
        const SYNC: [(&str, &str); 1] = [("insert_distributed_sync", "1")];
        let jobs = self
            .plan(schema, columns, rows)
            .into_iter()
            .map(|part| async move {
                let body = encode::encode_block(self.settings.format, columns, &part.rows);
                let (replicas, extra): (Vec<&Replica>, &[(&str, &str)]) = match part.lane {
                    Lane::Shard(s) => (self.cluster.shards[s].iter().collect(), &[]),
                    // Every replica, starting at the next one (round-robin); sync inserts so an ack
                    // means the rows are on their shards, not in a Distributed queue.
                    Lane::Distributed => (
                        self.rotated(),
                        if schema.distributed.is_some() {
                            &SYNC
                        } else {
                            &[]
                        },
                    ),
                };
                let n = part.rows.len();
                let lane = (replicas, Some(part.lane));
                self.insert(schema, &part.target, columns, body, lane, extra, n)
                    .await
            });
        let mut total = WriteReport::default();
        for r in futures_util::future::join_all(jobs).await {
            let r = r?;
            total.rows += r.rows;
            total.bytes += r.bytes;
            total.retries += r.retries;
        }
        Ok(total)
    }

    /// Every replica, starting at the next one in round-robin order.
    fn rotated(&self) -> Vec<&Replica> {
        let all: Vec<&Replica> = self.cluster.all().collect();
        let start = self.cluster.next.fetch_add(1, Ordering::Relaxed);
        let n = all.len().max(1);
        (0..all.len()).map(|i| all[(start + i) % n]).collect()
    }

    /// Sends an already-encoded insert (ClickHouse-compatible pass-through) with retries.
    ///
    /// # Errors
    /// As [`Writer::write`].
    pub async fn passthrough(
        &self,
        schema: &TableSchema,
        sql: &str,
        settings: &[(&str, &str)],
        body: Bytes,
    ) -> Result<WriteReport, GatewayError> {
        let rotated = self.rotated();
        self.send(schema, sql, settings.to_vec(), body, (&rotated, None), 0)
            .await
    }

    /// Sends `body` to the first replica, retrying transient failures (on the next replica) with
    /// backoff. The same bytes every time.
    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        schema: &TableSchema,
        target: &str,
        columns: &[Column],
        body: Bytes,
        (replicas, lane): (Vec<&Replica>, Option<Lane>),
        extra: &[(&str, &str)],
        rows: usize,
    ) -> Result<WriteReport, GatewayError> {
        let format = self.settings.format.for_columns(columns);
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
        let sql = format!(
            "INSERT INTO {target} ({}) FORMAT {}",
            cols.join(", "),
            format.as_sql()
        );
        let token = self.dedup_token(&body);
        let mut settings: Vec<(&str, &str)> = extra.to_vec();
        if let Some(token) = &token {
            settings.push(("insert_deduplication_token", token));
        }
        self.send(schema, &sql, settings, body, (&replicas, lane), rows)
            .await
    }

    async fn send(
        &self,
        schema: &TableSchema,
        sql: &str,
        settings: Vec<(&str, &str)>,
        body: Bytes,
        (replicas, lane): (&[&Replica], Option<Lane>),
        rows: usize,
    ) -> Result<WriteReport, GatewayError> {
        let backoff = self.settings.backoff;
        let breaker = lane.map(|l| self.breaker(l));
        if let Some(BreakerState::Open(p)) = breaker.map(Breaker::state) {
            // Fail fast while ClickHouse is known to be unable to take this lane's rows.
            let shard = breaker.map_or("", Breaker::label);
            return Err(pressure_error(
                schema,
                p,
                format!("shard {shard} breaker is open"),
            ));
        }
        let mut last = String::from("no replica configured");
        let mut last_pressure = Pressure::Down;
        for attempt in 0..backoff.attempts {
            let Some(replica) = replicas.get(attempt as usize % replicas.len().max(1)) else {
                break;
            };
            if attempt > 0 {
                tokio::time::sleep(backoff.delay(attempt, rand::random::<f64>())).await;
            }
            match replica.client.insert(sql, &settings, body.clone()).await {
                Ok(()) => {
                    if let Some(b) = breaker {
                        b.success();
                    }
                    return Ok(WriteReport {
                        rows,
                        bytes: body.len(),
                        retries: attempt,
                    });
                }
                Err(e) => {
                    last = e.to_string();
                    if classify(&e) == Class::Reject {
                        return Err(GatewayError::Rejected {
                            table: schema.full_name(),
                            message: e.to_string(),
                        });
                    }
                    last_pressure = pressure(&e);
                    if let Some(b) = breaker {
                        b.failure(last_pressure);
                    }
                    tracing::warn!(table = %schema.full_name(), replica = %replica.name, attempt, error = %e, "insert failed; retrying");
                    crate::metrics::RETRIES.inc();
                }
            }
        }
        Err(pressure_error(schema, last_pressure, last))
    }
}

/// The client-facing error for a lane under pressure: 429 when ClickHouse is busy, else 503
/// (both with Retry-After).
fn pressure_error(schema: &TableSchema, p: Pressure, message: String) -> GatewayError {
    match p {
        Pressure::Busy => GatewayError::Overloaded(format!(
            "ClickHouse is busy with {}: {message}",
            schema.full_name()
        )),
        Pressure::Down => GatewayError::Unavailable {
            table: schema.full_name(),
            message,
        },
    }
}
