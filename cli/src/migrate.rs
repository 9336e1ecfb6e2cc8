//! `chgate migrate ...`: the schema manager (ClickHouse `ON CLUSTER` migrations with a Keeper
//! lock and a replicated ledger, plus the PostgreSQL side). Parses arguments into
//! [`chgate_migrations::Options`], runs one command, prints a report.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chgate_migrations::ddl::DdlSettings;
use chgate_migrations::lock::DEFAULT_LOCK_PATH;
use chgate_migrations::plan::Status;
use chgate_migrations::postgres::{self, PgTarget};
use chgate_migrations::{Migrator, Options, Progress};
use chgate_topology::LoadedTopology;
use clap::{Args, Subcommand};

/// Arguments of `chgate migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: MigrateCommand,
    /// Database of the ClickHouse schema (default: the topology's `cluster.database`).
    #[arg(long, global = true)]
    pub database: Option<String>,
    /// Read ClickHouse migrations from this directory instead of the ones built in.
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// Retention of samples and series on servers with TTL support, in days (`${ttl_days}`).
    #[arg(long, global = true, default_value_t = chgate_migrations::sql::DEFAULT_TTL_DAYS)]
    pub ttl_days: u32,
    /// How long the server waits for every host per `ON CLUSTER` statement (e.g. `60s`, `2m`).
    #[arg(long, global = true, default_value = "60s", value_parser = parse_duration)]
    pub ddl_timeout: Duration,
    /// After that, how long to keep polling Keeper for the hosts still pending.
    #[arg(long, global = true, default_value = "60s", value_parser = parse_duration)]
    pub ddl_extra_wait: Duration,
    /// Keeper path of the migration lock.
    #[arg(long, global = true, default_value = DEFAULT_LOCK_PATH)]
    pub lock_path: String,
    /// How long `up` waits for another migrator before failing with the holder's name.
    #[arg(long, global = true, default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Keeper session timeout of the migrator: how soon the lock of a killed migrator frees.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    pub lock_session_timeout: Duration,
    /// Proceed when some ClickHouse hosts are unreachable: their statements are recorded as
    /// pending, and a later `up` finishes them once the hosts are back.
    #[arg(long, global = true)]
    pub allow_unavailable: bool,
    /// Leave PostgreSQL alone (`up`, `status`).
    #[arg(long, global = true)]
    pub skip_postgres: bool,
}

/// `chgate migrate` subcommands.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Show what `up` would run and on which hosts (runs pre-flight, changes nothing).
    Plan {
        /// Stop after this version.
        #[arg(long)]
        to: Option<u32>,
    },
    /// Apply pending migrations (ClickHouse, then PostgreSQL).
    Up {
        /// Stop after this version.
        #[arg(long)]
        to: Option<u32>,
        /// Only show the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Applied / pending / failed per version and per host, the lock holder, PostgreSQL.
    Status,
    /// Check that the schema is identical on every replica.
    Verify,
    /// Check the migration files for unsafe DDL (no cluster needed).
    Lint,
}

/// Parses `500ms`, `30s`, `2m`, `1h` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("bad duration unit in {s:?}; use ms, s, m or h")),
    }
}

impl MigrateArgs {
    fn options(&self) -> Options {
        Options {
            database: self.database.clone(),
            dir: self.dir.clone(),
            ttl_days: self.ttl_days,
            ddl: DdlSettings {
                server_wait: self.ddl_timeout,
                extra_wait: self.ddl_extra_wait,
            },
            lock_path: self.lock_path.clone(),
            lock_timeout: self.lock_timeout,
            session_timeout: self.lock_session_timeout,
            allow_unavailable: self.allow_unavailable,
        }
    }
}

fn print_progress(p: &Progress) {
    eprintln!("  {p}");
}

