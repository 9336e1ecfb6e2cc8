//! # chgate-loadgen
//!
//! The load generator behind `chgate loadgen`: it measures how many rows per second reach
//! ClickHouse through the gateway, at what latency, and checks that every acked row arrived.
//!
//! Data flow: [`data::Generator`] (TSBS-like devops metrics, seeded) → [`body::Encoder`] on a
//! generator thread (Influx lines, remote_write, NDJSON, or Native blocks for the `direct`
//! baseline) → bounded queue → [`run`] (closed loop with N workers, or open loop on a fixed
//! schedule with latency from the intended send time) → [`target::Sender`] (HTTP to a gateway,
//! or `INSERT` straight into ClickHouse) → [`stats::Stats`] (HDR histogram, per-second
//! timeline) → [`verify`] (rows per shard and replica in `samples_local` vs acked) →
//! [`report`] (summary table, compare ratios, HTML with SVG charts) and a JSON report.
//!
//! [`job`] ties it together for one run, and [`job::compare`] runs the direct baseline and the
//! gateway (in-process, both write modes) back to back on the same data.

pub mod body;
pub mod data;
mod error;
pub mod job;
pub mod report;
pub mod rss;
pub mod run;
pub mod stats;
pub mod target;
pub mod verify;

pub use error::LoadgenError;
