//! Live tests of chgate-ops against the rig: `chgate status`, backup and restore of a loaded
//! cluster, and one recovery drill per failure scenario of the architecture (each drill holds
//! `rig.exclusive()` because it stops processes).

mod backup;
mod common;
mod drills;
mod pg_tls;
mod status;
