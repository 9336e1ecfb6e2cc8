//! `chgate loadgen`: load the gateway (or ClickHouse directly) with TSBS-like metrics, print a
//! summary with throughput, HDR latency, errors and the end-to-end row check; `compare` runs
//! the direct baseline and the gateway back to back and prints the ratio.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use chgate_loadgen::body::{DirectMode, Protocol};
use chgate_loadgen::data::{DataConfig, Generator};
use chgate_loadgen::job::{self, Env, Job, Report, Target};
use chgate_loadgen::report;
use chgate_loadgen::run::{LoadMode, RunSettings};
use chgate_topology::LoadedTopology;
use clap::{Args, Subcommand, ValueEnum};

/// `chgate loadgen` subcommands.
#[derive(Debug, Subcommand)]
pub enum LoadgenCommand {
    /// One load run against a gateway (default: the topology's HAProxy front) or ClickHouse.
    Run(RunArgs),
    /// Direct baseline vs gateway (in-process, distributed and shard-aware) on the same data.
    Compare(CompareArgs),
    /// Write line protocol to stdout (a discarding sink measures the generator alone).
    Generate(GenerateArgs),
}

/// `chgate loadgen run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to send: a gateway protocol, or rows straight to ClickHouse (`direct`: the
    /// Distributed tables; `direct-local`: each shard's local tables).
    #[arg(long, value_enum, default_value = "influx")]
    target: TargetArg,
    /// Gateway base URL. Default: the topology's HAProxy gateway front.
    #[arg(long)]
    url: Option<String>,
    #[command(flatten)]
    load: LoadArgs,
}

/// `chgate loadgen compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Protocol of the gateway legs.
    #[arg(long, value_enum, default_value = "influx")]
    protocol: ProtocolArg,
    /// Rows per INSERT of the direct legs (the gateway's own batches hold up to 100k rows).
    #[arg(long, default_value_t = 100_000)]
    direct_batch_rows: usize,
    #[command(flatten)]
    load: LoadArgs,
}

/// `chgate loadgen generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Samples to render.
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TargetArg {
    Influx,
    RemoteWrite,
    Ndjson,
    Otlp,
    Arrow,
    Direct,
    DirectLocal,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtocolArg {
    Influx,
    RemoteWrite,
    Ndjson,
    Otlp,
    Arrow,
}

impl From<ProtocolArg> for Protocol {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::Influx => Protocol::Influx,
            ProtocolArg::RemoteWrite => Protocol::RemoteWrite,
            ProtocolArg::Ndjson => Protocol::Ndjson,
            ProtocolArg::Otlp => Protocol::Otlp,
            ProtocolArg::Arrow => Protocol::Arrow,
        }
    }
}

/// The shape of the data.
#[derive(Debug, Args)]
struct DataArgs {
    /// Hosts (TSBS scale); series = hosts x measurements x 10.
    #[arg(long, default_value_t = 100)]
    hosts: u32,
    /// Measurements per host (1-9: cpu, mem, disk, diskio, net, kernel, nginx, postgresl, redis).
    #[arg(long, default_value_t = 9)]
    measurements: usize,
    /// RNG seed (same seed, same data).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated time between two points of a series.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    interval: Duration,
    /// Spread timestamps within a tick by up to this much.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    jitter: Duration,
    /// Fraction of hosts replaced by new ones each tick (series churn), 0-1.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Fraction of points sent late (out of order), 0-1.
    #[arg(long, default_value_t = 0.0)]
    out_of_order: f64,
    /// How late a late point is, at most.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    late: Duration,
    /// First timestamp, Unix seconds. Default: now.
    #[arg(long)]
    start: Option<i64>,
    /// Metric name prefix; must be unique per run for verification. Default `lg<unix time hex>_`.
    #[arg(long)]
    prefix: Option<String>,
}

