//! Integration tests of chgate-migrations: the chdb oracle (modern ClickHouse, in-process) and the
//! live tests against the shared test rig (2x2 ClickHouse 18.16, 3 ZooKeeper, PostgreSQL).

mod chdb;
mod golden;
mod live;
