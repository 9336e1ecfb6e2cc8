//! `[tls]` in pods: the CA, certificate and key reach the pods that serve or verify TLS
//! (ClickHouse, PostgreSQL, the gateways, HAProxy) as read-only files at
//! [`POD_TLS_DIR`](chgate_topology::render::clickhouse::POD_TLS_DIR): `ca.crt`, `tls.crt`,
//! `tls.key` and `haproxy.pem` (certificate then key, HAProxy's `crt`). The pod-side topology and
//! the renderers point there; no rendered file holds key material.
//!
//! - Kubernetes: the Secret [`TLS_SECRET_NAME`](crate::manifest::TLS_SECRET_NAME), printed by
//!   `chgate deploy secret` beside `chgate-secrets`, mounted with mode 0440 and the pod's
//!   `fsGroup` (the images run as non-root users).
//! - podman 4.3 (`kube play` cannot mount `secret` volumes): `deploy up` writes one copy per pod
//!   user under `<state_dir>/pods-tls/<uid>/` (directory 0550, files 0400, owned by that uid, as
//!   the local rig gives each service its own copy) and plays the pods with that directory as a
//!   read-only `hostPath` volume instead of the Secret.
//!
//! Certificate names: every TLS client in the pods reaches its server through the topology's
//! `network.listen` address (the gateway through its ambassador's loopback ports, host tools
//! through the hostPorts), so the certificate must be valid for that address — as on the local
//! rig, whose generated certificate covers 127.0.0.1, ::1 and localhost.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chgate_topology::{LoadedTopology, Secret};
use serde_json::{json, Map, Value};

use crate::manifest::TLS_SECRET_NAME;

/// Mode of podman's staged copies: owner read only. Each copy is owned by the user its pods run
/// as, and PostgreSQL refuses a key it owns that its group can read.
pub const STAGED_FILE_MODE: u32 = 0o400;
use crate::DeployError;

/// The `[tls]` files as the pods get them.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// (file name in the pods' TLS directory, contents).
    files: Vec<(&'static str, Secret)>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DeployError + '_ {
    move |source| DeployError::Io {
        path: path.to_owned(),
        source,
    }
}

impl TlsFiles {
    /// Reads the topology's `[tls]` files (generating a local CA and certificate when none
    /// exists, as `chgate local up` does); `None` without `[tls]`.
    ///
    /// # Errors
    /// [`DeployError::Secret`] for a partial set or a generation failure (named by path);
    /// [`DeployError::Io`] for an unreadable file.
    pub fn resolve(loaded: &LoadedTopology) -> Result<Option<Self>, DeployError> {
        let Some(tls) = &loaded.topology.tls else {
            return Ok(None);
        };
        chgate_localstack::tls::ensure(tls).map_err(|e| DeployError::Secret {
            reference: "[tls]".into(),
            reason: e.to_string(),
        })?;
        let read = |p: &PathBuf| fs::read_to_string(p).map_err(io(p));
        let (ca, cert, key) = (read(&tls.ca)?, read(&tls.cert)?, read(&tls.key)?);
        let pem = chgate_localstack::tls::haproxy_pem(&cert, &key);
        Ok(Some(TlsFiles {
            files: vec![
                ("ca.crt", Secret::new(ca)),
                ("tls.crt", Secret::new(cert)),
                ("tls.key", Secret::new(key)),
                ("haproxy.pem", Secret::new(pem)),
            ],
        }))
    }

    /// File names, in the order they are written.
    pub fn names(&self) -> Vec<&'static str> {
        self.files.iter().map(|(n, _)| *n).collect()
    }

    /// The Kubernetes Secret [`TLS_SECRET_NAME`] (`type: Opaque`, one key per file).
    pub fn kubernetes_secret(&self, labels: &Value) -> Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        let data: Map<String, Value> = self
            .files
            .iter()
            .map(|(n, v)| ((*n).to_owned(), Value::from(b64.encode(v.expose()))))
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": TLS_SECRET_NAME, "labels": labels},
            "type": "Opaque",
            "data": Value::Object(data),
        })
    }

    /// Writes the copy for pods running as `uid` to `base/<uid>/` (directory 0550, files 0400,
    /// owned by `uid`), replacing an older copy. Returns the directory.
    ///
    /// # Errors
    /// [`DeployError::Io`] (changing the owner needs root, as podman does here).
    pub fn stage(&self, base: &Path, uid: u32) -> Result<PathBuf, DeployError> {
        let dir = base.join(uid.to_string());
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        for (name, contents) in &self.files {
            let path = dir.join(name);
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .open(&path)
                .map_err(io(&path))?;
            f.write_all(contents.expose().as_bytes())
                .map_err(io(&path))?;
            std::os::unix::fs::fchown(&f, Some(uid), Some(uid)).map_err(io(&path))?;
            f.set_permissions(fs::Permissions::from_mode(STAGED_FILE_MODE))
                .map_err(io(&path))?;
        }
        std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).map_err(io(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o550)).map_err(io(&dir))?;
        Ok(dir)
    }
}

/// Where `up` stages the per-user copies: `<state_dir>/pods-tls`.
pub fn staging_dir(loaded: &LoadedTopology) -> PathBuf {
    loaded.state_dir.join("pods-tls")
}
