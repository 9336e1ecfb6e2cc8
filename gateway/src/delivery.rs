//! Spooled delivery (`ack = "spooled"`): a flushed batch is split into lanes (one per shard in
//! shard-aware mode, else the Distributed lane), each lane's rows are encoded as one `RowBinary`
//! block, the blocks are fsynced into the [`Spool`], and only then are the requests acked. One
//! task per lane sends its blocks in spool order, so a down shard holds back only its own lane:
//!
//! - success -> the block is marked delivered;
//! - transient failure ([`classify`] = retry) -> the lane's breaker counts it, the same bytes are
//!   resent to the next replica after capped exponential backoff with full jitter, forever (the
//!   rows are already acked; the spool's size cap turns a long outage into 503s at admission);
//! - bad data -> the block is split in halves by row offsets until each bad row is alone; good
//!   parts are inserted, bad rows go to the [`Dlq`] with ClickHouse's reason. The split is
//!   deterministic, so a replay after a crash resends identical sub-blocks (deduplicated).
//!
//! Admission asks [`Delivery::admit`]: 503 when the spool is over its cap or the disk under its
//! floor, 429 while a lane's breaker is open because ClickHouse is busy (too many parts, memory).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backpressure::BreakerState;
use crate::catalog::TableSchema;
use crate::dlq::{DeadLetter, Dlq};
use crate::encode::Column;
use crate::retry::{classify, pressure, Class, Pressure};
use crate::spool::{Block, BlockMeta, Entry, Lane, NewBlock, Recovery, Spool};
use crate::writer::{WriteReport, Writer};
use crate::{metrics, quote_ident, GatewayError};

/// When a request is acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// 2xx after ClickHouse accepted the rows (default). Nothing is on the gateway's disk; a
    /// client that gets 503 keeps its data and retries.
    #[default]
    Inserted,
    /// 2xx after the encoded blocks are fsynced in the spool; delivered afterwards, exactly
    /// once through byte-identical resends. Survives gateway crashes and ClickHouse outages up
    /// to the spool's size; bad rows found later go to the dead-letter queue.
    Spooled,
}

/// The spool's delivery side.
pub struct Delivery {
    spool: Arc<Spool>,
    dlq: Dlq,
    writer: Writer,
    lanes: HashMap<Lane, mpsc::UnboundedSender<Entry>>,
    stop: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
}

/// Sub-blocks of a rejected block sent at once while isolating its bad rows.
const SPLIT_IN_FLIGHT: usize = 8;

enum Outcome {
    Done,
    Stopped,
}

impl Delivery {
    /// Starts one task per lane; recovered blocks are queued first, before any new traffic.
    pub fn start(spool: Arc<Spool>, recovery: Recovery, dlq: Dlq, writer: Writer) -> Arc<Self> {
        let shards = writer.cluster().shards.len();
        let mut lanes = HashMap::new();
        let mut receivers = Vec::new();
        for lane in (0..shards)
            .map(Lane::Shard)
            .chain(std::iter::once(Lane::Distributed))
        {
            let (tx, rx) = mpsc::unbounded_channel();
            lanes.insert(lane, tx);
            receivers.push((lane, rx));
        }
        let d = Arc::new(Delivery {
            spool,
            dlq,
            writer,
            lanes,
            stop: CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
        });
        if !recovery.replay.is_empty() {
            tracing::info!(
                blocks = recovery.replay.len(),
                "replaying undelivered spool blocks"
            );
        }
        for e in recovery.replay {
            d.enqueue(e);
        }
        for (lane, rx) in receivers {
            d.tasks.spawn(d.clone().lane(lane, rx));
        }
        metrics::DLQ_ROWS.set(d.dlq.rows() as i64);
        d.tasks.spawn(d.clone().refresh_dlq_gauge());
        d
    }

    fn enqueue(&self, e: Entry) {
        let lane = match e.meta.lane {
            Lane::Shard(s) if self.lanes.contains_key(&Lane::Shard(s)) => Lane::Shard(s),
            // A block spooled under a different topology goes through the Distributed table.
            _ => Lane::Distributed,
        };
        if let Some(tx) = self.lanes.get(&lane) {
            let _ = tx.send(e);
        }
    }

    /// The spool.
    pub fn spool(&self) -> &Arc<Spool> {
        &self.spool
    }

