//! The load loop: a generator thread encodes payloads into a bounded queue; senders drain it in
//! closed loop (N workers, each sends the next request when the last was answered) or open loop
//! (requests dispatched on a fixed schedule, latency measured from each request's *intended*
//! send time, so a slow server cannot hide its queueing delay — no coordinated omission, as
//! in wrk2). The run stops at `--duration` or after `--rows`, whichever comes first, and waits
//! for requests in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex, Semaphore};

use crate::body::{Encoder, Payload};
use crate::data::{Generator, Rng, FIELDS};
use crate::stats::{Snapshot, Stats};
use crate::target::Sender;
use crate::LoadgenError;

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadMode {
    /// `concurrency` requests in flight, each sent as soon as the previous one is answered.
    Closed {
        /// Requests in flight.
        concurrency: usize,
    },
    /// A fixed schedule of `rate` rows/s; at most `max_in_flight` requests outstanding (later
    /// ones wait, and that wait counts in their latency).
    Open {
        /// Target rows per second.
        rate: f64,
        /// Cap on outstanding requests.
        max_in_flight: usize,
    },
}

/// How long and how hard to run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunSettings {
    /// Closed or open loop.
    pub mode: LoadMode,
    /// Stop after this long (requests in flight are still awaited).
    pub duration: Option<Duration>,
    /// Stop after this many rows (rounded up to whole points of 10 samples).
    pub rows: Option<u64>,
    /// Rows per request (rounded up to a multiple of 10). Default 5000.
    pub batch_rows: usize,
    /// Extra attempts for a retryable failure (429/503, Keeper errors). Default 3.
    pub retries: u32,
    /// Show a live progress line on stderr.
    pub progress: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            mode: LoadMode::Closed { concurrency: 4 },
            duration: Some(Duration::from_secs(30)),
            rows: None,
            batch_rows: 5_000,
            retries: 3,
            progress: false,
        }
    }
}

impl RunSettings {
    /// Checks the settings (pure).
    ///
    /// # Errors
    /// [`LoadgenError::Config`] naming the option.
    pub fn validate(&self) -> Result<(), LoadgenError> {
        let bad = |m: &str| Err(LoadgenError::Config(m.to_owned()));
        if self.duration.is_none() && self.rows.is_none() {
            return bad("give --duration and/or --rows: a load run must be bounded");
        }
        if self.duration == Some(Duration::ZERO) || self.rows == Some(0) {
            return bad("--duration and --rows must be positive");
        }
        if self.batch_rows == 0 {
            return bad("--batch-rows must be at least 1");
        }
        match self.mode {
            LoadMode::Closed { concurrency: 0 } => bad("--concurrency must be at least 1"),
            LoadMode::Open { rate, .. } if !(rate.is_finite() && rate > 0.0) => {
                bad("--rate must be a positive number of rows/s")
            }
            LoadMode::Open {
                max_in_flight: 0, ..
            } => bad("--concurrency (max in flight) must be at least 1"),
            _ => Ok(()),
        }
    }

    /// Rows per request, rounded up to whole points.
    pub fn request_rows(&self) -> usize {
        self.batch_rows.div_ceil(FIELDS) * FIELDS
    }
}

/// Spawns the generator thread: payloads of `batch` rows until `limit` rows or the receiver
/// is dropped.
fn spawn_producer(
    mut gen: Generator,
    mut encoder: Encoder,
    batch: usize,
    limit: Option<u64>,
    depth: usize,
) -> mpsc::Receiver<Payload> {
    let (tx, rx) = mpsc::channel(depth.max(2));
    std::thread::spawn(move || {
        let mut produced = 0u64;
        loop {
            let want = match limit {
                Some(l) if produced >= l => break,
                Some(l) => (l - produced).min(batch as u64) as usize,
                None => batch,
            };
            let p = encoder.next(&mut gen, want);
            produced += p.rows;
            if tx.blocking_send(p).is_err() {
                break;
            }
        }
    });
    rx
}

/// Sends `p`, retrying retryable failures with capped exponential backoff and full jitter.
/// Records the outcome with latency measured from `since`.
async fn send_recorded(sender: &Sender, p: &Payload, since: Instant, retries: u32, stats: &Stats) {
    let mut rng = Rng::new(since.elapsed().as_nanos() as u64 ^ p.rows);
    let mut attempt = 0;
    loop {
        match sender.send(p).await {
            Ok(()) => return stats.ok(since.elapsed(), p.rows, p.bytes()),
            Err(e) if e.retryable && attempt < retries => {
                attempt += 1;
                stats.retry();
                let cap = 50u64 << attempt.min(5);
                tokio::time::sleep(Duration::from_millis(rng.below(cap) + 1)).await;
            }
            Err(e) => {
                tracing::debug!(status = %e.status, message = %e.message, "request failed");
                return stats.failed(&e.status, &e.message);
            }
        }
    }
}

