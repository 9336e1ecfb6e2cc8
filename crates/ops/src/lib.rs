//! # chgate-ops
//!
//! Day-2 operations of a chgate deployment, all driven by the one topology file:
//!
//! - [`status`]: cluster health for `chgate status` — every ClickHouse host (version, uptime,
//!   readonly replicas, replication queue and delay, parts per partition against the
//!   too-many-parts thresholds, Distributed files waiting to be sent), the Keeper quorum (leader,
//!   followers, znodes, latency from the four-letter words `mntr`), PostgreSQL, HAProxy's backends
//!   (its stats CSV) and every gateway (`/readyz`, spool, dead-letter queue, open shard breakers
//!   from `/metrics`). [`health::assess`] turns the facts into a list of problems; empty = healthy.
//! - [`backup`]: `chgate backup create | list | restore` — `pg_dump`/`pg_restore` of the gateway's
//!   and Grafana's databases, and per shard a consistent copy of every MergeTree table
//!   (`ALTER TABLE … FREEZE` + shadow copy + `ATTACH PARTITION` on servers without `BACKUP`, such
//!   as the 18.16 rig; `BACKUP`/`RESTORE` SQL on servers that have it), with a manifest holding
//!   versions, sha256 checksums and row counts, and a restore verified by row counts.
//! - [`rebuild`]: rebuild a replica whose data directory was lost, from a peer of its shard
//!   (schema) and Keeper (data), checked against the migration ledger.
//!
//! Main types: [`Ops`] (how to reach everything), [`status::ClusterStatus`],
//! [`backup::Manifest`], [`Error`].

pub mod backup;
pub mod health;
pub mod rebuild;
pub mod status;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chgate_clickhouse_http::Client;
use chgate_localstack::{probe, Stack};
use chgate_topology::{ClickHouseNode, LoadedTopology, Secret, Topology};

/// What can go wrong in an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A ClickHouse request failed.
    #[error("{context}: {source}")]
    ClickHouse {
        /// What we were doing (names the host and table).
        context: String,
        /// The client's error (names the server).
        #[source]
        source: chgate_clickhouse_http::Error,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An external program (`pg_dump`, `pg_restore`, `psql`) failed.
    #[error("{program} failed: {message}")]
    Program {
        /// The program.
        program: String,
        /// Its message (stderr), without secrets.
        message: String,
    },
    /// A PostgreSQL request failed.
    #[error("PostgreSQL {context}: {source}")]
    Postgres {
        /// What we were doing.
        context: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The `[tls] ca` file for PostgreSQL could not be used.
    #[error("PostgreSQL TLS: {0}")]
    PgTls(String),
    /// A backup is not usable (bad manifest, checksum mismatch, missing file).
    #[error("backup {backup}: {reason}")]
    Backup {
        /// Backup id or path.
        backup: String,
        /// What is wrong.
        reason: String,
    },
    /// The restored data does not match the manifest.
    #[error("restore verification failed:\n{}", mismatches.join("\n"))]
    Verify {
        /// One line per table and shard whose row count differs.
        mismatches: Vec<String>,
    },
    /// A name given on the command line does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Secrets could not be resolved.
    #[error(transparent)]
    Topology(#[from] chgate_topology::TopologyError),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn ch(
    context: impl Into<String>,
) -> impl FnOnce(chgate_clickhouse_http::Error) -> Error {
    let context = context.into();
    move |source| Error::ClickHouse { context, source }
}

/// `SELECT count() FROM full` (`full` already quoted).
pub(crate) async fn count(c: &Client, full: &str) -> Result<u64> {
    let n = c
        .query(&format!("SELECT count() FROM {full}"))
        .await
        .map_err(ch(format!("count {full}")))?;
    Ok(n.trim().parse().unwrap_or(0))
}

/// How to reach every part of the deployment described by one topology.
#[derive(Debug, Clone)]
pub struct Ops {
    topology: Topology,
    state_dir: PathBuf,
    ch_password: Secret,
    pg_password: Secret,
    stack: Stack,
}

impl Ops {
    /// From a loaded topology; resolves the ClickHouse and PostgreSQL passwords.
    ///
    /// # Errors
    /// [`Error::Topology`] when a secret reference cannot be resolved.
    pub fn new(loaded: &LoadedTopology) -> Result<Self> {
        let t = &loaded.topology;
        Ok(Ops {
            ch_password: t.clickhouse.password.resolve(&loaded.state_dir)?,
            pg_password: t.postgres.password.resolve(&loaded.state_dir)?,
            topology: t.clone(),
            state_dir: loaded.state_dir.clone(),
            stack: Stack::new(loaded),
        })
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The state directory (local rig data, default backup location).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The PostgreSQL password.
    pub fn pg_password(&self) -> &Secret {
        &self.pg_password
    }

    /// The CA PostgreSQL's certificate is verified with (`[tls] ca`, absolute); `None` without
    /// `[tls]`, where PostgreSQL is reached in plain text.
    pub fn pg_ca(&self) -> Option<PathBuf> {
        self.topology
            .tls
            .as_ref()
            .map(|tls| tls.resolved(&self.state_dir).ca)
    }

    /// ClickHouse client for `node`, with `timeout` per request.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the HTTP client cannot be built.
    pub fn client(&self, node: &ClickHouseNode, timeout: Duration) -> Result<Client> {
        let url = format!("http://{}:{}", self.topology.network.listen, node.http_port);
        let mut cfg = chgate_clickhouse_http::ClientConfig::new(
            url,
            self.topology.clickhouse.user.clone(),
            self.ch_password.clone(),
        );
        cfg.timeout = timeout;
        Client::new(cfg).map_err(|e| Error::NotFound(format!("client for {}: {e}", node.name)))
    }

    /// A client with the status probes' short timeout (the same one `chgate local status` uses).
    pub(crate) fn probe_client(&self, node: &ClickHouseNode) -> Result<Client> {
        probe::clickhouse_client(&self.topology, node.http_port, &self.ch_password)
            .map_err(|e| Error::NotFound(format!("client for {}: {e}", node.name)))
    }

    /// The node named `name` (`ch-s1r2`).
    ///
    /// # Errors
    /// [`Error::NotFound`] listing the known names.
    pub fn node(&self, name: &str) -> Result<ClickHouseNode> {
        let nodes = self.topology.clickhouse_nodes();
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        nodes.into_iter().find(|n| n.name == name).ok_or_else(|| {
            Error::NotFound(format!(
                "no ClickHouse node `{name}` in the topology (nodes: {})",
                names.join(", ")
            ))
        })
    }

    /// A ClickHouse node's data directory on this machine (the local rig's `<path>`, holding
    /// `data/`, `metadata/` and `shadow/`). Backups copy frozen parts from here.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown node.
    pub fn local_data_dir(&self, node: &str) -> Result<PathBuf> {
        self.stack
            .data_dir(node)
            .map_err(|e| Error::NotFound(e.to_string()))
    }

    /// The local rig's processes (pid files), for what only a local deployment has.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }
}
