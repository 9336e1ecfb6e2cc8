//! Per-table batching: handlers submit rows and wait; a worker per (table, column list) flushes
//! when the batch reaches `max_rows` or `max_bytes`, or its oldest row is `max_age` old, and
//! answers every waiter with the flush's outcome: with `ack = "inserted"` the outcome of the
//! insert, with `ack = "spooled"` the fsync of the batch's blocks into the spool
//! ([`crate::delivery`]), which then delivers them.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;

use crate::block::Block;
use crate::catalog::TableSchema;
use crate::delivery::Delivery;
use crate::encode::Column;
use crate::writer::{WriteReport, Writer};
use crate::{metrics, GatewayError};

/// Batch settings as configured (human-readable durations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Flush when a batch holds this many rows. Default 100000.
    pub max_rows: usize,
    /// Flush when a batch holds about this many bytes. Default 32 MiB.
    pub max_bytes: usize,
    /// Flush when the oldest row waited this long. Default 200 ms.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// A batch of at least `linger_rows` rows is flushed early, once no rows arrived for
    /// `linger`: it stopped growing (its clients wait for it), so waiting for `max_age` would
    /// only add latency. Small batches still wait for `max_age` (few, large inserts for
    /// ClickHouse at low load). Default 10000; 0 turns early flushes off.
    pub linger_rows: usize,
    /// How long a batch of `linger_rows` or more waits for more rows. Default 5 ms.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Submissions queued per table before handlers wait (backpressure). Default 1024.
    pub queue: usize,
    /// Flushes of one table in flight at once (a batch fills while the previous one is being
    /// inserted). Default 2.
    pub flushes_in_flight: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_rows: 100_000,
            max_bytes: 32 << 20,
            max_age: Duration::from_millis(200),
            linger_rows: 10_000,
            linger: Duration::from_millis(5),
            queue: 1024,
            flushes_in_flight: 2,
        }
    }
}

/// Validated batch settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Row limit.
    pub max_rows: NonZeroUsize,
    /// Byte limit.
    pub max_bytes: NonZeroUsize,
    /// Age limit.
    pub max_age: Duration,
    /// Early flush of a batch that stopped growing: at least this many rows (`None`: off)...
    pub linger_rows: Option<NonZeroUsize>,
    /// ...and no new rows for this long.
    pub linger: Duration,
    /// Queue length.
    pub queue: NonZeroUsize,
    /// Concurrent flushes per table.
    pub flushes_in_flight: NonZeroUsize,
}

impl BatchConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self) -> Result<BatchSettings, String> {
        let nz = |v: usize, f: &str| {
            NonZeroUsize::new(v).ok_or_else(|| format!("batch.{f} must be greater than 0"))
        };
        if self.max_age.is_zero() {
            return Err("batch.max_age must be greater than 0".into());
        }
        if self.linger_rows > 0 && (self.linger.is_zero() || self.linger >= self.max_age) {
            return Err(format!(
                "batch.linger must be greater than 0 and less than batch.max_age ({:?}); \
                 set batch.linger_rows = 0 to turn early flushes off",
                self.max_age
            ));
        }
        Ok(BatchSettings {
            max_rows: nz(self.max_rows, "max_rows")?,
            max_bytes: nz(self.max_bytes, "max_bytes")?,
            max_age: self.max_age,
            linger_rows: NonZeroUsize::new(self.linger_rows),
            linger: self.linger,
            queue: nz(self.queue, "queue")?,
            flushes_in_flight: nz(self.flushes_in_flight, "flushes_in_flight")?,
        })
    }
}

struct Submit {
    rows: Block,
    bytes: usize,
    reply: oneshot::Sender<Result<WriteReport, GatewayError>>,
}

/// Routes submissions to per-(table, columns) workers, starting them on first use.
#[derive(Clone)]
pub struct Batcher {
    settings: BatchSettings,
    writer: Writer,
    delivery: Option<Arc<Delivery>>,
    workers: Arc<Mutex<HashMap<String, mpsc::Sender<Submit>>>>,
    shutdown: tokio_util::sync::CancellationToken,
    tasks: tokio_util::task::TaskTracker,
}

