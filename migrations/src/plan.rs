//! The planner: given the source and the ledger, which versions and statements run (pure).
//!
//! Decision rules:
//! - a version the ledger shows `applied` is skipped if its checksum matches, else
//!   [`Error::ChecksumDrift`];
//! - `started`/`progress`/`failed` versions resume at the first statement not recorded as done,
//!   with the variant recorded in the ledger (the file must be unchanged);
//! - `pending` versions (a host had not run a statement) are re-checked, not re-run;
//! - a version missing from the ledger while a later one is applied is [`Error::OutOfOrder`];
//! - a ledger version without a file is [`Error::MissingFile`]; `--to V` stops after `V`.

use std::collections::BTreeMap;

use chgate_clickhouse_http::ServerVersion;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::source::{prefix_checksum, Migration, MigrationSet, SqlFile, Variant};
use crate::sql::Statement;

/// Status of a ledger event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The version started; no statement done yet.
    Started,
    /// `statement_index` statements are done.
    Progress,
    /// Every statement done on every host.
    Applied,
    /// Every statement was issued, but some hosts had not run one yet (`pending_hosts`).
    Pending,
    /// A statement failed (`error`); `statement_index` statements are done.
    Failed,
}

impl Status {
    /// Lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Started => "started",
            Status::Progress => "progress",
            Status::Applied => "applied",
            Status::Pending => "pending",
            Status::Failed => "failed",
        }
    }
}

/// One row of the ledger table (one event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    /// Migration version.
    pub version: u32,
    /// Its name.
    pub name: String,
    /// `modern` / `fallback`.
    pub variant: String,
    /// Checksum of the variant's file.
    pub checksum: String,
    /// Checksum of the statements done so far ([`crate::source::prefix_checksum`]).
    #[serde(default)]
    pub done_checksum: String,
    /// Statements in the file.
    pub statements_total: u32,
    /// Statements completed so far (the next to run has this 0-based index).
    pub statement_index: u32,
    /// Event status.
    pub status: Status,
    /// Node names that had not run a statement yet (status `pending`).
    pub pending_hosts: Vec<String>,
    /// Keeper paths of DDL tasks still pending on some host.
    pub ddl_tasks: Vec<String>,
    /// Error text (status `failed`).
    pub error: String,
    /// `user@host pid N chgate X`.
    pub applied_by: String,
    /// Fencing token of the lock holder that wrote the row.
    pub fencing_token: u64,
    /// Order of events within one holder.
    pub event_seq: u32,
    /// `YYYY-MM-DD hh:mm:ss` (UTC), filled by the server when omitted.
    #[serde(default)]
    pub event_time: String,
    /// Milliseconds since the version started.
    pub duration_ms: u64,
}

/// Latest row per version: the one with the largest `(fencing_token, event_seq)`.
pub fn latest(rows: &[LedgerRow]) -> BTreeMap<u32, LedgerRow> {
    let mut out: BTreeMap<u32, LedgerRow> = BTreeMap::new();
    for r in rows {
        let newer = out
            .get(&r.version)
            .is_none_or(|o| (r.fencing_token, r.event_seq) > (o.fencing_token, o.event_seq));
        if newer {
            out.insert(r.version, r.clone());
        }
    }
    out
}

/// What to do for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Not in the ledger: run every statement.
    Fresh,
    /// Started, progressed or failed before: run from `Step::statements[0]`.
    Resume {
        /// Status the ledger showed.
        was: Status,
    },
    /// Every statement issued; wait until the recorded hosts/tasks have finished.
    AwaitPending {
        /// Hosts recorded as pending.
        hosts: Vec<String>,
        /// DDL task paths to watch.
        tasks: Vec<String>,
    },
}

/// One version of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Version.
    pub version: u32,
    /// Name.
    pub name: String,
    /// Which file.
    pub variant: Variant,
    /// That file's name.
    pub file_name: String,
    /// That file's checksum.
    pub checksum: String,
    /// Statements in the file.
    pub statements_total: usize,
    /// The statements still to run (with their 0-based index in the file).
    pub statements: Vec<Statement>,
    /// Why.
    pub kind: StepKind,
    /// Hosts a previous run left pending for this version (re-checked before `applied`).
    pub pending_hosts: Vec<String>,
    /// Their DDL tasks.
    pub pending_tasks: Vec<String>,
}

