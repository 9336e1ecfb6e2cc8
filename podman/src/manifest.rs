//! The Kubernetes objects of a deployment, built from the topology with the same renderers
//! `chgate local` uses (`Addressing::Pods`): per server a Pod, its ConfigMap, a
//! PersistentVolumeClaim for data and a headless Service (stable DNS name in Kubernetes; podman
//! gives each pod its name on the pods' network itself).
//!
//! Objects are grouped by [`Component`] in start order; `chgate deploy up` plays one group at a
//! time and waits for it, `render` writes one file per group.

use std::path::Path;

use chgate_grafana::render::ini::IniSettings;
use chgate_grafana::DatasourceSpec;
use chgate_topology::render::clickhouse::{self, ConfigRoot, NodeContext, POD_TLS_DIR};
use chgate_topology::render::haproxy::{self, POD_GATEWAY_PORT, POD_GRAFANA_PORT};
use chgate_topology::render::{
    keeper, Addressing, POD_CLICKHOUSE_PORTS, POD_KEEPER_ELECTION_PORT, POD_KEEPER_PORTS,
};
use chgate_topology::{ClickHouseNode, Instance, KeeperNode, Secret, Topology};
use serde_json::{json, Map, Value};

use crate::images::{uid, Flavor, Images};
use crate::pod_topology::{pod_topology, pod_topology_toml, POD_STATE_DIR};
use crate::secrets::Key;
use crate::DeployError;

/// Label every object carries; `down` removes only pods with it (and the cluster label).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "chgate");
/// Label naming the topology's cluster, so two deployments on one host stay apart.
pub const CLUSTER_LABEL: &str = "chgate.io/cluster";
/// Label naming the pod an object belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label naming the component.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// The Secret holding the `[tls]` files (`ca.crt`, `tls.crt`, `tls.key`, `haproxy.pem`), mounted
/// read-only at [`POD_TLS_DIR`] by the pods that serve or verify TLS. Created by
/// `chgate deploy secret` for Kubernetes; with podman, `up` mounts per-pod-user copies instead
/// (see [`crate::deploy::podman_yaml`]).
pub const TLS_SECRET_NAME: &str = "chgate-tls";
/// Name of the `[tls]` volume in a pod.
pub const TLS_VOLUME: &str = "tls";
/// Mode of the files in the `[tls]` volume: owner and group read (the pod's `fsGroup` is its
/// user's group, so the non-root server can read the key; PostgreSQL accepts a root-owned key
/// with group read).
pub const TLS_FILE_MODE: u32 = 0o440;

/// A group of objects started together, in dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// Keeper ensemble (ClickHouse Keeper, or ZooKeeper with local images).
    Keeper,
    /// ClickHouse servers.
    ClickHouse,
    /// PostgreSQL.
    Postgres,
    /// Grafana instances.
    Grafana,
    /// Gateways (each with its ambassador).
    Gateway,
    /// HAProxy.
    Haproxy,
}

impl Component {
    /// Start order.
    pub const ORDER: [Component; 6] = [
        Component::Keeper,
        Component::ClickHouse,
        Component::Postgres,
        Component::Grafana,
        Component::Gateway,
        Component::Haproxy,
    ];

    /// Lower-case name (label value, file name).
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Keeper => "keeper",
            Component::ClickHouse => "clickhouse",
            Component::Postgres => "postgres",
            Component::Grafana => "grafana",
            Component::Gateway => "gateway",
            Component::Haproxy => "haproxy",
        }
    }

    /// File `render` writes this group to, e.g. `2-clickhouse.yaml`.
    pub fn file_name(self) -> String {
        let n = Component::ORDER
            .iter()
            .position(|c| *c == self)
            .unwrap_or(0)
            + 1;
        format!("{n}-{}.yaml", self.as_str())
    }
}

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Group it is started with.
    pub component: Component,
    /// `Pod`, `ConfigMap`, `PersistentVolumeClaim`, `Service`.
    pub kind: &'static str,
    /// `metadata.name`.
    pub name: String,
    /// The whole object.
    pub value: Value,
}

/// Every object of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Objects, grouped by component in start order.
    pub objects: Vec<Object>,
}

