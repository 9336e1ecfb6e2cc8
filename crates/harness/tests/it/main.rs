//! Live tests proving the local rig: ON CLUSTER DDL, Distributed placement and replication,
//! Keeper node loss and rejoin, PostgreSQL, status and pid-file handling.

mod cluster;
mod pg_tls;
mod stack;
