//! Credentials in pods: one Secret, `chgate-secrets`, generated at deploy time from the topology's
//! secret references and never written to disk.
//!
//! The rendered manifests only *reference* it (`env[].valueFrom.secretKeyRef`); its values reach
//! the runtime through a pipe: `chgate deploy up` feeds them to `podman secret create ... -` (the
//! form `podman kube play` 4.3 resolves `secretKeyRef` against: a JSON map of base64 values), and
//! `chgate deploy secret` prints a Kubernetes Secret to stdout for `| kubectl apply -f -`.
//! Servers read them from environment variables: ClickHouse through `from_env`, PostgreSQL as
//! `POSTGRES_PASSWORD`, Grafana and the gateway through the pod-side topology's `{ env = .. }`.

use base64::Engine as _;
use chgate_topology::render::clickhouse::{PASSWORD_ENV, PASSWORD_SHA256_ENV};
use chgate_topology::{LoadedTopology, Secret, SecretRef};
use serde_json::{json, Map, Value};

use crate::DeployError;

/// Name of the Secret (and of the podman secret).
pub const SECRET_NAME: &str = "chgate-secrets";

/// Environment variable holding PostgreSQL's password in the pods (pod-side topology reference).
pub const POSTGRES_PASSWORD_ENV: &str = "CHGATE_POSTGRES_PASSWORD";
/// Environment variable holding Grafana's shared `secret_key` in the pods.
pub const GRAFANA_SECRET_KEY_ENV: &str = "CHGATE_GRAFANA_SECRET_KEY";

/// One value of the Secret: its key and the environment variable it is exposed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The ClickHouse account's password.
    ClickHousePassword,
    /// Hex SHA-256 of it, for `users.xml`.
    ClickHousePasswordSha256,
    /// The PostgreSQL role's password.
    PostgresPassword,
    /// Grafana's `[security] secret_key`.
    GrafanaSecretKey,
}

impl Key {
    /// Every key.
    pub const ALL: [Key; 4] = [
        Key::ClickHousePassword,
        Key::ClickHousePasswordSha256,
        Key::PostgresPassword,
        Key::GrafanaSecretKey,
    ];

    /// Key in the Secret's data.
    pub fn name(self) -> &'static str {
        match self {
            Key::ClickHousePassword => "clickhouse-password",
            Key::ClickHousePasswordSha256 => "clickhouse-password-sha256",
            Key::PostgresPassword => "postgres-password",
            Key::GrafanaSecretKey => "grafana-secret-key",
        }
    }

    /// The environment variable servers read it from.
    pub fn env(self) -> &'static str {
        match self {
            Key::ClickHousePassword => PASSWORD_ENV,
            Key::ClickHousePasswordSha256 => PASSWORD_SHA256_ENV,
            Key::PostgresPassword => POSTGRES_PASSWORD_ENV,
            Key::GrafanaSecretKey => GRAFANA_SECRET_KEY_ENV,
        }
    }

    /// A container `env` entry taking this value from the Secret.
    pub fn env_var(self) -> Value {
        self.env_var_as(self.env())
    }

    /// A container `env` entry named `var` taking this value from the Secret.
    pub fn env_var_as(self, var: &str) -> Value {
        json!({
            "name": var,
            "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": self.name()}},
        })
    }
}

/// The resolved values. `Debug` shows no value (fields are [`Secret`]s).
#[derive(Debug, Clone)]
pub struct SecretValues {
    clickhouse_password: Secret,
    postgres_password: Secret,
    grafana_secret_key: Secret,
}

impl SecretValues {
    /// Resolves the topology's references; a `file` reference whose file is missing gets a fresh
    /// random value (0600), as `chgate local up` does, so host tools and pods agree.
    ///
    /// # Errors
    /// [`DeployError::Secret`] naming the reference that cannot be read or created.
    pub fn resolve(loaded: &LoadedTopology) -> Result<Self, DeployError> {
        let t = &loaded.topology;
        let get = |r: &SecretRef| resolve_one(loaded, r);
        Ok(SecretValues {
            clickhouse_password: get(&t.clickhouse.password)?,
            postgres_password: get(&t.postgres.password)?,
            grafana_secret_key: get(&t.grafana.secret_key)?,
        })
    }

