//! # chgate-podman
//!
//! `chgate deploy`: the whole topology as pods. One set of Kubernetes objects — Pods,
//! ConfigMaps, PersistentVolumeClaims, headless Services, and a Secret that exists only at deploy
//! time — rendered from the same topology and renderers as `chgate local`, run on one host with
//! `podman kube play` or on a cluster with `kubectl apply`.
//!
//! Main parts:
//! - [`images`]: official or offline-built images ([`Images`], [`Flavor`]).
//! - [`manifest`]: the objects, grouped by [`Component`] in start order.
//! - [`secrets`]: the `chgate-secrets` Secret, resolved from the topology's references at deploy
//!   time and piped to podman / kubectl, never written to disk.
//! - [`pod_topology`]: the topology as the pods read it (secrets as environment variables).
//! - [`tls`]: the `[tls]` files in the pods (a Secret on Kubernetes, per-user copies with podman).
//! - [`yaml`]: the YAML writer; [`podman`]: the podman commands; [`deploy`]: up / down / status.
//!
//! Data flow: topology → [`manifest::build`] → YAML per component → `podman kube play --replace`
//! → readiness waits from the host through the topology's loopback ports (the pods' hostPorts).

pub mod deploy;
pub mod images;
pub mod manifest;
pub mod pod_topology;
pub mod podman;
pub mod secrets;
pub mod tls;
pub mod yaml;

pub use images::{Flavor, Images};
pub use manifest::{Component, Manifest};

/// What can go wrong deploying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// A podman command failed.
    #[error("`podman {command}` failed: {message}")]
    Podman {
        /// The arguments (never a secret: secrets go through stdin).
        command: String,
        /// podman's message.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Something could not be rendered.
    #[error("cannot render {what}: {reason}")]
    Render {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
    /// A secret reference could not be resolved.
    #[error("secret {reference}: {reason}")]
    Secret {
        /// The reference (`env:VAR` / `file:path`), never the value.
        reference: String,
        /// Why.
        reason: String,
    },
    /// An image is not on this machine and cannot be pulled.
    #[error("image {image} for {role} is missing; {hint}")]
    MissingImage {
        /// Role.
        role: String,
        /// Image reference.
        image: String,
        /// How to get it.
        hint: String,
    },
    /// Pods did not become ready in time.
    #[error("{component} not ready after {waited_s} s: {detail}")]
    NotReady {
        /// Component.
        component: String,
        /// Seconds waited.
        waited_s: u64,
        /// What was still failing, with the pods' last log lines.
        detail: String,
    },
    /// Host setup (packages, containers.conf) failed.
    #[error("host setup: {0}")]
    Setup(String),
}
