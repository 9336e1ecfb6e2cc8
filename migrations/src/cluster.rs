//! The cluster a migration acts on, built from the topology: one HTTP client per node and the
//! mapping from the `host:port` ClickHouse reports (in `ON CLUSTER` replies and the DDL queue) back
//! to the topology's node names.

use std::time::Duration;

use chgate_clickhouse_http::{Client, ClientConfig, ServerVersion};
use chgate_topology::LoadedTopology;

use crate::error::{Error, Result};
use crate::sql::Placeholders;

/// One ClickHouse server of the cluster.
#[derive(Debug, Clone)]
pub struct Node {
    /// Topology name, e.g. `ch-s1r2` (also its `{replica}` macro).
    pub name: String,
    /// 1-based shard (its `{shard}` macro).
    pub shard: u32,
    /// Host other servers use for it (what `ON CLUSTER` replies name).
    pub host: String,
    /// Native TCP port (what `ON CLUSTER` replies name).
    pub tcp_port: u16,
    /// HTTP client.
    pub client: Client,
}

/// Everything `migrate` needs to reach and address the cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `ON CLUSTER` name.
    pub name: String,
    /// Database of the shipped schema and the ledger.
    pub database: String,
    /// Keeper root for replicated tables.
    pub keeper_root: String,
    /// Keeper path of the `ON CLUSTER` queue.
    pub ddl_queue_path: String,
    /// Keeper connect string `host:port,...`.
    pub keeper_hosts: String,
    /// Every node, shard-major.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Builds clients for every node of `loaded` (no request is made). `database` overrides the
    /// topology's `cluster.database`; `request_timeout` bounds one HTTP request (it must exceed
    /// the `ON CLUSTER` wait).
    ///
    /// # Errors
    /// [`Error::Topology`] when the password cannot be read; [`Error::ClickHouse`] when a client
    /// cannot be built.
    pub fn from_topology(
        loaded: &LoadedTopology,
        database: Option<&str>,
        request_timeout: Duration,
    ) -> Result<Self> {
        let t = &loaded.topology;
        let password = t.clickhouse.password.resolve(&loaded.state_dir)?;
        let listen = t.network.listen.to_string();
        let mut nodes = Vec::new();
        for n in t.clickhouse_nodes() {
            // HTTPS with the topology's CA when it has [tls].
            let mut cfg = ClientConfig::for_node(t, &n, password.clone());
            cfg.timeout = request_timeout;
            nodes.push(Node {
                name: n.name,
                shard: n.shard,
                host: listen.clone(),
                tcp_port: n.tcp_port,
                client: Client::new(cfg)?,
            });
        }
        let keeper_hosts: Vec<String> = t
            .keeper_nodes()
            .iter()
            .map(|k| format!("{listen}:{}", k.client_port))
            .collect();
        Ok(Cluster {
            name: t.cluster.name.clone(),
            database: database.unwrap_or(&t.cluster.database).to_owned(),
            keeper_root: t.clickhouse.keeper_root.clone(),
            ddl_queue_path: t.clickhouse.ddl_queue_path.clone(),
            keeper_hosts: keeper_hosts.join(","),
            nodes,
        })
    }

    /// Placeholder values for this cluster.
    ///
    /// # Errors
    /// [`Error::Syntax`] when the database or cluster name is not a plain identifier.
    pub fn placeholders(&self, ttl_days: u32) -> Result<Placeholders> {
        Placeholders::new(&self.database, &self.name, &self.keeper_root, ttl_days).map_err(
            |reason| Error::Syntax {
                file: "(topology)".into(),
                line: 0,
                reason,
            },
        )
    }

    /// The node name for a `host:port` as ClickHouse reports it (Keeper escapes `.` as `%2E`);
    /// the input itself when no node matches.
    pub fn node_name(&self, host_port: &str) -> String {
        let decoded = unescape(host_port);
        let (host, port) = decoded.rsplit_once(':').unwrap_or((&decoded, ""));
        let port: Option<u16> = port.parse().ok();
        self.nodes
            .iter()
            .find(|n| n.name == host)
            .or_else(|| {
                self.nodes
                    .iter()
                    .find(|n| (n.host == host || host == "localhost") && Some(n.tcp_port) == port)
            })
            .map_or(decoded.clone(), |n| n.name.clone())
    }

    /// Lowest server version among the nodes that answer (`None` if none does).
    pub async fn lowest_version(&self) -> Option<ServerVersion> {
        let mut lowest = None;
        for n in &self.nodes {
            if let Ok(v) = n.client.version().await {
                lowest = Some(lowest.map_or(v, |l: ServerVersion| l.min(v)));
            }
        }
        lowest
    }

    /// The first node that answers `SELECT 1`, used to issue `ON CLUSTER` DDL and read the ledger.
    ///
    /// # Errors
    /// [`Error::Preflight`] when no node answers.
    pub async fn coordinator(&self) -> Result<&Node> {
        for n in &self.nodes {
            if n.client.execute("SELECT 1").await.is_ok() {
                return Ok(n);
            }
        }
        Err(Error::Preflight {
            report: "no ClickHouse node of the cluster answers".into(),
        })
    }
}

/// Decodes `%XX` escapes (ZooKeeper node names of the DDL queue).
pub fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chgate_topology::Topology;

    fn cluster() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        std::env::set_var("CHGATE_TEST_CH_PW_CLUSTER", "pw");
        let mut t = Topology::default();
        t.clickhouse.password = chgate_topology::SecretRef::Env("CHGATE_TEST_CH_PW_CLUSTER".into());
        let loaded = LoadedTopology {
            topology: t,
            state_dir: dir.path().to_owned(),
        };
        Cluster::from_topology(&loaded, Some("m1"), Duration::from_secs(5)).expect("cluster")
    }

    #[test]
    fn reported_hosts_map_to_node_names() {
        let c = cluster();
        assert_eq!(c.node_name("127%2E0%2E0%2E1:19002"), "ch-s1r2");
        assert_eq!(c.node_name("127.0.0.1:19004"), "ch-s2r2");
        assert_eq!(c.node_name("ch-s2r1:9000"), "ch-s2r1");
        assert_eq!(c.node_name("10.0.0.9:9000"), "10.0.0.9:9000");
        assert_eq!(c.database, "m1");
        assert_eq!(
            c.keeper_hosts,
            "127.0.0.1:18181,127.0.0.1:18182,127.0.0.1:18183"
        );
    }

    #[test]
    fn unescape_handles_bad_escapes() {
        assert_eq!(unescape("a%2Eb%zz%"), "a.b%zz%");
    }
}
