//! `chgate backup create | list | restore | rebuild-replica`: backups of ClickHouse (per shard,
//! FREEZE or BACKUP by server version) and PostgreSQL (pg_dump) into a local directory, restore
//! verified by row counts, and the rebuild of a replica that lost its disk. Work is done by
//! `chgate-ops`; this module parses arguments and prints summaries.

use std::path::PathBuf;
use std::process::ExitCode;

use chgate_ops::backup::{self, CreateOptions, RestoreOptions};
use chgate_ops::{rebuild, Ops};
use chgate_topology::LoadedTopology;
use clap::Subcommand;

/// `chgate backup ...`
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up ClickHouse (one replica per shard: SYNC REPLICA, STOP MERGES, FREEZE, copy,
    /// START MERGES — or BACKUP TABLE on 22.8+) and PostgreSQL (pg_dump of chgate's and Grafana's
    /// databases; over TLS verified against [tls] ca when the topology has [tls]) into DIR/<id>/
    /// with a manifest of versions, sha256 checksums and row counts.
    Create {
        /// Parent directory of backups (default: <state_dir>/backups). Sync it to object storage
        /// (aws s3 sync, rclone) after create; the manifest's checksums catch a bad copy.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// ClickHouse database to back up; repeat for several (default: the topology's
        /// cluster.database).
        #[arg(long = "database")]
        databases: Vec<String>,
        /// Skip ClickHouse.
        #[arg(long)]
        no_clickhouse: bool,
        /// Skip PostgreSQL.
        #[arg(long)]
        no_postgres: bool,
    },
    /// List backups: id, creation time, size, duration and what each holds.
    List {
        /// Parent directory of backups (default: <state_dir>/backups).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// JSON manifests instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Restore backup ID (or `latest`): check every checksum, recreate missing databases and
    /// tables ON CLUSTER, attach the parts on one replica per shard (the others fetch them),
    /// pg_restore, then compare row counts on every replica with the manifest. Target tables must
    /// be empty. Exit 1 with the mismatching tables when counts differ.
    Restore {
        /// Backup id, or `latest`.
        id: String,
        /// Parent directory of backups (default: <state_dir>/backups).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Restore only ClickHouse.
        #[arg(long, conflicts_with = "postgres_only")]
        clickhouse_only: bool,
        /// Restore only PostgreSQL.
        #[arg(long)]
        postgres_only: bool,
    },
    /// Rebuild a replica whose data directory was lost (running again, empty) from a peer of its
    /// shard: recreate databases and tables from the peer's schema, re-attach replicated tables to
    /// their Keeper replica so every part is fetched, wait, then check rows and the migration
    /// ledger against the peer. No backup needed.
    RebuildReplica {
        /// ClickHouse node name, e.g. ch-s1r2.
        node: String,
    },
}

fn progress(msg: &str) {
    eprintln!("chgate backup: {msg}");
}

/// Runs a `chgate backup` command.
pub async fn run(cmd: BackupCommand, loaded: &LoadedTopology) -> anyhow::Result<ExitCode> {
    let ops = Ops::new(loaded)?;
    let target = |dir: Option<PathBuf>| dir.unwrap_or_else(|| backup::default_target(&ops));
    match cmd {
        BackupCommand::Create {
            dir,
            databases,
            no_clickhouse,
            no_postgres,
        } => {
            let databases = match (no_clickhouse, databases.is_empty()) {
                (true, _) => Vec::new(),
                (false, true) => vec![loaded.topology.cluster.database.clone()],
                (false, false) => databases,
            };
            let opts = CreateOptions {
                target: target(dir),
                databases,
                postgres: !no_postgres,
            };
            let m = backup::create(&ops, &opts, &progress).await?;
            println!(
                "backup {} in {}: {:.1} MiB in {:.1}s",
                m.id,
                opts.target.join(&m.id).display(),
                backup::total_bytes(&m) as f64 / 1048576.0,
                m.duration_s
            );
            print_rows(&m);
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::List { dir, json } => {
            let all = backup::list(&target(dir))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<20} {:<22} {:>10} {:>8}  CONTENTS",
                    "ID", "CREATED", "MIB", "SECONDS"
                );
                for m in &all {
                    let mut what = Vec::new();
                    if let Some(c) = &m.clickhouse {
                        what.push(format!("clickhouse {}", c.databases.join(",")));
                    }
                    if let Some(p) = &m.postgres {
                        let dbs: Vec<&str> =
                            p.databases.iter().map(|d| d.database.as_str()).collect();
                        what.push(format!("postgres {}", dbs.join(",")));
                    }
                    println!(
                        "{:<20} {:<22} {:>10.1} {:>8.1}  {}",
                        m.id,
                        m.created,
                        backup::total_bytes(m) as f64 / 1048576.0,
                        m.duration_s,
                        what.join("; ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Restore {
            id,
            dir,
            clickhouse_only,
            postgres_only,
        } => {
            let target = target(dir);
            let id = if id == "latest" {
                backup::list(&target)?
                    .pop()
                    .map(|m| m.id)
                    .ok_or_else(|| anyhow::anyhow!("no backup in {}", target.display()))?
            } else {
                id
            };
            let opts = RestoreOptions {
                clickhouse: !postgres_only,
                postgres: !clickhouse_only,
            };
            let started = std::time::Instant::now();
            let r = backup::restore(&ops, &target, &id, &opts, &progress).await?;
            println!(
                "restored {id} in {:.1}s; row counts equal the backup's:",
                started.elapsed().as_secs_f64()
            );
            for c in &r.clickhouse {
                println!(
                    "  shard {} {:<8} {:<40} {:>10} rows",
                    c.shard, c.replica, c.table, c.got
                );
            }
            for (t, _, got) in &r.postgres {
                println!("  postgres {t:<40} {got:>10} rows");
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::RebuildReplica { node } => {
            let r = rebuild::rebuild_replica(&ops, &node, &progress).await?;
            println!(
                "rebuilt {} from {} in {:.1}s: {} tables attached, {} created",
                r.node,
                r.peer,
                r.duration_s,
                r.attached.len(),
                r.created.len()
            );
            for (t, peer, me) in &r.rows {
                println!("  {t:<50} {me:>10} rows ({} has {peer})", r.peer);
            }
            for (db, _, v) in &r.ledger {
                println!("  ledger {db}: applied versions {v:?}");
            }
            if !r.data_lost.is_empty() {
                println!(
                    "  not replicated, recreated empty: {}",
                    r.data_lost.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_rows(m: &backup::Manifest) {
    if let Some(c) = &m.clickhouse {
        for s in &c.shards {
            let rows: u64 = s.tables.iter().map(|t| t.rows).sum();
            println!(
                "  clickhouse shard {} from {} ({} {:?}): {} tables, {rows} rows",
                s.shard,
                s.source_replica,
                s.server_version,
                s.method,
                s.tables.len()
            );
        }
    }
    if let Some(p) = &m.postgres {
        for d in &p.databases {
            let rows: u64 = d.tables.iter().map(|t| t.1).sum();
            println!(
                "  postgres {} ({}): {} tables, {rows} rows, {} bytes",
                d.database,
                p.server_version,
                d.tables.len(),
                d.file.size
            );
        }
    }
}
