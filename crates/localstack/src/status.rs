//! `status`: one row per process (role, pid, user, ports, healthy, version) and every endpoint.

use serde::Serialize;

use crate::plan::Role;
use crate::process::{pid_state, PidState};
use crate::{probe, Stack};

/// One process's state.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// Role.
    pub role: Role,
    /// Name.
    pub name: String,
    /// Pid, when running.
    pub pid: Option<i32>,
    /// The user the process runs as (its effective uid's name), when running.
    pub user: Option<String>,
    /// Named ports.
    pub ports: Vec<(String, u16)>,
    /// Whether its probe passed.
    pub healthy: bool,
    /// Version reported by the server, when healthy.
    pub version: Option<String>,
    /// The probe's complaint, when unhealthy.
    pub detail: Option<String>,
}

/// How to reach everything, for scripts.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoints {
    /// HAProxy's gateway front URL.
    pub gateway_url: String,
    /// Each gateway's own URL.
    pub gateways: Vec<String>,
    /// ClickHouse per host.
    pub clickhouse: Vec<ClickHouseEndpoint>,
    /// Keeper connect string (`host:port,...`).
    pub keeper: String,
    /// PostgreSQL DSN (password by reference, never inline).
    pub postgres_dsn: String,
    /// Where the PostgreSQL password is.
    pub postgres_password_ref: String,
    /// Where the ClickHouse password is.
    pub clickhouse_password_ref: String,
    /// HAProxy stats page.
    pub haproxy_stats_url: String,
    /// HAProxy's Grafana front URL.
    pub grafana_url: String,
}

/// One ClickHouse host.
#[derive(Debug, Clone, Serialize)]
pub struct ClickHouseEndpoint {
    /// Node name.
    pub name: String,
    /// Shard number.
    pub shard: u32,
    /// Replica number.
    pub replica: u32,
    /// HTTP URL.
    pub http: String,
    /// Native TCP address.
    pub tcp: String,
}

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// State directory.
    pub state_dir: String,
    /// Per process.
    pub services: Vec<ServiceStatus>,
    /// Endpoints.
    pub endpoints: Endpoints,
}

impl StatusReport {
    /// Whether every process is running and healthy.
    pub fn all_healthy(&self) -> bool {
        self.services.iter().all(|s| s.healthy)
    }
}

impl Stack {
    /// Probes every process.
    pub async fn status(&self) -> StatusReport {
        let t = self.topology();
        let host = t.network.listen.to_string();
        let ch = self.clickhouse_password().ok();
        let pg = self.postgres_password().ok();
        let mut services = Vec::new();
        for svc in self.services() {
            let pid = match pid_state(svc, self.state_dir()) {
                PidState::Running(p) => Some(p),
                _ => None,
            };
            let probe = if pid.is_none() {
                Err("not running".to_owned())
            } else {
                match svc.role {
                    Role::Keeper => probe::keeper(&host, svc.ports[0].1)
                        .await
                        .map(|(m, v)| format!("{v} ({m})")),
                    Role::ClickHouse => match &ch {
                        Some(pw) => match probe::clickhouse_client(t, svc.ports[0].1, pw) {
                            Ok(c) => probe::clickhouse(t, &c).await,
                            Err(e) => Err(e),
                        },
                        None => Err("ClickHouse password unavailable".into()),
                    },
                    Role::Postgres => match &pg {
                        Some(pw) => probe::postgres(t, pw).await,
                        None => Err("PostgreSQL password unavailable".into()),
                    },
                    Role::Haproxy => probe::haproxy(&host, t.haproxy_stats_port()).await,
                    Role::Gateway => probe::gateway(&host, svc.ports[0].1).await,
                }
            };
            services.push(ServiceStatus {
                role: svc.role,
                name: svc.name.clone(),
                pid,
                user: pid.and_then(crate::account::process_user),
                ports: svc.ports.clone(),
                healthy: probe.is_ok(),
                version: probe.as_ref().ok().cloned(),
                detail: probe.err(),
            });
        }
        StatusReport {
            state_dir: self.state_dir().display().to_string(),
            services,
            endpoints: self.endpoints(),
        }
    }

    /// Every endpoint of the rig (pure).
    pub fn endpoints(&self) -> Endpoints {
        let t = self.topology();
        let h = t.network.listen.to_string();
        Endpoints {
            gateway_url: format!("http://{h}:{}", t.haproxy_gateway_port()),
            gateways: t
                .gateways()
                .iter()
                .map(|g| format!("http://{h}:{}", g.port))
                .collect(),
            clickhouse: t
                .clickhouse_nodes()
                .into_iter()
                .map(|n| ClickHouseEndpoint {
                    http: format!("http://{h}:{}", n.http_port),
                    tcp: format!("{h}:{}", n.tcp_port),
                    name: n.name,
                    shard: n.shard,
                    replica: n.replica,
                })
                .collect(),
            keeper: t
                .keeper_nodes()
                .iter()
                .map(|k| format!("{h}:{}", k.client_port))
                .collect::<Vec<_>>()
                .join(","),
            postgres_dsn: format!(
                "postgres://{}@{h}:{}/{}",
                t.postgres.user,
                t.postgres_port(),
                t.postgres.database
            ),
            postgres_password_ref: ref_display(&t.postgres.password, self.state_dir()),
            clickhouse_password_ref: ref_display(&t.clickhouse.password, self.state_dir()),
            haproxy_stats_url: format!("http://{h}:{}/", t.haproxy_stats_port()),
            grafana_url: format!("http://{h}:{}", t.haproxy_grafana_port()),
        }
    }
}

fn ref_display(r: &chgate_topology::SecretRef, state_dir: &std::path::Path) -> String {
    match r.file_path(state_dir) {
        Some(p) => format!("file:{}", p.display()),
        None => r.to_string(),
    }
}
