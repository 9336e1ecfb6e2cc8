//! The PostgreSQL side of `chgate migrate`: bootstrap the databases (chgate's own and Grafana's,
//! which Grafana then fills with its own schema at first start) and apply `migrations/postgres/`
//! (the gateway's tenants, hashed tokens and quotas) through refinery, whose ledger table is
//! `refinery_schema_history`.

use chgate_topology::{LoadedTopology, Secret};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg_tls::ConnectError;

mod embedded {
    //! The `migrations/postgres/V<n>__<name>.sql` files, compiled in by refinery.
    refinery::embed_migrations!("postgres");
}

/// Where chgate's PostgreSQL lives.
#[derive(Debug, Clone)]
pub struct PgTarget {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Role (needs `CREATEDB` for the bootstrap).
    pub user: String,
    /// Its password.
    pub password: Secret,
    /// chgate's database (gateway tables).
    pub database: String,
    /// Grafana's database (created empty, owned by `user`).
    pub grafana_database: String,
    /// CA to verify the server with: connections then require TLS (the topology's `[tls] ca`).
    pub ca: Option<std::path::PathBuf>,
}

impl PgTarget {
    /// From the topology's `[postgres]` section.
    ///
    /// # Errors
    /// [`Error::Topology`] when the password cannot be read.
    pub fn from_topology(loaded: &LoadedTopology) -> Result<Self> {
        let t = &loaded.topology;
        Ok(PgTarget {
            host: t.network.listen.to_string(),
            port: t.postgres_port(),
            user: t.postgres.user.clone(),
            password: t.postgres.password.resolve(&loaded.state_dir)?,
            database: t.postgres.database.clone(),
            grafana_database: t.postgres.grafana_database.clone(),
            ca: t.tls.as_ref().map(|tls| tls.ca.clone()),
        })
    }

    async fn connect(&self, dbname: &str) -> Result<Client> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(self.password.expose())
            .dbname(dbname)
            .connect_timeout(std::time::Duration::from_secs(5));
        // With [tls]: TLS is required (no silent fallback to plain text).
        crate::pg_tls::connect(&cfg, self.ca.as_deref())
            .await
            .map_err(|e| match e {
                ConnectError::Postgres(source) => Error::Postgres {
                    context: format!("connect to {}:{}/{dbname}", self.host, self.port),
                    source,
                },
                ConnectError::Ca(reason) => Error::PgTls(reason),
            })
    }
}

fn pg(context: &str) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
    move |source| Error::Postgres {
        context: context.to_owned(),
        source,
    }
}

/// Whether the connection to chgate's database is encrypted (`pg_stat_ssl` of this session).
///
/// # Errors
/// [`Error::Postgres`], [`Error::PgTls`].
pub async fn connection_encrypted(t: &PgTarget) -> Result<bool> {
    let client = t.connect("postgres").await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(pg("pg_stat_ssl"))?;
    Ok(row.get(0))
}

/// A PostgreSQL migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgMigration {
    /// Version.
    pub version: u32,
    /// Name.
    pub name: String,
    /// When it was applied (`None`: pending).
    pub applied_on: Option<String>,
}

/// Databases that do not exist yet (of chgate's and Grafana's).
async fn missing_databases(t: &PgTarget) -> Result<Vec<String>> {
    let admin = t.connect("postgres").await?;
    let mut missing = Vec::new();
    for db in [&t.database, &t.grafana_database] {
        let rows = admin
            .query("SELECT 1 FROM pg_database WHERE datname = $1", &[db])
            .await
            .map_err(pg("pg_database"))?;
        if rows.is_empty() && !missing.contains(db) {
            missing.push(db.clone());
        }
    }
    Ok(missing)
}

/// Creates missing databases (outside a transaction, as PostgreSQL requires) and applies pending
/// migrations; with `dry_run`, only reports. Returns the migrations that ran (or would run).
///
/// # Errors
/// [`Error::Postgres`], [`Error::Refinery`].
pub async fn up(t: &PgTarget, dry_run: bool) -> Result<Vec<PgMigration>> {
    let missing = missing_databases(t).await?;
    if dry_run {
        return Ok(status(t)
            .await?
            .into_iter()
            .filter(|m| m.applied_on.is_none())
            .collect());
    }
    if !missing.is_empty() {
        let admin = t.connect("postgres").await?;
        for db in &missing {
            let sql = format!("CREATE DATABASE {}", ident(db));
            admin.batch_execute(&sql).await.map_err(pg(&sql))?;
        }
    }
    let mut client = t.connect(&t.database).await?;
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(&mut client)
        .await
        .map_err(|e| Error::Refinery(e.to_string()))?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| PgMigration {
            version: m.version(),
            name: m.name().to_owned(),
            applied_on: m.applied_on().map(ToString::to_string),
        })
        .collect())
}

/// Every shipped PostgreSQL migration with its applied time (none when the database is missing).
///
/// # Errors
/// [`Error::Postgres`], [`Error::Refinery`].
pub async fn status(t: &PgTarget) -> Result<Vec<PgMigration>> {
    let runner = embedded::migrations::runner();
    let applied = if missing_databases(t).await?.contains(&t.database) {
        Vec::new()
    } else {
        let mut client = t.connect(&t.database).await?;
        let exists = client
            .query_one(
                "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
                &[],
            )
            .await
            .map_err(pg("refinery_schema_history"))?
            .get::<_, bool>(0);
        if exists {
            runner
                .get_applied_migrations_async(&mut client)
                .await
                .map_err(|e| Error::Refinery(e.to_string()))?
        } else {
            Vec::new()
        }
    };
    Ok(runner
        .get_migrations()
        .iter()
        .map(|m| PgMigration {
            version: m.version(),
            name: m.name().to_owned(),
            applied_on: applied
                .iter()
                .find(|a| a.version() == m.version())
                .and_then(|a| a.applied_on().map(ToString::to_string)),
        })
        .collect())
}

/// Quotes a PostgreSQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_postgres_migrations_are_embedded_in_order() {
        let ms = embedded::migrations::runner();
        let mut names: Vec<(u32, &str)> = ms
            .get_migrations()
            .iter()
            .map(|m| (m.version(), m.name()))
            .collect();
        // refinery applies in version order; the embedded list itself is unordered.
        names.sort_unstable();
        assert_eq!(
            names,
            [
                (1, "gateway_tenants"),
                (2, "gateway_salted_tokens_and_grants")
            ]
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("gra\"fana"), "\"gra\"\"fana\"");
    }
}
