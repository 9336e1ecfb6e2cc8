//! What the commands print: progress events of `up`, the plan report (pre-flight table + steps)
//! and the status report (per version, per host, lock holder).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use chgate_clickhouse_http::ServerVersion;

use crate::plan::{Plan, Status, StatusLine, Step, StepKind};
use crate::preflight::{self, HostCheck};
use crate::sql::Placeholders;

/// Something worth telling the operator while `up` runs.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The lock is ours.
    Locked {
        /// Fencing token.
        token: u64,
    },
    /// A statement finished on every host (or was left pending on some).
    Statement {
        /// Version.
        version: u32,
        /// File.
        file: String,
        /// 0-based index.
        index: usize,
        /// Statements in the file.
        total: usize,
        /// Hosts still pending (empty when done everywhere).
        pending: Vec<String>,
    },
    /// A version reached a final state.
    Version {
        /// Version.
        version: u32,
        /// `applied` or `pending`.
        status: Status,
        /// Time it took.
        took: Duration,
    },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Locked { token } => write!(f, "lock acquired (fencing token {token})"),
            Progress::Statement {
                file,
                index,
                total,
                pending,
                ..
            } if pending.is_empty() => {
                write!(
                    f,
                    "{file}: statement {}/{total} done on every host",
                    index + 1
                )
            }
            Progress::Statement {
                file,
                index,
                total,
                pending,
                ..
            } => write!(
                f,
                "{file}: statement {}/{total} issued; pending on {}",
                index + 1,
                pending.join(", ")
            ),
            Progress::Version {
                version,
                status,
                took,
            } => {
                write!(
                    f,
                    "version {version}: {} in {:.1} s",
                    status.as_str(),
                    took.as_secs_f64()
                )
            }
        }
    }
}

/// What `plan` (and `up --dry-run`) found.
#[derive(Debug, Clone)]
pub struct PlanReport {
    /// Per-host pre-flight.
    pub hosts: Vec<HostCheck>,
    /// Lowest server version.
    pub server: ServerVersion,
    /// The plan.
    pub plan: Plan,
    /// Placeholder values used.
    pub placeholders: Placeholders,
    /// Cluster name and hosts, for the listing.
    pub cluster: String,
}

impl fmt::Display for PlanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", preflight::render(&self.hosts))?;
        let hosts: Vec<&str> = self.hosts.iter().map(|h| h.node.as_str()).collect();
        writeln!(
            f,
            "server version (lowest): {}; statements run ON CLUSTER {} on {}",
            self.server,
            self.cluster,
            hosts.join(", ")
        )?;
        if self.plan.is_empty() {
            return writeln!(f, "nothing to do: every version is applied");
        }
        for s in &self.plan.steps {
            writeln!(
                f,
                "V{} {} ({}, {}): {}",
                s.version,
                s.name,
                s.file_name,
                s.variant.as_str(),
                describe_kind(s)
            )?;
            for st in &s.statements {
                let sql = self.placeholders.apply(&st.sql).unwrap_or_else(|e| e);
                let first = sql.lines().next().unwrap_or_default();
                writeln!(f, "    [{}/{}] {first}", st.index + 1, s.statements_total)?;
            }
        }
        Ok(())
    }
}

fn describe_kind(s: &Step) -> String {
    match &s.kind {
        StepKind::Fresh => format!("{} statement(s)", s.statements.len()),
        StepKind::Resume { was } => format!(
            "resume after `{}` at statement {}",
            was.as_str(),
            s.statements
                .first()
                .map_or(s.statements_total, |st| st.index)
                + 1
        ),
        StepKind::AwaitPending { hosts, .. } => {
            format!("wait for pending hosts {}", hosts.join(", "))
        }
    }
}

/// What `status` found.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// Per version (from the coordinator's ledger).
    pub lines: Vec<StatusLine>,
    /// Per host: version → status as that host's ledger replica shows it (`None`: unreachable).
    pub per_host: Vec<(String, Option<BTreeMap<u32, Status>>)>,
    /// The lock holder, if any.
    pub lock_holder: Option<String>,
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<8} {:<20} {:<12} DETAIL", "VERSION", "NAME", "STATE")?;
        for l in &self.lines {
            writeln!(
                f,
                "{:<8} {:<20} {:<12} {}",
                l.version, l.name, l.state, l.detail
            )?;
        }
        let mut header = format!("{:<12}", "HOST");
        for l in &self.lines {
            let _ = write!(header, " V{:<10}", l.version);
        }
        writeln!(f, "\n{header}")?;
        for (host, m) in &self.per_host {
            let mut row = format!("{host:<12}");
            for l in &self.lines {
                let cell = match m {
                    None => "unreachable",
                    Some(m) => m.get(&l.version).map_or("-", |s| s.as_str()),
                };
                let _ = write!(row, " {cell:<11}");
            }
            writeln!(f, "{row}")?;
        }
        match &self.lock_holder {
            Some(h) => writeln!(f, "lock held by {h}"),
            None => writeln!(f, "lock free"),
        }
    }
}
