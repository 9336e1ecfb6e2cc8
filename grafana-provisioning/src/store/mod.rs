//! The datasource in Grafana's PostgreSQL: wait for Grafana's tables, then upsert in one locked
//! transaction.
//!
//! - [`schema`]: connect, wait for `data_source` (Grafana creates it at first start), check columns.
//! - [`plan`]: pure comparison of the stored rows with the [`DatasourceSpec`] → [`plan::Plan`].
//! - [`apply`]: advisory lock, read, write; the `secrets` row is kept in step when that table exists.
//!
//! A run with nothing to change writes nothing: the stored ciphertext is decrypted and compared,
//! not re-encrypted (encryption is randomised, so re-encrypting would always look like a change).

pub mod apply;
pub mod plan;
pub mod schema;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chgate_topology::{Secret, Topology};

use crate::crypto::Keyring;
use crate::datasource::DatasourceSpec;
use crate::GrafanaError;
use plan::Drift;

/// Where Grafana's database is.
#[derive(Clone)]
pub struct PgTarget {
    /// Connection settings (password included; never printed).
    pub config: tokio_postgres::Config,
    /// `host:port/database`, for messages.
    pub label: String,
    /// CA to verify the server with; TLS is then required (the topology's `[tls] ca`).
    /// `None`: plain text.
    pub ca: Option<PathBuf>,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("label", &self.label)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// Grafana's database as the topology describes it (`postgres.grafana_database`, reached as
    /// `postgres.user` on the loopback address and PostgreSQL port of the layout), over TLS
    /// verified against `[tls] ca` when the topology has `[tls]`.
    ///
    /// # Errors
    /// [`GrafanaError::Secret`] when the PostgreSQL password cannot be read.
    pub fn from_topology(t: &Topology, state_dir: &Path) -> Result<Self, GrafanaError> {
        let password = t.postgres.password.resolve(state_dir)?;
        let host = t.network.listen.to_string();
        let port = t.postgres_port();
        let db = &t.postgres.grafana_database;
        let mut config = tokio_postgres::Config::new();
        config
            .host(&host)
            .port(port)
            .user(&t.postgres.user)
            .password(password.expose())
            .dbname(db)
            .application_name("chgate-grafana")
            .connect_timeout(Duration::from_secs(5));
        Ok(PgTarget {
            config,
            label: format!("{host}:{port}/{db}"),
            ca: t.tls.as_ref().map(|tls| tls.resolved(state_dir).ca),
        })
    }

    /// The same server and credentials, database `database` (e.g. a test's own database).
    #[must_use]
    pub fn with_database(mut self, database: &str) -> Self {
        self.config.dbname(database);
        let server = self.label.rsplit_once('/').map_or("", |(s, _)| s);
        self.label = format!("{server}/{database}");
        self
    }

    /// A plain-text target from a libpq-style DSN (`host=.. port=.. user=..`) with `database`
    /// selected; set [`PgTarget::ca`] for TLS.
    ///
    /// # Errors
    /// [`GrafanaError::InvalidDsn`] when the DSN does not parse.
    pub fn from_dsn(dsn: &str, database: &str) -> Result<Self, GrafanaError> {
        let mut config =
            tokio_postgres::Config::from_str(dsn).map_err(|e| GrafanaError::InvalidDsn {
                reason: e.to_string(),
            })?;
        config.dbname(database);
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        Ok(PgTarget {
            config,
            label: format!("{host}:{port}/{database}"),
            ca: None,
        })
    }
}

/// Apply the changes, or only report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write what differs.
    Apply,
    /// Report drift; write nothing (`--check`).
    Check,
}

/// How long to wait for Grafana's tables, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitSettings {
    /// Total wait. Default 0 (fail at once).
    pub wait: Duration,
    /// Poll interval. Default 1 s.
    pub poll: Duration,
}

impl Default for WaitSettings {
    fn default() -> Self {
        WaitSettings {
            wait: Duration::ZERO,
            poll: Duration::from_secs(1),
        }
    }
}

/// What a run found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The datasource uid.
    pub uid: String,
    /// Every difference found before writing (empty: already as desired).
    pub drift: Vec<Drift>,
    /// The version after a write; `None` when nothing was written (no drift, or [`Mode::Check`]).
    pub written_version: Option<i32>,
    /// Whether Grafana's `secrets` table exists (Grafana 8.5+).
    pub secrets_table: bool,
}

/// Provisions the datasource: waits for Grafana's tables, then, under an advisory lock, compares
/// and (in [`Mode::Apply`]) writes the `data_source` row and its `secrets` row.
///
/// # Errors
/// [`GrafanaError::TablesMissing`] when Grafana has not created its tables within the wait;
/// [`GrafanaError::NameTaken`], [`GrafanaError::InvalidSpec`], connection and query errors.
pub async fn provision(
    target: &PgTarget,
    spec: &DatasourceSpec,
    secret_key: &Secret,
    mode: Mode,
    wait: WaitSettings,
) -> Result<Outcome, GrafanaError> {
    spec.validate()?;
    let (mut client, tables) = schema::wait_for_tables(target, wait.wait, wait.poll).await?;
    let tx = client
        .transaction()
        .await
        .map_err(|source| GrafanaError::Query {
            table: "transaction",
            source,
        })?;
    apply::lock(&tx).await?;
    let current = apply::read_current(&tx, spec).await?;
    let secrets = match tables.secrets {
        Some(_) => Some(apply::read_secrets(&tx, spec, current.as_ref()).await?),
        None => None,
    };
    let key = secret_key.expose();
    let mut keys = Keyring::new(key);
    if tables.data_keys.is_some() {
        let rows = secrets.as_deref().unwrap_or_default();
        apply::load_data_keys(&tx, current.as_ref(), rows, &mut keys).await?;
    }
    let plan = plan::plan(spec, current.as_ref(), secrets.as_deref(), &keys);
    let written_version = match mode {
        Mode::Check => None,
        Mode::Apply => apply::execute(&tx, spec, &tables, &plan, key).await?,
    };
    tx.commit().await.map_err(|source| GrafanaError::Query {
        table: "commit",
        source,
    })?;
    log_outcome(spec, &plan.drift, written_version, mode);
    Ok(Outcome {
        uid: spec.uid.clone(),
        drift: plan.drift,
        written_version,
        secrets_table: tables.secrets.is_some(),
    })
}

fn log_outcome(spec: &DatasourceSpec, drift: &[Drift], version: Option<i32>, mode: Mode) {
    for d in drift {
        tracing::info!(uid = %spec.uid, drift = %d, "grafana datasource drift");
    }
    match (mode, version) {
        (Mode::Apply, Some(v)) => {
            tracing::info!(uid = %spec.uid, version = v, "datasource written")
        }
        (Mode::Apply, None) => tracing::info!(uid = %spec.uid, "datasource already up to date"),
        (Mode::Check, _) => tracing::info!(uid = %spec.uid, drift = drift.len(), "checked"),
    }
}
