//! # chgate-gateway
//!
//! The ingest gateway. Data flow: HTTP request ([`server`]) → admission (body limit, memory
//! budget → 413/429) → decompression → protocol decoder ([`protocol`]: remote_write, Influx, OTLP)
//! or table-row decoder (NDJSON, ClickHouse `INSERT ... FORMAT`, [`chcompat`]) → rows typed against
//! the target table's schema ([`catalog`], [`types`], [`convert`]) → per-table [`batcher`] →
//! encoder ([`encode`]: Native or RowBinary) → ClickHouse [`writer`] (Distributed, or shard-aware
//! straight to each shard's local table, with [`retry`]) → the handler answers 2xx only after the
//! insert of every batch holding its rows succeeded.

pub mod arrow;
pub mod batcher;
pub mod catalog;
pub mod chcompat;
pub mod config;
pub mod convert;
pub mod encode;
mod error;
pub mod ingest;
pub mod metrics;
pub mod protocol;
pub mod retry;
pub mod run;
pub mod server;
pub mod types;
pub mod value;
pub mod writer;

pub use chgate_clickhouse_http::quote_ident;
pub use error::GatewayError;
