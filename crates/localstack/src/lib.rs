//! # chgate-localstack
//!
//! The local chgate rig on the loopback address, from Debian packages: ZooKeeper 3.8 x N (the
//! Keeper stand-in), ClickHouse 18.16 shards x replicas, PostgreSQL 15 and HAProxy 2.6, every
//! config rendered from the topology by `chgate-topology`.
//!
//! Main types: [`Stack`] (up / down / status / logs, single-node stop and start for fault tests),
//! [`plan::Service`] (one process: command line, ports, pid file), [`status::StatusReport`].
//!
//! Data flow of `up`: install missing packages → create dirs and secrets → render configs →
//! `initdb` once → start each process not already running (pid files) → wait until every
//! ClickHouse answers and sees the whole cluster, the Keeper quorum has a leader, PostgreSQL
//! accepts a login, HAProxy serves stats, and a write to a `ReplicatedMergeTree` table reaches
//! every replica of every shard. `down` stops only processes named by our pid files whose command
//! line carries the service's own directory, never by name.
//!
//! Run as root, no process of the rig keeps root ([`account`]): ZooKeeper runs as `zookeeper`,
//! ClickHouse as `clickhouse`, PostgreSQL as `postgres`, HAProxy as `haproxy` (the Debian
//! packages' own service users) and the gateways as the system user `chgate` (created when
//! missing). Before each process starts, everything root wrote for it (its directory, its copy of
//! the `[tls]` pair, the gateways' password files) is handed to its user, so an older root-owned
//! state directory is converted by the next `up`. Run as another user, everything runs as that
//! user.

pub mod account;
pub mod install;
pub mod plan;
pub mod prepare;
pub mod probe;
pub mod process;
pub mod ready;
pub mod stage;
pub mod status;
pub mod tls;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chgate_topology::render::clickhouse::PASSWORD_ENV;
use chgate_topology::{LoadedTopology, Secret, Topology, TopologyError};
use nix::fcntl::{Flock, FlockArg};

use plan::{Role, Service};
use process::PidState;

/// What can go wrong running the rig.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// Packages are missing and we are not root.
    #[error(
        "missing Debian packages ({packages}); run as root (or: sudo apt-get install {packages})"
    )]
    NotRoot {
        /// Space-separated package names.
        packages: String,
    },
    /// apt-get failed.
    #[error("installing packages failed: {reason}")]
    Install {
        /// apt-get's message.
        reason: String,
    },
    /// The `[tls]` files are incomplete or could not be generated.
    #[error("TLS: {0}")]
    Tls(String),
    /// A file could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A rendered config was refused by its program.
    #[error("rendered config {} is invalid: {reason}", file.display())]
    Config {
        /// The file.
        file: PathBuf,
        /// The program's message.
        reason: String,
    },
    /// A process could not be started.
    #[error("cannot start {service}: {reason}")]
    Start {
        /// Service name.
        service: String,
        /// Why.
        reason: String,
    },
    /// A process would not stop.
    #[error("{service} (pid {pid}) did not stop, even after SIGKILL")]
    Stop {
        /// Service name.
        service: String,
        /// Its pid.
        pid: i32,
    },
    /// Readiness did not come in time.
    #[error("the rig is not ready after {}s:\n{}", waited.as_secs(), not_ready.join("\n"))]
    NotReady {
        /// How long we waited.
        waited: Duration,
        /// One line per thing that is not ready, naming it.
        not_ready: Vec<String>,
    },
    /// No service of that name or role.
    #[error("no service or role named `{0}` (roles: keeper, clickhouse, postgres, haproxy)")]
    UnknownService(String),
    /// A secret could not be resolved.
    #[error(transparent)]
    Topology(#[from] TopologyError),
}

/// The rig described by one topology.
#[derive(Debug, Clone)]
pub struct Stack {
    topology: Topology,
    state_dir: PathBuf,
    services: Vec<Service>,
    /// What the gateways run: the caller's binary and topology, or their staged copies
    /// ([`stage`]) when the gateways run as their own user.
    gateway: Option<plan::GatewayCommand>,
    /// The caller's binary and topology, staged before each gateway start (root only).
    gateway_source: Option<plan::GatewayCommand>,
}

/// Options of [`Stack::up`].
#[derive(Debug, Clone, Copy)]
pub struct UpOptions {
    /// How long to wait for readiness. Default 180 s.
    pub ready_timeout: Duration,
    /// Install missing Debian packages. Default true.
    pub install: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            ready_timeout: Duration::from_secs(180),
            install: true,
        }
    }
}

