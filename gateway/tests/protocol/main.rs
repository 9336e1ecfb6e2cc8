//! Integration tests of the protocol decoders: real client bodies, property tests, and the
//! series_id oracle (ClickHouse via chdb), and the zero-copy OTLP reader against prost.

mod chdb_oracle;
mod fixtures;
mod otlp_wire;
mod props;
