//! Health probes, one per role: each answers "healthy, and which version" or says what is wrong.

use std::time::Duration;

use chgate_clickhouse_http::{Client, ClientConfig};
use chgate_topology::{Secret, Topology};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The outcome of a probe.
pub type Probe = Result<String, String>;

/// A ClickHouse client for the node listening on `http_port`.
///
/// # Errors
/// A message when the HTTP client cannot be built.
pub fn clickhouse_client(
    t: &Topology,
    http_port: u16,
    password: &Secret,
) -> Result<Client, String> {
    let url = format!("http://{}:{http_port}", t.network.listen);
    let mut cfg = ClientConfig::new(url, t.clickhouse.user.clone(), password.clone());
    cfg.timeout = Duration::from_secs(10);
    Client::new(cfg).map_err(|e| e.to_string())
}

/// `SELECT version()` answers and `system.clusters` lists every host of the cluster.
pub async fn clickhouse(t: &Topology, client: &Client) -> Probe {
    let version = client.version().await.map_err(|e| e.to_string())?;
    let sql = format!(
        "SELECT count() FROM system.clusters WHERE cluster = {}",
        chgate_clickhouse_http::quote(&t.cluster.name)
    );
    let hosts: u32 = client
        .query(&sql)
        .await
        .map_err(|e| e.to_string())?
        .trim()
        .parse()
        .unwrap_or(0);
    let want = t.cluster.shards * t.cluster.replicas;
    if hosts != want {
        return Err(format!(
            "system.clusters lists {hosts} hosts of cluster {}, want {want}",
            t.cluster.name
        ));
    }
    Ok(version.to_string())
}

/// Sends a ZooKeeper four-letter word and returns the reply.
///
/// # Errors
/// A message naming the port when the node does not answer.
pub async fn four_letter_word(host: &str, port: u16, word: &str) -> Result<String, String> {
    let io = async {
        let mut s = TcpStream::connect((host, port)).await?;
        s.write_all(word.as_bytes()).await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    match tokio::time::timeout(Duration::from_secs(3), io).await {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(format!("keeper {host}:{port}: {e}")),
        Err(_) => Err(format!(
            "keeper {host}:{port}: no answer to `{word}` within 3s"
        )),
    }
}

/// Mode (`leader` / `follower`) and version of a ZooKeeper node, from `srvr`.
pub async fn keeper(host: &str, port: u16) -> Result<(String, String), String> {
    let text = four_letter_word(host, port, "srvr").await?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    match field("Mode:") {
        Some(mode) if mode == "leader" || mode == "follower" || mode == "standalone" => {
            let version = field("Zookeeper version:").unwrap_or_default();
            let version = version
                .split([',', '-'])
                .next()
                .unwrap_or_default()
                .to_owned();
            Ok((mode, version))
        }
        _ => Err(format!(
            "keeper {host}:{port} is not serving: {}",
            text.lines().next().unwrap_or("no reply")
        )),
    }
}

/// A session of the superuser role `postgres.user` on database `dbname`, opened the way every
/// part of chgate connects ([`chgate_pg_tls::connect`]): with the topology's `[tls]`, TLS is
/// required and the server's certificate verified against `[tls] ca` (no plain-text fallback);
/// without, plain text. Gives up after 3 s.
///
/// # Errors
/// A message starting with `postgres:` when the CA file, TCP, the handshake or the login fails.
pub async fn postgres_client(
    t: &Topology,
    password: &Secret,
    dbname: &str,
) -> Result<tokio_postgres::Client, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(t.network.listen.to_string())
        .port(t.postgres_port())
        .user(&t.postgres.user)
        .password(password.expose())
        .dbname(dbname)
        .connect_timeout(Duration::from_secs(3));
    let ca = t.tls.as_ref().map(|tls| tls.ca.as_path());
    chgate_pg_tls::connect(&cfg, ca)
        .await
        .map_err(|e| format!("postgres: {e}"))
}