impl Manifest {
    /// Objects of one group.
    pub fn group(&self, c: Component) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(move |o| o.component == c)
    }

    /// Pod names of one group.
    pub fn pods(&self, c: Component) -> Vec<String> {
        self.group(c)
            .filter(|o| o.kind == "Pod")
            .map(|o| o.name.clone())
            .collect()
    }

    /// Names of every PersistentVolumeClaim (podman volumes of the same name).
    pub fn volumes(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o.kind == "PersistentVolumeClaim")
            .map(|o| o.name.clone())
            .collect()
    }
}

/// Builds the manifest.
///
/// # Errors
/// [`DeployError::Render`] when the pod-side topology cannot be written.
pub fn build(t: &Topology, images: &Images) -> Result<Manifest, DeployError> {
    let mut b = Builder {
        t,
        images,
        objects: Vec::new(),
    };
    for k in t.keeper_nodes() {
        b.keeper(&k);
    }
    for n in t.clickhouse_nodes() {
        b.clickhouse(&n);
    }
    b.postgres();
    b.grafana();
    b.gateways()?;
    b.haproxy();
    b.objects.sort_by_key(|o| o.component);
    Ok(Manifest { objects: b.objects })
}

/// A port a container exposes; `host` publishes it on the topology's loopback address.
struct Port {
    name: &'static str,
    container: u16,
    host: Option<u16>,
}

/// One container, before it becomes JSON.
struct Container {
    name: &'static str,
    image: String,
    command: Vec<String>,
    args: Vec<String>,
    env: Vec<Value>,
    ports: Vec<Port>,
    mounts: Vec<(String, String)>,
    readiness: Value,
    liveness: Value,
    resources: (&'static str, &'static str, &'static str),
    run_as: Option<i64>,
}

impl Container {
    fn new(name: &'static str, image: &str) -> Self {
        Container {
            name,
            image: image.to_owned(),
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            ports: Vec::new(),
            mounts: Vec::new(),
            readiness: Value::Null,
            liveness: Value::Null,
            resources: ("100m", "128Mi", "512Mi"),
            run_as: None,
        }
    }

    fn to_json(&self, listen: &str) -> Value {
        // Only published ports are listed: podman 4.3's `kube play` publishes a containerPort
        // without hostPort on the same host port, on every address. Pod-to-pod ports need no
        // entry (the headless Services list them all).
        let ports: Vec<Value> = self
            .ports
            .iter()
            .filter_map(|p| {
                let h = p.host?;
                Some(json!({
                    "name": p.name, "containerPort": p.container, "protocol": "TCP",
                    "hostPort": h, "hostIP": listen,
                }))
            })
            .collect();
        let mounts: Vec<Value> = self
            .mounts
            .iter()
            .map(|(n, p)| {
                if n == TLS_VOLUME {
                    json!({"name": n, "mountPath": p, "readOnly": true})
                } else {
                    json!({"name": n, "mountPath": p})
                }
            })
            .collect();
        let (cpu, mem, limit) = self.resources;
        let mut security = json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
        });
        if let Some(u) = self.run_as {
            security["runAsUser"] = json!(u);
            security["runAsGroup"] = json!(u);
        }
        let mut c = json!({
            "name": self.name,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": cpu, "memory": mem}, "limits": {"memory": limit}},
            "securityContext": security,
        });
        let opt = |c: &mut Value, k: &str, v: Value, empty: bool| {
            if !empty {
                c[k] = v;
            }
        };
        opt(
            &mut c,
            "command",
            json!(self.command),
            self.command.is_empty(),
        );
        opt(&mut c, "args", json!(self.args), self.args.is_empty());
        opt(&mut c, "env", json!(self.env), self.env.is_empty());
        opt(&mut c, "ports", json!(ports), ports.is_empty());
        opt(&mut c, "volumeMounts", json!(mounts), mounts.is_empty());
        opt(
            &mut c,
            "readinessProbe",
            self.readiness.clone(),
            self.readiness.is_null(),
        );
        opt(
            &mut c,
            "livenessProbe",
            self.liveness.clone(),
            self.liveness.is_null(),
        );
        c
    }
}

fn http_probe(path: &str, port: u16, failures: u32) -> Value {
    json!({
        "httpGet": {"path": path, "port": port},
        "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 3,
        "failureThreshold": failures,
    })
}

fn tcp_probe(port: u16, failures: u32) -> Value {
    json!({
        "tcpSocket": {"port": port},
        "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 3,
        "failureThreshold": failures,
    })
}

