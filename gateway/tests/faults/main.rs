//! The gateway's fault suite (issue 7): live cases against the rig, each with its own gateway
//! process (`chgate serve`, `ack = "spooled"`, shard-aware) and database, ending with an exact
//! reconciliation — rows acked vs `count()` and distinct keys stored. "Lost" = an acked key not
//! stored; "duplicated" = `count() - uniqExact(key)`.
//!
//! By default the cases run at CI size (a few kills, short outages). `CHGATE_FAULTS=full` runs
//! them at full size (20 kills, a 30 s shard outage, ...), and `CHGATE_FAULTS_REPORT=DIR` writes
//! one report line per case; `scripts/reliability.sh` does both and writes bench/RELIABILITY.md.
//! Every case takes `rig.exclusive()`: they stop and start servers.

mod cases;
mod support;
