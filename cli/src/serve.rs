//! `chgate serve`: run one ingest gateway against the topology's cluster.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use chgate_gateway::config::GatewayConfig;
use chgate_gateway::encode::Format;
use chgate_gateway::writer::WriteMode;
use chgate_topology::LoadedTopology;
use clap::{Args, ValueEnum};

/// `chgate serve` arguments. Precedence: flags > `CHGATE_GATEWAY_*` env > `--gateway-config` file > defaults.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Gateway config file (see gateway/gateway.example.toml); defaults apply without one.
    #[arg(long, env = "CHGATE_GATEWAY_CONFIG")]
    gateway_config: Option<PathBuf>,
    /// Listen address (overrides the file).
    #[arg(long, env = "CHGATE_GATEWAY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Listen on the port of the topology's gateway N (1-based) instead of --listen.
    #[arg(long)]
    instance: Option<u32>,
    /// Where rows go: through the Distributed table, or straight to each shard's local table.
    #[arg(long, env = "CHGATE_GATEWAY_WRITE_MODE", value_enum)]
    write_mode: Option<ModeArg>,
    /// Insert wire format.
    #[arg(long, env = "CHGATE_GATEWAY_FORMAT", value_enum)]
    format: Option<FormatArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Distributed,
    ShardAware,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Native,
    Rowbinary,
}

/// Builds the effective config (pure apart from reading the file).
fn config(args: &ServeArgs, loaded: &LoadedTopology) -> anyhow::Result<GatewayConfig> {
    let mut cfg = match &args.gateway_config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            GatewayConfig::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => GatewayConfig::default(),
    };
    if let Some(n) = args.instance {
        let gw = loaded.topology.gateways();
        let inst = gw
            .get(n.saturating_sub(1) as usize)
            .with_context(|| format!("--instance {n}: the topology has {} gateways", gw.len()))?;
        cfg.listen = SocketAddr::new(loaded.topology.network.listen, inst.port);
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(m) = args.write_mode {
        cfg.write_mode = match m {
            ModeArg::Distributed => WriteMode::Distributed,
            ModeArg::ShardAware => WriteMode::ShardAware,
        };
    }
    if let Some(f) = args.format {
        cfg.format = match f {
            FormatArg::Native => Format::Native,
            FormatArg::Rowbinary => Format::RowBinary,
        };
    }
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("gateway config: {e}"))?;
    Ok(cfg)
}

/// Runs the gateway until SIGTERM or Ctrl-C, then flushes.
pub async fn run(args: ServeArgs, loaded: &LoadedTopology) -> anyhow::Result<()> {
    let cfg = config(&args, loaded)?;
    let password = loaded
        .topology
        .clickhouse
        .password
        .resolve(&loaded.state_dir)?;
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        eprintln!("chgate serve: shutting down: intake stopped, flushing");
    };
    eprintln!(
        "chgate serve: listening on http://{} ({:?}, {:?})",
        cfg.listen, cfg.write_mode, cfg.format
    );
    let auth = chgate_gateway::run::authenticator(&cfg, loaded)?;
    if auth.is_some() {
        eprintln!("chgate serve: tenant authentication on ([auth] enabled)");
    }
    chgate_gateway::run::serve_with(cfg, &loaded.topology, &password, auth, shutdown).await?;
    Ok(())
}
