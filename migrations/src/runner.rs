//! The commands: `plan`, `up`, `status`, `verify` against a live cluster (reports in
//! [`crate::report`]). Decisions are made by the pure modules ([`crate::plan`], [`crate::lint`],
//! [`crate::verify::compare`]); this file sequences the I/O: pre-flight → lock → ledger bootstrap → plan → statements → ledger rows.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chgate_clickhouse_http::ServerVersion;
use chgate_topology::LoadedTopology;

use crate::cluster::{Cluster, Node};
use crate::ddl::{self, DdlSettings, Outcome, StatementRef};
use crate::error::{Error, Result};
use crate::ledger;
use crate::lint;
use crate::lock::{Holder, KeeperLock, LockSettings, DEFAULT_LOCK_PATH};
use crate::plan::{self, LedgerRow, Plan, Status, Step, StepKind};
use crate::preflight::{self, HostCheck};
pub use crate::report::{PlanReport, Progress, StatusReport};
use crate::source::{prefix_checksum, MigrationSet};
use crate::sql::{Placeholders, Statement, DEFAULT_TTL_DAYS};

/// Everything a command needs besides the topology.
#[derive(Debug, Clone)]
pub struct Options {
    /// Overrides the topology's `cluster.database`.
    pub database: Option<String>,
    /// Read migrations from this directory instead of the embedded ones.
    pub dir: Option<PathBuf>,
    /// `${ttl_days}`. Default [`DEFAULT_TTL_DAYS`].
    pub ttl_days: u32,
    /// `ON CLUSTER` waits.
    pub ddl: DdlSettings,
    /// Keeper lock path. Default [`DEFAULT_LOCK_PATH`].
    pub lock_path: String,
    /// How long to wait for another migrator. Default 60 s.
    pub lock_timeout: Duration,
    /// Keeper session timeout. Default 10 s.
    pub session_timeout: Duration,
    /// Go on when some hosts are unreachable; their statements are recorded as pending.
    pub allow_unavailable: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            database: None,
            dir: None,
            ttl_days: DEFAULT_TTL_DAYS,
            ddl: DdlSettings::default(),
            lock_path: DEFAULT_LOCK_PATH.to_owned(),
            lock_timeout: Duration::from_secs(60),
            session_timeout: Duration::from_secs(10),
            allow_unavailable: false,
        }
    }
}

/// The schema manager bound to one cluster and one migration source.
#[derive(Debug)]
pub struct Migrator {
    cluster: Cluster,
    set: MigrationSet,
    placeholders: Placeholders,
    opts: Options,
}

