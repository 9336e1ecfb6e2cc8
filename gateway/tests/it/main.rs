//! Live tests of the gateway against the rig: each test runs its own in-process gateway on an
//! ephemeral port against the rig's ClickHouse cluster, in its own database; one test goes through
//! HAProxy to the rig's own gateway processes.

mod auth;
mod batching;
mod chcompat;
mod ndjson;
mod oracle;
mod placement;
mod prometheus;
mod protocols;
mod shutdown;
mod support;
mod tls;
