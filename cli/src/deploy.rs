//! `chgate deploy`: the topology as pods — render Kubernetes YAML, run it with podman, check it.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chgate_podman::deploy::{self, Settings};
use chgate_podman::manifest::{self, Component};
use chgate_podman::secrets::SecretValues;
use chgate_podman::tls::TlsFiles;
use chgate_podman::{yaml, Images};
use chgate_topology::LoadedTopology;
use clap::{Args, Subcommand, ValueEnum};

/// `chgate deploy ...`
#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Write the Kubernetes YAML (Pods, ConfigMaps, PersistentVolumeClaims, headless Services)
    /// of the whole topology, one file per component in start order. No secret value is
    /// rendered: pods reference the Secret `chgate-secrets` (see `chgate deploy secret`).
    /// Apply to a cluster with: chgate deploy secret | kubectl apply -f - && kubectl apply -f DIR
    /// With [tls], pods mount the Secret `chgate-tls` read-only at /etc/chgate/tls.
    Render {
        /// Directory to write `1-keeper.yaml` ... `6-haproxy.yaml` to; stdout when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        images: ImageArgs,
    },
    /// Print the Kubernetes Secret `chgate-secrets` resolved from the topology's secret
    /// references (missing `file` secrets are generated), and with [tls] the Secret `chgate-tls`
    /// (ca.crt, tls.crt, tls.key, haproxy.pem; a local CA is generated when no file exists).
    /// Refuses a terminal: pipe it, e.g. `chgate deploy secret | kubectl apply -f -`.
    Secret,
    /// Prepare this host for podman as root (idempotent): install podman, runc, netavark,
    /// aardvark-dns, iptables, debootstrap; set default_ulimits = [] and runtime = "runc" in
    /// /etc/containers/containers.conf; create the pods' network with DNS.
    Setup {
        /// Podman network for the pods.
        #[arg(long, default_value = "chgate")]
        network: String,
    },
    /// Start everything with `podman kube play --replace` in dependency order (Keeper,
    /// ClickHouse, PostgreSQL, Grafana, gateways, HAProxy), waiting for each; then apply the
    /// migrations (`chgate migrate up`) and provision Grafana's datasource
    /// (`chgate grafana provision --missing-ok`). Local images: build them first with
    /// podman/images/build.sh; Grafana is skipped with them (no offline image exists).
    /// With [tls] (a local CA is generated when no file exists) the pods get the CA,
    /// certificate and key read-only at /etc/chgate/tls (copies per pod user under
    /// <state_dir>/pods-tls); ClickHouse also serves HTTPS, HAProxy its TLS gateway front,
    /// PostgreSQL SSL. The certificate must be valid for network.listen (e.g. 127.0.0.1).
    Up {
        #[command(flatten)]
        images: ImageArgs,
        /// Seconds to wait for each component.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Podman network for the pods.
        #[arg(long, default_value = "chgate")]
        network: String,
        /// Do not run migrations and Grafana provisioning after the pods are up.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Remove this topology's pods (only pods labelled by chgate for its cluster). Data volumes
    /// are kept unless --volumes.
    Down {
        /// Also remove the data volumes (ClickHouse, Keeper, PostgreSQL, gateway spools).
        #[arg(long)]
        volumes: bool,
    },
    /// One row per pod: component, podman state, containers, health checked from this host
    /// through the pod's loopback hostPort. Exit code 1 if any is not healthy.
    Status {
        #[command(flatten)]
        images: ImageArgs,
    },
}

/// Which images the manifests use.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// `official` registry images, or `local` ones built by podman/images/build.sh (ClickHouse
    /// 18.16, ZooKeeper 3.8 as the Keeper, PostgreSQL 15, HAProxy 2.6, chgate).
    #[arg(long, value_enum, default_value_t = ImageSet::Official)]
    images: ImageSet,
    /// Override one role's image, e.g. `--image clickhouse=registry.example/ch:24.8`
    /// (roles: clickhouse, keeper, postgres, grafana, haproxy, gateway). Repeatable.
    #[arg(long = "image", value_name = "ROLE=IMAGE")]
    overrides: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ImageSet {
    Official,
    Local,
}

impl ImageArgs {
    fn images(&self) -> anyhow::Result<Images> {
        let mut i = match self.images {
            ImageSet::Official => Images::official(),
            ImageSet::Local => Images::local(),
        };
        for o in &self.overrides {
            let (role, image) = o
                .split_once('=')
                .with_context(|| format!("--image {o}: write ROLE=IMAGE"))?;
            i.set(role, image).map_err(anyhow::Error::msg)?;
        }
        Ok(i)
    }
}

fn progress(msg: &str) {
    eprintln!("chgate deploy: {msg}");
}