fn progress_bar(show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Updates the progress line twice a second until dropped.
fn spawn_progress(stats: Arc<Stats>, bar: indicatif::ProgressBar) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let (mut last_rows, mut last_t) = (0u64, Instant::now());
        loop {
            tick.tick().await;
            let rows = stats.rows();
            let dt = last_t.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{rows} rows acked  {:.0} rows/s  errors {}  p99 {:.1} ms",
                (rows - last_rows) as f64 / dt,
                stats.failures(),
                stats.p99_ms()
            ));
            bar.tick();
            (last_rows, last_t) = (rows, Instant::now());
        }
    })
}

/// Runs the load and returns the statistics.
///
/// # Errors
/// [`LoadgenError::Config`] for invalid settings.
pub async fn run(
    gen: Generator,
    encoder: Encoder,
    sender: Arc<Sender>,
    settings: &RunSettings,
) -> Result<Snapshot, LoadgenError> {
    settings.validate()?;
    let batch = settings.request_rows();
    let depth = match settings.mode {
        LoadMode::Closed { concurrency } => concurrency * 2,
        LoadMode::Open { max_in_flight, .. } => max_in_flight.min(64),
    };
    let rx = spawn_producer(gen, encoder, batch, settings.rows, depth);
    let stats = Arc::new(Stats::new());
    let bar = progress_bar(settings.progress);
    let ticker = spawn_progress(stats.clone(), bar.clone());
    let deadline = settings.duration.map(|d| stats.start() + d);
    match settings.mode {
        LoadMode::Closed { concurrency } => {
            closed_loop(rx, sender, &stats, concurrency, deadline, settings.retries).await;
        }
        LoadMode::Open {
            rate,
            max_in_flight,
        } => {
            let every = Duration::from_secs_f64(batch as f64 / rate);
            let open = OpenLoop {
                every,
                max_in_flight,
                deadline,
                retries: settings.retries,
            };
            open.run(rx, sender, &stats).await;
        }
    }
    let elapsed = stats.start().elapsed();
    ticker.abort();
    bar.finish_and_clear();
    Ok(stats.snapshot(elapsed))
}

async fn closed_loop(
    rx: mpsc::Receiver<Payload>,
    sender: Arc<Sender>,
    stats: &Arc<Stats>,
    concurrency: usize,
    deadline: Option<Instant>,
    retries: u32,
) {
    let rx = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (rx, sender, stats) = (rx.clone(), sender.clone(), stats.clone());
            tokio::spawn(async move {
                loop {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let Some(p) = rx.lock().await.recv().await else {
                        break;
                    };
                    send_recorded(&sender, &p, Instant::now(), retries, &stats).await;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

/// Open-loop schedule.
struct OpenLoop {
    every: Duration,
    max_in_flight: usize,
    deadline: Option<Instant>,
    retries: u32,
}

impl OpenLoop {
    async fn run(&self, mut rx: mpsc::Receiver<Payload>, sender: Arc<Sender>, stats: &Arc<Stats>) {
        let permits = Arc::new(Semaphore::new(self.max_in_flight));
        let start = tokio::time::Instant::now();
        for i in 0u32.. {
            let intended = start + self.every * i;
            if self.deadline.is_some_and(|d| intended.into_std() >= d) {
                break;
            }
            tokio::time::sleep_until(intended).await;
            // Latency runs from the intended time: waiting for a payload or a free slot counts.
            let Some(p) = rx.recv().await else {
                break;
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (sender, stats, retries) = (sender.clone(), stats.clone(), self.retries);
            tokio::spawn(async move {
                send_recorded(&sender, &p, intended.into_std(), retries, &stats).await;
                drop(permit);
            });
        }
        let _ = permits.acquire_many(self.max_in_flight as u32).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_must_be_bounded_and_positive() {
        let ok = RunSettings::default();
        assert!(ok.validate().is_ok());
        let unbounded = RunSettings {
            duration: None,
            rows: None,
            ..ok.clone()
        };
        assert!(unbounded
            .validate()
            .expect_err("unbounded")
            .to_string()
            .contains("bounded"));
        let rate = RunSettings {
            mode: LoadMode::Open {
                rate: 0.0,
                max_in_flight: 8,
            },
            ..ok.clone()
        };
        assert!(rate.validate().is_err());
        assert_eq!(
            RunSettings {
                batch_rows: 101,
                ..ok
            }
            .request_rows(),
            110
        );
    }
}