/// The ordered work of an `up`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Versions to (re)run, in order.
    pub steps: Vec<Step>,
    /// Versions already applied and unchanged.
    pub up_to_date: Vec<u32>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Builds the plan for `up [--to target]` on a cluster whose lowest server version is `server`.
///
/// # Errors
/// [`Error::ChecksumDrift`], [`Error::OutOfOrder`], [`Error::MissingFile`],
/// [`Error::UnknownTarget`], [`Error::NoVariant`].
pub fn plan(
    set: &MigrationSet,
    ledger: &BTreeMap<u32, LedgerRow>,
    server: ServerVersion,
    target: Option<u32>,
) -> Result<Plan> {
    check_ledger_against_source(set, ledger)?;
    let target = match target {
        Some(v) if set.get(v).is_none() => {
            return Err(Error::UnknownTarget {
                version: v,
                highest: set.highest(),
            })
        }
        Some(v) => v,
        None => set.highest(),
    };
    let highest_applied = ledger.keys().next_back().copied().unwrap_or(0);
    let mut out = Plan::default();
    for m in &set.migrations {
        let step = match ledger.get(&m.version) {
            Some(row) => step_from_ledger(m, row)?,
            None if m.version < highest_applied => {
                return Err(Error::OutOfOrder {
                    file: m.modern.file_name.clone(),
                    version: m.version,
                    applied_after: highest_applied,
                })
            }
            None if m.version > target => continue,
            None => Some(fresh(m, server)?),
        };
        match step {
            Some(s) => out.steps.push(s),
            None => out.up_to_date.push(m.version),
        }
    }
    Ok(out)
}

/// Every ledger version must have a file, and the file must be unchanged.
fn check_ledger_against_source(
    set: &MigrationSet,
    ledger: &BTreeMap<u32, LedgerRow>,
) -> Result<()> {
    for (version, row) in ledger {
        let m = set.get(*version).ok_or_else(|| Error::MissingFile {
            version: *version,
            name: row.name.clone(),
        })?;
        let file = recorded_file(m, row)?;
        let finished = matches!(row.status, Status::Applied | Status::Pending);
        let fixed_after_failure =
            !finished && prefix_checksum(file, row.statement_index as usize) == row.done_checksum;
        if file.checksum != row.checksum && !fixed_after_failure {
            return Err(Error::ChecksumDrift {
                file: file.file_name.clone(),
                version: *version,
                applied: row.checksum.clone(),
                current: file.checksum.clone(),
            });
        }
    }
    Ok(())
}

/// The file of the variant the ledger recorded.
fn recorded_file<'a>(m: &'a Migration, row: &LedgerRow) -> Result<&'a SqlFile> {
    Variant::parse(&row.variant)
        .and_then(|v| m.file(v))
        .ok_or_else(|| Error::MissingFile {
            version: m.version,
            name: format!("{} ({} variant)", row.name, row.variant),
        })
}

fn step_from_ledger(m: &Migration, row: &LedgerRow) -> Result<Option<Step>> {
    let file = recorded_file(m, row)?;
    let variant = Variant::parse(&row.variant).unwrap_or(Variant::Modern);
    let (kind, from) = match row.status {
        Status::Applied => return Ok(None),
        Status::Pending => (
            StepKind::AwaitPending {
                hosts: row.pending_hosts.clone(),
                tasks: row.ddl_tasks.clone(),
            },
            file.statements.len(),
        ),
        was => (StepKind::Resume { was }, row.statement_index as usize),
    };
    let mut s = step(m, variant, file, from, kind);
    s.pending_hosts.clone_from(&row.pending_hosts);
    s.pending_tasks.clone_from(&row.ddl_tasks);
    Ok(Some(s))
}

