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

/// Where one instance listens and what it connects to.
struct Endpoints {
    name: String,
    http_port: u16,
    postgres: String,
    alerting_listen: String,
    alerting_advertise: String,
    peers: Vec<String>,
}

fn endpoints(t: &Topology, a: Addressing, index: u32) -> Endpoints {
    let grafanas = t.grafanas();
    let me = grafanas.get(index as usize);
    let peers = alerting_peers(t, a);
    let advertise = peers.get(index as usize).cloned().unwrap_or_default();
    let name = me.map_or_else(|| format!("grafana-{}", index + 1), |g| g.name.clone());
    match a {
        Addressing::Local => Endpoints {
            name,
            http_port: me.map_or(0, |g| g.port),
            postgres: format!("{}:{}", t.network.listen, t.postgres_port()),
            alerting_listen: advertise.clone(),
            alerting_advertise: advertise,
            peers,
        },
        Addressing::Pods => Endpoints {
            name,
            http_port: POD_HTTP_PORT,
            postgres: format!("{POD_POSTGRES_HOST}:{POD_POSTGRES_PORT}"),
            alerting_listen: format!("0.0.0.0:{POD_ALERTING_PORT}"),
            alerting_advertise: advertise,
            peers,
        },
    }
}

/// Grafana's own PostgreSQL connection: on the local rig with `[tls]` (its PostgreSQL runs with
/// `ssl=on`) TLS verified against `[tls] ca`, as chgate's own clients do; otherwise plain text.
/// In pods PostgreSQL also runs with `ssl=on` under `[tls]`, but Grafana's pods do not mount the
/// CA yet, so their connection stays plain text (there is no offline Grafana image to test it).
fn database_tls(t: &Topology, s: &IniSettings) -> String {
    match (&t.tls, s.addressing) {
        (Some(tls), Addressing::Local) => format!(
            "ssl_mode = verify-full\nca_cert_path = {}\n",
            tls.resolved(&s.secrets_dir).ca.display()
        ),
        _ => "ssl_mode = disable\n".to_owned(),
    }
}

/// Renders `grafana.ini` for the instance with 0-based `index`.
pub fn grafana_ini(t: &Topology, s: &IniSettings, index: u32) -> String {
    let e = endpoints(t, s.addressing, index);
    let mut c = format!(
        "# rendered by chgate from the topology for {}; do not edit\n",
        e.name
    );
    c.push_str(
        "# All instances share the database, the secret_key and the provisioning files.\n\n",
    );
    let _ = write!(
        c,
        "[paths]\nprovisioning = {}\n\n",
        s.provisioning_dir.display()
    );
    let bind = s.addressing.bind(t);
    let _ = write!(
        c,
        "[server]\nhttp_addr = {bind}\nhttp_port = {}\n\n",
        e.http_port
    );
    let _ = write!(
        c,
        "[database]\ntype = postgres\nhost = {}\nname = {}\nuser = {}\npassword = {}\n{}\n",
        e.postgres,
        t.postgres.grafana_database,
        t.postgres.user,
        secret_expansion(&t.postgres.password, &s.secrets_dir),
        database_tls(t, s)
    );
    // Sessions and caches in the shared database keep the instances stateless.
    c.push_str("[remote_cache]\ntype = database\n\n");
    let key = secret_expansion(&t.grafana.secret_key, &s.secrets_dir);
    let _ = write!(c, "[security]\nsecret_key = {key}\n\n");
    let _ = write!(
        c,
        "[unified_alerting]\nenabled = true\nha_listen_address = {}\n\
         ha_advertise_address = {}\nha_peers = {}\n\n",
        e.alerting_listen,
        e.alerting_advertise,
        e.peers.join(",")
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
    fn grafana_verifies_postgres_with_the_tls_ca_on_the_local_rig_only() {
        let mut t = Topology::default();
        assert!(grafana_ini(&t, &local(), 0).contains("ssl_mode = disable\n\n"));
        t.tls = Some(chgate_topology::model::TlsSection {
            ca: PathBuf::from("tls/ca.crt"),
            cert: PathBuf::from("tls/server.crt"),
            key: PathBuf::from("tls/server.key"),
            clickhouse_https_port: None,
            haproxy_gateway_port: None,
        });
        let ini = grafana_ini(&t, &local(), 0);
        assert!(
            ini.contains("ssl_mode = verify-full\nca_cert_path = /s/tls/ca.crt\n\n"),
            "{ini}"
        );
        let pods = grafana_ini(&t, &IniSettings::pods(), 0);
        assert!(pods.contains("ssl_mode = disable\n\n"), "{pods}");
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