impl Batcher {
    /// A batcher writing through `writer`.
    pub fn new(settings: BatchSettings, writer: Writer) -> Self {
        Batcher {
            settings,
            writer,
            delivery: None,
            workers: Arc::default(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Spools flushed batches through `delivery` (`ack = "spooled"`) instead of inserting them.
    #[must_use]
    pub fn with_delivery(mut self, delivery: Arc<Delivery>) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// The spooled delivery, when `ack = "spooled"`.
    pub fn delivery(&self) -> Option<&Arc<Delivery>> {
        self.delivery.as_ref()
    }

    /// The writer.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Submits rows and waits until the batch holding them is inserted (or failed).
    ///
    /// # Errors
    /// The flush's error, or [`GatewayError::ShuttingDown`].
    pub async fn submit(
        &self,
        schema: Arc<TableSchema>,
        columns: Arc<Vec<Column>>,
        rows: Block,
    ) -> Result<WriteReport, GatewayError> {
        if rows.is_empty() {
            return Ok(WriteReport::default());
        }
        if self.shutdown.is_cancelled() {
            return Err(GatewayError::ShuttingDown);
        }
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let key = format!("{}|{}", schema.full_name(), names.join(","));
        let bytes = rows.heap_bytes();
        let tx = self.worker(key, schema, columns).await;
        let (reply, rx) = oneshot::channel();
        let n = rows.len();
        metrics::QUEUE_ROWS.inc_by(n as i64);
        if tx.send(Submit { rows, bytes, reply }).await.is_err() {
            metrics::QUEUE_ROWS.dec_by(n as i64);
            return Err(GatewayError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(GatewayError::ShuttingDown))
    }

    async fn worker(
        &self,
        key: String,
        schema: Arc<TableSchema>,
        columns: Arc<Vec<Column>>,
    ) -> mpsc::Sender<Submit> {
        let mut workers = self.workers.lock().await;
        if let Some(tx) = workers.get(&key).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(self.settings.queue.get());
        let w = Worker {
            settings: self.settings,
            writer: self.writer.clone(),
            delivery: self.delivery.clone(),
            schema,
            columns,
        };
        self.tasks.spawn(w.run(rx, self.shutdown.clone()));
        workers.insert(key, tx.clone());
        tx
    }

    /// Stops intake and waits (up to `deadline`) for every worker to flush what it holds.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.shutdown.cancel();
        self.workers.lock().await.clear();
        self.tasks.close();
        tokio::time::timeout(deadline, self.tasks.wait())
            .await
            .is_ok()
    }
}

struct Worker {
    settings: BatchSettings,
    writer: Writer,
    delivery: Option<Arc<Delivery>>,
    schema: Arc<TableSchema>,
    columns: Arc<Vec<Column>>,
}

impl Worker {
    async fn run(
        self,
        mut rx: mpsc::Receiver<Submit>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let me = Arc::new(self);
        let slots = me.settings.flushes_in_flight.get();
        let inflight = Arc::new(tokio::sync::Semaphore::new(slots));
        let mut pending: Vec<Submit> = Vec::new();
        let (mut rows, mut bytes) = (0usize, 0usize);
        let mut deadline: Option<Instant> = None;
        let mut last_arrival = Instant::now();
        loop {
            // The batch's flush time: `max_age` after its first rows, or earlier once it holds
            // `linger_rows` and no rows came for `linger`.
            let linger = me
                .settings
                .linger_rows
                .filter(|n| rows >= n.get())
                .map(|_| last_arrival + me.settings.linger);
            let wake = match (deadline, linger) {
                (Some(d), Some(l)) => Some(d.min(l)),
                (d, l) => d.or(l),
            };
            let tick = async {
                match wake {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(s) => {
                        rows += s.rows.len();
                        bytes += s.bytes;
                        last_arrival = Instant::now();
                        deadline.get_or_insert(last_arrival + me.settings.max_age);
                        pending.push(s);
                        if rows >= me.settings.max_rows.get() || bytes >= me.settings.max_bytes.get() {
                            Self::start_flush(&me, &inflight, std::mem::take(&mut pending)).await;
                            (rows, bytes, deadline) = (0, 0, None);
                        }
                    }
                    None => break,
                },
                () = tick => {
                    Self::start_flush(&me, &inflight, std::mem::take(&mut pending)).await;
                    (rows, bytes, deadline) = (0, 0, None);
                }
                () = shutdown.cancelled() => break,
            }
        }
        // Drain: whatever was submitted before shutdown is flushed, never dropped.
        rx.close();
        while let Some(s) = rx.recv().await {
            pending.push(s);
        }
        Self::start_flush(&me, &inflight, pending).await;
        // Wait until every flush of this table has answered its requests.
        let _ = inflight
            .acquire_many(u32::try_from(slots).unwrap_or(u32::MAX))
            .await;
    }

    /// Starts a flush once one of the `flushes_in_flight` slots is free; while none is, the worker
    /// stops reading its queue, so handlers wait (backpressure).
    async fn start_flush(
        me: &Arc<Self>,
        inflight: &Arc<tokio::sync::Semaphore>,
        batch: Vec<Submit>,
    ) {
        if batch.is_empty() {
            return;
        }
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            return;
        };
        let w = me.clone();
        tokio::spawn(async move {
            w.flush(batch).await;
            drop(permit);
        });
    }

    async fn flush(&self, mut batch: Vec<Submit>) {
        if batch.is_empty() {
            return;
        }
        // Move the rows out into one block; the submissions keep their replies, and their row
        // counts let the isolation path below split the rows back per request.
        let lens: Vec<usize> = batch.iter().map(|s| s.rows.len()).collect();
        let mut parts = batch.iter_mut().map(|s| std::mem::take(&mut s.rows));
        let mut rows = parts.next().unwrap_or_default();
        for part in parts {
            rows.append(part);
        }
        let n = rows.len();
        let started = std::time::Instant::now();
        if let Some(d) = &self.delivery {
            // Spooled: durable on disk is the ack; bad rows found at delivery go to the DLQ.
            let result = d.spool_rows(&self.schema, &self.columns, &rows).await;
            metrics::QUEUE_ROWS.dec_by(n as i64);
            metrics::FLUSH_SECONDS.observe(started.elapsed().as_secs_f64());
            metrics::BATCH_ROWS.observe(n as f64);
            for s in batch {
                let _ = s.reply.send(result.clone());
            }
            return;
        }
        let result = self.writer.write(&self.schema, &self.columns, &rows).await;
        metrics::QUEUE_ROWS.dec_by(n as i64);
        metrics::FLUSH_SECONDS.observe(started.elapsed().as_secs_f64());
        metrics::BATCH_ROWS.observe(n as f64);
        if let (Err(GatewayError::Rejected { .. }), true) = (&result, batch.len() > 1) {
            // One request's bad rows must not fail the others that share its batch: write each
            // submission on its own so only the bad one gets the rejection.
            tracing::warn!(table = %self.schema.full_name(), requests = batch.len(), "batch rejected; isolating requests");
            let mut rest = rows;
            for (s, len) in batch.into_iter().zip(lens) {
                let tail = rest.split_off(len);
                let r = self.writer.write(&self.schema, &self.columns, &rest).await;
                rest = tail;
                let _ = s.reply.send(r);
            }
            return;
        }
        if let Err(e) = &result {
            metrics::FLUSH_FAILURES.inc();
            tracing::warn!(table = %self.schema.full_name(), rows = n, error = %e, "flush failed");
        }
        for s in batch {
            let _ = s.reply.send(result.clone());
        }
    }
}