    /// The ClickHouse password alone (host-side checks).
    ///
    /// # Errors
    /// [`DeployError::Secret`].
    pub fn clickhouse(loaded: &LoadedTopology) -> Result<Secret, DeployError> {
        resolve_one(loaded, &loaded.topology.clickhouse.password)
    }

    /// The PostgreSQL password alone (host-side checks).
    ///
    /// # Errors
    /// [`DeployError::Secret`].
    pub fn postgres(loaded: &LoadedTopology) -> Result<Secret, DeployError> {
        resolve_one(loaded, &loaded.topology.postgres.password)
    }

    /// Values from already resolved secrets (tests).
    pub fn new(clickhouse: Secret, postgres: Secret, grafana: Secret) -> Self {
        SecretValues {
            clickhouse_password: clickhouse,
            postgres_password: postgres,
            grafana_secret_key: grafana,
        }
    }

    fn value(&self, k: Key) -> String {
        match k {
            Key::ClickHousePassword => self.clickhouse_password.expose().to_owned(),
            Key::ClickHousePasswordSha256 => self.clickhouse_password.sha256_hex(),
            Key::PostgresPassword => self.postgres_password.expose().to_owned(),
            Key::GrafanaSecretKey => self.grafana_secret_key.expose().to_owned(),
        }
    }

    fn data(&self) -> Map<String, Value> {
        let b64 = base64::engine::general_purpose::STANDARD;
        Key::ALL
            .iter()
            .map(|k| (k.name().to_owned(), Value::from(b64.encode(self.value(*k)))))
            .collect()
    }

    /// The payload of `podman secret create chgate-secrets -` that podman 4.3's `kube play`
    /// resolves `secretKeyRef` against: a JSON object of base64 values.
    pub fn podman_payload(&self) -> String {
        Value::Object(self.data()).to_string()
    }

    /// The Kubernetes Secret (for `chgate deploy secret | kubectl apply -f -`).
    pub fn kubernetes_secret(&self, labels: &Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET_NAME, "labels": labels},
            "type": "Opaque",
            "data": Value::Object(self.data()),
        })
    }
}

fn resolve_one(loaded: &LoadedTopology, r: &SecretRef) -> Result<Secret, DeployError> {
    chgate_localstack::prepare::ensure_secret(r, &loaded.state_dir).map_err(|e| {
        DeployError::Secret {
            reference: r.to_string(),
            reason: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> SecretValues {
        SecretValues::new(Secret::new("ch"), Secret::new("pg"), Secret::new("gk"))
    }

    #[test]
    fn payload_is_base64_of_every_key() {
        let v: Value = serde_json::from_str(&values().podman_payload()).expect("json");
        assert_eq!(v["clickhouse-password"], "Y2g=");
        assert_eq!(v["postgres-password"], "cGc=");
        assert_eq!(v.as_object().map(Map::len), Some(Key::ALL.len()));
        let sha = base64::engine::general_purpose::STANDARD
            .decode(v["clickhouse-password-sha256"].as_str().unwrap_or_default())
            .expect("b64");
        assert_eq!(sha, Secret::new("ch").sha256_hex().as_bytes());
    }

    #[test]
    fn debug_shows_no_value() {
        let d = format!("{:?}", values());
        assert!(!d.contains("\"ch\"") && !d.contains("pg\""), "{d}");
    }

    #[test]
    fn env_var_references_the_secret() {
        let e = Key::PostgresPassword.env_var();
        assert_eq!(e["name"], POSTGRES_PASSWORD_ENV);
        assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], SECRET_NAME);
    }
}
