//! Live tests of chgate-ops against the rig: status, backup/restore, recovery drills.