    /// Admission for a new request.
    ///
    /// # Errors
    /// 503 [`GatewayError::Unavailable`] when the spool may not grow; 429
    /// [`GatewayError::Overloaded`] while ClickHouse reports it is busy.
    pub fn admit(&self) -> Result<(), GatewayError> {
        self.spool.admit().map_err(|message| {
            metrics::ADMISSION_REFUSED
                .get_or_create(&vec![("reason", "spool_full".to_owned())])
                .inc();
            GatewayError::Unavailable {
                table: "the spool".into(),
                message,
            }
        })?;
        for b in self.writer.breakers() {
            if let BreakerState::Open(Pressure::Busy) = b.state() {
                metrics::ADMISSION_REFUSED
                    .get_or_create(&vec![("reason", "clickhouse_busy".to_owned())])
                    .inc();
                return Err(GatewayError::Overloaded(format!(
                    "ClickHouse shard {} is busy (too many parts or memory limit)",
                    b.label()
                )));
            }
        }
        Ok(())
    }

    /// Encodes `rows` per lane, fsyncs the blocks into the spool and queues them for delivery.
    /// Returns once the rows are durable.
    ///
    /// # Errors
    /// 503 when the spool cannot be written.
    pub async fn spool_rows(
        &self,
        schema: &TableSchema,
        columns: &[Column],
        rows: &crate::block::Block,
    ) -> Result<WriteReport, GatewayError> {
        let now = crate::server::now_ms();
        let spec: Vec<(String, String)> = columns
            .iter()
            .map(|c| (c.name.clone(), c.type_text.clone()))
            .collect();
        let mut blocks = Vec::new();
        let mut bytes = 0;
        let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
        for part in self.writer.plan(schema, columns, rows) {
            let mut block = Vec::new();
            let mut offsets = Vec::with_capacity(part.rows.len());
            for i in 0..part.rows.len() {
                offsets.push(block.len() as u32);
                crate::encode::rowbinary::put_row(&mut block, columns, &part.rows, i);
            }
            bytes += block.len();
            blocks.push(NewBlock {
                meta: BlockMeta {
                    id: 0,
                    lane: part.lane,
                    table: schema.full_name(),
                    sql: format!(
                        "INSERT INTO {} ({}) FORMAT RowBinary",
                        part.target,
                        names.join(", ")
                    ),
                    columns: spec.clone(),
                    rows: part.rows.len() as u32,
                    created_ms: now,
                },
                offsets,
                block: bytes::Bytes::from(block),
            });
        }
        let spool = self.spool.clone();
        let entries = tokio::task::spawn_blocking(move || spool.append(blocks))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|message| {
                tracing::error!(error = %message, "cannot spool a batch");
                GatewayError::Unavailable {
                    table: schema.full_name(),
                    message: "the spool cannot be written".into(),
                }
            })?;
        metrics::SPOOLED_ROWS.inc_by(rows.len() as u64);
        for e in entries {
            self.enqueue(e);
        }
        Ok(WriteReport {
            rows: rows.len(),
            bytes,
            retries: 0,
        })
    }

    /// Waits until everything spooled is delivered or `deadline` passes, then stops the lanes
    /// (undelivered blocks stay in the spool for the next start). True when all were delivered.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        let drained = tokio::time::timeout(deadline, async {
            while self.spool.pending_bytes() > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .is_ok();
        self.stop.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
        drained
    }

    async fn refresh_dlq_gauge(self: Arc<Self>) {
        // `chgate dlq replay` runs in another process; the gauge follows the directory.
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            let dlq = self.dlq.clone();
            if let Ok(n) = tokio::task::spawn_blocking(move || dlq.rows()).await {
                metrics::DLQ_ROWS.set(n as i64);
            }
        }
    }

    async fn lane(self: Arc<Self>, lane: Lane, mut rx: mpsc::UnboundedReceiver<Entry>) {
        loop {
            let e = tokio::select! {
                () = self.stop.cancelled() => return,
                e = rx.recv() => match e { Some(e) => e, None => return },
            };
            if let Outcome::Stopped = self.deliver(lane, &e).await {
                return;
            }
        }
    }

    async fn deliver(&self, lane: Lane, e: &Entry) -> Outcome {
        let spool = self.spool.clone();
        let entry = e.clone();
        let block = match tokio::task::spawn_blocking(move || spool.read(&entry)).await {
            Ok(Ok(b)) => b,
            Ok(Err(err)) => {
                // Left in the spool: the next start replays it again.
                tracing::error!(id = e.meta.id, error = %err, "cannot read a spooled block");
                return Outcome::Done;
            }
            Err(_) => return Outcome::Stopped,
        };
        let rows = e.meta.rows as usize;
        // Ranges still to insert; a rejected range is halved. Up to SPLIT_IN_FLIGHT ranges are
        // sent at once: which sub-blocks get sent depends only on the data, not on the order,
        // so a replay after a crash resends the same sub-blocks.
        let mut todo = std::collections::VecDeque::from([(0usize, rows)]);
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        let mut bad: Vec<(usize, String)> = Vec::new();
        loop {
            while in_flight.len() < SPLIT_IN_FLIGHT {
                let Some(range) = todo.pop_front() else { break };
                let block = &block;
                in_flight.push(async move { (range, self.insert(lane, e, block, range).await) });
            }
            let Some(((lo, hi), result)) = futures_util::StreamExt::next(&mut in_flight).await
            else {
                break;
            };
            match result {
                Err(()) => return Outcome::Stopped,
                Ok(None) => {}
                Ok(Some(reason)) if hi - lo == 1 => bad.push((lo, reason)),
                Ok(Some(_)) => {
                    let mid = lo + (hi - lo) / 2;
                    todo.push_back((lo, mid));
                    todo.push_back((mid, hi));
                }
            }
        }
        bad.sort_by_key(|(i, _)| *i);
        if !bad.is_empty() && !self.dead_letter(e, &block, &bad) {
            return Outcome::Done;
        }
        metrics::DELIVERED_ROWS.inc_by((rows - bad.len()) as u64);
        self.spool.delivered(e);
        Outcome::Done
    }

    /// Inserts rows `lo..hi` of a block, retrying transient failures until they succeed.
    /// `Ok(Some(reason))` when ClickHouse rejects them as bad data; `Err` when stopped.
    async fn insert(
        &self,
        lane: Lane,
        e: &Entry,
        block: &Block,
        (lo, hi): (usize, usize),
    ) -> Result<Option<String>, ()> {
        let body = block.rows(lo, hi);
        let breaker = self.writer.breaker(lane);
        let backoff = self.writer.settings().backoff;
        for attempt in 0u32.. {
            if let Some(t) = breaker.wait_until() {
                tokio::select! {
                    () = self.stop.cancelled() => return Err(()),
                    () = tokio::time::sleep_until(t.into()) => {}
                }
            }
            let sent = tokio::select! {
                () = self.stop.cancelled() => return Err(()),
                r = self.writer.insert_block(lane, &e.meta.sql, body.clone(), attempt) => r,
            };
            let err = match sent {
                Ok(()) => {
                    breaker.success();
                    return Ok(None);
                }
                Err(err) => err,
            };
            if classify(&err) == Class::Reject {
                breaker.success();
                return Ok(Some(err.to_string()));
            }
            breaker.failure(pressure(&err));
            metrics::RETRIES.inc();
            if attempt % 10 == 0 {
                tracing::warn!(table = %e.meta.table, shard = breaker.label(), attempt, error = %err, "spooled block not delivered yet; retrying");
            }
            let delay = backoff.delay(attempt.min(16) + 1, rand::random::<f64>());
            tokio::select! {
                () = self.stop.cancelled() => return Err(()),
                () = tokio::time::sleep(delay) => {}
            }
        }
        Err(())
    }

    /// Stores the bad rows of a block; false when the store failed (the block stays spooled).
    fn dead_letter(&self, e: &Entry, block: &Block, bad: &[(usize, String)]) -> bool {
        let mut rows = Vec::new();
        for (i, _) in bad {
            rows.extend_from_slice(&block.rows(*i, i + 1));
        }
        let cols: Vec<String> = e.meta.columns.iter().map(|(n, _)| quote_ident(n)).collect();
        let table = e.meta.table.split_once('.').map_or_else(
            || quote_ident(&e.meta.table),
            |(d, t)| format!("{}.{}", quote_ident(d), quote_ident(t)),
        );
        let entry = DeadLetter {
            id: format!("{}-{}", e.meta.created_ms, e.meta.id),
            table: e.meta.table.clone(),
            replay_sql: format!("INSERT INTO {table} ({}) FORMAT RowBinary", cols.join(", ")),
            columns: e.meta.columns.clone(),
            rows: bad.len() as u32,
            reason: bad[0].1.clone(),
            created_ms: crate::server::now_ms(),
        };
        match self.dlq.put(&entry, &rows) {
            Ok(()) => {
                tracing::warn!(table = %e.meta.table, rows = bad.len(), id = %entry.id, reason = %entry.reason, "rows rejected by ClickHouse moved to the dead-letter queue");
                metrics::DLQ_ROWS.inc_by(bad.len() as i64);
                metrics::DEAD_LETTERED_ROWS.inc_by(bad.len() as u64);
                true
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot write the dead-letter queue; block kept in the spool");
                false
            }
        }
    }
}
