//! # chgate-gateway
//!
//! The ingest gateway (in progress): protocol decoders ([`protocol`]) turn request bodies into
//! rows; the batcher, encoder and ClickHouse writer follow.

pub mod protocol;
