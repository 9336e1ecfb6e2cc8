//! `chgate grafana`: provision the ClickHouse datasource in Grafana's PostgreSQL, render Grafana's
//! provisioning files and grafana.ini. Arguments → an immutable plan (pure, tested) → execution.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chgate_grafana::render::{render_all, write_all, IniSettings};
use chgate_grafana::store::plan::Drift;
use chgate_grafana::{DatasourceSpec, Mode, PgTarget, WaitSettings};
use chgate_topology::render::Addressing;
use chgate_topology::LoadedTopology;
use clap::{Subcommand, ValueEnum};

/// Where Grafana and the servers it talks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Every process on this machine's loopback address (the `chgate local` rig).
    Local,
    /// One pod per server, reached by name on container ports.
    Pods,
}

impl From<Target> for Addressing {
    fn from(t: Target) -> Self {
        match t {
            Target::Local => Addressing::Local,
            Target::Pods => Addressing::Pods,
        }
    }
}

/// `chgate grafana ...`
#[derive(Debug, Subcommand)]
pub enum GrafanaCommand {
    /// Upsert the ClickHouse datasource (uid and name from the topology) into Grafana's
    /// PostgreSQL database, org 1, with the password encrypted by the shared `secret_key`.
    /// Grafana's tables are never created: Grafana makes them at its first start. PostgreSQL is
    /// reached over TLS verified against `[tls] ca` when the topology has `[tls]`.
    Provision {
        /// How long to wait for Grafana's tables to appear, e.g. `30s`, `2m`. Default: no wait.
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        wait: Duration,
        /// Only report differences (exit status 1 when there are any); write nothing.
        #[arg(long)]
        check: bool,
        /// Where Grafana reaches ClickHouse from.
        #[arg(long, value_enum, default_value_t = Target::Local)]
        target: Target,
        /// When Grafana's tables (or its database) do not exist after the wait, say so and exit
        /// 0 instead of failing: for scripts that run whether or not a Grafana has started.
        #[arg(long)]
        missing_ok: bool,
    },
    /// Write the datasource provisioning YAML, the dashboards and their provider, and one
    /// grafana.ini per instance.
    Render {
        /// Where the Grafana instances run.
        #[arg(long, value_enum, default_value_t = Target::Pods)]
        target: Target,
        /// Output directory. Default: `grafana-provisioning` for pods, `<state_dir>/grafana` for
        /// local.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Grafana's `[paths] provisioning` as the instances see it. Default:
        /// `/etc/grafana/provisioning` for pods, the absolute output directory for local.
        #[arg(long)]
        provisioning_dir: Option<PathBuf>,
        /// Directory relative `{ file = .. }` secrets resolve against inside grafana.ini.
        /// Default: `/etc/chgate` for pods, the state directory for local.
        #[arg(long)]
        secrets_dir: Option<PathBuf>,
    },
}

fn is_tables_missing(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<chgate_grafana::GrafanaError>(),
        Some(chgate_grafana::GrafanaError::TablesMissing { .. })
    )
}

/// Parses `500ms`, `30s`, `2m`, `1h` or a plain number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30s"))?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => return Err(format!("unknown unit in `{s}`; use ms, s, m or h")),
    };
    Ok(Duration::from_millis(ms))
}

/// What `render` will do, decided from the arguments alone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RenderPlan {
    target: Target,
    out: PathBuf,
    settings: IniSettings,
}

impl RenderPlan {
    fn new(
        target: Target,
        out: Option<PathBuf>,
        provisioning_dir: Option<PathBuf>,
        secrets_dir: Option<PathBuf>,
        state_dir: &Path,
    ) -> Self {
        let out = out.unwrap_or_else(|| match target {
            Target::Pods => PathBuf::from("grafana-provisioning"),
            Target::Local => state_dir.join("grafana"),
        });
        let defaults = match target {
            Target::Pods => IniSettings::pods(),
            Target::Local => IniSettings {
                addressing: Addressing::Local,
                provisioning_dir: std::path::absolute(&out).unwrap_or_else(|_| out.clone()),
                secrets_dir: state_dir.to_owned(),
            },
        };
        RenderPlan {
            target,
            out,
            settings: IniSettings {
                addressing: target.into(),
                provisioning_dir: provisioning_dir.unwrap_or(defaults.provisioning_dir),
                secrets_dir: secrets_dir.unwrap_or(defaults.secrets_dir),
            },
        }
    }
}

