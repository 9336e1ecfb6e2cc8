//! The topology file's sections, their defaults and the derived node list.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::SecretRef;

/// The whole deployment, as written in `chgate.toml`. Every config chgate renders comes from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topology {
    /// Directory for data, logs, pid files, rendered configs and generated secrets; relative paths
    /// are resolved against the topology file's directory. Default `.chgate`.
    pub state_dir: PathBuf,
    /// Cluster shape.
    pub cluster: ClusterSection,
    /// Listen address and port layout.
    pub network: NetworkSection,
    /// Keeper ensemble (ZooKeeper 3.8 on the local rig, ClickHouse Keeper in pods).
    pub keeper: KeeperSection,
    /// ClickHouse servers.
    pub clickhouse: ClickHouseSection,
    /// chgate gateways.
    pub gateway: GatewaySection,
    /// Grafana instances.
    pub grafana: GrafanaSection,
    /// PostgreSQL (Grafana's database, gateway tenants).
    pub postgres: PostgresSection,
    /// HAProxy in front of the gateways and Grafana.
    pub haproxy: HaproxySection,
    /// TLS certificates; absent = plain HTTP between the parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSection>,
}

/// `[tls]`: PEM files for TLS between chgate's parts. When present, every ClickHouse node also
/// serves HTTPS (`https_port`, from `<openSSL><server>`), gateways and `chgate migrate` talk to
/// ClickHouse over HTTPS trusting `ca`, and HAProxy terminates TLS on its gateway front.
/// Relative paths are resolved against `state_dir`; `chgate local up` generates a local CA and a
/// server certificate for 127.0.0.1/localhost when the files are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// CA certificate that signed `cert`; clients trust it.
    pub ca: PathBuf,
    /// Server certificate chain (ClickHouse HTTPS, HAProxy).
    pub cert: PathBuf,
    /// The certificate's private key.
    pub key: PathBuf,
    /// HTTPS port of the first ClickHouse node (node i gets +i). Default `base_port + 1201`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clickhouse_https_port: Option<u16>,
    /// HAProxy's HTTPS front for the gateways (beside the plain one). Default `base_port + 443`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub haproxy_gateway_port: Option<u16>,
}

impl TlsSection {
    /// The paths with relative ones resolved against `base` (the state directory).
    pub fn resolved(&self, base: &std::path::Path) -> TlsSection {
        let abs = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        TlsSection {
            ca: abs(&self.ca),
            cert: abs(&self.cert),
            key: abs(&self.key),
            clickhouse_https_port: self.clickhouse_https_port,
            haproxy_gateway_port: self.haproxy_gateway_port,
        }
    }

    /// Certificate and key in one PEM file, as HAProxy's `crt` wants it (written by
    /// `chgate local up` beside `cert`, mode 0600).
    pub fn haproxy_pem(&self) -> PathBuf {
        self.cert.with_file_name("haproxy.pem")
    }
}

/// `[cluster]`: name and shape of the ClickHouse cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Cluster name used in `remote_servers`, `ON CLUSTER` and the `{cluster}` macro. Default `chgate`.
    pub name: String,
    /// Number of shards. Default 2.
    pub shards: u32,
    /// Replicas per shard. Default 2.
    pub replicas: u32,
    /// Database holding the metrics tables. Default `metrics`.
    pub database: String,
}

/// `[network]`: where everything listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Address every local process binds to; must be loopback. Default `127.0.0.1`.
    pub listen: IpAddr,
    /// First port of the layout; each role's default port is an offset from it (see README).
    /// Default 18000.
    pub base_port: u16,
}

/// `[keeper]`: the coordination ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeeperSection {
    /// Number of nodes; odd, so a quorum exists. Default 3.
    pub nodes: u32,
    /// Client port of node 1 (node n gets +n-1). Default `base_port + 181`.
    pub client_port: Option<u16>,
    /// Quorum (raft) port of node 1. Default `base_port + 281`.
    pub peer_port: Option<u16>,
    /// Leader election port of node 1 (ZooKeeper only). Default `base_port + 381`.
    pub election_port: Option<u16>,
    /// Session timeout in milliseconds the ClickHouse servers use. Default 30000.
    pub session_timeout_ms: u32,
    /// JVM heap per ZooKeeper node in MiB (local rig). Default 256.
    pub heap_mb: u32,
}