fn fresh(m: &Migration, server: ServerVersion) -> Result<Step> {
    let variant = m.choose(server)?;
    let file = m.file(variant).unwrap_or(&m.modern);
    Ok(step(m, variant, file, 0, StepKind::Fresh))
}

fn step(m: &Migration, variant: Variant, file: &SqlFile, from: usize, kind: StepKind) -> Step {
    Step {
        version: m.version,
        name: m.name.clone(),
        variant,
        file_name: file.file_name.clone(),
        checksum: file.checksum.clone(),
        statements_total: file.statements.len(),
        statements: file.statements.iter().skip(from).cloned().collect(),
        kind,
        pending_hosts: Vec::new(),
        pending_tasks: Vec::new(),
    }
}

/// One line of `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// Version.
    pub version: u32,
    /// Name.
    pub name: String,
    /// `applied`, `pending`, `failed`, `progress`, `started`, or `not applied`.
    pub state: String,
    /// Variant, statements done, who, when, error.
    pub detail: String,
}

/// The status of every version of `set` given the ledger (pure).
pub fn status(set: &MigrationSet, ledger: &BTreeMap<u32, LedgerRow>) -> Vec<StatusLine> {
    let mut out: Vec<StatusLine> = set
        .migrations
        .iter()
        .map(|m| match ledger.get(&m.version) {
            None => StatusLine {
                version: m.version,
                name: m.name.clone(),
                state: "not applied".into(),
                detail: String::new(),
            },
            Some(r) => status_line(m, r),
        })
        .collect();
    for (v, r) in ledger.range(set.highest() + 1..) {
        out.push(StatusLine {
            version: *v,
            name: r.name.clone(),
            state: r.status.as_str().into(),
            detail: "no migration file for this version".into(),
        });
    }
    out
}

