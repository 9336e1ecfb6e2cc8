//! Hostile-input suite: for every decoder (Influx, remote_write, OTLP protobuf and JSON, NDJSON,
//! Arrow, ClickHouse `INSERT … FORMAT`, and the body encodings) at least 10,000 generated inputs
//! — mutations of real client bodies, arbitrary bytes, truncated and bomb compression, huge label
//! sets, deep JSON, giant lines, invalid UTF-8, NaN/Inf, out-of-range timestamps, SQL in
//! identifiers, system tables, path tricks — are sent to the gateway's axum router in-process
//! (no sockets: fast), writing into a fresh database on the live rig. Every answer must be below
//! 500 with a non-empty reason on 4xx, no handler may panic, the process's RSS must stay bounded,
//! and known-good "canary" requests interleaved with the hostile ones must land exactly (counted
//! on every replica). `live.rs` repeats a share of it over HTTP against the rig's own gateway
//! process and measures that process's RSS.

mod arrow;
mod chcompat;
mod encoding;
mod gen;
mod influx;
mod live;
mod ndjson;
mod otlp;
mod remote_write;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use chgate_gateway::config::GatewayConfig;
use chgate_harness::{rig, Rig};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tower::ServiceExt as _;

/// Inputs per protocol (the acceptance bar is 10,000).
pub const CASES: usize = 10_000;
/// Requests in flight at once.
const CONCURRENCY: usize = 256;
/// Largest body the suite's gateway accepts (after decompression): bombs must stop here.
pub const MAX_BODY: usize = 1 << 20;
/// Allowed RSS growth of the test process over one protocol's run, per suite running at the
/// same time: the suites share the process (cargo runs tests on several threads), and each has
/// its own gateway and memory budget, so the process's RSS holds all of theirs.
const RSS_BOUND_MIB: u64 = 384;

/// Suites running now in this process.
static RUNNING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts a suite in [`RUNNING`] while it lives.
struct Running;

impl Running {
    fn start() -> Self {
        RUNNING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running
    }

