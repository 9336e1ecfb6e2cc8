//! `chgate deploy up | down | status` on one host with podman.
//!
//! `up` plays one component at a time in dependency order (Keeper, ClickHouse, PostgreSQL,
//! Grafana, gateways, HAProxy) with `podman kube play --replace` and waits until every pod of it
//! answers from the host through its loopback hostPorts — the same probes as `chgate local`.
//! `down` removes only pods labelled with chgate's manager label and this topology's cluster.

use std::path::Path;
use std::time::{Duration, Instant};

use chgate_localstack::probe;
use chgate_topology::{LoadedTopology, Topology};

use crate::images::{Flavor, Images};
use crate::manifest::{self, Component, Manifest, CLUSTER_LABEL, MANAGED_BY, TLS_VOLUME};
use crate::secrets::{SecretValues, SECRET_NAME};
use crate::tls::{self, TlsFiles};
use crate::{podman, yaml, DeployError};

/// Settings of `up` / `down` / `status`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Images.
    pub images: Images,
    /// Podman network the pods join (created with DNS). Default `chgate`.
    pub network: String,
    /// How long to wait for each component. Default 300 s.
    pub timeout: Duration,
}

impl Settings {
    /// Defaults with the given images.
    pub fn new(images: Images) -> Self {
        Settings {
            images,
            network: "chgate".into(),
            timeout: Duration::from_secs(300),
        }
    }
}

/// What `up` did for one component.
#[derive(Debug, Clone)]
pub struct Step {
    /// Component.
    pub component: Component,
    /// Its pods.
    pub pods: Vec<String>,
    /// Seconds from `kube play` to ready.
    pub seconds: f64,
    /// Why it was skipped, if it was.
    pub skipped: Option<String>,
}

/// Labels (`key=value`) that select this topology's pods.
pub fn selector(t: &Topology) -> Vec<String> {
    vec![
        format!("{}={}", MANAGED_BY.0, MANAGED_BY.1),
        format!("{CLUSTER_LABEL}={}", manifest::cluster_label_value(t)),
    ]
}

/// The YAML podman plays for one component: everything but Services (podman gives pods DNS
/// names itself; the Services are for Kubernetes) and claims whose volume already exists
/// (`kube play` refuses to create it twice; the data in it is kept). With `tls_dir`, each pod's
/// `[tls]` Secret volume becomes the read-only `hostPath` `tls_dir/<the pod's runAsUser>` (podman
/// 4.3 cannot mount `secret` volumes; `up` stages those copies with [`TlsFiles::stage`]).
pub fn podman_yaml(
    m: &Manifest,
    c: Component,
    volume_exists: &dyn Fn(&str) -> bool,
    tls_dir: Option<&Path>,
) -> String {
    let docs: Vec<serde_json::Value> = m
        .group(c)
        .filter(|o| o.kind != "Service")
        .filter(|o| o.kind != "PersistentVolumeClaim" || !volume_exists(&o.name))
        .map(|o| {
            let mut v = o.value.clone();
            if let (Some(dir), "Pod") = (tls_dir, o.kind) {
                let uid = pod_user(&v);
                if let Some(vols) = v["spec"]["volumes"].as_array_mut() {
                    for vol in vols.iter_mut().filter(|x| x["name"] == TLS_VOLUME) {
                        *vol = serde_json::json!({
                            "name": TLS_VOLUME,
                            "hostPath": {
                                "path": dir.join(uid.to_string()).display().to_string(),
                                "type": "Directory",
                            },
                        });
                    }
                }
            }
            v
        })
        .collect();
    yaml::to_yaml_stream(&docs)
}

/// A pod's `runAsUser` (0 when unset, which the manifests never leave it).
fn pod_user(pod: &serde_json::Value) -> u32 {
    pod["spec"]["securityContext"]["runAsUser"]
        .as_u64()
        .and_then(|u| u32::try_from(u).ok())
        .unwrap_or(0)
}

/// The users of the pods that mount the `[tls]` volume.
pub fn tls_users(m: &Manifest) -> std::collections::BTreeSet<u32> {
    m.objects
        .iter()
        .filter(|o| o.kind == "Pod")
        .filter(|o| {
            o.value["spec"]["volumes"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x["name"] == TLS_VOLUME))
        })
        .map(|o| pod_user(&o.value))
        .collect()
}

