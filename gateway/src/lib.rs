//! # chgate-gateway
//!
//! The ingest gateway. Data flow: HTTP request ([`server`]) → admission (body limit, memory
//! budget → 413/429) → decompression → protocol decoder ([`protocol`]: remote_write, Influx, OTLP)
//! or table-row decoder (NDJSON, ClickHouse `INSERT ... FORMAT`, [`chcompat`]) → rows typed against
//! the target table's schema ([`catalog`], [`types`], [`convert`]) → per-table [`batcher`] →
//! encoder ([`encode`]: Native or RowBinary) → ClickHouse [`writer`] (Distributed, or shard-aware
//! straight to each shard's local table, with [`retry`]) → the handler answers 2xx only after the
//! insert of every batch holding its rows succeeded (`ack = "inserted"`), or after the batch's
//! encoded blocks were fsynced into the [`spool`] (`ack = "spooled"`), from which [`delivery`]
//! sends them exactly once (byte-identical resends), isolating bad rows into the [`dlq`];
//! [`backpressure`] turns ClickHouse's state into per-shard breakers, 429s and 503s.

pub mod arrow;
pub mod auth;
pub mod backpressure;
pub mod batcher;
pub mod block;
pub mod catalog;
pub mod chcompat;
pub mod config;
pub mod convert;
pub mod delivery;
pub mod dlq;
pub mod encode;
mod error;
pub mod guard;
pub mod ingest;
pub mod metrics;
pub mod protocol;
pub mod retry;
pub mod run;
pub mod server;
pub mod spool;
pub mod types;
pub mod value;
pub mod writer;

pub use chgate_clickhouse_http::quote_ident;
pub use error::GatewayError;