/// Runs `chgate migrate <command>`.
///
/// # Errors
/// Any migration error, with its context (file, version, host).
pub async fn run(args: MigrateArgs, topology: &LoadedTopology) -> anyhow::Result<()> {
    let migrator = Migrator::new(topology, args.options())?;
    match args.command {
        MigrateCommand::Lint => {
            let findings = migrator.lint();
            for f in &findings {
                println!("{f}");
            }
            let files = migrator.source().files().count();
            anyhow::ensure!(
                findings.is_empty(),
                "{} lint problem(s) in {files} file(s)",
                findings.len()
            );
            println!("{files} file(s) lint clean");
        }
        MigrateCommand::Plan { to } => {
            print!("{}", migrator.plan(to).await?);
            if !args.skip_postgres {
                print_pg_pending(topology, "would run").await?;
            }
        }
        MigrateCommand::Up { to, dry_run: true } => {
            print!("{}", migrator.plan(to).await?);
            println!("dry run: nothing was changed");
            if !args.skip_postgres {
                print_pg_pending(topology, "would run").await?;
            }
        }
        MigrateCommand::Up { to, dry_run: false } => {
            up_clickhouse(&migrator, to).await?;
            if !args.skip_postgres {
                let target = PgTarget::from_topology(topology)?;
                let applied = postgres::up(&target, false)
                    .await
                    .context("PostgreSQL migrations")?;
                println!("PostgreSQL: applied {} migration(s)", applied.len());
            }
        }
        MigrateCommand::Status => {
            print!("{}", migrator.status().await?);
            if !args.skip_postgres {
                let target = PgTarget::from_topology(topology)?;
                println!("\nPostgreSQL ({}):", target.database);
                for m in postgres::status(&target).await? {
                    let state = m
                        .applied_on
                        .as_deref()
                        .map_or("pending".to_owned(), |t| format!("applied {t}"));
                    println!("  V{} {:<24} {state}", m.version, m.name);
                }
            }
        }
        MigrateCommand::Verify => {
            let tables = migrator.verify().await?;
            println!(
                "schema identical on all {} hosts ({tables} tables in {})",
                migrator.cluster().nodes.len(),
                migrator.cluster().database
            );
        }
    }
    Ok(())
}

/// `up` on ClickHouse: progress lines, a summary table, then `verify` unless hosts are pending.
async fn up_clickhouse(migrator: &Migrator, to: Option<u32>) -> anyhow::Result<()> {
    let done = std::sync::Mutex::new(Vec::new());
    let progress = |p: &Progress| {
        print_progress(p);
        if let Progress::Version {
            version,
            status,
            took,
        } = p
        {
            if let Ok(mut d) = done.lock() {
                d.push((*version, *status, *took));
            }
        }
    };
    let report = migrator.up(to, &progress).await?;
    let done = done.lock().map(|d| d.clone()).unwrap_or_default();
    if report.plan.is_empty() {
        println!("ClickHouse: up to date");
    } else {
        println!(
            "{:<8} {:<20} {:<10} {:<11} {:<10} TIME",
            "VERSION", "NAME", "VARIANT", "STATEMENTS", "STATUS"
        );
        for s in &report.plan.steps {
            let (status, took) = done
                .iter()
                .find(|(v, _, _)| *v == s.version)
                .map_or(("?", Duration::ZERO), |(_, st, t)| (st.as_str(), *t));
            println!(
                "{:<8} {:<20} {:<10} {:<11} {:<10} {:.1} s",
                s.version,
                s.name,
                s.variant.as_str(),
                format!("{}/{}", s.statements.len(), s.statements_total),
                status,
                took.as_secs_f64()
            );
        }
    }
    if done.iter().any(|(_, st, _)| *st == Status::Pending) {
        println!("some hosts are pending: run `chgate migrate up` again once they are back");
        return Ok(());
    }
    let tables = migrator.verify().await.context("verify after up")?;
    println!(
        "verify: schema identical on all {} hosts ({tables} tables)",
        migrator.cluster().nodes.len()
    );
    Ok(())
}

async fn print_pg_pending(topology: &LoadedTopology, verb: &str) -> anyhow::Result<()> {
    let target = PgTarget::from_topology(topology)?;
    let pending = postgres::up(&target, true)
        .await
        .context("PostgreSQL status")?;
    for m in &pending {
        println!("PostgreSQL: {verb} V{} {}", m.version, m.name);
    }
    if pending.is_empty() {
        println!("PostgreSQL: up to date");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_human_readable() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