/// Runs a `chgate grafana` subcommand.
///
/// # Errors
/// Unreadable secrets, Grafana's tables missing after `--wait`, database errors, drift found
/// with `--check`, unwritable output files.
pub async fn run(cmd: GrafanaCommand, loaded: &LoadedTopology) -> anyhow::Result<()> {
    match cmd {
        GrafanaCommand::Provision {
            wait,
            check,
            target,
            missing_ok,
        } => match provision(loaded, wait, check, target).await {
            Err(e) if missing_ok && is_tables_missing(&e) => {
                println!("nothing provisioned: {e}");
                Ok(())
            }
            other => other,
        },
        GrafanaCommand::Render {
            target,
            out,
            provisioning_dir,
            secrets_dir,
        } => {
            let plan = RenderPlan::new(
                target,
                out,
                provisioning_dir,
                secrets_dir,
                &loaded.state_dir,
            );
            render(loaded, &plan)
        }
    }
}

fn spec(
    loaded: &LoadedTopology,
    target: Target,
    need_password: bool,
) -> anyhow::Result<DatasourceSpec> {
    let t = &loaded.topology;
    let password = if need_password {
        t.clickhouse
            .password
            .resolve(&loaded.state_dir)
            .context("ClickHouse password")?
    } else {
        // Rendering references the password (`$__env{}`), it never reads it.
        chgate_topology::Secret::new("")
    };
    Ok(DatasourceSpec::from_topology(t, target.into(), password))
}

async fn provision(
    loaded: &LoadedTopology,
    wait: Duration,
    check: bool,
    target: Target,
) -> anyhow::Result<()> {
    let t = &loaded.topology;
    let spec = spec(loaded, target, true)?;
    let key = t
        .grafana
        .secret_key
        .resolve(&loaded.state_dir)
        .context("Grafana secret_key")?;
    let pg = PgTarget::from_topology(t, &loaded.state_dir)?;
    let mode = if check { Mode::Check } else { Mode::Apply };
    let settings = WaitSettings {
        wait,
        ..WaitSettings::default()
    };
    if !wait.is_zero() {
        eprintln!(
            "waiting up to {wait:?} for Grafana's tables in {}",
            pg.label
        );
    }
    let out = chgate_grafana::provision(&pg, &spec, &key, mode, settings).await?;
    report(&out, mode, &pg.label)
}

/// Prints the differences and the result; with `--check`, drift is an error (exit status 1).
fn report(out: &chgate_grafana::Outcome, mode: Mode, db: &str) -> anyhow::Result<()> {
    print_drift(&out.drift);
    let secrets = if out.secrets_table {
        "secrets table row kept in step"
    } else {
        "no secrets table (Grafana < 8.5)"
    };
    let uid = &out.uid;
    match (mode, out.written_version) {
        (Mode::Check, _) if out.drift.is_empty() => {
            println!("datasource {uid} in {db}: up to date")
        }
        (Mode::Check, _) => anyhow::bail!(
            "datasource {uid} in {db} differs in {} place(s); run without --check to fix",
            out.drift.len()
        ),
        (_, Some(v)) => println!("datasource {uid} in {db}: written, version {v} ({secrets})"),
        (_, None) => println!("datasource {uid} in {db}: unchanged"),
    }
    Ok(())
}

fn print_drift(drift: &[Drift]) {
    if drift.is_empty() {
        return;
    }
    println!("{:<4} difference", "#");
    for (i, d) in drift.iter().enumerate() {
        println!("{:<4} {d}", i + 1);
    }
}

fn render(loaded: &LoadedTopology, plan: &RenderPlan) -> anyhow::Result<()> {
    let spec = spec(loaded, plan.target, false)?;
    let files = render_all(&loaded.topology, &spec, &plan.settings);
    let written = write_all(&plan.out, &files)?;
    println!(
        "{} files in {} ({} changed)",
        files.len(),
        plan.out.display(),
        written.len()
    );
    for f in &files {
        let mark = if written.contains(&plan.out.join(&f.path)) {
            "written"
        } else {
            "unchanged"
        };
        println!("  {:<9} {}", mark, f.path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5 days").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn render_defaults_follow_the_target() {
        let state = Path::new("/srv/x/.chgate");
        let pods = RenderPlan::new(Target::Pods, None, None, None, state);
        assert_eq!(pods.out, PathBuf::from("grafana-provisioning"));
        assert_eq!(pods.settings, IniSettings::pods());
        let local = RenderPlan::new(Target::Local, None, None, None, state);
        assert_eq!(local.out, state.join("grafana"));
        assert_eq!(local.settings.provisioning_dir, state.join("grafana"));
        assert_eq!(local.settings.secrets_dir, state);
        let custom = RenderPlan::new(
            Target::Pods,
            Some("o".into()),
            Some("/p".into()),
            None,
            state,
        );
        assert_eq!(
            (custom.out, custom.settings.provisioning_dir),
            ("o".into(), "/p".into())
        );
    }
}