fn volume_exists(name: &str) -> bool {
    podman::podman(&["volume", "exists", name], None).is_ok()
}

/// Plays one component. A hostPort can be briefly taken as some connection's ephemeral source
/// port (the topology's ports lie in Linux's ephemeral range): that bind error is retried.
fn play(
    m: &Manifest,
    c: Component,
    network: &str,
    tls_dir: Option<&Path>,
) -> Result<(), DeployError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        remove_pods_and_config(m, c)?;
        let r = podman::podman(
            &["kube", "play", "--replace", "--network", network, "-"],
            Some(podman_yaml(m, c, &volume_exists, tls_dir).as_bytes()),
        );
        match r {
            Err(DeployError::Podman { message, .. })
                if attempt < 4 && message.contains("address already in use") =>
            {
                std::thread::sleep(Duration::from_secs(2));
            }
            other => return other.map(|_| ()),
        }
    }
}

/// podman keeps a ConfigMap as a volume of the same name: remove the component's pods and
/// those volumes before playing it, so each play starts from exactly the rendered files.
fn remove_pods_and_config(m: &Manifest, c: Component) -> Result<(), DeployError> {
    for pod in m.pods(c) {
        if podman::podman(&["pod", "exists", &pod], None).is_ok() {
            podman::podman(&["pod", "rm", "-f", "-t", "10", &pod], None)?;
        }
    }
    for o in m.group(c).filter(|o| o.kind == "ConfigMap") {
        if volume_exists(&o.name) {
            podman::podman(&["volume", "rm", "-f", &o.name], None)?;
        }
    }
    Ok(())
}

/// Why a component is not started on this host, if it is not.
pub fn skip_reason(images: &Images, c: Component) -> Option<String> {
    (c == Component::Grafana && images.flavor == Flavor::Local).then(|| {
        "skipped: no Grafana image can be built offline (no Debian package); its pods are \
         rendered and validated — deploy them with --images official where images can be pulled"
            .to_owned()
    })
}

/// Fails early, naming every image that is neither present nor pullable.
///
/// # Errors
/// [`DeployError::MissingImage`] for the first missing one.
pub fn check_images(images: &Images) -> Result<(), DeployError> {
    for (role, image) in images.by_role() {
        if role == "grafana" && images.flavor == Flavor::Local {
            continue;
        }
        if images.flavor == Flavor::Local && !podman::image_exists(image) {
            return Err(DeployError::MissingImage {
                role: role.into(),
                image: image.into(),
                hint: "build the offline images first: podman/images/build.sh".into(),
            });
        }
    }
    Ok(())
}

