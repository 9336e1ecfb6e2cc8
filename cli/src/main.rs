//! # chgate
//!
//! The one user-facing binary of chgate: `chgate local` runs the rig on this machine; further
//! subcommands (migrate, grafana, serve, loadgen, deploy) arrive as those parts land.
//! `main` parses arguments and maps errors to exit codes; each subcommand lives in its own module.

mod backup;
mod deploy;
mod dlq;
mod grafana;
mod loadgen;
mod local;
mod migrate;
mod serve;
mod smoke;
mod status;
mod tenant;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The gateway's decoders allocate one string per label name and value; mimalloc makes that
/// about twice as fast as glibc malloc (see bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// chgate — get metrics into ClickHouse: an ingest gateway, a schema manager and the tooling to
/// run them.
///
/// Every command reads one topology file (default ./chgate.toml; see the documented example in
/// the repository) describing the cluster, Keeper, gateways, Grafana, PostgreSQL and HAProxy.
#[derive(Debug, Parser)]
#[command(name = "chgate", version, propagate_version = true)]
struct Cli {
    /// Topology file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "CHGATE_CONFIG",
        default_value = "chgate.toml"
    )]
    config: PathBuf,

    /// Log filter (tracing `EnvFilter` syntax), e.g. `debug` or `chgate=debug`.
    #[arg(long, global = true, env = "CHGATE_LOG", default_value = "warn")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack on this machine (127.0.0.1) from Debian packages.
    #[command(subcommand)]
    Local(local::LocalCommand),
    /// Schema manager: versioned ClickHouse migrations ON CLUSTER (Keeper lock, replicated
    /// ledger, per-host checks) and the PostgreSQL side.
    Migrate(migrate::MigrateArgs),
    /// Grafana: provision the ClickHouse datasource in Grafana's PostgreSQL, render its files.
    #[command(subcommand)]
    Grafana(grafana::GrafanaCommand),
    /// Run an ingest gateway: Prometheus remote_write, Influx, OTLP/HTTP, NDJSON and
    /// ClickHouse-compatible INSERTs in; batched Native/RowBinary inserts into ClickHouse out.
    Serve(serve::ServeArgs),
    /// Load generator: TSBS-like metrics into the gateway or ClickHouse, open or closed loop,
    /// HDR latency, end-to-end row verification; `compare` prints gateway/direct ratios.
    #[command(subcommand)]
    Loadgen(loadgen::LoadgenCommand),
    /// The gateway's dead-letter queue: rows ClickHouse rejected after a spooled ack —
    /// `list`, `show ID`, `replay ID...|--all` (after fixing the table).
    Dlq(dlq::DlqArgs),
    /// Health of the whole deployment: ClickHouse hosts (readonly replicas, replication queue
    /// and delay, parts per partition, Distributed backlog), Keeper quorum, PostgreSQL, HAProxy
    /// backends, gateways (readiness, spool, DLQ, breakers). Exit 0 healthy, 2 degraded.
    Status(status::StatusArgs),
    /// Backups of ClickHouse and PostgreSQL (`create`, `list`, `restore`, verified by row
    /// counts) and the rebuild of a replica that lost its disk (`rebuild-replica`).
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Gateway tenants in PostgreSQL: create (prints a token once), list, revoke, token.
    Tenant(tenant::TenantArgs),
    /// Deploy everything as pods: Kubernetes YAML rendered from the topology (also valid for
    /// kubectl), run with `podman kube play`; up / down / status.
    #[command(subcommand)]
    Deploy(deploy::DeployCommand),
    /// Check a topology file and print the resolved layout (every node and port).
    Topology {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let loaded = chgate_topology::load(&cli.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Local(cmd) => runtime.block_on(local::run(cmd, &loaded, &cli.config)),
        Command::Migrate(args) => runtime
            .block_on(migrate::run(args, &loaded))
            .map(|()| ExitCode::SUCCESS),
        Command::Grafana(cmd) => runtime
            .block_on(grafana::run(cmd, &loaded))
            .map(|()| ExitCode::SUCCESS),
        Command::Loadgen(cmd) => runtime
            .block_on(loadgen::run(cmd, &loaded))
            .map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => runtime
            .block_on(serve::run(args, &loaded))
            .map(|()| ExitCode::SUCCESS),
        Command::Dlq(args) => runtime
            .block_on(dlq::run(args, &loaded))
            .map(|()| ExitCode::SUCCESS),
        Command::Status(args) => runtime.block_on(status::run(args, &loaded)),
        Command::Backup(cmd) => runtime.block_on(backup::run(cmd, &loaded)),
        Command::Tenant(args) => runtime
            .block_on(tenant::run(args, &loaded))
            .map(|()| ExitCode::SUCCESS),
        Command::Deploy(cmd) => runtime.block_on(deploy::run(cmd, &loaded, &cli.config)),
        Command::Topology { json } => {
            print_topology(&loaded, json)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_topology(loaded: &chgate_topology::LoadedTopology, json: bool) -> anyhow::Result<()> {
    let t = &loaded.topology;
    if json {
        let v = serde_json::json!({
            "state_dir": loaded.state_dir,
            "clickhouse": t.clickhouse_nodes(),
            "keeper": t.keeper_nodes(),
            "gateways": t.gateways(),
            "grafana": t.grafanas(),
            "postgres_port": t.postgres_port(),
            "haproxy": { "gateway": t.haproxy_gateway_port(), "grafana": t.haproxy_grafana_port(), "stats": t.haproxy_stats_port() },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "topology ok: cluster `{}` {}x{}, state in {}",
        t.cluster.name,
        t.cluster.shards,
        t.cluster.replicas,
        loaded.state_dir.display()
    );
    for n in t.clickhouse_nodes() {
        println!(
            "  clickhouse {:<8} shard {} replica {}  http {} tcp {} interserver {}",
            n.name, n.shard, n.replica, n.http_port, n.tcp_port, n.interserver_port
        );
    }
    for k in t.keeper_nodes() {
        println!(
            "  keeper     {:<8} client {} peer {} election {}",
            k.name, k.client_port, k.peer_port, k.election_port
        );
    }
    for g in t.gateways().iter().chain(t.grafanas().iter()) {
        println!("  {:<19} port {}", g.name, g.port);
    }
    println!("  postgres            port {}", t.postgres_port());
    println!(
        "  haproxy             gateway {} grafana {} stats {}",
        t.haproxy_gateway_port(),
        t.haproxy_grafana_port(),
        t.haproxy_stats_port()
    );
    Ok(())
}
