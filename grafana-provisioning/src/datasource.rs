//! The desired ClickHouse datasource, derived from the topology: the one definition the database
//! upsert and the provisioning YAML both render.

use chgate_topology::render::{Addressing, POD_CLICKHOUSE_PORTS};
use chgate_topology::{Secret, SecretRef, Topology};
use serde_json::{json, Value};

use crate::GrafanaError;

/// Plugin id of the official ClickHouse datasource.
pub const PLUGIN_TYPE: &str = "grafana-clickhouse-datasource";
/// Grafana organisation the datasource lives in.
pub const ORG_ID: i64 = 1;
/// Access mode: queries go through the Grafana backend (the plugin is backend-only).
pub const ACCESS: &str = "proxy";
/// Environment variable the provisioning YAML reads the password from when the topology names a
/// file (Grafana's file provisioning only expands `$__env{}`/`$__file{}` references, and we
/// promise `$__env{}` only).
pub const PASSWORD_ENV: &str = "CHGATE_CLICKHOUSE_PASSWORD";
/// Longest name Grafana accepts (`maxDatasourceNameLen`).
const MAX_NAME_LEN: usize = 190;
/// Longest uid Grafana accepts (`util.ValidateUID`).
const MAX_UID_LEN: usize = 40;

/// Wire protocol the plugin uses to reach ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Native TCP protocol (port 9000 in pods). Default.
    #[default]
    Native,
    /// HTTP interface (port 8123 in pods).
    Http,
}

impl Protocol {
    /// The value of `jsonData.protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Http => "http",
        }
    }
}

/// Everything chgate wants Grafana's ClickHouse datasource to be.
#[derive(Debug, Clone)]
pub struct DatasourceSpec {
    /// Stable uid; dashboards reference the datasource by it.
    pub uid: String,
    /// Display name (unique per org in Grafana).
    pub name: String,
    /// ClickHouse host the plugin connects to.
    pub host: String,
    /// ClickHouse port for [`Self::protocol`].
    pub port: u16,
    /// Native or HTTP.
    pub protocol: Protocol,
    /// ClickHouse user.
    pub username: String,
    /// Database queries default to (the topology's `cluster.database`).
    pub default_database: String,
    /// The ClickHouse password (plaintext in memory only; `Debug` is redacted).
    pub password: Secret,
    /// Where the password comes from, for `$__env{}` references in YAML.
    pub password_ref: SecretRef,
}

impl DatasourceSpec {
    /// Builds the spec from the topology: first ClickHouse node (any node serves the `Distributed`
    /// tables), native protocol, the topology's ClickHouse user and database.
    pub fn from_topology(t: &Topology, addressing: Addressing, password: Secret) -> Self {
        let node = t.clickhouse_nodes().into_iter().next();
        let (host, port) = node.map_or_else(
            || (addressing.host(t, "ch-s1r1"), POD_CLICKHOUSE_PORTS.1),
            |n| {
                (
                    addressing.host(t, &n.name),
                    addressing.clickhouse_ports(&n).1,
                )
            },
        );
        DatasourceSpec {
            uid: t.grafana.datasource_uid.clone(),
            name: t.grafana.datasource_name.clone(),
            host,
            port,
            protocol: Protocol::Native,
            username: t.clickhouse.user.clone(),
            default_database: t.cluster.database.clone(),
            password,
            password_ref: t.clickhouse.password.clone(),
        }
    }

    /// Checks the uid and name against Grafana's own limits, so Grafana does not reject or
    /// rewrite what we store.
    ///
    /// # Errors
    /// [`GrafanaError::InvalidSpec`] naming the topology field.
    pub fn validate(&self) -> Result<(), GrafanaError> {
        let uid_ok = !self.uid.is_empty()
            && self.uid.len() <= MAX_UID_LEN
            && self
                .uid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !uid_ok {
            return Err(GrafanaError::InvalidSpec {
                field: "grafana.datasource_uid",
                reason: "must be 1-40 characters of a-z, A-Z, 0-9, '-' and '_'",
            });
        }
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(GrafanaError::InvalidSpec {
                field: "grafana.datasource_name",
                reason: "must be 1-190 bytes",
            });
        }
        Ok(())
    }

    /// The datasource's `jsonData`: the plugin's connection settings (no secrets).
    pub fn json_data(&self) -> Value {
        json!({
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol.as_str(),
            "secure": false,
            "username": self.username,
            "defaultDatabase": self.default_database,
            "tlsSkipVerify": false,
        })
    }

    /// The `$__env{...}` reference the provisioning YAML uses for the password.
    pub fn password_env_ref(&self) -> String {
        let var = match &self.password_ref {
            SecretRef::Env(v) => v.as_str(),
            SecretRef::File(_) => PASSWORD_ENV,
        };
        format!("$__env{{{var}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(a: Addressing) -> DatasourceSpec {
        DatasourceSpec::from_topology(&Topology::default(), a, Secret::new("s3cr3t-VALUE"))
    }

    #[test]
    fn local_points_at_the_first_nodes_native_port_pods_at_its_name() {
        let l = spec(Addressing::Local);
        assert_eq!((l.host.as_str(), l.port), ("127.0.0.1", 19001));
        let p = spec(Addressing::Pods);
        assert_eq!((p.host.as_str(), p.port), ("ch-s1r1", 9000));
        assert_eq!(p.json_data()["protocol"], "native");
        assert_eq!(p.json_data()["defaultDatabase"], "metrics");
    }

    #[test]
    fn uid_and_name_follow_grafanas_rules() {
        let mut s = spec(Addressing::Local);
        s.validate().expect("defaults are valid");
        s.uid = "has space".into();
        let e = s.validate().expect_err("space");
        assert!(e.to_string().contains("grafana.datasource_uid"), "{e}");
        s.uid = "x".repeat(41);
        assert!(s.validate().is_err());
        s.uid = "ok".into();
        s.name = "n".repeat(191);
        assert!(s.validate().is_err());
    }

    #[test]
    fn password_reference_is_an_env_reference_only() {
        let mut s = spec(Addressing::Pods);
        assert_eq!(s.password_env_ref(), "$__env{CHGATE_CLICKHOUSE_PASSWORD}");
        s.password_ref = SecretRef::Env("MY_PW".into());
        assert_eq!(s.password_env_ref(), "$__env{MY_PW}");
        assert!(
            !format!("{s:?}").contains("s3cr3t-VALUE"),
            "Debug must not show the password"
        );
    }
}