/// Load shape, output and checks (shared by `run` and `compare`).
#[derive(Debug, Args)]
struct LoadArgs {
    /// Closed loop: requests in flight. Open loop (--rate): cap on outstanding requests.
    /// Default 4 (closed), 256 (open).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Open loop at this many rows/s; latency counts from each request's intended send time.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this long. Default 30s when --rows is not given.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many rows (samples), rounded up to whole points of 10.
    #[arg(long)]
    rows: Option<u64>,
    /// Rows per request.
    #[arg(long, default_value_t = 5_000)]
    batch_rows: usize,
    /// Extra attempts for retryable failures (429, 503, Keeper errors).
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Per-request timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    timeout: Duration,
    /// Database of the samples/series tables. Default: the topology's cluster.database.
    #[arg(long)]
    database: Option<String>,
    /// Write the full report (settings, stats, timeline, verification) as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write an HTML report with throughput and latency charts here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Skip counting rows in ClickHouse afterwards.
    #[arg(long)]
    no_verify: bool,
    /// Allow a gateway URL outside 127.0.0.0/8.
    #[arg(long)]
    allow_remote: bool,
    /// No live progress line.
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    data: DataArgs,
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn data_config(a: &DataArgs) -> DataConfig {
    let start = a.start.unwrap_or_else(now_s);
    DataConfig {
        seed: a.seed,
        hosts: a.hosts,
        measurements: a.measurements,
        prefix: a
            .prefix
            .clone()
            .unwrap_or_else(|| format!("lg{:x}_", now_s())),
        start_ms: start.saturating_mul(1000),
        interval_ms: a.interval.as_millis() as i64,
        jitter_ms: a.jitter.as_millis() as i64,
        churn: a.churn,
        out_of_order: a.out_of_order,
        late_ms: a.late.as_millis() as i64,
    }
}

/// Builds the run settings (pure).
fn run_settings(a: &LoadArgs) -> RunSettings {
    let mode = match a.rate {
        Some(rate) => LoadMode::Open {
            rate,
            max_in_flight: a.concurrency.unwrap_or(256),
        },
        None => LoadMode::Closed {
            concurrency: a.concurrency.unwrap_or(4),
        },
    };
    let duration = match (a.duration, a.rows) {
        (None, None) => Some(Duration::from_secs(30)),
        (d, _) => d,
    };
    RunSettings {
        mode,
        duration,
        rows: a.rows,
        batch_rows: a.batch_rows,
        retries: a.retries,
        progress: !a.no_progress,
    }
}

fn target(t: TargetArg, url: String) -> Target {
    let gw = |protocol| Target::Gateway { url, protocol };
    match t {
        TargetArg::Influx => gw(Protocol::Influx),
        TargetArg::RemoteWrite => gw(Protocol::RemoteWrite),
        TargetArg::Ndjson => gw(Protocol::Ndjson),
        TargetArg::Otlp => gw(Protocol::Otlp),
        TargetArg::Arrow => gw(Protocol::Arrow),
        TargetArg::Direct => Target::Direct(DirectMode::Distributed),
        TargetArg::DirectLocal => Target::Direct(DirectMode::ShardLocal),
    }
}

fn env(loaded: &LoadedTopology, database: Option<&str>) -> anyhow::Result<Env> {
    let t = &loaded.topology;
    Ok(Env {
        topology: t.clone(),
        password: t.clickhouse.password.resolve(&loaded.state_dir)?,
        database: database.map_or_else(|| t.cluster.database.clone(), str::to_owned),
        state_dir: loaded.state_dir.clone(),
    })
}

fn job(label: &str, target: Target, a: &LoadArgs) -> Job {
    Job {
        label: label.to_owned(),
        data: data_config(&a.data),
        target,
        run: run_settings(a),
        verify: !a.no_verify,
        allow_remote: a.allow_remote,
        request_timeout: a.timeout,
    }
}

fn write_outputs(a: &LoadArgs, title: &str, reports: &[Report]) -> anyhow::Result<()> {
    if let Some(p) = &a.report {
        let json = if let [one] = reports {
            serde_json::to_string_pretty(one)?
        } else {
            serde_json::to_string_pretty(reports)?
        };
        std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("JSON report: {}", p.display());
    }
    if let Some(p) = &a.html {
        std::fs::write(p, report::html(title, reports))
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("HTML report: {}", p.display());
    }
    Ok(())
}

fn check(reports: &[Report]) -> anyhow::Result<()> {
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.label.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{}: failed requests or rows not verified in ClickHouse (see above)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// Runs a `chgate loadgen` subcommand.
pub async fn run(cmd: LoadgenCommand, loaded: &LoadedTopology) -> anyhow::Result<()> {
    match cmd {
        LoadgenCommand::Run(a) => {
            let t = &loaded.topology;
            let url = a.url.clone().unwrap_or_else(|| {
                format!("http://{}:{}", t.network.listen, t.haproxy_gateway_port())
            });
            let env = env(loaded, a.load.database.as_deref())?;
            let job = job("run", target(a.target, url), &a.load);
            eprintln!(
                "chgate loadgen: {} series, prefix {}, {:?}",
                job.data.cardinality(),
                job.data.prefix,
                job.run.mode
            );
            let r = job::execute(&env, &job).await?;
            println!("{}", report::summary(&r));
            write_outputs(&a.load, "chgate loadgen run", std::slice::from_ref(&r))?;
            check(std::slice::from_ref(&r))
        }
        LoadgenCommand::Compare(a) => {
            let env = env(loaded, a.load.database.as_deref())?;
            // Compare needs one start time for every leg so they carry the same data.
            let mut base = job("compare", Target::Direct(DirectMode::Distributed), &a.load);
            base.data.start_ms = a.load.data.start.unwrap_or_else(now_s) * 1000;
            let reports = job::compare(&env, &base, a.protocol.into(), a.direct_batch_rows).await?;
            for r in &reports {
                println!("{}", report::summary(r));
            }
            println!("{}", report::compare_table(&reports));
            write_outputs(&a.load, "chgate loadgen compare", &reports)?;
            check(&reports)
        }
        LoadgenCommand::Generate(a) => generate(&a),
    }
}

fn generate(a: &GenerateArgs) -> anyhow::Result<()> {
    let mut gen = Generator::new(data_config(&a.data)).map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::with_capacity(1 << 20);
    let (mut done, mut bytes, started) = (0u64, 0u64, Instant::now());
    while done < a.rows {
        buf.clear();
        done += gen.render_lines((a.rows - done).min(20_000) as usize, &mut buf) as u64;
        bytes += buf.len() as u64;
        out.write_all(&buf)?;
    }
    out.flush()?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "generated {done} samples, {:.1} MB in {secs:.2} s: {:.0} samples/s, {:.0} MB/s",
        bytes as f64 / 1e6,
        done as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        cmd: LoadgenCommand,
    }

    fn parse(args: &[&str]) -> LoadgenCommand {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .expect("parses")
            .cmd
    }

    #[test]
    fn defaults_are_a_bounded_closed_loop() {
        let LoadgenCommand::Run(a) = parse(&["run"]) else {
            panic!("run")
        };
        let s = run_settings(&a.load);
        assert_eq!(s.mode, LoadMode::Closed { concurrency: 4 });
        assert_eq!(s.duration, Some(Duration::from_secs(30)));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn rate_means_open_loop_and_rows_alone_bound_the_run() {
        let LoadgenCommand::Run(a) = parse(&["run", "--rate", "1000", "--rows", "5000"]) else {
            panic!("run")
        };
        let s = run_settings(&a.load);
        assert!(matches!(s.mode, LoadMode::Open { rate, max_in_flight: 256 } if rate == 1000.0));
        assert_eq!((s.duration, s.rows), (None, Some(5000)));
        let d = data_config(&a.load.data);
        assert!(d.prefix.starts_with("lg") && d.validate().is_ok());
    }

    #[test]
    fn compare_and_generate_parse() {
        assert!(matches!(
            parse(&["compare", "--protocol", "remote-write", "--duration", "5s"]),
            LoadgenCommand::Compare(_)
        ));
        assert!(matches!(
            parse(&["generate", "--rows", "10", "--hosts", "3"]),
            LoadgenCommand::Generate(_)
        ));
    }
}
