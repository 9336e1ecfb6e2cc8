//! Fault-suite support: a gateway as a child process (so it can be SIGKILLed), a load client that
//! counts acked keys, exact reconciliation against ClickHouse, and the report lines.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chgate_harness::Rig;

/// Full-size cases (`CHGATE_FAULTS=full`, used by `scripts/reliability.sh`) or the quick CI subset.
pub fn full() -> bool {
    std::env::var("CHGATE_FAULTS").is_ok_and(|v| v == "full")
}

/// `quick` in CI, `full` for the report.
pub fn pick<T>(quick: T, full_size: T) -> T {
    if full() {
        full_size
    } else {
        quick
    }
}

/// HTTP client for the load and the probes.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// `SELECT ...` on node `i`, trimmed.
pub async fn query(rig: &Rig, i: usize, sql: &str) -> String {
    rig.clickhouse(i)
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .trim()
        .to_owned()
}

/// Runs DDL `ON CLUSTER` through node 0.
pub async fn ddl(rig: &Rig, sql: &str) {
    rig.clickhouse(0)
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A database with `events_local` (ReplicatedMergeTree on every shard) and `events`
/// (Distributed by `key`, so shard-aware mode places rows itself). `local_extra` is appended to
/// the local table's columns and `settings` to its definition.
pub async fn events_db(rig: &Rig, prefix: &str, extra_column: &str, settings: &str) -> String {
    let db = rig.unique_name(prefix);
    let cluster = rig.topology().cluster.name.clone();
    let _g = rig.shared().await;
    ddl(rig, &format!("CREATE DATABASE {db} ON CLUSTER {cluster}")).await;
    ddl(
        rig,
        &format!(
            "CREATE TABLE {db}.events_local ON CLUSTER {cluster} (key UInt64, v UInt64, payload String{extra_column}) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{db}/events_local', '{{replica}}') \
             ORDER BY key {settings}"
        ),
    )
    .await;
    ddl(
        rig,
        &format!(
            "CREATE TABLE {db}.events ON CLUSTER {cluster} AS {db}.events_local \
             ENGINE = Distributed({cluster}, {db}, events_local, key)"
        ),
    )
    .await;
    db
}

/// A gateway child process (`chgate serve`), restartable on the same port and spool.
pub struct GatewayProc {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    cfg: PathBuf,
    log: PathBuf,
    /// Its spool directory.
    pub spool: PathBuf,
}

impl GatewayProc {
    /// Writes a config for `db` (shard-aware, `ack = "spooled"` unless `extra` overrides) into
    /// `dir` and starts the gateway.
    pub async fn start(dir: &Path, db: &str, ack: &str, extra: &str) -> GatewayProc {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let spool = dir.join("spool");
        let cfg = dir.join("gateway.toml");
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"{db}\"\nwrite_mode = \"shard-aware\"\n\
             ack = \"{ack}\"\ninsert_timeout = \"5s\"\nshutdown_deadline = \"5s\"\n{extra}\n\
             [batch]\nmax_age = \"50ms\"\n[spool]\ndir = \"{}\"\nmin_free_bytes = 0\n\
             [breaker]\nfailures = 3\nopen_for = \"1s\"\n",
            spool.display()
        );
        std::fs::write(&cfg, text).expect("write gateway config");
        let mut g = GatewayProc {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            cfg,
            log: dir.join("gateway.log"),
            spool,
        };
        g.spawn().await;
        g
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Command::new(chgate_harness::chgate_bin())
            .arg("--config")
            .arg(chgate_harness::topology_path())
            .args(["--log", "info", "serve", "--gateway-config"])
            .arg(&self.cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn chgate serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = http().get(format!("{}/healthz", self.url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway did not start; log:\n{}", self.log_tail());
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, no flush.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().expect("wait")
    }

    /// Starts it again (same port, same spool).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// One sample of a metric from `/metrics` (sum over label sets).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = http()
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the spool holds nothing undelivered.
    pub async fn wait_drained(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.metric("chgate_spool_bytes").await == 0.0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "spool not drained within {timeout:?}; log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the load saw.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Rows in requests that were sent (first sends).
    pub sent: u64,
    /// Keys acked with a 2xx.
    pub acked: Vec<u64>,
    /// Responses by status (every attempt).
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no response (connection refused/reset: outcome unknown, not resent).
    pub no_response: u64,
    /// Slowest acked request, first send to 2xx (resends after 429/503 included).
    pub max_latency: Duration,
}

impl Stats {
    /// Statuses other than 2xx, 429 and 503.
    pub fn unexpected(&self) -> Vec<(u16, u64)> {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s) && **s != 429 && **s != 503)
            .map(|(s, n)| (*s, *n))
            .collect()
    }

    /// Count of a status.
    pub fn status(&self, s: u16) -> u64 {
        self.statuses.get(&s).copied().unwrap_or(0)
    }
}

/// A closed-loop load of NDJSON requests with unique keys. A request answered 429/503 is resent
/// unchanged after its Retry-After (it was not accepted); one without a response is not resent
/// (its outcome is unknown), so "lost" and "duplicated" stay exactly measurable.
pub struct Load {
    stop: tokio_util::sync::CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stats: Arc<Mutex<Stats>>,
    started: Instant,
}

/// Load shape.
#[derive(Clone, Copy)]
pub struct Shape {
    /// Concurrent clients.
    pub clients: usize,
    /// Rows per request.
    pub rows: u64,
    /// Pause between a client's requests.
    pub pause: Duration,
    /// Every key divisible by this gets `v = 13` (case 7's poison); 0 = none.
    pub poison_every: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            clients: 4,
            rows: 200,
            pause: Duration::from_millis(20),
            poison_every: 0,
        }
    }
}

