//! One load job end to end: check the target, build generator/encoder/sender, run, verify in
//! ClickHouse, read gateway memory; and `compare`, which runs the direct baseline and the gateway
//! (in-process, each write mode) back to back on the same data.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chgate_clickhouse_http::{Client, ClientConfig};
use chgate_gateway::config::GatewayConfig;
use chgate_gateway::writer::WriteMode;
use chgate_topology::{Secret, Topology};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::body::{DirectMode, DirectTables, Encoder, Protocol};
use crate::data::{DataConfig, Generator};
use crate::rss::{self, ProcessMemory};
use crate::run::{run, RunSettings};
use crate::stats::Snapshot;
use crate::target::Sender;
use crate::verify::{verify, Node, Verification};
use crate::LoadgenError;

/// The cluster a job runs against.
#[derive(Debug, Clone)]
pub struct Env {
    /// The topology (ClickHouse nodes, shards).
    pub topology: Topology,
    /// ClickHouse password.
    pub password: Secret,
    /// Database holding `samples`/`series`.
    pub database: String,
    /// The rig's state directory (pid files of gateways).
    pub state_dir: PathBuf,
}

/// Where the rows go.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A gateway URL with a protocol.
    Gateway {
        /// Base URL, e.g. `http://127.0.0.1:18428`.
        url: String,
        /// Protocol.
        protocol: Protocol,
    },
    /// Straight into ClickHouse.
    Direct(DirectMode),
}

/// One run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Name shown in tables and charts.
    pub label: String,
    /// The data (its `prefix` should be run-unique for verification).
    pub data: DataConfig,
    /// Target.
    pub target: Target,
    /// Load settings.
    pub run: RunSettings,
    /// Count rows in ClickHouse afterwards.
    pub verify: bool,
    /// Allow targets outside 127.0.0.0/8.
    pub allow_remote: bool,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

/// Everything a job measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The job's label.
    pub label: String,
    /// Target.
    pub target: Target,
    /// Data settings.
    pub data: DataConfig,
    /// Load settings.
    pub settings: RunSettings,
    /// Throughput, latency, errors, timeline.
    pub stats: Snapshot,
    /// ClickHouse row counts, when verified.
    pub verification: Option<Verification>,
    /// Gateway memory after the run (rig gateways by pid file, or this process when the gateway
    /// ran in-process).
    pub memory: Vec<ProcessMemory>,
}

impl Report {
    /// Verified without problems (or not verified) and no failed requests.
    pub fn passed(&self) -> bool {
        self.stats.failed == 0 && self.verification.iter().all(Verification::ok)
    }
}

/// The host of a URL is loopback (127.0.0.0/8, ::1, `localhost`) — pure.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The topology's ClickHouse nodes with clients.
///
/// # Errors
/// [`LoadgenError::ClickHouse`] when a client cannot be built.
pub fn nodes(env: &Env) -> Result<Vec<Node>, LoadgenError> {
    let t = &env.topology;
    t.clickhouse_nodes()
        .into_iter()
        .map(|n| {
            let url = format!("http://{}:{}", t.network.listen, n.http_port);
            let mut cfg = ClientConfig::new(url, t.clickhouse.user.clone(), env.password.clone());
            cfg.timeout = Duration::from_secs(120);
            let client = Client::new(cfg).map_err(|source| LoadgenError::ClickHouse {
                node: n.name.clone(),
                source,
            })?;
            Ok(Node {
                name: n.name,
                shard: n.shard,
                replica: n.replica,
                client,
            })
        })
        .collect()
}

async fn direct_parts(
    env: &Env,
    nodes: &[Node],
    mode: DirectMode,
) -> Result<(Encoder, Sender), LoadgenError> {
    let first = nodes
        .first()
        .ok_or_else(|| LoadgenError::Config("the topology has no ClickHouse node".into()))?;
    let load = |table: &'static str| async move {
        chgate_gateway::catalog::load(&first.client, &env.database, table)
            .await
            .map_err(|source| LoadgenError::Schema {
                table: format!("{}.{table}", env.database),
                source,
            })
    };
    let shards = env.topology.cluster.shards as usize;
    let tables = DirectTables {
        samples: load("samples").await?,
        series: load("series").await?,
        shards,
    };
    let mut by_shard: Vec<Vec<Client>> = vec![Vec::new(); shards];
    for n in nodes {
        if let Some(s) = by_shard.get_mut(n.shard.saturating_sub(1) as usize) {
            s.push(n.client.clone());
        }
    }
    let encoder = Encoder::direct(mode, tables);
    Ok((encoder, Sender::direct(by_shard)))
}

/// Runs one job.
///
/// # Errors
/// [`LoadgenError`] for invalid settings, a refused target, or a setup/verification query that
/// failed. Failed load requests are counted in the report, not returned as errors.
pub async fn execute(env: &Env, job: &Job) -> Result<Report, LoadgenError> {
    job.run.validate()?;
    let gen = Generator::new(job.data.clone()).map_err(LoadgenError::Config)?;
    let nodes = nodes(env)?;
    let (encoder, sender) = match &job.target {
        Target::Gateway { url, protocol } => {
            if !job.allow_remote && !is_loopback_url(url) {
                return Err(LoadgenError::NotLoopback {
                    target: url.clone(),
                });
            }
            let encoder = Encoder::Gateway {
                protocol: *protocol,
                database: env.database.clone(),
            };
            (encoder, Sender::gateway(url, job.request_timeout)?)
        }
        Target::Direct(mode) => direct_parts(env, &nodes, *mode).await?,
    };
    let stats = run(gen, encoder, Arc::new(sender), &job.run).await?;
    let verification = if job.verify {
        Some(verify(&nodes, &env.database, &job.data.prefix, stats.rows).await?)
    } else {
        None
    };
    let memory = match job.target {
        Target::Gateway { .. } => rss::gateways(&env.state_dir),
        Target::Direct(_) => Vec::new(),
    };
    Ok(Report {
        label: job.label.clone(),
        target: job.target.clone(),
        data: job.data.clone(),
        settings: job.run.clone(),
        stats,
        verification,
        memory,
    })
}

