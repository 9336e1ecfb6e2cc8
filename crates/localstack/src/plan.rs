//! The pure part: which processes the rig runs, with which command lines, files and ports.

use std::path::{Path, PathBuf};

use chgate_topology::Topology;
use serde::Serialize;

use crate::account::user_of;

/// Paths of the Debian-packaged programs the rig runs.
pub mod bin {
    /// ClickHouse server (package clickhouse-server).
    pub const CLICKHOUSE_SERVER: &str = "/usr/sbin/clickhouse-server";
    /// ClickHouse client (package clickhouse-client).
    pub const CLICKHOUSE_CLIENT: &str = "/usr/bin/clickhouse-client";
    /// Java, for ZooKeeper.
    pub const JAVA: &str = "/usr/bin/java";
    /// ZooKeeper's jar (package zookeeper).
    pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
    /// PostgreSQL 15 binaries (package postgresql-15).
    pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
    /// HAProxy (package haproxy).
    pub const HAPROXY: &str = "/usr/sbin/haproxy";
}

/// Kind of process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// ZooKeeper 3.8 node (Keeper stand-in).
    Keeper,
    /// ClickHouse server.
    ClickHouse,
    /// PostgreSQL.
    Postgres,
    /// chgate gateway (`chgate serve`).
    Gateway,
    /// HAProxy.
    Haproxy,
}

impl Role {
    /// Lower-case name used on the command line (`chgate local logs clickhouse`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Keeper => "keeper",
            Role::ClickHouse => "clickhouse",
            Role::Postgres => "postgres",
            Role::Gateway => "gateway",
            Role::Haproxy => "haproxy",
        }
    }
}

/// One process of the rig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// What it is.
    pub role: Role,
    /// Unique name (`ch-s1r2`, `keeper-3`, `postgres`, `haproxy`).
    pub name: String,
    /// Its working directory (config, data, logs) under the state dir.
    pub dir: PathBuf,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Ports it listens on, named.
    pub ports: Vec<(String, u16)>,
    /// Run as this system user when the caller is root (see [`crate::account`]); `None` or a
    /// non-root caller: as the caller.
    pub run_as: Option<String>,
    /// Signal that stops it cleanly (PostgreSQL: SIGINT = fast shutdown).
    pub stop_signal: StopSignal,
}

/// How a service is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StopSignal {
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
}

impl Service {
    /// Pid file written when the process starts.
    pub fn pid_file(&self, state_dir: &Path) -> PathBuf {
        state_dir.join("run").join(format!("{}.pid", self.name))
    }

    /// Where its stdout/stderr go.
    pub fn log_file(&self, state_dir: &Path) -> PathBuf {
        state_dir.join("log").join(format!("{}.log", self.name))
    }

    /// A string that appears in the process's command line and nowhere else: its own directory.
    /// `down` signals a pid only if `/proc/PID/cmdline` contains it, so a recycled pid is safe.
    pub fn marker(&self) -> String {
        format!("{}/", self.dir.display())
    }
}

/// How to run a gateway: the `chgate` executable and the topology file it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayCommand {
    /// The `chgate` binary.
    pub exe: PathBuf,
    /// The topology file.
    pub topology: PathBuf,
}