/// PostgreSQL accepts a password login (over TLS with `[tls]`, see [`postgres_client`]) and
/// answers `SHOW server_version`.
pub async fn postgres(t: &Topology, password: &Secret) -> Probe {
    let client = postgres_client(t, password, "postgres").await?;
    let row = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| format!("postgres: {e}"))?;
    let v: String = row.get(0);
    Ok(v.split_whitespace().next().unwrap_or_default().to_owned())
}

/// HAProxy's stats page answers.
pub async fn haproxy(host: &str, stats_port: u16) -> Probe {
    http_ok(host, stats_port, "/;csv", "haproxy stats")
        .await
        .map(|()| haproxy_version())
}

/// `Ok` when HAProxy's stats (`/;csv`) show every server of `backend` `UP`; else a message naming
/// the servers that are not (the stack is not usable through HAProxy until its health checks pass).
pub async fn haproxy_backend_up(host: &str, stats_port: u16, backend: &str) -> Result<(), String> {
    let csv = http_get(host, stats_port, "/;csv", "haproxy stats").await?;
    let down = servers_not_up(&csv, backend);
    if down.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "haproxy backend {backend}: not yet passing health checks: {}",
            down.join(", ")
        ))
    }
}

/// `server status` of each server of `backend` in HAProxy's stats CSV whose status (column 18)
/// is not `UP` (e.g. `DOWN`, `UP 1/2` counts as up, `DOWN 1/2` does not, `MAINT`).
fn servers_not_up(csv: &str, backend: &str) -> Vec<String> {
    csv.lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > 17 && f[0] == backend && f[1] != "BACKEND" && f[1] != "FRONTEND")
        .filter(|f| !f[17].starts_with("UP"))
        .map(|f| format!("{} {}", f[1], f[17]))
        .collect()
}

/// Answers `Ok` when `GET path` on `host:port` returns HTTP 200 within 3 s; else a message
/// starting with `what` and the address.
async fn http_ok(host: &str, port: u16, path: &str, what: &str) -> Result<(), String> {
    http_get(host, port, path, what).await.map(drop)
}

/// The whole response (status line, headers, body) of `GET path` when it is HTTP 200 within 3 s.
async fn http_get(host: &str, port: u16, path: &str, what: &str) -> Result<String, String> {
    let io = async {
        let mut s = TcpStream::connect((host, port)).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    match tokio::time::timeout(Duration::from_secs(3), io).await {
        Ok(Ok(text)) if text.starts_with("HTTP/1.") && text.contains(" 200 ") => Ok(text),
        Ok(Ok(text)) => Err(format!(
            "{what} {host}:{port}: {}",
            text.lines().next().unwrap_or("empty reply")
        )),
        Ok(Err(e)) => Err(format!("{what} {host}:{port}: {e}")),
        Err(_) => Err(format!("{what} {host}:{port}: no answer within 3s")),
    }
}

/// `haproxy -v`'s version number, or `unknown`.
fn haproxy_version() -> String {
    std::process::Command::new(crate::plan::bin::HAPROXY)
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace()
                .skip_while(|w| *w != "version")
                .nth(1)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A gateway answers `GET /healthz`.
pub async fn gateway(host: &str, port: u16) -> Probe {
    http_ok(host, port, "/healthz", "gateway")
        .await
        .map(|()| env!("CARGO_PKG_VERSION").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_servers_that_are_not_up_are_named() {
        let row = |px: &str, sv: &str, status: &str| {
            let mut f = vec![""; 20];
            f[0] = px;
            f[1] = sv;
            f[17] = status;
            f.join(",")
        };
        let csv = [
            "# pxname,svname,...".to_owned(),
            row("gateway", "FRONTEND", "OPEN"),
            row("gateways", "gateway-1", "UP"),
            row("gateways", "gateway-2", "DOWN 1/2"),
            row("gateways", "BACKEND", "UP"),
            row("grafanas", "grafana-1", "DOWN"),
        ]
        .join("\n");
        assert_eq!(servers_not_up(&csv, "gateways"), ["gateway-2 DOWN 1/2"]);
        assert!(servers_not_up(&csv.replace("DOWN 1/2", "UP 1/2"), "gateways").is_empty());
    }
}