/// What `up` did.
#[derive(Debug, Clone, Default)]
pub struct UpReport {
    /// Packages installed.
    pub installed: Vec<&'static str>,
    /// Services started now.
    pub started: Vec<String>,
    /// Services that were already running.
    pub already_running: Vec<String>,
}

impl Stack {
    /// The rig of a loaded topology, without gateways (see [`Stack::with_gateways`]).
    pub fn new(loaded: &LoadedTopology) -> Self {
        Self::build(loaded, None)
    }

    /// The rig including the topology's gateways, run as `exe --config topology serve ...`.
    pub fn with_gateways(loaded: &LoadedTopology, cmd: &plan::GatewayCommand) -> Self {
        Self::build(loaded, Some(cmd))
    }

    fn build(loaded: &LoadedTopology, cmd: Option<&plan::GatewayCommand>) -> Self {
        // Run as their own user, the gateways start from copies inside the state directory:
        // the caller's checkout and build directory may be out of that user's reach.
        let (gateway, gateway_source) = match cmd {
            Some(cmd) if account::caller_is_root() => {
                (Some(stage::staged(&loaded.state_dir)), Some(cmd.clone()))
            }
            other => (other.cloned(), None),
        };
        let services = plan::services(&loaded.topology, &loaded.state_dir, gateway.as_ref());
        Stack {
            topology: loaded.topology.clone(),
            state_dir: loaded.state_dir.clone(),
            services,
            gateway,
            gateway_source,
        }
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The absolute state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Every process, in start order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The ClickHouse password (generated on first `up`).
    ///
    /// # Errors
    /// When the reference cannot be resolved.
    pub fn clickhouse_password(&self) -> Result<Secret, StackError> {
        prepare::ensure_secret(&self.topology.clickhouse.password, &self.state_dir)
    }

    /// The PostgreSQL password of `postgres.user`.
    ///
    /// # Errors
    /// When the reference cannot be resolved.
    pub fn postgres_password(&self) -> Result<Secret, StackError> {
        prepare::ensure_secret(&self.topology.postgres.password, &self.state_dir)
    }

    fn lock(&self) -> Result<Flock<File>, StackError> {
        std::fs::create_dir_all(&self.state_dir).map_err(|e| StackError::Io {
            path: self.state_dir.clone(),
            source: e,
        })?;
        let path = self.state_dir.join(".lock");
        let f = File::create(&path).map_err(|e| StackError::Io {
            path: path.clone(),
            source: e,
        })?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| StackError::Io {
            path,
            source: std::io::Error::from(e),
        })
    }

    /// Brings the rig up; idempotent (running processes are left alone).
    ///
    /// # Errors
    /// Any [`StackError`]; readiness failures name what is not ready.
    pub async fn up(
        &self,
        opts: UpOptions,
        progress: &dyn Fn(&str),
    ) -> Result<UpReport, StackError> {
        let mut report = UpReport::default();
        if opts.install {
            report.installed = install::ensure_packages(progress)?;
        }
        let _lock = self.lock()?;
        for user in account::ensure_users(&self.services)? {
            progress(&format!("created system user {user}"));
        }
        let ch_password = self.clickhouse_password()?;
        let pg_password = self.postgres_password()?;
        prepare::ensure_secret(&self.topology.grafana.secret_key, &self.state_dir)?;
        if let Some(tls) = &self.topology.tls {
            let tls = tls.resolved(&self.state_dir);
            if tls::ensure(&tls)? {
                progress("generated a local CA and server certificate for [tls]");
            }
            // Handed to HAProxy's user by `hand_over` before HAProxy starts.
            tls::write_haproxy_pem(&tls)?;
        }
        prepare::dirs(&self.state_dir, &self.services)?;
        let mut keeper_waited = false;
        let mut wrong_user = Vec::new();
        let deadline = std::time::Instant::now() + opts.ready_timeout;
        for svc in &self.services {
            if let PidState::Running(pid) = process::pid_state(svc, &self.state_dir) {
                if runs_as_another_user(svc, pid) {
                    wrong_user.push(svc.name.clone());
                }
                report.already_running.push(svc.name.clone());
                continue;
            }
            if svc.role == Role::ClickHouse && !keeper_waited {
                // ClickHouse 18.16's DDL worker can crash (NULL ZooKeeper session) when it starts
                // before the ensemble has a leader: start it only once the quorum serves.
                progress("waiting for the Keeper quorum");
                ready::wait_keeper(self, deadline).await?;
                keeper_waited = true;
            }
            self.start_one(svc, &ch_password, &pg_password)?;
            progress(&format!("started {}", svc.name));
            report.started.push(svc.name.clone());
        }
        if !wrong_user.is_empty() {
            progress(&format!(
                "warning: {} still run as root (started by an older chgate), not as their own \
                 system users; restart them: chgate local down && chgate local up",
                wrong_user.join(", ")
            ));
        }
        progress("waiting for readiness");
        ready::wait(self, &ch_password, &pg_password, deadline, progress).await?;
        Ok(report)
    }

