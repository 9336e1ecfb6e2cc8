//! `chgate dlq list | show | replay`: the gateway's dead-letter queue — rows ClickHouse rejected
//! as bad data after a spooled ack (see `gateway/src/dlq.rs`). Replay resends an entry's exact
//! bytes to its table through the Distributed table (`insert_distributed_sync=1`) and deletes
//! the entry only after ClickHouse accepted it; a replay repeated after a failure sends the same
//! block, which replicated deduplication drops if it had landed.

use std::path::PathBuf;

use anyhow::Context as _;
use chgate_clickhouse_http::{Client, ClientConfig};
use chgate_gateway::config::GatewayConfig;
use chgate_gateway::dlq::{decode_rows, DeadLetter, Dlq};
use chgate_gateway::retry::{classify, Class};
use chgate_topology::LoadedTopology;
use clap::{Args, Subcommand};

/// `chgate dlq` arguments.
#[derive(Debug, Args)]
pub struct DlqArgs {
    /// The dead-letter directory (default: `<spool dir>/dlq` of --gateway-config).
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// Gateway config whose `[spool] dir` holds the dead-letter queue.
    #[arg(long, global = true, env = "CHGATE_GATEWAY_CONFIG")]
    gateway_config: Option<PathBuf>,
    #[command(subcommand)]
    command: DlqCommand,
}

/// What to do with the dead-letter queue.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// One line per entry: id, table, rows, age, ClickHouse's reason.
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// An entry's description and its rows as JSON objects.
    Show {
        /// Entry id (from `list`).
        id: String,
        /// Print at most this many rows.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Insert entries again (after fixing the table) and delete the ones ClickHouse accepted.
    Replay {
        /// Entry ids; all entries with --all.
        ids: Vec<String>,
        /// Replay every entry.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

fn open(args: &DlqArgs) -> anyhow::Result<Dlq> {
    let dir = match (&args.dir, &args.gateway_config) {
        (Some(d), _) => d.clone(),
        (None, Some(p)) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let cfg =
                GatewayConfig::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            cfg.spool
                .dir
                .with_context(|| {
                    format!("{}: no [spool] dir, so no dead-letter queue", p.display())
                })?
                .join("dlq")
        }
        (None, None) => {
            anyhow::bail!("say where the dead-letter queue is: --dir DIR or --gateway-config FILE")
        }
    };
    anyhow::ensure!(
        dir.is_dir(),
        "{} does not exist (no rows were dead-lettered there yet)",
        dir.display()
    );
    Ok(Dlq::open(dir)?)
}

/// Runs a `chgate dlq` command.
///
/// # Errors
/// An unreadable queue, an unknown id, or a replay ClickHouse refused (the entry is kept).
pub async fn run(args: DlqArgs, loaded: &LoadedTopology) -> anyhow::Result<()> {
    let dlq = open(&args)?;
    match args.command {
        DlqCommand::List { json } => list(&dlq, json),
        DlqCommand::Show { id, limit } => show(&dlq, &id, limit),
        DlqCommand::Replay { ids, all } => {
            let ids = if all {
                dlq.list()?.into_iter().map(|e| e.id).collect()
            } else {
                ids
            };
            anyhow::ensure!(!ids.is_empty(), "name entries to replay, or --all");
            replay(&dlq, &ids, loaded).await
        }
    }
}

fn list(dlq: &Dlq, json: bool) -> anyhow::Result<()> {
    let entries = dlq.list()?;
    if json {
        for e in &entries {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(());
    }
    println!("{:<28} {:<32} {:>6}  reason", "id", "table", "rows");
    let now = chgate_gateway::server::now_ms();
    for e in &entries {
        let reason: String = e
            .reason
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect();
        println!(
            "{:<28} {:<32} {:>6}  {reason} ({} s ago)",
            e.id,
            e.table,
            e.rows,
            (now - e.created_ms) / 1000
        );
    }
    let rows: u64 = entries.iter().map(|e| u64::from(e.rows)).sum();
    println!(
        "{} entries, {rows} rows in {}",
        entries.len(),
        dlq.dir().display()
    );
    Ok(())
}

fn show(dlq: &Dlq, id: &str, limit: usize) -> anyhow::Result<()> {
    let (e, bytes) = dlq.get(id)?;
    println!("{}", serde_json::to_string_pretty(&e)?);
    match decode_rows(&e.columns, &bytes) {
        Ok(rows) => {
            for r in rows.iter().take(limit) {
                println!("{}", serde_json::Value::Object(r.clone()));
            }
            if rows.len() > limit {
                println!("... {} more rows (--limit)", rows.len() - limit);
            }
        }
        Err(msg) => println!("rows cannot be decoded ({msg}); {} bytes", bytes.len()),
    }
    Ok(())
}

fn clients(loaded: &LoadedTopology) -> anyhow::Result<Vec<(String, Client)>> {
    let t = &loaded.topology;
    let password = t.clickhouse.password.resolve(&loaded.state_dir)?;
    t.clickhouse_nodes()
        .into_iter()
        .map(|n| {
            let cfg = ClientConfig::new(
                format!("http://{}:{}", t.network.listen, n.http_port),
                t.clickhouse.user.clone(),
                password.clone(),
            );
            Ok((n.name, Client::new(cfg)?))
        })
        .collect()
}

async fn replay(dlq: &Dlq, ids: &[String], loaded: &LoadedTopology) -> anyhow::Result<()> {
    let nodes = clients(loaded)?;
    let (mut done, mut failed) = (0usize, Vec::new());
    for id in ids {
        let (e, bytes) = dlq.get(id)?;
        match replay_one(&nodes, &e, bytes).await {
            Ok(node) => {
                dlq.remove(id)?;
                println!("{id}: {} rows into {} (via {node})", e.rows, e.table);
                done += 1;
            }
            Err(msg) => {
                println!("{id}: kept: {msg}");
                failed.push(id.clone());
            }
        }
    }
    println!("replayed {done} of {} entries", ids.len());
    anyhow::ensure!(failed.is_empty(), "not replayed: {}", failed.join(", "));
    Ok(())
}

/// Sends one entry, trying each node while the failure is transient.
async fn replay_one(
    nodes: &[(String, Client)],
    e: &DeadLetter,
    bytes: Vec<u8>,
) -> Result<String, String> {
    let mut last = String::from("no ClickHouse node in the topology");
    for (name, c) in nodes {
        match c
            .insert(
                &e.replay_sql,
                &[("insert_distributed_sync", "1")],
                bytes.clone().into(),
            )
            .await
        {
            Ok(()) => return Ok(name.clone()),
            Err(err) if classify(&err) == Class::Reject => {
                return Err(format!("ClickHouse still rejects the rows: {err}"))
            }
            Err(err) => last = format!("{name}: {err}"),
        }
    }
    Err(last)
}