/// `[clickhouse]`: servers and the account chgate uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseSection {
    /// HTTP port of the first node (node i gets +i). Default `base_port + 121`.
    pub http_port: Option<u16>,
    /// Native TCP port of the first node. Default `base_port + 1001`.
    pub tcp_port: Option<u16>,
    /// Interserver (replication) port of the first node. Default `base_port + 1101`.
    pub interserver_port: Option<u16>,
    /// User chgate, the migrator and Grafana log in as. Default `chgate`.
    pub user: String,
    /// That user's password. Default `{ file = "secrets/clickhouse_password" }` (generated by
    /// `chgate local up` when missing).
    pub password: SecretRef,
    /// Keeper path under which `ReplicatedMergeTree` tables keep their state. Default `/clickhouse`.
    pub keeper_root: String,
    /// Path of the `ON CLUSTER` DDL queue in Keeper. Default `/clickhouse/task_queue/ddl`.
    pub ddl_queue_path: String,
}

/// `[gateway]`: the ingest gateways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Number of gateway processes. Default 2.
    pub instances: u32,
    /// HTTP port of gateway 1 (gateway n gets +n-1). Default `base_port + 441`.
    pub port: Option<u16>,
}

/// `[grafana]`: the Grafana instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrafanaSection {
    /// Number of Grafana instances. Default 3.
    pub instances: u32,
    /// HTTP port of instance 1. Default `base_port + 301`.
    pub port: Option<u16>,
    /// Unified-alerting HA gossip port of instance 1. Default `base_port + 394`.
    pub alerting_port: Option<u16>,
    /// Shared `[security] secret_key`. Default `{ file = "secrets/grafana_secret_key" }`.
    pub secret_key: SecretRef,
    /// Datasource uid. Default `chgate-clickhouse`.
    pub datasource_uid: String,
    /// Datasource name. Default `ClickHouse (chgate)`.
    pub datasource_name: String,
}

/// `[postgres]`: PostgreSQL for Grafana and gateway tenants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresSection {
    /// Port. Default `base_port + 432`.
    pub port: Option<u16>,
    /// Role chgate uses. Default `chgate`.
    pub user: String,
    /// Database chgate uses. Default `chgate`.
    pub database: String,
    /// Database Grafana uses. Default `grafana`.
    pub grafana_database: String,
    /// The role's password. Default `{ file = "secrets/postgres_password" }`.
    pub password: SecretRef,
}

/// `[haproxy]`: the load balancer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaproxySection {
    /// Front port for the gateways. Default `base_port + 428`.
    pub gateway_port: Option<u16>,
    /// Front port for Grafana. Default `base_port + 300`.
    pub grafana_port: Option<u16>,
    /// Stats page port. Default `base_port + 404`.
    pub stats_port: Option<u16>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            state_dir: PathBuf::from(".chgate"),
            cluster: ClusterSection::default(),
            network: NetworkSection::default(),
            keeper: KeeperSection::default(),
            clickhouse: ClickHouseSection::default(),
            gateway: GatewaySection::default(),
            grafana: GrafanaSection::default(),
            postgres: PostgresSection::default(),
            haproxy: HaproxySection::default(),
            tls: None,
        }
    }
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            name: "chgate".into(),
            shards: 2,
            replicas: 2,
            database: "metrics".into(),
        }
    }
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            listen: IpAddr::from([127, 0, 0, 1]),
            base_port: 18000,
        }
    }
}

impl Default for KeeperSection {
    fn default() -> Self {
        KeeperSection {
            nodes: 3,
            client_port: None,
            peer_port: None,
            election_port: None,
            session_timeout_ms: 30_000,
            heap_mb: 256,
        }
    }
}

impl Default for ClickHouseSection {
    fn default() -> Self {
        ClickHouseSection {
            http_port: None,
            tcp_port: None,
            interserver_port: None,
            user: "chgate".into(),
            password: SecretRef::File("secrets/clickhouse_password".into()),
            keeper_root: "/clickhouse".into(),
            ddl_queue_path: "/clickhouse/task_queue/ddl".into(),
        }
    }
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            instances: 2,
            port: None,
        }
    }
}

impl Default for GrafanaSection {
    fn default() -> Self {
        GrafanaSection {
            instances: 3,
            port: None,
            alerting_port: None,
            secret_key: SecretRef::File("secrets/grafana_secret_key".into()),
            datasource_uid: "chgate-clickhouse".into(),
            datasource_name: "ClickHouse (chgate)".into(),
        }
    }
}

impl Default for PostgresSection {
    fn default() -> Self {
        PostgresSection {
            port: None,
            user: "chgate".into(),
            database: "chgate".into(),
            grafana_database: "grafana".into(),
            password: SecretRef::File("secrets/postgres_password".into()),
        }
    }
}

/// One ClickHouse server of the cluster, with its resolved ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClickHouseNode {
    /// Stable name, `ch-s{shard}r{replica}`.
    pub name: String,
    /// 1-based shard number (the `{shard}` macro).
    pub shard: u32,
    /// 1-based replica number within the shard (the `{replica}` macro is the node name).
    pub replica: u32,
    /// HTTP port.
    pub http_port: u16,
    /// Native TCP port.
    pub tcp_port: u16,
    /// Interserver HTTP port.
    pub interserver_port: u16,
    /// HTTPS port, when the topology has `[tls]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_port: Option<u16>,
}