/// Brings everything up, component by component; `progress` gets one line per step.
///
/// # Errors
/// Setup, image, secret, podman and readiness errors ([`DeployError`]).
pub async fn up(
    loaded: &LoadedTopology,
    s: &Settings,
    progress: &dyn Fn(&str),
) -> Result<Vec<Step>, DeployError> {
    for line in podman::setup(&s.network)? {
        progress(&line);
    }
    check_images(&s.images)?;
    let secrets = SecretValues::resolve(loaded)?;
    podman::replace_secret(SECRET_NAME, &secrets.podman_payload())?;
    let m = manifest::build(&loaded.topology, &s.images)?;
    let tls_dir = match TlsFiles::resolve(loaded)? {
        Some(files) => {
            let base = tls::staging_dir(loaded);
            for uid in tls_users(&m) {
                files.stage(&base, uid)?;
            }
            progress(&format!(
                "[tls]: {} staged per pod user under {} (mounted read-only at {})",
                files.names().join(", "),
                base.display(),
                chgate_topology::render::clickhouse::POD_TLS_DIR
            ));
            Some(base)
        }
        None => None,
    };
    let mut steps = Vec::new();
    for c in Component::ORDER {
        let pods = m.pods(c);
        if let Some(reason) = skip_reason(&s.images, c) {
            progress(&format!("{}: {reason}", c.as_str()));
            steps.push(Step {
                component: c,
                pods,
                seconds: 0.0,
                skipped: Some(reason),
            });
            continue;
        }
        progress(&format!(
            "{}: podman kube play ({})",
            c.as_str(),
            pods.join(", ")
        ));
        let started = Instant::now();
        play(&m, c, &s.network, tls_dir.as_deref())?;
        wait_ready(loaded, c, &pods, started + s.timeout).await?;
        if c == Component::ClickHouse {
            progress("clickhouse: ON CLUSTER DDL and replication check");
            replication_check(loaded).await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        progress(&format!("{}: ready in {seconds:.1} s", c.as_str()));
        steps.push(Step {
            component: c,
            pods,
            seconds,
            skipped: None,
        });
    }
    Ok(steps)
}

async fn replication_check(loaded: &LoadedTopology) -> Result<(), DeployError> {
    let stack = chgate_localstack::Stack::new(loaded);
    let ch = SecretValues::clickhouse(loaded)?;
    chgate_localstack::ready::replication_check(&stack, &ch)
        .await
        .map_err(|detail| DeployError::NotReady {
            component: "clickhouse".into(),
            waited_s: 0,
            detail,
        })
}

/// Waits until every pod of `c` answers; on timeout the error carries each failing check and
/// the last log lines of that component's containers.
///
/// # Errors
/// [`DeployError::NotReady`].
pub async fn wait_ready(
    loaded: &LoadedTopology,
    c: Component,
    pods: &[String],
    deadline: Instant,
) -> Result<(), DeployError> {
    let start = Instant::now();
    loop {
        let failing: Vec<String> = health(loaded, c)
            .await
            .into_iter()
            .filter_map(|(pod, r)| r.err().map(|e| format!("{pod}: {e}")))
            .collect();
        if failing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let mut detail = failing.join("; ");
            for p in pods {
                for (container, state) in container_states(p) {
                    let tail = podman::logs_tail(&container, 8);
                    detail.push_str(&format!(
                        "\n--- {container} ({state}), last log lines:\n{tail}"
                    ));
                }
            }
            return Err(DeployError::NotReady {
                component: c.as_str().into(),
                waited_s: start.elapsed().as_secs(),
                detail,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn container_states(pod: &str) -> Vec<(String, String)> {
    podman::pods(&[format!("{}={pod}", manifest::INSTANCE_LABEL)])
        .unwrap_or_default()
        .into_iter()
        .flat_map(|p| p.containers)
        .collect()
}

/// Health of every pod of a component, checked from the host through its hostPorts:
/// `Ok(detail)` (version or role) or `Err(reason)`.
pub async fn health(
    loaded: &LoadedTopology,
    c: Component,
) -> Vec<(String, Result<String, String>)> {
    let t = &loaded.topology;
    let host = t.network.listen.to_string();
    let mut out = Vec::new();
    match c {
        Component::Keeper => {
            for k in t.keeper_nodes() {
                let r = probe::keeper(&host, k.client_port)
                    .await
                    .map(|(mode, v)| format!("{mode} {v}"));
                out.push((k.name, r));
            }
        }
        Component::ClickHouse => {
            let ch = SecretValues::clickhouse(loaded).map_err(|e| e.to_string());
            for n in t.clickhouse_nodes() {
                let r = match &ch {
                    Ok(pw) => match probe::clickhouse_client(t, n.http_port, pw) {
                        Ok(client) => probe::clickhouse(t, &client).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e.clone()),
                };
                out.push((n.name, r));
            }
        }
        Component::Postgres => {
            let r = match SecretValues::postgres(loaded) {
                Ok(pw) => probe::postgres(t, &pw).await,
                Err(e) => Err(e.to_string()),
            };
            out.push(("postgres".into(), r));
        }
        Component::Grafana | Component::Gateway => {
            let list = if c == Component::Grafana {
                t.grafanas()
            } else {
                t.gateways()
            };
            for g in list {
                out.push((
                    g.name.clone(),
                    probe::gateway(&host, g.port).await.map(|_| "ok".into()),
                ));
            }
        }
        Component::Haproxy => {
            let stats = probe::haproxy(&host, t.haproxy_stats_port()).await;
            let front = probe::gateway(&host, t.haproxy_gateway_port()).await;
            out.push((
                "haproxy".into(),
                stats.and(front).map(|_| "gateway front ok".into()),
            ));
        }
    }
    out
}

/// What `down` removed.
#[derive(Debug, Clone, Default)]
pub struct DownReport {
    /// Pods removed.
    pub pods: Vec<String>,
    /// Volumes removed (`--volumes`).
    pub volumes: Vec<String>,
}

/// Removes this topology's pods (only pods carrying its labels); with `volumes`, also the data
/// volumes the manifest names; the deploy-time podman secret and the pods' `[tls]` copies.
///
/// # Errors
/// [`DeployError::Podman`].
pub fn down(loaded: &LoadedTopology, volumes: bool) -> Result<DownReport, DeployError> {
    let t = &loaded.topology;
    let mut report = DownReport::default();
    let ours = podman::pods(&selector(t))?;
    // Names and volumes do not depend on the images.
    let m = manifest::build(t, &Images::local())?;
    // Reverse start order: front doors first, Keeper last.
    for c in Component::ORDER.iter().rev() {
        let names = m.pods(*c);
        let found: Vec<&str> = ours
            .iter()
            .filter(|p| names.contains(&p.name))
            .map(|p| p.name.as_str())
            .collect();
        if found.is_empty() {
            continue;
        }
        // One command per component: podman stops the pods of a component in parallel.
        let mut stop = vec!["pod", "stop", "-t", "10"];
        stop.extend(&found);
        podman::podman(&stop, None)?;
        let mut rm = vec!["pod", "rm", "-f"];
        rm.extend(&found);
        podman::podman(&rm, None)?;
        report.pods.extend(found.iter().map(|s| (*s).to_owned()));
    }
    for o in m.objects.iter().filter(|o| o.kind == "ConfigMap") {
        if volume_exists(&o.name) {
            podman::podman(&["volume", "rm", "-f", &o.name], None)?;
        }
    }
    if volumes {
        for v in m.volumes() {
            if podman::podman(&["volume", "exists", &v], None).is_ok() {
                podman::podman(&["volume", "rm", "-f", &v], None)?;
                report.volumes.push(v);
            }
        }
    }
    if podman::podman(&["secret", "inspect", SECRET_NAME], None).is_ok() {
        podman::podman(&["secret", "rm", SECRET_NAME], None)?;
    }
    // The pods' copies of the [tls] files (the topology's own files stay).
    let staged = tls::staging_dir(loaded);
    if staged.exists() {
        std::fs::remove_dir_all(&staged).map_err(|source| DeployError::Io {
            path: staged.clone(),
            source,
        })?;
    }
    Ok(report)
}

/// One row of `status`.
#[derive(Debug, Clone)]
pub struct PodRow {
    /// Component.
    pub component: Component,
    /// Pod name.
    pub pod: String,
    /// podman's pod status (`absent` when not created).
    pub state: String,
    /// Containers and their states.
    pub containers: Vec<(String, String)>,
    /// Host-side check: `Ok(detail)` or `Err(reason)`.
    pub health: Result<String, String>,
}

/// Every pod of the manifest with its podman state and health.
///
/// # Errors
/// [`DeployError::Podman`] when podman cannot list pods.
pub async fn status(loaded: &LoadedTopology, images: &Images) -> Result<Vec<PodRow>, DeployError> {
    let t = &loaded.topology;
    let m = manifest::build(t, images)?;
    let states = podman::pods(&selector(t))?;
    let mut rows = Vec::new();
    for c in Component::ORDER {
        let checks = health(loaded, c).await;
        for pod in m.pods(c) {
            let st = states.iter().find(|s| s.name == pod);
            let health = checks
                .iter()
                .find(|(n, _)| *n == pod)
                .map_or_else(|| Err("no check".into()), |(_, r)| r.clone());
            rows.push(PodRow {
                component: c,
                state: st.map_or_else(|| "absent".into(), |s| s.status.clone()),
                containers: st.map(|s| s.containers.clone()).unwrap_or_default(),
                health,
                pod,
            });
        }
    }
    Ok(rows)
}