fn body(keys: std::ops::Range<u64>, poison_every: u64) -> String {
    keys.map(|k| {
        let v = if poison_every > 0 && k % poison_every == 0 {
            13
        } else {
            1000 + k % 1000
        };
        format!("{{\"key\":{k},\"v\":{v},\"payload\":\"p{k}\"}}\n")
    })
    .collect()
}

impl Load {
    /// Starts `shape.clients` clients against `url` (read each request, so restarts are seen).
    pub fn start(url: &str, db: &str, shape: Shape) -> Load {
        let next = Arc::new(AtomicU64::new(1));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let stop = tokio_util::sync::CancellationToken::new();
        let endpoint = format!("{url}/ingest/{db}/events");
        let tasks = (0..shape.clients)
            .map(|_| {
                let (next, stats, stop, endpoint) =
                    (next.clone(), stats.clone(), stop.clone(), endpoint.clone());
                tokio::spawn(async move {
                    let client = http();
                    while !stop.is_cancelled() {
                        let first = next.fetch_add(shape.rows, Ordering::Relaxed);
                        let keys = first..first + shape.rows;
                        send(&client, &endpoint, keys, shape.poison_every, &stats, &stop).await;
                        tokio::time::sleep(shape.pause).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            tasks,
            stats,
            started: Instant::now(),
        }
    }

    /// Keys acked so far.
    pub fn acked(&self) -> usize {
        self.stats.lock().expect("stats").acked.len()
    }

    /// A copy of the stats so far.
    pub fn snapshot(&self) -> Stats {
        self.stats.lock().expect("stats").clone()
    }

    /// Since start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the clients (each finishes its current request) and returns the stats.
    pub async fn stop(self) -> Stats {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        let s = self.stats.lock().expect("stats").clone();
        s
    }
}

async fn send(
    client: &reqwest::Client,
    endpoint: &str,
    keys: std::ops::Range<u64>,
    poison_every: u64,
    stats: &Mutex<Stats>,
    stop: &tokio_util::sync::CancellationToken,
) {
    let text = body(keys.clone(), poison_every);
    let started = Instant::now();
    stats.lock().expect("stats").sent += keys.end - keys.start;
    for _ in 0..200 {
        let resp = client
            .post(endpoint)
            .header("content-type", "application/x-ndjson")
            .body(text.clone())
            .send()
            .await;
        let Ok(resp) = resp else {
            stats.lock().expect("stats").no_response += 1;
            return;
        };
        let status = resp.status().as_u16();
        *stats
            .lock()
            .expect("stats")
            .statuses
            .entry(status)
            .or_default() += 1;
        if resp.status().is_success() {
            let mut s = stats.lock().expect("stats");
            s.acked.extend(keys);
            s.max_latency = s.max_latency.max(started.elapsed());
            return;
        }
        if status != 429 && status != 503 {
            return;
        }
        let wait = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .expect("429/503 carry Retry-After");
        if stop.is_cancelled() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200).min(Duration::from_secs(wait))).await;
    }
}

/// Stored vs acked, exactly.
#[derive(Debug)]
pub struct Reconciled {
    /// `count()` over the cluster.
    pub stored: u64,
    /// `uniqExact(key)`.
    pub distinct: u64,
    /// Acked keys not stored.
    pub lost: u64,
    /// `count() - uniqExact(key)`.
    pub duplicated: u64,
}

/// Waits for every replica to catch up (`SYSTEM SYNC REPLICA`), checks the replicas of each
/// shard agree, then counts rows and distinct keys and looks up every acked key.
pub async fn reconcile(rig: &Rig, db: &str, acked: &[u64]) -> Reconciled {
    // Replicas agree once nothing is being inserted any more (an insert whose client gave up can
    // still be running): sync and compare until they do.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (per_shard, keys) = counts(rig, db).await;
        let agree = per_shard
            .values()
            .all(|c| c.windows(2).all(|w| w[0] == w[1]));
        if agree {
            let stored: u64 = per_shard.values().map(|c| c[0].0).sum();
            let distinct: u64 = per_shard.values().map(|c| c[0].1).sum();
            let lost = acked.iter().filter(|k| !keys.contains(k)).count() as u64;
            return Reconciled {
                stored,
                distinct,
                lost,
                duplicated: stored - distinct,
            };
        }
        assert!(
            Instant::now() < deadline,
            "replicas of a shard disagree: {per_shard:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

type ShardCounts = BTreeMap<u32, Vec<(u64, u64)>>;

async fn counts(rig: &Rig, db: &str) -> (ShardCounts, HashSet<u64>) {
    let nodes = rig.nodes();
    let mut per_shard: ShardCounts = BTreeMap::new();
    let mut keys: HashSet<u64> = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        rig.clickhouse(i)
            .execute(&format!("SYSTEM SYNC REPLICA {db}.events_local"))
            .await
            .unwrap_or_else(|e| panic!("sync {}: {e}", n.name));
        let row = query(
            rig,
            i,
            &format!("SELECT count(), uniqExact(key) FROM {db}.events_local"),
        )
        .await;
        let mut it = row.split('\t').map(|x| x.parse::<u64>().expect("number"));
        let (c, u) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        per_shard.entry(n.shard).or_default().push((c, u));
        if n.replica == 1 {
            let list = query(rig, i, &format!("SELECT key FROM {db}.events_local")).await;
            keys.extend(list.lines().filter_map(|l| l.parse::<u64>().ok()));
        }
    }
    (per_shard, keys)
}

/// Waits until ClickHouse node `name` answers.
pub async fn wait_clickhouse(rig: &Rig, name: &str) {
    let i = rig
        .nodes()
        .iter()
        .position(|n| n.name == name)
        .expect("node");
    let deadline = Instant::now() + Duration::from_secs(60);
    while rig.clickhouse(i).query("SELECT 1").await.is_err() {
        assert!(Instant::now() < deadline, "{name} did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One report row (`CHGATE_FAULTS_REPORT=dir` collects them for bench/RELIABILITY.md).
pub fn report(case: u32, name: &str, s: &Stats, r: &Reconciled, notes: &str) {
    let line = format!(
        "| {case} | {name} | {} | {} | {} | {} | {} | {} | {} ms | {notes} |",
        s.sent,
        s.acked.len(),
        r.stored,
        r.distinct,
        r.lost,
        r.duplicated,
        s.max_latency.as_millis()
    );
    eprintln!("{line}");
    if let Some(dir) = std::env::var_os("CHGATE_FAULTS_REPORT") {
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(dir.join(format!("case-{case}.md")), line + "\n").expect("report line");
    }
}

/// Statuses as `204: 10, 429: 3`.
pub fn statuses(s: &Stats) -> String {
    let mut parts: Vec<String> = s.statuses.iter().map(|(k, v)| format!("{k}×{v}")).collect();
    if s.no_response > 0 {
        parts.push(format!("no response×{}", s.no_response));
    }
    parts.join(", ")
}
