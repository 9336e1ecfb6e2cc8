//! # chgate-grafana
//!
//! Grafana for a chgate deployment, rendered and provisioned from the one topology file.
//!
//! - [`crypto`]: Grafana-compatible secret encryption (legacy `aes-cfb`: PBKDF2-SHA256 key from
//!   the shared `[security] secret_key`, 8-byte salt, 16-byte IV), in both base64 wrappings
//!   Grafana stores.
//! - [`datasource`]: [`DatasourceSpec`], the desired `grafana-clickhouse-datasource` datasource.
//! - [`store`]: [`provision`] upserts it into Grafana's PostgreSQL `data_source` table (and the
//!   `secrets` table when present): never creates Grafana's tables, waits for them, idempotent,
//!   version bump on change, advisory-locked against concurrent runs, `--check` drift report.
//! - [`render`]: the same datasource as provisioning YAML, the dashboard provider and starter
//!   dashboards, and `grafana.ini` for each of the N stateless instances.
//!
//! Data flow: topology → [`DatasourceSpec`] → either [`provision`] (PostgreSQL) or
//! [`render::render_all`] → files. Secrets are only ever encrypted (database) or referenced as
//! `$__env{}`/`$__file{}` (files); no plaintext is written or logged.

pub mod crypto;
pub mod datasource;
pub mod render;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

pub use datasource::DatasourceSpec;
pub use store::{provision, Mode, Outcome, PgTarget, WaitSettings};

/// What can go wrong provisioning or rendering Grafana's configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrafanaError {
    /// Grafana has not created its tables (it does so at its first start against the database).
    #[error(
        "Grafana's tables do not exist in {target} (table `data_source` missing after waiting \
         {waited:.1?}): Grafana creates them the first time it starts against this database, and \
         chgate never creates them. Start a Grafana instance configured with this database \
         (see `chgate grafana render`), or wait longer with --wait, then run provision again"
    )]
    TablesMissing {
        /// `host:port/database`.
        target: String,
        /// How long we waited.
        waited: Duration,
    },
    /// A Grafana table lacks a column chgate writes (Grafana too old, or not Grafana's table).
    #[error("Grafana table `{table}` has no column `{column}`; Grafana 8.5 or newer is required")]
    SchemaMismatch {
        /// The table.
        table: &'static str,
        /// The missing column.
        column: String,
    },
    /// No connection to PostgreSQL.
    #[error("cannot connect to Grafana's PostgreSQL database {target}: {source}")]
    Connect {
        /// `host:port/database`.
        target: String,
        /// The driver error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The `[tls] ca` file for PostgreSQL could not be used.
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
    /// A statement failed.
    #[error("query on `{table}` in Grafana's database failed: {source}")]
    Query {
        /// Table (or step) the statement was about.
        table: &'static str,
        /// The driver error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Another datasource already uses the desired name.
    #[error(
        "a Grafana datasource named {name:?} already exists with uid {other_uid:?}; rename or \
         delete it, or set grafana.datasource_name to another name"
    )]
    NameTaken {
        /// The desired name.
        name: String,
        /// The uid of the datasource holding it.
        other_uid: String,
    },
    /// The topology's datasource settings break Grafana's rules.
    #[error("invalid topology: `{field}` {reason}")]
    InvalidSpec {
        /// Topology field.
        field: &'static str,
        /// The rule.
        reason: &'static str,
    },
    /// A PostgreSQL connection string does not parse.
    #[error("invalid PostgreSQL connection string: {reason}")]
    InvalidDsn {
        /// Parser message (the DSN itself is not repeated: it may hold a password).
        reason: String,
    },
    /// A secret reference could not be read.
    #[error(transparent)]
    Secret(#[from] chgate_topology::TopologyError),
    /// A rendered file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