    pub(crate) fn start_one(
        &self,
        svc: &Service,
        ch: &Secret,
        pg: &Secret,
    ) -> Result<i32, StackError> {
        let account = account::of(svc)?;
        self.ports_free(svc)?;
        prepare::configs(&self.topology, svc, &ch.sha256_hex())?;
        if svc.role == Role::Postgres {
            prepare::init_postgres(&self.topology, svc, pg, account.as_ref())?;
            for lock in prepare::clear_stale_postgres_locks(svc, self.topology.postgres_port())? {
                tracing::warn!(lock = %lock.display(), "removed a stale PostgreSQL lock file");
            }
            if let Some(tls) = &self.topology.tls {
                tls::install_copy(&tls.resolved(&self.state_dir), &svc.dir)?;
            }
        }
        if let Some(a) = &account {
            self.hand_over(svc, a)?;
        }
        let env: Vec<(&str, &str)> = match svc.role {
            Role::ClickHouse => vec![(PASSWORD_ENV, ch.expose())],
            _ => vec![],
        };
        process::spawn(svc, &self.state_dir, &env)
    }

    /// Gives `svc`'s user everything root wrote for it (its directory tree; HAProxy's combined
    /// pem; the gateways' password files) and checks it can reach its directory and, for a
    /// gateway, the `chgate` binary and the topology file.
    fn hand_over(&self, svc: &Service, a: &account::Account) -> Result<(), StackError> {
        let changed = account::chown_tree(&svc.dir, a.uid, a.gid)?;
        if changed > 0 {
            tracing::info!(service = %svc.name, user = %a.name, changed, "handed files to the service's user");
        }
        account::require_access(svc, a, &svc.dir, "-x", "its directory")?;
        match svc.role {
            Role::Haproxy => {
                if let Some(tls) = &self.topology.tls {
                    let pem = tls.resolved(&self.state_dir).haproxy_pem();
                    if pem.exists() {
                        account::chown_one(&pem, a.uid, a.gid)?;
                    }
                }
            }
            Role::Gateway => {
                if let Some(source) = &self.gateway_source {
                    stage::stage(source, &self.state_dir)?;
                }
                if let Some(cmd) = &self.gateway {
                    account::require_access(svc, a, &cmd.exe, "-x", "the chgate binary")?;
                    account::require_access(svc, a, &cmd.topology, "-r", "the topology file")?;
                }
                let secrets: Vec<PathBuf> = [
                    &self.topology.clickhouse.password,
                    &self.topology.postgres.password,
                ]
                .into_iter()
                .filter_map(|r| r.file_path(&self.state_dir))
                .collect();
                account::hand_over_secrets(svc, a, &self.state_dir, &secrets)?;
            }
            Role::Keeper | Role::ClickHouse | Role::Postgres => {}
        }
        Ok(())
    }

