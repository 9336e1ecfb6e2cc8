//! # chgate-migrations
//!
//! The schema manager used at release time (`chgate migrate ...`).
//!
//! Main types:
//! - [`source::MigrationSet`]: versioned files `V<n>__<name>[.fallback].sql`, embedded from
//!   `migrations/clickhouse/` or read from `--dir`; checksums are `sha256:<hex>`.
//! - [`lint`]: refuses DDL that is unsafe on a replicated cluster.
//! - [`plan::plan`]: the pure decision of which versions and statements run, given the ledger.
//! - [`Migrator`]: `plan` / `up` / `status` / `verify` against the cluster of a topology.
//! - [`lock::KeeperLock`]: the Keeper lock with holder identity and fencing token.
//! - [`ledger`]: the replicated ledger table; [`ddl`]: `ON CLUSTER` with per-host results;
//!   [`preflight`]: per-host readiness; [`verify`]: per-replica schema comparison.
//!
//! Data flow of `up`: source → lint → pre-flight (every host) → Keeper lock → ledger bootstrap →
//! plan → for each statement: lock check → `ON CLUSTER` DDL → per-host result → ledger row.

pub mod cluster;
pub mod ddl;
pub mod error;
pub mod ledger;
pub mod lint;
pub mod lock;
pub mod pg_tls;
pub mod plan;
pub mod postgres;
pub mod preflight;
pub mod report;
pub mod runner;
pub mod schema;
pub mod source;
pub mod sql;
pub mod verify;

pub use error::{Error, Result};
pub use runner::{Migrator, Options, Progress};