fn exec_probe(cmd: &[&str], failures: u32) -> Value {
    json!({
        "exec": {"command": cmd},
        "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 3,
        "failureThreshold": failures,
    })
}

/// The `[tls]` volume: the Secret [`TLS_SECRET_NAME`], files [`TLS_FILE_MODE`].
fn tls_volume() -> Value {
    json!({
        "name": TLS_VOLUME,
        "secret": {"secretName": TLS_SECRET_NAME, "defaultMode": TLS_FILE_MODE},
    })
}

fn env(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The value of [`CLUSTER_LABEL`] for a topology (its cluster name as a valid label value).
pub fn cluster_label_value(t: &Topology) -> String {
    label_value(&t.cluster.name)
}

/// A label value Kubernetes accepts: alphanumerics, `-_.`, at most 63 characters.
fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

struct Builder<'a> {
    t: &'a Topology,
    images: &'a Images,
    objects: Vec<Object>,
}

impl Builder<'_> {
    /// With `[tls]`: mounts the TLS volume into `ct` and returns the volume to add to the pod.
    fn tls(&self, ct: &mut Container) -> Option<Value> {
        self.t.tls.as_ref()?;
        ct.mounts.push((TLS_VOLUME.into(), POD_TLS_DIR.into()));
        Some(tls_volume())
    }

    fn labels(&self, c: Component, instance: &str) -> Value {
        let mut m = Map::new();
        m.insert("app.kubernetes.io/name".into(), json!("chgate"));
        m.insert("app.kubernetes.io/part-of".into(), json!("chgate"));
        m.insert(MANAGED_BY.0.into(), json!(MANAGED_BY.1));
        m.insert(COMPONENT_LABEL.into(), json!(c.as_str()));
        m.insert(INSTANCE_LABEL.into(), json!(instance));
        m.insert(CLUSTER_LABEL.into(), json!(cluster_label_value(self.t)));
        Value::Object(m)
    }

    fn push(&mut self, c: Component, kind: &'static str, name: &str, value: Value) {
        self.objects.push(Object {
            component: c,
            kind,
            name: name.to_owned(),
            value,
        });
    }

    fn config_map(
        &mut self,
        c: Component,
        instance: &str,
        name: &str,
        files: Vec<(String, String)>,
    ) {
        let data: Map<String, Value> = files.into_iter().map(|(k, v)| (k, json!(v))).collect();
        let v = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": self.labels(c, instance)},
            "data": data,
        });
        self.push(c, "ConfigMap", name, v);
    }

    fn claim(&mut self, c: Component, instance: &str, size: &str) -> String {
        let name = format!("chgate-{instance}-data");
        let v = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": self.labels(c, instance)},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        });
        self.push(c, "PersistentVolumeClaim", &name, v);
        name
    }

    /// The Pod plus its headless Service (DNS name = pod name in Kubernetes, also before ready:
    /// a Keeper quorum and ClickHouse replicas must find each other to become ready at all).
    fn pod(
        &mut self,
        c: Component,
        name: &str,
        user: i64,
        containers: &[Container],
        volumes: Vec<Value>,
    ) {
        let listen = self.t.network.listen.to_string();
        let service_ports: Vec<Value> = containers
            .iter()
            .flat_map(|k| k.ports.iter())
            .map(|p| json!({"name": p.name, "port": p.container, "targetPort": p.container}))
            .collect();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": self.labels(c, name)},
            "spec": {
                "hostname": name,
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": user, "runAsGroup": user, "fsGroup": user,
                },
                "containers": containers.iter().map(|k| k.to_json(&listen)).collect::<Vec<_>>(),
                "volumes": volumes,
            },
        });
        self.push(c, "Pod", name, pod);
        let mut selector = Map::new();
        selector.insert(INSTANCE_LABEL.into(), json!(name));
        selector.insert(CLUSTER_LABEL.into(), json!(cluster_label_value(self.t)));
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": self.labels(c, name)},
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "selector": selector,
                "ports": service_ports,
            },
        });
        self.push(c, "Service", name, svc);
    }

    fn keeper(&mut self, k: &KeeperNode) {
        let c = Component::Keeper;
        let (client, raft) = POD_KEEPER_PORTS;
        let config = format!("chgate-{}-config", k.name);
        let mut ct = Container::new("keeper", &self.images.keeper);
        let (data_dir, file, text) = match self.images.flavor {
            Flavor::Local => {
                let dir = "/var/lib/zookeeper";
                let cfg = keeper::zoo_cfg_for(self.t, k, Addressing::Pods, Path::new(dir));
                ct.command = strings(&["sh", "-c"]);
                ct.args = vec![format!(
                    "rm -f {dir}/myid && echo {id} > {dir}/myid && exec java -Xmx{heap}m -Xms32m -XX:+UseSerialGC \
                     -Dzookeeper.log.dir={dir} -cp '/usr/share/java/*:/etc/zookeeper/conf' \
                     org.apache.zookeeper.server.quorum.QuorumPeerMain /etc/chgate/keeper/zoo.cfg",
                    id = k.id,
                    heap = self.t.keeper.heap_mb
                )];
                (dir, "zoo.cfg", cfg)
            }
            Flavor::Official => {
                let dir = "/var/lib/clickhouse-keeper";
                let cfg = keeper::keeper_xml(self.t, k, Addressing::Pods, Path::new(dir));
                ct.command = strings(&[
                    "/usr/bin/clickhouse-keeper",
                    "--config-file=/etc/chgate/keeper/keeper_config.xml",
                ]);
                (dir, "keeper_config.xml", cfg)
            }
        };
        self.config_map(c, &k.name, &config, vec![(file.into(), text)]);
        let data = self.claim(c, &k.name, "2Gi");
        ct.ports = vec![
            Port {
                name: "client",
                container: client,
                host: Some(k.client_port),
            },
            Port {
                name: "raft",
                container: raft,
                host: None,
            },
        ];
        if self.images.flavor == Flavor::Local {
            ct.ports.push(Port {
                name: "election",
                container: POD_KEEPER_ELECTION_PORT,
                host: None,
            });
        }
        ct.mounts = vec![
            ("config".into(), "/etc/chgate/keeper".into()),
            ("data".into(), data_dir.into()),
        ];
        ct.readiness = tcp_probe(client, 3);
        ct.liveness = tcp_probe(client, 12);
        ct.resources = ("100m", "256Mi", "768Mi");
        let volumes = vec![
            json!({"name": "config", "configMap": {"name": config}}),
            json!({"name": "data", "persistentVolumeClaim": {"claimName": data}}),
        ];
        self.pod(c, &k.name, uid::CLICKHOUSE, &[ct], volumes);
    }

    fn clickhouse(&mut self, n: &ClickHouseNode) {
        let c = Component::ClickHouse;
        let (http, tcp, interserver) = POD_CLICKHOUSE_PORTS;
        let root = match self.images.flavor {
            Flavor::Local => ConfigRoot::Yandex,
            Flavor::Official => ConfigRoot::ClickHouse,
        };
        let dir = Path::new("/var/lib/clickhouse");
        let cx = NodeContext {
            dir,
            addressing: Addressing::Pods,
            root,
        };
        let config = format!("chgate-{}-config", n.name);
        let files = vec![
            ("config.xml".into(), clickhouse::config_xml(self.t, n, cx)),
            (
                "users.xml".into(),
                clickhouse::users_xml_from_env(self.t, Addressing::Pods, root),
            ),
        ];
        self.config_map(c, &n.name, &config, files);
        let data = self.claim(c, &n.name, "20Gi");
        let mut ct = Container::new("clickhouse", &self.images.clickhouse);
        ct.command = strings(&[
            "/usr/bin/clickhouse-server",
            "--config-file=/etc/chgate/clickhouse/config.xml",
        ]);
        ct.env = vec![
            Key::ClickHousePassword.env_var(),
            Key::ClickHousePasswordSha256.env_var(),
        ];
        ct.ports = vec![
            Port {
                name: "http",
                container: http,
                host: Some(n.http_port),
            },
            Port {
                name: "native",
                container: tcp,
                host: Some(n.tcp_port),
            },
            Port {
                name: "interserver",
                container: interserver,
                host: None,
            },
        ];
        if let Some(https) = n.https_port {
            ct.ports.push(Port {
                name: "https",
                container: clickhouse::POD_HTTPS_PORT,
                host: Some(https),
            });
        }
        ct.mounts = vec![
            ("config".into(), "/etc/chgate/clickhouse".into()),
            ("data".into(), dir.display().to_string()),
        ];
        ct.readiness = http_probe("/ping", http, 3);
        ct.liveness = http_probe("/ping", http, 12);
        ct.resources = ("250m", "512Mi", "4Gi");
        let mut volumes = vec![
            json!({"name": "config", "configMap": {"name": config}}),
            json!({"name": "data", "persistentVolumeClaim": {"claimName": data}}),
        ];
        volumes.extend(self.tls(&mut ct));
        self.pod(c, &n.name, uid::CLICKHOUSE, &[ct], volumes);
    }

    fn postgres(&mut self) {
        let c = Component::Postgres;
        let name = "postgres";
        let data = self.claim(c, name, "10Gi");
        let mut ct = Container::new("postgres", &self.images.postgres);
        ct.command = strings(&["docker-entrypoint.sh"]);
        ct.args = strings(&[
            "postgres",
            "-c",
            "listen_addresses=*",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
        ]);
        ct.env = vec![
            env("POSTGRES_USER", &self.t.postgres.user),
            Key::PostgresPassword.env_var_as("POSTGRES_PASSWORD"),
            // A subdirectory: a fresh volume may hold lost+found, which initdb refuses.
            env("PGDATA", "/var/lib/postgresql/data/pgdata"),
        ];
        ct.ports = vec![Port {
            name: "postgres",
            container: 5432,
            host: Some(self.t.postgres_port()),
        }];
        ct.mounts = vec![("data".into(), "/var/lib/postgresql/data".into())];
        let tls = self.tls(&mut ct);
        if tls.is_some() {
            // As on the local rig: with [tls] clients require SSL (verified against the CA).
            ct.args.extend([
                "-c".into(),
                "ssl=on".into(),
                "-c".into(),
                format!("ssl_cert_file={POD_TLS_DIR}/tls.crt"),
                "-c".into(),
                format!("ssl_key_file={POD_TLS_DIR}/tls.key"),
            ]);
        }
        let ready = [
            "pg_isready",
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            &self.t.postgres.user,
        ];
        ct.readiness = exec_probe(&ready, 3);
        ct.liveness = exec_probe(&ready, 12);
        ct.resources = ("100m", "256Mi", "1Gi");
        let mut volumes =
            vec![json!({"name": "data", "persistentVolumeClaim": {"claimName": data}})];
        volumes.extend(tls);
        self.pod(c, name, uid::POSTGRES, &[ct], volumes);
    }

    fn grafana(&mut self) {
        let c = Component::Grafana;
        let pt = pod_topology(self.t);
        // The datasource YAML names the password by `$__env{}` only; no value is needed to render.
        let spec = DatasourceSpec::from_topology(&pt, Addressing::Pods, Secret::new(String::new()));
        let files = chgate_grafana::render::render_all(&pt, &spec, &IniSettings::pods());
        let in_dir = |dir: &str| -> Vec<(String, String)> {
            files
                .iter()
                .filter(|f| f.path.parent() == Some(Path::new(dir)))
                .filter_map(|f| {
                    Some((f.path.file_name()?.to_str()?.to_owned(), f.contents.clone()))
                })
                .collect()
        };
        self.config_map(
            c,
            "grafana",
            "chgate-grafana-datasources",
            in_dir("datasources"),
        );
        self.config_map(
            c,
            "grafana",
            "chgate-grafana-dashboards",
            in_dir("dashboards"),
        );
        let instances = in_dir("instances");
        for g in &self.t.grafanas() {
            let ini_name = format!("{}.ini", g.name);
            let ini = instances
                .iter()
                .find(|(n, _)| *n == ini_name)
                .map(|(_, v)| v.clone());
            self.grafana_pod(g, ini.unwrap_or_default());
        }
    }

    fn grafana_pod(&mut self, g: &Instance, ini: String) {
        let c = Component::Grafana;
        let config = format!("chgate-{}-config", g.name);
        self.config_map(c, &g.name, &config, vec![("grafana.ini".into(), ini)]);
        let mut ct = Container::new("grafana", &self.images.grafana);
        ct.env = vec![
            env("GF_PATHS_CONFIG", "/etc/chgate/grafana/grafana.ini"),
            env("GF_INSTALL_PLUGINS", "grafana-clickhouse-datasource"),
            Key::PostgresPassword.env_var(),
            Key::GrafanaSecretKey.env_var(),
            Key::ClickHousePassword.env_var(),
        ];
        ct.ports = vec![
            Port {
                name: "http",
                container: POD_GRAFANA_PORT,
                host: Some(g.port),
            },
            Port {
                name: "alerting",
                container: chgate_grafana::render::ini::POD_ALERTING_PORT,
                host: None,
            },
        ];
        ct.mounts = vec![
            ("config".into(), "/etc/chgate/grafana".into()),
            (
                "datasources".into(),
                "/etc/grafana/provisioning/datasources".into(),
            ),
            (
                "dashboards".into(),
                "/etc/grafana/provisioning/dashboards".into(),
            ),
            ("storage".into(), "/var/lib/grafana".into()),
        ];
        ct.readiness = http_probe("/api/health", POD_GRAFANA_PORT, 3);
        ct.liveness = http_probe("/api/health", POD_GRAFANA_PORT, 12);
        ct.resources = ("100m", "256Mi", "1Gi");
        let volumes = vec![
            json!({"name": "config", "configMap": {"name": config}}),
            json!({"name": "datasources", "configMap": {"name": "chgate-grafana-datasources"}}),
            json!({"name": "dashboards", "configMap": {"name": "chgate-grafana-dashboards"}}),
            json!({"name": "storage", "emptyDir": {}}),
        ];
        self.pod(c, &g.name, uid::GRAFANA, &[ct], volumes);
    }

    fn gateways(&mut self) -> Result<(), DeployError> {
        let c = Component::Gateway;
        let toml = pod_topology_toml(self.t)?;
        self.config_map(
            c,
            "gateway",
            "chgate-topology",
            vec![("chgate.toml".into(), toml)],
        );
        for (i, g) in self.t.gateways().iter().enumerate() {
            self.gateway_pod(g, i + 1);
        }
        Ok(())
    }

    fn gateway_pod(&mut self, g: &Instance, n: usize) {
        let c = Component::Gateway;
        let amb = format!("chgate-{}-ambassador", g.name);
        self.config_map(
            c,
            &g.name,
            &amb,
            vec![(
                "haproxy.cfg".into(),
                haproxy::gateway_ambassador_cfg(self.t, g),
            )],
        );
        let data = self.claim(c, &g.name, "5Gi");
        let mut gw = Container::new("gateway", &self.images.gateway);
        gw.command = strings(&["/usr/local/bin/chgate"]);
        gw.args = vec![
            "--config".into(),
            "/etc/chgate/topology/chgate.toml".into(),
            "serve".into(),
            "--instance".into(),
            n.to_string(),
        ];
        gw.env = vec![
            env("CHGATE_LOG", "info"),
            Key::ClickHousePassword.env_var(),
            Key::PostgresPassword.env_var(),
        ];
        gw.mounts = vec![
            ("topology".into(), "/etc/chgate/topology".into()),
            ("data".into(), POD_STATE_DIR.into()),
        ];
        // Probes go through the ambassador, the pod's only non-loopback listener.
        gw.readiness = http_probe("/readyz", POD_GATEWAY_PORT, 3);
        gw.liveness = http_probe("/healthz", POD_GATEWAY_PORT, 12);
        gw.resources = ("200m", "256Mi", "1Gi");
        let mut am = Container::new("ambassador", &self.images.haproxy);
        am.command = strings(&["haproxy", "-db", "-f", "/etc/chgate/ambassador/haproxy.cfg"]);
        am.ports = vec![Port {
            name: "http",
            container: POD_GATEWAY_PORT,
            host: Some(g.port),
        }];
        am.mounts = vec![("ambassador".into(), "/etc/chgate/ambassador".into())];
        am.liveness = tcp_probe(POD_GATEWAY_PORT, 6);
        am.resources = ("50m", "32Mi", "128Mi");
        am.run_as = Some(uid::HAPROXY);
        let mut volumes = vec![
            json!({"name": "topology", "configMap": {"name": "chgate-topology"}}),
            json!({"name": "ambassador", "configMap": {"name": amb}}),
            json!({"name": "data", "persistentVolumeClaim": {"claimName": data}}),
        ];
        // The gateway verifies ClickHouse's certificate against the CA (the pod-side topology's
        // [tls] points here); the ambassador passes TLS through in TCP mode.
        volumes.extend(self.tls(&mut gw));
        self.pod(c, &g.name, uid::CHGATE, &[gw, am], volumes);
    }

    fn haproxy(&mut self) {
        let c = Component::Haproxy;
        let name = "haproxy";
        let config = "chgate-haproxy-config";
        self.config_map(
            c,
            name,
            config,
            vec![(
                "haproxy.cfg".into(),
                haproxy::haproxy_cfg(self.t, Addressing::Pods),
            )],
        );
        let t = self.t;
        let mut ct = Container::new("haproxy", &self.images.haproxy);
        ct.command = strings(&["haproxy", "-db", "-f", "/etc/chgate/haproxy/haproxy.cfg"]);
        ct.ports = vec![
            Port {
                name: "gateway",
                container: t.haproxy_gateway_port(),
                host: Some(t.haproxy_gateway_port()),
            },
            Port {
                name: "grafana",
                container: t.haproxy_grafana_port(),
                host: Some(t.haproxy_grafana_port()),
            },
            Port {
                name: "stats",
                container: t.haproxy_stats_port(),
                host: Some(t.haproxy_stats_port()),
            },
        ];
        if let Some(port) = t.haproxy_gateway_tls_port() {
            ct.ports.push(Port {
                name: "gateway-tls",
                container: port,
                host: Some(port),
            });
        }
        ct.mounts = vec![("config".into(), "/etc/chgate/haproxy".into())];
        ct.readiness = http_probe("/", t.haproxy_stats_port(), 3);
        ct.liveness = http_probe("/", t.haproxy_stats_port(), 12);
        ct.resources = ("100m", "64Mi", "256Mi");
        let mut volumes = vec![json!({"name": "config", "configMap": {"name": config}})];
        volumes.extend(self.tls(&mut ct));
        self.pod(c, name, uid::HAPROXY, &[ct], volumes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(images: &Images) -> Manifest {
        build(&Topology::default(), images).expect("builds")
    }

    #[test]
    fn every_server_has_a_pod_in_start_order() {
        let m = manifest(&Images::local());
        assert_eq!(
            m.pods(Component::Keeper),
            ["keeper-1", "keeper-2", "keeper-3"]
        );
        assert_eq!(m.pods(Component::ClickHouse).len(), 4);
        assert_eq!(m.pods(Component::Grafana).len(), 3);
        assert_eq!(m.pods(Component::Gateway), ["gateway-1", "gateway-2"]);
        let order: Vec<Component> = m.objects.iter().map(|o| o.component).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
        assert_eq!(m.volumes().len(), 3 + 4 + 1 + 2);
    }

    #[test]
    fn host_ports_are_loopback_only_and_no_secret_value_is_rendered() {
        let m = manifest(&Images::official());
        let text = serde_json::to_string(&m.objects.iter().map(|o| &o.value).collect::<Vec<_>>())
            .expect("json");
        assert!(text.contains("\"hostIP\":\"127.0.0.1\""));
        assert!(!text.contains("hostIP\":\"0.0.0.0"));
        assert!(!text.contains("<password>") && !text.contains("password_sha256_hex>"));
        assert!(text.contains("secretKeyRef"));
    }

    #[test]
    fn flavour_picks_keeper_kind_and_config_root() {
        let local = manifest(&Images::local());
        let official = manifest(&Images::official());
        let cm = |m: &Manifest, name: &str| {
            m.objects
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.value["data"].clone())
        };
        let l = cm(&local, "chgate-keeper-1-config").expect("cm");
        assert!(l["zoo.cfg"]
            .as_str()
            .is_some_and(|s| s.contains("server.2=keeper-2:9234:9334")));
        let o = cm(&official, "chgate-keeper-1-config").expect("cm");
        assert!(o["keeper_config.xml"]
            .as_str()
            .is_some_and(|s| s.contains("<raft_configuration>")));
        let ch = cm(&official, "chgate-ch-s1r1-config").expect("cm");
        assert!(ch["config.xml"]
            .as_str()
            .is_some_and(|s| s.contains("<clickhouse>")));
    }

    #[test]
    fn label_values_are_sanitized() {
        assert_eq!(label_value("my cluster!"), "my-cluster");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
    }
}
