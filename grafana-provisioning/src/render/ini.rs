//! `grafana.ini` for each of the N stateless Grafana instances: shared PostgreSQL database and
//! `secret_key`, database-backed remote cache, unified-alerting HA peers, provisioning path.
//!
//! Secrets are never written: they appear as Grafana's config expansions `$__file{path}` or
//! `$__env{VAR}`, resolved by Grafana when it reads the file.

use std::fmt::Write as _;
use std::path::PathBuf;

use chgate_topology::render::Addressing;
use chgate_topology::{SecretRef, Topology};

/// Grafana's HTTP port in pods.
pub const POD_HTTP_PORT: u16 = 3000;
/// Unified-alerting gossip port in pods.
pub const POD_ALERTING_PORT: u16 = 9094;
/// PostgreSQL's port in pods.
pub const POD_POSTGRES_PORT: u16 = 5432;
/// PostgreSQL's host name in pods.
pub const POD_POSTGRES_HOST: &str = "postgres";

/// Where the rendered instances run and find their files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniSettings {
    /// Local rig or pods.
    pub addressing: Addressing,
    /// Grafana's `[paths] provisioning` directory (holds `datasources/` and `dashboards/`).
    pub provisioning_dir: PathBuf,
    /// Directory relative `{ file = ".." }` secret references are resolved against.
    pub secrets_dir: PathBuf,
}

impl IniSettings {
    /// Settings for pods: provisioning at `/etc/grafana/provisioning` (the official image's
    /// default); the topology's state directory (holding `secrets/`) mounted at `/etc/chgate`.
    pub fn pods() -> Self {
        IniSettings {
            addressing: Addressing::Pods,
            provisioning_dir: PathBuf::from("/etc/grafana/provisioning"),
            secrets_dir: PathBuf::from("/etc/chgate"),
        }
    }
}

/// The expansion Grafana resolves to the secret's value.
fn secret_expansion(r: &SecretRef, secrets_dir: &std::path::Path) -> String {
    match r {
        SecretRef::Env(var) => format!("$__env{{{var}}}"),
        SecretRef::File(_) => {
            let path = r.file_path(secrets_dir).unwrap_or_default();
            format!("$__file{{{}}}", path.display())
        }
    }
}

/// `host:port` of every instance's alerting gossip endpoint, in instance order.
fn alerting_peers(t: &Topology, a: Addressing) -> Vec<String> {
    t.grafanas()
        .iter()
        .zip(0u32..)
        .map(|(g, i)| match a {
            Addressing::Local => format!("{}:{}", t.network.listen, t.grafana_alerting_port(i)),
            Addressing::Pods => format!("{}:{POD_ALERTING_PORT}", g.name),
        })
        .collect()
}

/// Renders `grafana.ini` for the instance with 0-based `index`.
pub fn grafana_ini(t: &Topology, s: &IniSettings, index: u32) -> String {
    let a = s.addressing;
    let grafanas = t.grafanas();
    let name = grafanas
        .get(index as usize)
        .map_or_else(|| format!("grafana-{}", index + 1), |g| g.name.clone());
    let peers = alerting_peers(t, a);
    let me = peers.get(index as usize).cloned().unwrap_or_default();
    let (http_port, pg_host, listen) = match a {
        Addressing::Local => {
            let port = grafanas.get(index as usize).map_or(0, |g| g.port);
            let pg = format!("{}:{}", t.network.listen, t.postgres_port());
            (port, pg, me.clone())
        }
        Addressing::Pods => (
            POD_HTTP_PORT,
            format!("{POD_POSTGRES_HOST}:{POD_POSTGRES_PORT}"),
            format!("0.0.0.0:{POD_ALERTING_PORT}"),
        ),
    };
    let mut c = format!("# rendered by chgate from the topology for {name}; do not edit\n");
    c.push_str(
        "# All instances share the database, the secret_key and the provisioning files.\n\n",
    );
    let _ = write!(
        c,
        "[paths]\nprovisioning = {}\n\n",
        s.provisioning_dir.display()
    );
    let _ = write!(
        c,
        "[server]\nhttp_addr = {}\nhttp_port = {http_port}\n\n",
        a.bind(t)
    );
    let _ = write!(
        c,
        "[database]\ntype = postgres\nhost = {pg_host}\nname = {}\nuser = {}\npassword = {}\n\
         ssl_mode = disable\n\n",
        t.postgres.grafana_database,
        t.postgres.user,
        secret_expansion(&t.postgres.password, &s.secrets_dir)
    );
    c.push_str("[remote_cache]\ntype = database\n\n");
    let _ = write!(
        c,
        "[security]\nsecret_key = {}\n\n",
        secret_expansion(&t.grafana.secret_key, &s.secrets_dir)
    );
    let _ = write!(
        c,
        "[unified_alerting]\nenabled = true\nha_listen_address = {listen}\n\
         ha_advertise_address = {me}\nha_peers = {}\n\n",
        peers.join(",")
    );
    c.push_str(
        "[plugins]\npreinstall = grafana-clickhouse-datasource\n\n\
         [analytics]\nreporting_enabled = false\ncheck_for_updates = false\n\n\
         [log]\nmode = console\n",
    );
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> IniSettings {
        IniSettings {
            addressing: Addressing::Local,
            provisioning_dir: PathBuf::from("/p"),
            secrets_dir: PathBuf::from("/s"),
        }
    }

    #[test]
    fn each_instance_has_its_port_and_all_share_peers_and_secret() {
        let t = Topology::default();
        let inis: Vec<String> = (0..3).map(|i| grafana_ini(&t, &local(), i)).collect();
        assert!(inis[0].contains("http_port = 18301\n") && inis[2].contains("http_port = 18303\n"));
        let peers = "ha_peers = 127.0.0.1:18394,127.0.0.1:18395,127.0.0.1:18396\n";
        assert!(inis.iter().all(|i| i.contains(peers)));
        assert!(inis[1].contains("ha_advertise_address = 127.0.0.1:18395\n"));
        assert!(inis
            .iter()
            .all(|i| i.contains("secret_key = $__file{/s/secrets/grafana_secret_key}\n")));
        assert!(inis[0].contains("[database]\ntype = postgres\nhost = 127.0.0.1:18432\n"));
    }

    #[test]
    fn pods_use_names_and_container_ports_and_env_refs_stay_refs() {
        let mut t = Topology::default();
        t.grafana.secret_key = SecretRef::Env("GF_KEY".into());
        let ini = grafana_ini(&t, &IniSettings::pods(), 0);
        assert!(ini.contains("http_addr = 0.0.0.0\nhttp_port = 3000\n"));
        assert!(ini.contains("host = postgres:5432\n"));
        assert!(ini.contains("ha_peers = grafana-1:9094,grafana-2:9094,grafana-3:9094\n"));
        assert!(ini.contains("secret_key = $__env{GF_KEY}\n"));
    }
}