/// Runs a `chgate deploy` subcommand.
pub async fn run(
    cmd: DeployCommand,
    loaded: &LoadedTopology,
    config: &Path,
) -> anyhow::Result<ExitCode> {
    match cmd {
        DeployCommand::Render { out, images } => render(loaded, &images.images()?, out.as_deref()),
        DeployCommand::Secret => secret(loaded),
        DeployCommand::Setup { network } => {
            for line in chgate_podman::podman::setup(&network)? {
                progress(&line);
            }
            progress("host ready for podman kube play");
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Up {
            images,
            timeout,
            network,
            no_migrate,
        } => {
            let mut s = Settings::new(images.images()?);
            s.timeout = Duration::from_secs(timeout);
            s.network = network;
            up(loaded, &s, config, no_migrate).await
        }
        DeployCommand::Down { volumes } => {
            let r = deploy::down(loaded, volumes)?;
            progress(&format!("removed pods: {}", list(&r.pods)));
            if volumes {
                progress(&format!("removed volumes: {}", list(&r.volumes)));
            } else {
                progress("data volumes kept (remove them with --volumes)");
            }
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Status { images } => status(loaded, &images.images()?).await,
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn render(
    loaded: &LoadedTopology,
    images: &Images,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let m = manifest::build(&loaded.topology, images)?;
    let Some(dir) = out else {
        let docs: Vec<_> = m.objects.iter().map(|o| o.value.clone()).collect();
        print!("{}", yaml::to_yaml_stream(&docs));
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for c in Component::ORDER {
        let docs: Vec<_> = m.group(c).map(|o| o.value.clone()).collect();
        let path = dir.join(c.file_name());
        let text = format!(
            "# rendered by `chgate deploy render` from the topology; do not edit\n{}",
            yaml::to_yaml_stream(&docs)
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        progress(&format!(
            "wrote {} ({} objects)",
            path.display(),
            docs.len()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn secret(loaded: &LoadedTopology) -> anyhow::Result<ExitCode> {
    if std::io::stdout().is_terminal() {
        anyhow::bail!(
            "refusing to print secrets to a terminal; pipe them: chgate deploy secret | kubectl apply -f -"
        );
    }
    let values = SecretValues::resolve(loaded)?;
    let m = manifest::build(&loaded.topology, &Images::official())?;
    let labels = m
        .objects
        .first()
        .map(|o| o.value["metadata"]["labels"].clone())
        .unwrap_or_default();
    let mut labels = labels;
    if let Some(map) = labels.as_object_mut() {
        map.remove(manifest::INSTANCE_LABEL);
        map.remove(manifest::COMPONENT_LABEL);
    }
    let mut docs = vec![values.kubernetes_secret(&labels)];
    if let Some(tls) = TlsFiles::resolve(loaded)? {
        docs.push(tls.kubernetes_secret(&labels));
    }
    print!("{}", yaml::to_yaml_stream(&docs));
    Ok(ExitCode::SUCCESS)
}

async fn up(
    loaded: &LoadedTopology,
    s: &Settings,
    config: &Path,
    no_migrate: bool,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let steps = deploy::up(loaded, s, &progress).await?;
    let pods_s = started.elapsed().as_secs_f64();
    let mut post = Vec::new();
    if !no_migrate {
        let t = Instant::now();
        chgate(config, &["migrate", "up"])?;
        post.push(("migrations (chgate migrate up)", t.elapsed().as_secs_f64()));
        let t = Instant::now();
        chgate(config, &["grafana", "provision", "--missing-ok"])?;
        post.push((
            "grafana datasource (provision --missing-ok)",
            t.elapsed().as_secs_f64(),
        ));
    }
    println!("{:<12} {:>8}  pods", "component", "ready s");
    for st in &steps {
        let secs = st
            .skipped
            .as_ref()
            .map_or_else(|| format!("{:.1}", st.seconds), |_| "skipped".into());
        println!(
            "{:<12} {:>8}  {}",
            st.component.as_str(),
            secs,
            st.pods.join(" ")
        );
    }
    for (what, secs) in post {
        println!("{what}: {secs:.1} s");
    }
    println!(
        "deployed in {:.1} s (pods {pods_s:.1} s); gateway via HAProxy: http://{}:{}",
        started.elapsed().as_secs_f64(),
        loaded.topology.network.listen,
        loaded.topology.haproxy_gateway_port()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs this same binary on the same topology (the migrations and Grafana CLIs, unchanged).
fn chgate(config: &Path, args: &[&str]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the chgate binary")?;
    progress(&format!("chgate {}", args.join(" ")));
    let status = Command::new(exe)
        .arg("--config")
        .arg(config)
        .args(args)
        .status()
        .with_context(|| format!("running chgate {}", args.join(" ")))?;
    anyhow::ensure!(
        status.success(),
        "chgate {} failed ({status})",
        args.join(" ")
    );
    Ok(())
}

async fn status(loaded: &LoadedTopology, images: &Images) -> anyhow::Result<ExitCode> {
    let rows = deploy::status(loaded, images).await?;
    println!(
        "{:<11} {:<10} {:<9} {:<44} health",
        "component", "pod", "state", "containers"
    );
    let mut healthy = true;
    for r in &rows {
        let skipped = deploy::skip_reason(images, r.component).is_some();
        let containers: Vec<String> = r
            .containers
            .iter()
            .map(|(n, s)| format!("{n}:{s}"))
            .collect();
        let health = match (&r.health, skipped) {
            (Ok(d), _) => format!("ok {d}"),
            (Err(_), true) => "skipped (no offline image)".into(),
            (Err(e), false) => {
                healthy = false;
                format!("FAIL {e}")
            }
        };
        println!(
            "{:<11} {:<10} {:<9} {:<44} {health}",
            r.component.as_str(),
            r.pod,
            r.state,
            list(&containers)
        );
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