/// One Keeper node with its resolved ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeeperNode {
    /// 1-based id (`myid` / `server_id`).
    pub id: u32,
    /// Stable name, `keeper-{id}`.
    pub name: String,
    /// Client port.
    pub client_port: u16,
    /// Quorum / raft port.
    pub peer_port: u16,
    /// Election port.
    pub election_port: u16,
}

/// A single-port instance (gateway, Grafana).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    /// Stable name, e.g. `gateway-1`.
    pub name: String,
    /// Its port.
    pub port: u16,
}

/// Adds `offset` to `base`, or `None` on overflow (reported by validation).
pub(crate) fn port_at(explicit: Option<u16>, base: u16, default_offset: u32, index: u32) -> u32 {
    explicit.map_or(u32::from(base) + default_offset, u32::from) + index
}

/// Narrows a computed port; validation has rejected anything over 65535 before this is used.
fn narrow(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(u16::MAX)
}

impl Topology {
    /// Every ClickHouse node, shard-major.
    pub fn clickhouse_nodes(&self) -> Vec<ClickHouseNode> {
        let (c, base) = (&self.clickhouse, self.network.base_port);
        let mut nodes = Vec::new();
        for shard in 1..=self.cluster.shards {
            for replica in 1..=self.cluster.replicas {
                let i = (shard - 1) * self.cluster.replicas + (replica - 1);
                nodes.push(ClickHouseNode {
                    name: format!("ch-s{shard}r{replica}"),
                    shard,
                    replica,
                    http_port: narrow(port_at(c.http_port, base, 121, i)),
                    tcp_port: narrow(port_at(c.tcp_port, base, 1001, i)),
                    interserver_port: narrow(port_at(c.interserver_port, base, 1101, i)),
                    https_port: self
                        .tls
                        .as_ref()
                        .map(|tls| narrow(port_at(tls.clickhouse_https_port, base, 1201, i))),
                });
            }
        }
        nodes
    }

    /// Every Keeper node.
    pub fn keeper_nodes(&self) -> Vec<KeeperNode> {
        let (k, base) = (&self.keeper, self.network.base_port);
        (1..=self.keeper.nodes)
            .map(|id| KeeperNode {
                id,
                name: format!("keeper-{id}"),
                client_port: narrow(port_at(k.client_port, base, 181, id - 1)),
                peer_port: narrow(port_at(k.peer_port, base, 281, id - 1)),
                election_port: narrow(port_at(k.election_port, base, 381, id - 1)),
            })
            .collect()
    }

    /// Every gateway instance.
    pub fn gateways(&self) -> Vec<Instance> {
        instances(
            "gateway",
            self.gateway.instances,
            self.gateway.port,
            self.network.base_port,
            441,
        )
    }

    /// Every Grafana instance.
    pub fn grafanas(&self) -> Vec<Instance> {
        instances(
            "grafana",
            self.grafana.instances,
            self.grafana.port,
            self.network.base_port,
            301,
        )
    }

    /// PostgreSQL's port.
    pub fn postgres_port(&self) -> u16 {
        narrow(port_at(self.postgres.port, self.network.base_port, 432, 0))
    }

    /// HAProxy's gateway front port.
    pub fn haproxy_gateway_port(&self) -> u16 {
        narrow(port_at(
            self.haproxy.gateway_port,
            self.network.base_port,
            428,
            0,
        ))
    }

    /// HAProxy's Grafana front port.
    pub fn haproxy_grafana_port(&self) -> u16 {
        narrow(port_at(
            self.haproxy.grafana_port,
            self.network.base_port,
            300,
            0,
        ))
    }

    /// HAProxy's stats port.
    pub fn haproxy_stats_port(&self) -> u16 {
        narrow(port_at(
            self.haproxy.stats_port,
            self.network.base_port,
            404,
            0,
        ))
    }

    /// HAProxy's HTTPS gateway front, when the topology has `[tls]`.
    pub fn haproxy_gateway_tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|tls| {
            narrow(port_at(
                tls.haproxy_gateway_port,
                self.network.base_port,
                443,
                0,
            ))
        })
    }

    /// Grafana alerting gossip port of the instance with 0-based `index`.
    pub fn grafana_alerting_port(&self, index: u32) -> u16 {
        narrow(port_at(
            self.grafana.alerting_port,
            self.network.base_port,
            394,
            index,
        ))
    }
}

fn instances(role: &str, count: u32, port: Option<u16>, base: u16, off: u32) -> Vec<Instance> {
    (1..=count)
        .map(|n| Instance {
            name: format!("{role}-{n}"),
            port: narrow(port_at(port, base, off, n - 1)),
        })
        .collect()
}