    /// Refuses to start a process whose port is taken (e.g. by a process whose pid file was lost),
    /// instead of letting it fail later or, with SO_REUSEPORT, bind twice.
    fn ports_free(&self, svc: &Service) -> Result<(), StackError> {
        let ip = self.topology.network.listen;
        for (name, port) in &svc.ports {
            if std::net::TcpListener::bind((ip, *port)).is_err() {
                return Err(StackError::Start {
                    service: svc.name.clone(),
                    reason: format!(
                        "port {port} ({name}) on {ip} is already in use by a process this rig did not \
                         start (or whose pid file is gone); stop it or change the topology's ports"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Stops every process of ours (reverse start order). Returns the names stopped.
    ///
    /// # Errors
    /// [`StackError::Stop`] when a process survives SIGKILL.
    pub fn down(&self, progress: &dyn Fn(&str)) -> Result<Vec<String>, StackError> {
        let _lock = self.lock()?;
        let mut stopped = Vec::new();
        for svc in self.services.iter().rev() {
            if process::stop(svc, &self.state_dir, Duration::from_secs(30))? {
                progress(&format!("stopped {}", svc.name));
                stopped.push(svc.name.clone());
            }
        }
        Ok(stopped)
    }

    fn find(&self, name: &str) -> Result<&Service, StackError> {
        self.services
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| StackError::UnknownService(name.into()))
    }

    /// Stops one process (fault tests). Returns whether it was running.
    ///
    /// # Errors
    /// [`StackError::UnknownService`] or [`StackError::Stop`].
    pub fn stop_service(&self, name: &str) -> Result<bool, StackError> {
        process::stop(self.find(name)?, &self.state_dir, Duration::from_secs(30))
    }

    /// Kills one process with SIGKILL (a crash, for recovery drills). Returns whether it was
    /// running.
    ///
    /// # Errors
    /// [`StackError::UnknownService`] or [`StackError::Stop`].
    pub fn kill_service(&self, name: &str) -> Result<bool, StackError> {
        process::kill_now(self.find(name)?, &self.state_dir)
    }

    /// Starts one process again (fault tests) without waiting for readiness.
    ///
    /// # Errors
    /// As [`Stack::up`]'s start step.
    pub fn start_service(&self, name: &str) -> Result<(), StackError> {
        let svc = self.find(name)?;
        if let PidState::Running(_) = process::pid_state(svc, &self.state_dir) {
            return Ok(());
        }
        self.start_one(
            svc,
            &self.clickhouse_password()?,
            &self.postgres_password()?,
        )
        .map(drop)
    }

    /// The directory holding a service's data: ClickHouse's `<path>` (`data/`, `metadata/`,
    /// `shadow/`), PostgreSQL's `PGDATA`, ZooKeeper's `dataDir`. Gateways and HAProxy have none
    /// (their directory is returned).
    ///
    /// # Errors
    /// [`StackError::UnknownService`].
    pub fn data_dir(&self, name: &str) -> Result<PathBuf, StackError> {
        let svc = self.find(name)?;
        Ok(match svc.role {
            Role::ClickHouse | Role::Postgres | Role::Keeper => svc.dir.join("data"),
            Role::Gateway | Role::Haproxy => svc.dir.clone(),
        })
    }

    /// Kills a service (SIGKILL) and deletes its data directory — a lost disk, for recovery drills. The next
    /// [`Stack::start_service`] recreates an empty one (PostgreSQL: a fresh `initdb`).
    ///
    /// # Errors
    /// [`StackError::Stop`], or [`StackError::Io`] naming the directory.
    pub fn wipe_data(&self, name: &str) -> Result<PathBuf, StackError> {
        let dir = self.data_dir(name)?;
        self.kill_service(name)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| StackError::Io {
                path: dir.clone(),
                source: e,
            })?;
        }
        Ok(dir)
    }

    /// Log files of a role or service: its stdout/stderr log, plus ClickHouse's own logs.
    ///
    /// # Errors
    /// [`StackError::UnknownService`].
    pub fn log_files(&self, what: &str) -> Result<Vec<PathBuf>, StackError> {
        let chosen = plan::select(&self.services, what);
        if chosen.is_empty() {
            return Err(StackError::UnknownService(what.into()));
        }
        let mut files = Vec::new();
        for s in chosen {
            files.push(s.log_file(&self.state_dir));
            if s.role == Role::ClickHouse {
                files.push(s.dir.join("log").join("clickhouse-server.err.log"));
            }
        }
        Ok(files)
    }

    /// The last `lines` lines of a service's logs (for test failure messages).
    pub fn log_tail(&self, what: &str, lines: usize) -> String {
        let Ok(files) = self.log_files(what) else {
            return format!("(no service {what})");
        };
        let mut out = String::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            out.push_str(&format!("==> {} <==\n{}\n", f.display(), tail.join("\n")));
        }
        out
    }
}

/// Whether a running process of ours is not running as its account (one started as root by an
/// older chgate keeps running as root until restarted).
fn runs_as_another_user(svc: &Service, pid: i32) -> bool {
    let Ok(Some(a)) = account::of(svc) else {
        return false;
    };
    account::process_uids(pid).is_some_and(|uids| uids[1] != a.uid.as_raw())
}
