//! The library's error type.

/// Why a load run could not be set up or carried out (a failed request is not an error: it is
/// counted in the statistics).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadgenError {
    /// Invalid settings; the message names the option.
    #[error("{0}")]
    Config(String),
    /// A target outside 127.0.0.0/8 without `--allow-remote`.
    #[error("refusing non-loopback target {target}: load tests go to 127.0.0.0/8 unless --allow-remote is given")]
    NotLoopback {
        /// The target as given.
        target: String,
    },
    /// A ClickHouse query during setup or verification failed.
    #[error("ClickHouse {node}: {source}")]
    ClickHouse {
        /// Node or host.
        node: String,
        /// The error.
        #[source]
        source: chgate_clickhouse_http::Error,
    },
    /// A table schema could not be loaded.
    #[error("schema of {table}: {source}")]
    Schema {
        /// `db.table`.
        table: String,
        /// The error.
        #[source]
        source: chgate_gateway::GatewayError,
    },
    /// The in-process gateway failed.
    #[error("in-process gateway: {0}")]
    Gateway(#[from] chgate_gateway::run::RunError),
    /// Local I/O (binding, reports).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}