/// Every process of the rig in start order: Keeper, ClickHouse, PostgreSQL, gateways (when a
/// gateway command is known), HAProxy.
pub fn services(t: &Topology, state_dir: &Path, gateway: Option<&GatewayCommand>) -> Vec<Service> {
    let mut out = Vec::new();
    for k in t.keeper_nodes() {
        let dir = state_dir.join(&k.name);
        out.push(Service {
            role: Role::Keeper,
            argv: vec![
                bin::JAVA.into(),
                format!("-Xmx{}m", t.keeper.heap_mb),
                "-Xms32m".into(),
                "-XX:+UseSerialGC".into(),
                format!("-Dzookeeper.log.dir={}", dir.join("log").display()),
                "-cp".into(),
                "/usr/share/java/*:/etc/zookeeper/conf".into(),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain".into(),
                dir.join("zoo.cfg").display().to_string(),
            ],
            ports: vec![
                ("client".into(), k.client_port),
                ("peer".into(), k.peer_port),
                ("election".into(), k.election_port),
            ],
            name: k.name,
            dir,
            run_as: Some(user_of(Role::Keeper).into()),
            stop_signal: StopSignal::Term,
        });
    }
    for n in t.clickhouse_nodes() {
        let dir = state_dir.join(&n.name);
        out.push(Service {
            role: Role::ClickHouse,
            argv: vec![
                bin::CLICKHOUSE_SERVER.into(),
                format!("--config-file={}", dir.join("config.xml").display()),
            ],
            ports: vec![
                ("http".into(), n.http_port),
                ("tcp".into(), n.tcp_port),
                ("interserver".into(), n.interserver_port),
            ],
            name: n.name,
            dir,
            run_as: Some(user_of(Role::ClickHouse).into()),
            stop_signal: StopSignal::Term,
        });
    }
    let pg_dir = state_dir.join("postgres");
    out.push(Service {
        role: Role::Postgres,
        name: "postgres".into(),
        argv: vec![
            format!("{}/postgres", bin::PG_BIN),
            "-D".into(),
            pg_dir.join("data").display().to_string(),
            "-p".into(),
            t.postgres_port().to_string(),
            "-c".into(),
            format!("listen_addresses={}", t.network.listen),
            "-c".into(),
            format!(
                "unix_socket_directories={}",
                pg_dir.join("socket").display()
            ),
            "-c".into(),
            "shared_buffers=128MB".into(),
            "-c".into(),
            "max_connections=200".into(),
        ]
        .into_iter()
        .chain(postgres_tls_args(t, &pg_dir))
        .collect(),
        ports: vec![("postgres".into(), t.postgres_port())],
        dir: pg_dir,
        run_as: Some(user_of(Role::Postgres).into()),
        stop_signal: StopSignal::Int,
    });
    for (i, g) in t.gateways().into_iter().enumerate() {
        let Some(cmd) = gateway else { break };
        let dir = state_dir.join(&g.name);
        out.push(Service {
            role: Role::Gateway,
            argv: vec![
                cmd.exe.display().to_string(),
                "--config".into(),
                cmd.topology.display().to_string(),
                "serve".into(),
                "--gateway-config".into(),
                dir.join("gateway.toml").display().to_string(),
                "--instance".into(),
                (i + 1).to_string(),
            ],
            ports: vec![("http".into(), g.port)],
            name: g.name,
            dir,
            run_as: Some(user_of(Role::Gateway).into()),
            stop_signal: StopSignal::Term,
        });
    }
    let hp_dir = state_dir.join("haproxy");
    out.push(Service {
        role: Role::Haproxy,
        name: "haproxy".into(),
        argv: vec![
            bin::HAPROXY.into(),
            "-db".into(),
            "-f".into(),
            hp_dir.join("haproxy.cfg").display().to_string(),
        ],
        ports: vec![
            ("gateway".into(), t.haproxy_gateway_port()),
            ("grafana".into(), t.haproxy_grafana_port()),
            ("stats".into(), t.haproxy_stats_port()),
        ],
        dir: hp_dir,
        run_as: Some(user_of(Role::Haproxy).into()),
        stop_signal: StopSignal::Term,
    });
    out
}

/// PostgreSQL's TLS settings with `[tls]`: the certificate and key copied into its directory
/// (it refuses a key it does not own); plain-text clients are still accepted.
fn postgres_tls_args(t: &Topology, pg_dir: &Path) -> Vec<String> {
    if t.tls.is_none() {
        return Vec::new();
    }
    let tls = pg_dir.join("tls");
    vec![
        "-c".into(),
        "ssl=on".into(),
        "-c".into(),
        format!("ssl_cert_file={}", tls.join("server.crt").display()),
        "-c".into(),
        format!("ssl_key_file={}", tls.join("server.key").display()),
    ]
}

/// Selects services by role name (`clickhouse`, `keeper`, `postgres`, `haproxy`) or exact name
/// (`ch-s1r2`, `keeper-1`).
pub fn select<'a>(all: &'a [Service], what: &str) -> Vec<&'a Service> {
    all.iter()
        .filter(|s| s.role.as_str() == what || s.name == what)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rig_has_every_process_once_in_start_order() {
        let s = services(&Topology::default(), Path::new("/st"), None);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "keeper-1", "keeper-2", "keeper-3", "ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2",
                "postgres", "haproxy"
            ]
        );
        assert!(
            s.iter()
                .all(|x| x.argv.iter().any(|a| a.contains(&x.marker()))),
            "marker in argv"
        );
        let users: Vec<&str> = s.iter().filter_map(|x| x.run_as.as_deref()).collect();
        assert_eq!(
            users,
            [
                "zookeeper",
                "zookeeper",
                "zookeeper",
                "clickhouse",
                "clickhouse",
                "clickhouse",
                "clickhouse",
                "postgres",
                "haproxy"
            ],
            "every process has a non-root user"
        );
    }

    #[test]
    fn select_by_role_or_name() {
        let gw = GatewayCommand {
            exe: "/bin/chgate".into(),
            topology: "/t.toml".into(),
        };
        let s = services(&Topology::default(), Path::new("/st"), Some(&gw));
        assert_eq!(select(&s, "gateway").len(), 2);
        assert!(
            s[9].argv.contains(&"/st/gateway-2/gateway.toml".to_owned()),
            "{:?}",
            s[9].argv
        );
        assert_eq!(select(&s, "clickhouse").len(), 4);
        assert_eq!(select(&s, "keeper-2").len(), 1);
        assert!(select(&s, "grafana").is_empty());
    }
}
