//! # chgate-migrations
//!
//! The schema manager used at release time (`chgate migrate ...`).
//!
//! Main types:
//! - [`source::MigrationSet`]: versioned files `V<n>__<name>[.fallback].sql`, embedded from
//!   `migrations/clickhouse/` or read from `--dir`; checksums are `sha256:<hex>`.
//! - [`lint`]: refuses DDL that is unsafe on a replicated cluster.
//! - [`plan::plan`]: the pure decision of which versions and statements run, given the ledger.
//!
//! Data flow of `up`: source → lint → pre-flight (every host) → Keeper lock → ledger bootstrap →
//! plan → for each statement: lock check → `ON CLUSTER` DDL → per-host result → ledger row.

pub mod error;
pub mod lint;
pub mod plan;
pub mod source;
pub mod sql;

pub use error::{Error, Result};