/// A gateway running inside this process on an ephemeral loopback port.
#[derive(Debug)]
pub struct InProcessGateway {
    /// Its base URL.
    pub url: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), chgate_gateway::run::RunError>>,
}

impl InProcessGateway {
    /// Starts a gateway for `env` in `mode` (other settings: the gateway's defaults).
    ///
    /// # Errors
    /// [`LoadgenError::Io`] when no port can be bound.
    pub async fn start(env: &Env, mode: WriteMode) -> Result<Self, LoadgenError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| LoadgenError::Io {
                what: "binding the in-process gateway".into(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| LoadgenError::Io {
            what: "in-process gateway address".into(),
            source,
        })?;
        let cfg = GatewayConfig {
            listen: local,
            database: Some(env.database.clone()),
            write_mode: mode,
            ..GatewayConfig::default()
        };
        let (tx, rx) = oneshot::channel::<()>();
        let (t, pw) = (env.topology.clone(), env.password.clone());
        let handle = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            chgate_gateway::run::serve_on(listener, cfg, &t, &pw, stop).await
        });
        Ok(InProcessGateway {
            url: format!("http://{local}"),
            shutdown: Some(tx),
            handle,
        })
    }

    /// Stops intake, flushes, and returns the gateway's result.
    ///
    /// # Errors
    /// [`LoadgenError::Gateway`] when the gateway failed.
    pub async fn stop(mut self) -> Result<(), LoadgenError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match (&mut self.handle).await {
            Ok(r) => r.map_err(LoadgenError::from),
            Err(e) => Err(LoadgenError::Config(format!(
                "in-process gateway task: {e}"
            ))),
        }
    }
}

/// Runs `job` against an in-process gateway in `mode` (the job's target URL is replaced).
///
/// # Errors
/// As [`execute`], plus [`LoadgenError::Gateway`].
pub async fn execute_in_process(
    env: &Env,
    job: &Job,
    mode: WriteMode,
    protocol: Protocol,
) -> Result<Report, LoadgenError> {
    let gw = InProcessGateway::start(env, mode).await?;
    let mut job = job.clone();
    job.target = Target::Gateway {
        url: gw.url.clone(),
        protocol,
    };
    let result = execute(env, &job).await;
    let stopped = gw.stop().await;
    let mut report = result?;
    stopped?;
    report.memory = rss::of_pid("self (loadgen + gateway)", std::process::id())
        .into_iter()
        .collect();
    Ok(report)
}

/// The four legs of `compare`, in order: direct Distributed, gateway distributed, direct
/// shard-local, gateway shard-aware. Each leg gets its own metric prefix (`<prefix><leg>_`)
/// but the same seed, hence the same values, series and timestamps. Direct legs insert
/// `direct_batch_rows` rows per `INSERT` (the gateway batches up to 100k rows per insert by
/// default; ClickHouse wants few large inserts, so small direct inserts would understate it).
///
/// # Errors
/// As [`execute_in_process`].
pub async fn compare(
    env: &Env,
    base: &Job,
    protocol: Protocol,
    direct_batch_rows: usize,
) -> Result<Vec<Report>, LoadgenError> {
    let legs: [(&str, Option<WriteMode>, DirectMode); 4] = [
        ("direct distributed", None, DirectMode::Distributed),
        (
            "gateway distributed",
            Some(WriteMode::Distributed),
            DirectMode::Distributed,
        ),
        ("direct shard-local", None, DirectMode::ShardLocal),
        (
            "gateway shard-aware",
            Some(WriteMode::ShardAware),
            DirectMode::ShardLocal,
        ),
    ];
    let mut out = Vec::new();
    for (i, (name, gateway, direct)) in legs.into_iter().enumerate() {
        let mut job = base.clone();
        job.label = name.to_owned();
        job.data.prefix = format!("{}{i}_", base.data.prefix);
        job.target = Target::Direct(direct);
        if gateway.is_none() {
            job.run.batch_rows = direct_batch_rows;
        }
        let report = match gateway {
            None => execute(env, &job).await?,
            Some(mode) => execute_in_process(env, &job, mode, protocol).await?,
        };
        out.push(report);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        for ok in [
            "http://127.0.0.1:18428",
            "http://127.1.2.3/x",
            "http://localhost:1",
            "http://[::1]:8428/write",
            "127.0.0.1:9",
            "http://u:p@127.0.0.1:1",
        ] {
            assert!(is_loopback_url(ok), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8428",
            "http://example.com",
            "http://[2001:db8::1]:1",
            "http://127.0.0.1.evil.com/",
            "http://u:p@8.8.8.8",
        ] {
            assert!(!is_loopback_url(bad), "{bad}");
        }
    }
}