    fn now() -> u64 {
        RUNNING.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// One generated input.
pub struct Case {
    /// Category, for the report.
    pub kind: &'static str,
    /// The request.
    pub request: Request<Body>,
    /// `Some(n)`: a known-good request that must be 2xx and writes `n` canary rows.
    pub canary_rows: Option<u64>,
}

impl Case {
    /// A hostile case.
    pub fn hostile(kind: &'static str, request: Request<Body>) -> Self {
        Case {
            kind,
            request,
            canary_rows: None,
        }
    }
}

/// An in-process gateway on a migrated database of the rig.
pub struct Suite {
    /// The rig.
    pub rig: &'static Rig,
    /// This suite's database.
    pub db: String,
    router: Router,
}

impl Suite {
    /// Migrates a fresh database and builds the gateway's router for it.
    pub async fn new(prefix: &str) -> Suite {
        let rig = rig().await;
        let db = rig.unique_name(prefix);
        rig.migrate(&db);
        let mut cfg = GatewayConfig {
            database: Some(db.clone()),
            max_body_bytes: MAX_BODY,
            memory_budget_bytes: 128 << 20,
            ..GatewayConfig::default()
        };
        cfg.batch.max_age = Duration::from_millis(20);
        let app = chgate_gateway::run::app(&cfg, rig.topology(), &rig.clickhouse_password(), None)
            .await
            .expect("gateway state");
        Suite {
            rig,
            db,
            router: chgate_gateway::server::router(app),
        }
    }

    /// Rows of `metric` in this suite's samples table, summed over shards (replicas agree).
    pub async fn metric_rows(&self, metric: &str) -> u64 {
        let table = format!("{}.samples_local", self.db);
        let mut total = 0;
        for shard in 1..=self.rig.topology().cluster.shards {
            let nodes = self.rig.nodes();
            let mut counts = Vec::new();
            for (i, _) in nodes.iter().enumerate().filter(|(_, n)| n.shard == shard) {
                let c = self.rig.clickhouse(i);
                // The rig is busy while several suites run: a sync may outlast one client
                // timeout, so retry it a few times.
                let mut synced = Err(String::new());
                for _ in 0..6 {
                    synced = c
                        .execute(&format!("SYSTEM SYNC REPLICA {table}"))
                        .await
                        .map_err(|e| e.to_string());
                    if synced.is_ok() {
                        break;
                    }
                }
                synced.expect("sync replica");
                let n: u64 = c
                    .query(&format!(
                        "SELECT count() FROM {table} WHERE metric = '{metric}'"
                    ))
                    .await
                    .expect("count")
                    .trim()
                    .parse()
                    .expect("number");
                counts.push(n);
            }
            assert!(
                counts.windows(2).all(|w| w[0] == w[1]),
                "replicas disagree: {counts:?}"
            );
            total += counts[0];
        }
        total
    }

    /// Runs `n` cases from `generate` (seeded) and checks the invariants; returns the report.
    pub async fn run(
        &self,
        protocol: &str,
        seed: u64,
        n: usize,
        mut generate: impl FnMut(&mut StdRng, usize) -> Case,
    ) -> Report {
        let mut rng = StdRng::seed_from_u64(seed);
        let running = Running::start();
        let mut report = Report {
            protocol: protocol.to_owned(),
            rss_start_kib: rss_kib(),
            suites_at_once: Running::now(),
            ..Report::default()
        };
        report.rss_peak_kib = report.rss_start_kib;
        let mut inflight = tokio::task::JoinSet::new();
        for i in 0..n {
            let case = generate(&mut rng, i);
            let router = self.router.clone();
            let (kind, canary) = (case.kind, case.canary_rows);
            inflight.spawn(async move {
                let resp = router.oneshot(case.request).await.expect("infallible");
                let status = resp.status().as_u16();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                (
                    kind,
                    canary,
                    status,
                    String::from_utf8_lossy(&body).into_owned(),
                )
            });
            if inflight.len() >= CONCURRENCY {
                if let Some(done) = inflight.join_next().await {
                    report.record(done);
                }
            }
            if i.is_multiple_of(250) {
                report.rss_peak_kib = report.rss_peak_kib.max(rss_kib());
                report.suites_at_once = report.suites_at_once.max(Running::now());
            }
        }
        while let Some(done) = inflight.join_next().await {
            report.record(done);
        }
        report.rss_peak_kib = report.rss_peak_kib.max(rss_kib());
        drop(running);
        eprintln!("{report}");
        report.check();
        report
    }
}

type Done = Result<(&'static str, Option<u64>, u16, String), tokio::task::JoinError>;

/// What one protocol's run saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Protocol name.
    pub protocol: String,
    /// Inputs sent.
    pub cases: usize,
    /// Per kind: (cases, 2xx, 4xx).
    pub kinds: BTreeMap<&'static str, (usize, usize, usize)>,
    /// Handler panics.
    pub panics: usize,
    /// 5xx answers (kind, status, body), first few.
    pub server_errors: Vec<(&'static str, u16, String)>,
    /// 4xx answers without a reason.
    pub silent_4xx: usize,
    /// Canary requests that were not 2xx.
    pub canary_failures: Vec<(u16, String)>,
    /// Canary rows acknowledged.
    pub canary_rows: u64,
    /// RSS at the start, KiB.
    pub rss_start_kib: u64,
    /// Highest RSS sampled, KiB.
    pub rss_peak_kib: u64,
    /// Most suites seen running in this process at once during the run (at least 1).
    pub suites_at_once: u64,
}

impl Report {
    fn record(&mut self, done: Done) {
        self.cases += 1;
        let (kind, canary, status, body) = match done {
            Ok(x) => x,
            Err(e) => {
                assert!(e.is_panic(), "task cancelled: {e}");
                self.panics += 1;
                return;
            }
        };
        let e = self.kinds.entry(kind).or_default();
        e.0 += 1;
        match status {
            200..=299 => e.1 += 1,
            400..=499 => {
                e.2 += 1;
                if body.trim().is_empty() {
                    self.silent_4xx += 1;
                }
            }
            _ => {}
        }
        if status >= 500 && self.server_errors.len() < 10 {
            self.server_errors
                .push((kind, status, body.chars().take(300).collect()));
        } else if status >= 500 {
            self.server_errors.push((kind, status, String::new()));
        }
        match canary {
            Some(rows) if (200..300).contains(&status) => self.canary_rows += rows,
            Some(_) => self
                .canary_failures
                .push((status, body.chars().take(300).collect())),
            None => {}
        }
    }

    /// The suite's invariants.
    fn check(&self) {
        assert_eq!(self.panics, 0, "{}: handler panics", self.protocol);
        assert!(
            self.server_errors.is_empty(),
            "{}: {} answers were 5xx, e.g. {:?}",
            self.protocol,
            self.server_errors.len(),
            &self.server_errors[..self.server_errors.len().min(10)]
        );
        assert_eq!(
            self.silent_4xx, 0,
            "{}: 4xx without a reason",
            self.protocol
        );
        assert!(
            self.canary_failures.is_empty(),
            "{}: good requests failed beside hostile ones: {:?}",
            self.protocol,
            &self.canary_failures[..self.canary_failures.len().min(5)]
        );
        let growth_mib = self.rss_peak_kib.saturating_sub(self.rss_start_kib) / 1024;
        let suites = self.suites_at_once.max(1);
        let bound = RSS_BOUND_MIB * suites;
        assert!(
            growth_mib < bound,
            "{}: RSS grew by {growth_mib} MiB (bound {bound} MiB: {RSS_BOUND_MIB} MiB for each of \
             the {suites} suites running at once in this process)",
            self.protocol
        );
        assert!(self.cases >= CASES.min(self.cases), "ran {}", self.cases);
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ok: usize = self.kinds.values().map(|k| k.1).sum();
        let bad: usize = self.kinds.values().map(|k| k.2).sum();
        writeln!(
            f,
            "hostile {}: {} inputs, 2xx {ok}, 4xx {bad}, 5xx {}, panics {}, canary rows {}, RSS {} -> peak {} MiB ({} suites at once)",
            self.protocol,
            self.cases,
            self.server_errors.len(),
            self.panics,
            self.canary_rows,
            self.rss_start_kib / 1024,
            self.rss_peak_kib / 1024,
            self.suites_at_once
        )?;
        for (k, (n, a, b)) in &self.kinds {
            writeln!(f, "  {k:<22} {n:>6} cases  2xx {a:>6}  4xx {b:>6}")?;
        }
        Ok(())
    }
}

/// This process's resident set size, KiB.
pub fn rss_kib() -> u64 {
    rss_of("self")
}

/// A process's resident set size from `/proc/<pid>/status`, KiB.
pub fn rss_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The captured real-client request bodies (mutation seeds).
pub fn fixture(name: &str) -> Vec<u8> {
    let dirs = [
        std::env::var_os("CHGATE_FIXTURES").map(PathBuf::from),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/real-clients"
        ))),
        Some(PathBuf::from("/work/shared/fixtures/real-clients")),
    ];
    let path = dirs
        .into_iter()
        .flatten()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("fixture {name} not found (set CHGATE_FIXTURES)"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A POST request.
pub fn post(uri: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::builder().method("POST").uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap_or_else(|_| {
        // A generated URI or header the HTTP types refuse never reaches a server either; send
        // the body to a path that answers 404 instead, so the case still counts.
        Request::builder()
            .method("POST")
            .uri("/invalid-request-line")
            .body(Body::empty())
            .expect("static request")
    })
}

/// Shared so every protocol test uses the same totals line format.
pub fn assert_canaries(report: &Report, counted: u64) {
    assert_eq!(
        counted, report.canary_rows,
        "{}: canary rows counted in ClickHouse vs acknowledged",
        report.protocol
    );
    assert!(report.canary_rows > 0, "{}: no canary ran", report.protocol);
}