impl Migrator {
    /// Loads the source and builds the cluster clients (no network).
    ///
    /// # Errors
    /// Source errors ([`Error::FileName`], [`Error::Gap`], ...), [`Error::Topology`].
    pub fn new(loaded: &LoadedTopology, opts: Options) -> Result<Self> {
        let set = match &opts.dir {
            Some(d) => MigrationSet::from_dir(d)?,
            None => MigrationSet::embedded()?,
        };
        let timeout = opts.ddl.server_wait + Duration::from_secs(30);
        let cluster = Cluster::from_topology(loaded, opts.database.as_deref(), timeout)?;
        let placeholders = cluster.placeholders(opts.ttl_days)?;
        Ok(Migrator {
            cluster,
            set,
            placeholders,
            opts,
        })
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The migration source.
    pub fn source(&self) -> &MigrationSet {
        &self.set
    }

    /// Lint findings of the source with this cluster's placeholder values.
    pub fn lint(&self) -> Vec<lint::Finding> {
        lint::lint(&self.set, &self.placeholders)
    }

    /// Pre-flight, refusing unless every host is fine (or only unreachable and allowed).
    async fn preflight(&self) -> Result<(Vec<HostCheck>, ServerVersion, &Node)> {
        let hosts = preflight::check(&self.cluster).await;
        let only_down = hosts
            .iter()
            .all(|h| h.problems.is_empty() || !h.reachable());
        let ok = preflight::all_ok(&hosts) || (self.opts.allow_unavailable && only_down);
        let server = hosts.iter().filter_map(|h| h.version).min();
        match (ok, server) {
            (true, Some(server)) => Ok((hosts, server, self.cluster.coordinator().await?)),
            _ => Err(Error::Preflight {
                report: preflight::render(&hosts),
            }),
        }
    }

    /// What `up --to target` would do.
    ///
    /// # Errors
    /// [`Error::Lint`], [`Error::Preflight`], planning errors, [`Error::ClickHouse`].
    pub async fn plan(&self, target: Option<u32>) -> Result<PlanReport> {
        lint::check(&self.set, &self.placeholders)?;
        let (hosts, server, coord) = self.preflight().await?;
        let rows = ledger::read(&self.cluster, coord)
            .await?
            .unwrap_or_default();
        let plan = plan::plan(&self.set, &plan::latest(&rows), server, target)?;
        Ok(PlanReport {
            hosts,
            server,
            plan,
            placeholders: self.placeholders.clone(),
            cluster: self.cluster.name.clone(),
        })
    }

    /// Applies pending migrations up to `target`.
    ///
    /// # Errors
    /// Everything [`Migrator::plan`] returns, plus [`Error::LockTimeout`], [`Error::LockLost`],
    /// [`Error::Fenced`], [`Error::HostFailed`], [`Error::DdlPending`].
    pub async fn up(
        &self,
        target: Option<u32>,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<PlanReport> {
        lint::check(&self.set, &self.placeholders)?;
        let (hosts, server, coord) = self.preflight().await?;
        let settings = LockSettings {
            keeper_hosts: self.cluster.keeper_hosts.clone(),
            path: self.opts.lock_path.clone(),
            timeout: self.opts.lock_timeout,
            session_timeout: self.opts.session_timeout,
        };
        let lock = KeeperLock::acquire(&settings, &Holder::this_process("up")).await?;
        progress(&Progress::Locked {
            token: lock.fencing_token(),
        });
        let down: Vec<String> = hosts
            .iter()
            .filter(|h| !h.reachable())
            .map(|h| h.node.clone())
            .collect();
        let mut run = Run {
            m: self,
            lock: &lock,
            coord,
            down: &down,
            seq: 0,
            progress,
        };
        let result = run.up(server, target).await;
        let released = lock.release().await;
        let plan = result?;
        released?;
        Ok(PlanReport {
            hosts,
            server,
            plan,
            placeholders: self.placeholders.clone(),
            cluster: self.cluster.name.clone(),
        })
    }

    async fn check_fence(&self, lock: &KeeperLock, coord: &Node) -> Result<()> {
        let seen = ledger::max_fencing_token(&self.cluster, coord).await?;
        if seen > lock.fencing_token() {
            return Err(Error::Fenced {
                seen,
                ours: lock.fencing_token(),
            });
        }
        Ok(())
    }

    /// Per version and per host status, and the lock holder.
    ///
    /// # Errors
    /// [`Error::ChecksumDrift`] is not an error here (it is shown); [`Error::ClickHouse`] when no
    /// host answers.
    pub async fn status(&self) -> Result<StatusReport> {
        let coord = self.cluster.coordinator().await?;
        let rows = ledger::read(&self.cluster, coord)
            .await?
            .unwrap_or_default();
        let lines = plan::status(&self.set, &plan::latest(&rows));
        let mut per_host = Vec::new();
        for n in &self.cluster.nodes {
            let view = match ledger::read(&self.cluster, n).await {
                Ok(r) => Some(
                    plan::latest(&r.unwrap_or_default())
                        .into_iter()
                        .map(|(v, r)| (v, r.status))
                        .collect(),
                ),
                Err(_) => None,
            };
            per_host.push((n.name.clone(), view));
        }
        let lock_holder =
            match crate::lock::connect(&self.cluster.keeper_hosts, self.opts.session_timeout).await
            {
                Ok(zk) => crate::lock::current_holder(&zk, &self.opts.lock_path)
                    .await?
                    .map(|(node, h)| format!("{h} ({node})")),
                Err(e) => Some(format!("unknown: {e}")),
            };
        Ok(StatusReport {
            lines,
            per_host,
            lock_holder,
        })
    }

    /// Compares the schema on every replica; returns the number of tables checked. The tables
    /// every host must have are those created by the versions the ledger shows applied.
    ///
    /// # Errors
    /// [`Error::Verify`] listing differences by host.
    pub async fn verify(&self) -> Result<usize> {
        let coord = self.cluster.coordinator().await?;
        let rows = ledger::read(&self.cluster, coord)
            .await?
            .unwrap_or_default();
        let up_to = plan::latest(&rows)
            .values()
            .filter(|r| matches!(r.status, Status::Applied | Status::Pending))
            .map(|r| r.version)
            .max()
            .unwrap_or(0);
        let mut expected = lint::created_tables(&self.set, &self.placeholders, up_to);
        expected.insert(ledger::TABLE.to_owned());
        crate::verify::verify(&self.cluster, &expected).await
    }
}

fn pending_error(at: StatementRef<'_>, task: String, hosts: Vec<String>, d: DdlSettings) -> Error {
    Error::DdlPending {
        file: at.file.to_owned(),
        statement: at.statement,
        task,
        hosts,
        waited_s: (d.server_wait + d.extra_wait).as_secs(),
    }
}

/// One `up` in progress: writes ledger rows with increasing `event_seq`.
struct Run<'a> {
    m: &'a Migrator,
    lock: &'a KeeperLock,
    /// Node that issues `ON CLUSTER` statements and writes the ledger.
    coord: &'a Node,
    /// Hosts unreachable at pre-flight (only with `--allow-unavailable`).
    down: &'a [String],
    seq: u32,
    progress: &'a (dyn Fn(&Progress) + Sync),
}

impl Run<'_> {
    /// Bootstraps the ledger, plans from it, runs every step.
    async fn up(&mut self, server: ServerVersion, target: Option<u32>) -> Result<Plan> {
        let m = self.m;
        for (i, sql) in ledger::bootstrap_sql(&m.cluster).iter().enumerate() {
            let at = StatementRef {
                file: "(ledger bootstrap)",
                statement: i + 1,
            };
            match ddl::run(&m.cluster, self.coord, sql, at, m.opts.ddl, self.down).await? {
                Outcome::Pending { task, hosts } if !m.opts.allow_unavailable => {
                    return Err(pending_error(at, task, hosts, m.opts.ddl));
                }
                _ => {}
            }
        }
        let rows = ledger::read(&m.cluster, self.coord)
            .await?
            .unwrap_or_default();
        m.check_fence(self.lock, self.coord).await?;
        let plan = plan::plan(&m.set, &plan::latest(&rows), server, target)?;
        for step in &plan.steps {
            self.step(step).await?;
        }
        Ok(plan)
    }

