//! Integration tests of chgate-migrations: golden DDL, the chdb oracle (modern ClickHouse,
//! in-process) and the live tests against the shared test rig (2x2 ClickHouse 18.16,
//! 3 ZooKeeper, PostgreSQL 15).

mod chdb;
mod faults;
mod golden;
mod live;
mod pg;
mod pg_tls;