fn status_line(m: &Migration, r: &LedgerRow) -> StatusLine {
    let drift = recorded_file(m, r).map_or(true, |f| f.checksum != r.checksum);
    let mut detail = format!(
        "{} {}/{} statements, fencing {}, by {} at {}",
        r.variant,
        r.statement_index,
        r.statements_total,
        r.fencing_token,
        r.applied_by,
        r.event_time
    );
    if !r.pending_hosts.is_empty() {
        detail.push_str(&format!("; pending on {}", r.pending_hosts.join(", ")));
    }
    if !r.error.is_empty() {
        detail.push_str(&format!("; error: {}", r.error));
    }
    if drift {
        detail.push_str("; FILE CHANGED SINCE APPLIED (checksum drift)");
    }
    StatusLine {
        version: m.version,
        name: m.name.clone(),
        state: r.status.as_str().into(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set() -> MigrationSet {
        let files: Vec<(String, String)> = [
            ("V1__a.sql", "-- chgate:min-server-version 20.1\nS1; S2; S3"),
            ("V1__a.fallback.sql", "F1; F2"),
            ("V2__b.sql", "T1; T2"),
            ("V3__c.sql", "U1"),
        ]
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
        MigrationSet::from_files(&files).expect("valid")
    }

    fn v(s: &str) -> ServerVersion {
        ServerVersion::parse(s).expect("version")
    }

    fn row(
        set: &MigrationSet,
        version: u32,
        variant: Variant,
        status: Status,
        idx: u32,
    ) -> LedgerRow {
        let m = set.get(version).expect("exists");
        let f = m.file(variant).expect("variant");
        LedgerRow {
            version,
            name: m.name.clone(),
            variant: variant.as_str().into(),
            checksum: f.checksum.clone(),
            done_checksum: prefix_checksum(f, idx as usize),
            statements_total: f.statements.len() as u32,
            statement_index: idx,
            status,
            pending_hosts: vec![],
            ddl_tasks: vec![],
            error: String::new(),
            applied_by: "t".into(),
            fencing_token: 1,
            event_seq: 0,
            event_time: String::new(),
            duration_ms: 0,
        }
    }

    fn ledger(rows: Vec<LedgerRow>) -> BTreeMap<u32, LedgerRow> {
        latest(&rows)
    }

    #[test]
    fn fresh_cluster_runs_everything_with_the_right_variant() {
        let s = set();
        let p = plan(&s, &BTreeMap::new(), v("18.16.1"), None).expect("plan");
        let got: Vec<(u32, Variant, usize)> = p
            .steps
            .iter()
            .map(|s| (s.version, s.variant, s.statements.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Variant::Fallback, 2),
                (2, Variant::Modern, 2),
                (3, Variant::Modern, 1)
            ]
        );
        let p = plan(&s, &BTreeMap::new(), v("24.8"), Some(2)).expect("plan");
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[0].variant, Variant::Modern);
        assert_eq!(p.steps[0].statements[2].sql, "S3");
    }

    #[test]
    fn applied_versions_are_skipped_and_failed_ones_resume_at_the_failed_statement() {
        let s = set();
        let l = ledger(vec![
            row(&s, 1, Variant::Fallback, Status::Applied, 2),
            row(&s, 2, Variant::Modern, Status::Failed, 1),
        ]);
        let p = plan(&s, &l, v("26.1"), None).expect("plan");
        assert_eq!(p.up_to_date, vec![1]);
        assert_eq!(
            p.steps[0].kind,
            StepKind::Resume {
                was: Status::Failed
            }
        );
        assert_eq!(p.steps[0].statements.len(), 1);
        assert_eq!(
            (
                p.steps[0].statements[0].index,
                p.steps[0].statements[0].sql.as_str()
            ),
            (1, "T2")
        );
        assert_eq!(p.steps[1].kind, StepKind::Fresh);
    }

    #[test]
    fn resume_keeps_the_recorded_variant_even_after_a_server_upgrade() {
        let s = set();
        let l = ledger(vec![row(&s, 1, Variant::Fallback, Status::Progress, 1)]);
        let p = plan(&s, &l, v("26.1"), Some(1)).expect("plan");
        assert_eq!(p.steps[0].variant, Variant::Fallback);
        assert_eq!(p.steps[0].statements[0].sql, "F2");
    }

    #[test]
    fn edited_applied_file_is_drift_naming_file_and_both_checksums() {
        let s = set();
        let mut r = row(&s, 2, Variant::Modern, Status::Applied, 2);
        r.checksum = "sha256:old".into();
        let err = plan(&s, &ledger(vec![r]), v("26.1"), None).expect_err("drift");
        let msg = err.to_string();
        assert!(
            matches!(err, Error::ChecksumDrift { version: 2, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("V2__b.sql") && msg.contains("sha256:old"),
            "{msg}"
        );
        assert!(msg.contains(&s.migrations[1].modern.checksum), "{msg}");
    }

    #[test]
    fn a_failed_version_may_be_fixed_after_the_failed_statement_but_not_before() {
        let s = set();
        let failed = row(&s, 2, Variant::Modern, Status::Failed, 1);
        let edit = |text: &str| {
            let mut files: Vec<(String, String)> = s
                .files()
                .map(|(_, _, f)| (f.file_name.clone(), f.text.clone()))
                .collect();
            files.retain(|(n, _)| n != "V2__b.sql");
            files.push(("V2__b.sql".into(), text.into()));
            MigrationSet::from_files(&files).expect("valid")
        };
        let fixed = edit("T1; T2 fixed");
        let applied = row(&s, 1, Variant::Modern, Status::Applied, 3);
        let l = ledger(vec![applied.clone(), failed.clone()]);
        let p = plan(&fixed, &l, v("26.1"), None).expect("fix allowed");
        assert_eq!(p.steps[0].statements[0].sql, "T2 fixed");
        let broken = edit("T1 changed; T2");
        let err = plan(&broken, &ledger(vec![applied, failed]), v("26.1"), None)
            .expect_err("ran already");
        assert!(
            matches!(err, Error::ChecksumDrift { version: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_new_file_below_an_applied_version_is_out_of_order() {
        let s = set();
        let l = ledger(vec![
            row(&s, 1, Variant::Modern, Status::Applied, 3),
            row(&s, 3, Variant::Modern, Status::Applied, 1),
        ]);
        let err = plan(&s, &l, v("26.1"), None).expect_err("out of order");
        assert!(
            matches!(err, Error::OutOfOrder { version: 2, applied_after: 3, ref file } if file == "V2__b.sql"),
            "{err}"
        );
    }

    #[test]
    fn ledger_version_without_file_and_unknown_target_are_errors() {
        let s = set();
        let mut r = row(&s, 3, Variant::Modern, Status::Applied, 1);
        r.version = 9;
        assert!(matches!(
            plan(&s, &ledger(vec![r]), v("26.1"), None),
            Err(Error::MissingFile { version: 9, .. })
        ));
        assert!(matches!(
            plan(&s, &BTreeMap::new(), v("26.1"), Some(7)),
            Err(Error::UnknownTarget {
                version: 7,
                highest: 3
            })
        ));
    }

    #[test]
    fn pending_version_waits_instead_of_rerunning() {
        let s = set();
        let mut r = row(&s, 1, Variant::Modern, Status::Pending, 3);
        r.pending_hosts = vec!["ch-s1r2".into()];
        let p = plan(&s, &ledger(vec![r]), v("26.1"), Some(1)).expect("plan");
        assert!(p.steps[0].statements.is_empty());
        assert!(
            matches!(&p.steps[0].kind, StepKind::AwaitPending { hosts, .. } if hosts == &["ch-s1r2"])
        );
    }

    #[test]
    fn a_resumed_version_keeps_the_hosts_an_earlier_run_left_pending() {
        let s = set();
        let mut r = row(&s, 1, Variant::Modern, Status::Failed, 2);
        r.pending_hosts = vec!["ch-s2r2".into()];
        r.ddl_tasks = vec!["/q/query-1".into()];
        let p = plan(&s, &ledger(vec![r]), v("26.1"), Some(1)).expect("plan");
        assert_eq!(p.steps[0].pending_tasks, vec!["/q/query-1"]);
        assert_eq!(p.steps[0].pending_hosts, vec!["ch-s2r2"]);
    }

    #[test]
    fn status_lists_every_version_and_flags_drift() {
        let s = set();
        let mut r = row(&s, 2, Variant::Modern, Status::Applied, 2);
        r.checksum = "sha256:x".into();
        let lines = status(
            &s,
            &ledger(vec![row(&s, 1, Variant::Modern, Status::Applied, 3), r]),
        );
        let states: Vec<&str> = lines.iter().map(|l| l.state.as_str()).collect();
        assert_eq!(states, vec!["applied", "applied", "not applied"]);
        assert!(lines[1].detail.contains("checksum drift"));
    }

    proptest! {
        /// Whatever prefix of events was recorded (a run killed anywhere), the plan runs each
        /// remaining statement exactly once and never one already recorded as done.
        #[test]
        fn resume_runs_exactly_the_statements_not_yet_done(done in 0u32..=6) {
            let s = set();
            // Statements in order: V1 has 3, V2 has 2, V3 has 1 (modern).
            let mut rows = Vec::new();
            let mut left = done;
            for m in &s.migrations {
                let n = m.modern.statements.len() as u32;
                if left == 0 { break; }
                let k = left.min(n);
                let status = if k == n { Status::Applied } else { Status::Progress };
                rows.push(row(&s, m.version, Variant::Modern, status, k));
                left -= k;
            }
            let p = plan(&s, &latest(&rows), v("26.1"), None).expect("plan");
            let remaining: usize = p.steps.iter().map(|st| st.statements.len()).sum();
            prop_assert_eq!(remaining, 6 - done as usize);
        }
    }

    #[test]
    fn latest_row_wins_by_fencing_token_then_sequence() {
        let s = set();
        let mut a = row(&s, 1, Variant::Modern, Status::Failed, 1);
        a.fencing_token = 5;
        let mut b = row(&s, 1, Variant::Modern, Status::Applied, 3);
        b.fencing_token = 4;
        b.event_seq = 99;
        assert_eq!(latest(&[a.clone(), b])[&1].status, Status::Failed);
        let mut c = a.clone();
        c.event_seq = 1;
        c.status = Status::Progress;
        assert_eq!(latest(&[c, a])[&1].status, Status::Progress);
    }
}
