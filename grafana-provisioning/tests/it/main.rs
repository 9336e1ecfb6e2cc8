//! Integration tests of chgate-grafana (one binary): independent decryption of what we encrypt,
//! provisioning against Grafana's real table layout on the rig's PostgreSQL, golden files of the
//! rendered provisioning tree, dashboard schema type-check and dashboard SQL on the rig.
//!
//! Needs: the live rig (`chgate_harness::rig()`), `python3` with `cryptography` and `PyYAML`,
//! `haproxy`, `node`/`npm` (the locked `schema-check/` packages are installed on first use).

mod common;
mod crypto_independent;
mod dashboards;
mod golden;
mod provision;