    fn row(&mut self, s: &Step, status: Status, index: usize, started: Instant) -> LedgerRow {
        self.seq += 1;
        LedgerRow {
            version: s.version,
            name: s.name.clone(),
            variant: s.variant.as_str().to_owned(),
            checksum: s.checksum.clone(),
            done_checksum: self.done_checksum(s, index),
            statements_total: u32::try_from(s.statements_total).unwrap_or(u32::MAX),
            statement_index: u32::try_from(index).unwrap_or(u32::MAX),
            status,
            pending_hosts: Vec::new(),
            ddl_tasks: Vec::new(),
            error: String::new(),
            applied_by: applied_by(),
            fencing_token: self.lock.fencing_token(),
            event_seq: self.seq,
            event_time: String::new(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn done_checksum(&self, s: &Step, index: usize) -> String {
        self.m
            .set
            .get(s.version)
            .and_then(|m| m.file(s.variant))
            .map_or_else(String::new, |f| prefix_checksum(f, index))
    }

    async fn write(&self, row: &LedgerRow) -> Result<()> {
        ledger::append(&self.m.cluster, self.coord, row).await
    }

    async fn step(&mut self, s: &Step) -> Result<()> {
        let started = Instant::now();
        let mut pending = Pending {
            tasks: s.pending_tasks.clone(),
            hosts: s.pending_hosts.clone(),
        };
        self.m.check_fence(self.lock, self.coord).await?;
        if s.kind == StepKind::Fresh {
            let row = self.row(s, Status::Started, 0, started);
            self.write(&row).await?;
        }
        for st in &s.statements {
            let now_pending = match self.statement(s, st, &mut pending).await {
                Ok(p) => p,
                Err(e) => return Err(self.failed(s, st.index, started, &pending, e).await),
            };
            let mut row = self.row(s, Status::Progress, st.index + 1, started);
            row.pending_hosts.clone_from(&pending.hosts);
            row.ddl_tasks.clone_from(&pending.tasks);
            self.write(&row).await?;
            (self.progress)(&Progress::Statement {
                version: s.version,
                file: s.file_name.clone(),
                index: st.index,
                total: s.statements_total,
                pending: now_pending,
            });
        }
        self.finish(s, pending.tasks, started).await
    }

    /// Runs one statement; returns the hosts it is pending on (recorded in `pending`).
    async fn statement(
        &self,
        s: &Step,
        st: &Statement,
        pending: &mut Pending,
    ) -> Result<Vec<String>> {
        self.lock.check().await?;
        let at = StatementRef {
            file: &s.file_name,
            statement: st.index + 1,
        };
        let sql = self
            .m
            .placeholders
            .apply(&st.sql)
            .map_err(|reason| Error::Syntax {
                file: s.file_name.clone(),
                line: st.line,
                reason,
            })?;
        let (m, down) = (self.m, self.down);
        match ddl::run(&m.cluster, self.coord, &sql, at, m.opts.ddl, down).await? {
            Outcome::Done(_) => Ok(Vec::new()),
            Outcome::Pending { task, hosts } if m.opts.allow_unavailable => {
                pending.tasks.push(task);
                merge(&mut pending.hosts, &hosts);
                Ok(hosts)
            }
            Outcome::Pending { task, hosts } => Err(pending_error(at, task, hosts, m.opts.ddl)),
        }
    }

    /// Re-checks pending tasks; records `applied` or `pending`.
    async fn finish(&mut self, s: &Step, tasks: Vec<String>, started: Instant) -> Result<()> {
        let mut still_tasks = Vec::new();
        let mut still_hosts = Vec::new();
        for task in &tasks {
            let at = StatementRef {
                file: &s.file_name,
                statement: s.statements_total,
            };
            match ddl::wait_task(
                &self.m.cluster,
                self.coord,
                task,
                at,
                self.m.opts.ddl.extra_wait,
                self.down,
            )
            .await?
            {
                Outcome::Done(_) => {}
                Outcome::Pending { task, hosts } => {
                    still_tasks.push(task);
                    merge(&mut still_hosts, &hosts);
                }
            }
        }
        if !still_tasks.is_empty() && !self.m.opts.allow_unavailable {
            let at = StatementRef {
                file: &s.file_name,
                statement: s.statements_total,
            };
            let task = still_tasks.join(", ");
            return Err(pending_error(at, task, still_hosts, self.m.opts.ddl));
        }
        let status = if still_tasks.is_empty() {
            Status::Applied
        } else {
            Status::Pending
        };
        let mut row = self.row(s, status, s.statements_total, started);
        row.pending_hosts = still_hosts;
        row.ddl_tasks = still_tasks;
        self.write(&row).await?;
        (self.progress)(&Progress::Version {
            version: s.version,
            status,
            took: started.elapsed(),
        });
        Ok(())
    }

    /// Records a failure at statement `index` (best effort) and returns the error.
    async fn failed(
        &mut self,
        s: &Step,
        index: usize,
        started: Instant,
        pending: &Pending,
        e: Error,
    ) -> Error {
        let mut row = self.row(s, Status::Failed, index, started);
        row.error = e.to_string();
        row.pending_hosts.clone_from(&pending.hosts);
        row.ddl_tasks.clone_from(&pending.tasks);
        if let Err(w) = self.write(&row).await {
            tracing::error!(error = %w, "could not record the failure in the ledger");
        }
        e
    }
}

/// Hosts and DDL tasks of the current version that some host has not run yet.
struct Pending {
    tasks: Vec<String>,
    hosts: Vec<String>,
}

fn merge(into: &mut Vec<String>, more: &[String]) {
    for h in more {
        if !into.contains(h) {
            into.push(h.clone());
        }
    }
}

/// `user@host pid N chgate X` for the ledger.
fn applied_by() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let h = Holder::this_process("up");
    format!("{user}@{} pid {} chgate {}", h.host, h.pid, h.version)
}
