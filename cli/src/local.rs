//! `chgate local`: up / down / status / logs / stop / start of the rig on this machine.

use std::process::ExitCode;
use std::time::Duration;

use chgate_localstack::plan::GatewayCommand;
use chgate_localstack::status::StatusReport;
use chgate_localstack::{Stack, UpOptions};
use chgate_topology::LoadedTopology;
use clap::Subcommand;

/// `chgate local ...`
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Install missing Debian packages, render every config from the topology, start whatever is
    /// not running and wait until the cluster replicates. Safe to run again: running processes
    /// are left alone. Run as root, no process keeps root: each runs as its own system user
    /// (zookeeper, clickhouse, postgres, haproxy; the gateways as chgate, created if missing),
    /// which is given its files first; run as another user, everything runs as that user.
    Up {
        /// Seconds to wait for readiness before failing with what is not ready.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
        /// Do not run apt-get; fail if a package is missing.
        #[arg(long)]
        no_install: bool,
    },
    /// Stop every process this rig started (by pid file; never by name).
    Down,
    /// One row per process: role, pid, user it runs as, ports, healthy, version. Exit code 1 if
    /// any is unhealthy.
    Status {
        /// JSON with every endpoint too (gateway URLs, ClickHouse per host, PostgreSQL DSN, ...).
        #[arg(long)]
        json: bool,
    },
    /// Print the logs of a role (keeper, clickhouse, postgres, haproxy) or one process (ch-s1r2).
    Logs {
        /// Role or process name.
        role: String,
        /// Lines from the end of each file.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
    },
    /// Push a small uniquely named sample with every protocol through HAProxy and print the rows
    /// found on every replica of every shard (needs `chgate migrate up` first). Exit 1 on mismatch.
    Smoke,
    /// Stop one process (e.g. `keeper-2`, `ch-s1r2`), e.g. to try failures.
    Stop {
        /// Process name.
        name: String,
    },
    /// Start one stopped process again.
    Start {
        /// Process name.
        name: String,
    },
}

fn progress(msg: &str) {
    eprintln!("chgate local: {msg}");
}

/// Runs a `chgate local` command.
pub async fn run(
    cmd: LocalCommand,
    loaded: &LoadedTopology,
    topology_file: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    // The gateways are this very binary running `serve`.
    let gateway = GatewayCommand {
        exe: std::env::current_exe()?,
        topology: std::path::absolute(topology_file)?,
    };
    let stack = Stack::with_gateways(loaded, &gateway);
    match cmd {
        LocalCommand::Up {
            timeout,
            no_install,
        } => {
            let opts = UpOptions {
                ready_timeout: Duration::from_secs(timeout),
                install: !no_install,
            };
            let started = std::time::Instant::now();
            let report = stack.up(opts, &progress).await?;
            if report.started.is_empty() {
                progress(&format!(
                    "already up: {} processes running, nothing to do",
                    report.already_running.len()
                ));
            } else {
                progress(&format!(
                    "up in {:.1}s: started {} ({} already running)",
                    started.elapsed().as_secs_f64(),
                    report.started.join(", "),
                    report.already_running.len()
                ));
            }
            print_table(&stack.status().await);
            Ok(ExitCode::SUCCESS)
        }
        LocalCommand::Down => {
            let stopped = stack.down(&progress)?;
            progress(&format!("down: stopped {} processes", stopped.len()));
            Ok(ExitCode::SUCCESS)
        }
        LocalCommand::Status { json } => {
            let report = stack.status().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_table(&report);
            }
            Ok(if report.all_healthy() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LocalCommand::Logs { role, lines } => {
            print!("{}", stack.log_tail(&role, lines));
            stack.log_files(&role)?;
            Ok(ExitCode::SUCCESS)
        }
        LocalCommand::Smoke => Ok(if crate::smoke::run(loaded).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }),
        LocalCommand::Stop { name } => {
            let was = stack.stop_service(&name)?;
            progress(if was { "stopped" } else { "was not running" });
            Ok(ExitCode::SUCCESS)
        }
        LocalCommand::Start { name } => {
            stack.start_service(&name)?;
            progress(&format!("started {name}"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_table(r: &StatusReport) {
    println!(
        "{:<11} {:<10} {:>8}  {:<10} {:<40} {:<8} VERSION / DETAIL",
        "ROLE", "NAME", "PID", "USER", "PORTS", "HEALTHY"
    );
    for s in &r.services {
        let ports: Vec<String> = s.ports.iter().map(|(n, p)| format!("{n}:{p}")).collect();
        let pid = s.pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
        let info = s
            .version
            .clone()
            .or_else(|| s.detail.clone())
            .unwrap_or_default();
        println!(
            "{:<11} {:<10} {:>8}  {:<10} {:<40} {:<8} {}",
            format!("{:?}", s.role).to_lowercase(),
            s.name,
            pid,
            s.user.as_deref().unwrap_or("-"),
            ports.join(" "),
            if s.healthy { "yes" } else { "NO" },
            info
        );
    }
    let e = &r.endpoints;
    println!(
        "\ngateway (haproxy) {}   grafana (haproxy) {}   stats {}",
        e.gateway_url, e.grafana_url, e.haproxy_stats_url
    );
    println!(
        "postgres {} (password: {})",
        e.postgres_dsn, e.postgres_password_ref
    );
    println!(
        "clickhouse user password: {}   keeper: {}",
        e.clickhouse_password_ref, e.keeper
    );
}
