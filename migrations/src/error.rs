//! The one error type of the schema manager; every variant names the file, version or host.

use std::path::PathBuf;

/// What can go wrong loading, planning or applying migrations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A migration directory or file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `.sql` file's name does not follow `V<n>__<name>[.fallback].sql`.
    #[error("bad migration file name {file}: {reason}")]
    FileName {
        /// The file name.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Two files claim the same version (or the same variant of it).
    #[error("duplicate migration version {version}: {first} and {second}")]
    DuplicateVersion {
        /// The version.
        version: u32,
        /// One file.
        first: String,
        /// The other file.
        second: String,
    },
    /// Versions must be 1, 2, 3, ... without holes.
    #[error("migration version {missing} is missing (next file is {next_file}); versions must be 1, 2, 3, ... without gaps")]
    Gap {
        /// The missing version.
        missing: u32,
        /// The first file after the hole.
        next_file: String,
    },
    /// A file's SQL could not be split or has a bad `-- chgate:` directive or placeholder.
    #[error("{file} line {line}: {reason}")]
    Syntax {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An applied file was edited after it ran.
    #[error("checksum drift in {file} (version {version}): applied with {applied}, the file now has {current}; \
             never edit an applied migration, add a new version instead")]
    ChecksumDrift {
        /// The file name (of the variant that was applied).
        file: String,
        /// The version.
        version: u32,
        /// Checksum recorded in the ledger.
        applied: String,
        /// Checksum of the file as it is now.
        current: String,
    },
    /// A file was added with a version lower than an already applied one.
    #[error("out-of-order migration {file} (version {version}): version {applied_after} is already applied; \
             give the new file a version above {applied_after}")]
    OutOfOrder {
        /// The new file.
        file: String,
        /// Its version.
        version: u32,
        /// The highest applied version.
        applied_after: u32,
    },
    /// The ledger names a version no file provides.
    #[error(
        "version {version} ({name}) is recorded in the ledger but no migration file provides it"
    )]
    MissingFile {
        /// The version.
        version: u32,
        /// Its name in the ledger.
        name: String,
    },
    /// `--to` names a version that does not exist.
    #[error("target version {version} does not exist (highest is {highest})")]
    UnknownTarget {
        /// The requested version.
        version: u32,
        /// The highest version in the source.
        highest: u32,
    },
    /// The server is too old for a migration that has no fallback.
    #[error("{file} needs ClickHouse >= {required}, the cluster runs {server}, and there is no fallback file")]
    NoVariant {
        /// The file.
        file: String,
        /// Lowest server version in the cluster.
        server: String,
        /// Minimum it declares.
        required: String,
    },
    /// `lint` found problems; the report lists each one.
    #[error("lint found {count} problem(s):\n{report}")]
    Lint {
        /// Number of findings.
        count: usize,
        /// One line per finding.
        report: String,
    },
    /// A ClickHouse request failed.
    #[error(transparent)]
    ClickHouse(#[from] chgate_clickhouse_http::Error),
    /// A host reported an error for an `ON CLUSTER` statement.
    #[error("{file} statement {statement} failed on {host}: code {code}: {message}")]
    HostFailed {
        /// The migration file.
        file: String,
        /// 1-based statement number.
        statement: usize,
        /// Node name (or `host:port` when it is not in the topology).
        host: String,
        /// ClickHouse error code.
        code: u32,
        /// ClickHouse's message.
        message: String,
    },
    /// An `ON CLUSTER` statement did not finish on every host in time.
    #[error("{file} statement {statement}: hosts still pending after {waited_s} s: {}; \
             they run it when they come back (task {task}); rerun `up` to finish", hosts.join(", "))]
    DdlPending {
        /// The migration file.
        file: String,
        /// 1-based statement number.
        statement: usize,
        /// Keeper path of the DDL task.
        task: String,
        /// Node names that have not finished.
        hosts: Vec<String>,
        /// Seconds waited in total.
        waited_s: u64,
    },
    /// Pre-flight refused: some host is unreachable or misconfigured.
    #[error("pre-flight failed; no DDL was run:\n{report}")]
    Preflight {
        /// Per-host table.
        report: String,
    },
    /// Another migrator holds the lock.
    #[error("migration lock {path} is held by {holder}; gave up after {waited_s} s")]
    LockTimeout {
        /// Lock path in Keeper.
        path: String,
        /// The holder's identity (host, pid, version, start time).
        holder: String,
        /// Seconds waited.
        waited_s: u64,
    },
    /// The Keeper session ended or the lock node vanished: stop before the next statement.
    #[error("lost the migration lock {path}: {reason}; stopped before the next statement")]
    LockLost {
        /// Lock path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A Keeper request failed.
    #[error("Keeper ({context}): {source}")]
    Keeper {
        /// What we were doing.
        context: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
    /// The ledger shows a newer fencing token than ours: someone else migrated meanwhile.
    #[error("fenced off: the ledger has fencing token {seen}, ours is {ours}")]
    Fenced {
        /// Highest token in the ledger.
        seen: u64,
        /// Our token.
        ours: u64,
    },
    /// `verify` found differences between replicas.
    #[error("schema differs between hosts:\n{report}")]
    Verify {
        /// The differences, by host.
        report: String,
    },
    /// The topology (or one of its secrets) is unusable.
    #[error(transparent)]
    Topology(#[from] chgate_topology::TopologyError),
    /// A PostgreSQL request failed.
    #[error("PostgreSQL ({context}): {source}")]
    Postgres {
        /// What we were doing.
        context: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// refinery failed applying or reading PostgreSQL migrations.
    #[error("PostgreSQL migrations: {0}")]
    Refinery(String),
    /// PostgreSQL TLS could not be set up (the `[tls] ca` file).
    #[error("PostgreSQL TLS: {0}")]
    PgTls(String),
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
