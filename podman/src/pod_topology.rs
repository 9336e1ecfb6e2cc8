//! The topology as the processes inside the pods read it: the user's file with every secret
//! reference turned into `{ env = .. }` (values come from the `chgate-secrets` Secret), the
//! state directory at the gateway's data volume and the `[tls]` files at their mount,
//! `/etc/chgate/tls/{ca.crt,tls.crt,tls.key}`. Ports and names are unchanged, so `chgate serve
//! --instance N` in a pod behaves as on the local rig (behind its ambassador, see
//! `render::haproxy::gateway_ambassador_cfg`).

use chgate_topology::render::clickhouse::POD_TLS_DIR;
use chgate_topology::{SecretRef, Topology};

use crate::secrets::{GRAFANA_SECRET_KEY_ENV, POSTGRES_PASSWORD_ENV};
use crate::DeployError;

/// Where a gateway pod mounts its data volume; the pod-side topology's `state_dir`.
pub const POD_STATE_DIR: &str = "/var/lib/chgate";

/// The pod-side topology.
pub fn pod_topology(t: &Topology) -> Topology {
    let mut p = t.clone();
    p.state_dir = POD_STATE_DIR.into();
    p.clickhouse.password =
        SecretRef::Env(chgate_topology::render::clickhouse::PASSWORD_ENV.into());
    p.postgres.password = SecretRef::Env(POSTGRES_PASSWORD_ENV.into());
    p.grafana.secret_key = SecretRef::Env(GRAFANA_SECRET_KEY_ENV.into());
    if let Some(tls) = &mut p.tls {
        // The files as the pods mount them (the `chgate-tls` Secret, or podman's copies).
        let dir = std::path::Path::new(POD_TLS_DIR);
        tls.ca = dir.join("ca.crt");
        tls.cert = dir.join("tls.crt");
        tls.key = dir.join("tls.key");
    }
    p
}

/// The pod-side topology as `chgate.toml` text, checked to parse back to the same value.
///
/// # Errors
/// [`DeployError::Render`] when the topology cannot be written as TOML that reads back equal.
pub fn pod_topology_toml(t: &Topology) -> Result<String, DeployError> {
    let p = pod_topology(t);
    let mut value = toml::Value::try_from(&p).map_err(|e| DeployError::Render {
        what: "pod topology".into(),
        reason: e.to_string(),
    })?;
    lowercase_secret_refs(&mut value);
    let text = format!(
        "# rendered by chgate deploy from the topology for the pods; do not edit\n\
         # Secrets are environment variables filled from the Secret `chgate-secrets`.\n{}",
        toml::to_string(&value).map_err(|e| DeployError::Render {
            what: "pod topology".into(),
            reason: e.to_string(),
        })?
    );
    let back = chgate_topology::parse(&text, std::path::Path::new("chgate.toml")).map_err(|e| {
        DeployError::Render {
            what: "pod topology".into(),
            reason: format!("does not read back: {e}"),
        }
    })?;
    if back != p {
        return Err(DeployError::Render {
            what: "pod topology".into(),
            reason: "reads back different from what was written".into(),
        });
    }
    Ok(text)
}

/// `SecretRef` serializes as `{ Env = ".." }` / `{ File = ".." }`; the file format spells them
/// `env` / `file`. Applies to every reference, including sections added later.
fn lowercase_secret_refs(v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) => {
            if t.len() == 1 {
                for (from, to) in [("Env", "env"), ("File", "file")] {
                    if let Some(inner) = t.remove(from) {
                        t.insert(to.into(), inner);
                    }
                }
            }
            t.iter_mut().for_each(|(_, v)| lowercase_secret_refs(v));
        }
        toml::Value::Array(a) => a.iter_mut().for_each(lowercase_secret_refs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_topology_has_env_secrets_and_reads_back() {
        let text = pod_topology_toml(&Topology::default()).expect("renders");
        assert!(text.contains("\"CHGATE_CLICKHOUSE_PASSWORD\""), "{text}");
        assert!(text.contains(&format!("state_dir = \"{POD_STATE_DIR}\"")));
        assert!(!text.contains("file ="), "{text}");
    }
}
