//! `chgate status`: health of the whole deployment (ClickHouse, Keeper, PostgreSQL, HAProxy,
//! gateways) as a table or JSON; exit code 2 when anything is degraded, so it works as a probe.
//! Facts and judgement live in `chgate-ops` (`status::collect`, `health::assess`).

use std::process::ExitCode;

use chgate_ops::health::Thresholds;
use chgate_ops::status::{self, ClusterStatus};
use chgate_ops::Ops;
use chgate_topology::LoadedTopology;
use clap::Args;

/// `chgate status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (every fact plus `problems`) instead of tables.
    #[arg(long)]
    json: bool,
    /// Replication delay (seconds) above which a replica counts as lagging.
    #[arg(long, default_value_t = 60)]
    max_replication_delay: u64,
    /// Replication queue entries above which a replica counts as lagging.
    #[arg(long, default_value_t = 1000)]
    max_replication_queue: u64,
    /// Distributed files waiting to be sent above which a host counts as behind.
    #[arg(long, default_value_t = 100)]
    max_distributed_pending: u64,
    /// Judge HAProxy's Grafana backend too (off by default: the local rig runs no Grafana).
    #[arg(long)]
    grafana: bool,
}

/// Runs `chgate status`: 0 healthy, 2 degraded (errors exit 1).
pub async fn run(args: StatusArgs, loaded: &LoadedTopology) -> anyhow::Result<ExitCode> {
    let ops = Ops::new(loaded)?;
    let th = Thresholds {
        max_replication_delay_s: args.max_replication_delay,
        max_replication_queue: args.max_replication_queue,
        max_distributed_pending: args.max_distributed_pending,
    };
    let s = status::collect(&ops, &th, args.grafana).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_tables(&s);
    }
    Ok(if s.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

fn uptime(s: u64) -> String {
    format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
}

fn print_tables(s: &ClusterStatus) {
    println!(
        "{:<10} {:>5} {:>7} {:<3} {:<9} {:>11} {:>9} {:>10} {:>10} {:>17} {:>13}",
        "CLICKHOUSE",
        "SHARD",
        "REPLICA",
        "UP",
        "VERSION",
        "UPTIME",
        "READONLY",
        "MAX QUEUE",
        "MAX DELAY",
        "PARTS (DELAY/MAX)",
        "DIST PENDING"
    );
    for h in &s.clickhouse {
        let ro = h.replicas.iter().filter(|r| r.is_readonly).count();
        let queue = h.replicas.iter().map(|r| r.queue_size).max().unwrap_or(0);
        let delay = h
            .replicas
            .iter()
            .map(|r| r.absolute_delay)
            .max()
            .unwrap_or(0);
        let parts = h.busiest_partitions.first().map_or(0, |p| p.parts);
        println!(
            "{:<10} {:>5} {:>7} {:<3} {:<9} {:>11} {:>9} {:>10} {:>9}s {:>17} {:>13}",
            h.name,
            h.shard,
            h.replica,
            yes(h.up),
            h.version.as_deref().unwrap_or("-"),
            uptime(h.uptime_s),
            format!("{ro}/{}", h.replicas.len()),
            queue,
            delay,
            format!(
                "{parts} ({}/{})",
                h.parts_to_delay_insert, h.parts_to_throw_insert
            ),
            h.distributed_pending_files
        );
    }
    println!(
        "\n{:<10} {:<9} {:<8} {:>7} {:>15} {:>10}",
        "KEEPER", "MODE", "VERSION", "ZNODES", "LATENCY AVG/MAX", "FOLLOWERS"
    );
    for k in &s.keeper.nodes {
        println!(
            "{:<10} {:<9} {:<8} {:>7} {:>15} {:>10}",
            k.name,
            k.mode.as_deref().unwrap_or("DOWN"),
            k.version.as_deref().unwrap_or("-"),
            k.znode_count,
            format!("{:.1}/{:.0} ms", k.avg_latency_ms, k.max_latency_ms),
            if k.mode.as_deref() == Some("leader") {
                format!("{}/{}", k.synced_followers, k.followers)
            } else {
                "-".into()
            }
        );
    }
    let pg = &s.postgres;
    let dbs: Vec<String> = pg
        .databases
        .iter()
        .map(|(d, ok)| format!("{d}:{}", if *ok { "ok" } else { "MISSING" }))
        .collect();
    println!(
        "\nPOSTGRES   up {}  version {}  databases {}",
        yes(pg.up),
        pg.version.as_deref().unwrap_or("-"),
        dbs.join(" ")
    );
    println!("\n{:<10} {:<12} {:<8} CHECK", "HAPROXY", "SERVER", "STATUS");
    if let Some(e) = &s.haproxy.error {
        println!("  {e}");
    }
    for x in &s.haproxy.servers {
        println!(
            "{:<10} {:<12} {:<8} {}",
            x.backend, x.server, x.status, x.check
        );
    }
    println!(
        "\n{:<10} {:<5} {:>12} {:>9} {:>9}  BREAKERS OPEN",
        "GATEWAY", "READY", "SPOOL BYTES", "SEGMENTS", "DLQ ROWS"
    );
    for g in &s.gateways {
        println!(
            "{:<10} {:<5} {:>12} {:>9} {:>9}  {}",
            g.name,
            yes(g.ready),
            g.spool_bytes,
            g.spool_segments,
            g.dlq_rows,
            if g.breakers_open.is_empty() {
                "-".to_owned()
            } else {
                g.breakers_open.join(",")
            }
        );
    }
    if s.healthy() {
        println!("\nSTATUS: healthy");
    } else {
        println!("\nSTATUS: DEGRADED ({} problems)", s.problems.len());
        for p in &s.problems {
            println!("  {}: {}", p.component, p.message);
        }
    }
}
