//! Integration tests of the protocol decoders: real client bodies, property tests, and the
//! series_id oracle (ClickHouse via chdb).

mod chdb_oracle;
mod fixtures;
mod props;
