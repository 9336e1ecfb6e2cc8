//! PostgreSQL connections: the workspace crate `chgate-pg-tls` ([`connect`], [`libpq_env`]),
//! re-exported here so that the migrator's callers keep one import path.

pub use chgate_pg_tls::*;
