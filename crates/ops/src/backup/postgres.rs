//! PostgreSQL backup: `pg_dump -Fc` of chgate's database (gateway tenants, tokens, quotas) and
//! Grafana's (datasources, dashboards, users), exact row counts of every table for verification;
//! restore recreates a missing database and runs `pg_restore --clean --if-exists`. The password
//! goes to the programs through `PGPASSWORD`, never on a command line. With the topology's
//! `[tls]` every connection — the programs' (`PGSSLMODE=verify-full`, `PGSSLROOTCERT=[tls] ca`)
//! and the row counts' — is TLS verified against `[tls] ca`; without it, plain text.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chgate_localstack::plan::bin;
use chgate_migrations::pg_tls::{self, ConnectError};
use serde::{Deserialize, Serialize};

use super::{sum_file, FileSum};
use crate::{io, Error, Ops, Result};

/// The PostgreSQL part of a manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostgresBackup {
    /// `server_version` at backup time.
    pub server_version: String,
    /// One dump per database.
    pub databases: Vec<DatabaseDump>,
}

/// One database's dump.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseDump {
    /// Database name.
    pub database: String,
    /// The dump file (`postgres/<database>.dump`).
    pub file: FileSum,
    /// Exact row count per table (`schema.table`).
    pub tables: Vec<(String, u64)>,
}

/// A connection to database `dbname` of the topology's PostgreSQL, through chgate's one connect
/// path (TLS verified against `[tls] ca` when the topology has `[tls]`).
///
/// # Errors
/// [`Error::Postgres`]; [`Error::PgTls`] when the CA file cannot be used.
pub async fn connect(ops: &Ops, dbname: &str) -> Result<tokio_postgres::Client> {
    let t = ops.topology();
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(t.network.listen.to_string())
        .port(t.postgres_port())
        .user(&t.postgres.user)
        .password(ops.pg_password().expose())
        .dbname(dbname)
        .connect_timeout(Duration::from_secs(3));
    pg_tls::connect(&cfg, ops.pg_ca().as_deref())
        .await
        .map_err(|e| match e {
            ConnectError::Postgres(source) => Error::Postgres {
                context: format!("connect to database {dbname}"),
                source,
            },
            ConnectError::Ca(reason) => Error::PgTls(reason),
        })
}

fn pg_err(context: String) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Postgres { context, source }
}

/// Names of the databases that exist.
///
/// # Errors
/// [`Error::Postgres`].
pub async fn existing_databases(ops: &Ops) -> Result<Vec<String>> {
    let c = connect(ops, "postgres").await?;
    let rows = c
        .query(
            "SELECT datname FROM pg_database WHERE NOT datistemplate",
            &[],
        )
        .await
        .map_err(pg_err("list databases".into()))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Exact row counts of every ordinary table outside the system schemas.
async fn row_counts(ops: &Ops, db: &str) -> Result<Vec<(String, u64)>> {
    let c = connect(ops, db).await?;
    let tables = c
        .query(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(pg_err(format!("list tables of {db}")))?;
    let mut out = Vec::new();
    for r in tables {
        let name: String = r.get(0);
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .await
            .map_err(pg_err(format!("count {db}.{name}")))?
            .get(0);
        out.push((name, n.max(0) as u64));
    }
    Ok(out)
}

fn run(program: &str, args: &[String], ops: &Ops) -> Result<()> {
    let t = ops.topology();
    let out = Command::new(format!("{}/{program}", bin::PG_BIN))
        .args([
            "-h",
            &t.network.listen.to_string(),
            "-p",
            &t.postgres_port().to_string(),
        ])
        .args(["-U", &t.postgres.user])
        .args(args)
        .env("PGPASSWORD", ops.pg_password().expose())
        .env("PGCONNECT_TIMEOUT", "5")
        .envs(pg_tls::libpq_env(ops.pg_ca().as_deref()))
        .output()
        .map_err(|e| Error::Program {
            program: program.into(),
            message: format!("cannot run {}/{program}: {e}", bin::PG_BIN),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Program {
        program: program.into(),
        message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// `pg_dump -Fc` of database `db` into `file` (blocking: waits for the program).
///
/// # Errors
/// [`Error::Program`] with `pg_dump`'s message (e.g. the server's certificate does not chain to
/// `[tls] ca`).
pub fn pg_dump(ops: &Ops, db: &str, file: &Path) -> Result<()> {
    let args = vec![
        "-Fc".into(),
        "-d".into(),
        db.to_owned(),
        "-f".into(),
        file.display().to_string(),
    ];
    run("pg_dump", &args, ops)
}

/// Dumps chgate's and Grafana's databases (those that exist) into `<dir>/postgres/`.
///
/// # Errors
/// [`Error::Program`] with `pg_dump`'s message, [`Error::Postgres`], [`Error::Io`].
pub async fn dump(ops: &Ops, dir: &Path) -> Result<PostgresBackup> {
    let t = ops.topology();
    let out_dir = dir.join("postgres");
    std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
    let present = existing_databases(ops).await?;
    let c = connect(ops, "postgres").await?;
    let server_version: String = c
        .query_one("SHOW server_version", &[])
        .await
        .map_err(pg_err("version".into()))?
        .get(0);
    let mut databases = Vec::new();
    for db in [&t.postgres.database, &t.postgres.grafana_database] {
        if !present.contains(db) {
            tracing::warn!(database = %db, "PostgreSQL database does not exist; not in the backup");
            continue;
        }
        let tables = row_counts(ops, db).await?;
        let file = out_dir.join(format!("{db}.dump"));
        pg_dump(ops, db, &file)?;
        databases.push(DatabaseDump {
            database: db.clone(),
            file: sum_file(dir, &file)?,
            tables,
        });
    }
    Ok(PostgresBackup {
        server_version: server_version
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
        databases,
    })
}

/// Restores every dump (creating missing databases) and returns (table, rows wanted, rows found).
///
/// # Errors
/// [`Error::Program`] with `pg_restore`'s message, [`Error::Postgres`].
pub async fn restore(
    ops: &Ops,
    dir: &Path,
    b: &PostgresBackup,
    progress: &dyn Fn(&str),
) -> Result<Vec<(String, u64, u64)>> {
    let present = existing_databases(ops).await?;
    let admin = connect(ops, "postgres").await?;
    let mut out = Vec::new();
    for d in &b.databases {
        if !present.contains(&d.database) {
            progress(&format!("postgres: CREATE DATABASE {}", d.database));
            let sql = format!(
                "CREATE DATABASE \"{}\" OWNER \"{}\"",
                d.database.replace('"', "\"\""),
                ops.topology().postgres.user.replace('"', "\"\"")
            );
            admin
                .batch_execute(&sql)
                .await
                .map_err(pg_err(format!("create database {}", d.database)))?;
        }
        progress(&format!("postgres: pg_restore {}", d.database));
        let args = vec![
            "--clean".into(),
            "--if-exists".into(),
            "--single-transaction".into(),
            "-d".into(),
            d.database.clone(),
            dir.join(&d.file.path).display().to_string(),
        ];
        run("pg_restore", &args, ops)?;
        let now: std::collections::BTreeMap<String, u64> =
            row_counts(ops, &d.database).await?.into_iter().collect();
        for (table, want) in &d.tables {
            let got = now.get(table).copied().unwrap_or(0);
            out.push((format!("{}.{table}", d.database), *want, got));
        }
    }
    Ok(out)
}
